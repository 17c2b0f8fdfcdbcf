"""The program ``train_many`` compiles: one member's training, batched over blocks of members.

Member ``m`` of a grid (see ``_grid``) starts from ``MemberSpec.init(fold_in(key, m),
scale)`` (the built-in MLP's init, or a model's own) and trains with ``jaxbp.training._train.train_program``, the program
``train`` compiles for one network. A block of members is that single-network
program batched: ``jax.vmap``, or on CPU for tiny networks ``vmap_last`` (the
same batching with the member axis kept last). A chunk is a loop over blocks of a
fixed width, sharded over a 1-D device mesh: so a member's result depends only on
``(key, m, its hyperparameters)``, not on the chunk size, device or host count.

The thresholds that choose between code paths were measured; they live in
``TUNING``, each with where it was measured (docs/benchmarks.md has the tables).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from ..training._batches import data_order_key
from ..training._train import train_finish, train_records, train_start
from ._lastmap import vmap_last
from ._result import HISTORIES
from ._spec import MemberSpec, footprint

__all__ = [
    "BATCHINGS",
    "TUNING",
    "Phase",
    "Tuning",
    "block_width",
    "member_program",
    "train_chunk",
]

BATCHINGS = ("auto", "vmap", "member_last")


class Phase(enum.Enum):
    """Which part of a member's run a compiled program computes (``member_program``)."""

    ALL = "all"  # the whole run: init, every record, the outputs
    START = "start"  # init only: the carry before the first step
    RECORDS = "records"  # some records from a carry: (carry, histories)
    LAST = "last"  # the last records, then the outputs


@dataclasses.dataclass(frozen=True)
class Tuning:
    """Measured thresholds, in multiply-adds of one forward pass over the batch ("work").

    Each sits where the measurements put it: the tables, machines and versions are in
    docs/benchmarks.md ("What limits speed, and how the defaults were chosen").

    Attributes:
      member_last_max_work: on CPU, ``batching="auto"`` keeps the member axis last up
        to this work, the crossover beyond which ``jax.vmap``'s batched matrix products
        win. Accelerators always use ``jax.vmap``.
      no_ynn_max_work: on CPU, compile without XLA's YNN fusions up to this work: YNN
        calls a library kernel per tiny matrix product, where plain loop fusions are
        faster.
      block_work: a block holds about this much work (members x work), rounded to a
        power of two.
      max_block_width: at most this many members per block.
      min_block_width: at least this many members per block.
      minibatch_block_work: with minibatches, a block holds about this much work (members
        x work of one minibatch), and may be a single member: each member gathers its own
        rows of the training set every step, and a smaller block keeps them in cache
        between the gather and the products.
      member_last_block_bytes: with the member axis last, a block's activations (its
        members x examples x units of every layer after the input x the dtype's bytes)
        fill about this much, the width rounded to the nearest power of two: the block's
        intermediates then stay in the core's first-level cache between the step's
        loops.
    """

    member_last_max_work: int = 448
    no_ynn_max_work: int = 1 << 16
    block_work: int = 1 << 24
    max_block_width: int = 1 << 12
    min_block_width: int = 8
    minibatch_block_work: int = 1 << 22
    member_last_block_bytes: int = 1 << 16


TUNING = Tuning()


def work(net, batch: int) -> int:
    """Multiply-adds of one forward pass over the batch (``net``: MLP sizes or a
    ``Footprint``)."""
    return batch * footprint(net).work


def block_width(
    net, batch: int, *, minibatch: bool = False, member_last: bool = False, itemsize: int = 4
) -> int:
    """Members per compiled block: many tiny networks, few big ones (``TUNING``);
    ``batch`` is the examples one step takes (with ``minibatch``, the minibatch). With
    ``member_last``, as many as keep a block's activations in cache. ``net``: the
    built-in MLP's sizes or a ``Footprint``."""
    if member_last and not minibatch:
        per_member = batch * footprint(net).units * itemsize
        width = 1 << max(0, round(math.log2(TUNING.member_last_block_bytes / per_member)))
        return int(min(max(width, TUNING.min_block_width), TUNING.max_block_width))
    w = work(net, batch)
    per_block = TUNING.minibatch_block_work if minibatch else TUNING.block_work
    width = 1 << max(0, int(math.log2(max(1, per_block // max(1, w)))))
    smallest = 1 if minibatch else TUNING.min_block_width
    return int(min(max(width, smallest), TUNING.max_block_width))


def choose_member_last(batching: str, net, batch: int, platform: str) -> bool:
    """Whether to batch members with the axis last: asked for, or ``"auto"`` on CPU for
    networks up to ``Tuning.member_last_max_work``."""
    if batching == "auto":
        return platform == "cpu" and work(net, batch) <= TUNING.member_last_max_work
    return batching == "member_last"


def choose_program(net, batch: int, platform: str, member_last: bool):
    """The compiled chunk program: on CPU, small networks get compiler options of their
    own (``cpu_options``); accelerators the plain ``jit``."""
    if platform != "cpu":
        return train_chunk
    return program_with(cpu_options(work(net, batch), member_last))


def cpu_options(w: int, member_last: bool) -> tuple[tuple[str, str | bool], ...]:
    """XLA CPU options for a network of work ``w``, those this XLA knows.

    Without YNN fusions up to ``Tuning.no_ynn_max_work`` (YNN calls a library kernel
    per tiny matrix product; plain loop fusions are faster). With the member axis last,
    512-bit vectors where the CPU has them (XLA's default is 256): every loop of that
    program is a unit-stride loop over members; with ``jax.vmap`` batching the same
    option was measured slower, so it goes with member-last only. Also with
    member-last, XLA's region analysis in copy insertion, without which each step
    copies some of its carried values. Measured: docs/benchmarks.md.
    """
    wanted = []
    if w <= TUNING.no_ynn_max_work:
        wanted.append(_NO_YNN)
    if member_last:
        wanted += [_WIDE_VECTORS, _FEWER_COPIES]
    return tuple(o for o in wanted if _compiler_knows((o,)))


@functools.cache
def _compiler_knows(options: tuple[tuple[str, str | bool], ...]) -> bool:
    """Whether the CPU compiler accepts these options (an XLA without the option refuses it)."""
    try:
        jax.jit(lambda v: v + 1, compiler_options=dict(options)).lower(1.0).compile()
    except Exception as e:  # XlaRuntimeError: "No such compile option"
        if "compile option" in str(e):
            return False
        raise
    return True


def program_with(options: tuple[tuple[str, str | bool], ...]):
    """The chunk program compiled with these XLA options (one ``jit`` per option set)."""
    if options not in _PROGRAMS:
        _PROGRAMS[options] = jax.jit(
            _chunk_impl, static_argnames=_STATIC, compiler_options=dict(options)
        )
    return _PROGRAMS[options]


def compiled_programs() -> int:
    """How many chunk programs this process has compiled, over every option set."""
    return sum(j._cache_size() for j in _PROGRAMS.values())


def member_program(key, x, y, test_xy, spec: MemberSpec, *, phase: Phase, count: int = 0):
    """The single-network program for member ``m``, whole or in one of its three phases.

    ``Phase.ALL``: ``member(m, lr, scale) -> outputs``: init from ``fold_in(key, m)``,
    then ``train_program``; with a width axis, ``member(m, lr, scale, width)``,
    ``m`` the index within the width. The same run in pieces, for a progress bar that
    moves during a chunk: ``START``: ``member(m, lr, scale[, width]) -> carry``; ``RECORDS``:
    ``member(carry, lr, first) -> (carry, history)`` for ``count`` records from
    ``first``; ``LAST``: the same for the last records, then the outputs (with
    those records' history). The pieces give the whole's results bit for bit.
    """
    s = spec
    objective = s.objective

    def start(m, lr, scale, width=None):
        # m: the member's index within its width (its index in the grid, without widths)
        init_m = order_m = m
        if s.crossed is not None:  # start (i, j) of a grid point: row i's init, column j's order
            cols = s.crossed[1]
            j = m % s.n_inits
            init_m, order_m = m - j % cols, m - j + j % cols
        params = s.init(jax.random.fold_in(key, init_m), scale, width)
        data_key = None if s.batch_size is None else data_order_key(key, order_m)
        opt = s.optimizer(lr, width)
        return train_start(params, opt, data_key=data_key, n_examples=x.shape[0])

    def records(carry, lr, first, count):
        carry, h = train_records(
            carry,
            x,
            y,
            s.optimizer(lr),
            objective,
            first=first,
            count=count,
            record_every=s.record_every,
            converge_loss=s.converge_loss,
            batch_size=s.batch_size,
            test_xy=test_xy,
        )
        histories = {"history": h.loss}
        if test_xy is not None:
            histories.update(test_loss_history=h.test_loss, test_accuracy_history=h.test_accuracy)
        return carry, histories

    def finish(carry):
        final_loss, final_logits, diverged, conv_at = train_finish(
            carry, x, y, objective, steps=s.steps, converge_loss=s.converge_loss
        )
        out = {
            "final_loss": final_loss,
            "accuracy": objective.accuracy(final_logits, y, s.dtype),
            "converged_at": conv_at,
            "diverged": diverged,
        }
        if test_xy is not None:
            ex, ey = test_xy
            test_loss, test_logits = objective.loss_and_logits(carry.params, ex, ey)
            out["test_loss"] = test_loss
            out["test_accuracy"] = objective.accuracy(test_logits, ey, s.dtype)
        if s.keep_params:
            out["params"] = carry.params
        return out

    def whole(m, lr, scale, width=None):
        carry, histories = records(start(m, lr, scale, width), lr, 0, s.n_records)
        return {**finish(carry), **histories}

    def piece(carry, lr, first):
        return records(carry, lr, first, count)

    def last(carry, lr, first):
        # The end of the run in the same program as its last records, as in the whole:
        # the final loss then rounds as it does there.
        carry, histories = records(carry, lr, first, count)
        return {**finish(carry), **histories}

    return {Phase.ALL: whole, Phase.START: start, Phase.RECORDS: piece, Phase.LAST: last}[phase]


def _blocks(member, batched, shared, n_blocks, width, last):
    """``member`` batched over ``n_blocks`` blocks of ``width`` members, one block at a time.

    ``batched``: the member-first arguments (pytrees whose leaves lead with the member
    axis); ``shared``: arguments every member gets whole. Every member is computed by
    the same compiled block program at the same position in its block, whatever the
    chunk size or device count: XLA's CPU code rounds differently at different vector
    widths, so this is what makes results bit-for-bit reproducible. ``n_blocks`` is
    traced, so the loop cannot be unrolled or fused away. A block is ``jax.vmap(member)``,
    or with ``last`` the same batching with the member axis kept last in every
    intermediate (``vmap_last``; for tiny networks on CPU, see ``TUNING``).

    Results come back member-first, except histories (``is_history``), which come
    back block by block, each record-first: ``(n_blocks, n_records, width)``, the
    layout a member-last block computes them in. Turning them member-first here would
    transpose one value per record and member, which for the seed network costs about
    as much as computing the records; the host copies them into a member-first view
    (``histories_into``) instead.
    """
    tmap = jax.tree_util.tree_map
    nb, ns = len(batched), len(shared)
    batched = [tmap(lambda a: a.reshape(-1, width, *a.shape[1:]), b) for b in batched]
    if last:
        mapped = vmap_last(member, (True,) * nb + (False,) * ns, width)

        def block(*args):
            lasts = [tmap(lambda a: jnp.moveaxis(a, 0, -1), b) for b in args[:nb]]
            return jax.tree_util.tree_map_with_path(
                lambda p, o: o if is_history(p) else jnp.moveaxis(o, -1, 0),
                mapped(*lasts, *args[nb:]),
            )
    else:
        vmapped = jax.vmap(member, in_axes=(0,) * nb + (None,) * ns)

        def block(*args):
            return jax.tree_util.tree_map_with_path(
                lambda p, o: o.T if is_history(p) else o, vmapped(*args)
            )

    def blocks_at(i):
        return [tmap(lambda a: a[i], b) for b in batched]

    # The block traced once: its jaxpr gives the output shapes and, evaluated in the
    # loop body, the same equations a second trace would.
    closed, shapes = jax.make_jaxpr(block, return_shape=True)(*blocks_at(0), *shared)
    results = jax.tree_util.tree_structure(shapes)
    n_total = jax.tree_util.tree_leaves(batched[0])[0].shape[0]
    out = tmap(lambda s: jnp.zeros((n_total, *s.shape), s.dtype), shapes)

    def body(i, out):
        args = jax.tree_util.tree_leaves((blocks_at(i), shared))
        res = jax.core.eval_jaxpr(closed.jaxpr, closed.consts, *args)
        return tmap(lambda o, r: o.at[i].set(r), out, jax.tree_util.tree_unflatten(results, res))

    out = jax.lax.fori_loop(0, n_blocks, body, out)
    return jax.tree_util.tree_map_with_path(
        lambda p, o: o if is_history(p) else o.reshape(-1, *o.shape[2:]), out
    )


def is_history(path) -> bool:
    """Whether the output leaf at ``path`` is a history (one value per record point)."""
    return any(isinstance(k, jax.tree_util.DictKey) and k.key in HISTORIES for k in path)


def histories_into(dest: np.ndarray, start: int, blocks: np.ndarray) -> None:
    """Copy a chunk's ``blocks`` of a history (``_blocks``' layout) into ``dest``.

    ``dest``: ``(members, n_records)``; the chunk's members start at row ``start``. In
    Fortran order (``(n_records, members)`` in memory), as ``train_many`` allocates it,
    each copied run is one block's record, ``width`` contiguous values.
    """
    n_blocks, n_records, width = blocks.shape
    rows = dest.T.reshape(n_records, -1, width)  # splits one axis: always a view
    rows[:, start // width : start // width + n_blocks] = blocks.transpose(1, 0, 2)


_STATIC = ("spec", "phase", "count", "width", "mesh", "last")


def _chunk_impl(
    key, batched, shared, n_blocks, x, y, test_xy, *, spec, phase, count, width, mesh, last
):
    """Train one chunk of members (or one phase of it, see ``member_program``); with
    a mesh, each device trains its own shard of the chunk."""
    member = member_program(key, x, y, test_xy, spec, phase=phase, count=count)
    if mesh is None:
        return _blocks(member, batched, shared, n_blocks, width, last)
    spec = PartitionSpec("members")
    run_shard = jax.shard_map(
        lambda b, s, n: _blocks(member, b, s, n, width, last),
        mesh=mesh,
        in_specs=(spec, PartitionSpec(), PartitionSpec()),
        out_specs=spec,
        check_vma=False,  # the block loop's buffer starts replicated, fills per device
    )
    return run_shard(batched, shared, n_blocks)


train_chunk = jax.jit(_chunk_impl, static_argnames=_STATIC)
_PROGRAMS = {(): train_chunk}
# CPU-only XLA options (passed only when compiling for a CPU, see cpu_options).
_NO_YNN = ("xla_cpu_experimental_ynn_fusion_type", "")
_WIDE_VECTORS = ("xla_cpu_prefer_vector_width", "512")
_FEWER_COPIES = ("xla_cpu_copy_insertion_use_region_analysis", True)
