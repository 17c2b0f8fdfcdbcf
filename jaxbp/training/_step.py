"""One training step: the seed's update rule, any optax optimizer, a jitted step.

``sgd_update`` is the exercise's rule ``w' = w - lr * dL/dw`` as a pure function
and ``sgd`` the same rule as an ``optax.GradientTransformation``. ``make_step``
compiles one step (gradient by ``jax.grad``, by hand, or by a user's function, then
the optimizer), for the built-in MLP or a [`Model`][jaxbp.nn.Model] of one's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..nn._losses import resolve_loss
from ..nn._mlp import check_batch
from ..nn._model import Model, check_is_model, check_model_batch, check_model_params
from ..nn._tree import Grads, Params, check_params, is_concrete, tree_norm
from ._objective import Objective

__all__ = [
    "Step",
    "StepInfo",
    "as_optimizer",
    "check_learning_rate",
    "make_step",
    "network_batch",
    "network_objective",
    "network_params",
    "sgd",
    "sgd_update",
]


def check_learning_rate(learning_rate, argname="learning_rate"):
    if isinstance(learning_rate, bool) or not (
        isinstance(learning_rate, (int, float)) or hasattr(learning_rate, "dtype")
    ):
        raise TypeError(f"{argname} must be a positive number; got {learning_rate!r}")
    if is_concrete(learning_rate):
        lr = np.asarray(learning_rate)  # on the host: a check, nothing to compile
        if lr.ndim != 0 or not bool(np.isfinite(lr)) or not bool(lr > 0):
            raise ValueError(f"{argname} must be a positive finite number; got {learning_rate!r}")


def sgd_update(params: Params, grads: Grads, learning_rate) -> Params:
    """The seed exercise's update ``w' = w - lr * dL/dw`` for every leaf.

    Args:
      params: the network.
      grads: a gradient tree of the same structure.
      learning_rate: a positive scalar (may be traced).

    Examples:
      >>> from jaxbp import seed_exercise, manual_grad
      >>> ex = seed_exercise(dtype="float32")
      >>> new = sgd_update(ex.params, manual_grad(ex.params, ex.x, ex.y), 0.5)
      >>> new[1]["b"]  # -1 - 0.5 * (z - y)
      Array([-0.7626413], dtype=float32)
    """
    check_learning_rate(learning_rate)
    if jax.tree_util.tree_structure(params) != jax.tree_util.tree_structure(grads):
        raise ValueError(
            "grads must have the same tree structure as params; got "
            f"{jax.tree_util.tree_structure(grads)} vs {jax.tree_util.tree_structure(params)}"
        )
    return jax.tree_util.tree_map(
        lambda p, g: p - jnp.asarray(learning_rate, p.dtype) * g, params, grads
    )


def sgd(learning_rate) -> optax.GradientTransformation:
    """The seed's rule as an optax transformation: updates ``-lr * g``.

    ``optax.apply_updates(params, updates)`` then computes ``w + (-lr g)``, which in
    IEEE arithmetic is exactly ``w - lr g`` ([`sgd_update`][jaxbp.training.sgd_update]).
    """
    check_learning_rate(learning_rate)

    def init(params):
        del params
        return optax.EmptyState()

    def update(grads, state, params=None):
        del params
        return jax.tree_util.tree_map(
            lambda g: -jnp.asarray(learning_rate, g.dtype) * g, grads
        ), state

    return optax.GradientTransformation(init, update)


def as_optimizer(optimizer, argname="optimizer") -> optax.GradientTransformation:
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    if isinstance(optimizer, (int, float)) and not isinstance(optimizer, bool):
        return sgd(optimizer)
    raise TypeError(
        f"{argname} must be an optax.GradientTransformation (e.g. optax.adam(1e-2)) or a "
        f"learning rate for plain SGD; got {type(optimizer).__name__}"
    )


class StepInfo(NamedTuple):
    """What one step saw: the loss at the parameters before the update, and ``||dL/dw||``."""

    loss: jax.Array
    grad_norm: jax.Array


def _step(params, opt_state, x, y, *, optimizer, objective: Objective):
    value, grads = objective.value_and_grad(params, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, StepInfo(loss=value, grad_norm=tree_norm(grads))


class Step:
    """A compiled training step, made by [`make_step`][jaxbp.training.make_step].

    ``step(params, opt_state, x, y) -> (params, opt_state, StepInfo)``. With
    ``donate=True`` the ``params`` and ``opt_state`` passed in are donated: their
    buffers are reused for the result and must not be used again.
    """

    def __init__(self, optimizer, *, activation, loss, grad, donate=False, model=None):
        self.optimizer = optimizer
        self.activation = activation
        self.loss = loss
        self.grad = grad
        self.model = model
        self.trace_count = 0  # how many times the step was traced (compiled)
        self._checked = (None, None, None)

        def traced(params, opt_state, x, y, objective):
            self.trace_count += 1
            return _step(params, opt_state, x, y, optimizer=optimizer, objective=objective)

        self.jitted = jax.jit(
            traced, donate_argnums=(0, 1) if donate else (), static_argnames=("objective",)
        )

    def init(self, params: Params) -> Any:
        """The optimizer state for ``params``."""
        return self.optimizer.init(network_params(params, self.model))

    def __call__(self, params: Params, opt_state, x, y):
        params = network_params(params, self.model)
        # The activations are normalized per network depth: one step serves any depth.
        objective = network_objective(params, self.model, self.activation, self.loss, self.grad)
        seen_x, seen_y, checked = self._checked
        if x is seen_x and y is seen_y:
            x, y = checked  # values are checked once per (x, y), not on every step of a loop
        else:
            checked = network_batch(params, self.model, x, y, self.loss)
            self._checked = (x, y, checked)
            x, y = checked
        return self.jitted(params, opt_state, x, y, objective=objective)


def network_params(params, model=None):
    """``params`` checked: the built-in MLP's layer tuple, or a pytree for ``model``."""
    return check_params(params) if model is None else check_model_params(model, params)


def network_objective(params, model, activation, loss, grad) -> Objective:
    """The objective of the built-in MLP ``params`` (its depth sets the activations) or of
    ``model``."""
    if model is None:
        return Objective.checked(activation, loss, grad, n_hidden=len(params) - 1)
    return Objective.checked(activation, loss, grad, model=model)


def network_batch(params, model, x, y, loss):
    """``(x, y)`` checked against the network, as arrays."""
    if model is None:
        return check_batch(params, x, y, loss if callable(loss) else resolve_loss(loss))
    return check_model_batch(model, params, x, y, loss)


def make_step(
    optimizer,
    *,
    activation="sigmoid",
    loss: str | Callable = "bce",
    grad: str | Callable = "autodiff",
    donate: bool = False,
    model: Model | None = None,
) -> Step:
    """A jitted training step for any optax optimizer.

    Args:
      optimizer: an ``optax.GradientTransformation``, or a learning rate for the
        seed's plain SGD ([`sgd`][jaxbp.training.sgd]).
      activation: hidden activation name(s) of the built-in MLP.
      loss: ``"bce"``, ``"mse"``, ``"mse_linear"``, ``"half_mse"`` or
        ``"half_mse_linear"``, or a function ``(outputs, y) -> per-example losses``.
      grad: ``"autodiff"`` (``jax.grad``), ``"manual"`` (the built-in MLP's
        hand-written chain rule) or a function ``(params, x, y) -> grads`` of your own.
      donate: reuse the buffers of the ``params`` and ``opt_state`` passed in for the
        result (less memory for big networks); the caller's arrays are then deleted
        and must not be used again. Off by default.
      model: a [`Model`][jaxbp.nn.Model] of your own (its ``apply`` is the network);
        None for the built-in MLP, whose parameters are the layer tuple.

    Returns:
      [`Step`][jaxbp.training.Step]: ``opt_state = step.init(params)``, then
      ``params, opt_state, info = step(params, opt_state, x, y)``.

    For minibatches, call the step on each batch: ``x`` and ``y`` may be any batch of
    the same shape, so one compiled step serves them all (a last, smaller batch
    compiles once more). [`train`][jaxbp.training.train] with ``batch_size=`` runs the same loop as one
    program, in the order [`minibatch`][jaxbp.training.minibatch] draws from ``data_key``; a Python loop
    of the step over those batches gives the same result (tested).

    Examples:
      >>> import optax
      >>> from jaxbp import seed_exercise
      >>> ex = seed_exercise(dtype="float32")
      >>> step = make_step(optax.sgd(0.5), grad="manual")
      >>> params, state = ex.params, step.init(ex.params)
      >>> for _ in range(3):
      ...     params, state, info = step(params, state, ex.x, ex.y)
      >>> step.trace_count  # compiled once, reused
      1
    """
    optimizer = as_optimizer(optimizer)
    # The activation is checked against the network at the first call.
    if model is not None:
        Objective.checked(activation, loss, grad, model=check_is_model(model))
    else:
        Objective.checked("sigmoid", loss, grad, n_hidden=0)
    if not isinstance(donate, bool):
        raise TypeError(f"donate must be True or False; got {donate!r}")
    return Step(optimizer, activation=activation, loss=loss, grad=grad, donate=donate, model=model)
