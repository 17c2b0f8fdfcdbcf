"""Minibatches: which examples each step of a network takes.

A network's data order is drawn from its own key ([`data_order_key`][jaxbp.training.data_order_key], a stream
apart from its initialization's): each epoch visits the training set in a fresh
permutation, ``batch_size`` examples a step, the ``n % batch_size`` left at the
end dropped for that epoch. Used by ``_train`` (one network) and, through it, by
``train_many``.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

from ..util._checks import ceil_div, check_positive_int

__all__ = [
    "DATA_ORDER_STREAM",
    "check_batch_size",
    "data_order_key",
    "jax_shuffle",
    "minibatch",
    "permutation",
]

# The data order of a member draws from its own stream, apart from its initialization's.
DATA_ORDER_STREAM = 0x5EED0DA7

# From this many examples on, `permutation` sorts by radix passes (see there); below,
# the shuffle costs little to run and the plain sort compiles faster.
RADIX_MIN_EXAMPLES = 256
RADIX_MAX_EXAMPLES = 1 << 24  # positions of 24 bits leave 8-bit digits: 4 passes


def data_order_key(key, member: int | jax.Array = 0):
    """The key a network's minibatch order is drawn from: ``fold_in(fold_in(key, member),
    DATA_ORDER_STREAM)``, a stream apart from the initialization's ``fold_in(key, member)``.

    Member ``m`` of [`train_many`][jaxbp.many.train_many] uses ``data_order_key(key, m)``; pass the same to
    [`train`][jaxbp.training.train] (``data_key=``) to train that member alone.
    """
    return jax.random.fold_in(jax.random.fold_in(key, member), DATA_ORDER_STREAM)


def minibatch(carry, t, x, y, batch_size: int):
    """The minibatch of step ``t``: epoch ``t // (n // batch_size)`` visits the examples in
    the order ``permutation(fold_in(data_key, epoch), n)``, ``batch_size`` at a time; the
    ``n % batch_size`` examples left at the end of an epoch's order are dropped (a fresh
    order next epoch). The order is drawn once per epoch and carried."""
    n = x.shape[0]
    per_epoch = n // batch_size
    epoch, j = t // per_epoch, t % per_epoch
    order = jax.lax.cond(
        j == 0,
        lambda: permutation(jax.random.fold_in(carry.data_key, epoch), n).astype(jnp.int32),
        lambda: carry.order,
    )
    idx = jax.lax.dynamic_slice_in_dim(order, j * batch_size, batch_size)
    return carry._replace(order=order), x[idx], y[idx]


def permutation(key, n: int) -> jax.Array:
    """``jax.random.permutation(key, n)``, bit for bit, in fewer operations for large ``n``.

    JAX shuffles by rounds of a stable sort of the positions by fresh 32-bit random
    keys. For ``RADIX_MIN_EXAMPLES <= n <= RADIX_MAX_EXAMPLES`` each round's stable
    sort is ``stable_argsort_u32``'s: sorts of single 32-bit words, which XLA's CPU
    sort runs about four times faster than a key-value sort (docs/benchmarks.md).
    Same keys, same stable order: the same permutation.
    """
    if not RADIX_MIN_EXAMPLES <= n <= RADIX_MAX_EXAMPLES:
        return jax.random.permutation(key, n)
    # The number of rounds JAX's shuffle takes for n (jax.random.permutation).
    rounds = int(np.ceil(3 * np.log(max(1, n)) / np.log(np.iinfo(np.uint32).max)))
    x = jnp.arange(n)
    for _ in range(rounds):
        key, subkey = jax.random.split(key)
        x = x[stable_argsort_u32(jax.random.bits(subkey, (n,), jnp.uint32))]
    return x


@contextlib.contextmanager
def jax_shuffle():
    """Within it, programs traced draw their data orders by ``jax.random.permutation``
    at every size, for comparisons (experiments/bench_minibatch.py ``--shuffle``).
    JAX's caches are cleared on entry and on exit, so programs are traced afresh."""
    global RADIX_MIN_EXAMPLES
    saved, RADIX_MIN_EXAMPLES = RADIX_MIN_EXAMPLES, RADIX_MAX_EXAMPLES + 1
    jax.clear_caches()
    try:
        yield
    finally:
        RADIX_MIN_EXAMPLES = saved
        jax.clear_caches()


def stable_argsort_u32(keys: jax.Array) -> jax.Array:
    """The positions of 1-D ``uint32`` ``keys`` in stable ascending order (ties keep
    their order), as ``lax.sort_key_val(keys, arange(n))`` gives them.

    A least-significant-digit radix sort whose passes are sorts of single words: each
    word holds one digit of a key above the position ``r`` of its key in the order so
    far (``p`` bits, enough for ``n`` positions), so sorting the words orders by that
    digit and keeps the order so far among equal digits. Two passes of 32 - p bits
    cover a key up to n = 2**16; larger n takes more.
    """
    n = keys.shape[-1]
    if n > RADIX_MAX_EXAMPLES:
        raise ValueError(f"stable_argsort_u32 sorts up to {RADIX_MAX_EXAMPLES} keys, not {n}")
    p = max(1, (n - 1).bit_length())
    d = 32 - p  # digit bits per pass
    position = jnp.arange(n, dtype=jnp.uint32)
    order = position
    for s in range(ceil_div(32, d)):
        in_order = keys if s == 0 else keys[order]  # the first pass starts in key order
        digit = (in_order >> (s * d)) & ((1 << d) - 1)
        words = jax.lax.sort((digit << p) | position)
        order = order[words & ((1 << p) - 1)]
    return order


def check_batch_size(batch_size, n_examples: int, argname: str = "batch_size"):
    """``batch_size``: None (full batch) or a positive int no larger than the training set."""
    if batch_size is None:
        return None
    batch_size = check_positive_int(batch_size, argname)
    if batch_size > n_examples:
        raise ValueError(
            f"{argname}={batch_size} is larger than the training set ({n_examples} examples)"
        )
    return batch_size
