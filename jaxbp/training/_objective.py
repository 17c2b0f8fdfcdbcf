"""What a training step descends, as one value: the network, the loss, the gradient source.

An ``Objective`` is the hashable triple that every training function passes on
(and ``jit`` takes as one static argument): the hidden activation(s) of the network,
the loss on its output logits, and where the gradient comes from (``jax.grad`` or
the chain rule by hand). Its methods are the three things training asks of it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..grads._autodiff import (
    check_grad_source,
    loss_and_logits,
    value_and_grad_aux_fn,
    value_and_grad_fn,
)
from ..nn._activations import activation_key
from ..nn._losses import resolve_loss
from ..nn._tree import Grads, Params

__all__ = ["Objective"]


class Objective(NamedTuple):
    """The network's activations, the loss and the gradient source of a training run.

    Attributes:
      activation: one activation name, or a tuple of names, one per hidden layer
        (as ``jaxbp.nn._activations.activation_key`` normalizes them).
      loss: a loss name ([`jaxbp.LOSSES`][jaxbp.nn.LOSSES]).
      grad: ``"autodiff"`` (``jax.grad``) or ``"manual"`` (the chain rule by hand).
    """

    activation: str | tuple[str, ...]
    loss: str
    grad: str = "autodiff"

    @classmethod
    def checked(cls, activation, loss, grad, *, n_hidden: int) -> Objective:
        """The objective for a network with ``n_hidden`` hidden layers, each part checked."""
        resolve_loss(loss)
        check_grad_source(grad)
        return cls(activation_key(activation, n_hidden), loss, grad)

    def value_and_grad(self, params: Params, x, y) -> tuple[jax.Array, Grads]:
        """``(loss, dL/dparams)`` on a validated batch."""
        return value_and_grad_fn(self.grad)(params, x, y, self.activation, self.loss)

    def value_logits_and_grad(self, params: Params, x, y):
        """``((loss, logits), dL/dparams)``: the logits come from the same forward pass."""
        return value_and_grad_aux_fn(self.grad)(params, x, y, self.activation, self.loss)

    def loss_and_logits(self, params: Params, x, y) -> tuple[jax.Array, jax.Array]:
        """The mean loss and the output logits, no gradient."""
        return loss_and_logits(params, x, y, self.activation, self.loss)

    def right(self, logits, y) -> jax.Array:
        """Per example (and output unit): is the prediction on the right side of 0.5?"""
        return resolve_loss(self.loss).predicts_one(logits) == (y > 0.5)

    def accuracy(self, logits, y, dtype) -> jax.Array:
        """The fraction of examples (and output units) on the right side of 0.5."""
        return jnp.mean(self.right(logits, y).astype(dtype))

    def all_right(self, logits, y) -> jax.Array:
        """Whether every example (and output unit) is on the right side of 0.5."""
        return jnp.all(self.right(logits, y))
