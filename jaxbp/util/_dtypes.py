"""Floating-point policy: which dtypes the library works in and how close is "equal".

The rule, as in JAX and equinox: ``dtype=None`` (every default) means the floating
dtype of the arrays given, else JAX's default float (float32, or float64 once
``jax_enable_x64`` is on); a wider input is never narrowed silently. The
tolerance table below is the only place in the library (and its tests) where
"close enough" is decided for a dtype and a kind of comparison.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "KINDS",
    "Tolerance",
    "default_float",
    "float64_mode",
    "floating_dtype",
    "resolve_dtype",
    "tolerance",
]


class Tolerance(NamedTuple):
    """``|candidate - reference| <= atol + rtol * |reference|``, entry by entry."""

    rtol: float
    atol: float


# What "equal" means depends on how far apart two computations of the same value are:
#   ulps      the same formula evaluated twice, or against an exact reference (Python's
#             math): a few units in the last place.
#   reorder   the same mathematics with the floating-point operations in another order
#             (autodiff vs the chain rule by hand, batched vs alone, jit vs eager).
#   trained   results after many training steps whose rounding differs a little at
#             each step: the differences compound along the trajectory.
#   independent  a second library's implementation (PyTorch, scikit-learn): other
#             formulas for the same quantities (log-loss clipping, summation order).
#   finite_difference  central differences in float64 with eps = 1e-6 against an
#             analytic gradient: truncation and rounding near 1e-10 of the value.
_TOLERANCES = {
    "ulps": {
        np.dtype(np.float64): Tolerance(rtol=1e-14, atol=1e-15),
        np.dtype(np.float32): Tolerance(rtol=1e-6, atol=1e-7),
    },
    "reorder": {
        np.dtype(np.float64): Tolerance(rtol=1e-12, atol=1e-14),
        np.dtype(np.float32): Tolerance(rtol=1e-5, atol=1e-6),
        np.dtype(jnp.bfloat16): Tolerance(rtol=1e-2, atol=1e-3),
        np.dtype(np.float16): Tolerance(rtol=1e-3, atol=1e-4),
    },
    "trained": {
        np.dtype(np.float64): Tolerance(rtol=1e-10, atol=1e-12),
        np.dtype(np.float32): Tolerance(rtol=1e-4, atol=1e-5),
    },
    "independent": {
        np.dtype(np.float64): Tolerance(rtol=1e-9, atol=1e-12),
        np.dtype(np.float32): Tolerance(rtol=1e-4, atol=1e-5),
    },
    "finite_difference": {
        np.dtype(np.float64): Tolerance(rtol=1e-6, atol=1e-9),
    },
}
KINDS = tuple(_TOLERANCES)


def tolerance(*dtypes, kind: str = "reorder") -> Tolerance:
    """The comparison tolerance for the least precise of ``dtypes``.

    Args:
      dtypes: the dtypes of the values compared; the coarsest one decides.
      kind: how the two values were computed (see ``KINDS``): ``"reorder"`` (the
        default: the same mathematics, operations in another order), ``"ulps"``,
        ``"trained"``, ``"independent"`` or ``"finite_difference"``.

    Examples:
      >>> tolerance("float32")
      Tolerance(rtol=1e-05, atol=1e-06)
      >>> tolerance("float64", "float32")  # the coarser one wins
      Tolerance(rtol=1e-05, atol=1e-06)
      >>> tolerance("float64", kind="finite_difference")
      Tolerance(rtol=1e-06, atol=1e-09)
    """
    if not dtypes:
        raise TypeError("tolerance() needs at least one dtype")
    if kind not in _TOLERANCES:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    table = _TOLERANCES[kind]
    found = []
    for d in dtypes:
        d = np.dtype(d)
        if d not in table:
            known = ", ".join(str(k) for k in table)
            raise ValueError(
                f"no {kind!r} tolerance is defined for dtype {d}; expected one of {known}"
            )
        found.append(table[d])
    return max(found, key=lambda t: t.rtol)


def float64_mode():
    """A context in which float64 is available whatever ``jax_enable_x64`` says
    (``jax.enable_x64(True)``; ``jax.experimental.enable_x64()`` on JAX before 0.8)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64

    return enable_x64()


def default_float() -> np.dtype:
    """JAX's default floating dtype: float64 under ``jax_enable_x64``, else float32."""
    return np.dtype(jnp.asarray(0.0).dtype)


def floating_dtype(*arrays) -> np.dtype | None:
    """The widest floating dtype among ``arrays`` (as JAX would hold it), or None."""
    found = []
    for a in arrays:
        d = getattr(a, "dtype", None)
        if d is None:
            try:
                d = np.asarray(a).dtype
            except (TypeError, ValueError):
                continue
        if jnp.issubdtype(d, jnp.floating):
            found.append(np.dtype(jax.dtypes.canonicalize_dtype(d)))
    return max(found, key=lambda d: d.itemsize) if found else None


def resolve_dtype(dtype, *, argname: str = "dtype", like=()) -> np.dtype:
    """Check that ``dtype`` is a floating dtype JAX can really give us.

    ``None`` means the widest floating dtype of the arrays in ``like``, else JAX's
    default float (``default_float``). JAX silently turns float64 into float32
    when ``jax_enable_x64`` is off; a library that promises float64 must say so
    instead.
    """
    if dtype is None:
        return floating_dtype(*like) or default_float()
    try:
        d = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(
            f"{argname} must be a floating dtype such as 'float32'; got {dtype!r}"
        ) from e
    if not jnp.issubdtype(d, jnp.floating):
        raise TypeError(f"{argname} must be a floating dtype such as 'float32'; got {d}")
    if d == np.float64 and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            f"{argname}=float64 needs 64-bit mode, which is off; call "
            "jax.config.update('jax_enable_x64', True) at start-up (or set JAX_ENABLE_X64=1)"
        )
    return d
