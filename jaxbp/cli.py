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
import json
import os
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jax

from ._demo import seed_demo
from .many import initialize_distributed, use_cpu_cores
from .sweeps import SweepConfig, estimate_sweep, finish_sweep, report_run, run_sweep
from .sweeps._report import FIGURES_SKIPPED
from .teach import (
    NetworkSpec,
    ScoreRule,
    check_derivation,
    class_exercises,
    dumps_network,
    explain,
    grade_class,
    network_to_dict,
    random_exercise,
    read_claimed,
    read_derivation,
    read_network,
    read_roster,
    read_roster_table,
    read_submissions,
    write_class,
)
from .teach._submissions import PAGES
from .util._files import write_atomic


def _version() -> str:
    try:
        return version("jaxbp")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def _int_at_least(minimum: int):
    """An argparse type: an integer >= minimum."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return parse


def _credit(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a credit from 0 to 1, got {text!r}") from None
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"expected a credit from 0 to 1, got {text!r}")
    return v


_positive_int = _int_at_least(1)
_nonneg_int = _int_at_least(0)


def _check_out(path: Path) -> None:
    """Refuse an --out path that cannot be written, before any work is done."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; expected a file path")
    if not parent.is_dir():
        raise ValueError(f"--out {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"--out {path}: the folder {parent} is not writable")


def _write_text(path: Path, text: str) -> None:
    write_atomic(path, text)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected layer widths such as 3,2,1; got {text!r}"
        ) from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected at least two positive widths such as 3,2,1; got {text!r}"
        )
    return sizes


def _parser() -> argparse.ArgumentParser:
    # One block of argparse declarations per command: long, and read top to bottom.
    parser = argparse.ArgumentParser(
        prog="jaxbp",
        description="Backpropagation three ways, and many small networks at once, in JAX.",
    )
    parser.add_argument("--version", action="version", version=f"jaxbp {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="work the seed exercise (Week 9 Q2) end to end")
    demo.add_argument("--lr", type=_positive_float, default=0.5, help="learning rate (default 0.5)")
    demo.add_argument("--steps", type=_positive_int, default=50, help="training steps (default 50)")
    demo.add_argument("--float32", action="store_true", help="work in float32 instead of float64")
    demo.add_argument("--out", type=Path, metavar="FILE", help="also write the text to FILE")

    ex = sub.add_parser(
        "explain", help="a worked solution, step by step (the seed exercise by default)"
    )
    ex.add_argument(
        "--network",
        type=Path,
        metavar="FILE",
        help="network file (JSON or TOML); default: the seed",
    )
    ex.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    ex.add_argument(
        "--out", type=Path, metavar="FILE", help="write to FILE instead of the terminal"
    )

    ck = sub.add_parser("check", help="grade a hand derivation (exit 0 only if nothing is wrong)")
    ck.add_argument(
        "claimed",
        type=Path,
        metavar="CLAIMED",
        help="claimed steps: JSON or TOML, or a page as written (.md with LaTeX, .txt, .tex)",
    )
    ck.add_argument(
        "--notation",
        type=Path,
        metavar="FILE",
        help="for a page: what its symbols are among the steps (TOML or JSON; default: "
        "jaxbp's names and the common textbook ones)",
    )
    ck.add_argument(
        "--network",
        type=Path,
        metavar="FILE",
        help="network file; default: the one in CLAIMED, else the seed",
    )
    ck.add_argument("--format", choices=("text", "json"), default="text")

    xr = sub.add_parser(
        "exercise", help="a fresh exercise with small integer weights, and its solution"
    )
    xr.add_argument("--sizes", type=_sizes, default=(3, 2, 1), help="layer widths (default 3,2,1)")
    xr.add_argument("--seed", type=_nonneg_int, default=0, help="which exercise (default 0)")
    xr.add_argument("--activation", default="sigmoid", help="hidden activation (default sigmoid)")
    xr.add_argument(
        "--loss",
        default="bce",
        help="bce, mse, mse_linear, half_mse or half_mse_linear (default bce)",
    )
    xr.add_argument("--batch", type=_positive_int, default=1, help="examples (default 1)")
    xr.add_argument(
        "--class",
        dest="roster",
        type=Path,
        metavar="ROSTER",
        help="one exercise per student id in ROSTER (text, or CSV with a student column) "
        "into --out DIR/<id>/, solutions in DIR/_keys/<id>/",
    )
    xr.add_argument(
        "--course-seed",
        type=_nonneg_int,
        default=0,
        help="with --class: the seed every student's network is derived from (default 0)",
    )
    xr.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write network.json, solution.txt, solution.md and solution.json to DIR",
    )

    gr = sub.add_parser(
        "grade", help="grade a class's derivations: grades.csv, feedback pages, class report"
    )
    gr.add_argument(
        "submissions",
        type=Path,
        metavar="SUBMISSIONS",
        help="a folder with one derivation per student (<id>.json or .toml, or a page as "
        "written: <id>.md, .txt, .tex), "
        "or one CSV with a student column and one column per entry (dL/dW1[2,1])",
    )
    which = gr.add_mutually_exclusive_group()
    which.add_argument(
        "--network", type=Path, metavar="FILE", help="the network set to all (default: the seed)"
    )
    which.add_argument(
        "--exercises",
        type=Path,
        metavar="DIR",
        help="each student's own network, as jaxbp exercise --class wrote it (DIR/<id>/)",
    )
    gr.add_argument("--out", type=Path, required=True, metavar="DIR", help="where results go")
    gr.add_argument(
        "--roster",
        type=Path,
        metavar="FILE",
        help="the class's ids (text or CSV): students without a submission get a row "
        "(default with --exercises: its student folders)",
    )
    gr.add_argument(
        "--graded-steps",
        "--steps",  # the older spelling, still accepted (demo's --steps counts updates)
        dest="graded_steps",
        type=lambda t: tuple(s.strip() for s in t.split(",") if s.strip()),
        metavar="NAMES",
        help="the derivation steps the exercise asks for, comma-separated (default: every step)",
    )
    gr.add_argument(
        "--no-carry-forward",
        action="store_true",
        help="no credit for values that follow from an earlier error (default: full credit)",
    )
    gr.add_argument(
        "--carry-forward-credit",
        type=_credit,
        default=1.0,
        metavar="C",
        help="credit (0-1) for a value that follows from an earlier error (default 1)",
    )
    gr.add_argument(
        "--rounding-credit",
        type=_credit,
        default=1.0,
        metavar="C",
        help="credit (0-1) for a value that follows from rounded values (default 1)",
    )
    gr.add_argument(
        "--slip-credit",
        type=_credit,
        default=0.5,
        metavar="C",
        help="credit (0-1) for a wrong value whose working is right: an arithmetic slip "
        "(default 0.5)",
    )
    gr.add_argument(
        "--assignment",
        default="Derivation",
        metavar="NAME",
        help="the assignment's column in canvas.csv and moodle.csv (default 'Derivation')",
    )
    gr.add_argument(
        "--points",
        type=_positive_float,
        default=100.0,
        metavar="P",
        help="what the assignment is worth in canvas.csv (default 100)",
    )
    gr.add_argument(
        "--notation",
        type=Path,
        metavar="FILE",
        help="what the symbols of submissions written as text (.md, .txt, .tex) are among "
        "the steps (default: jaxbp's names and the common textbook ones)",
    )

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
        type=_positive_int,
        metavar="N",
        help="on a CPU, split the members over N devices (default: one per core)",
    )
    sw.add_argument(
        "--max-disk",
        type=_positive_float,
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
    print(
        f"{config.n_members:,} networks x {config.steps:,} steps: "
        # Time is measured (a short probe run) only where it is long enough to matter.
        f"{estimate_sweep(config, probe=config.n_members * config.steps > 10**8)}",
        file=sys.stderr,
    )
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
    print(
        "grid point  learning rate  init scale  converged  rate    diverged  median loss"
        + ("  median test acc" if test else "")
    )
    for row in doc["grid"]:
        loss = "-" if row["loss_median"] is None else f"{row['loss_median']:.4g}"
        acc = row.get("median_test_accuracy")
        print(
            f"{row['grid_index']:>10}  {row['learning_rate']:>13g}  {row['init_scale']:>10g}  "
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


def _explain(args) -> int:
    if args.out is not None:
        _check_out(args.out)
    net = read_network(args.network)
    sol = explain(net.params, net.x, net.y, activation=net.activation, loss=net.loss)
    text = {"text": sol.to_text, "markdown": sol.to_markdown, "json": sol.to_json}[args.format]()
    if args.out is None:
        print(text)
    else:
        _write_text(args.out, text)
    return 0


def _check(args) -> int:
    read = None
    if args.claimed.suffix.lower() in PAGES:
        net = read_network(args.network)
        read = read_derivation(args.claimed, net, notation=args.notation)
        claimed = read.claimed
    else:
        if args.notation is not None:
            raise ValueError(
                f"--notation is for pages written as text (.md, .txt, .tex); {args.claimed} is not one"
            )
        claimed, embedded = read_claimed(args.claimed)
        net = read_network(args.network) if (args.network or embedded is None) else embedded
    try:
        working = {"workings": read.workings, "sources": read.sources} if read else {}
        report = check_derivation(
            net.params, net.x, net.y, claimed, activation=net.activation, loss=net.loss, **working
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"{args.claimed}: {e}") from None
    problems, not_graded = (read.problems, read.not_graded) if read else ([], [])
    if not report.graded:
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        print(f"jaxbp check: {args.claimed} claims no step: nothing to grade", file=sys.stderr)
        return 1
    if args.format == "json":
        doc = json.loads(report.to_json())
        print(json.dumps({**doc, "not_read": problems, "not_graded": not_graded}, indent=2))
    else:
        print(report)
        for title, lines in (("Not read", problems), ("Not graded", not_graded)):
            if lines:
                print(f"\n{title}:")
                print("\n".join(f"  {line}" for line in lines))
    return 0 if report.ok else 1


def _exercise(args) -> int:
    if args.roster is not None:
        return _class_exercises(args)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; expected a folder")
    ex = random_exercise(
        args.seed, args.sizes, activation=args.activation, loss=args.loss, batch=args.batch
    )
    spec = NetworkSpec(ex.params, ex.x, ex.y, ex.activation, ex.loss)
    sol = explain(ex.params, ex.x, ex.y, activation=ex.activation, loss=ex.loss)
    network = dumps_network(network_to_dict(spec))
    if args.out is None:
        print(network)
        print()
        print(sol.to_text())
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("network.json", network + "\n"),
        ("solution.txt", sol.to_text()),
        ("solution.md", sol.to_markdown()),
        ("solution.json", sol.to_json() + "\n"),
    ):
        _write_text(args.out / name, text)
    print(
        f"wrote {args.out}/network.json and its worked solution (solution.txt, solution.md, solution.json)"
    )
    return 0


def _grade(args) -> int:
    start = time.perf_counter()
    subs = read_submissions(args.submissions)
    if not subs:
        raise ValueError(f"{args.submissions}: no submissions found")
    rule = ScoreRule(
        rounding=args.rounding_credit,
        inherited=0.0 if args.no_carry_forward else args.carry_forward_credit,
        slip=args.slip_credit,
    )
    table = read_roster_table(args.roster) if args.roster is not None else None
    roster = list(table) if table is not None else None
    grades = grade_class(
        subs,
        network=args.network,
        exercises=args.exercises,
        rule=rule,
        steps=args.graded_steps,
        roster=roster,
        notation=args.notation,
    )
    write_class(grades, args.out, assignment=args.assignment, points=args.points, roster=table)
    graded = [g for g in grades.grades if g.report is not None]
    full = sum(g.fully_graded for g in grades.grades)
    absent = [g.student for g in grades.grades if not g.submitted]
    print(
        f"graded {len(graded)} of {len(grades.grades) - len(absent)} submissions ({full} in full"
        + (f"; {len(absent)} on the roster handed nothing in" if absent else "")
        + ") in "
        f"{time.perf_counter() - start:.1f} s -> {args.out}/grades.csv, "
        f"{args.out}/feedback/<id>.md|.html, {args.out}/class_report.md, "
        f"{args.out}/canvas.csv, {args.out}/moodle.csv"
    )
    for p in dict.fromkeys(p for g in grades.grades if g.submitted for p in g.problems):
        print(f"  {p}", file=sys.stderr)
    return grades.exit_code


def _class_exercises(args) -> int:
    if args.out is None:
        raise ValueError("--class needs --out DIR: the folder the class's exercises go into")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; expected a folder")
    roster = read_roster(args.roster)
    folders = class_exercises(
        roster,
        args.out,
        sizes=args.sizes,
        activation=args.activation,
        loss=args.loss,
        batch=args.batch,
        course_seed=args.course_seed,
    )
    print(
        f"wrote {len(folders)} exercises to {args.out}/<id>/ (network.json, sheet.md, "
        f"sheet.html); solutions in {args.out}/_keys/<id>/"
    )
    return 0


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
                _check_out(args.out)
            text = seed_demo(
                learning_rate=args.lr,
                steps=args.steps,
                dtype="float32" if args.float32 else "float64",
            )
            print(text)
            if args.out is not None:
                _write_text(args.out, text + "\n")
            return 0
        return {
            "explain": _explain,
            "check": _check,
            "exercise": _exercise,
            "grade": _grade,
            "sweep": _sweep,
            "report": _report,
        }[args.command](args)
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as e:
        print(f"jaxbp {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
