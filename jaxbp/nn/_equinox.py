"""An Equinox module as a [`Model`][jaxbp.nn.Model]: ``eqx.partition`` and ``eqx.combine``.

Equinox (an optional dependency) keeps a network's arrays and its structure in one
module. ``equinox_model`` splits a module made from a key into its floating arrays
(the parameters jaxbp trains, any pytree) and the rest (activations, shapes, kept
aside once), and puts them back together to apply it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ._model import Model

__all__ = ["equinox_model"]


def equinox_model(
    make: Callable[[Any], Any], *, name: str | None = None, per_example: bool = True
) -> Model:
    """The Equinox module ``make(key)`` as a [`Model`][jaxbp.nn.Model].

    ``init(key, scale)`` is the module ``make(key)`` builds, its floating arrays
    (``eqx.partition(module, eqx.is_inexact_array)``) times ``scale``: ``scale=1``
    is Equinox's own initialization. ``apply(params, x)`` recombines them with the
    rest of the module (``eqx.combine``) and calls it on each example of ``x``
    (``jax.vmap``; ``per_example=False`` calls it on the whole batch, for a module
    written for batches).

    Args:
      make: ``key -> eqx.Module``, e.g. ``lambda k: eqx.nn.MLP(2, 1, 8, 2, key=k)``.
      name: what messages call the model (default: the module's class name).
      per_example: the module takes one example (Equinox's convention), not a batch.

    Examples:
      >>> import equinox as eqx, jax, jax.numpy as jnp
      >>> m = equinox_model(lambda k: eqx.nn.MLP(2, "scalar", 8, 2, key=k))
      >>> params = m.init(jax.random.key(0), 1.0)
      >>> m.apply(params, jnp.ones((5, 2))).shape, m.name
      ((5,), 'MLP')
    """
    import equinox as eqx  # optional: only for Equinox modules

    template = make(jax.random.key(0))
    _, static = eqx.partition(template, eqx.is_inexact_array)

    def init(key, scale):
        params, _ = eqx.partition(make(key), eqx.is_inexact_array)
        return jax.tree_util.tree_map(lambda a: a * jnp.asarray(scale, a.dtype), params)

    def apply(params, x):
        module = eqx.combine(params, static)
        return jax.vmap(module)(x) if per_example else module(x)

    return Model(init, apply, name or type(template).__name__)
