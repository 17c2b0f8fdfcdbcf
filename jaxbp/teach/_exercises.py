"""Worked exercises that ship with the library; the first is the seed of it all.

Week 9 Q2 (``shared/seed``): inputs ``x = (1, 2, 2)`` with a bias input 1 in front,
two sigmoid hidden units, one sigmoid output, label ``y = 1``, binary
cross-entropy. The weights are written in the augmented layout (bias in row 0):
``W_11 = [1, -1, 1, -1, -2, 2, 3, -2]`` is the 4 x 2 hidden matrix read row by
row, ``W_2j = [-1, 1, 1]`` the output column.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..grads._manual import manual_value_and_grad_unchecked
from ..nn._activations import activation_key, resolve_activations
from ..nn._losses import resolve_loss
from ..nn._mlp import check_sizes
from ..nn._tree import Params, from_augmented
from ..util._checks import check_positive_int, is_int
from ..util._dtypes import float64_mode, resolve_dtype

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

    Examples:
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


# Numbers a person multiplies on paper: halves from -2 to 2 (0 left out, so that every
# weight and input carries a gradient).
WEIGHT_VALUES = (-2.0, -1.5, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0)
INPUT_VALUES = (-1.0, -0.5, 0.5, 1.0, 1.5, 2.0)
MAX_PREACTIVATION = 3.0  # sigmoid(3) = 0.95: every unit stays in its useful range
MIN_GRADIENT = 1e-3  # every gradient entry has a magnitude a student can write


def _layer(rng, a, n_in, n_out, act) -> np.ndarray | None:
    """A layer's augmented matrix whose pre-activations stay within MAX_PREACTIVATION (and,
    for ReLU, whose every unit is active on some example), or None after many draws."""
    for _ in range(200):
        m = rng.choice(WEIGHT_VALUES, size=(n_in + 1, n_out))
        h = a @ m[1:] + m[0]
        dead = act is not None and act.name == "relu" and np.any(~(h > 0).any(axis=0))
        if np.all(np.abs(h) <= MAX_PREACTIVATION) and not dead:
            return m
    return None


@functools.partial(jax.jit, static_argnames=("activation", "loss"))
def _smallest_gradient(mats, x, y, activation, loss):
    """The smallest gradient magnitude of the network of augmented matrices ``mats`` on
    a batch (``y`` as the loss holds it), by the chain rule: one compiled check per
    candidate shape, however many candidates are drawn."""
    params = tuple({"W": m[1:], "b": m[0]} for m in mats)
    _, grads = manual_value_and_grad_unchecked(params, x, y, activation, loss)
    return jnp.min(jnp.stack([jnp.min(jnp.abs(g)) for g in jax.tree_util.tree_leaves(grads)]))


def random_exercise(
    seed: int, sizes, *, activation="sigmoid", loss: str = "bce", batch: int = 1, dtype=None
) -> Exercise:
    """A fresh exercise worth working by hand, like the seed's.

    Weights, biases and inputs are halves from -2 to 2 (no zeros), labels 0 or 1 (for
    ``loss="softmax_ce"``, one class index per example).
    Every pre-activation and the output logit lie within +-3 (sigmoid and tanh units
    in their useful range), every ReLU unit is active on some example, and every
    gradient entry has a magnitude of at least 1e-3. Any sizes, several outputs and
    batches work. Deterministic: the same arguments give the same exercise.
    """
    sizes = check_sizes(sizes)
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    batch = check_positive_int(batch, "batch")
    dtype = resolve_dtype(dtype)
    acts = resolve_activations(activation, len(sizes) - 2)
    key = activation_key(activation, len(sizes) - 2)
    classes = resolve_loss(loss).classes
    if classes and sizes[-1] < 2:
        raise ValueError(
            f"loss {loss!r} needs an output unit per class (2 or more); got sizes {sizes}"
        )
    tag = zlib.crc32(repr((sizes, activation, loss, batch)).encode())
    rng = np.random.default_rng([int(seed), tag])
    for _ in range(1000):
        x = rng.choice(INPUT_VALUES, size=(batch, sizes[0]))
        if classes:  # one class index per example
            y = rng.integers(0, sizes[-1], size=batch)
        else:
            y = rng.integers(0, 2, size=(batch, sizes[-1])).astype(np.float64)
        mats, a = [], x
        for l, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            act = acts[l] if l < len(acts) else None
            m = _layer(rng, a, n_in, n_out, act)
            if m is None:
                break
            mats.append(m)
            h = a @ m[1:] + m[0]
            a = np.asarray(act.fn(h)) if act is not None else h
        if len(mats) < len(sizes) - 1:
            continue
        labels = np.eye(sizes[-1])[y] if classes else y  # one-hot rows, as the loss holds them
        with float64_mode():
            smallest = float(_smallest_gradient(tuple(mats), x, labels, key, loss))
        if smallest >= MIN_GRADIENT:
            return Exercise(
                params=from_augmented(mats, dtype=dtype),
                x=jnp.asarray(x, dtype),
                y=jnp.asarray(y) if classes else jnp.asarray(y, dtype),
                activation=activation,
                loss=loss,
            )
    raise ValueError(
        f"no exercise with every unit in range and every gradient >= {MIN_GRADIENT} was found "
        f"for sizes {sizes} ({activation}, {loss}, batch {batch}); try smaller sizes"
    )
