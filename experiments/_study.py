"""What the sweep-based studies (parity3, xor, breast_cancer) share: the command line,
the sweep into a run folder, a few helpers.

Each study is ``python experiments/study_*.py [--out DIR] [--quick]``: it runs its sweep
with ``jaxbp.run_sweep`` (resumable: rerunning finishes an interrupted run), then writes
its findings into the run folder's report.md and, where it has them, extra figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

import jaxbp
from jaxbp import SweepConfig, add_report_section, run_sweep


def main(name: str, doc: str, config: dict, quick: dict, analyse, argv=None) -> int:
    ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    ap.add_argument(
        "--out", type=Path, default=Path("runs") / name, help=f"run folder (default runs/{name})"
    )
    ap.add_argument("--quick", action="store_true", help="a much smaller version, for a smoke test")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    jaxbp.use_cpu_cores()  # before any JAX computation
    cfg = {k: dict(v) for k, v in config.items()}
    if args.quick:
        for section, values in quick.items():
            cfg[section].update(values)
    sweep = SweepConfig.from_dict(cfg, where=name)
    chunks = args.out / "chunks"
    done_before = len(list(chunks.glob("*.npz"))) if chunks.is_dir() else 0
    t = time.perf_counter()
    try:
        summary = run_sweep(sweep, args.out, progress=False if args.no_progress else None)
    except KeyboardInterrupt:
        print(f"interrupted: rerun the same command to resume {args.out}", file=sys.stderr)
        return 130
    except ValueError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - t
    findings = analyse(args.out, sweep, summary)
    resumed = (
        f" ({done_before} chunk(s) of members were already on disk and were not retrained)"
        if done_before
        else ""
    )
    findings += (
        f"\n\n_{sweep.n_members:,} networks, {sweep.steps} steps each; this call took "
        f"{seconds:.0f} s on {len(jax.devices())} {jax.default_backend()} device(s){resumed}._\n"
    )
    add_report_section(args.out, "Study findings", findings)
    print(findings)
    print(f"\nreport: {args.out / 'report.md'}")
    return 0


def retrained(out: Path, config: SweepConfig, task) -> jaxbp.ManyResult:
    """Every member of the sweep trained again, now with its final parameters kept.

    The same bits as in the sweep (a member's result depends only on the key, its
    index and its grid point): checked against members.csv's final losses.
    """
    kw = config.train_kwargs(task)
    r = jaxbp.train_many(
        jax.random.key(config.seed), config.network(), task.x, task.y, keep_params=True, **kw
    )
    written = members_table(out)["final_loss"]
    if not np.array_equal(written, [float(f"{v:.9g}") for v in r.final_loss]):
        raise RuntimeError(f"{out}: retrained members differ from the sweep's members.csv")
    return r


def members_table(out: Path) -> dict[str, np.ndarray]:
    """members.csv as columns of NumPy arrays (no pandas needed)."""
    import csv

    with open(out / "members.csv") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}
