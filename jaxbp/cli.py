"""The ``jaxbp`` command.

- ``jaxbp demo``: the seed exercise end to end (forward, three gradients, training).
- ``jaxbp explain [--network FILE]``: a worked solution (text, Markdown or JSON).
- ``jaxbp check CLAIMED [--network FILE]``: grade a hand derivation; exit 0 only when
  no step is wrong or inherits an error, 1 when some is.
- ``jaxbp exercise --sizes 3,2,1 --seed N``: a fresh exercise and its solution.
- ``jaxbp grade SUBMISSIONS --out DIR``: grade a class (a folder of claimed
  derivations or one CSV): grades.csv, feedback pages, class_report.md; exit 0
  when every submission was graded in full, 1 when some could not be.
- ``jaxbp sweep CONFIG.toml --out DIR``: train a grid of many networks into a
  resumable run folder (the config's keys: docs/sweeps.md).
- ``jaxbp report DIR``: (re)draw a finished run folder's figures and report.md.

Errors in what the user gave are printed as one line and exit with status 2,
never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jax

from ._args import check_out, positive_float, positive_int, write_text
from ._commands_teach import TEACH_COMMANDS, add_teach_commands
from ._demo import seed_demo
from .many import initialize_distributed, use_cpu_cores
from .sweeps import SweepConfig, estimate_sweep, finish_sweep, report_run, run_sweep
from .sweeps._report import FIGURES_SKIPPED


def _version() -> str:
    try:
        return version("jaxbp")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    # One block of argparse declarations per command: long, and read top to bottom.
    parser = argparse.ArgumentParser(
        prog="jaxbp",
        description="Backpropagation three ways, and many small networks at once, in JAX.",
    )
    parser.add_argument("--version", action="version", version=f"jaxbp {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="work the seed exercise (Week 9 Q2) end to end")
    demo.add_argument("--lr", type=positive_float, default=0.5, help="learning rate (default 0.5)")
    demo.add_argument("--steps", type=positive_int, default=50, help="training steps (default 50)")
    demo.add_argument("--float32", action="store_true", help="work in float32 instead of float64")
    demo.add_argument("--out", type=Path, metavar="FILE", help="also write the text to FILE")

    add_teach_commands(sub)

    sw = sub.add_parser("sweep", help="train a grid of many networks into a resumable run folder")
    sw.add_argument(
        "config",
        type=Path,
        metavar="CONFIG.toml",
        help="the sweep config (its tables and keys: docs/sweeps.md)",
    )
    sw.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="the run folder (resumed if it exists)",
    )
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.add_argument(
        "--shard",
        type=_shard,
        metavar="I/P",
        help="train only shard I of P (chunks k with k %% P == I) into the shared folder; "
        "default from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT when set",
    )
    sw.add_argument(
        "--finish",
        action="store_true",
        help="only assemble a folder whose chunks are all done (members.csv, report, ...)",
    )
    sw.add_argument(
        "--cpu-devices",
        type=positive_int,
        metavar="N",
        help="on a CPU, split the members over N devices (default: one per core)",
    )
    sw.add_argument(
        "--max-disk",
        type=positive_float,
        default=20.0,
        metavar="GB",
        help="refuse a sweep whose files would take more than this many GiB (default 20)",
    )
    rp = sub.add_parser("report", help="(re)draw a finished run folder's figures and report.md")
    rp.add_argument("folder", type=Path, metavar="RUN_FOLDER", help="a folder jaxbp sweep wrote")
    return parser


def _shard(text: str) -> tuple[int, int]:
    try:
        i, p = (int(t) for t in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/P such as 0/4, got {text!r}") from None
    if not 0 <= i < p:
        raise argparse.ArgumentTypeError(f"expected I/P with 0 <= I < P, got {text!r}")
    return i, p


def _slurm_shard() -> tuple[int, int] | None:
    """Shard I/P of a SLURM job array (I counted from the array's first task id)."""
    env = os.environ
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    try:
        i = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
        p = int(env["SLURM_ARRAY_TASK_COUNT"])
    except ValueError:
        raise ValueError("SLURM_ARRAY_TASK_ID/COUNT/MIN must be integers") from None
    if not 0 <= i < p:
        raise ValueError(
            f"SLURM array task {env['SLURM_ARRAY_TASK_ID']} is not one of {p} tasks counted "
            f"from SLURM_ARRAY_TASK_MIN={env.get('SLURM_ARRAY_TASK_MIN', '0')}"
        )
    return i, p


def _sweep(args) -> int:
    try:
        use_cpu_cores(args.cpu_devices)
    except RuntimeError:  # called in a process whose JAX backend has already started
        if args.cpu_devices is not None:
            raise
    if "JAXBP_COORDINATOR" in os.environ:  # one multi-process JAX job: processes are shards
        initialize_distributed()

    config = SweepConfig.from_toml(args.config)
    if args.finish:
        return _print_sweep(args, finish_sweep(config, args.out))
    shard = args.shard or _slurm_shard()
    # Time is measured (a short probe run) only where it is long enough to matter, and
    # not for a sweep the disk limit refuses anyway.
    estimate = estimate_sweep(config, probe=False)
    if config.n_members * config.steps > 10**8 and estimate.disk <= args.max_disk * 2**30:
        estimate = estimate_sweep(config, probe=True)
    print(f"{config.n_members:,} networks x {config.steps:,} steps: {estimate}", file=sys.stderr)
    try:
        doc = run_sweep(
            config,
            args.out,
            progress=False if args.no_progress else None,
            max_disk=args.max_disk * 2**30,
            shard=shard,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: finished chunks are kept in {args.out}; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    return _print_sweep(args, doc)


def _print_sweep(args, doc) -> int:
    if not doc["finished"]:
        which = f"shard {doc['shard'][0]}/{doc['shard'][1]}" if doc["shard"] else "this run"
        print(
            f"{which}: its chunks are in {args.out}/chunks; {doc['members_missing']:,} of "
            f"{doc['members']:,} members still to train elsewhere; {doc['note']}"
        )
        return 0
    print(f"{doc['members']} members of task {doc['task']!r} -> {args.out}")
    test = "median_test_accuracy" in doc["grid"][0]
    wide = "width" in doc["grid"][0]
    print(
        "grid point  "
        + ("width  " if wide else "")
        + "learning rate  init scale  converged  rate    diverged  median loss"
        + ("  median test acc" if test else "")
    )
    for row in doc["grid"]:
        loss = "-" if row["loss_median"] is None else f"{row['loss_median']:.4g}"
        acc = row.get("median_test_accuracy")
        print(
            f"{row['grid_index']:>10}  "
            + (f"{row['width']:>5}  " if wide else "")
            + f"{row['learning_rate']:>13g}  {row['init_scale']:>10g}  "
            f"{row['converged']:>9}  {row['convergence_rate']:.3f}  {row['diverged']:>8}  {loss:>11}"
            + (f"  {'-' if acc is None else format(acc, '.3f'):>15}" if test else "")
        )
    if doc["figures_drawn"]:
        print(f"report, figures and one row per member: {args.out}/report.md, members.csv")
    else:
        print(f"report and one row per member: {args.out}/report.md, members.csv")
        print(FIGURES_SKIPPED.format(out=args.out))
    return 0


def _report(args) -> int:
    if report_run(args.folder):
        print(f"figures and report: {args.folder}/figures, {args.folder}/report.md")
        return 0
    print(
        "jaxbp report: error: figures need matplotlib: pip install 'jaxbp[plots]'", file=sys.stderr
    )
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0

    # The command line works in float64 unless asked otherwise, so that worked
    # values match a hand calculation to every printed digit.
    jax.config.update("jax_enable_x64", True)
    try:
        if args.command == "demo":
            if args.out is not None:
                check_out(args.out)
            text = seed_demo(
                learning_rate=args.lr,
                steps=args.steps,
                dtype="float32" if args.float32 else "float64",
            )
            print(text)
            if args.out is not None:
                write_text(args.out, text + "\n")
            return 0
        return {
            **TEACH_COMMANDS,
            "sweep": _sweep,
            "report": _report,
        }[args.command](args)
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as e:
        print(f"jaxbp {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
