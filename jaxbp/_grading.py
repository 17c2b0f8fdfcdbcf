"""Grading a hand derivation: a verdict for every entry, the root of every error, a diagnosis.

:func:`check_derivation` reads what a student wrote (rounded, partial) and gives
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

Steps and their formulas come from the step model (``_steps``). This module knows
nothing of rendering worked solutions, training, files, plots or the command line.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._dtypes import float64_mode
from ._losses import resolve_loss
from ._steps import Problem, StepSpec, step_specs, unknown_step
from ._text import table as text_table
from ._tree import Params

__all__ = ["VERDICTS", "DerivationReport", "check_derivation"]

VERDICTS = ("correct", "rounding", "missing", "inherited", "wrong")  # mildest first


# --------------------------------------------------------------------------- reading claims


def _half_ulp(d: Decimal) -> float:
    """Half a unit in the last written place: 0.1 -> 0.05, -0.0094 -> 0.00005, 4 -> 0.5."""
    return 0.5 * 10.0 ** d.as_tuple().exponent


def _as_decimal(v, where: str) -> Decimal | None:
    if v is None:
        return None
    if isinstance(v, bool):
        raise TypeError(f"{where} must be a number; got {v!r}")
    if isinstance(v, Decimal):
        d = v
    elif isinstance(v, (int, np.integer)):
        d = Decimal(int(v))
    elif isinstance(v, (float, np.floating)):
        # repr gives the shortest digits that round-trip: what the student wrote.
        d = Decimal(repr(float(v)))
    elif isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            raise TypeError(f"{where} must be a number; got the string {v!r}") from None
    else:
        raise TypeError(f"{where} must be a number; got {type(v).__name__} {v!r}"[:200])
    if not d.is_finite():
        raise ValueError(f"{where} must be finite; got {v!r}")
    return d


def _flatten_claim(value, where: str) -> list:
    if isinstance(value, np.ndarray):
        return [*value.reshape(-1).tolist()] if value.dtype != object else list(value.reshape(-1))
    if isinstance(value, (list, tuple)):
        out = []
        for i, v in enumerate(value):
            out += _flatten_claim(v, f"{where}[{i}]")
        return out
    return [value]


def _read_claim(name: str, value, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(values, half-ulps) in the step's shape; NaN where an entry is None (not written)."""
    flat = _flatten_claim(value, f"claimed[{name!r}]")
    size = int(np.prod(shape)) if shape else 1
    if len(flat) != size:
        raise ValueError(
            f"claimed[{name!r}] must have {size} entr{'y' if size == 1 else 'ies'} (shape {shape}, read row by "
            f"row); got {len(flat)}"
        )
    vals, hus = np.full(size, np.nan), np.full(size, np.nan)
    for i, v in enumerate(flat):
        d = _as_decimal(v, f"claimed[{name!r}]" + (f" entry {i}" if size > 1 else ""))
        if d is not None:
            vals[i], hus[i] = float(d), _half_ulp(d)
    return vals.reshape(shape), hus.reshape(shape)


def claim_entries(name: str, value, shape: tuple[int, ...]) -> tuple[list | None, list[str]]:
    """A step's claim as a flat list (row by row; ``None`` where not written or not a number)
    and one line per entry that could not be read; ``None`` when the number of entries is wrong."""
    flat = _flatten_claim(value, f"claimed[{name!r}]")
    size = int(np.prod(shape)) if shape else 1
    if len(flat) != size:
        return None, [
            f"step {name!r} must have {size} entr{'y' if size == 1 else 'ies'} (shape {shape}, "
            f"read row by row); got {len(flat)}; not graded"
        ]
    out, problems = [], []
    for i, v in enumerate(flat):
        try:
            out.append(_as_decimal(v, f"step {name!r}" + (f" entry {i}" if size > 1 else "")))
        except (TypeError, ValueError) as e:
            out.append(None)
            problems.append(f"{e}; left unwritten")
    return out, problems


@dataclasses.dataclass(frozen=True)
class DerivationReport:
    """What :func:`check_derivation` found, step by step and entry by entry.

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
                        "expected": _fmt_value(self.expected[n]),
                        "from_your_values": None,
                        "note": "",
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
                        "written": None if np.isnan(c) else _as_written(float(c), half),
                        "expected": float(self.expected[n][idx]),
                        "from_your_values": float(self.own[n][idx]),
                        "note": str(self.diagnoses[n][idx]),
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


def _as_written(value: float, half_unit: float) -> str:
    """A claimed value with the decimal places it was written with (0.9820, not 0.982)."""
    if not np.isfinite(half_unit) or half_unit <= 0:
        return f"{value:.6g}"
    places = -round(math.log10(2 * half_unit))
    return f"{value:.{max(places, 0)}f}"


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


def _fmt_value(v: np.ndarray) -> str:
    return np.array2string(np.asarray(v), precision=6, separator=", ").replace("\n", "")


def fmt_distinct(value: float, *others: float) -> str:
    """``value`` with enough significant digits (at least 6) to tell it apart from each
    of ``others`` that differs from it: "0.1643344" beside "0.1643338", not "0.164334" twice."""
    value = float(value)
    # Values equal to 12 figures are float64 noise apart (0.1 and 0.1000000000000001).
    rest = [
        float(o)
        for o in others
        if o is not None and np.isfinite(o) and f"{float(o):.12g}" != f"{value:.12g}"
    ]
    p = 6
    while p < 12 and any(f"{value:.{p}g}" == f"{o:.{p}g}" for o in rest):
        p += 1
    return f"{value:.{p}g}"


def _slack(*vals) -> float:
    """Room for float64 rounding when comparing decimals with computed values."""
    return 1e-12 * max([1.0] + [float(np.max(np.abs(v))) for v in vals if np.size(v)])


def _propagate(fn, mids, rads):
    """Value at the midpoints and a first-order bound on its spread over the boxes."""
    with float64_mode():
        mids = [jnp.asarray(m, jnp.float64) for m in mids]
        center = np.asarray(fn(*mids), np.float64)
        if not mids:
            return center, np.zeros_like(center), []
        jac = jax.jacfwd(fn, argnums=tuple(range(len(mids))))(*mids)
    rad = np.zeros_like(center)
    deps = []
    for J, r in zip(jac, rads):
        J = np.abs(np.asarray(J, np.float64)).reshape(center.size, -1)
        rad = rad + (J @ np.asarray(r).reshape(-1)).reshape(center.shape)
        deps.append(J > 0)
    return center, rad, deps


# --------------------------------------------------------------------------- likely mistakes
# One function per kind of step: (description, value computed that mistaken way), from
# the student's values through ``get``; ``exact`` holds the exact values.


def _alt_affine(spec, prob, get, exact):
    a = prob.x if spec.layer == 1 else get(f"a{spec.layer - 1}")
    W = prob.params[spec.layer - 1]["W"]
    return [("the bias was left out (the bias input 1 was forgotten)", a @ W)]


def _alt_activation(spec, prob, get, exact):
    return [
        ("the activation was not applied (the pre-activation itself was used)", get(spec.inputs[0]))
    ]


def _alt_local(spec, prob, get, exact):
    src = get(spec.inputs[0])
    act = prob.acts[spec.layer - 1].name
    if act == "sigmoid":
        h = get(f"h{spec.layer}")
        return [
            (
                "h(1 - h) was used: the derivative a(1 - a) takes the activation a, not h",
                h * (1 - h),
            ),
            ("the activation a itself was used instead of its derivative a(1 - a)", src),
        ]
    if act == "tanh":
        return [("1 - a was used instead of 1 - a^2", 1 - src)]
    return []


def _other_convention(prob: Problem, exact, name):
    """For squared errors: the value in the other convention, by name (a factor 2)."""
    c = resolve_loss(prob.loss).squared
    if c is None:
        return []
    other = {"mse": "half_mse", "half_mse": "mse", "mse_linear": "half_mse_linear"}.get(
        prob.loss, "mse_linear"
    )
    what = "1/2 (out - y)^2" if c == 1.0 else "(out - y)^2 without the 1/2"
    return [
        (
            f"the other convention for the squared error, {what} (loss {other!r}): a factor 2",
            exact[name] * (0.5 if c == 1.0 else 2.0),
        )
    ]


def _alt_dz(spec, prob, get, exact):
    z, y, B = get("z"), prob.y, prob.batch
    if prob.loss != "bce":
        return _other_convention(prob, exact, "dL/dz")
    return [("the derivative was written without the minus sign", -(z - y) / (z * (1 - z)) / B)]


def _alt_do(spec, prob, get, exact):
    y, B = prob.y, prob.batch
    out = _other_convention(prob, exact, "dL/do")
    if resolve_loss(prob.loss).uses_probability:
        z = get("z")
        out.append(("z was used where z - y belongs", z / B))
        if prob.loss == "bce":
            out.append(
                ("dL/dz was not multiplied by dz/do = z(1 - z)", (z - y) / (z * (1 - z)) / B)
            )
    if B > 1:
        out.append(
            (f"the mean over the batch was left out (no division by {B})", exact["dL/do"] * B)
        )
    return out


def _alt_dW(spec, prob, get, exact):
    l = spec.layer
    d = get(spec.inputs[-1])
    a = prob.x if l == 1 else get(f"a{l - 1}")
    shape = (a.shape[1], d.shape[1])
    out = [
        (
            "the current value (the input of the weight) was left out: this is the backward "
            "gradient alone",
            np.broadcast_to(np.sum(d, axis=0)[None, :], shape),
        ),
        (
            "the backward gradient was left out: this is the current value alone",
            np.broadcast_to(np.sum(a, axis=0)[:, None], shape),
        ),
    ]
    if l < prob.n_layers:
        out.append(
            (
                f"dL/da{l} was used where dL/dh{l} belongs (the activation derivative was left out)",
                a.T @ get(f"dL/da{l}"),
            )
        )
    return out


def _alt_db(spec, prob, get, exact):
    d = get(spec.inputs[-1])
    return [("the bias gradient was set to 0 (the bias input is 1, not 0)", np.zeros_like(d[0]))]


def _alt_da(spec, prob, get, exact):
    l = spec.layer + 1
    dW, d = get(f"dL/dW{l}"), get(spec.inputs[0])
    return [
        (
            f"a weight gradient (dL/dW{l}) was used in place of the weight times the backward "
            f"gradient (W{l} x {spec.inputs[0]})",
            np.broadcast_to(np.sum(dW, axis=1)[None, :], d.shape[:1] + dW.shape[:1]),
        ),
        (
            f"the weight W{l} was left out (the backward gradient alone)",
            np.broadcast_to(np.sum(d, axis=1)[:, None], (d.shape[0], dW.shape[0])),
        ),
    ]


def _alt_dh(spec, prob, get, exact):
    k = spec.layer
    da = get(f"dL/da{k}")
    return [
        (f"the activation derivative da{k}/dh{k} was left out", da),
        (f"the activation a{k} was used in place of its derivative", da * get(f"a{k}")),
    ]


def _alt_loss(spec, prob, get, exact):
    if prob.loss != "bce":
        return _other_convention(prob, exact, "loss")
    z, y, B = get("z"), prob.y, prob.batch
    bce = -np.sum(y * np.log(z) + (1 - y) * np.log(1 - z)) / B
    return [
        ("log base 10 was used instead of the natural log", bce / math.log(10)),
        ("the minus sign was left out", -bce),
    ]


_ALTERNATIVES = {
    "h": _alt_affine,
    "o": _alt_affine,
    "a": _alt_activation,
    "z": _alt_activation,
    "da/dh": _alt_local,
    "dL/dz": _alt_dz,
    "dL/do": _alt_do,
    "dL/dW": _alt_dW,
    "dL/db": _alt_db,
    "dL/da": _alt_da,
    "dL/dh": _alt_dh,
    "loss": _alt_loss,
}


def _alternatives(spec: StepSpec, prob: Problem, written, exact):
    """Likely mistakes for a step, each computed from the student's written values and
    from the exact ones."""
    out: list[tuple[str, np.ndarray]] = []
    # Also from the written values as carried to 3 figures: a student may write 7 and carry 3.
    carried3 = {n: round_sig(v, 3) for n, v in written.items()}
    for v in (written, exact, carried3):
        out += _ALTERNATIVES[spec.kind](spec, prob, lambda n, v=v: v[n], exact)
    return out


def _named_mistake(idx, c, tol, own, alternatives) -> str | None:
    """The first named mistake that gives what was written, within ``tol``."""
    for text, alt in alternatives:
        alt = np.asarray(alt, np.float64)
        if alt.shape == own.shape and abs(alt[idx] - c) <= tol:
            return f"likely: {text} (that gives {fmt_distinct(alt[idx], c)})"
    return None


def _diagnose(spec, idx, c, hu, exact, own, alternatives) -> str:
    # A likely mistake needs to match to about 3 significant figures, not to every digit
    # written: a student who writes 7 figures may carry 3.
    tol = max(hu * (1 + 1e-9), 5e-4 * abs(c)) + _slack(c)
    named = _named_mistake(idx, c, tol, own, alternatives)
    if named:
        return named
    if abs(-own[idx] - c) <= tol and own[idx] != 0:
        return f"likely: the sign is flipped (your values give {fmt_distinct(own[idx], c)})"
    for other, val in np.ndenumerate(own):
        if other != idx and abs(val - c) <= tol and val != own[idx]:
            return (
                f"likely: a swapped or transposed index: that is entry {list(other)}'s value "
                f"({fmt_distinct(val, c)})"
            )
    inputs = ", ".join(f"{n}" for n in spec.inputs) or "the network's inputs"
    E = exact[spec.name][idx]
    return (
        f"does not follow from your values ({inputs}): they give {fmt_distinct(own[idx], c, E)}; "
        f"exact {fmt_distinct(E, c, own[idx])}"
    )


def round_sig(v, figures: int, *, ties: str = "up") -> np.ndarray:
    """``v`` rounded to ``figures`` significant figures, entry by entry (0 stays 0); a tie
    (0.8655 to 3 figures) goes away from zero with ``ties="up"``, towards it with ``"down"``."""
    v = np.asarray(v, np.float64)
    safe = np.where(v == 0, 1.0, np.abs(v))
    scale = 10.0 ** (figures - 1 - np.floor(np.log10(safe)))
    m = safe * scale  # a tie written in decimal may sit a hair off .5 in binary
    m = np.floor(m + 0.5 + 1e-9) if ties == "up" else np.ceil(m - 0.5 - 1e-9)
    return np.where(v == 0, 0.0, np.sign(v) * m / scale)


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
                    with float64_mode():
                        got = np.asarray(spec.fn(*[jnp.asarray(a, jnp.float64) for a in args]))
                    small = sum(r[n].size for n in group) <= 6
                    one = lambda v: v[0] if v.ndim > 1 and v.shape[0] == 1 else v
                    shown = (
                        " (" + "; ".join(f"{n} = {_fmt_value(one(r[n]))}" for n in group) + ")"
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
    return out


@dataclasses.dataclass
class _Carried:
    """What the student carries from the steps graded so far.

    ``mid +- rad``: the box of values the student may hold (for right-ish values,
    anywhere between what was written and the exact value; for wrong ones, what was
    written give or take its last digit); ``written``: what was written, or computed
    from what was written where nothing was; ``root``: per entry, the wrong steps
    upstream that it depends on.
    """

    mid: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    rad: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    written: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    root: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


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


_UNCLAIMED = object()  # a step not in the claim at all (None is an entry not written)


def _grade_step(spec, prob, claim, exact, carried: _Carried, names) -> dict[str, Any]:
    """Grade every entry of one step against the exact value and the student's own values."""
    E = exact[spec.name]
    center, own_rad, deps = _propagate(
        spec.fn, [carried.mid[n] for n in spec.inputs], [carried.rad[n] for n in spec.inputs]
    )
    own, _, _ = _propagate(spec.fn, [carried.written[n] for n in spec.inputs], [])
    up_roots = _upstream_roots(spec, E.shape, deps, carried)
    if claim is not _UNCLAIMED:
        C, HU = _read_claim(spec.name, claim, E.shape)
    else:
        C, HU = np.full(E.shape, np.nan), np.full(E.shape, np.nan)
    verdicts = np.full(E.shape, None, object)
    notes = np.full(E.shape, "", object)
    roots = np.empty(E.shape, object)
    m, r = np.array(center, np.float64), np.array(own_rad, np.float64)
    alternatives = rounded = None
    for idx in np.ndindex(E.shape):
        c, hu = C[idx], HU[idx]
        if np.isnan(c):
            verdicts[idx], roots[idx] = "missing", up_roots[idx]
            continue
        tol = hu * (1 + 1e-9) + _slack(c, E[idx], own[idx])
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
                if alternatives is None:
                    alternatives = _alternatives(spec, prob, carried.written, exact)
                if _named_mistake(idx, c, tol, own, alternatives) is not None:
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
            notes[idx] = (
                f"follows from the error in {', '.join(sorted(up_roots[idx], key=names.index))}"
            )
        elif follows:
            verdicts[idx], roots[idx] = "rounding", frozenset()
            notes[idx] = (
                f"{note or 'follows from your rounded values'} (exact {fmt_distinct(E[idx], c)})"
            )
        else:
            verdicts[idx], roots[idx] = "wrong", frozenset([spec.name])
            if alternatives is None:
                alternatives = _alternatives(spec, prob, carried.written, exact)
            notes[idx] = _diagnose(spec, idx, c, hu, exact, own, alternatives)
        if verdicts[idx] in ("correct", "rounding"):
            m[idx], r[idx] = (c + E[idx]) / 2, abs(c - E[idx]) / 2
        else:
            m[idx], r[idx] = c, hu
    carried.mid[spec.name], carried.rad[spec.name], carried.root[spec.name] = m, r, roots
    carried.written[spec.name] = np.where(np.isnan(C), own, C)
    present = [v for v in verdicts.reshape(-1) if v != "missing"] or ["missing"]
    claimed_any = not np.all(np.isnan(C))
    return {
        "verdicts": max(present, key=VERDICTS.index) if claimed_any else "missing",
        "entry_verdicts": verdicts.astype(str),
        "claimed": C,
        "claimed_units": HU,
        "own": own,
        "diagnoses": notes.astype(str),
        "roots": np.vectorize(lambda s: ", ".join(sorted(s)), otypes=[object])(roots).astype(str),
    }


def check_derivation(
    params: Params, x, y, claimed: Mapping[str, Any], *, activation="sigmoid", loss: str = "bce"
) -> DerivationReport:
    """Grade a hand derivation, step by step and entry by entry.

    Args:
      params, x, y, activation, loss: the network and batch the derivation is about.
      claimed: step name -> number or nested list, as the student wrote it
        (see :func:`step_names`; ``None`` for an entry not written). Precision is
        read from the digits written: ``0.52`` is taken as ``0.52 +- 0.005``. Use
        strings or ``decimal.Decimal`` to keep trailing zeros (``"0.50"``).

    Returns:
      :class:`DerivationReport` (``.verdicts``, ``.entry_verdicts``, ``.ok``; ``print`` it).

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
    carried = _Carried()
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
    return DerivationReport(
        names=names, batch_steps=batch_steps, batch=prob.batch, expected=exact, **out
    )
