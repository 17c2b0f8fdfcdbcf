"""Hidden width as a grid axis: members of several widths in one compiled program.

Every member is held as the widest network (``widest``), its own units first and the
rest zero. A member of width ``w`` starts from exactly the parameters
``init_mlp_unchecked`` gives at width ``w`` (the same key, scale and scheme), padded
with zeros (``padded_init``). Its gradient and its optimizer's update are zeroed
outside its own units (``masked``): a padded weight or bias stays exactly zero, so a
padded unit adds ``0`` to every sum it enters and the member trains as the network of
width ``w`` does, up to the order of those sums. The mask is kept in the optimizer's
state, so a run cut into pieces carries it along; a ``where``, not a product, so a
non-finite gradient never reaches a padded entry.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..nn._mlp import init_mlp_unchecked

__all__ = ["masked", "padded_init", "sizes_at", "trim", "widest", "width_mask"]


def sizes_at(sizes, width: int) -> tuple[int, ...]:
    """``sizes`` with every hidden layer ``width`` wide."""
    return (sizes[0], *([int(width)] * (len(sizes) - 2)), sizes[-1])


def widest(sizes, widths) -> tuple[int, ...]:
    """The layer widths every member is held in: ``sizes`` at the widest width."""
    return sizes_at(sizes, max(widths))


def _select(index, trees):
    """``trees[index]`` for a traced ``index``, elementwise (one ``where`` per tree)."""
    out = trees[0]
    for i, tree in enumerate(trees[1:], start=1):
        out = jax.tree_util.tree_map(lambda a, b, i=i: jnp.where(index == i, b, a), out, tree)
    return out


def _pad(params, sizes):
    return tuple(
        {
            "W": jnp.pad(
                layer["W"], [(0, n_in - layer["W"].shape[0]), (0, n_out - layer["W"].shape[1])]
            ),
            "b": jnp.pad(layer["b"], [(0, n_out - layer["b"].shape[0])]),
        }
        for layer, n_in, n_out in zip(params, sizes[:-1], sizes[1:], strict=True)
    )


def padded_init(key, scale, width_index, *, sizes, widths, scheme, dtype):
    """The start of a member of width ``widths[width_index]``, held at the widest sizes.

    ``sizes`` are the widest; each width's start is drawn as ``init_mlp_unchecked``
    draws it at that width, and the member's is selected."""
    starts = [
        _pad(
            init_mlp_unchecked(key, scale, sizes=sizes_at(sizes, w), scheme=scheme, dtype=dtype),
            sizes,
        )
        for w in widths
    ]
    return _select(width_index, starts)


def width_mask(width_index, *, sizes, widths):
    """Which entries of the widest network a member of width ``widths[width_index]`` owns."""
    masks = []
    for w in widths:
        own = sizes_at(sizes, w)
        masks.append(
            tuple(
                {
                    "W": np.pad(np.ones((a, b), bool), [(0, n_in - a), (0, n_out - b)]),
                    "b": np.pad(np.ones(b, bool), [(0, n_out - b)]),
                }
                for a, b, n_in, n_out in zip(own[:-1], own[1:], sizes[:-1], sizes[1:], strict=True)
            )
        )
    return _select(width_index, [jax.tree_util.tree_map(jnp.asarray, m) for m in masks])


class MaskState(NamedTuple):
    """The member's own entries (``width_mask``), carried in the optimizer's state."""

    mask: object


def _mask_transform(mask) -> optax.GradientTransformation:
    def init(params):
        del params
        return MaskState(mask)

    def update(updates, state, params=None):
        del params
        kept = jax.tree_util.tree_map(
            lambda u, k: jnp.where(k, u, jnp.zeros_like(u)), updates, state.mask
        )
        return kept, state

    return optax.GradientTransformation(init, update)


def masked(optimizer: optax.GradientTransformation, mask=None) -> optax.GradientTransformation:
    """``optimizer`` seeing only the member's own entries, and updating only them.

    ``mask`` is needed only to start a run (``init``); a carried state holds it."""
    return optax.chain(_mask_transform(mask), optimizer, _mask_transform(mask))


def trim(params, sizes):
    """A member's parameters held at the widest sizes, cut to its own ``sizes``."""
    return tuple(
        {"W": layer["W"][:a, :b], "b": layer["b"][:b]}
        for layer, a, b in zip(params, sizes[:-1], sizes[1:], strict=True)
    )
