"""A synthetic class for the seed exercise: hand derivations with planted mistakes.

Each simulated student works the derivation step by step the way the step model
says a student does (each step from the values written before it), rounds what
they write to 2-4 significant figures (some copy a calculator's 7 figures and carry
3), and may make one or two of the classic mistakes; a few leave steps out, and a
few hand in files with problems (a misspelt step, a wrong number of entries, a
word for a number, broken JSON). ``planted.json`` records what was planted, so a
grader can be checked against it.

    python experiments/synthetic_class.py                  # the shipped class, 24 students
    python experiments/synthetic_class.py --students 300 --out /tmp/class300

writes OUT/submissions/<id>.json (one file per student), OUT/pages/<id>.md (the same
derivations as OCR'd handwritten pages: Markdown with LaTeX), OUT/class.csv (the same
class as one CSV with dL/dW1[2,1]-style columns), OUT/roster.txt, OUT/planted.json.
Then: ``jaxbp grade OUT/submissions --out graded/`` (or ``OUT/pages``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path

import jax
import numpy as np

import jaxbp
from jaxbp.internal import Problem, float64_mode, step_specs

ROOT = Path(__file__).resolve().parent


# One classic mistake each: (step it is made in, what is written instead, from the
# exact-in-their-working value v, the student's values so far s and the problem p).
MISTAKES = {
    "bias left out": ("h1", lambda v, s, p: v - np.asarray(p.params[0]["b"])),
    "h(1 - h) for a(1 - a)": ("da1/dh1", lambda v, s, p: s["h1"] * (1 - s["h1"])),
    "sign of dL/do flipped": ("dL/do", lambda v, s, p: -v),
    "z for z - y": ("dL/do", lambda v, s, p: s["z"]),
    "log base 10": ("loss", lambda v, s, p: v / math.log(10)),
    "weight gradient for W x delta": (
        "dL/da1",
        lambda v, s, p: np.broadcast_to(s["dL/dW2"].sum(axis=1)[None, :], v.shape),
    ),
    "activation derivative left out": ("dL/dh1", lambda v, s, p: s["dL/da1"]),
    "transposed entries": ("dL/dW1", lambda v, s, p: _swap(v)),
    "input left out of dL/dW2": (
        "dL/dW2",
        lambda v, s, p: np.broadcast_to(s["dL/do"].sum(axis=0)[None, :], v.shape),
    ),
    "arithmetic slip": ("dL/dW2", lambda v, s, p: v * np.array([[1.0], [1.3]])),
}


def _swap(v):
    flat = v.reshape(-1).copy()
    flat[[0, 1]] = flat[[1, 0]]
    return flat.reshape(v.shape)


def round_sig(v, figures):
    return np.vectorize(lambda e: float(f"{e:.{figures - 1}e}"))(np.asarray(v, np.float64))


def written(v, figures):
    """Values as text with ``figures`` significant figures (the precision they were written with)."""
    return np.vectorize(
        lambda e: np.format_float_positional(e, precision=figures, unique=False, fractional=False),
        otypes=[object],
    )(np.asarray(v, np.float64))


def work(prob, *, figures, carry=None, plants=()):
    """A derivation as a student writes it: {step: text array}. ``carry`` rounds what is
    used downstream (default: what was written)."""
    specs = step_specs(prob)
    seen, text = {}, {}
    for spec in specs:
        with float64_mode():
            v = np.asarray(spec.fn(*[seen[n] for n in spec.inputs]), np.float64)
        for name in plants:
            step, fn = MISTAKES[name]
            if step == spec.name:
                v = np.asarray(fn(v, seen, prob), np.float64)
        text[spec.name] = written(v, figures)
        seen[spec.name] = round_sig(v, carry or figures)
    return text


def make_class(n: int, seed: int = 2026):
    """(students: {id: claimed}, planted: {id: description}) for the seed exercise."""
    ex = jaxbp.seed_exercise(dtype="float64")
    prob = Problem.build(ex.params, ex.x, ex.y, ex.activation, ex.loss)
    rng = np.random.default_rng(seed)
    kinds = sorted(MISTAKES)
    students, planted = {}, {}
    for i in range(n):
        sid = f"s{i + 1:03d}"
        roll = rng.random()
        plants = []
        if roll < 0.55:
            plants = [kinds[rng.integers(len(kinds))]]
        elif roll < 0.7:
            while True:  # two mistakes in different steps that do not undo each other
                plants = [str(k) for k in rng.choice(kinds, 2, replace=False)]
                steps = {MISTAKES[k][0] for k in plants}
                if len(steps) == 2 and steps != {"dL/da1", "dL/dW2"}:
                    break
        figures = int(rng.integers(2, 5))
        carry = 3 if rng.random() < 0.15 else None
        shown = 7 if carry else figures
        claimed = {
            k: v.tolist() for k, v in work(prob, figures=shown, carry=carry, plants=plants).items()
        }
        note = {"mistakes": plants, "figures": shown, "carried": carry or shown, "problems": []}
        extra = rng.random()
        if extra < 0.1:
            for step in ("loss", "dL/dz"):
                claimed.pop(step)
            note["left out"] = ["loss", "dL/dz"]
        elif extra < 0.14:
            claimed["dL/dw2"] = claimed.pop("dL/dW2")
            note["problems"].append("misspelt step dL/dw2")
        elif extra < 0.17:
            claimed["dL/dW1"] = claimed["dL/dW1"][:2]
            note["problems"].append("dL/dW1 has 4 entries, not 6")
        elif extra < 0.2:
            claimed["a1"][0][1] = "about 0.1"
            note["problems"].append("a word for a number in a1")
        students[sid] = claimed
        planted[sid] = note
    return students, planted


# --------------------------------------------------------------------------- pages


def _styled(text: str, style: dict) -> str:
    """A written number as OCR gives it: a unicode minus, a space inside it."""
    text = str(text)
    if text.startswith("-") and style["unicode_minus"]:
        text = "\u2212" + text[1:]
    if style["spaced"] and "." in text and len(text.split(".")[1]) >= 3:
        head, tail = text.split(".")
        text = f"{head}.{tail[:2]} {tail[2:]}"
    return text


def _factor(text: str, style: dict) -> str:
    t = _styled(text, style)
    if t.startswith(("-", "\u2212")):
        return f"\\left({t}\\right)" if style["left_right"] else f"({t})"
    return t


def _matrix(rows, style, env, *, numbers=True) -> str:
    cell = (lambda c: _styled(c, style)) if numbers else str
    body = " \\\\ ".join(" & ".join(cell(c) for c in row) for row in rows)
    if env == "array":
        cols = "c" * len(rows[0])
        return f"\\left[\\begin{{array}}{{{cols}}} {body} \\end{{array}}\\right]"
    return f"\\begin{{{env}}} {body} \\end{{{env}}}"


def page(claimed, prob, plants, rng) -> str:
    """A student's claimed derivation as an OCR'd handwritten page (Markdown with LaTeX),
    in the names the default notation reads; graded, it gives what the JSON gives.

    The variations real pages have: the product sign (``\\cdot``, ``\\times``, ``*``), a
    unicode minus, ``\\left(``/``\\right)``, spaces inside numbers, ``$$``, ``\\[``,
    ``$`` or plain text, bmatrix, pmatrix or array, the steps in another order, and a
    step written twice and corrected. The workings written (the forward pass into the
    hidden units, the output layer's weight gradients) are the student's own arithmetic,
    so an arithmetic slip shows in them.
    """
    style = {
        "times": str(rng.choice(["\\cdot", "\\times", "*"])),
        "unicode_minus": bool(rng.random() < 0.3),
        "left_right": bool(rng.random() < 0.3),
        "spaced": bool(rng.random() < 0.2),
    }
    h, a = [("H", "G(H_{j})"), ("h", "a_{j}"), ("h", "\\sigma(h_{j})"), ("net_{h", "out_{h")][
        int(rng.integers(4))
    ]
    unit = lambda name, j: f"{name}{j}}}" if name.endswith("{h") else f"{name}_{{{j}}}"
    act = lambda j: unit(a, j) if a.endswith("{h") else a.replace("{j}", str(j))
    loss_sym, z_sym, o_sym = (
        ["L", "Z", "O"],
        ["E", "\\hat{y}", "O"],
        ["E_{total}", "out_{o}", "net_{o}"],
    )[int(rng.integers(3))]
    d = lambda num, den: f"\\frac{{\\partial {num}}}{{\\partial {den}}}"
    x, W, b = prob.x[0], prob.params[0]["W"], prob.params[0]["b"]
    blocks = []  # (step, [lines])
    for step, value in claimed.items():
        v = np.asarray(value, object)
        if step in ("h1", "a1", "dL/da1", "da1/dh1", "dL/dh1"):
            lines = []
            for j, text in enumerate(v.reshape(-1), start=1):
                lhs = {
                    "h1": unit(h, j),
                    "a1": act(j),
                    "dL/da1": d(loss_sym, act(j)),
                    "da1/dh1": f"\\frac{{d\\,{act(j)}}}{{d\\,{unit(h, j)}}}",
                    "dL/dh1": d(loss_sym, unit(h, j)),
                }[step]
                working = ""
                if step == "h1" and "bias left out" not in plants:
                    terms = [_styled(f"{b[j - 1]:g}", style)]
                    terms += [
                        f"{_factor(f'{xi:g}', style)} {style['times']} {_factor(f'{W[i, j - 1]:g}', style)}"
                        for i, xi in enumerate(x)
                    ]
                    working = " + ".join(terms) + " = "
                lines.append(f"$${lhs} = {working}{_styled(text, style)}$$")
            blocks.append((step, lines))
        elif step in ("o", "z", "loss", "dL/dz", "dL/do"):
            lhs = {
                "o": o_sym,
                "z": z_sym,
                "loss": loss_sym,
                "dL/dz": d(loss_sym, z_sym),
                "dL/do": d(loss_sym, o_sym),
            }[step]
            text = _styled(v.reshape(-1)[0], style)
            form = int(rng.integers(3))
            line = [f"$${lhs} = {text}$$", f"\\[{lhs} = {text}\\]", f"so ${lhs} = {text}$"][form]
            if step == "o" and rng.random() < 0.5:
                line = f"O = {text}"  # plain text
            blocks.append((step, [line]))
        elif step == "dL/dW2":
            cells = v.reshape(2, 1).tolist()
            if "input left out of dL/dW2" not in plants:
                a1, do = (
                    np.asarray(claimed["a1"], object).reshape(-1),
                    np.asarray(claimed["dL/do"], object).reshape(-1),
                )
                works = [
                    [f"{_factor(a1[j], style)} {style['times']} {_factor(do[0], style)}"]
                    for j in range(2)
                ]
                rhs = f"{_matrix(works, style, 'bmatrix', numbers=False)} = {_matrix(cells, style, 'bmatrix')}"
            else:
                rhs = _matrix(cells, style, "bmatrix")
            blocks.append((step, [f"$${d('L', 'W_2')} = {rhs}$$"]))
        elif step in ("dL/db2", "dL/db1", "dL/dW1"):
            rows = (
                v.reshape(-1, 2 if step == "dL/dW1" else 1).tolist()
                if v.size > 1
                else [[v.reshape(-1)[0]]]
            )
            env = str(rng.choice(["bmatrix", "pmatrix", "array"]))
            rhs = _matrix(rows, style, env) if v.size > 1 else _styled(rows[0][0], style)
            sym = {"dL/db2": "b_2", "dL/db1": "b_1", "dL/dW1": "W_1"}[step]
            blocks.append((step, [f"$${d('L', sym)} = {rhs}$$"]))
    if rng.random() < 0.3 and len(blocks) > 4:  # two steps in another order
        i = int(rng.integers(1, len(blocks) - 1))
        blocks[i], blocks[i + 1] = blocks[i + 1], blocks[i]
    out = ["# Week 9 Q2", ""]
    corrected = rng.random() < 0.25 and any(s == "o" for s, _ in blocks)
    for step, lines in blocks:
        if corrected and step == "o":
            out += ["$$O = 0.7$$", "", "no, redo:", ""]  # written twice: the later is graded
        out += [line for ln in lines for line in (ln, "")]
    return "\n".join(out)


def _shape(step) -> tuple[int, ...]:
    """A step's shape as a report names its entries: with one example, no batch index."""
    v = step.value
    batch_step = not step.name.startswith(("dL/dW", "dL/db", "loss"))
    return v.shape[1:] if batch_step and v.shape[:1] == (1,) else v.shape


def _csv(students) -> str:
    ex = jaxbp.seed_exercise(dtype="float64")
    sol = jaxbp.explain(ex.params, ex.x, ex.y)
    columns = []  # (step, flat position, column name)
    for s in sol.steps:
        shape = _shape(s)
        if s.value.size == 1:
            columns.append((s.name, 0, s.name))
        else:
            columns += [
                (s.name, k, f"{s.name}[{','.join(map(str, idx))}]")
                for k, idx in enumerate(np.ndindex(*shape))
            ]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student"] + [c for _, _, c in columns])
    for sid, claimed in students.items():
        row = [sid]
        for name, k, _ in columns:
            flat = np.asarray(claimed.get(name, []), object).reshape(-1)
            row.append(flat[k] if k < flat.size else "")
        w.writerow(row)
    return buf.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=24)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "class_week9")
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    students, planted = make_class(args.students, args.seed)
    subs = args.out / "submissions"
    subs.mkdir(parents=True, exist_ok=True)
    for sid, claimed in students.items():
        (subs / f"{sid}.json").write_text(json.dumps({"claimed": claimed}, indent=1) + "\n")
    # One file that is not JSON at all, as a class always has.
    (subs / "s000.json").write_text('{"claimed": {"h1": [4, -2], "a1": [0.98, 0.12]\n')
    planted["s000"] = {"mistakes": [], "problems": ["not valid JSON"]}
    ex = jaxbp.seed_exercise(dtype="float64")
    prob = Problem.build(ex.params, ex.x, ex.y, ex.activation, ex.loss)
    pages = args.out / "pages"
    pages.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed + 1)
    for sid, claimed in students.items():
        text = page(claimed, prob, planted[sid]["mistakes"], rng)
        (pages / f"{sid}.md").write_text(text)
    (args.out / "class.csv").write_text(_csv(students))
    (args.out / "roster.txt").write_text("\n".join(["s000", *students]) + "\n")
    (args.out / "planted.json").write_text(json.dumps(planted, indent=1) + "\n")
    print(f"{len(students) + 1} submissions -> {subs}, {args.out / 'class.csv'}")


if __name__ == "__main__":
    main()
