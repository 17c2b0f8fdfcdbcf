"""Gradients by automatic differentiation, and the choice between the two analytic sources.

``autodiff_grad`` is ``jax.grad`` of the loss, jitted. ``value_and_grad_fn``
returns the ``(loss, grads)`` function that training uses, either by ``jax`` or
by the hand-written chain rule of ``_manual``; both take validated 2-D ``x``, ``y``.

This module knows nothing of training loops, files, plots or the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax

from ._activations import resolve_activations
from ._losses import resolve_loss
from ._manual import backward
from ._mlp import _forward, _mean_loss, check_batch
from ._tree import Grads, Params, check_params

__all__ = [
    "GRAD_SOURCES",
    "autodiff_grad",
    "static_activation",
    "value_and_grad_aux_fn",
    "value_and_grad_fn",
]

GRAD_SOURCES = ("autodiff", "manual")


def static_activation(activation, n_hidden: int):
    """Validate ``activation`` and make it hashable (a str or a tuple), for use as a jit static."""
    resolve_activations(activation, n_hidden)
    return activation if isinstance(activation, str) else tuple(activation)


def _loss(params, x, y, activation, loss):
    return _mean_loss(_forward(params, x, activation).logits, y, resolve_loss(loss))


def _manual_value_and_grad(params, x, y, activation, loss):
    b = backward(params, x, y, activation=activation, loss=loss)
    return b.loss, b.grads


def _loss_and_logits(params, x, y, activation, loss):
    o = _forward(params, x, activation).logits
    return _mean_loss(o, y, resolve_loss(loss)), o


def _manual_value_and_grad_aux(params, x, y, activation, loss):
    b = backward(params, x, y, activation=activation, loss=loss)
    return (b.loss, b.trace.logits), b.grads


def value_and_grad_aux_fn(grad: str) -> Callable:
    """``f(params, x, y, activation, loss) -> ((loss, logits), grads)``: the logits come free."""
    if grad == "autodiff":
        return jax.value_and_grad(_loss_and_logits, has_aux=True)
    if grad == "manual":
        return _manual_value_and_grad_aux
    raise ValueError(f"grad must be one of {GRAD_SOURCES}; got {grad!r}")


def value_and_grad_fn(grad: str) -> Callable:
    """``f(params, x, y, activation, loss) -> (loss, grads)`` for ``grad`` in :data:`GRAD_SOURCES`."""
    if grad == "autodiff":
        return jax.value_and_grad(_loss)
    if grad == "manual":
        return _manual_value_and_grad
    raise ValueError(f"grad must be one of {GRAD_SOURCES}; got {grad!r}")


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
      loss: ``"bce"``, ``"mse"`` or ``"mse_linear"``.

    Returns:
      ``Grads``, the same tree as ``params``.

    >>> from jaxbp import seed_exercise
    >>> ex = seed_exercise()
    >>> autodiff_grad(ex.params, ex.x, ex.y)[1]["W"][:, 0]  # (G(H1), G(H2)) * (z - y)
    Array([-0.46617904, -0.0565877 ], dtype=float32)
    """
    params = check_params(params)
    x, y = check_batch(params, x, y, resolve_loss(loss))
    return _autodiff_grad(params, x, y, static_activation(activation, len(params) - 1), loss)
