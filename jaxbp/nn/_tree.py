"""Parameter trees: the types, their validation, and the seed's augmented layout.

An MLP's parameters are a plain tuple of layers, each ``{"W": (n_in, n_out),
"b": (n_out,)}``, so that a layer computes ``x @ W + b``. Nothing else holds
parameters or state; any JAX, optax or orbax tool takes the tree as it is.

Hand-worked exercises often write each layer as one "augmented" matrix whose
row 0 is the bias (the weight of a constant input 1) and whose rows 1.. are the
weights of the real inputs; [`from_augmented`][jaxbp.nn.from_augmented] and [`to_augmented`][jaxbp.nn.to_augmented]
convert between the two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..util._dtypes import resolve_dtype

__all__ = [
    "Grads",
    "Layer",
    "Params",
    "check_params",
    "from_augmented",
    "is_concrete",
    "layer_sizes",
    "to_augmented",
    "tree_norm",
]

Layer = dict[str, jax.Array]
"""One layer: ``{"W": (n_in, n_out), "b": (n_out,)}``."""
Params = tuple[Layer, ...]
"""An MLP: a tuple of layers, input side first."""
Grads = Params
"""A gradient has the same tree as the parameters it differentiates."""


def is_concrete(a: Any) -> bool:
    """False for values being traced by ``jit``/``vmap``/``grad`` (their values are unknown)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(a))


def _describe(a) -> str:
    shape = getattr(a, "shape", None)
    dtype = getattr(a, "dtype", None)
    if shape is not None:
        return f"array of shape {tuple(shape)} and dtype {dtype}"
    return f"{type(a).__name__} {a!r}"[:120]


def check_params(params, *, argname: str = "params") -> Params:
    """Validate an MLP parameter tree and return it as a tuple of ``{"W", "b"}`` dicts.

    Raises ``TypeError``/``ValueError`` naming the offending entry, e.g.
    ``params[1]["W"]``, what was expected and what was given.
    """
    if isinstance(params, Mapping) or not isinstance(params, Sequence) or isinstance(params, str):
        raise TypeError(
            f"{argname} must be a tuple of layers, each {{'W': (n_in, n_out), 'b': (n_out,)}} "
            f"(as made by init_mlp or from_augmented); got {type(params).__name__}"
        )
    if len(params) == 0:
        raise ValueError(
            f"{argname} must hold at least one layer; got an empty {type(params).__name__}"
        )
    out = []
    dtype = None
    n_prev = None
    for i, layer in enumerate(params):
        where = f"{argname}[{i}]"
        if not isinstance(layer, Mapping) or set(layer) != {"W", "b"}:
            got = sorted(layer) if isinstance(layer, Mapping) else type(layer).__name__
            raise TypeError(f"{where} must be a dict with exactly the keys 'W' and 'b'; got {got}")
        W, b = layer["W"], layer["b"]
        for key, a, ndim in (("W", W, 2), ("b", b, 1)):
            if not hasattr(a, "shape") or not hasattr(a, "dtype"):
                raise TypeError(f"{where}[{key!r}] must be an array; got {_describe(a)}")
            if a.ndim != ndim:
                want = "(n_in, n_out)" if key == "W" else "(n_out,)"
                raise ValueError(f"{where}[{key!r}] must have shape {want}; got {_describe(a)}")
            if not jnp.issubdtype(a.dtype, jnp.floating):
                raise TypeError(f"{where}[{key!r}] must be floating point; got {_describe(a)}")
        if b.shape[0] != W.shape[1]:
            raise ValueError(
                f"{where}['b'] must have shape ({W.shape[1]},) to match {where}['W'] of shape "
                f"{tuple(W.shape)}; got {tuple(b.shape)}"
            )
        if n_prev is not None and W.shape[0] != n_prev:
            raise ValueError(
                f"{where}['W'] must have {n_prev} rows, the width of layer {i - 1}; got shape "
                f"{tuple(W.shape)}"
            )
        for key, a in (("W", W), ("b", b)):
            if dtype is None:
                dtype = a.dtype
            elif a.dtype != dtype:
                raise TypeError(
                    f"{where}[{key!r}] has dtype {a.dtype} but earlier leaves have {dtype}; "
                    "all parameters must share one dtype"
                )
        n_prev = W.shape[1]
        out.append({"W": W, "b": b})
    return tuple(out)


def layer_sizes(params: Params) -> tuple[int, ...]:
    """``(n_in, n_hidden_1, ..., n_out)`` of a parameter tree."""
    params = check_params(params)
    return (params[0]["W"].shape[0], *(layer["W"].shape[1] for layer in params))


def from_augmented(matrices: Sequence, *, dtype=None) -> Params:
    """Parameters from the hand-worked layout: one matrix per layer, bias in row 0.

    Each matrix has shape ``(n_in + 1, n_out)``: rows are inputs (row 0 is the
    constant input 1, so it holds the biases), columns are units. A 1-D vector of
    length ``n_in + 1`` is one unit's column.

    Args:
      matrices: the layers, input side first.
      dtype: the parameters' dtype; default the matrices' floating dtype, else JAX's
        default float (float32, or float64 under ``jax_enable_x64``).

    Returns:
      ``Params``: ``W = M[1:]`` and ``b = M[0]`` for every layer.

    Examples:
      >>> import numpy as np
      >>> params = from_augmented(
      ...     [np.reshape([1, -1, 1, -1, -2, 2, 3, -2], (4, 2)), [-1, 1, 1]], dtype="float32")
      >>> params[0]["b"], params[1]["W"][:, 0]
      (Array([ 1., -1.], dtype=float32), Array([1., 1.], dtype=float32))
    """
    if isinstance(matrices, (str, Mapping)) or not isinstance(matrices, Sequence) or not matrices:
        raise TypeError(
            "matrices must be a non-empty sequence of (n_in + 1, n_out) arrays, one per layer; "
            f"got {_describe(matrices)}"
        )
    dtype = resolve_dtype(dtype, like=[m for m in matrices if hasattr(m, "dtype")])
    params = []
    for i, m in enumerate(matrices):
        try:
            m = np.asarray(m)
        except (TypeError, ValueError) as e:
            raise TypeError(f"matrices[{i}] must be a numeric array; got {_describe(m)}") from e
        if not np.issubdtype(m.dtype, np.number):
            raise TypeError(f"matrices[{i}] must be a numeric array; got dtype {m.dtype}")
        if m.ndim == 1:
            m = m[:, None]
        if m.ndim != 2 or m.shape[0] < 2 or m.shape[1] < 1:
            raise ValueError(
                f"matrices[{i}] must have shape (n_in + 1, n_out) with row 0 the bias, n_in >= 1 "
                f"and n_out >= 1; got shape {m.shape}"
            )
        if params and m.shape[0] != params[-1]["W"].shape[1] + 1:
            n = params[-1]["W"].shape[1]
            raise ValueError(
                f"matrices[{i}] must have {n + 1} rows (the bias row, then one per unit of "
                f"matrices[{i - 1}], which has {n} columns); got shape {m.shape}"
            )
        # Split on the host: a slice of a device array would compile per shape.
        params.append({"W": jnp.asarray(m[1:], dtype=dtype), "b": jnp.asarray(m[0], dtype=dtype)})
    return check_params(tuple(params), argname="from_augmented(matrices)")


def to_augmented(params: Params) -> list[jax.Array]:
    """The inverse of [`from_augmented`][jaxbp.nn.from_augmented]: ``concatenate([b[None], W])`` per layer."""
    params = check_params(params)
    return [jnp.concatenate([layer["b"][None, :], layer["W"]], axis=0) for layer in params]


def tree_norm(tree) -> jax.Array:
    """The global L2 norm ``sqrt(sum of squares of every leaf)``."""
    return jnp.sqrt(sum(jnp.sum(leaf * leaf) for leaf in jax.tree_util.tree_leaves(tree)))
