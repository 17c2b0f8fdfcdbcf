"""Floating-point policy: which dtypes the library works in and how close is "equal".

float32 is the default; float64 is available once ``jax_enable_x64`` is on. The
tolerance table below is the only place in the library (and its tests) where
"close enough" is decided for a dtype.

This module knows nothing of networks, training, files or the command line.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Tolerance", "resolve_dtype", "tolerance"]


class Tolerance(NamedTuple):
    """``|candidate - reference| <= atol + rtol * |reference|``, entry by entry."""

    rtol: float
    atol: float


# Two gradient computations that differ only in the order of floating-point
# operations agree to a few ulps of their dtype, relative to the gradient's size.
_TOLERANCES = {
    np.dtype(np.float64): Tolerance(rtol=1e-12, atol=1e-14),
    np.dtype(np.float32): Tolerance(rtol=1e-5, atol=1e-6),
    np.dtype(jnp.bfloat16): Tolerance(rtol=1e-2, atol=1e-3),
    np.dtype(np.float16): Tolerance(rtol=1e-3, atol=1e-4),
}


def tolerance(*dtypes) -> Tolerance:
    """The comparison tolerance for the least precise of ``dtypes``.

    >>> tolerance("float32")
    Tolerance(rtol=1e-05, atol=1e-06)
    >>> tolerance("float64", "float32")  # the coarser one wins
    Tolerance(rtol=1e-05, atol=1e-06)
    """
    if not dtypes:
        raise TypeError("tolerance() needs at least one dtype")
    found = []
    for d in dtypes:
        d = np.dtype(d)
        if d not in _TOLERANCES:
            known = ", ".join(str(k) for k in _TOLERANCES)
            raise ValueError(f"no tolerance is defined for dtype {d}; expected one of {known}")
        found.append(_TOLERANCES[d])
    return max(found, key=lambda t: t.rtol)


def resolve_dtype(dtype, *, argname: str = "dtype") -> np.dtype:
    """Check that ``dtype`` is a floating dtype JAX can really give us.

    JAX silently turns float64 into float32 when ``jax_enable_x64`` is off; a
    library that promises float64 must say so instead.
    """
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
