"""Gradients by automatic differentiation, and the choice between the two analytic sources.

``autodiff_grad`` is ``jax.grad`` of the loss, jitted. ``value_and_grad_fn``
returns the ``(loss, grads)`` function that training uses, either by ``jax`` or
by the hand-written chain rule of ``_manual``; both take validated 2-D ``x``, ``y``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax

from ..nn._activations import activation_key
from ..nn._losses import resolve_loss
from ..nn._mlp import check_batch, forward_trace_unchecked, mean_loss
from ..nn._tree import Grads, Params, check_params
from ._manual import backward, manual_value_and_grad_unchecked

__all__ = [
    "GRAD_SOURCES",
    "autodiff_grad",
    "check_grad_source",
    "loss_and_logits",
    "value_and_grad_aux_fn",
    "value_and_grad_fn",
]

GRAD_SOURCES = ("autodiff", "manual")


def check_grad_source(grad) -> str:
    """``grad`` if it names a gradient source (``GRAD_SOURCES``), else a ValueError."""
    if not isinstance(grad, str) or grad not in GRAD_SOURCES:
        raise ValueError(f"grad must be one of {GRAD_SOURCES}; got {grad!r}")
    return grad


def _loss(params, x, y, activation, loss):
    return mean_loss(forward_trace_unchecked(params, x, activation).logits, y, resolve_loss(loss))


def loss_and_logits(params, x, y, activation, loss):
    o = forward_trace_unchecked(params, x, activation).logits
    return mean_loss(o, y, resolve_loss(loss)), o


def _manual_value_and_grad_aux(params, x, y, activation, loss):
    b = backward(params, x, y, activation=activation, loss=loss)
    return (b.loss, b.trace.logits), b.grads


def value_and_grad_aux_fn(grad: str) -> Callable:
    """``f(params, x, y, activation, loss) -> ((loss, logits), grads)``: the logits come free."""
    if check_grad_source(grad) == "autodiff":
        return jax.value_and_grad(loss_and_logits, has_aux=True)
    return _manual_value_and_grad_aux


def value_and_grad_fn(grad: str) -> Callable:
    """``f(params, x, y, activation, loss) -> (loss, grads)`` for ``grad`` in ``GRAD_SOURCES``."""
    if check_grad_source(grad) == "autodiff":
        return jax.value_and_grad(_loss)
    return manual_value_and_grad_unchecked


@partial(jax.jit, static_argnames=("activation", "loss"))
def _autodiff_grad(params, x, y, activation, loss):
    return jax.grad(_loss)(params, x, y, activation, loss)


def autodiff_grad(params: Params, x, y, *, activation="sigmoid", loss: str = "bce") -> Grads:
    """The gradient of the loss by ``jax.grad``, compiled with ``jit``.

    Args:
      params: the network.
      x: inputs ``(batch, n_in)``.
      y: labels ``(batch,)`` or ``(batch, n_out)``.
      activation: hidden activation name(s).
      loss: ``"bce"``, ``"mse"``, ``"mse_linear"``, ``"half_mse"`` or ``"half_mse_linear"``.

    Returns:
      ``Grads``, the same tree as ``params``.

    Examples:
      >>> from jaxbp import seed_exercise
      >>> ex = seed_exercise(dtype="float32")
      >>> autodiff_grad(ex.params, ex.x, ex.y)[1]["W"][:, 0]  # (G(H1), G(H2)) * (z - y)
      Array([-0.46617904, -0.0565877 ], dtype=float32)
    """
    params = check_params(params)
    x, y = check_batch(params, x, y, resolve_loss(loss))
    return _autodiff_grad(params, x, y, activation_key(activation, len(params) - 1), loss)
