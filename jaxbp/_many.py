"""Many initializations at once: ``vmap`` of the single-network program over members.

Members form one flat axis, grid-major: member ``m`` belongs to grid point
``g = m // n_inits`` (learning rate ``lr[g // n_scales]``, init scale
``scale[g % n_scales]``) and has seed index ``m % n_inits``. Its initial
parameters are ``init_mlp(jax.random.fold_in(key, m), sizes, scale=..., ...)``
and its training is exactly :func:`jaxbp._train.train_program`, the program ``train``
compiles for one network, mapped over members with ``jax.vmap``. So a member's
result depends only on ``(key, m, its hyperparameters)``: not on the chunk size,
the number of devices or the number of hosts.

Python loops only over chunks of members (to bound memory and report progress).
Learning rates and init scales are data, so one compiled program serves a whole
grid. With several devices the member axis of each chunk is sharded over a 1-D
``Mesh``; with several processes (``jax.distributed``) each process trains its own
contiguous block of members and the results are gathered on every process.

Built on the training layer; knows nothing of files, plots or the command line.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._activations import activation_key
from ._dtypes import resolve_dtype
from ._grads import check_grad_source, loss_and_logits
from ._lastmap import vmap_last
from ._losses import resolve_loss
from ._mlp import SCHEMES, check_batch, check_key, check_sizes, init_params
from ._train import sgd, train_program
from ._tree import Params

__all__ = ["ManyResult", "initialize_distributed", "train_many", "use_cpu_cores"]


@dataclasses.dataclass(frozen=True)
class ManyResult:
    """Per-member results of :func:`train_many`, each a NumPy array with a leading member axis.

    Attributes:
      learning_rate, init_scale, seed_index, grid_index: each member's hyperparameters.
      final_loss: the loss after the last step (NaN-free unless ``diverged``).
      accuracy: the fraction of examples on the right side of 0.5 after training.
      converged: the criterion held at some step; converged_at: the first such step, else -1.
      diverged: the loss or an update went non-finite; the member stopped there.
      history: ``(members, steps // record_every)`` losses.
      params: the final parameters, stacked on axis 0 of every leaf (when kept), else None.
      test_loss, test_accuracy: on the held-out ``eval_x``, ``eval_y`` (when given), else None.
      learning_rates, init_scales: the grid's axes; n_inits, steps, record_every: the run's shape.
    """

    learning_rate: np.ndarray
    init_scale: np.ndarray
    seed_index: np.ndarray
    grid_index: np.ndarray
    final_loss: np.ndarray
    accuracy: np.ndarray
    converged: np.ndarray
    converged_at: np.ndarray
    diverged: np.ndarray
    history: np.ndarray
    params: Params | None
    learning_rates: np.ndarray
    init_scales: np.ndarray
    n_inits: int
    steps: int
    record_every: int
    seconds: float
    test_loss: np.ndarray | None = None
    test_accuracy: np.ndarray | None = None

    @property
    def n_members(self) -> int:
        return int(self.final_loss.shape[0])

    def member(self, i: int) -> dict[str, Any]:
        """Everything about member ``i``, as Python values."""
        out = {
            k: getattr(self, k)[i].item()
            for k in (
                "learning_rate",
                "init_scale",
                "seed_index",
                "grid_index",
                "final_loss",
                "accuracy",
                "converged",
                "converged_at",
                "diverged",
            )
        }
        out["history"] = self.history[i]
        if self.test_loss is not None:
            out["test_loss"] = self.test_loss[i].item()
            out["test_accuracy"] = self.test_accuracy[i].item()
        if self.params is not None:
            out["params"] = jax.tree_util.tree_map(lambda a: a[i], self.params)
        return out

    def summary(self, *, confidence: float = 0.95) -> list[dict[str, Any]]:
        """Per grid point: convergence rate with a Wilson confidence interval, loss quantiles.

        Diverged members count as not converged and are left out of the loss
        statistics (their count is reported), so one NaN never poisons a mean.
        """
        z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
        rows = []
        for g in range(len(self.learning_rates) * len(self.init_scales)):
            sel = self.grid_index == g
            n = int(sel.sum())
            if n == 0:
                continue
            k = int(self.converged[sel].sum())
            lo, hi = _wilson(k, n, z)
            ok = sel & ~self.diverged
            losses = self.final_loss[ok]
            q = np.quantile(losses, [0.1, 0.5, 0.9]) if losses.size else [math.nan] * 3
            rows.append(
                {
                    "grid_index": g,
                    "learning_rate": float(self.learning_rates[g // len(self.init_scales)]),
                    "init_scale": float(self.init_scales[g % len(self.init_scales)]),
                    "members": n,
                    "converged": k,
                    "convergence_rate": k / n,
                    "ci_low": lo,
                    "ci_high": hi,
                    "diverged": int(self.diverged[sel].sum()),
                    "loss_q10": float(q[0]),
                    "loss_median": float(q[1]),
                    "loss_q90": float(q[2]),
                    "mean_accuracy": float(self.accuracy[ok].mean()) if ok.any() else math.nan,
                    "median_converged_at": float(np.median(self.converged_at[sel & self.converged]))
                    if k
                    else math.nan,
                }
            )
            if self.test_accuracy is not None:
                acc = self.test_accuracy[ok]
                rows[-1]["mean_test_accuracy"] = float(acc.mean()) if acc.size else math.nan
                rows[-1]["median_test_accuracy"] = float(np.median(acc)) if acc.size else math.nan
        return rows


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson score interval for a proportion k / n."""
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


# --------------------------------------------------------------------------- the program


def _member_fn(
    key,
    x,
    y,
    eval_xy,
    *,
    sizes,
    scheme,
    dtype,
    make_optimizer,
    steps,
    record_every,
    activation,
    loss,
    grad,
    converge_loss,
    keep_params,
):
    """The single-network program for member ``m``: init from ``fold_in(key, m)``, then ``train_program``."""

    def member(m, lr, scale):
        params = init_params(
            jax.random.fold_in(key, m), scale, sizes=sizes, scheme=scheme, dtype=dtype
        )
        r = train_program(
            params,
            x,
            y,
            make_optimizer(lr),
            steps=steps,
            record_every=record_every,
            activation=activation,
            loss=loss,
            grad=grad,
            converge_loss=converge_loss,
        )
        out = {
            "final_loss": r.final_loss,
            "accuracy": _accuracy(r.final_logits, y, dtype),
            "converged_at": r.converged_at,
            "diverged": r.diverged,
            "history": r.history.loss,
        }
        if eval_xy is not None:
            ex, ey = eval_xy
            test_loss, test_logits = loss_and_logits(r.params, ex, ey, activation, loss)
            out["test_loss"] = test_loss
            out["test_accuracy"] = _accuracy(test_logits, ey, dtype)
        if keep_params:
            out["params"] = r.params
        return out

    return member


def _accuracy(logits, y, dtype):
    """The fraction of examples (and output units) on the right side of 0.5."""
    return jnp.mean(((logits > 0) == (y > 0.5)).astype(dtype))


def _blocks(member, ids, lrs, scales, n_blocks, width, last):
    """``member`` batched over ``n_blocks`` blocks of ``width`` members, one block at a time.

    Every member is computed by the same compiled block program at the same position
    in its block, whatever the chunk size or device count: XLA's CPU code rounds
    differently at different vector widths, so this is what makes results bit-for-bit
    reproducible. ``n_blocks`` is traced, so the loop cannot be unrolled or fused away.
    A block is ``jax.vmap(member)``, or with ``last`` the same batching with the member
    axis kept last in every intermediate (:func:`vmap_last`: 2.4x faster for tiny
    networks on CPU, docs/benchmarks.md); results come back member-first either way.
    """
    ids, lrs, scales = (a.reshape(-1, width) for a in (ids, lrs, scales))
    if last:
        mapped = vmap_last(member, (True, True, True), width)
        block = lambda *a: jax.tree_util.tree_map(lambda o: jnp.moveaxis(o, -1, 0), mapped(*a))
    else:
        block = jax.vmap(member)
    shapes = jax.eval_shape(block, ids[0], lrs[0], scales[0])
    out = jax.tree_util.tree_map(lambda s: jnp.zeros((ids.shape[0], *s.shape), s.dtype), shapes)

    def body(i, out):
        res = block(ids[i], lrs[i], scales[i])
        return jax.tree_util.tree_map(lambda o, r: o.at[i].set(r), out, res)

    out = jax.lax.fori_loop(0, n_blocks, body, out)
    return jax.tree_util.tree_map(lambda o: o.reshape(-1, *o.shape[2:]), out)


_STATIC = (
    "sizes",
    "scheme",
    "dtype",
    "make_optimizer",
    "steps",
    "record_every",
    "activation",
    "loss",
    "grad",
    "converge_loss",
    "keep_params",
    "width",
    "mesh",
    "last",
)


def _chunk_impl(key, ids, lrs, scales, n_blocks, x, y, eval_xy, *, width, mesh, last, **config):
    """Train one chunk of members; with a mesh, each device trains its own shard of the chunk."""
    member = _member_fn(key, x, y, eval_xy, **config)
    if mesh is None:
        return _blocks(member, ids, lrs, scales, n_blocks, width, last)
    spec = PartitionSpec("members")
    run_shard = jax.shard_map(
        lambda i, l, s, n: _blocks(member, i, l, s, n, width, last),
        mesh=mesh,
        in_specs=(spec, spec, spec, PartitionSpec()),
        out_specs=spec,
        check_vma=False,  # the block loop's buffer starts replicated, fills per device
    )
    return run_shard(ids, lrs, scales, n_blocks)


_chunk = jax.jit(_chunk_impl, static_argnames=_STATIC)
# XLA's CPU "YNN" fusions call a library kernel per tiny matrix product; for networks this
# small, plain XLA loop fusions are 2-2.5x faster (docs/benchmarks.md). Other backends
# ignore the option.
_chunk_tiny = jax.jit(
    _chunk_impl,
    static_argnames=_STATIC,
    compiler_options={"xla_cpu_experimental_ynn_fusion_type": ""},
)


def _work(sizes, batch: int) -> int:
    """Multiply-adds of one forward pass over the batch."""
    return batch * sum(a * b + b for a, b in itertools.pairwise(sizes))


def _is_tiny(sizes, batch: int) -> bool:
    """Compile without YNN fusions: 2.5x faster for the seed network, no slower for
    32-64-64-1 on 256 examples (docs/benchmarks.md); the threshold sits between them."""
    return _work(sizes, batch) <= 1 << 16


BATCHINGS = ("auto", "vmap", "member_last")


def _member_last(sizes, batch: int) -> bool:
    """Batch members with the axis last (:func:`vmap_last`) rather than ``jax.vmap``.

    Measured on 2 CPU devices (docs/benchmarks.md): 4x faster at 88 multiply-adds per
    forward (the seed network), 1.6x at 400, 0.8x at 528 and 0.3x at 1,568, where
    ``jax.vmap``'s batched matrix products win; the threshold sits at the crossover.
    """
    return _work(sizes, batch) <= 448


def block_width(sizes, batch: int) -> int:
    """Members per compiled block: many tiny networks, few big ones (from the benchmarks).

    At most 4096: for the seed network (members batched last) on two CPU devices,
    widths 1024-4096 ran within 3% of each other at 16,384 members and 2048-4096 best
    at 131,072; 8192 was 7% slower at both (docs/benchmarks.md).
    """
    work = _work(sizes, batch)
    width = 1 << max(0, int(math.log2(max(1, (1 << 24) // max(1, work)))))
    return int(min(max(width, 8), 1 << 12))


# --------------------------------------------------------------------------- sizing


def _available_memory() -> int:
    """Bytes the default device can use: the accelerator's limit, or the host's free memory."""
    dev = jax.local_devices()[0]
    stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def member_bytes(
    sizes, batch: int, n_records: int, *, dtype, keep_params: bool, opt_slots: int = 2
) -> int:
    """An upper estimate of the device memory one member needs while its chunk trains.

    Parameters, their gradient, the update and ``opt_slots`` optimizer moments; the
    forward and backward activations of the batch; the history; the results.
    """
    itemsize = np.dtype(dtype).itemsize
    n_params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    acts = batch * sum(sizes) * 6  # h, a, da/dh, dL/da, dL/dh, and the loss's own
    words = n_params * (4 + opt_slots) + acts + n_records + 16 + (n_params if keep_params else 0)
    # XLA keeps double buffers of the scan carry and fuses less than ideally: a factor 2.
    return 2 * words * itemsize


# --------------------------------------------------------------------------- devices and hosts


def use_cpu_cores(n: int | None = None) -> int:
    """Make ``n`` CPU devices (default: one per core) so that :func:`train_many` shards over them.

    XLA runs one device's small operations on one core at a time, so on a CPU the
    member axis trains fastest split over one device per core (1.4-2x on 2 cores;
    docs/benchmarks.md). Results are the same bit for bit (members are computed in
    fixed-width blocks). Call it right after import, before any JAX computation
    (``jax_num_cpu_devices`` is read when the backend starts); the ``jaxbp`` command
    does. Returns the number of CPU devices.
    """
    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive number of CPU devices; got {n!r}")
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # the backend has started: fine if it has what was asked for
        have = len(jax.devices("cpu"))
        if have != n:
            raise RuntimeError(
                f"use_cpu_cores({n}) must be called before JAX's first computation: the "
                f"CPU backend has already started with {have} device(s)"
            ) from None
    return n


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Join a multi-process run (``jax.distributed.initialize``) before calling :func:`train_many`.

    Arguments left out are read from ``JAXBP_COORDINATOR``, ``JAXBP_NUM_PROCESSES`` and
    ``JAXBP_PROCESS_ID``, and otherwise left to JAX's own detection (SLURM, TPU pods, ...).
    """
    env = os.environ
    coordinator_address = coordinator_address or env.get("JAXBP_COORDINATOR")
    if num_processes is None and "JAXBP_NUM_PROCESSES" in env:
        num_processes = int(env["JAXBP_NUM_PROCESSES"])
    if process_id is None and "JAXBP_PROCESS_ID" in env:
        process_id = int(env["JAXBP_PROCESS_ID"])
    if num_processes is not None and (not isinstance(num_processes, int) or num_processes < 1):
        raise ValueError(f"num_processes must be a positive integer; got {num_processes!r}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(
            f"process_id must be in [0, {num_processes}) for num_processes={num_processes}; got {process_id}"
        )
    # Cross-process collectives on CPU need an implementation; gloo ships with jaxlib.
    # (Set before any backend starts; accelerators use their own collectives.)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )


def _gather_processes(tree):
    """Concatenate every process's block of members, on every process."""
    from jax.experimental import multihost_utils

    gathered = multihost_utils.process_allgather(tree, tiled=False)
    return jax.tree_util.tree_map(lambda a: np.asarray(a).reshape(-1, *a.shape[2:]), gathered)


# --------------------------------------------------------------------------- the public function


def _grid(values, name) -> np.ndarray:
    a = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"{name} must be a positive number or a non-empty 1-D array; got shape {np.shape(values)}"
        )
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must hold positive finite numbers; got {a.tolist()}"[:300])
    return a


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
    dtype=jnp.float32,
    progress: bool | None = None,
    members: tuple[int, int] | None = None,
    eval_x=None,
    eval_y=None,
    batching: str = "auto",
) -> ManyResult:
    """Train ``n_inits`` networks per grid point, every learning rate x every init scale, at once.

    Args:
      key: a ``jax.random`` key; member ``m`` starts from ``init_mlp(fold_in(key, m), ...)``.
      sizes: layer widths, e.g. ``(3, 2, 1)``.
      x, y: the training batch, ``(batch, sizes[0])`` and ``(batch,)``; full-batch steps.
      n_inits: networks per grid point.
      steps: updates per network.
      learning_rate: a positive number or a 1-D array of them (the grid's first axis).
      optimizer: a factory ``lr -> optax.GradientTransformation`` (e.g. ``optax.adam``);
        default: the seed's plain SGD (:func:`jaxbp.sgd`).
      init_scale: a positive number or 1-D array (the grid's second axis), passed to
        :func:`init_mlp` as ``scale``.
      scheme, activation, loss, grad: as for :func:`init_mlp` and :func:`train`.
      converge_loss: a member has converged once its loss is below this; by default,
        once every example is on the right side of 0.5.
      chunk_size: members per compiled call, or ``"auto"`` (from ``memory_budget``).
      memory_budget: bytes a chunk may use; default a quarter of the free memory.
      record_every: history resolution in steps (must divide ``steps``); default so
        that about 100 points are kept.
      keep_params: also return every member's final parameters.
      dtype: float32 (default) or float64.
      progress: a progress bar over chunks (members/s, ETA); default on when stderr
        is a terminal.
      members: ``(start, stop)``: train only these members of the grid (for runs
        saved piece by piece); each gets the same result as in a run of all members.
      eval_x, eval_y: a held-out set; every member's ``test_loss`` and ``test_accuracy``
        on it are reported (training never sees it).
      batching: how the single-network program is mapped over members: ``"vmap"``
        (``jax.vmap``, member axis first), ``"member_last"`` (the same transformation
        with the member axis kept last in every intermediate, 2.4-4x faster for tiny
        networks on CPU), or ``"auto"`` (member-last up to 448 multiply-adds per
        forward pass, where it was measured to win; see docs/benchmarks.md). The
        results agree to rounding (the sums are ordered differently).

    Returns:
      :class:`ManyResult`, one row per member (grid-major), with ``summary()``.
    """
    t0 = time.perf_counter()
    key = check_key(key)
    sizes = check_sizes(sizes)
    dtype = resolve_dtype(dtype)
    for name, v in (("n_inits", n_inits), ("steps", steps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {sorted(SCHEMES)}")
    spec = resolve_loss(loss)
    check_grad_source(grad)
    activation = activation_key(activation, len(sizes) - 2)
    if batching not in BATCHINGS:
        raise ValueError(f"batching must be one of {BATCHINGS}; got {batching!r}")
    lrs = _grid(learning_rate, "learning_rate")
    scales = _grid(init_scale, "init_scale")
    if optimizer is None:
        make_optimizer = sgd
    elif isinstance(optimizer, optax.GradientTransformation) or not callable(optimizer):
        raise TypeError(
            "optimizer must be a factory taking the learning rate, such as optax.adam; got "
            f"{type(optimizer).__name__} (pass learning rates through learning_rate=)"
        )
    else:
        make_optimizer = optimizer
    if record_every is None:
        record_every = max(1, steps // 100)
        while steps % record_every:
            record_every -= 1
    if (
        isinstance(record_every, bool)
        or not isinstance(record_every, int)
        or record_every < 1
        or steps % record_every
    ):
        raise ValueError(
            f"record_every must be a positive divisor of steps={steps}; got {record_every!r}"
        )
    if converge_loss is not None and not (
        isinstance(converge_loss, (int, float)) and math.isfinite(converge_loss)
    ):
        raise ValueError(f"converge_loss must be a finite number or None; got {converge_loss!r}")

    # The batch, checked against a network of these sizes.
    probe = tuple(
        {"W": jnp.zeros((a, b), dtype), "b": jnp.zeros((b,), dtype)}
        for a, b in itertools.pairwise(sizes)
    )
    x, y = check_batch(probe, x, y, spec)
    if (eval_x is None) != (eval_y is None):
        raise ValueError("eval_x and eval_y go together: give both or neither")
    eval_xy = None
    if eval_x is not None:
        try:
            eval_xy = check_batch(probe, eval_x, eval_y, spec)
        except (ValueError, TypeError) as e:
            raise type(e)(f"eval_x, eval_y: {e}") from None

    n_grid = lrs.size * scales.size
    n_members = n_grid * n_inits
    devices = jax.local_devices()
    n_dev = len(devices)
    n_records = steps // record_every
    per_member = member_bytes(sizes, x.shape[0], n_records, dtype=dtype, keep_params=keep_params)
    if memory_budget is not None and (
        isinstance(memory_budget, bool)
        or not isinstance(memory_budget, (int, float))
        or memory_budget <= 0
    ):
        raise ValueError(f"memory_budget must be a positive number of bytes; got {memory_budget!r}")
    budget = int(memory_budget) if memory_budget is not None else _available_memory() // 4
    if budget < per_member * n_dev:
        raise ValueError(
            f"memory_budget of {budget} bytes is too small: one member of a {'-'.join(map(str, sizes))} "
            f"network needs about {per_member} bytes (x {n_dev} device(s)); raise it or shorten the history "
            "(record_every)"
        )
    # The block width (members vmapped together) depends on the network and the number of
    # members, not on the chunk size or the devices, so neither changes a member's result.
    width = min(
        block_width(sizes, x.shape[0]),
        budget // (per_member * n_dev),
        1 << math.ceil(math.log2(n_members)),
    )
    width = 1 << int(math.log2(width))
    n_proc, proc = jax.process_count(), jax.process_index()
    if members is None:
        lo, hi = 0, n_members
    elif (
        not isinstance(members, tuple)
        or len(members) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in members)
        or not 0 <= members[0] < members[1] <= n_members
    ):
        raise ValueError(
            f"members must be a (start, stop) pair with 0 <= start < stop <= {n_members} "
            f"(the grid's member count); got {members!r}"
        )
    else:
        lo, hi = members
    # Whole blocks per process; the last block is padded.
    per_proc = -(-(hi - lo) // (n_proc * width)) * width
    first = lo + proc * per_proc
    result_bytes = (n_records + 8) * 8 + (per_member // 2 if keep_params else 0)
    if chunk_size == "auto":
        # Up to 16 blocks per device per call, as the results' memory allows.
        chunk = min(
            -(-per_proc // n_dev), max(width, min(16 * width, budget // (result_bytes * n_dev)))
        )
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or 'auto'; got {chunk_size!r}")
    else:
        chunk = -(-chunk_size // n_dev)  # members per device per call
    chunk = -(-chunk // width) * width * n_dev  # whole blocks on every device
    mesh = Mesh(np.asarray(devices), ("members",)) if n_dev > 1 else None
    sharding = NamedSharding(mesh, PartitionSpec("members")) if mesh is not None else None

    tiny = _is_tiny(sizes, x.shape[0])
    static = dict(
        sizes=sizes,
        scheme=scheme,
        dtype=dtype,
        make_optimizer=make_optimizer,
        steps=steps,
        record_every=record_every,
        activation=activation,
        loss=loss,
        grad=grad,
        converge_loss=converge_loss,
        keep_params=keep_params,
        width=width,
        mesh=mesh,
        last=batching == "member_last" or (batching == "auto" and _member_last(sizes, x.shape[0])),
    )
    local = None  # results of this process's members, filled chunk by chunk
    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=min(per_proc, max(0, hi - first)),
            unit="member",
            unit_scale=True,
            desc="train_many",
            dynamic_ncols=True,
        )
    try:
        for start in range(0, per_proc, chunk):
            n_real = min(chunk, per_proc - start)
            # Past the end, repeat the last member: every chunk has one shape, one program.
            ids = np.minimum(first + start + np.arange(chunk), hi - 1)
            g = ids // n_inits
            args = [
                ids.astype(np.int32),
                lrs[g // scales.size].astype(dtype),
                scales[g % scales.size].astype(dtype),
            ]
            if sharding is not None:
                args = [jax.device_put(a, sharding) for a in args]
            out = (_chunk_tiny if tiny else _chunk)(
                key, *args, jnp.int32(chunk // n_dev // width), x, y, eval_xy, **static
            )
            out = jax.device_get(out)
            if local is None:
                local = jax.tree_util.tree_map(
                    lambda a: np.empty((per_proc, *a.shape[1:]), a.dtype), out
                )
            jax.tree_util.tree_map(
                lambda d, a, s=start, n=n_real: d.__setitem__(slice(s, s + n), a[:n]), local, out
            )
            if bar is not None:
                bar.update(max(0, min(n_real, hi - first - start)))
    finally:
        if bar is not None:
            bar.close()
    if n_proc > 1:
        local = _gather_processes(local)
    local = jax.tree_util.tree_map(lambda a: a[: hi - lo], local)
    ids = np.arange(lo, hi)
    g = ids // n_inits
    conv_at = local["converged_at"]
    return ManyResult(
        learning_rate=lrs[g // scales.size],
        init_scale=scales[g % scales.size],
        seed_index=ids % n_inits,
        grid_index=g,
        final_loss=local["final_loss"],
        accuracy=local["accuracy"],
        converged=conv_at >= 0,
        converged_at=conv_at,
        diverged=local["diverged"],
        history=local["history"],
        params=local.get("params"),
        learning_rates=lrs,
        init_scales=scales,
        n_inits=n_inits,
        steps=steps,
        record_every=record_every,
        seconds=time.perf_counter() - t0,
        test_loss=local.get("test_loss"),
        test_accuracy=local.get("test_accuracy"),
    )
