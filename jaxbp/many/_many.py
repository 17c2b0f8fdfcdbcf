"""Many initializations at once: ``train_many``, the single-network program mapped over members.

Members form one flat axis, grid-major (``_grid``): member ``m`` has learning rate,
init scale and seed index decoded from ``m``. Its initial parameters are
``init_mlp(jax.random.fold_in(key, m), sizes, scale=..., ...)`` and its training is
exactly ``jaxbp.training._train.train_program``, the program ``train`` compiles for one
network, batched over members (``_program``). So a member's result depends only on
``(key, m, its hyperparameters)``: not on the chunk size, the number of devices or
the number of hosts.

``train_many`` reads top to bottom: checked configuration -> plan (block width,
chunking, devices, batching) -> chunk loop -> assembly of results. Python loops only
over chunks of members (to bound memory and report progress). Learning rates and
init scales are data, so one compiled program serves a whole grid.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import inspect
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from ..util._checks import ceil_div
from ..util._threefry import unrolled_threefry
from ._config import Config, check_config
from ._devices import (
    available_memory,
    gather_processes,
    member_bytes,
    on_host,
    warn_if_one_cpu_device,
)
from ._program import (
    Phase,
    block_width,
    choose_member_last,
    choose_program,
    histories_into,
    is_history,
)
from ._result import HISTORIES, ManyResult

__all__ = ["local_process", "train_many"]

# Inside ``local_process()``, train_many trains every member asked for on this process's
# devices alone, even under jax.distributed (a sweep that splits its chunks by process).
_LOCAL = contextvars.ContextVar("jaxbp_local_process", default=False)


@contextlib.contextmanager
def local_process():
    """``train_many`` calls inside train their members on this process alone: no split
    over the processes of a ``jax.distributed`` job, no gather."""
    token = _LOCAL.set(True)
    try:
        yield
    finally:
        _LOCAL.reset(token)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How the members are laid out on this process's devices.

    Members ``[first, first + per_proc)`` are this process's (whole blocks; past the
    last real member, the last one is repeated so that every chunk has one shape);
    ``chunk`` members go to each compiled call, ``width`` per block.
    """

    width: int
    chunk: int
    per_proc: int
    first: int
    n_dev: int
    mesh: Mesh | None
    program: Callable
    member_last: bool


def _plan(c: Config) -> _Plan:
    devices = jax.local_devices()
    warn_if_one_cpu_device(devices)
    n_dev = len(devices)
    platform = devices[0].platform
    spec = c.spec
    batch = c.step_batch  # the work per step actually run decides block width and batching
    n_records = spec.n_records * (1 if c.test_xy is None else 3)
    per_member = member_bytes(
        c.net, batch, n_records, dtype=spec.dtype, keep_params=spec.keep_params
    ) + (0 if spec.batch_size is None else 4 * c.x.shape[0])  # the epoch's order
    budget = c.memory_budget if c.memory_budget is not None else available_memory() // 4
    if budget < per_member * n_dev:
        raise ValueError(
            f"memory_budget of {budget} bytes is too small: one member of a "
            f"{c.net.name} network needs about {per_member} bytes (x {n_dev} "
            "device(s)); raise it or shorten the history (record_every)"
        )
    # The block width depends on the network and the number of members, not on the
    # chunk size or the devices, so neither changes a member's result.
    member_last = choose_member_last(c.batching, c.net, batch, platform)
    width = min(
        block_width(
            c.net,
            batch,
            minibatch=spec.batch_size is not None,
            member_last=member_last,
            itemsize=np.dtype(spec.dtype).itemsize,
        ),
        budget // (per_member * n_dev),
        1 << math.ceil(math.log2(c.grid.n_members)),
    )
    width = 1 << int(math.log2(width))
    lo, hi = c.members
    n_proc, proc = (1, 0) if _LOCAL.get() else (jax.process_count(), jax.process_index())
    per_proc = ceil_div(hi - lo, n_proc * width) * width
    result_bytes = (n_records + 8) * 8 + (per_member // 2 if spec.keep_params else 0)
    if c.chunk_size == "auto":
        # Up to 16 blocks per device per call, as the results' memory allows.
        chunk = min(
            ceil_div(per_proc, n_dev), max(width, min(16 * width, budget // (result_bytes * n_dev)))
        )
    else:
        chunk = ceil_div(c.chunk_size, n_dev)  # members per device per call
    chunk = ceil_div(chunk, width) * width * n_dev  # whole blocks on every device
    return _Plan(
        width=width,
        chunk=chunk,
        per_proc=per_proc,
        first=lo + proc * per_proc,
        n_dev=n_dev,
        mesh=Mesh(np.asarray(devices), ("members",)) if n_dev > 1 else None,
        program=choose_program(c.net, batch, platform, member_last),
        member_last=member_last,
    )


def _progress_bar(total_steps: int, members: int):
    return tqdm(
        total=total_steps,
        unit="net-step",
        unit_scale=True,
        desc=f"train_many: {members:,} members",
        dynamic_ncols=True,
    )


# With a progress bar, a chunk's run is cut into about this many pieces so the bar moves
# during a chunk (the pieces take exactly the steps of one call: same results).
_PIECES = 10


def _run_chunks(c: Config, plan: _Plan) -> dict[str, np.ndarray]:
    """Train this process's members chunk by chunk; their results, member-first."""
    hi = c.members[1]
    spec, progress = c.spec, c.progress
    sharding = NamedSharding(plan.mesh, PartitionSpec("members")) if plan.mesh else None
    n_blocks = jnp.int32(plan.chunk // plan.n_dev // plan.width)
    real = min(plan.per_proc, max(0, hi - plan.first))  # members this process trains
    own = not hasattr(progress, "update")  # else: the caller's bar, updated, not closed
    show = (sys.stderr.isatty() if progress is None else bool(progress)) if own else True
    bar = (_progress_bar(real * spec.steps, real) if show else None) if own else progress
    n_records = spec.n_records
    piece = max(1, ceil_div(n_records, _PIECES)) if show else n_records

    def call(batched, shared=(), phase=Phase.ALL, count=0):
        with unrolled_threefry():
            return plan.program(
                c.key, batched, shared, n_blocks, c.x, c.y, c.test_xy, spec=spec, phase=phase,
                count=count, width=plan.width, mesh=plan.mesh, last=plan.member_last,
            )  # fmt: skip

    rows = ceil_div(plan.per_proc, plan.chunk) * plan.chunk  # whole chunks, trimmed at the end

    def room(path, a):  # where every chunk's ``a`` goes; histories, see histories_into
        if is_history(path):
            return np.empty((rows, a.shape[1]), a.dtype, order="F")
        return np.empty((rows, *a.shape[1:]), a.dtype)

    local = None
    try:
        for start in range(0, plan.per_proc, plan.chunk):
            n_real = min(plan.chunk, plan.per_proc - start)
            counted = max(0, min(n_real, hi - plan.first - start))  # without the padding
            # Past the end, repeat the last member: every chunk has one shape, one program.
            ids = np.minimum(plan.first + start + np.arange(plan.chunk), hi - 1)
            m = c.grid.members(ids)
            args = [
                (ids if m.local_index is None else m.local_index).astype(np.int32),
                m.learning_rate.astype(spec.dtype),
                m.init_scale.astype(spec.dtype),
            ]
            if m.width is not None:
                args.append(m.width.astype(np.int32))
            if sharding is not None:
                args = [jax.device_put(a, sharding) for a in args]
            if piece >= n_records:
                out = call(tuple(args))
                if bar is not None:
                    bar.update(counted * spec.steps)
            else:
                out = _in_pieces(call, args, n_records, piece, spec.record_every, counted, bar)
            if local is None:
                local = jax.tree_util.tree_map_with_path(room, out)

            def put(path, dest, a, s=start):
                for at, part in on_host(a):
                    if is_history(path):  # axis 0 counts blocks
                        histories_into(dest, s + at * plan.width, part)
                    else:
                        dest[s + at : s + at + len(part)] = part

            jax.tree_util.tree_map_with_path(put, local, out)
    finally:
        if bar is not None and own:
            bar.close()
    return jax.tree_util.tree_map(lambda a: a[: plan.per_proc], local)


def _in_pieces(call, args, n_records, piece, record_every, counted, bar) -> dict:
    """One chunk's run cut into pieces of ``piece`` records, the bar moved after each."""
    carry = call(tuple(args), phase=Phase.START)
    history = []
    for first in range(0, n_records, piece):
        count = min(piece, n_records - first)
        done = first + count == n_records
        res = call(
            (carry, args[1]), (jnp.int32(first),), Phase.LAST if done else Phase.RECORDS, count
        )
        if done:
            out = jax.device_get(res)
            history.append({k: out.pop(k) for k in list(out) if k in HISTORIES})
        else:
            carry, h = res
            history.append(jax.device_get(h))
        bar.update(counted * count * record_every)
    for k in history[0]:
        out[k] = np.concatenate([h[k] for h in history], axis=1)
    return out


def _assemble(c: Config, local: dict[str, np.ndarray], seconds: float) -> ManyResult:
    """Every process's members, in order, as a [`ManyResult`][jaxbp.many.ManyResult]."""
    lo, hi = c.members
    if jax.process_count() > 1 and not _LOCAL.get():
        local = gather_processes(local)
    local = jax.tree_util.tree_map(lambda a: a[: hi - lo], local)
    return ManyResult.from_members(
        c.grid,
        np.arange(lo, hi),
        local,
        steps=c.spec.steps,
        record_every=c.spec.record_every,
        seconds=seconds,
        batch_size=c.spec.batch_size,
        sizes=c.spec.sizes,
    )


def train_many(
    key,
    sizes: Sequence[int],
    x,
    y,
    *,
    n_inits: int,
    steps: int,
    learning_rate=0.1,
    optimizer: Callable[[Any], optax.GradientTransformation] | None = None,
    init_scale=1.0,
    scheme: str = "normal",
    activation="sigmoid",
    loss: str = "bce",
    grad: str = "autodiff",
    converge_loss: float | None = None,
    chunk_size: int | str = "auto",
    memory_budget: int | None = None,
    record_every: int | None = None,
    keep_params: bool = False,
    dtype=None,
    progress=None,
    members: tuple[int, int] | None = None,
    x_test=None,
    y_test=None,
    batching: str = "auto",
    batch_size: int | None = None,
    crossed: tuple[int, int] | None = None,
    eval_x=None,
    eval_y=None,
    widths: Sequence[int] | None = None,
) -> ManyResult:
    """Train ``n_inits`` networks per grid point, every learning rate x every init scale, at once.

    Member ``m`` starts from ``init_mlp(jax.random.fold_in(key, m), sizes, scheme=scheme,
    scale=its init scale, dtype=dtype)`` (or a model's ``init(fold_in(key, m), scale)``)
    and trains with its learning rate; neither the chunk size nor the process count
    changes its result, nor, with plain SGD, the device count (with momentum or adam a
    different device count can change the last bits of some members).

    Args:
      key: a ``jax.random`` key.
      sizes: layer widths, e.g. ``(3, 2, 1)``.
      x: the training inputs, ``(n, sizes[0])``: full-batch steps, or minibatches with
        ``batch_size``. Every member reads the same arrays (they are not copied per
        member).
      y: the training labels, ``(n,)``.
      n_inits: networks per grid point.
      steps: updates per network.
      learning_rate: a positive number or a 1-D array of them (the grid's first axis).
      optimizer: a factory ``lr -> optax.GradientTransformation`` (e.g. ``optax.adam``);
        default: the seed's plain SGD ([`jaxbp.sgd`][jaxbp.training.sgd]).
      init_scale: a positive number or 1-D array (the grid's second axis), passed to
        [`init_mlp`][jaxbp.nn.init_mlp] as ``scale``.
      scheme: as for [`init_mlp`][jaxbp.nn.init_mlp]. The default here is ``"normal"`` (weights and
        biases ~ N(0, scale^2)), the setting of the classic studies of many random
        starts, whose init-scale axis is then the spread itself; [`init_mlp`][jaxbp.nn.init_mlp]'s
        own default, ``"glorot_normal"``, suits one network trained alone.
      activation: hidden activation name(s), as for [`train`][jaxbp.training.train].
      loss: the loss name, as for [`train`][jaxbp.training.train].
      grad: ``"autodiff"`` or ``"manual"``, as for [`train`][jaxbp.training.train].
      converge_loss: a member has converged once its loss is below this; by default,
        once every example is on the right side of 0.5.
      chunk_size: members per compiled call, or ``"auto"`` (from ``memory_budget``).
        Results do not depend on it.
      memory_budget: bytes a chunk may use; default a quarter of the free memory.
      record_every: history resolution in steps (must divide ``steps``); default so
        that about 100 points are kept.
      keep_params: also return every member's final parameters.
      dtype: the networks' floating dtype; default ``x``'s floating dtype (as JAX holds
        it: float64 only under ``jax_enable_x64``), else JAX's default float.
      progress: a progress bar of network-steps done (rate, ETA) that moves during a
        chunk too; default on when stderr is a terminal. A ``tqdm`` bar (anything with
        ``update(n)``) is updated instead, with this call's network-steps, and left open.
      members: ``(start, stop)``: train only these members of the grid (for runs
        saved piece by piece); each gets the same result as in a run of all members.
      x_test: a held-out set's inputs: every member's ``test_loss`` and ``test_accuracy``
        on it after training, and its loss and accuracy at every record point
        (``test_loss_history``, ``test_accuracy_history``); training never sees it.
      y_test: the held-out set's labels.
      batching: how the single-network program is mapped over members: ``"vmap"``
        (``jax.vmap``, member axis first), ``"member_last"`` (the same transformation
        with the member axis kept last in every intermediate, faster for tiny networks
        on CPU), or ``"auto"`` (member-last on CPU for networks up to
        ``TUNING.member_last_max_work`` multiply-adds per forward pass, where it was
        measured to win; ``jax.vmap`` otherwise and on accelerators). The results agree
        to rounding (the sums are ordered differently).
      batch_size: None for full-batch steps (the default); else each step takes
        ``batch_size`` examples. ``steps`` still counts updates; each epoch visits the
        examples in an order drawn per member from [`data_order_key`][jaxbp.training.data_order_key] ``(key, m)``
        (a stream apart from the initialization's), and the ``n % batch_size`` examples
        left at the end of an epoch's order are dropped for that epoch. Member ``m``
        equals [`train`][jaxbp.training.train] from the same start with ``data_key=data_order_key(key, m)``.
        Convergence is then judged after the last step, on the whole training set.
      crossed: ``(rows, columns)`` with ``rows * columns == n_inits`` (needs
        ``batch_size``): each grid point's starts form a table in which start
        ``s = i * columns + j`` takes the initialization of start ``i * columns`` and
        the data order of start ``j``: a row shares an initialization, a column a data
        order. A crossed design that separates the spread due to the start from the
        spread due to the data order (start 0 is the same as without it).
      eval_x: the older name of ``x_test``.
      eval_y: the older name of ``y_test``.
      widths: hidden widths, a grid axis outside the learning rates: every hidden layer
        of a member of width ``w`` is ``w`` wide (``sizes`` gives the input, the output
        and the depth). The members of the ``i``-th width are the block
        ``[i * per_width, (i + 1) * per_width)`` (``per_width`` the members of a grid
        without widths), and member ``i * per_width + k`` starts and trains as member
        ``k`` of ``train_many`` at that width alone (to the rounding of sums ordered
        differently). One compiled program trains them all, each held as the widest
        network with its extra units zero and kept zero (``keep_params`` returns them
        so; ``ManyResult.member`` cuts them off).

    Returns:
      [`ManyResult`][jaxbp.many.ManyResult], one row per member (grid-major), with ``summary()``.
    """
    t0 = time.perf_counter()
    arguments = {k: v for k, v in locals().items() if k != "t0"}
    config = check_config(**arguments)  # every argument into the checks, by its name
    plan = _plan(config)
    local = _run_chunks(config, plan)
    return _assemble(config, local, time.perf_counter() - t0)


def check_train_many(key, sizes, x, y, **kwargs) -> Config:
    """The arguments of ``train_many(key, sizes, x, y, **kwargs)`` checked as that call
    checks them (defaults filled, the plan made), without compiling or training: a bad
    argument raises the same error, and nothing else."""
    bound = inspect.signature(train_many).bind(key, sizes, x, y, **kwargs)
    bound.apply_defaults()
    config = check_config(**bound.arguments)
    _plan(config)
    return config
