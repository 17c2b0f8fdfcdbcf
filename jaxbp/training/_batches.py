"""Minibatches: which examples each step of a network takes.

A network's data order is drawn from its own key ([`data_order_key`][jaxbp.training.data_order_key], a stream
apart from its initialization's): each epoch visits the training set in a fresh
permutation, ``batch_size`` examples a step, the ``n % batch_size`` left at the
end dropped for that epoch. Used by ``_train`` (one network) and, through it, by
``train_many``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..util._checks import check_positive_int

__all__ = ["DATA_ORDER_STREAM", "check_batch_size", "data_order_key", "minibatch"]

# The data order of a member draws from its own stream, apart from its initialization's.
DATA_ORDER_STREAM = 0x5EED0DA7


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
        lambda: jax.random.permutation(jax.random.fold_in(carry.data_key, epoch), n).astype(
            jnp.int32
        ),
        lambda: carry.order,
    )
    idx = jax.lax.dynamic_slice_in_dim(order, j * batch_size, batch_size)
    return carry._replace(order=order), x[idx], y[idx]


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
