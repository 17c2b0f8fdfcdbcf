"""Sweeps saved to run folders: chunks written atomically, resume after a stop, a reader.

A run folder holds ``config.toml`` (the config as run), ``meta.json`` (library and
JAX versions, devices), ``chunks/`` (one ``.npz`` per finished slice of members,
written to a temporary file and renamed, so a chunk is either whole or absent),
and, once every chunk is done, ``members.csv`` (one row per member),
``histories.npz``, ``summary.json``, ``figures/`` and ``report.md``. Running the
same config on the folder again skips the finished chunks; another config is
refused. [`load_run`][jaxbp.sweeps.load_run] reads a finished folder back. NumPy files are read with
``allow_pickle=False``.

Several processes may fill one folder: shard ``i`` of ``P`` trains the chunks
``k`` with ``k % P == i`` (chunk ``k`` holds members ``k * members_per_file`` on),
so shards never share a chunk, may crash and be rerun in any order, and whichever
finds every chunk done assembles the results ([`finish_sweep`][jaxbp.sweeps.finish_sweep] does it alone).
Under ``jax.distributed`` the processes are the shards, and process 0 assembles.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from .._version import __version__
from ..many._config import default_record_every
from ..many._devices import available_memory
from ..many._many import check_train_many, local_process, train_many
from ..many._result import HISTORIES, ManyResult
from ..util._checks import ceil_div
from ..util._files import write_atomic
from ._config import SweepConfig
from ._kept import chunk_range, keeps_params, n_kept, params_arrays
from ._report import figures_and_report
from ._tasks import load_task

__all__ = [
    "Estimate",
    "Run",
    "estimate",
    "estimate_sweep",
    "finish_sweep",
    "load_run",
    "report_run",
    "run_sweep",
]

FIELDS = ("final_loss", "accuracy", "converged_at", "diverged", "history")
TEST_FIELDS = ("test_loss", "test_accuracy", "test_loss_history", "test_accuracy_history")
# Chunk files written before the held-out histories took the ``test_`` name.
_OLDER_NAMES = {
    "test_loss_history": "eval_loss_history",
    "test_accuracy_history": "eval_accuracy_history",
}


def _fields(task) -> tuple[str, ...]:
    return FIELDS + (TEST_FIELDS if task.x_test is not None else ())


def _prepare_folder(out: Path, config: SweepConfig) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a run folder")
    # Missing parents are made (runs/NAME in a fresh clone); the nearest existing one
    # must be a writable folder.
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not out.exists() and not (parent.is_dir() and os.access(parent, os.W_OK)):
        raise ValueError(f"--out {out}: cannot create it ({parent} is not a writable folder)")
    if out.exists() and not os.access(out, os.W_OK):
        raise ValueError(f"--out {out} is not writable")
    text = config.to_toml()
    existing = out / "config.toml"
    if existing.exists():
        (out / "chunks").mkdir(exist_ok=True)
        # The file size of chunks may change between runs: results do not depend on it.
        before = dataclasses.replace(
            SweepConfig.from_toml(existing), members_per_file=config.members_per_file
        )
        if before != config:
            raise ValueError(
                f"{out} holds a run of another config ({existing}); use a new --out folder, "
                "or rerun with the same config to resume"
            )
        return
    # Another shard may be creating the folder right now: its temporary files start
    # with a dot; anything else there means it is not a run folder.
    if out.exists() and any(not p.name.startswith(".") for p in out.iterdir()):
        raise ValueError(
            f"--out {out} exists, is not empty and holds no config.toml: not a run folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(existing, text)  # config.toml first: then the folder is a run folder
    (out / "chunks").mkdir(exist_ok=True)


def _meta(config: SweepConfig) -> dict[str, Any]:
    network = (
        {"sizes": list(config.sizes), **({"widths": list(config.widths)} if config.widths else {})}
        if config.model is None
        else {"model": config.model, "model_args": dict(config.model_args)}
    )
    return {
        "network": network,
        "jaxbp": __version__,
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "processes": jax.process_count(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _load_task(config: SweepConfig):
    task = load_task(config.task, **dict(config.task_options))
    if config.sizes is not None and task.n_features != config.sizes[0]:
        raise ValueError(
            f"[network] sizes starts with {config.sizes[0]} inputs but task {config.task!r} has "
            f"{task.n_features} features"
        )
    softmax = config.loss == "softmax_ce"
    if task.n_classes > 2 and not softmax:
        raise ValueError(
            f"task {config.task!r} has {task.n_classes} classes: [network] loss must be "
            f"'softmax_ce' (one output unit per class); got {config.loss!r}"
        )
    outputs = task.n_classes if softmax else 1
    if config.sizes is not None and config.sizes[-1] != outputs:
        raise ValueError(
            f"[network] sizes ends with {config.sizes[-1]} output units but task "
            f"{config.task!r} with loss {config.loss!r} needs {outputs}"
            + (" (one per class)" if softmax else " (one logit for two classes)")
        )
    return task


@dataclasses.dataclass(frozen=True)
class Estimate:
    """What a sweep will take: bytes on disk, bytes of memory to assemble the results,
    and (when measured) seconds of training."""

    disk: int
    memory: int
    seconds: float | None = None

    def __str__(self) -> str:
        text = f"about {_gib(self.disk)} on disk and {_gib(self.memory)} of memory"
        if self.seconds is not None:
            text += f"; at most about {_duration(self.seconds)} of training"
        return text


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**27 else f"{n / 2**20:.1f} MiB"


def estimate_sweep(config: SweepConfig, *, probe: bool = False) -> Estimate:
    """What a sweep will take, before it starts: disk and memory from its shape, and
    with ``probe`` the training time, from a short timed run of the same network on
    up to 1,024 of its members (an upper estimate: more members run faster)."""
    task = _load_task(config)
    est = estimate(config, task, config.dtype)
    if not probe:
        return est

    kw = config.train_kwargs(task)
    n = min(config.n_members, 1024)
    steps = kw["record_every"] or 1
    while steps < min(config.steps, 50):
        steps += kw["record_every"] or 1
    kw.update(steps=steps, record_every=kw["record_every"] or 1)
    run = lambda: train_many(
        jax.random.key(config.seed), config.network(), task.x, task.y, members=(0, n), **kw
    )
    run()  # compiles
    t = time.perf_counter()
    run()
    rate = n * steps / max(time.perf_counter() - t, 1e-9)
    return dataclasses.replace(est, seconds=config.n_members * config.steps / rate)


def estimate(config: SweepConfig, task, dtype) -> Estimate:
    """An upper estimate of a sweep's disk and memory, from its shape alone."""
    steps, every = config.steps, config.record_every or default_record_every(config.steps)
    itemsize = np.dtype(dtype).itemsize
    fields = _fields(task)
    histories = sum(f in HISTORIES for f in fields)
    per_member = histories * (steps // every) * itemsize + 8 * len(fields)  # one chunk row
    # chunks/ and histories.npz hold every row once each (the parameters a chunk keeps
    # only in chunks/), members.csv ~120 characters.
    disk = config.n_members * (2 * per_member + n_kept(config, task) * itemsize + 120)
    # Assembling: the chunks concatenated, the CSV text, the summary's working copies.
    memory = config.n_members * (3 * per_member + 240)
    return Estimate(disk=disk, memory=memory)


def _check_size(est: Estimate, out: Path, max_disk: float | None) -> None:
    parent = out.absolute()
    while not parent.exists():
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    limit = free if max_disk is None else min(free, int(max_disk))
    if est.disk > limit:
        why = (
            f"more than the {_gib(free)} free there"
            if limit == free
            else f"more than --max-disk {_gib(int(max_disk))}"
        )
        raise ValueError(
            f"this sweep needs {_gib(est.disk)} on disk for {out}, {why}; make it smaller "
            "(n_inits, steps, record_every) or raise the limit (max_disk, jaxbp sweep --max-disk)"
        )
    if est.memory > available_memory():
        raise ValueError(
            f"assembling this sweep's results needs {_gib(est.memory)} of memory, more than the "
            f"{_gib(available_memory())} free; make it smaller (n_inits, steps, record_every)"
        )


DEFAULT_MAX_DISK = 20 * 2**30


def _check_shard(shard) -> tuple[int, int] | None:
    if shard is None:
        return None
    if (
        not isinstance(shard, tuple)
        or len(shard) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
        or not 0 <= shard[0] < shard[1]
    ):
        raise ValueError(f"shard must be (index, count) with 0 <= index < count; got {shard!r}")
    return shard


def run_sweep(
    config: SweepConfig,
    out: str | os.PathLike,
    *,
    progress: bool | None = None,
    max_disk: float | None = DEFAULT_MAX_DISK,
    shard: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a sweep into the folder ``out``; returns the summary.

    Every input is checked before the folder is created or touched, the run's disk
    and memory among them (``estimate``): a sweep that would need more than
    ``max_disk`` bytes (default 20 GiB; None: only the free space limits it), more
    than the free disk or more memory than is free to assemble its results is
    refused. Members are trained ``config.members_per_file`` at a time; each finished
    chunk is a file of its own, so a stopped run resumes where it stopped.

    ``shard=(i, P)`` trains only shard ``i``'s chunks (``k % P == i``); the shard that
    finds every chunk done assembles the results, the others return
    ``{"finished": False, ...}``. Under ``jax.distributed`` (more than one process) the
    processes are the shards and process 0 assembles once all are done.
    """
    out = Path(out)
    shard = _check_shard(shard)
    distributed = jax.process_count() > 1
    if distributed and shard is None:
        shard = (jax.process_index(), jax.process_count())
    task = _load_task(config)
    kw = {**config.train_kwargs(task, progress=progress), "keep_params": keeps_params(config, task)}
    key = jax.random.key(config.seed)
    with local_process() if distributed else contextlib.nullcontext():
        # Every argument checked as train_many checks it, before anything is written.
        checked = check_train_many(key, config.network(), task.x, task.y, **kw)
        _check_size(estimate(config, task, checked.spec.dtype), out, max_disk)
        _prepare_folder(out, config)
        if not (out / "meta.json").exists():
            write_atomic(out / "meta.json", json.dumps(_meta(config), indent=2))
        todo = _chunks_to_train(out, config, shard)
        bar = (
            _sweep_bar(todo, config)
            if (sys.stderr.isatty() if progress is None else progress)
            else None
        )
        try:
            for start, stop in todo:
                path = out / "chunks" / f"members-{start:09d}-{stop:09d}.npz"
                r = train_many(
                    key,
                    config.network(),
                    task.x,
                    task.y,
                    members=(start, stop),
                    **{**kw, "progress": bar or False},
                )
                arrays = {f: getattr(r, f) for f in _fields(task)}
                if r.params is not None:
                    arrays.update(params_arrays(r.params))
                write_atomic(path, lambda f, a=arrays: np.savez(f, **a))
        finally:
            if bar is not None:
                bar.close()
    if distributed:
        multihost_utils.sync_global_devices("jaxbp sweep: every process's chunks are written")
        doc = None
        if jax.process_index() == 0:
            with local_process():  # the report retrains a few members: on this process
                doc = _finish(out, config, task)
        multihost_utils.sync_global_devices("jaxbp sweep: process 0 has assembled the results")
        return doc or _unfinished(out, config, shard, "process 0 assembled the results")
    if _missing(out, config):
        return _unfinished(
            out, config, shard, "the last shard to finish (or jaxbp sweep --finish) assembles"
        )
    return _finish(out, config, task)


def _unfinished(out: Path, config: SweepConfig, shard, note: str) -> dict[str, Any]:
    missing = _missing(out, config)
    return {
        "finished": False,
        "task": config.task,
        "members": config.n_members,
        "shard": list(shard) if shard else None,
        "members_missing": sum(b - a for a, b in missing),
        "note": note,
    }


def finish_sweep(config: SweepConfig, out: str | os.PathLike) -> dict[str, Any]:
    """Assemble a run folder whose chunks are all done (members.csv, histories, summary,
    figures, report); an error naming the missing members otherwise."""
    out = Path(out)
    if not (out / "config.toml").is_file():
        raise ValueError(f"{out}: not a run folder (no config.toml)")
    _prepare_folder(out, config)  # refuses a folder of another config
    missing = _missing(out, config)
    if missing:
        shown = ", ".join(f"{a}-{b - 1}" for a, b in missing[:5])
        more = f" and {len(missing) - 5} more ranges" if len(missing) > 5 else ""
        raise ValueError(
            f"{out}: {sum(b - a for a, b in missing)} of {config.n_members} members have no "
            f"chunk yet (members {shown}{more}); run the missing shards first"
        )
    return _finish(out, config, _load_task(config))


def _sweep_bar(todo, config: SweepConfig):
    """One bar for the whole sweep: network-steps of the members still to train."""
    members = sum(stop - start for start, stop in todo)
    return tqdm(
        total=members * config.steps,
        unit="net-step",
        unit_scale=True,
        desc=f"sweep: {members:,} members",
        dynamic_ncols=True,
    )


def _uncovered(out: Path, lo: int, hi: int) -> list[tuple[int, int]]:
    """The parts of members ``[lo, hi)`` that no chunk file covers yet."""
    done = sorted(chunk_range(p) for p in (out / "chunks").glob("members-*.npz"))
    gaps, at = [], lo
    for start, stop in [*done, (hi, hi)]:
        if stop <= at:
            continue
        if start > at:
            gaps.append((at, min(start, hi)))
        at = max(at, stop)
        if at >= hi:
            break
    return gaps


def _missing(out: Path, config: SweepConfig) -> list[tuple[int, int]]:
    return _uncovered(out, 0, config.n_members)


def _chunks_to_train(
    out: Path, config: SweepConfig, shard: tuple[int, int] | None = None
) -> list[tuple[int, int]]:
    """The member ranges of this shard's chunks that no chunk file covers yet.

    Chunk ``k`` is members ``[k * members_per_file, (k + 1) * members_per_file)``;
    shard ``(i, P)`` owns the chunks with ``k % P == i``. Finished chunks (renamed into
    place only when whole) are kept whatever their size, so a run resumed with another
    ``members_per_file`` keeps what it has and trains only the rest.
    """
    n, size = config.n_members, config.members_per_file
    index, count = shard or (0, 1)
    todo = []
    for k in range(index, ceil_div(n, size), count):
        todo += _uncovered(out, k * size, min(n, (k + 1) * size))
    return todo


def _read_chunks(out: Path, n: int, fields) -> dict[str, np.ndarray]:
    """The chunk files' arrays, concatenated; an error unless they tile members 0..n."""
    data = {f: [] for f in fields}
    covered = 0
    for p in sorted((out / "chunks").glob("members-*.npz")):
        start, stop = chunk_range(p)
        if start != covered:
            raise ValueError(
                f"{out}: chunk files do not tile the members (expected one starting at {covered})"
            )
        with np.load(p, allow_pickle=False) as z:
            for f in fields:
                name = f if f in z else _OLDER_NAMES.get(f, f)
                if name not in z:
                    raise ValueError(f"{p}: no {f!r} array (written by another version?)")
                data[f].append(z[name])
        covered = stop
    if covered != n:
        raise ValueError(f"{out}: chunks cover {covered} of {n} members")
    return {f: np.concatenate(v) for f, v in data.items()}


def _result(config: SweepConfig, data: dict[str, np.ndarray]) -> ManyResult:
    """The chunks' arrays as what ``train_many`` returns for the whole grid."""
    grid = config.grid()
    return ManyResult.from_members(
        grid,
        np.arange(config.n_members),
        data,
        steps=config.steps,
        record_every=config.record_every or config.steps // data["history"].shape[1],
        batch_size=config.batch_size,
        sizes=config.sizes,
    )


def _members_csv(result: ManyResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    test = result.test_loss is not None
    r = result
    w.writerow(
        [
            "member",
            "grid_index",
            *(("width",) if r.width is not None else ()),
            "learning_rate",
            "init_scale",
            "seed_index",
            "final_loss",
            "accuracy",
            "converged",
            "converged_at",
            "diverged",
            *(("test_loss", "test_accuracy") if test else ()),
        ]
    )
    for i in range(r.n_members):
        w.writerow(
            [
                i,
                r.grid_index[i],
                *((int(r.width[i]),) if r.width is not None else ()),
                repr(float(r.learning_rate[i])),
                repr(float(r.init_scale[i])),
                r.seed_index[i],
                f"{float(r.final_loss[i]):.9g}",
                f"{float(r.accuracy[i]):.9g}",
                int(r.converged_at[i] >= 0),
                int(r.converged_at[i]),
                int(r.diverged[i]),
                *(
                    (f"{float(r.test_loss[i]):.9g}", f"{float(r.test_accuracy[i]):.9g}")
                    if test
                    else ()
                ),
            ]
        )
    return buf.getvalue()


def _summary(config: SweepConfig, result: ManyResult) -> dict[str, Any]:
    # JSON has no NaN: a grid point with no finite loss gets null.
    grid = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in result.summary()
    ]
    return {"task": config.task, "members": config.n_members, "grid": grid}


def _finish(out: Path, config: SweepConfig, task) -> dict[str, Any]:
    data = _read_chunks(out, config.n_members, _fields(task))
    result = _result(config, data)
    write_atomic(out / "members.csv", _members_csv(result))
    histories = {"loss": data["history"]}
    if "test_loss_history" in data:
        histories.update(
            test_loss=data["test_loss_history"], test_accuracy=data["test_accuracy_history"]
        )
    write_atomic(out / "histories.npz", lambda f: np.savez(f, **histories))
    doc = _summary(config, result)
    write_atomic(out / "summary.json", json.dumps(doc, indent=2))
    doc["finished"] = True
    doc["figures_drawn"] = figures_and_report(out, config, task, data, result.grid_index, doc)
    return doc


def report_run(folder: str | os.PathLike) -> bool:
    """(Re)draw a finished run folder's figures and report.md from its files.

    For a folder whose sweep ran without matplotlib, or after a change of the
    figures. Returns whether figures were drawn (False without matplotlib).
    """
    run = load_run(folder)
    task = _load_task(run.config)
    data = _read_chunks(run.folder, run.config.n_members, _fields(task))
    return figures_and_report(
        run.folder, run.config, task, data, run.result.grid_index, run.summary
    )


@dataclasses.dataclass(frozen=True)
class Run:
    """A finished run folder, read back: its config, every member's results, the summary."""

    folder: Path
    config: SweepConfig
    result: ManyResult
    summary: dict[str, Any]

    def members(self):
        """members.csv as a pandas DataFrame, one row per member (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Run.members() returns a pandas DataFrame: pip install pandas "
                "(run.result has the same columns as NumPy arrays)"
            ) from None
        return pd.read_csv(self.folder / "members.csv")


def load_run(folder: str | os.PathLike) -> Run:
    """Read a finished run folder (``jaxbp sweep`` or [`run_sweep`][jaxbp.sweeps.run_sweep]).

    Returns:
      [`Run`][jaxbp.sweeps.Run]: ``config`` ([`SweepConfig`][jaxbp.sweeps.SweepConfig]), ``result`` (what
      [`jaxbp.train_many`][jaxbp.many.train_many] returned for the whole grid, without parameters) and
      ``summary`` (summary.json).
    """
    folder = Path(folder)
    if not (folder / "config.toml").is_file():
        raise ValueError(f"{folder}: not a run folder (no config.toml)")
    config = SweepConfig.from_toml(folder / "config.toml")
    fields = list(FIELDS)
    first = next(iter(sorted((folder / "chunks").glob("members-*.npz"))), None)
    if first is not None:
        with np.load(first, allow_pickle=False) as z:
            fields += [f for f in TEST_FIELDS if f in z]
    data = _read_chunks(folder, config.n_members, fields)
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        raise ValueError(f"{folder}: the run is not finished (no summary.json); rerun it to finish")
    summary = json.loads(summary_path.read_text())
    return Run(folder=folder, config=config, result=_result(config, data), summary=summary)
