"""The arguments of one ``train_many`` call, checked: what a member is, the data, the grid.

Each setting that can be checked without the data has one rule (``check_setting``),
which ``train_many`` and a sweep config both apply; ``check_config`` checks every
argument, the data against the network (the built-in MLP's sizes, or a model traced
abstractly), and returns the ``Config`` the rest of ``train_many`` reads.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from typing import Any

import jax
import optax

from ..nn._losses import resolve_loss
from ..nn._mlp import as_float_array, check_batch, check_key, check_scheme, check_sizes
from ..nn._model import Model, check_init, check_is_model, check_model_batch
from ..training._batches import check_batch_size
from ..training._objective import Objective
from ..training._train import check_test_set, sgd, test_set
from ..util._checks import check_positive_int, is_int
from ..util._dtypes import floating_dtype, resolve_dtype
from ._grid import Grid, check_widths, grid_axis
from ._program import BATCHINGS
from ._spec import Footprint, MemberSpec, footprint, model_footprint
from ._widths import widest

__all__ = ["SETTINGS", "Config", "check_config", "check_setting", "default_record_every"]


@dataclasses.dataclass(frozen=True)
class Config:
    """The checked arguments of one ``train_many`` call: what a member is (``spec``),
    the data, the grid, and how the members are to be run."""

    spec: MemberSpec
    net: Footprint
    key: Any
    x: jax.Array
    y: jax.Array
    test_xy: tuple[jax.Array, jax.Array] | None
    grid: Grid
    batching: str
    members: tuple[int, int]
    chunk_size: int | str
    memory_budget: int | None
    progress: Any

    @property
    def step_batch(self) -> int:
        """Examples one step takes: the minibatch, or the whole training set."""
        return self.x.shape[0] if self.spec.batch_size is None else self.spec.batch_size


def default_record_every(steps: int) -> int:
    """The largest divisor of ``steps`` that keeps about 100 history points."""
    every = max(1, steps // 100)
    while steps % every:
        every -= 1
    return every


def _check_optimizer(optimizer) -> Callable:
    if optimizer is None:
        return sgd
    if isinstance(optimizer, optax.GradientTransformation) or not callable(optimizer):
        raise TypeError(
            "optimizer must be a factory taking the learning rate, such as optax.adam; got "
            f"{type(optimizer).__name__} (pass learning rates through learning_rate=)"
        )
    return optimizer


def _check_members(members, n_members: int) -> tuple[int, int]:
    if members is None:
        return 0, n_members
    if (
        not isinstance(members, tuple)
        or len(members) != 2
        or not all(is_int(v) for v in members)
        or not 0 <= members[0] < members[1] <= n_members
    ):
        raise ValueError(
            f"members must be a (start, stop) pair with 0 <= start < stop <= {n_members} "
            f"(the grid's member count); got {members!r}"
        )
    return int(members[0]), int(members[1])


def _check_data(sizes, x, y, x_test, y_test, loss, dtype):
    """The training batch and the held-out set, checked against an MLP of these sizes."""
    spec = resolve_loss(loss)
    # The checks read the layers' shapes and dtype only: no arrays (nothing to compile).
    probe = tuple(
        {"W": jax.ShapeDtypeStruct((a, b), dtype), "b": jax.ShapeDtypeStruct((b,), dtype)}
        for a, b in itertools.pairwise(sizes)
    )
    # The networks compute in ``dtype``: asked for explicitly, or x's own (dtype=None).
    x, y = (a.astype(dtype) for a in check_batch(probe, x, y, spec))
    check = lambda a, b: check_batch(probe, a, b, spec)
    return x, y, check_test_set(check, x_test, y_test, dtype)


def _check_model(model: Model, key, x, y, x_test, y_test, loss, dtype):
    """A model's parameter shapes and dtype (from its init, traced abstractly), and the
    training batch and held-out set checked against it, in that dtype."""
    wanted = None if dtype is None else resolve_dtype(dtype)
    # The init is traced with a scale in the dtype asked for (else JAX's default float);
    # its parameters' dtype is the networks' (the scales are then given in it).
    probe_key = jax.random.fold_in(key, 0)
    try:
        params, init_dtype = check_init(model, probe_key, wanted or resolve_dtype(None))
    except ValueError as e:
        if wanted is None:
            raise
        try:  # a scale of another dtype than the init's own: say so, if that is it
            params, init_dtype = check_init(model, probe_key, resolve_dtype(None))
        except ValueError:
            raise e from None
        if init_dtype == wanted:
            raise e from None
    if wanted is not None and wanted != init_dtype:
        raise ValueError(
            f"model {model.name!r}: its init returns {init_dtype} parameters, but "
            f"dtype={dtype!r} was asked for; give dtype={str(init_dtype)!r} (or None), or an "
            f"init in {wanted}"
        )
    wider = floating_dtype(x)
    if wanted is None and wider is not None and wider.itemsize > init_dtype.itemsize:
        raise ValueError(
            f"x is {wider} but model {model.name!r} computes in {init_dtype} (its init's "
            f"dtype); give dtype={str(init_dtype)!r} to compute in it, x as {init_dtype}, "
            f"or an init in {wider}"
        )
    if wanted is not None:  # asked for: the data are cast to it, as for the built-in MLP
        x = as_float_array(x, init_dtype, "x")
    x, y = check_model_batch(model, params, x, y, loss)
    check = lambda a, b: check_model_batch(model, params, a, b, loss)
    return params, init_dtype, x, y, check_test_set(check, x_test, y_test, init_dtype)


def _check_network(net):
    """``train_many``'s network: a ``Model``, or the built-in MLP's layer widths."""
    if isinstance(net, Model):
        return check_is_model(net)
    return check_sizes(net)


def _check_widths_for(widths, network) -> tuple[int, ...] | None:
    """``widths`` checked, and checked against the network it widens (checked sizes, a
    ``Model``, or None when no network is given)."""
    if widths is None:
        return None
    if isinstance(network, Model):
        raise ValueError(
            f"widths sets the hidden width of the built-in MLP; model {network.name!r} has "
            "none to set (train one model per width, or give sizes and widths)"
        )
    widths = check_widths(widths)
    if network is None:
        raise ValueError("widths sets the hidden width of the built-in MLP: it needs sizes")
    if len(network) < 3:
        raise ValueError(
            f"widths sets the hidden layers' width, but sizes={list(network)} has no hidden layer"
        )
    return widths


def _check_record_every(record_every, steps: int) -> int:
    if record_every is None:
        return default_record_every(steps)
    if not is_int(record_every) or record_every < 1 or steps % record_every:
        raise ValueError(
            f"record_every must be a positive divisor of steps={steps}; got {record_every!r}"
        )
    return int(record_every)


def _check_converge_loss(converge_loss) -> float | None:
    if converge_loss is not None and not (
        isinstance(converge_loss, (int, float)) and math.isfinite(converge_loss)
    ):
        raise ValueError(f"converge_loss must be a finite number or None; got {converge_loss!r}")
    return converge_loss


def _check_crossed(crossed, n_inits: int, batch_size) -> tuple[int, int] | None:
    if crossed is None:
        return None
    if (
        not isinstance(crossed, tuple)
        or len(crossed) != 2
        or not all(is_int(v) and v >= 1 for v in crossed)
        or crossed[0] * crossed[1] != n_inits
    ):
        raise ValueError(
            f"crossed must be a pair (rows, columns) of positive integers whose product is "
            f"n_inits={n_inits}; got {crossed!r}"
        )
    if batch_size is None:
        raise ValueError("crossed separates initialization from data order: it needs batch_size")
    return int(crossed[0]), int(crossed[1])


def _check_memory_budget(budget) -> int | None:
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0
    ):
        raise ValueError(f"memory_budget must be a positive number of bytes; got {budget!r}")
    return None if budget is None else int(budget)


# The settings of ``train_many`` that can be checked without the data, each by one rule;
# a rule sees the settings checked before it (``record_every`` needs ``steps``).
_RULES: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "sizes": lambda v, _: _check_network(v),
    "widths": lambda v, checked: _check_widths_for(v, checked.get("sizes")),
    "n_inits": lambda v, _: check_positive_int(v, "n_inits"),
    "steps": lambda v, _: check_positive_int(v, "steps"),
    "scheme": lambda v, _: check_scheme(v),
    "record_every": lambda v, checked: _check_record_every(v, checked["steps"]),
    "converge_loss": lambda v, _: _check_converge_loss(v),
    "memory_budget": lambda v, _: _check_memory_budget(v),
    "batch_size": lambda v, _: None if v is None else check_positive_int(v, "batch_size"),
}
SETTINGS = tuple(_RULES)
"""The ``train_many`` keywords ``check_setting`` knows, in the order they are checked."""


def check_setting(name: str, value, checked: dict[str, Any] | None = None):
    """``value`` of the ``train_many`` keyword ``name`` checked by the rule ``train_many``
    applies itself, without the data (``batch_size`` is checked against the training set
    later); ``checked`` holds the settings checked before it (``record_every`` needs
    ``steps``). A sweep config checks its values with this before any data is loaded.

    Examples:
      >>> check_setting("record_every", 7, {"steps": 40})
      Traceback (most recent call last):
      ...
      ValueError: record_every must be a positive divisor of steps=40; got 7
    """
    return _RULES[name](value, checked or {})


def check_config(
    key, sizes, x, y, *, n_inits, steps, learning_rate, optimizer, init_scale, scheme,
    activation, loss, grad, converge_loss, chunk_size, memory_budget, record_every,
    keep_params, dtype, progress, members, x_test, y_test, batching, batch_size, crossed,
    eval_x, eval_y, widths=None,
) -> Config:  # fmt: skip
    """Every argument of ``train_many`` checked, with a clear error for each; defaults filled."""
    key = check_key(key)
    given = dict(
        sizes=sizes, widths=widths, n_inits=n_inits, steps=steps, scheme=scheme, record_every=record_every,
        converge_loss=converge_loss, memory_budget=memory_budget,
    )  # fmt: skip
    s: dict[str, Any] = {}
    for name, value in given.items():
        s[name] = check_setting(name, value, s)
    sizes, n_inits, steps = s["sizes"], s["n_inits"], s["steps"]
    model = sizes if isinstance(sizes, Model) else None
    widths = s["widths"]
    if widths is not None:
        sizes = widest(sizes, widths)
    x_test, y_test = test_set(x_test, y_test, eval_x, eval_y)
    if model is None:
        dtype = resolve_dtype(dtype, like=(x,))
        objective = Objective.checked(activation, loss, grad, n_hidden=len(sizes) - 2)
        x, y, test_xy = _check_data(sizes, x, y, x_test, y_test, loss, dtype)
    else:
        objective = Objective.checked(activation, loss, grad, model=model)
        params, dtype, x, y, test_xy = _check_model(model, key, x, y, x_test, y_test, loss, dtype)
    if batching not in BATCHINGS:
        raise ValueError(f"batching must be one of {BATCHINGS}; got {batching!r}")
    grid = Grid(
        grid_axis(learning_rate, "learning_rate"),
        grid_axis(init_scale, "init_scale"),
        n_inits,
        widths,
    )
    batch_size = check_batch_size(batch_size, x.shape[0])
    if chunk_size != "auto":
        chunk_size = check_positive_int(
            chunk_size, "chunk_size", what="a positive integer or 'auto'"
        )
    spec = MemberSpec(
        sizes=None if model else sizes,
        scheme=None if model else s["scheme"],
        dtype=dtype,
        make_optimizer=_check_optimizer(optimizer),
        objective=objective,
        steps=steps,
        record_every=s["record_every"],
        converge_loss=s["converge_loss"],
        keep_params=bool(keep_params),
        batch_size=batch_size,
        crossed=_check_crossed(crossed, n_inits, batch_size),
        n_inits=n_inits,
        model=model,
        widths=widths,
    )
    batch = x.shape[0] if batch_size is None else batch_size
    if model is None:
        net = footprint(sizes)
    else:
        shaped = lambda a: jax.ShapeDtypeStruct((batch, *a.shape[1:]), a.dtype)
        net = model_footprint(model, objective, params, shaped(x), shaped(y))
    return Config(
        net=net,
        spec=spec,
        key=key,
        x=x,
        y=y,
        test_xy=test_xy,
        grid=grid,
        batching=batching,
        members=_check_members(members, grid.n_members),
        chunk_size=chunk_size,
        memory_budget=s["memory_budget"],
        progress=progress,
    )
