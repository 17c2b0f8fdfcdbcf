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

writes OUT/submissions/<id>.json (one file per student), OUT/class.csv (the same
class as one CSV with dL/dW1[2,1]-style columns), OUT/roster.txt, OUT/planted.json.
Then: ``jaxbp grade OUT/submissions --out graded/``.
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
    (args.out / "class.csv").write_text(_csv(students))
    (args.out / "roster.txt").write_text("\n".join(["s000", *students]) + "\n")
    (args.out / "planted.json").write_text(json.dumps(planted, indent=1) + "\n")
    print(f"{len(students) + 1} submissions -> {subs}, {args.out / 'class.csv'}")


if __name__ == "__main__":
    main()
