"""What a student wrote, read as numbers with the precision they were written with.

Claimed values keep their digits (``0.52`` is ``0.52 +- 0.005``); helpers here
show numbers as written, with the digits that tell two values apart, and round to
significant figures as a student does. The grading (``_grading``) and the reading
of a class's files (``_submissions``) build on this.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

import numpy as np

__all__ = [
    "as_written",
    "claim_entries",
    "fmt_distinct",
    "fmt_value",
    "read_claim",
    "round_sig",
    "slack",
]


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


def read_claim(name: str, value, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
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


def as_written(value: float, half_unit: float) -> str:
    """A claimed value with the decimal places it was written with (0.9820, not 0.982)."""
    if not np.isfinite(half_unit) or half_unit <= 0:
        return f"{value:.6g}"
    places = -round(math.log10(2 * half_unit))
    return f"{value:.{max(places, 0)}f}"


def fmt_value(v: np.ndarray) -> str:
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


def slack(*vals) -> float:
    """Room for float64 rounding when comparing decimals with computed values."""
    return 1e-12 * max([1.0] + [float(np.max(np.abs(v))) for v in vals if np.size(v)])


def round_sig(v, figures: int, *, ties: str = "up") -> np.ndarray:
    """``v`` rounded to ``figures`` significant figures, entry by entry (0 stays 0); a tie
    (0.8655 to 3 figures) goes away from zero with ``ties="up"``, towards it with ``"down"``."""
    v = np.asarray(v, np.float64)
    safe = np.where(v == 0, 1.0, np.abs(v))
    scale = 10.0 ** (figures - 1 - np.floor(np.log10(safe)))
    m = safe * scale  # a tie written in decimal may sit a hair off .5 in binary
    m = np.floor(m + 0.5 + 1e-9) if ties == "up" else np.ceil(m - 0.5 - 1e-9)
    return np.where(v == 0, 0.0, np.sign(v) * m / scale)
