"""Training one network for many steps: the whole loop as one compiled program.

``train`` compiles the loop, a ``lax.scan`` over steps inside one ``jit``, of the step
``make_step`` compiles alone (``_step``); ``train_program`` is that loop as a function
``train_many`` maps over members.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..nn._mlp import check_key
from ..nn._model import Model, check_is_model
from ..nn._tree import Params, tree_norm
from ..util._checks import check_positive_int
from ..util._threefry import unrolled_threefry
from ._batches import DATA_ORDER_STREAM, check_batch_size, data_order_key, minibatch
from ._objective import Objective
from ._step import (
    Step,
    StepInfo,
    as_optimizer,
    check_learning_rate,
    make_step,
    network_batch,
    network_objective,
    network_params,
    sgd,
    sgd_update,
)

__all__ = [
    "DATA_ORDER_STREAM",
    "History",
    "Step",
    "StepInfo",
    "TrainResult",
    "data_order_key",
    "make_step",
    "sgd",
    "sgd_update",
    "train",
    "train_program",
]


class History(NamedTuple):
    """Records of a training run, one entry every ``record_every`` steps (every step for [`train`][jaxbp.training.train]).

    ``loss[k]`` and ``grad_norm[k]`` are taken at the parameters before update
    ``k * record_every``, on the batch that update uses (the whole training set, or
    with minibatches the minibatch). ``test_loss[k]`` and ``test_accuracy[k]``: the
    same parameters on the held-out set, when one was given (else None);
    ``eval_loss`` and ``eval_accuracy`` are older names for them.
    """

    loss: jax.Array
    grad_norm: jax.Array
    test_loss: jax.Array | None = None
    test_accuracy: jax.Array | None = None

    @property
    def eval_loss(self) -> jax.Array | None:
        """The older name of ``test_loss``."""
        return self.test_loss

    @property
    def eval_accuracy(self) -> jax.Array | None:
        """The older name of ``test_accuracy``."""
        return self.test_accuracy


class TrainResult(NamedTuple):
    """The outcome of a training run.

    ``params``/``opt_state`` are final; ``history`` per step; ``final_loss`` and
    ``final_logits`` after the last update; ``diverged`` is True when the gradient or
    the loss went non-finite (the network then stopped updating: no update computed
    from a non-finite gradient is applied); ``converged_at`` is the first number of
    updates after which the convergence criterion held, or -1 (with a loss threshold
    it is checked every ``record_every`` steps, else every step).
    """

    params: Params
    opt_state: Any
    history: History
    final_loss: jax.Array
    final_logits: jax.Array
    diverged: jax.Array
    converged_at: jax.Array


def _criterion(value, logits, y, objective: Objective, converge_loss):
    if converge_loss is not None:
        return value < converge_loss
    # Every example on the right side of 0.5 (the probability's, or for mse_linear the output's).
    return objective.all_right(logits, y)


class Carry(NamedTuple):
    """The state of one network between steps: what ``train_records`` carries along.

    With minibatches, also the data order's key and this epoch's order of the examples.
    """

    params: Params
    opt_state: Any
    diverged: jax.Array  # bool[]
    converged_at: jax.Array  # int32[], -1 until the criterion holds
    data_key: Any = None
    order: jax.Array | None = None  # int32[n_examples]: the current epoch's permutation


def train_start(params, optimizer, *, data_key=None, n_examples: int = 0) -> Carry:
    """The state before the first step (with ``data_key``: minibatches of ``n_examples``)."""
    order = None if data_key is None else jnp.zeros((n_examples,), jnp.int32)
    return Carry(
        params,
        optimizer.init(params),
        jnp.zeros((), bool),
        jnp.full((), -1, jnp.int32),
        data_key,
        order,
    )


def train_records(
    carry: Carry,
    x,
    y,
    optimizer,
    objective: Objective,
    *,
    first: int | jax.Array,
    count: int,
    record_every,
    converge_loss=None,
    batch_size: int | None = None,
    test_xy=None,
) -> tuple[Carry, History]:
    """Records ``first .. first + count`` of a run: ``count * record_every`` steps as ``lax.scan``.

    The step at a record point records the loss and the gradient norm it computes
    anyway (the loss from its own forward pass, the norm of its own gradient); the
    steps between compute neither. With ``test_xy`` (the held-out inputs and labels),
    a record point also evaluates the held-out set. With ``batch_size``, each step takes its minibatch ([`minibatch`][jaxbp.training.minibatch])
    and convergence is judged only after the last step, on the whole training set.
    A run cut into several calls (``first`` advancing by ``count``) takes exactly the
    steps of one call.
    """
    vg = objective.value_logits_and_grad
    full_batch = batch_size is None

    def batch_of(carry, t):
        if full_batch:
            return carry, x, y
        return minibatch(carry, t, x, y, batch_size)

    def update(carry, t, grads, logits, yb, value=None):
        params, opt_state, diverged, conv_at = carry[:4]
        updates, new_state = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        if converge_loss is None and full_batch:
            hit = _criterion(None, logits, yb, objective, None)
            conv_at = jnp.where((conv_at < 0) & hit & ~diverged, t, conv_at)
        # A non-finite logit (so a non-finite loss) stops the network where it is: flagged,
        # never averaged in, never updated again. Tested on the logits the step computes
        # anyway: a norm of the gradient or a finiteness test of the new parameters cost
        # far more of a seed-network step (docs/benchmarks.md).
        diverged = diverged | ~jnp.all(jnp.isfinite(logits))
        if value is not None:  # at a record point: a non-finite loss with finite logits
            diverged = diverged | ~jnp.isfinite(value)  # (an overflowing square) also counts
        keep = lambda new, old: jnp.where(diverged, old, new)
        params = jax.tree_util.tree_map(keep, new_params, params)
        opt_state = jax.tree_util.tree_map(keep, new_state, opt_state)
        return carry._replace(
            params=params, opt_state=opt_state, diverged=diverged, converged_at=conv_at
        )

    def plain(carry, t):
        # The loss value is not used here, so XLA drops its computation: its gradient
        # needs sigma(o) - y, not log_sigmoid(o).
        carry, xb, yb = batch_of(carry, t)
        (_, logits), grads = vg(carry.params, xb, yb)
        return update(carry, t, grads, logits, yb), None

    def block(carry_k, _):
        carry, k = carry_k
        t0 = k * record_every
        carry, xb, yb = batch_of(carry, t0)
        (value, logits), grads = vg(carry.params, xb, yb)
        if converge_loss is not None and full_batch:  # checked at record points
            hit = (value < converge_loss) & ~carry.diverged
            conv_at = jnp.where((carry.converged_at < 0) & hit, t0, carry.converged_at)
            carry = carry._replace(converged_at=conv_at)
        record = [value, tree_norm(grads)]
        if test_xy is not None:
            test_loss, test_logits = objective.loss_and_logits(carry.params, *test_xy)
            record += [test_loss, objective.accuracy(test_logits, test_xy[1], value.dtype)]
        carry = update(carry, t0, grads, logits, yb, value)
        if record_every > 1:
            # The step number is carried along, not scanned over: an array of step
            # numbers would be one more operation per record.
            (carry, _), _ = jax.lax.scan(
                lambda ct, _: ((plain(ct[0], ct[1])[0], ct[1] + 1), None),
                (carry, t0 + 1),
                length=record_every - 1,
            )
        return (carry, k + 1), tuple(record)

    # Record numbers carried along, as the step numbers inside a record are.
    (carry, _), records = jax.lax.scan(block, (carry, jnp.asarray(first, jnp.int32)), length=count)
    return carry, History(*records)


def train_finish(carry: Carry, x, y, objective: Objective, *, steps, converge_loss=None):
    """The final loss and logits, and the convergence and divergence flags, after ``steps``."""
    final_loss, final_logits = objective.loss_and_logits(carry.params, x, y)
    hit = _criterion(final_loss, final_logits, y, objective, converge_loss) & ~carry.diverged
    conv_at = jnp.where((carry.converged_at < 0) & hit, jnp.int32(steps), carry.converged_at)
    diverged = carry.diverged | ~jnp.isfinite(final_loss)
    return final_loss, final_logits, diverged, conv_at


def train_program(
    params,
    x,
    y,
    optimizer,
    objective: Objective,
    *,
    steps,
    record_every=1,
    converge_loss=None,
    batch_size=None,
    data_key=None,
    test_xy=None,
) -> TrainResult:
    """One network, ``steps`` updates, as ``lax.scan`` (call it inside ``jit``; ``vmap`` it).

    The single-network training program that [`train`][jaxbp.training.train] compiles and that
    ``train_many`` maps over members (there in pieces: ``train_start``,
    ``train_records``, ``train_finish``). ``x``, ``y`` are validated 2-D arrays;
    with ``batch_size``, ``data_key`` draws the minibatch order.
    """
    start = train_start(
        params, optimizer, data_key=None if batch_size is None else data_key, n_examples=x.shape[0]
    )
    carry, history = train_records(
        start,
        x,
        y,
        optimizer,
        objective,
        first=0,
        count=steps // record_every,
        record_every=record_every,
        converge_loss=converge_loss,
        batch_size=batch_size,
        test_xy=test_xy,
    )
    final_loss, final_logits, diverged, conv_at = train_finish(
        carry, x, y, objective, steps=steps, converge_loss=converge_loss
    )
    return TrainResult(
        carry.params, carry.opt_state, history, final_loss, final_logits, diverged, conv_at
    )


@partial(
    jax.jit,
    static_argnames=("make_optimizer", "objective", "steps", "record_every", "batch_size"),
)
def _train(
    params, x, y, hyper, data_key, test_xy, *, make_optimizer: Callable, objective: Objective,
    steps, record_every, batch_size,
):  # fmt: skip
    return train_program(
        params,
        x,
        y,
        make_optimizer(hyper),
        objective,
        steps=steps,
        record_every=record_every,
        batch_size=batch_size,
        data_key=data_key,
        test_xy=test_xy,
    )


def test_set(x_test, y_test, eval_x=None, eval_y=None):
    """The held-out pair, given as ``x_test``/``y_test`` or by the older names
    ``eval_x``/``eval_y`` (not both); both arrays or neither."""
    if eval_x is not None or eval_y is not None:
        if x_test is not None or y_test is not None:
            raise TypeError(
                "the held-out set is given twice: x_test=, y_test= and the older "
                "eval_x=, eval_y= name the same thing; give one pair"
            )
        x_test, y_test = eval_x, eval_y
    if (x_test is None) != (y_test is None):
        raise ValueError("x_test and y_test go together: give both or neither")
    return x_test, y_test


def check_test_set(check: Callable, x_test, y_test, dtype):
    """The held-out set checked like a training batch (``check(x, y) -> (x, y)``), its
    inputs in ``dtype`` (None when there is none)."""
    if x_test is None:
        return None
    try:
        x, y = check(x_test, y_test)
    except (ValueError, TypeError) as e:
        raise type(e)(f"x_test, y_test: {e}") from None
    return x.astype(dtype), (y.astype(dtype) if jnp.issubdtype(y.dtype, jnp.floating) else y)


class _Fixed(NamedTuple):
    """A constant optimizer factory, hashable by the optimizer it holds (a jit static)."""

    optimizer: optax.GradientTransformation

    def __call__(self, _):
        return self.optimizer


def train(
    params: Params,
    x,
    y,
    optimizer,
    *,
    steps: int,
    activation="sigmoid",
    loss: str | Callable = "bce",
    grad: str | Callable = "autodiff",
    batch_size: int | None = None,
    data_key=None,
    model: Model | None = None,
    x_test=None,
    y_test=None,
    record_every: int = 1,
    eval_x=None,
    eval_y=None,
) -> TrainResult:
    """Train one network for ``steps`` updates, compiled as one program.

    The loop is a ``lax.scan`` inside one ``jit``; with full batches its result equals
    calling [`make_step`][jaxbp.training.make_step] ``steps`` times from Python.

    Args:
      params: the initial network (not donated).
      x: inputs ``(batch, n_in)``.
      y: labels ``(batch,)`` or ``(batch, n_out)``.
      optimizer: an ``optax.GradientTransformation`` or a learning rate for plain
        SGD. A learning rate is passed as data, so other rates reuse the program.
      steps: the number of updates, >= 1.
      activation: hidden activation name(s), as for [`make_step`][jaxbp.training.make_step].
      loss: the loss name, as for [`make_step`][jaxbp.training.make_step].
      grad: ``"autodiff"`` or ``"manual"``, as for [`make_step`][jaxbp.training.make_step].
      batch_size: None for full-batch steps; else each step takes ``batch_size``
        examples: each epoch visits the examples in an order drawn from ``data_key``
        ([`minibatch`][jaxbp.training.minibatch]), and the ``n % batch_size`` left over at the end of an
        epoch's order are dropped for that epoch.
      data_key: the key the minibatch order is drawn from (needed with ``batch_size``);
        [`data_order_key`][jaxbp.training.data_order_key] gives the one ``train_many`` uses for a member.
      model: a [`Model`][jaxbp.nn.Model] of your own, whose ``apply`` the ``params``
        (any pytree) go through; None for the built-in MLP.
      x_test: a held-out set's inputs, evaluated at every record point; training
        never sees it.
      y_test: the held-out set's labels.
      record_every: history resolution in steps (must divide ``steps``).
      eval_x: the older name of ``x_test``.
      eval_y: the older name of ``y_test``.

    Returns:
      [`TrainResult`][jaxbp.training.TrainResult]: ``params``, ``opt_state``, ``history.loss`` and
      ``history.grad_norm`` of shape ``(steps // record_every,)`` (the loss before each
      recorded update, on that update's batch), ``history.test_loss`` and
      ``history.test_accuracy`` (with a held-out set), ``final_loss`` (after the last
      update, on the whole training set), ``diverged`` and ``converged_at`` (all
      examples on the right side of 0.5; with minibatches judged after the last step).

    Examples:
      >>> from jaxbp import seed_exercise
      >>> ex = seed_exercise(dtype="float32")
      >>> result = train(ex.params, ex.x, ex.y, 0.5, steps=100)
      >>> bool(result.final_loss < result.history.loss[0])
      True
    """
    if model is not None:
        check_is_model(model)
    params = network_params(params, model)
    steps = check_positive_int(steps, "steps")
    record_every = check_positive_int(record_every, "record_every")
    if steps % record_every:
        raise ValueError(
            f"record_every must be a positive divisor of steps={steps}; got {record_every}"
        )
    objective = network_objective(params, model, activation, loss, grad)
    x, y = network_batch(params, model, x, y, loss)
    batch_size = check_batch_size(batch_size, x.shape[0])
    if batch_size is not None and data_key is None:
        raise ValueError(
            "batch_size needs data_key= (a jax.random key the minibatch order is drawn from)"
        )
    if batch_size is None:
        data_key = None
    elif data_key is not None:
        data_key = check_key(data_key, "data_key")
    x_test, y_test = test_set(x_test, y_test, eval_x, eval_y)
    test_xy = check_test_set(
        lambda a, b: network_batch(params, model, a, b, loss), x_test, y_test, x.dtype
    )
    if isinstance(optimizer, (int, float)) and not isinstance(optimizer, bool):
        check_learning_rate(optimizer, "optimizer (a learning rate for plain SGD)")
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        make_optimizer, hyper = sgd, jnp.asarray(optimizer, dtype)
    else:
        make_optimizer, hyper = _Fixed(as_optimizer(optimizer)), None
    with unrolled_threefry():
        return _train(
            params,
            x,
            y,
            hyper,
            data_key,
            test_xy,
            make_optimizer=make_optimizer,
            objective=objective,
            steps=steps,
            record_every=record_every,
            batch_size=batch_size,
        )
