"""A class's submissions: claimed derivations read from a folder of files or one CSV.

A folder holds one file per student, named ``<student id>.json`` (or ``.toml``,
``.md``, ``.txt``, ``.tex``; sub-folders and hidden files are passed over, any
other file is listed as a problem): JSON and TOML in the claimed-derivation format
of ``jaxbp check`` (a ``claimed`` table, or a bare mapping of step names to
values); Markdown/LaTeX and plain text as students write them, read by
``_textread`` and mapped onto the network's steps by a notation when graded. A CSV file has a ``student``
column and one column per entry, named as the checker's reports name entries:
``h1[0]``, ``o``, ``dL/dW1[2,1]`` (indices from 0; with one example the batch
index is left out; a column may also hold a whole step as a JSON list). An empty
cell is an entry not written.

Nothing here stops at a malformed submission: each problem becomes one line naming
the file (and row) and the key, and what can be read is kept. Student ids are
checked before they name a file: a bad or repeated id is a problem, not a path.

Edge of the library: files. Uses the grading module's reading of claimed values.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from ..util._files import load_table
from ._claims import claim_entries
from ._classroom import valid_student_id
from ._steps import unknown_step
from ._textread import PageRead, read_page

__all__ = ["Submission", "clean_claim", "read_submissions"]

PAGES = (".md", ".markdown", ".txt", ".tex")
"""Suffixes read as derivations written as text (Markdown/LaTeX or plain)."""
_COLUMN = re.compile(r"^\s*(?P<step>[^\[\]]+?)\s*(?:\[(?P<index>[\d,\s]*)\])?\s*$")


class EntryMap(dict):
    """Entries of one step read from CSV columns: index tuple (as written) -> value text."""


@dataclasses.dataclass
class Submission:
    """One student's claimed derivation, as far as it could be read."""

    student: str
    source: str  # the file (and row) it came from
    claimed: dict[str, Any] | PageRead  # step name -> value, nested list, or EntryMap; or a page
    problems: list[str] = dataclasses.field(default_factory=list)
    readable: bool = True  # False when nothing could be read (no grade can be given)

    @classmethod
    def unread(cls, student: str, source: str, problem: str) -> Submission:
        """A submission nothing of which could be read, and why (one line)."""
        return cls(student, source, {}, [problem], readable=False)


def read_submissions(path: str | os.PathLike) -> list[Submission]:
    """Submissions from a folder of files (file stem = student id: JSON, TOML, or pages
    in Markdown/LaTeX or plain text) or one CSV."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return _read_csv(path)
    if path.is_file():
        raise ValueError(
            f"{path}: expected a folder of submissions (one file per student) or a .csv file; "
            f"got a {path.suffix or 'suffix-less'} file"
        )
    raise ValueError(f"{path}: no such folder or CSV file")


def _read_folder(folder: Path) -> list[Submission]:
    out: list[Submission] = []
    seen: dict[str, str] = {}
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_dir())
    for f in files:
        student = f.stem
        if f.suffix.lower() not in (".json", ".toml", *PAGES):
            out.append(
                Submission.unread(
                    student,
                    str(f),
                    f"{f}: not a JSON, TOML, Markdown, text or LaTeX file; nothing graded",
                )
            )
            continue
        if not valid_student_id(student):
            out.append(
                Submission.unread(
                    student,
                    str(f),
                    f"{f}: the file name {student!r} is not a usable student id (letters, "
                    "digits, '-', '_', '.'); nothing graded",
                )
            )
            continue
        if student in seen:
            out.append(
                Submission.unread(
                    student,
                    str(f),
                    f"{f}: student {student!r} already submitted {seen[student]}; not graded twice",
                )
            )
            continue
        seen[student] = f.name
        if f.suffix.lower() in PAGES:
            try:
                out.append(
                    Submission(student, str(f), read_page(f.read_text(encoding="utf-8-sig")))
                )
            except (OSError, UnicodeDecodeError) as e:
                out.append(
                    Submission.unread(student, str(f), f"{f}: can't be read: {_one_line(e)}")
                )
            continue
        try:
            doc = load_table(f)
        except (ValueError, OSError, UnicodeDecodeError) as e:
            out.append(Submission.unread(student, str(f), _one_line(e)))
            continue
        claimed, problems = _claimed_table(doc, str(f))
        out.append(Submission(student, str(f), claimed, problems, readable=claimed is not None))
    return out


def _claimed_table(doc: dict, where: str) -> tuple[dict | None, list[str]]:
    if "claimed" in doc:
        claimed = doc["claimed"]
        if not isinstance(claimed, dict):
            return None, [f"{where}: key 'claimed' must be a table of step names to values"]
        extra = sorted(set(doc) - {"claimed", "about", "mapping", "network", "student"})
        problems = [f"{where}: key {k!r} ignored (expected 'claimed')" for k in extra]
        if "network" in doc:
            problems.append(
                f"{where}: key 'network' ignored: the network is the one the class was set"
            )
        return dict(claimed), problems
    return {k: v for k, v in doc.items() if k not in ("about", "mapping", "student")}, []


def _read_csv(path: Path) -> list[Submission]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: can't be read: {_one_line(e)}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ValueError(f"{path}: the CSV file is empty")
    header = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in header]
    if "student" not in lower:
        raise ValueError(f"{path}: the CSV needs a 'student' column; its columns are {header}")
    sid_col = lower.index("student")
    columns: dict[int, tuple[str, tuple[int, ...] | None]] = {}
    header_problems = []
    for j, h in enumerate(header):
        if j == sid_col or not h:
            continue
        m = _COLUMN.match(h)
        index = None
        if m and m["index"] is not None:
            try:
                index = tuple(int(t) for t in m["index"].split(",") if t.strip())
            except ValueError:
                m = None
        if not m:
            header_problems.append(
                f"{path}: column {h!r} is not a step entry such as 'dL/dW1[2,1]'; ignored"
            )
            continue
        columns[j] = (m["step"], index)
    out: list[Submission] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        where = f"{path}, row {i}"
        student = row[sid_col].strip() if sid_col < len(row) else ""
        if not valid_student_id(student):
            out.append(
                Submission.unread(
                    student,
                    where,
                    f"{where}: student id {student!r} is not usable (letters, digits, "
                    "'-', '_', '.'); nothing graded",
                )
            )
            continue
        if student in seen:
            out.append(
                Submission.unread(
                    student,
                    where,
                    f"{where}: student {student!r} already has row {seen[student]}; not graded twice",
                )
            )
            continue
        seen[student] = i
        claimed: dict[str, Any] = {}
        problems = list(header_problems)
        for j, (step, index) in columns.items():
            cell = row[j].strip() if j < len(row) else ""
            if not cell:
                continue
            if index is None:
                if cell.startswith("["):
                    try:
                        claimed[step] = json.loads(cell, parse_float=Decimal)
                    except json.JSONDecodeError:
                        problems.append(f"{where}: column {header[j]!r}: {cell!r} is not a list")
                    continue
                index = ()
            claimed.setdefault(step, EntryMap())
            if not isinstance(claimed[step], EntryMap):
                problems.append(f"{where}: column {header[j]!r} repeats step {step!r}; ignored")
                continue
            claimed[step][index] = cell
        out.append(Submission(student, where, claimed, problems))
    return out


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def _entry_index(index: tuple[int, ...], shape: tuple[int, ...], batch_step: bool):
    """A written index as a full index into the step's shape, or None if it names no entry."""
    if len(index) == len(shape):
        full = index
    elif batch_step and len(index) == len(shape) - 1 and shape[0] == 1:
        full = (0, *index)
    elif not index and int(np.prod(shape)) == 1:
        full = (0,) * len(shape)
    else:
        return None
    return full if all(0 <= i < n for i, n in zip(full, shape)) else None


def clean_claim(
    claimed: dict[str, Any], shapes: dict[str, tuple[int, ...]], batch_steps, where: str
) -> tuple[dict[str, Any], list[str]]:
    """What can be graded of a claim: unknown steps, wrong shapes and unreadable entries are
    dropped (left unwritten), each with one line naming ``where`` and the key."""
    clean: dict[str, Any] = {}
    problems: list[str] = []
    names = list(shapes)
    for step, value in claimed.items():
        if step not in shapes:
            problems.append(f"{where}: {unknown_step(step, names)}; ignored")
            continue
        shape = shapes[step]
        if isinstance(value, EntryMap):
            grid = np.full(shape, None, object)
            for index, text in value.items():
                full = _entry_index(index, shape, step in batch_steps)
                shown = f"{step}[{','.join(map(str, index))}]" if index else step
                if full is None:
                    problems.append(
                        f"{where}: column {shown!r} names no entry of {step} (shape {shape}, "
                        "indices from 0); ignored"
                    )
                    continue
                grid[full] = text
            value = grid.tolist()
        entries, entry_problems = claim_entries(step, value, shape)
        problems += [f"{where}: {p}" for p in entry_problems]
        if entries is not None:
            clean[step] = entries
    return clean, problems
