"""A class's exercises: one network per student, derived from the student's id and a course seed.

``class_exercises(roster, out, ...)`` writes ``out/<id>/`` (the network file and the
exercise sheet as Markdown and as one self-contained HTML page, to hand out as they
are) and keeps the worked solutions apart in ``out/_keys/<id>/``. Student ids come
from a user's file, so they are checked before they name a folder: letters, digits,
``-``, ``_`` and ``.`` only, not starting with a dot; nothing is written outside
``out``, and nothing at all when the roster has a bad or repeated id.

Edge of the library: files. Uses the exercise generator and the worked solutions.
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import zlib
from pathlib import Path

import numpy as np

from ..nn._tree import to_augmented
from ..util._files import write_atomic
from ._exercises import random_exercise
from ._explain import explain
from ._networks import NetworkSpec, dumps_network, network_to_dict
from ._steps import step_names

__all__ = ["class_exercises", "read_roster", "student_seed", "valid_student_id"]

_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")


def valid_student_id(sid: str) -> bool:
    """Whether ``sid`` may name a file or folder: letters, digits, ``-``, ``_``, ``.`` (not
    first), at most 64 characters."""
    return isinstance(sid, str) and bool(_ID.fullmatch(sid)) and sid not in (".", "..")


def read_roster(path: str | os.PathLike) -> list[str]:
    """Student ids from a text file (one per line; blank lines and ``#`` comments skipped)
    or a CSV file (the ``student`` or ``id`` column, else the first)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such roster file")
    text = path.read_text()
    if path.suffix.lower() == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            raise ValueError(f"{path}: the roster is empty")
        header = [h.strip().lower() for h in rows[0]]
        col = next((header.index(k) for k in ("student", "id") if k in header), 0)
        entries = [(i + 2, r[col].strip()) for i, r in enumerate(rows[1:]) if r and r[col].strip()]
    else:
        entries = [
            (i + 1, line.strip())
            for i, line in enumerate(text.splitlines())
            if line.strip() and not line.strip().startswith("#")
        ]
    seen: dict[str, int] = {}
    for line, sid in entries:
        if not valid_student_id(sid):
            raise ValueError(
                f"{path}, line {line}: student id {sid!r} can't name a folder; use letters, "
                "digits, '-', '_' and '.' (not first), at most 64 characters"
            )
        if sid in seen:
            raise ValueError(f"{path}, line {line}: student id {sid!r} repeats line {seen[sid]}")
        seen[sid] = line
    if not seen:
        raise ValueError(f"{path}: the roster names no student")
    return list(seen)


def student_seed(student: str, course_seed: int) -> int:
    """The exercise seed of a student: the same id and course seed give the same network."""
    return zlib.crc32(f"{course_seed}:{student}".encode())


def _matrix_md(m) -> list[str]:
    rows = [" | ".join(f"{v:g}" for v in row) for row in np.asarray(m)]
    n = np.asarray(m).shape[1]
    return ["| " + " | ".join(f"unit {j + 1}" for j in range(n)) + " |", "|" + " ---: |" * n] + [
        f"| {r} |" for r in rows
    ]


def _sheet_md(student, spec: NetworkSpec, names) -> str:
    acts = spec.activation if isinstance(spec.activation, str) else ", ".join(spec.activation)
    lines = [
        f"# Backpropagation exercise: {student}",
        "",
        f"A network of layer widths {'-'.join(str(s) for s in (spec.params[0]['W'].shape[0], *(p['W'].shape[1] for p in spec.params)))}, "
        f"hidden activation {acts}, loss `{spec.loss}` (mean over the batch).",
        "",
        f"Inputs x (one row per example): {np.asarray(spec.x).tolist()}; labels y: "
        f"{np.asarray(spec.y).tolist()}.",
        "",
    ]
    for i, m in enumerate(to_augmented(spec.params)):
        lines += [f"Layer {i + 1} weights (row 0 is the bias, then one row per input):", ""]
        lines += [*_matrix_md(m), ""]
    lines += [
        "Work the forward pass, the loss and every gradient by the chain rule, and write",
        "each step under its name (entries row by row):",
        "",
        ", ".join(f"`{n}`" for n in names),
        "",
        *_notation_md(spec),
        "Then take one step of `w' = w - lr * dL/dw` with lr = 0.5.",
        "",
    ]
    return "\n".join(lines)


def _notation_md(spec: NetworkSpec) -> list[str]:
    """How the sheet's answers may be written: what the default notation reads."""
    one = np.asarray(spec.x).shape[0] == 1
    unit = "`h1[0]`, `dL/dW1[2,1]`" + ("" if one else ", `h1[1,0]` (example 1, unit 0)")
    out = [
        "Hand in a page as you write it (Markdown with LaTeX, or plain text) or a JSON file.",
        "Write each value as a chain `name = working = value`, for example",
        "`h1[0] = 1 + 1*1 + (-2)*2 + 3*2 = 4`: the working is read too, so an arithmetic",
        f"slip is told apart from a wrong method. An entry is named as {unit} (from 0);",
        "a whole step as a matrix, row by row (`\\begin{bmatrix} ... \\end{bmatrix}` or",
        "`[[..], [..]]`).",
    ]
    if one and len(spec.params) == 2:
        out += [
            "The textbook names are read as well, units counted from 1: `h_1` or `net_{h1}`",
            "(pre-activations), `a_1`, `out_{h1}` or `\\sigma(h_1)` (activations), `O` (the",
            "output's logit), `Z`, `\\hat{y}` or `out_o` (the output), `L` or `E` (the loss),",
            "and each derivative of the loss, `\\frac{\\partial L}{\\partial h_1}` or `dL/dh1`.",
        ]
    return [*out, ""]


def _md_to_html(title: str, md: str) -> str:
    """The sheet as one self-contained page: tables and text, no script, no network access."""
    body, table = [], []

    def flush():
        if table:
            head, *rows = table
            cells = lambda r, t: "".join(
                f"<{t}>{html.escape(c.strip())}</{t}>" for c in r.strip("|").split("|")
            )
            body.append(
                "<table><tr>"
                + cells(head, "th")
                + "</tr>"
                + "".join("<tr>" + cells(r, "td") + "</tr>" for r in rows if "---" not in r)
                + "</table>"
            )
            table.clear()

    para: list[str] = []

    def end_paragraph():
        if para:
            text = re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(" ".join(para)))
            body.append(f"<p>{text}</p>")
            para.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            end_paragraph()
            table.append(line)
            continue
        flush()
        if line.startswith("# "):
            end_paragraph()
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.strip():
            para.append(line.strip())  # consecutive lines are one paragraph, as in Markdown
        else:
            end_paragraph()
    end_paragraph()
    flush()
    style = (
        "body{font-family:Georgia,serif;max-width:46em;margin:2em auto;line-height:1.45}"
        "table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #888;"
        "padding:.2em .6em;text-align:right}code{font-family:monospace}"
        "@media print{body{margin:0}}"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def class_exercises(
    roster: list[str],
    out: str | os.PathLike,
    *,
    sizes=(3, 2, 1),
    activation="sigmoid",
    loss: str = "bce",
    batch: int = 1,
    course_seed: int = 0,
) -> list[Path]:
    """One exercise per student in ``out/<id>/`` and its solution in ``out/_keys/<id>/``.

    Returns the students' folders. The ids are checked (see [`read_roster`][jaxbp.teach.read_roster]).
    """
    out = Path(out)
    for sid in roster:
        if not valid_student_id(sid):
            raise ValueError(f"student id {sid!r} can't name a folder")
    exercises = {
        sid: random_exercise(
            student_seed(sid, course_seed), sizes, activation=activation, loss=loss, batch=batch
        )
        for sid in roster
    }  # every exercise exists before a file is written
    names = step_names(sizes, loss=loss)
    folders = []
    for sid, ex in exercises.items():
        spec = NetworkSpec(ex.params, np.asarray(ex.x), np.asarray(ex.y), ex.activation, ex.loss)
        sol = explain(ex.params, ex.x, ex.y, activation=ex.activation, loss=ex.loss)
        folder, keys = out / sid, out / "_keys" / sid
        assert folder.resolve().parent == out.resolve()  # ids were checked above
        folder.mkdir(parents=True, exist_ok=True)
        keys.mkdir(parents=True, exist_ok=True)
        md = _sheet_md(sid, spec, names)
        write_atomic(folder / "network.json", dumps_network(network_to_dict(spec)) + "\n")
        write_atomic(folder / "sheet.md", md)
        write_atomic(folder / "sheet.html", _md_to_html(f"Exercise: {sid}", md))
        write_atomic(keys / "solution.json", sol.to_json() + "\n")
        write_atomic(keys / "solution.md", sol.to_markdown())
        folders.append(folder)
    return folders
