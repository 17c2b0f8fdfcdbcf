"""Backpropagation by hand: the chain rule written out layer by layer.

No ``jax.grad``, ``jax.vjp`` or ``jax.jvp`` here: every derivative below is the
hand-derived one that sits beside its function in ``_activations`` and ``_losses``.
For a network with layers ``l = 1..L``, ``h_l = a_{l-1} W_l + b_l`` (``a_0 = x``),
``a_l = f_l(h_l)`` for hidden layers and logit ``o = h_L``, the batch-mean loss
``L = (1/B) sum_b l(o_b, y_b)`` gives

    delta_L  = dL/do   = l'(o, y) / B                    (output delta)
    dL/dW_l  = a_{l-1}^T delta_l                          (current value x backward gradient)
    dL/db_l  = sum over the batch of delta_l              (the bias input is 1)
    dL/da_{l-1} = delta_l W_l^T                            (back through the weights)
    delta_{l-1} = dL/dh_{l-1} = dL/da_{l-1} * f'(h_{l-1})  (back through the activation)

The result is the same tree as ``jax.grad`` gives, usable as the training gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..nn._activations import activation_key, resolve_activations
from ..nn._losses import resolve_loss
from ..nn._mlp import Trace, check_batch, forward_trace_unchecked, in_dtype, mean_loss
from ..nn._tree import Grads, Params, check_params

__all__ = [
    "Backward",
    "backward",
    "manual_grad",
    "manual_value_and_grad",
    "manual_value_and_grad_unchecked",
]


class Backward(NamedTuple):
    """Every backward quantity, by layer (index ``l`` is layer ``l + 1``).

    ``dh[l]`` is ``dL/dh`` (for the last layer ``dL/do``), ``da[l]`` is ``dL/da`` of
    hidden layer ``l + 1``, ``grads`` the parameter gradient tree. All batch arrays
    have shape ``(batch, width)``; ``dh`` is already divided by the batch size.
    """

    loss: jax.Array
    trace: Trace
    dh: tuple[jax.Array, ...]
    da: tuple[jax.Array, ...]
    grads: Grads


def backward(params: Params, x: jax.Array, y: jax.Array, *, activation, loss) -> Backward:
    """The forward pass, then the chain rule backwards; ``x``, ``y`` already validated (2-D).

    Computed in ``x``'s dtype; the gradient tree comes back in the parameters' dtype,
    as ``jax.grad``'s does.
    """
    given = params[0]["W"].dtype
    params = in_dtype(params, x.dtype)
    acts = resolve_activations(activation, len(params) - 1)
    spec = resolve_loss(loss)
    trace = forward_trace_unchecked(params, x, activation)
    o = trace.logits
    batch = o.shape[0]
    delta = spec.dlogit(o, y) / batch
    dh = [delta]
    da = []
    grads = []
    for l in range(len(params) - 1, -1, -1):
        a_prev = trace.x if l == 0 else trace.a[l - 1]
        grads.append({"W": a_prev.T @ delta, "b": jnp.sum(delta, axis=0)})
        if l > 0:
            da.append(delta @ params[l]["W"].T)
            delta = da[-1] * acts[l - 1].grad(trace.h[l - 1])
            dh.append(delta)
    return Backward(
        loss=mean_loss(o, y, spec),
        trace=trace,
        dh=tuple(reversed(dh)),
        da=tuple(reversed(da)),
        grads=in_dtype(tuple(reversed(grads)), given),
    )


def manual_value_and_grad(
    params: Params, x, y, *, activation="sigmoid", loss: str = "bce"
) -> tuple[jax.Array, Grads]:
    """``(loss, gradient)`` from one forward and one hand-written backward pass."""
    params = check_params(params)
    x, y = check_batch(params, x, y, resolve_loss(loss))
    activation = activation_key(activation, len(params) - 1)
    return _manual_value_and_grad_jit(params, x, y, activation, loss)


def manual_value_and_grad_unchecked(params, x, y, activation, loss):
    """``(loss, grads)`` by the chain rule, for validated 2-D ``x``, ``y`` (inside ``jit``)."""
    b = backward(params, x, y, activation=activation, loss=loss)
    return b.loss, b.grads


_manual_value_and_grad_jit = jax.jit(
    manual_value_and_grad_unchecked, static_argnames=("activation", "loss")
)


def manual_grad(params: Params, x, y, *, activation="sigmoid", loss: str = "bce") -> Grads:
    """The gradient of the loss by the chain rule written by hand, layer by layer.

    The same tree as [`autodiff_grad`][jaxbp.grads.autodiff_grad] and held to float64 agreement with it.

    Args:
      params: the network.
      x: inputs ``(batch, n_in)``.
      y: labels ``(batch,)`` or ``(batch, n_out)``.
      activation: hidden activation name(s).
      loss: ``"bce"``, ``"mse"``, ``"mse_linear"``, ``"half_mse"`` or ``"half_mse_linear"``.

    Returns:
      ``Grads``: ``dL/dW`` of shape ``(n_in, n_out)`` and ``dL/db`` of shape ``(n_out,)`` per layer.

    Examples:
      >>> from jaxbp import seed_exercise
      >>> ex = seed_exercise(dtype="float32")
      >>> g = manual_grad(ex.params, ex.x, ex.y)
      >>> g[1]["b"]  # dL/do = z - y
      Array([-0.47471744], dtype=float32)
    """
    return manual_value_and_grad(params, x, y, activation=activation, loss=loss)[1]
