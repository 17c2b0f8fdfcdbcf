"""Grading a hand derivation: a verdict for every entry, the root of every error, a diagnosis.

[`check_derivation`][jaxbp.teach.check_derivation] reads what a student wrote (rounded, partial) and gives
each entry a verdict: ``correct`` (equal to the exact value within the precision
written), ``rounding`` (not exact, but it follows from the student's own values),
``wrong`` (it does not follow: a root error, with the likely mistake), ``inherited``
(it follows from a wrong value upstream, whose step is named), or ``missing``.

"Follows from the student's own values" means: for upstream values anywhere
between what the student wrote and the exact value (a student may carry more
digits than they write), the step's formula gives a value that rounds to what
they wrote. A wrong upstream value is taken as written, give or take its last digit.

Two rules of a careful marker widen that. A value that follows from the upstream
values rounded to 3 or more significant figures (the student's written values, or
the exact ones) is ``rounding``, and the note names the rounding: students copy a
full calculator value and carry 0.679. A claim within one unit of its last written
digit of the exact value, or of what the student's own values give, is never
``wrong`` either -- unless one of the named mistakes below gives exactly what was
written (0.98 x -0.48 written as -0.48 is the weight left out, not a rounding).

Steps and their formulas come from the step model (``_steps``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import jax
import numpy as np

from ..nn._tree import Params
from ..util._dtypes import float64_mode
from ..util._text import table as text_table
from ._claims import (
    as_written,
    claim_entries,
    fmt_distinct,
    fmt_value,
    read_claim,
    round_sig,
    slack,
)
from ._mistakes import alternatives, diagnose, named_mistake
from ._steps import Problem, StepSpec, step_specs, unknown_step
from ._textread import evaluate

__all__ = [
    "VERDICTS",
    "DerivationReport",
    "check_derivation",
    "claim_entries",
    "fmt_distinct",
    "shown_values",
]

VERDICTS = ("correct", "rounding", "inherited", "wrong", "missing")
"""Every verdict an entry can get, in the one order reports, files and figures list them:
the written ones mildest first (a step's verdict is its worst written entry's), then
``missing``."""


@dataclasses.dataclass(frozen=True)
class DerivationReport:
    """What [`check_derivation`][jaxbp.teach.check_derivation] found, step by step and entry by entry.

    Attributes:
      verdicts: step name -> the worst verdict of its entries (``missing`` if not claimed).
      entry_verdicts: step name -> array of per-entry verdicts, in the step's shape.
      expected: step name -> the exact value.
      claimed: step name -> what was claimed (NaN where not written).
      own: step name -> the value the student's own upstream values give.
      diagnoses: step name -> array of per-entry explanations ("" where none is needed).
      roots: step name -> array of the root step names of inherited errors.
    """

    names: tuple[str, ...]
    batch_steps: frozenset[str]  # steps with a leading batch axis
    batch: int
    verdicts: dict[str, str]
    entry_verdicts: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    claimed: dict[str, np.ndarray]
    own: dict[str, np.ndarray]
    diagnoses: dict[str, np.ndarray]
    roots: dict[str, np.ndarray]
    claimed_units: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    slips: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    sources: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def slip(self, step: str, idx) -> bool:
        """True for a wrong entry whose working is right: an arithmetic slip."""
        return bool(step in self.slips and self.slips[step][idx])

    def source(self, step: str, idx) -> str:
        """The line the entry was read from (``"line 36: ..."``), or ``""``."""
        return str(self.sources[step][idx] or "") if step in self.sources else ""

    @property
    def ok(self) -> bool:
        """True when at least one step was graded and none is wrong or inherits an error.

        Nothing claimed is not a pass: an empty derivation is not ``ok``.
        """
        if not self.graded:
            return False
        return not any(v in ("wrong", "inherited") for v in self.verdicts.values())

    @property
    def graded(self) -> tuple[str, ...]:
        """The steps with at least one entry claimed."""
        return tuple(n for n in self.names if self.verdicts[n] != "missing")

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if self.verdicts[n] == "missing")

    @property
    def wrong(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if self.verdicts[n] == "wrong")

    def counts(self) -> dict[str, int]:
        return {v: sum(1 for n in self.names if self.verdicts[n] == v) for v in VERDICTS}

    def rows(self) -> list[dict[str, Any]]:
        """One row per claimed entry (and one per missing step), for tables and JSON."""
        out = []
        for n in self.names:
            if self.verdicts[n] == "missing" and np.all(np.isnan(self.claimed[n])):
                out.append(
                    {
                        "step": n,
                        "entry": "",
                        "verdict": "missing",
                        "claimed": None,
                        "expected": fmt_value(self.expected[n]),
                        "from_your_values": None,
                        "note": "",
                        "slip": False,
                        "line": "",
                    }
                )
                continue
            for idx, verdict in np.ndenumerate(self.entry_verdicts[n]):
                shown = idx[1:] if (n in self.batch_steps and self.batch == 1) else idx
                entry = "" if self.entry_verdicts[n].size == 1 else str(list(shown))
                c = self.claimed[n][idx]
                half = self.claimed_units[n][idx] if n in self.claimed_units else np.nan
                out.append(
                    {
                        "step": n,
                        "entry": entry,
                        "verdict": str(verdict),
                        "claimed": None if np.isnan(c) else float(c),
                        "written": None if np.isnan(c) else as_written(float(c), half),
                        "expected": float(self.expected[n][idx]),
                        "from_your_values": float(self.own[n][idx]),
                        "note": str(self.diagnoses[n][idx]),
                        "slip": self.slip(n, idx),
                        "line": self.source(n, idx),
                    }
                )
        return out

    def __str__(self) -> str:
        rows = self.rows()
        header = ["step", "entry", "verdict", "claimed", "exact", "from your values", "note"]
        cells = [[r["step"], r["entry"], r["verdict"], *shown_values(r), r["note"]] for r in rows]
        counts = self.counts()
        summary = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
        lines = [
            *text_table(header, cells, ragged_last=True),
            "",
            f"steps: {summary}. "
            + (
                "Nothing was claimed: nothing to grade."
                if not self.graded
                else "No errors."
                if self.ok
                else f"Root errors: {', '.join(self.wrong) or 'none'}."
            ),
        ]
        return "\n".join(lines)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(
            {"ok": self.ok, "verdicts": self.verdicts, "rows": self.rows()}, indent=indent
        )


def shown_values(row: Mapping[str, Any]) -> tuple[str, str, str]:
    """A row's claimed (as written), exact and from-your-values numbers as text, the last
    two with the digits that tell them apart from the others."""
    c, e, o = row["claimed"], row["expected"], row["from_your_values"]
    if isinstance(e, str):  # a whole step missing: its exact value, already written out
        return "", e, ""
    written = row.get("written")
    return (
        "" if c is None else written or fmt_distinct(c, e, o),
        fmt_distinct(e, c, o),
        "" if o is None else fmt_distinct(o, c, e),
    )


@functools.partial(jax.jit, static_argnums=0)
def _value(op, inputs, consts):
    return op(*inputs, *consts)


@functools.partial(jax.jit, static_argnums=0)
def _value_and_jacobians(op, inputs, consts):
    f = lambda *v: op(*v, *consts)
    return f(*inputs), jax.jacfwd(f, argnums=tuple(range(len(inputs))))(*inputs)


def step_value(spec: StepSpec, inputs) -> np.ndarray:
    """The step's value from its inputs' values, in float64: one compiled program per
    step form and shapes, shared by every student and problem."""
    with float64_mode():
        args = tuple(np.asarray(v, np.float64) for v in inputs)
        return np.asarray(_value(spec.op, args, spec.consts), np.float64)


def _propagate(spec: StepSpec, mids, rads):
    """Value at the midpoints and a first-order bound on its spread over the boxes."""
    if not mids:
        center = step_value(spec, ())
        return center, np.zeros_like(center), []
    with float64_mode():
        args = tuple(np.asarray(m, np.float64) for m in mids)
        center, jac = _value_and_jacobians(spec.op, args, spec.consts)
    center = np.asarray(center, np.float64)
    rad = np.zeros_like(center)
    deps = []
    for J, r in zip(jac, rads):
        J = np.abs(np.asarray(J, np.float64)).reshape(center.size, -1)
        rad = rad + (J @ np.asarray(r).reshape(-1)).reshape(center.shape)
        deps.append(J > 0)
    return center, rad, deps


def _rounded_upstream(spec: StepSpec, carried: _Carried, exact) -> list[tuple[str, np.ndarray]]:
    """What the step gives from its inputs rounded to 3-6 significant figures: every input
    rounded, or one at a time; from the student's written values, then from the exact ones.
    Ties are tried both ways: 0.86549996 written as 0.8655000 may have been carried as 0.865."""
    if not spec.inputs:
        return []
    groups = [spec.inputs] + ([(n,) for n in spec.inputs] if len(spec.inputs) > 1 else [])
    out = []
    for source, values in (("your", carried.written), ("the exact", exact)):
        for figures in (3, 4, 5, 6):
            for group in groups:
                for ties in ("up", "down"):
                    r = {n: round_sig(values[n], figures, ties=ties) for n in group}
                    if ties == "down" and all(
                        np.array_equal(r[n], round_sig(values[n], figures)) for n in group
                    ):
                        continue  # no tie: the same as rounding ties up
                    args = [r.get(n, values[n]) for n in spec.inputs]
                    got = step_value(spec, args)
                    small = sum(r[n].size for n in group) <= 6
                    one = lambda v: v[0] if v.ndim > 1 and v.shape[0] == 1 else v
                    shown = (
                        " (" + "; ".join(f"{n} = {fmt_value(one(r[n]))}" for n in group) + ")"
                        if small
                        else ""
                    )
                    out.append(
                        (
                            f"{source} {' and '.join(group)} rounded to {figures} significant "
                            f"figures{shown}",
                            got,
                        )
                    )
    out += _rounded_through_unwritten(spec, carried, exact)
    return out


def _rounded_through_unwritten(spec, carried, exact) -> list[tuple[str, np.ndarray]]:
    """What the step gives from the nearest written values upstream rounded to 3-6
    significant figures and carried through the steps not written: a1 written in full,
    o not written, z worked from a1 carried as 0.679."""
    top, between = carried.ancestors(spec)
    if not between:
        return []
    out = []
    for source, values in (("your", carried.written), ("the exact", exact)):
        for figures in (3, 4, 5, 6):
            held = {n: round_sig(values[n], figures) for n in top}
            for n in between:  # upstream first
                s = carried.specs[n]
                held[n] = step_value(s, [held[m] for m in s.inputs])
            got = step_value(spec, [held[m] for m in spec.inputs])
            out.append(
                (
                    f"{source} {' and '.join(top)} rounded to {figures} significant figures, "
                    f"carried through {', '.join(between)} (not written)",
                    got,
                )
            )
    return out


@dataclasses.dataclass
class _Carried:
    """What the student carries from the steps graded so far.

    ``mid +- rad``: the box of values the student may hold (for right-ish values,
    anywhere between what was written and the exact value; for wrong ones, what was
    written give or take its last digit); ``written``: what was written, or computed
    from what was written where nothing was; ``root``: per entry, the wrong entries
    upstream that it depends on, as (step, index) pairs.
    """

    mid: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    rad: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    written: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    root: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    specs: dict[str, StepSpec] = dataclasses.field(default_factory=dict)
    unwritten: set[str] = dataclasses.field(default_factory=set)  # steps with no entry claimed

    def ancestors(self, spec: StepSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(the nearest written steps upstream of ``spec``, the unwritten steps between)."""
        written, between = {}, {}

        def visit(name):
            if name in self.unwritten and name in self.specs:
                between[name] = None
                for m in self.specs[name].inputs:
                    visit(m)
            else:
                written[name] = None

        for n in spec.inputs:
            visit(n)
        return tuple(written), tuple(reversed(between))


def _upstream_roots(spec: StepSpec, shape, deps, carried: _Carried) -> np.ndarray:
    """Per entry: the roots of wrong values upstream that the entry depends on."""
    up = np.empty(shape, object)
    for idx in np.ndindex(shape):
        found = frozenset()
        for n, dep in zip(spec.inputs, deps):
            row = dep[np.ravel_multi_index(idx, shape) if shape else 0]
            for k in np.flatnonzero(row):
                found |= carried.root[n].reshape(-1)[k]
        up[idx] = found
    return up


def _inherited_note(pairs, carried: _Carried, batch: int, names) -> str:
    """Which of the student's earlier values an inherited entry was computed from:
    "follows from your dL/da1[1] = -0.06, which is wrong"."""
    shown = []
    for n, idx in sorted(pairs, key=lambda p: (names.index(p[0]), p[1])):
        batch_step = carried.specs[n].kind not in ("dL/dW", "dL/db", "loss")
        entry = idx[1:] if batch_step and batch == 1 else idx
        where = f"[{', '.join(map(str, entry))}]" if carried.written[n].size > 1 else ""
        shown.append(f"{n}{where} = {fmt_distinct(carried.written[n][idx])}")
    more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
    these = ", ".join(shown[:3]) + more
    return f"follows from your {these}, which {'is' if len(shown) == 1 else 'are'} wrong"


_UNCLAIMED = object()  # a step not in the claim at all (None is an entry not written)


def _grade_step(spec, prob, claim, exact, carried: _Carried, names) -> dict[str, Any]:
    """Grade every entry of one step against the exact value and the student's own values."""
    # One loop over the entries holds the marking rules in the order a marker applies
    # them (written? follows? rounded upstream? a named mistake? within a unit?): kept
    # whole so that the rules read top to bottom.
    E = exact[spec.name]
    center, own_rad, deps = _propagate(
        spec, [carried.mid[n] for n in spec.inputs], [carried.rad[n] for n in spec.inputs]
    )
    own = step_value(spec, [carried.written[n] for n in spec.inputs])
    up_roots = _upstream_roots(spec, E.shape, deps, carried)
    if claim is not _UNCLAIMED:
        C, HU = read_claim(spec.name, claim, E.shape)
    else:
        C, HU = np.full(E.shape, np.nan), np.full(E.shape, np.nan)
    verdicts = np.full(E.shape, None, object)
    notes = np.full(E.shape, "", object)
    roots = np.empty(E.shape, object)
    m, r = np.array(center, np.float64), np.array(own_rad, np.float64)
    mistakes = rounded = None
    for idx in np.ndindex(E.shape):
        c, hu = C[idx], HU[idx]
        if np.isnan(c):
            verdicts[idx], roots[idx] = "missing", up_roots[idx]
            continue
        tol = hu * (1 + 1e-9) + slack(c, E[idx], own[idx])
        unit = tol + hu  # one unit of the last digit written
        # Within the box of values the student may carry, or exactly what the written values give.
        box = max(abs(c - center[idx]) - own_rad[idx], 0.0)
        follows = box <= tol or abs(c - own[idx]) <= tol
        note = ""
        if not follows and abs(c - E[idx]) > tol:
            if rounded is None:
                rounded = _rounded_upstream(spec, carried, exact)
            how = next((t for t, v in rounded if abs(v[idx] - c) <= tol), None)
            if how is not None:
                follows, note = True, f"follows from {how}"
            elif min(box, abs(c - own[idx]), abs(c - E[idx])) <= unit:
                if mistakes is None:
                    mistakes = alternatives(spec, prob, carried.written, exact)
                if named_mistake(idx, c, tol, own, mistakes) is not None:
                    pass  # a named mistake gives exactly what was written: wrong
                elif abs(c - E[idx]) <= unit:
                    verdicts[idx], roots[idx] = "rounding", frozenset()
                    notes[idx] = (
                        "within one unit of its last digit of the exact value "
                        f"({fmt_distinct(E[idx], c)})"
                    )
                else:
                    follows = True
                    note = "within one unit of its last digit of what your values give"
        if verdicts[idx] is not None:
            pass
        elif abs(c - E[idx]) <= tol:
            verdicts[idx], roots[idx] = "correct", frozenset()
        elif follows and up_roots[idx]:
            verdicts[idx], roots[idx] = "inherited", up_roots[idx]
            notes[idx] = _inherited_note(up_roots[idx], carried, prob.batch, names)
        elif follows:
            verdicts[idx], roots[idx] = "rounding", frozenset()
            notes[idx] = (
                f"{note or 'follows from your rounded values'} (exact {fmt_distinct(E[idx], c)})"
            )
        else:
            verdicts[idx], roots[idx] = "wrong", frozenset([(spec.name, idx)])
            if mistakes is None:
                mistakes = alternatives(spec, prob, carried.written, exact)
            notes[idx] = diagnose(spec, idx, c, hu, exact, own, mistakes)
        if verdicts[idx] in ("correct", "rounding"):
            m[idx], r[idx] = (c + E[idx]) / 2, abs(c - E[idx]) / 2
        else:
            m[idx], r[idx] = c, hu
    carried.mid[spec.name], carried.rad[spec.name], carried.root[spec.name] = m, r, roots
    carried.written[spec.name] = np.where(np.isnan(C), own, C)
    if np.all(np.isnan(C)):
        carried.unwritten.add(spec.name)
    present = [v for v in verdicts.reshape(-1) if v != "missing"] or ["missing"]
    claimed_any = not np.all(np.isnan(C))
    return {
        "verdicts": max(present, key=VERDICTS.index) if claimed_any else "missing",
        "entry_verdicts": verdicts.astype(str),
        "claimed": C,
        "claimed_units": HU,
        "own": own,
        "diagnoses": notes.astype(str),
        "roots": np.vectorize(
            lambda s: ", ".join(sorted({n for n, _ in s}, key=names.index)), otypes=[object]
        )(roots).astype(str),
    }


def _grid(value, shape) -> np.ndarray:
    """A nested list (or one value) as an object array of ``shape``; ``None`` where absent."""
    out = np.full(shape, None, object)
    flat = np.array(value if value is not None else [None], dtype=object).reshape(-1)
    if flat.size == out.size:
        out.reshape(-1)[:] = flat
    return out


def _slips(report, claimed, workings, grade) -> dict[str, np.ndarray]:
    """Per step, the wrong entries whose working is right: what the working comes to
    follows from the student's values, but the value written does not (an arithmetic slip)."""
    slips = {}
    for n in report.names:
        if n not in workings:
            continue
        shape = report.expected[n].shape
        works, flags = _grid(workings[n], shape), np.zeros(shape, bool)
        swapped = _grid(claimed.get(n), shape)
        candidates = []
        for idx in np.ndindex(shape):
            got = evaluate(works[idx])
            c, half = report.claimed[n][idx], report.claimed_units[n][idx]
            if report.entry_verdicts[n][idx] == "wrong" and got is not None and abs(got - c) > half:
                exponent = Decimal(str(2 * half)).normalize().as_tuple().exponent
                swapped[idx] = Decimal(repr(got)).quantize(Decimal(1).scaleb(exponent))
                candidates.append(idx)
        if candidates:
            again = grade({**claimed, n: swapped.tolist()})
            for idx in candidates:
                flags[idx] = again.entry_verdicts[n][idx] in ("correct", "rounding", "inherited")
        slips[n] = flags
    return slips


def check_derivation(
    params: Params,
    x,
    y,
    claimed: Mapping[str, Any],
    *,
    activation="sigmoid",
    loss: str = "bce",
    workings: Mapping[str, Any] | None = None,
    sources: Mapping[str, Any] | None = None,
) -> DerivationReport:
    """Grade a hand derivation, step by step and entry by entry.

    Args:
      params: the network the derivation is about.
      x: its batch of inputs.
      y: its labels.
      activation: hidden activation name(s).
      loss: the loss name.
      claimed: step name -> number or nested list, as the student wrote it
        (see [`step_names`][jaxbp.teach.step_names]; ``None`` for an entry not written). Precision is
        read from the digits written: ``0.52`` is taken as ``0.52 +- 0.005``. Use
        strings or ``decimal.Decimal`` to keep trailing zeros (``"0.50"``).
      workings: step name -> the working of each entry as written (LaTeX or plain
        arithmetic such as ``"0.98 \\cdot (-0.48)"``; ``None`` where none), shaped as
        ``claimed``. A wrong entry whose working comes to a value that follows from the
        student's own values is an arithmetic slip (``report.slips``), and its note says so.
      sources: step name -> the line each entry was read from, quoted in the notes.

    Returns:
      [`DerivationReport`][jaxbp.teach.DerivationReport] (``.verdicts``, ``.entry_verdicts``, ``.ok``; ``print`` it).

    Examples:
      >>> from jaxbp import seed_exercise
      >>> ex = seed_exercise()
      >>> report = check_derivation(ex.params, ex.x, ex.y, {"h1": [4, -2], "a1": [0.98, 0.12], "z": 0.52})
      >>> report.verdicts["a1"], report.verdicts["z"], report.verdicts["o"]
      ('correct', 'rounding', 'missing')
    """
    if not isinstance(claimed, Mapping):
        raise TypeError(
            f"claimed must be a mapping of step names to values; got {type(claimed).__name__}"
        )
    prob = Problem.build(params, x, y, activation, loss)
    specs = step_specs(prob)
    names = tuple(s.name for s in specs)
    for name in claimed:
        if name not in names:
            raise ValueError(unknown_step(name, names))
    exact = prob.exact_values(activation)
    carried = _Carried(specs={s.name: s for s in specs})
    out = {
        k: {}
        for k in (
            "verdicts", "entry_verdicts", "claimed", "claimed_units", "own", "diagnoses", "roots"
        )
    }  # fmt: skip
    for spec in specs:
        graded = _grade_step(spec, prob, claimed.get(spec.name, _UNCLAIMED), exact, carried, names)
        for k, v in graded.items():
            out[k][spec.name] = v
    batch_steps = frozenset(s.name for s in specs if s.kind not in ("dL/dW", "dL/db", "loss"))
    report = DerivationReport(
        names=names, batch_steps=batch_steps, batch=prob.batch, expected=exact, **out
    )
    if not workings and not sources:
        return report
    grade = lambda c: check_derivation(params, x, y, c, activation=activation, loss=loss)
    slips = _slips(report, claimed, workings or {}, grade)
    lines = {n: _grid(v, exact[n].shape) for n, v in (sources or {}).items() if n in exact}
    for n, flags in slips.items():
        works = _grid(workings[n], exact[n].shape)
        for idx in filter(flags.__getitem__, np.ndindex(flags.shape)):
            got = evaluate(works[idx])
            out["diagnoses"][n][idx] = (
                f"an arithmetic slip: your working {works[idx]} comes to {fmt_distinct(got, report.claimed[n][idx])}, "
                f"not {as_written(report.claimed[n][idx], report.claimed_units[n][idx])}; its factors follow "
                "from your values"
            )
    return dataclasses.replace(report, slips=slips, sources=lines)
