"""Gradient checks for any scalar function of a parameter pytree, not only the MLP.

``f(params, *args) -> scalar``: ``params`` is any pytree of floating arrays (dicts,
tuples, an equinox module's arrays), ``args`` whatever else ``f`` takes. The
gradient by ``jax.grad`` (which follows any ``custom_vjp`` inside ``f``), a
gradient the user derived by hand, and central finite differences in float64 are
compared with [`compare_grads`][jaxbp.grads.compare_grads], which names the
leaf that differs and how.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..util._dtypes import float64_mode

__all__ = ["check_function", "numerical_grad_of"]


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def check_function_params(params, *, argname: str = "params") -> Any:
    """``params`` if it is a non-empty pytree whose leaves are all floating arrays."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    if not leaves:
        raise ValueError(f"{argname} must be a pytree with at least one array leaf; got none")
    for path, leaf in leaves:
        where = f"{argname}{jax.tree_util.keystr(path)}"
        if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
            raise TypeError(f"{where} must be an array; got {type(leaf).__name__}")
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            raise TypeError(
                f"{where} must be a floating array (gradients are taken with respect to it); "
                f"got dtype {leaf.dtype}"
            )
    return params


def check_scalar_function(fn: Callable, params, args) -> float:
    """``fn(params, *args)`` as a float, or one error naming ``fn`` and what it returned."""
    if not callable(fn):
        raise TypeError(
            f"fn must be a function f(params, *args) -> scalar; got {type(fn).__name__}"
        )
    try:
        value = fn(params, *args)
    except Exception as e:  # the user's function: say whose error it is
        raise ValueError(f"fn {_name(fn)}(params, *args) raised {type(e).__name__}: {e}") from e
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape != () or dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        got = f"shape {shape}, dtype {dtype}" if shape is not None else type(value).__name__
        raise ValueError(
            f"fn {_name(fn)}(params, *args) must return a floating scalar (a loss); got {got}"
        )
    return float(value)


def _to_float64(tree):
    def cast(a):
        if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.floating):
            return jnp.asarray(np.asarray(a), jnp.float64)
        return a

    return jax.tree_util.tree_map(cast, tree)


def numerical_grad_of(fn: Callable, params, *args, eps: float = 1e-6):
    """Central differences of ``fn(params, *args)`` with respect to ``params``, in float64.

    Every floating leaf of ``params`` and of ``args`` is cast to float64 (64-bit mode
    is on for this call only); all directions are evaluated under ``vmap``, in
    batches that bound memory. Returns a float64 tree of ``params``' structure.
    """
    check_function_params(params)
    check_scalar_function(fn, params, args)
    return _numerical(fn, params, args, eps)


def _numerical(fn, params, args, eps: float):
    """Central differences for a checked ``fn`` and ``params``."""
    with float64_mode():
        p64, a64 = _to_float64(params), _to_float64(args)
        return _central_differences(fn, p64, a64, jnp.float64(eps))


@partial(jax.jit, static_argnums=0)
def _central_differences(fn, params, args, eps):
    flat, unravel = ravel_pytree(params)

    def central(i):
        e = jnp.zeros_like(flat).at[i].set(eps)
        return (fn(unravel(flat + e), *args) - fn(unravel(flat - e), *args)) / (2 * eps)

    return unravel(jax.lax.map(central, jnp.arange(flat.size), batch_size=256))


def check_function(fn: Callable, params, args, grad, eps: float):
    """The sources for [`check_grads`][jaxbp.grads.check_grads] ``(fn, params, *args)``:
    ``(value, autodiff, given, numerical)``; ``given`` is None without ``grad``."""
    check_function_params(params)
    value = check_scalar_function(fn, params, args)
    autodiff = jax.jit(jax.grad(fn))(params, *args)
    given = None
    if grad is not None:
        if not callable(grad):
            raise TypeError(
                f"grad must be a function grad(params, *args) -> a tree like params; "
                f"got {type(grad).__name__}"
            )
        given = grad(params, *args)
        if jax.tree_util.tree_structure(given) != jax.tree_util.tree_structure(params):
            raise ValueError(
                f"grad {_name(grad)}(params, *args) must return a tree of params' structure "
                f"{jax.tree_util.tree_structure(params)}; got {jax.tree_util.tree_structure(given)}"
            )
    return value, autodiff, given, _numerical(fn, params, args, eps)
