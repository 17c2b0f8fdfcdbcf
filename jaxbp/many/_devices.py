"""Devices and hosts for many networks: CPU cores as devices, several processes, memory.

[`use_cpu_cores`][jaxbp.many.use_cpu_cores] makes one CPU device per core so that members shard over
them; [`initialize_distributed`][jaxbp.many.initialize_distributed] joins a multi-process run; the rest sizes
chunks to the memory a device has.
"""

from __future__ import annotations

import os
import re
import warnings

import jax
import numpy as np
from jax.experimental import multihost_utils
from jaxlib import version

from ..util._checks import check_positive_int
from ._spec import footprint

__all__ = [
    "SingleDeviceWarning",
    "available_memory",
    "gather_processes",
    "initialize_distributed",
    "member_bytes",
    "use_cpu_cores",
    "warn_if_one_cpu_device",
]


class SingleDeviceWarning(UserWarning):
    """Many networks are training on one CPU device while the process may use more cores."""


_warned_single_device = False


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def warn_if_one_cpu_device(devices) -> None:
    """Say once per process that one CPU device leaves cores idle (``use_cpu_cores``)."""
    global _warned_single_device
    cores = usable_cores() or 1
    if _warned_single_device or len(devices) != 1 or devices[0].platform != "cpu" or cores < 2:
        return
    _warned_single_device = True
    warnings.warn(
        f"train_many runs on one CPU device while this process may use {cores} cores: call "
        "jaxbp.use_cpu_cores() right after importing jaxbp, before the first JAX computation, "
        f"to split the members over {cores} devices (2-3x faster on 2 cores; "
        "docs/benchmarks.md)",
        SingleDeviceWarning,
        stacklevel=4,
    )


# XLA's CPU compiler compiles a while loop whose body touches fewer bytes per pass than
# this into one function (``xla_cpu_small_while_loop_byte_threshold``, one of its
# backend options); a larger loop runs its body operation by operation, one call into
# XLA's runtime each (0.12 us per operation of a 512-member block). For the seed
# network's 16,384 members on 2 cores one function per loop trains 1.3x faster, bit
# for bit the same (docs/benchmarks.md). Loops that call libraries (matrix products by
# a BLAS, host callbacks) are never compiled whole, whatever their size. jaxlib 0.7.0's
# compiler fails on such loops (an unresolved runtime function); 0.7.2, 0.8.0, 0.9.0
# and 0.10.2 were measured to compile and run them.
SMALL_LOOP_BYTES = 1 << 27
SMALL_LOOPS_SINCE = (0, 7, 2)
_SMALL_LOOP_OPTION = "xla_cpu_small_while_loop_byte_threshold"


def jaxlib_version() -> tuple[int, ...]:
    """The installed jaxlib's version as numbers, e.g. ``(0, 10, 2)``."""
    return tuple(int(p) for p in re.findall(r"\d+", version.__version__)[:3])


def small_loop_flags(flags: str, threshold: int = SMALL_LOOP_BYTES) -> str:
    """``XLA_FLAGS`` with XLA's small-loop threshold added (a value already there is kept)."""
    if _SMALL_LOOP_OPTION in flags:
        return flags
    option = f"{_SMALL_LOOP_OPTION}={threshold}"
    m = re.search(r"--xla_backend_extra_options=(\S*)", flags)
    if m is None:
        return f"{flags} --xla_backend_extra_options={option}".strip()
    joined = f"{m.group(1)},{option}" if m.group(1) else option
    return f"{flags[: m.start(1)]}{joined}{flags[m.end(1) :]}"


def use_cpu_cores(n: int | None = None) -> int:
    """Make ``n`` CPU devices (default: one per core) so that [`train_many`][jaxbp.many.train_many] shards over them.

    XLA runs one device's small operations on one core at a time, so on a CPU the
    member axis trains fastest split over one device per core. It also lets XLA
    compile each training loop into one function (the CPU compiler's small-loop
    threshold, ``SMALL_LOOP_BYTES``, added to ``XLA_FLAGS`` unless the variable
    already sets one; jaxlib 0.7.2 or later), without one runtime call per operation.
    What each is worth was measured: docs/benchmarks.md. Results are the same bit for bit
    (members are computed in fixed-width blocks). Call it right after import, before
    any JAX computation (``jax_num_cpu_devices`` and ``XLA_FLAGS`` are read when the
    backend starts); the ``jaxbp`` command does. Returns the number of CPU devices.
    """
    if n is None:
        n = usable_cores()
    n = check_positive_int(n, "n", what="a positive number of CPU devices")
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # the backend has started: fine if it has what was asked for
        have = len(jax.devices("cpu"))
        if have != n:
            raise RuntimeError(
                f"use_cpu_cores({n}) must be called before JAX's first computation: the "
                f"CPU backend has already started with {have} device(s)"
            ) from None
    else:
        if jaxlib_version() >= SMALL_LOOPS_SINCE:
            os.environ["XLA_FLAGS"] = small_loop_flags(os.environ.get("XLA_FLAGS", ""))
    return n


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Join a multi-process run (``jax.distributed.initialize``) before calling [`train_many`][jaxbp.many.train_many].

    Arguments left out are read from ``JAXBP_COORDINATOR``, ``JAXBP_NUM_PROCESSES`` and
    ``JAXBP_PROCESS_ID``, and otherwise left to JAX's own detection (SLURM, TPU pods, ...).
    """
    env = os.environ
    coordinator_address = coordinator_address or env.get("JAXBP_COORDINATOR")
    if num_processes is None and "JAXBP_NUM_PROCESSES" in env:
        num_processes = int(env["JAXBP_NUM_PROCESSES"])
    if process_id is None and "JAXBP_PROCESS_ID" in env:
        process_id = int(env["JAXBP_PROCESS_ID"])
    if num_processes is not None:
        num_processes = check_positive_int(num_processes, "num_processes")
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


def gather_processes(tree):
    """Concatenate every process's block of members, on every process."""
    gathered = multihost_utils.process_allgather(tree, tiled=False)
    return jax.tree_util.tree_map(lambda a: np.asarray(a).reshape(-1, *a.shape[2:]), gathered)


def on_host(a) -> list[tuple[int, np.ndarray]]:
    """``a``'s pieces on the host, each with its offset along axis 0.

    A device array comes shard by shard: on a CPU, each a view of the device's own
    buffer, so the caller's one copy (into its result) is the only one.
    ``jax.device_get`` would first copy the shards into a fresh array, whose pages are
    then faulted in (measured: docs/benchmarks.md, "What the history costs").
    """
    if isinstance(a, np.ndarray):
        return [(0, a)]
    shards = [s for s in a.addressable_shards if s.replica_id == 0]
    return [(s.index[0].start or 0, np.asarray(s.data)) for s in shards]


def available_memory() -> int:
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
    net, batch: int, n_records: int, *, dtype, keep_params: bool, opt_slots: int = 2
) -> int:
    """An upper estimate of the device memory one member needs while its chunk trains.

    Parameters, their gradient, the update and ``opt_slots`` optimizer moments; the
    forward and backward activations of the batch; the history; the results. ``net``:
    the built-in MLP's sizes or a ``Footprint``.
    """
    itemsize = np.dtype(dtype).itemsize
    net = footprint(net)
    n_params = net.n_params
    acts = batch * net.acts
    words = n_params * (4 + opt_slots) + acts + n_records + 16 + (n_params if keep_params else 0)
    # XLA keeps double buffers of the scan carry and fuses less than ideally: a factor 2.
    return 2 * words * itemsize
