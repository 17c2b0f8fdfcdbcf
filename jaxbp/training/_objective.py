"""What a training step descends, as one value: the network, the loss, the gradient source.

An ``Objective`` is the hashable value that every training function passes on (and
``jit`` takes as one static argument): the network (the built-in MLP's hidden
activation(s), or a model's own ``apply``), the loss on its output logits, and where
the gradient comes from (``jax.grad``, the chain rule by hand, or a user's function).
Its methods are what training asks of it.
"""

from __future__ import annotations

from collections.abc import Callable
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
from ..nn._mlp import forward_trace_unchecked, mean_loss
from ..nn._tree import Grads, Params

__all__ = ["Objective"]


class Objective(NamedTuple):
    """The network, the loss and the gradient source of a training run.

    Attributes:
      activation: for the built-in MLP, one activation name or a tuple of names, one
        per hidden layer (as ``jaxbp.nn._activations.activation_key`` normalizes
        them); None for a model with an ``apply`` of its own.
      loss: a loss name ([`jaxbp.LOSSES`][jaxbp.nn.LOSSES]), or a function
        ``(outputs, y) -> per-example losses`` (shape ``(batch,)``), averaged over
        the batch.
      grad: ``"autodiff"`` (``jax.grad``), ``"manual"`` (the built-in MLP's chain
        rule by hand), or a function ``(params, x, y) -> grads`` of the mean loss (a
        user's own derivation).
      apply: a model's ``(params, x) -> outputs``; None for the built-in MLP.
    """

    activation: str | tuple[str, ...] | None
    loss: str | Callable
    grad: str | Callable = "autodiff"
    apply: Callable | None = None

    @classmethod
    def checked(cls, activation, loss, grad, *, n_hidden: int = 0, model=None) -> Objective:
        """The objective for the built-in MLP with ``n_hidden`` hidden layers, or for
        ``model`` (a [`Model`][jaxbp.nn.Model]), each part checked."""
        if not callable(loss):
            resolve_loss(loss)
        if not callable(grad):
            check_grad_source(grad)
        if model is None:
            return cls(activation_key(activation, n_hidden), loss, grad)
        if grad == "manual":
            raise ValueError(
                f"grad='manual' is the built-in MLP's derivation by hand; model "
                f"{model.name!r} has none: use grad='autodiff' or pass your own gradient "
                "function grad=f(params, x, y)"
            )
        if activation not in (None, "sigmoid"):
            raise ValueError(
                f"activation={activation!r} sets the built-in MLP's hidden units; model "
                f"{model.name!r} applies its own"
            )
        return cls(None, loss, grad, model.apply)

    def loss_and_logits(self, params: Params, x, y) -> tuple[jax.Array, jax.Array]:
        """The mean loss and the output logits, no gradient."""
        if self.apply is None and not callable(self.loss):
            return loss_and_logits(params, x, y, self.activation, self.loss)
        o = self.logits(params, x)
        if callable(self.loss):
            return jnp.mean(self.loss(o, y)), o
        return mean_loss(o, y, resolve_loss(self.loss)), o

    def logits(self, params: Params, x) -> jax.Array:
        """The network's outputs for the batch ``x``."""
        if self.apply is None:
            return forward_trace_unchecked(params, x, self.activation).logits
        return self.apply(params, x)

    def value_and_grad(self, params: Params, x, y) -> tuple[jax.Array, Grads]:
        """``(loss, dL/dparams)`` on a validated batch."""
        if self._built_in:
            return value_and_grad_fn(self.grad)(params, x, y, self.activation, self.loss)
        (value, _), grads = self.value_logits_and_grad(params, x, y)
        return value, grads

    def value_logits_and_grad(self, params: Params, x, y):
        """``((loss, logits), dL/dparams)``: the logits come from the same forward pass."""
        if self._built_in:
            return value_and_grad_aux_fn(self.grad)(params, x, y, self.activation, self.loss)
        if callable(self.grad):
            return self.loss_and_logits(params, x, y), self.grad(params, x, y)
        return jax.value_and_grad(self.loss_and_logits, has_aux=True)(params, x, y)

    @property
    def _built_in(self) -> bool:
        """The built-in MLP with a named loss and gradient: the library's own functions."""
        return self.apply is None and not callable(self.loss) and not callable(self.grad)

    def right(self, logits, y) -> jax.Array:
        """Per example (and output unit): is the prediction right? The largest logit at the
        label's class for softmax cross-entropy, else on the label's side of 0.5.

        For a loss given as a function: the logit's sign (``sigmoid(o) > 0.5``)."""
        if callable(self.loss):
            return (logits > 0) == (y > 0.5)
        return resolve_loss(self.loss).right(logits, y)

    def accuracy(self, logits, y, dtype) -> jax.Array:
        """The fraction of examples (and output units) on the right side of 0.5."""
        return jnp.mean(self.right(logits, y).astype(dtype))

    def all_right(self, logits, y) -> jax.Array:
        """Whether every example (and output unit) is on the right side of 0.5."""
        return jnp.all(self.right(logits, y))
