"""Hidden width as a grid axis: members of several widths in one compiled program.

Every member is held as the widest network (``widest``), its own units first and the
rest zero. A member of width ``w`` starts from exactly the parameters
``init_mlp_unchecked`` gives at width ``w`` (the same key, scale and scheme), padded
with zeros (``padded_init``). Its gradient and its optimizer's update are zeroed
outside its own units (``masked``): a padded weight or bias stays exactly zero, so a
padded unit adds ``0`` to every sum it enters and the member trains as the network of
width ``w`` does, up to the order of those sums. The width rides in the optimizer's
state (one integer: the mask is recomputed from it each step, fused into the update),
so a run cut into pieces carries it along; a ``where``, not a product, so a
non-finite gradient never reaches a padded entry.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from ..nn._mlp import init_from_noise, init_noise, n_init_draws

__all__ = ["masked", "own_entries", "padded_init", "sizes_at", "trim", "widest"]


def sizes_at(sizes, width: int) -> tuple[int, ...]:
    """``sizes`` with every hidden layer ``width`` wide."""
    return (sizes[0], *([int(width)] * (len(sizes) - 2)), sizes[-1])


def widest(sizes, widths) -> tuple[int, ...]:
    """The layer widths every member is held in: ``sizes`` at the widest width."""
    return sizes_at(sizes, max(widths))


def _select(width, widths, trees):
    """The tree of ``width`` (traced) among ``trees``, one per ``widths``, elementwise."""
    out = trees[0]
    for w, tree in zip(widths[1:], trees[1:], strict=True):
        out = jax.tree_util.tree_map(lambda a, b, w=w: jnp.where(width == w, b, a), out, tree)
    return out


def _pad(params, sizes):
    return tuple(
        {
            "W": jnp.pad(layer["W"], [(0, a - layer["W"].shape[0]), (0, b - layer["W"].shape[1])]),
            "b": jnp.pad(layer["b"], [(0, b - layer["b"].shape[0])]),
        }
        for layer, a, b in zip(params, sizes[:-1], sizes[1:], strict=True)
    )


def padded_init(key, scale, width, *, sizes, widths, scheme, dtype):
    """The start of a member of hidden width ``width`` (traced, one of ``widths``), held
    at the widest ``sizes``: each width's start drawn as ``init_mlp_unchecked`` draws it
    at that width, and the member's selected."""
    own = [sizes_at(sizes, w) for w in widths]
    if jax.config.jax_threefry_partitionable:
        # One draw, each width's start from its first numbers (init_noise): one random
        # kernel to compile instead of one per width, the same numbers.
        noise = init_noise(key, max(map(n_init_draws, own)), scheme=scheme, dtype=dtype)
        draws = [noise[: n_init_draws(s)] for s in own]
    else:
        draws = [init_noise(key, n_init_draws(s), scheme=scheme, dtype=dtype) for s in own]
    starts = [
        _pad(init_from_noise(d, scale, sizes=s, scheme=scheme, dtype=dtype), sizes)
        for d, s in zip(draws, own, strict=True)
    ]
    return _select(width, widths, starts)


def own_entries(width, sizes):
    """Which entries of the widest network (``sizes``) a member of hidden width ``width``
    (traced) owns: its first ``width`` units of every hidden layer."""
    depth = len(sizes) - 1
    out = []
    for layer, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        rows = n_in if layer == 0 else width  # the input and the output are never padded
        cols = n_out if layer == depth - 1 else width
        out.append(
            {
                "W": (lax.broadcasted_iota(jnp.int32, (n_in, n_out), 0) < rows)
                & (lax.broadcasted_iota(jnp.int32, (n_in, n_out), 1) < cols),
                "b": lax.iota(jnp.int32, n_out) < cols,
            }
        )
    return tuple(out)


class MaskedState(NamedTuple):
    """The member's hidden width and its optimizer's own state."""

    width: jax.Array  # int32[]
    inner: object


def masked(optimizer: optax.GradientTransformation, width=None, *, sizes):
    """``optimizer`` seeing only the member's own entries (``own_entries``) of its
    gradient, and updating only them. ``width`` is needed only to start a run
    (``init``); a carried state holds it."""

    def keep(tree, mask):
        return jax.tree_util.tree_map(lambda u, k: jnp.where(k, u, jnp.zeros_like(u)), tree, mask)

    def init(params):
        return MaskedState(jnp.asarray(width, jnp.int32), optimizer.init(params))

    def update(updates, state, params=None):
        mask = own_entries(state.width, sizes)
        updates, inner = optimizer.update(keep(updates, mask), state.inner, params)
        return keep(updates, mask), MaskedState(state.width, inner)

    return optax.GradientTransformation(init, update)


def trim(params, sizes):
    """A member's parameters held at the widest sizes, cut to its own ``sizes``."""
    return tuple(
        {"W": layer["W"][:a, :b], "b": layer["b"][:b]}
        for layer, a, b in zip(params, sizes[:-1], sizes[1:], strict=True)
    )
