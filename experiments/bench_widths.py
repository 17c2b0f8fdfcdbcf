"""What does a width axis cost? One ``train_many`` over several hidden widths against
training every member at the widest width, and against one call per width.

    python experiments/bench_widths.py [--widths 2 4 8 16] [--n-inits 2048] [--steps 2000]
        [--task parity] [--repeats 3] [--cpu-devices N] [--out FILE.json]

The network is ``(inputs, w, 1)`` sigmoid with BCE, plain SGD, on 3-bit parity (or
``--task xor``); the grid is ``len(widths)`` widths x 2 learning rates x ``n_inits``
starts. Rows, all in this run, each the best of ``--repeats`` timed calls after one
untimed call (so compile time is apart, and reported):

- widths: ``train_many(..., widths=widths)``, one compiled program;
- widest: the same number of members, all at the widest width (the issue's baseline:
  the widths row may cost at most 1.3x this);
- per width: one ``train_many`` per width, each compiled on its own.

Memory: the widths call plans every member as the widest network (the same chunk and
block sizes as the widest row), plus one integer per member for its width.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import numpy as np

import jaxbp


def data(task: str):
    if task == "xor":
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    else:
        x = np.array([[(i >> b) & 1 for b in range(3)] for i in range(8)], np.float32)
    return x, (x.sum(axis=1) % 2).astype(np.float32)


def timed(fn, repeats: int) -> tuple[float, float]:
    """(seconds of the first call, best of ``repeats`` later calls)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return first, best


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=int, nargs="+", default=[2, 4, 8, 16])
    p.add_argument("--n-inits", type=int, default=2048)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--task", choices=["parity", "xor"], default="parity")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cpu-devices", type=int, default=None)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    jaxbp.use_cpu_cores(args.cpu_devices)
    x, y = data(args.task)
    key = jax.random.key(0)
    n_in, widths, wide = x.shape[1], tuple(args.widths), max(args.widths)
    kw = dict(
        n_inits=args.n_inits, steps=args.steps, learning_rate=[0.5, 2.0], init_scale=1.0,
        progress=False,
    )  # fmt: skip
    per_width = 2 * args.n_inits
    n_members = len(widths) * per_width
    rows = {}

    def run_widths():
        jaxbp.train_many(key, (n_in, 2, 1), x, y, widths=widths, **kw)

    def run_widest():
        jaxbp.train_many(
            key, (n_in, wide, 1), x, y, **{**kw, "n_inits": len(widths) * args.n_inits}
        )

    def run_each():
        for w in widths:
            jaxbp.train_many(key, (n_in, w, 1), x, y, **kw)

    for name, fn in (("widths", run_widths), ("widest", run_widest), ("per width", run_each)):
        first, best = timed(fn, args.repeats)
        rows[name] = {"first_s": first, "best_s": best, "compile_s": max(0.0, first - best)}
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "jax": jax.__version__,
        "devices": len(jax.devices()),
        "task": args.task,
        "widths": widths,
        "members": n_members,
        "steps": args.steps,
        "rows": rows,
        "ratio_widths_to_widest": rows["widths"]["best_s"] / rows["widest"]["best_s"],
        "ratio_per_width_to_widths": rows["per width"]["best_s"] / rows["widths"]["best_s"],
        "ratio_per_width_to_widths_first_call": rows["per width"]["first_s"]
        / rows["widths"]["first_s"],
    }
    print(
        f"{n_members:,} members ({len(widths)} widths {widths} x 2 learning rates x "
        f"{args.n_inits} starts), {args.steps} steps, {args.task}, {out['devices']} device(s), "
        f"JAX {jax.__version__}"
    )
    print(f"{'row':<10} {'best (s)':>9} {'first call (s)':>15} {'net-steps/s':>12}")
    for name in ("widths", "widest", "per width"):
        r = rows[name]
        print(
            f"{name:<10} {r['best_s']:>9.3f} {r['first_s']:>15.3f} "
            f"{n_members * args.steps / r['best_s']:>12.3g}"
        )
    print(f"widths / widest: {out['ratio_widths_to_widest']:.2f}x (at most 1.3x wanted)")
    print(
        f"per width / widths: {out['ratio_per_width_to_widths']:.2f}x "
        f"(first calls, compile included: {out['ratio_per_width_to_widths_first_call']:.2f}x)"
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
