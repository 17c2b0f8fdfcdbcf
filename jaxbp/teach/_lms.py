"""Gradebooks a course site imports as they are: Canvas and Moodle CSV files.

**Canvas** (Grades > Import): the columns ``Student``, ``ID``, ``SIS User ID``,
``SIS Login ID``, ``Section``, then one column per assignment, named
``<assignment>``; the second row is ``Points Possible`` with the assignment's
points. A grade is the score as points (``score / 100 * points``, two decimals);
a student without a submission has an empty cell (Canvas leaves the grade as it is).

**Moodle** (Grades > Import > CSV file): an identifier column to map at import
(``Email address`` when the roster has e-mail addresses, else ``ID number``), a
grade column named ``<assignment>`` (the score, 0-100), and a ``Feedback`` column
(one line: the score, the steps in each verdict, the root errors).

Where the ids come from: a CSV roster may carry, beside its ``student`` column,
the course site's own columns (``name``, ``canvas id`` or ``id``, ``sis user id``,
``sis login id``, ``section``, ``email``/``email address``, ``id number``; case,
spaces and underscores do not matter). A student the roster does not describe is
listed by the jaxbp id in every column that needs one.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path

from ._classroom import read_roster
from ._grading import VERDICTS

__all__ = ["CANVAS_COLUMNS", "canvas_csv", "moodle_csv", "read_roster_table"]

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
"""The columns Canvas's gradebook import expects before the assignments."""

_CANVAS_KEYS = {
    "Student": ("name", "student name"),
    "ID": ("canvas id", "id"),
    "SIS User ID": ("sis user id",),
    "SIS Login ID": ("sis login id",),
    "Section": ("section",),
}


def _key(header: str) -> str:
    return " ".join(header.strip().lower().replace("_", " ").split())


def read_roster_table(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """Per student id, the other columns of a CSV roster (keys lower-case, ``_`` as a
    space); empty for a text roster. The ids are read and checked as ``read_roster`` does."""
    path = Path(path)
    ids = read_roster(path)
    if path.suffix.lower() != ".csv":
        return {sid: {} for sid in ids}
    rows = list(csv.reader(io.StringIO(path.read_text())))
    header = [_key(h) for h in rows[0]]
    col = next((header.index(k) for k in ("student", "id") if k in header), 0)
    out = {}
    for r in rows[1:]:
        if r and col < len(r) and r[col].strip() in ids:
            out[r[col].strip()] = {
                h: v.strip() for j, (h, v) in enumerate(zip(header, r)) if j != col and h
            }
    return {sid: out.get(sid, {}) for sid in ids}


def _write(rows) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _check_assignment(assignment: str) -> str:
    if not isinstance(assignment, str) or not assignment.strip() or "\n" in assignment:
        raise ValueError(f"assignment must be a name on one line; got {assignment!r}")
    return assignment.strip()


def canvas_csv(
    grades, assignment: str, *, points: float = 100.0, roster: Mapping[str, Mapping] | None = None
) -> str:
    """The class's scores as a CSV that Canvas's gradebook import reads as it is."""
    assignment = _check_assignment(assignment)
    if not isinstance(points, (int, float)) or not points > 0:
        raise ValueError(f"points must be a positive number; got {points!r}")
    roster = roster or {}
    rows = [[*CANVAS_COLUMNS, assignment], ["Points Possible", "", "", "", "", f"{points:g}"]]
    for g in grades.grades:
        info = roster.get(g.student, {})
        cells = [next((info[k] for k in keys if info.get(k)), "") for keys in _CANVAS_KEYS.values()]
        cells[0] = cells[0] or g.student
        cells[3] = cells[3] or g.student  # the login the grade is matched by, at the least
        grade = "" if g.score is None else f"{g.score / 100 * points:.2f}"
        rows.append([*cells, grade])
    return _write(rows)


def _feedback_line(g) -> str:
    if g.score is None:
        return "; ".join(g.problems) or "no submission"
    counts = g.counts()
    verdicts = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
    roots = "; ".join(dict.fromkeys(s for s, _, _ in g.wrong_entries()))
    return f"Score {g.score:.1f}/100. Steps: {verdicts}." + (
        f" Root errors: {roots}." if roots else ""
    )


def moodle_csv(grades, assignment: str, *, roster: Mapping[str, Mapping] | None = None) -> str:
    """The class's scores and one-line feedback as a CSV for Moodle's grade import."""
    assignment = _check_assignment(assignment)
    roster = roster or {}
    email = any(info.get("email") or info.get("email address") for info in roster.values())
    ident = "Email address" if email else "ID number"
    keys = ("email address", "email") if email else ("id number", "idnumber")
    rows = [[ident, assignment, "Feedback"]]
    for g in grades.grades:
        info = roster.get(g.student, {})
        who = next((info[k] for k in keys if info.get(k)), g.student)
        rows.append([who, "" if g.score is None else f"{g.score:.2f}", _feedback_line(g)])
    return _write(rows)
