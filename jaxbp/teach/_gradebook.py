"""Grading a class: every submission checked, scored by a stated rule, the files written.

``grade_class(submissions, network=... | exercises=...)`` grades each student's claimed
derivation with [`check_derivation`][jaxbp.teach.check_derivation] against the network the class was set (one
for all, or each student's own from ``jaxbp exercise --class``) and scores it by a
[`ScoreRule`][jaxbp.teach.ScoreRule]. ``write_class(grades, out)`` writes ``grades.csv``,
``feedback/<id>.md`` and ``.html``, ``class_report.md`` with its figures, and the
gradebooks a course site imports (``canvas.csv``, ``moodle.csv``: see ``_lms``).

The score: each graded step is worth one point, shared equally among its entries;
an entry earns the credit of its verdict (by default: correct and rounding 1,
inherited 1 -- error carried forward -- wrong and missing 0; a wrong value whose
working is right, an arithmetic slip, 0.5). The score is the points earned as a
percentage of the steps graded.

A malformed submission never stops the class: what can be read is graded, and each
problem is one line (file, row, key) in ``grades.csv`` and the class report.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..util._files import write_atomic
from ._classroom import valid_student_id
from ._explain import Explanation, explain
from ._feedback import class_report, draw_class_figures, feedback_html, feedback_markdown
from ._grading import VERDICTS, DerivationReport, check_derivation
from ._lms import canvas_csv, moodle_csv
from ._networks import NetworkSpec, read_network
from ._notation import Notation, claim_from_page, read_notation
from ._steps import Problem, step_specs, unknown_step
from ._submissions import Submission, clean_claim, read_submissions
from ._textread import PageRead

__all__ = ["ClassGrades", "ScoreRule", "StudentGrade", "grade_class", "write_class"]


@dataclasses.dataclass(frozen=True)
class ScoreRule:
    """Credit per verdict, for every entry of a step (a step is worth one point)."""

    correct: float = 1.0
    rounding: float = 1.0
    inherited: float = 1.0  # error carried forward: the marker's credit for right working
    wrong: float = 0.0
    missing: float = 0.0
    slip: float = 0.5  # a wrong value whose working is right: an arithmetic slip

    def __post_init__(self):
        for v in (*VERDICTS, "slip"):
            c = getattr(self, v)
            if not (isinstance(c, (int, float)) and 0 <= c <= 1):
                raise ValueError(f"ScoreRule.{v} must be a credit between 0 and 1; got {c!r}")

    def describe(self) -> str:
        return (
            "each step is worth one point, shared equally among its entries; an entry earns "
            + ", ".join(f"{getattr(self, v):g} if {v}" for v in VERDICTS)
            + f", and {self.slip:g} if wrong only by an arithmetic slip (the working right)"
            + "; the score is the points as a percentage of the steps graded"
        )

    def score(self, report: DerivationReport, steps: Sequence[str]) -> float:
        credit = {v: getattr(self, v) for v in VERDICTS}
        points = [
            float(
                np.mean(
                    [
                        max(self.slip, credit[str(v)]) if report.slip(s, idx) else credit[str(v)]
                        for idx, v in np.ndenumerate(report.entry_verdicts[s])
                    ]
                )
            )
            for s in steps
        ]
        return 100.0 * sum(points) / len(points)


@dataclasses.dataclass
class StudentGrade:
    """One student's result. ``report`` is None when nothing could be graded."""

    student: str
    source: str
    problems: list[str]
    report: DerivationReport | None = None
    score: float | None = None
    solution: Explanation | None = None
    steps: tuple[str, ...] = ()
    submitted: bool = True  # False: on the roster, no submission found
    not_graded: list[str] = dataclasses.field(default_factory=list)  # lines with no value

    @property
    def fully_graded(self) -> bool:
        return self.report is not None and not self.problems

    def counts(self) -> dict[str, int]:
        if self.report is None:
            return {v: 0 for v in VERDICTS}
        return {v: sum(self.report.verdicts[s] == v for s in self.steps) for v in VERDICTS}

    def wrong_entries(self) -> list[tuple[str, str, str]]:
        """(step, entry, diagnosis) of each root error; the diagnosis quotes the line it
        was read from, when the submission was a page."""
        if self.report is None:
            return []
        return [
            (r["step"], r["entry"], r["note"] + (f" (you wrote {r['line']})" if r["line"] else ""))
            for r in self.report.rows()
            if r["verdict"] == "wrong" and r["step"] in self.steps
        ]


@dataclasses.dataclass
class ClassGrades:
    """A class's grades, in submission order, and how they were scored."""

    grades: list[StudentGrade]
    rule: ScoreRule
    network: str  # what the class was graded against, in words

    @property
    def exit_code(self) -> int:
        """0 when every submission was graded in full, 1 when some could not be (a student
        on the roster who handed nothing in is listed, but is not a file that failed)."""
        return 0 if all(g.fully_graded for g in self.grades if g.submitted) else 1

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(
            [
                "student",
                "score",
                *VERDICTS,
                "slips",
                "root_errors",
                "diagnoses",
                "problems",
                "not_graded",
                "source",
            ]
        )
        for g in self.grades:
            counts = g.counts()
            w.writerow(
                [
                    g.student,
                    "" if g.score is None else f"{g.score:.1f}",
                    *(counts[v] if g.report is not None else "" for v in VERDICTS),
                    "" if g.report is None else sum(int(f.sum()) for f in g.report.slips.values()),
                    "; ".join(dict.fromkeys(s for s, _, _ in g.wrong_entries())),
                    " | ".join(
                        f"{s}{e}: {note}" if e else f"{s}: {note}"
                        for s, e, note in g.wrong_entries()
                    ),
                    " | ".join(g.problems),
                    " | ".join(g.not_graded),
                    g.source,
                ]
            )
        return buf.getvalue()


def _network_steps(spec: NetworkSpec, steps: Sequence[str] | None):
    prob = Problem.build(spec.params, spec.x, spec.y, spec.activation, spec.loss)
    specs = step_specs(prob)
    names = [s.name for s in specs]
    if steps is not None:
        for s in steps:
            if s not in names:
                raise ValueError(f"steps: {unknown_step(s, names)}")
    batch_steps = frozenset(s.name for s in specs if s.kind not in ("dL/dW", "dL/db", "loss"))
    sol = explain(spec.params, spec.x, spec.y, activation=spec.activation, loss=spec.loss)
    shapes = {s.name: tuple(s.value.shape) for s in sol.steps}
    return sol, shapes, batch_steps, tuple(steps) if steps is not None else tuple(names)


def grade_class(
    submissions: str | os.PathLike | Sequence[Submission],
    *,
    network: NetworkSpec | str | os.PathLike | None = None,
    exercises: str | os.PathLike | None = None,
    rule: ScoreRule = ScoreRule(),
    steps: Sequence[str] | None = None,
    roster: Sequence[str] | None = None,
    notation: Notation | str | os.PathLike | None = None,
) -> ClassGrades:
    """Grade every submission; never stops at a malformed one.

    Args:
      submissions: a folder of claimed-derivation files, a CSV file, or
        [`Submission`][jaxbp.teach.Submission] objects (see [`read_submissions`][jaxbp.teach.read_submissions]).
      network: the network every student was set (a [`NetworkSpec`][jaxbp.teach.NetworkSpec] or a network
        file); default: the seed exercise.
      exercises: instead, the folder ``jaxbp exercise --class`` wrote: each student's
        own network is ``exercises/<id>/network.json``.
      rule: credit per verdict ([`ScoreRule`][jaxbp.teach.ScoreRule]).
      steps: the steps the exercise asks for (default: every step of the network).
      roster: the class's student ids (default with ``exercises``: its student folders);
        a student on it without a submission gets a row saying so (and no score).
      notation: how the symbols of submissions written as text map to steps (a
        notation file or [`read_notation`][jaxbp.teach.read_notation]'s result; default:
        jaxbp's names and the common textbook ones).
    """
    if not isinstance(notation, Notation):
        notation = read_notation(notation)
    if network is not None and exercises is not None:
        raise ValueError("give network= (one network for all) or exercises= (one each), not both")
    subs = (
        read_submissions(submissions)
        if isinstance(submissions, (str, os.PathLike))
        else list(submissions)
    )
    shared = None
    if exercises is None:
        spec = network if isinstance(network, NetworkSpec) else read_network(network)
        shared = (spec, *_network_steps(spec, steps))
        described = "the seed exercise" if network is None else str(network)
    else:
        exercises = Path(exercises)
        if not exercises.is_dir():
            raise ValueError(
                f"exercises: {exercises} is not a folder (jaxbp exercise --class --out)"
            )
        described = f"each student's own network in {exercises}/<id>/network.json"
    grades = []
    for sub in subs:
        g = StudentGrade(sub.student, sub.source, list(sub.problems))
        grades.append(g)
        if not sub.readable:
            continue
        if shared is not None:
            spec, sol, shapes, batch_steps, graded = shared
        else:
            path = exercises / sub.student / "network.json"
            if not path.is_file():
                g.problems.append(
                    f"{sub.source}: no exercise for {sub.student!r} ({path}); nothing graded"
                )
                continue
            try:
                spec = read_network(path)
                sol, shapes, batch_steps, graded = _network_steps(spec, steps)
            except (ValueError, TypeError) as e:
                g.problems.append(f"{path}: {e}; nothing graded")
                continue
        workings = sources = None
        if isinstance(sub.claimed, PageRead):
            read = claim_from_page(sub.claimed, shapes, batch_steps, len(spec.x), notation)
            claim, workings, sources = read.claimed, read.workings, read.sources
            g.problems += [f"{sub.source}: {p}" for p in read.problems]
            g.not_graded += read.not_graded
        else:
            claim, problems = clean_claim(sub.claimed, shapes, batch_steps, sub.source)
            g.problems += problems
        g.report = check_derivation(
            spec.params,
            spec.x,
            spec.y,
            claim,
            activation=spec.activation,
            loss=spec.loss,
            workings=workings,
            sources=sources,
        )
        g.solution, g.steps = sol, graded
        g.score = rule.score(g.report, graded)
    if roster is None and exercises is not None:
        roster = sorted(p.name for p in exercises.iterdir() if p.is_dir() and p.name != "_keys")
    handed_in = {g.student for g in grades}
    for sid in roster or ():
        if sid not in handed_in:
            grades.append(StudentGrade(sid, "", ["no submission"], submitted=False))
    return ClassGrades(grades, rule, described)


def write_class(
    grades: ClassGrades,
    out: str | os.PathLike,
    *,
    figures: bool = True,
    assignment: str = "Derivation",
    points: float = 100.0,
    roster: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Path]:
    """Write ``grades.csv``, ``feedback/<id>.md|.html``, ``class_report.md`` (with figures
    when matplotlib is installed and ``figures``), and the gradebooks ``canvas.csv`` and
    ``moodle.csv`` into ``out``; returns the files written.

    Args:
      grades: what [`grade_class`][jaxbp.teach.grade_class] gave.
      out: the folder.
      figures: draw the class report's figures.
      assignment: the assignment's name in the gradebooks.
      points: what the assignment is worth in Canvas.
      roster: per student id, the course site's ids (``read_roster_table``).

    Every text is made before the first file is written, and each file is written whole.
    """
    books = {
        "canvas.csv": canvas_csv(grades, assignment, points=points, roster=roster),
        "moodle.csv": moodle_csv(grades, assignment, roster=roster),
    }
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a folder")
    pages = {}
    for g in grades.grades:
        if g.report is not None and valid_student_id(g.student):
            pages[f"{g.student}.md"] = feedback_markdown(g, grades.rule)
            pages[f"{g.student}.html"] = feedback_html(g, grades.rule)
    table = grades.csv()
    out.mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(exist_ok=True)
    written = []
    drawn = draw_class_figures(grades, out / "figures") if figures else []
    report = class_report(grades, [p.relative_to(out) for p in drawn], figures_wanted=figures)
    for name, text in pages.items():
        path = out / "feedback" / name
        assert path.resolve().parent == (out / "feedback").resolve()  # ids were checked
        write_atomic(path, text)
        written.append(path)
    write_atomic(out / "grades.csv", table)
    write_atomic(out / "class_report.md", report)
    for name, text in books.items():
        write_atomic(out / name, text)
    books_written = [out / name for name in books]
    return [out / "grades.csv", out / "class_report.md", *books_written, *written, *drawn]
