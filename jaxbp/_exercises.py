"""Worked exercises that ship with the library; the first is the seed of it all.

Week 9 Q2 (``shared/seed``): inputs ``x = (1, 2, 2)`` with a bias input 1 in front,
two sigmoid hidden units, one sigmoid output, label ``y = 1``, binary
cross-entropy. The weights are written in the augmented layout (bias in row 0):
``W_11 = [1, -1, 1, -1, -2, 2, 3, -2]`` is the 4 x 2 hidden matrix read row by
row, ``W_2j = [-1, 1, 1]`` the output column.

This module knows nothing of training, files, plots or the command line.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import check_positive_int, is_int
from ._dtypes import resolve_dtype
from ._mlp import check_sizes
from ._tree import Params, from_augmented

__all__ = ["Exercise", "random_exercise", "seed_exercise"]

SEED_W11 = (1, -1, 1, -1, -2, 2, 3, -2)
SEED_W2J = (-1, 1, 1)
SEED_X = (1, 2, 2)
SEED_Y = 1


class Exercise(NamedTuple):
    """A network, one batch and the configuration it is to be worked with."""

    params: Params
    x: jax.Array
    y: jax.Array
    activation: str
    loss: str


def seed_exercise(*, dtype=None) -> Exercise:
    """The seed exercise (Week 9 Q2): the 3-2-1 sigmoid network, one example, BCE.

    >>> ex = seed_exercise(dtype="float32")  # default: JAX's default float
    >>> ex.x, ex.y
    (Array([[1., 2., 2.]], dtype=float32), Array([1.], dtype=float32))
    """
    dtype = resolve_dtype(dtype)
    params = from_augmented(
        [np.reshape(SEED_W11, (4, 2)), np.reshape(SEED_W2J, (3, 1))], dtype=dtype
    )
    x = jnp.asarray([SEED_X], dtype=dtype)
    y = jnp.asarray([SEED_Y], dtype=dtype)
    return Exercise(params=params, x=x, y=y, activation="sigmoid", loss="bce")


def random_exercise(
    seed: int, sizes, *, activation="sigmoid", loss: str = "bce", batch: int = 1, dtype=None
):
    """A fresh exercise like the seed's: small integer weights (-3..3), inputs (0..3), labels 0/1.

    Deterministic for ``seed``: the same seed gives the same exercise.
    """
    sizes = check_sizes(sizes)
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    batch = check_positive_int(batch, "batch")
    dtype = resolve_dtype(dtype)
    keys = jax.random.split(jax.random.key(seed), len(sizes) + 1)
    mats = [
        np.asarray(jax.random.randint(k, (n_in + 1, n_out), -3, 4), np.float64)
        for k, n_in, n_out in zip(keys[:-2], sizes[:-1], sizes[1:])
    ]
    x = np.asarray(jax.random.randint(keys[-2], (batch, sizes[0]), 0, 4), np.float64)
    y = np.asarray(jax.random.randint(keys[-1], (batch, sizes[-1]), 0, 2), np.float64)
    return Exercise(
        params=from_augmented(mats, dtype=dtype),
        x=jnp.asarray(x, dtype),
        y=jnp.asarray(y, dtype),
        activation=activation,
        loss=loss,
    )
