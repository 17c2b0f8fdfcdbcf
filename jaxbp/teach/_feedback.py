"""What a class's grading shows people: each student's feedback page, the class report.

``feedback_markdown`` / ``feedback_html``: a student's derivation step by step -- each
entry with its verdict, the exact value, what follows from the student's own values
and the likely mistake in plain words -- then the worked exact solution of the step.
The HTML is one self-contained page (no script, no web fonts, no network access;
formulas in plain text) that prints as it shows. ``class_report`` and
``draw_class_figures``: per step the share of the class in each verdict, the most
common root mistakes with an example student each, the score distribution.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from pathlib import Path

import numpy as np

from ..util._plotting import pyplot
from ..util._text import table as text_table
from ._grading import VERDICTS, shown_values

__all__ = ["class_report", "draw_class_figures", "feedback_html", "feedback_markdown"]

COLOURS = {  # strong colour (badges, bars) and a light tint (table rows)
    "correct": ("#1a7f37", "#dafbe1"),
    "rounding": ("#0969da", "#ddf4ff"),
    "inherited": ("#9a6700", "#fff8c5"),
    "wrong": ("#cf222e", "#ffebe9"),
    "missing": ("#6e7781", "#f6f8fa"),
}
MEANING = {
    "correct": "equal to the exact value to the digits you wrote",
    "rounding": "not exact, but it follows from your rounded values: full credit",
    "inherited": "wrong only because an earlier value was wrong: your working is right",
    "wrong": "does not follow from your values: the root of an error",
    "missing": "not written",
}


def _summary(g) -> str:
    counts = g.counts()
    return ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])


def _about(g) -> str:
    s = g.solution
    acts = ", ".join(s.activation) if s.activation else "none"
    return (
        f"network {'-'.join(map(str, s.sizes))}, hidden activation {acts}, loss `{s.loss}`, "
        f"{'one example' if s.batch == 1 else f'a batch of {s.batch} (the loss is the mean)'}"
    )


def _rows_by_step(g) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {s: [] for s in g.steps}
    for r in g.report.rows():
        if r["step"] in out:
            out[r["step"]].append(r)
    return out


def _first_look(g) -> list[tuple[str, str]]:
    return [(f"{s}{e}", note) for s, e, note in g.wrong_entries()]


# --------------------------------------------------------------------------- Markdown


def feedback_markdown(g, rule) -> str:
    """A student's feedback as Markdown."""
    lines = [
        f"# Feedback: {g.student}",
        "",
        f"Score: **{g.score:.1f} / 100**. Steps: {_summary(g)}.",
        "",
        f"The exercise: {_about(g)}.",
        "",
    ]
    if g.problems:
        lines += ["## Parts of your submission that could not be read", ""]
        lines += [f"- {p}" for p in g.problems] + [""]
    if g.not_graded:
        lines += ["## Lines not graded (no value, or given data)", ""]
        lines += [f"- {p}" for p in g.not_graded] + [""]
    lines += ["## What to look at first", ""]
    first = _first_look(g)
    lines += [f"- **{where}**: {note}" for where, note in first] or [
        "No errors: every step you wrote is right or follows from your own rounded values."
    ]
    lines += ["", "## Step by step", ""]
    by_step = _rows_by_step(g)
    for step in g.solution.steps:
        if step.name not in by_step:
            continue
        verdict = g.report.verdicts[step.name]
        lines += [f"### {step.name}: {step.what} -- {verdict}", "", f"`{step.formula}`", ""]
        header = ["entry", "you wrote", "verdict", "exact", "from your values", "note"]
        cells = []
        for r in by_step[step.name]:
            c, e, o = shown_values(r)
            cells.append([r["entry"] or "-", c or "-", r["verdict"], e, o or "-", r["note"]])
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        lines += ["", "Worked (exact values):", "", "```"]
        lines += [*step.substituted, "```", ""]
    lines += ["Verdicts: " + "; ".join(f"**{v}**: {MEANING[v]}" for v in VERDICTS) + ".", ""]
    lines += [f"Score rule: {rule.describe()}.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML

_CSS = (
    "body{font-family:'DejaVu Sans',Arial,sans-serif;max-width:60em;margin:1.5em auto;"
    "padding:0 1em;line-height:1.4;color:#1f2328}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.4em}"
    "h3{font-size:1.05em;margin:1.2em 0 .3em}"
    "table{border-collapse:collapse;margin:.3em 0 .6em;font-size:.92em}"
    "td,th{border:1px solid #d0d7de;padding:.2em .5em;text-align:right;vertical-align:top}"
    "td.note{text-align:left;max-width:28em}th{background:#f6f8fa}"
    "code,pre{font-family:'DejaVu Sans Mono',monospace;font-size:.9em}"
    "pre{background:#f6f8fa;padding:.4em .6em;overflow-x:auto;margin:.2em 0}"
    ".badge{display:inline-block;color:#fff;border-radius:.3em;padding:0 .45em;"
    "font-weight:bold;font-size:.9em}"
    ".score{font-size:1.3em}section{break-inside:avoid;page-break-inside:avoid}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "@media print{body{margin:0;max-width:none}pre{white-space:pre-wrap}}"
)
_CSS += "".join(
    f".v-{v}{{background:{strong}}}tr.r-{v} td{{background:{tint}}}"
    for v, (strong, tint) in COLOURS.items()
)


def _badge(verdict: str) -> str:
    return f'<span class="badge v-{verdict}">{verdict}</span>'


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def page(title: str, body: list[str]) -> str:
    """One self-contained HTML page: inline style, no script, nothing fetched."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def feedback_html(g, rule) -> str:
    """A student's feedback as one self-contained HTML page."""
    esc = html.escape
    body = [
        f"<h1>Feedback: {esc(g.student)}</h1>",
        f'<p class="score">Score: <b>{g.score:.1f} / 100</b></p>',
        "<p>Steps: "
        + ", ".join(f"{g.counts()[v]} {_badge(v)}" for v in VERDICTS if g.counts()[v])
        + "</p>",
        f"<p>The exercise: {esc(_about(g)).replace('`', '')}.</p>",
    ]
    if g.problems:
        body += ["<h2>Parts of your submission that could not be read</h2><ul>"]
        body += [f"<li>{esc(p)}</li>" for p in g.problems] + ["</ul>"]
    if g.not_graded:
        body += ["<h2>Lines not graded (no value, or given data)</h2><ul>"]
        body += [f"<li>{esc(p)}</li>" for p in g.not_graded] + ["</ul>"]
    body.append("<h2>What to look at first</h2>")
    first = _first_look(g)
    if first:
        body += (
            ["<ul>"]
            + [f"<li>{_badge('wrong')} <b>{_code(w)}</b>: {esc(note)}</li>" for w, note in first]
            + ["</ul>"]
        )
    else:
        body.append(
            f"<p>{_badge('correct')} No errors: every step you wrote is right or follows "
            "from your own rounded values.</p>"
        )
    body.append("<h2>Step by step</h2>")
    by_step = _rows_by_step(g)
    for step in g.solution.steps:
        if step.name not in by_step:
            continue
        verdict = g.report.verdicts[step.name]
        rows = []
        for r in by_step[step.name]:
            c, e, o = shown_values(r)
            rows.append(
                f'<tr class="r-{r["verdict"]}"><td>{esc(r["entry"] or "-")}</td>'
                f"<td>{esc(c or '-')}</td><td>{_badge(r['verdict'])}</td><td>{esc(e)}</td>"
                f'<td>{esc(o or "-")}</td><td class="note">{esc(r["note"])}</td></tr>'
            )
        body += [
            "<section>",
            f"<h3>{_code(step.name)} {esc(step.what)} {_badge(verdict)}</h3>",
            f"<p>Formula: {_code(step.formula)}</p>",
            "<table><tr><th>entry</th><th>you wrote</th><th>verdict</th><th>exact</th>"
            "<th>from your values</th><th>note</th></tr>",
            *rows,
            "</table>",
            "<pre>" + esc("\n".join(step.substituted)) + "</pre>",
            "</section>",
        ]
    body += ["<h2>What the verdicts mean</h2><ul>"]
    body += [f"<li>{_badge(v)} {esc(MEANING[v])}</li>" for v in VERDICTS] + ["</ul>"]
    body.append(f"<p>Score rule: {esc(rule.describe())}.</p>")
    return page(f"Feedback: {g.student}", body)


# --------------------------------------------------------------------------- the class


def mistake_kind(note: str) -> str:
    """A diagnosis without its numbers: the same mistake reads the same for every student."""
    text = note.removeprefix("likely: ")
    text = re.split(r" \((?:that gives|your values give)| \(\d|: that is entry", text)[0]
    if text.startswith("does not follow from your values"):
        return "does not follow from the student's values (no named mistake fits)"
    return text


def _scored(grades):
    return [g for g in grades.grades if g.report is not None]


def step_shares(grades) -> tuple[list[str], np.ndarray]:
    """Steps (in derivation order) and, per step, the share of graded students in each verdict
    of ``VERDICTS``."""
    graded = _scored(grades)
    steps: list[str] = []
    for g in graded:
        for s in g.steps:
            if s not in steps:
                steps.append(s)
    shares = np.zeros((len(steps), len(VERDICTS)))
    for i, s in enumerate(steps):
        have = [g.report.verdicts[s] for g in graded if s in g.steps]
        for j, v in enumerate(VERDICTS):
            shares[i, j] = have.count(v) / max(len(have), 1)
    return steps, shares


def top_mistakes(grades, n: int = 10) -> list[tuple[str, str, int, str]]:
    """(step, mistake, students, an example student), most common first."""
    counts: Counter = Counter()
    example: dict[tuple[str, str], str] = {}
    for g in _scored(grades):
        for key in dict.fromkeys((s, mistake_kind(note)) for s, _, note in g.wrong_entries()):
            counts[key] += 1
            example.setdefault(key, g.student)
    return [(s, m, c, example[(s, m)]) for (s, m), c in counts.most_common(n)]


def draw_class_figures(grades, folder: Path) -> list[Path]:
    """``steps.png`` (stacked shares per step) and ``scores.png``; [] without matplotlib."""
    try:
        plt = pyplot()
    except ImportError:
        return []
    graded = _scored(grades)
    if not graded:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    steps, shares = step_shares(grades)
    fig, ax = plt.subplots(figsize=(8, 0.38 * len(steps) + 1.6))
    left = np.zeros(len(steps))
    for j, v in enumerate(VERDICTS):
        ax.barh(range(len(steps)), shares[:, j], left=left, color=COLOURS[v][0], label=v)
        left += shares[:, j]
    ax.set_yticks(range(len(steps)), steps)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"share of the class ({len(graded)} students graded)")
    ax.legend(ncols=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, fontsize=9)
    ax.set_title("Verdict per step", pad=26)
    out = [folder / "steps.png"]
    fig.tight_layout()
    fig.savefig(out[0], dpi=120)
    plt.close(fig)
    scores = [g.score for g in graded]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(scores, bins=np.linspace(0, 100, 11), color="#0969da", edgecolor="white")
    ax.axvline(float(np.median(scores)), color="#1f2328", ls="--", label="median")
    ax.set_xlabel("score (out of 100)")
    ax.set_ylabel("students")
    ax.set_xlim(0, 100)
    ax.legend(frameon=False)
    ax.set_title("Score distribution")
    out.append(folder / "scores.png")
    fig.tight_layout()
    fig.savefig(out[1], dpi=120)
    plt.close(fig)
    return out


def class_report(grades, figures: list[Path], *, figures_wanted: bool = True) -> str:
    """``class_report.md``: scores, verdicts per step, the commonest root mistakes, problems."""
    graded = _scored(grades)
    full = sum(g.fully_graded for g in grades.grades)
    absent = sum(not g.submitted for g in grades.grades)
    handed = len(grades.grades) - absent
    lines = [
        "# Class report",
        "",
        f"{handed} submissions: {full} graded in full, "
        f"{len(graded) - full} graded in part, {handed - len(graded)} not graded"
        + (f"; {absent} student(s) on the roster handed nothing in" if absent else "")
        + f". Graded against {grades.network}.",
        "",
        f"Score rule: {grades.rule.describe()}.",
        "",
    ]
    if figures_wanted and not figures and graded:
        lines += ["(Figures need matplotlib: pip install 'jaxbp[plots]'.)", ""]
    if graded:
        scores = np.array([g.score for g in graded])
        lines += [
            "## Scores",
            "",
            f"Mean {scores.mean():.1f}, median {np.median(scores):.1f}, lowest {scores.min():.1f}, "
            f"highest {scores.max():.1f} (out of 100).",
            "",
        ]
        lines += [f"![score distribution]({p.as_posix()})" for p in figures if p.stem == "scores"]
        edges = np.linspace(0, 100, 11)
        hist, _ = np.histogram(scores, bins=edges)
        lines += [
            "",
            "| score | students |",
            "|---|---:|",
            *(f"| {lo:.0f}-{hi:.0f} | {n} |" for lo, hi, n in zip(edges[:-1], edges[1:], hist)),
            "",
            "## Verdicts per step",
            "",
        ]
        lines += [f"![verdicts per step]({p.as_posix()})" for p in figures if p.stem == "steps"]
        steps, shares = step_shares(grades)
        lines += ["", "| step | " + " | ".join(VERDICTS) + " |", "|---|" + "---:|" * len(VERDICTS)]
        lines += [
            f"| {s} | " + " | ".join(f"{100 * v:.0f}%" for v in row) + " |"
            for s, row in zip(steps, shares)
        ]
        mistakes = top_mistakes(grades)
        lines += ["", "## The most common root mistakes", ""]
        if mistakes:
            lines += ["| # | step | mistake | students | for example |", "|---:|---|---|---:|---|"]
            lines += [
                f"| {i} | {s} | {m} | {c} | {ex} |" for i, (s, m, c, ex) in enumerate(mistakes, 1)
            ]
        else:
            lines.append("No root mistakes: every wrong value follows from an earlier one.")
        lines.append("")
    troubled = [g for g in grades.grades if g.problems]
    if troubled:
        lines += ["## Submissions with problems", ""]
        for g in troubled:
            lines += [f"- **{g.student or '(no id)'}**: " + " / ".join(g.problems)]
        lines.append("")
    lines += ["## Every student", ""]
    header = ["student", "score", *VERDICTS]
    cells = [
        [
            g.student,
            "-" if g.score is None else f"{g.score:.1f}",
            *(str(g.counts()[v]) if g.report is not None else "-" for v in VERDICTS),
        ]
        for g in grades.grades
    ]
    lines += ["```", *text_table(header, cells), "```", ""]
    return "\n".join(lines)
