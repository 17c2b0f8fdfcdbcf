"""Where a seed-network step's time goes in ``train_many``: operations, exponentials, dispatch.

    python experiments/step_breakdown.py [--cpu-devices N] [--steps 1000] [--out FILE.json]

The call is the default one (``train_many(key, (3, 2, 1), x, y, n_inits=16384,
steps=1000, learning_rate=0.5)``, 3-bit parity, float32), after
:func:`jaxbp.use_cpu_cores`, which lets XLA compile each training loop into one
function. Four measurements:

1. **The default call**, in network-steps per second and nanoseconds per
   network-step on each device.
2. **Operation by operation.** The same call in a second process whose XLA runs
   each loop operation by operation (the small-loop threshold set to 0), under
   ``jax.profiler``: XLA's CPU runtime reports every compiled operation ("thunk")
   it runs, so the step splits into its fused loops, each named by what it computes
   (from the compiled program's own text: the shape it writes). Profiling adds a
   fixed cost to every operation, so the shares, not the absolute times, are what
   to read. That process's own rate, against the default call's, is what one
   function per loop saves: the runtime's cost per operation, and the larger
   operations split into tasks for other threads.
3. **Exponentials.** A network-step evaluates 24 sigmoids (16 hidden, 8 output):
   the same sigmoids alone, in a loop over blocks of the same width and layout,
   give the time they take by themselves.
4. **Dispatch**, in the operation-by-operation process: a loop of ``k`` trivial
   operations on one block's worth of floats gives the runtime's cost per operation.

Prints a table; ``--out`` also writes JSON.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from jaxbp import _program
from jaxbp.internal import small_loop_flags

N, LR = 16384, 0.5


def parity():
    x = np.array([[(i >> b) & 1 for b in range(3)] for i in range(8)], np.float32)
    return x, (x.sum(axis=1) % 2).astype(np.float32)


def best_of(fn, repeats=3):
    fn()  # compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return min(times)


def run(x, y, steps):
    return jaxbp.train_many(
        jax.random.key(0), (3, 2, 1), x, y, n_inits=N, steps=steps, learning_rate=LR, progress=False
    ).final_loss


def block_program_text(x, y, steps):
    """The compiled chunk program's HLO text (for the operations' shapes)."""
    texts = []
    real = _program.program_with

    def spy(options):
        jitted = real(options)

        class Spy:
            def __call__(self, *a, **kw):
                texts.append(jitted.lower(*a, **kw).compile().as_text())
                return jitted(*a, **kw)

        return Spy()

    _program.program_with = spy
    try:
        jax.clear_caches()
        run(x, y, steps)
    finally:
        _program.program_with = real
    return texts[0]


def op_shapes(hlo: str) -> dict[str, str]:
    """Operation name -> the shape it writes, from the compiled program's text."""
    out = {}
    for m in re.finditer(r"^\s*%?([\w.\-]+) = (\w+\[[\d,]*\])", hlo, re.M):
        out.setdefault(m.group(1), m.group(2))
    return out


def profile(x, y, steps):
    """Total time per operation name over one default call, and how often each ran."""
    with tempfile.TemporaryDirectory() as d:
        run(x, y, steps)
        jax.profiler.start_trace(d, create_perfetto_trace=True)
        jax.block_until_ready(run(x, y, steps))
        jax.profiler.stop_trace()
        path = sorted(glob.glob(os.path.join(d, "**", "perfetto_trace.json.gz"), recursive=True))[
            -1
        ]
        with gzip.open(path) as f:
            events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X":
            total[e["name"]] += e.get("dur", 0)
            count[e["name"]] += 1
    return total, count


def what(name: str, shape: str, width: int) -> str:
    """A fused loop's job, from the shape it writes (member axis last, ``width`` members)."""
    if not re.search(rf"\b{width}\]", shape):
        return "the step loop's counter"
    dims = shape[shape.index("[") + 1 : -1].replace(f",{width}", "").replace(f"{width}", "")
    key = f"{shape[: shape.index('[')]}[{dims}]"
    if key == "f32[8,1]":
        return "output layer: " + ("sigmoid (8 exponentials)" if "divide" in name else "products")
    known = {
        "f32[8,2]": "hidden layer: products and sigmoid (16 exponentials)",
        "f32[3,2]": "dL/dW1 and the update of W1",
        "f32[2]": "dL/db1 and the update of b1",
        "f32[2,1]": "dL/dW2 and the update of W2",
        "f32[1]": "dL/db2 and the update of b2",
        "pred[]": "divergence test on the logits",
        "s32[]": "convergence test (first step with every example right)",
    }
    return known.get(key, shape)


def sigmoid_time(width: int, iters: int = 20000) -> float:
    """Seconds for the 24 sigmoids of ``width`` network-steps, member axis last."""
    h = jax.random.normal(jax.random.key(0), (8, 3, width), jnp.float32)
    opts = dict(_program.cpu_options(88, member_last=True))

    def body(i, v):
        return jax.nn.sigmoid(v) - 0.5

    f = jax.jit(lambda v: jax.lax.fori_loop(0, iters, body, v), compiler_options=opts)
    return best_of(lambda: f(h)) / iters


def dispatch_time(width: int, k: int = 12, iters: int = 20000) -> float:
    """Seconds per operation of a loop body of ``k`` dependent trivial operations."""
    v0 = jnp.zeros((width,), jnp.float32)
    opts = dict(_program.cpu_options(88, member_last=True))

    def body(i, vs):
        out = []
        for j, v in enumerate(vs):  # each reads the previous one's result: k separate loops
            out.append(v * 0.5 + (out[-1] if out else vs[-1]) * 0.25 + j)
        return tuple(out)

    def chained(k_ops):
        f = jax.jit(lambda vs: jax.lax.fori_loop(0, iters, body, vs), compiler_options=opts)
        return best_of(lambda: f(tuple(v0 + i for i in range(k_ops)))) / iters

    return (chained(k) - chained(1)) / (k - 1)


def op_by_op(n_dev: int, steps: int, user_flags: str) -> dict:
    """Rate, per-operation shares and dispatch cost with every loop run operation by operation
    (measured in a child process: XLA reads its flags once per process). ``user_flags``:
    ``XLA_FLAGS`` as they were before :func:`jaxbp.use_cpu_cores` added its threshold."""
    env = dict(os.environ, XLA_FLAGS=small_loop_flags(user_flags, threshold=0))
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--cpu-devices", str(n_dev), "--steps", str(steps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(n_dev: int, steps: int) -> None:
    jaxbp.use_cpu_cores(n_dev)
    x, y = parity()
    width = _program.block_width((3, 2, 1), 8, member_last=True)
    rate = N * steps / best_of(lambda: run(x, y, steps))
    shapes = op_shapes(block_program_text(x, y, steps))
    total, count = profile(x, y, steps)
    # The operations of a plain step are the ones run most often (the record steps and
    # the start and end of a run are rarer); the profiler may drop some events.
    most = max(count[name] for name in total if name in shapes)
    plain = {
        name: total[name] / count[name]
        for name in total
        if name in shapes and count[name] >= 0.5 * most
    }
    step_us = sum(plain.values())
    ops = [
        {
            "op": name,
            "writes": shapes[name],
            "does": what(name, shapes[name], width),
            "share": us / step_us,
        }
        for name, us in sorted(plain.items(), key=lambda kv: -kv[1])
    ]
    n_ops = len(plain) + 2  # and the loop's own test and counter
    print(
        json.dumps(
            {"rate": rate, "ops": ops, "ops_per_step": n_ops, "dispatch_s": dispatch_time(width)}
        )
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-devices", type=int, help="JAX CPU devices (default: one per core)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--out", help="also write the results as JSON to this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.cpu_devices, args.steps)
    user_flags = os.environ.get("XLA_FLAGS", "")
    n_dev = jaxbp.use_cpu_cores(args.cpu_devices)
    x, y = parity()
    steps = args.steps
    width = _program.block_width((3, 2, 1), 8, member_last=True)
    rate = N * steps / best_of(lambda: run(x, y, steps))
    per_step = n_dev / rate  # seconds one device spends on one network-step
    print(f"JAX {jax.__version__}, {n_dev} CPU device(s), block width {width}")
    print(
        f"default call (one function per loop): {rate / 1e6:.1f} M network-steps/s = "
        f"{per_step * 1e9:.2f} ns per network-step per device"
    )
    sig = sigmoid_time(width) / width  # per network-step
    print(
        f"24 sigmoids alone: {sig * 1e9:.2f} ns per network-step ({sig / per_step:.0%} of the step)"
    )

    split = op_by_op(n_dev, steps, user_flags)
    split_step = n_dev / split["rate"]
    print(
        f"\nOperation by operation: {split['rate'] / 1e6:.1f} M network-steps/s = "
        f"{split_step * 1e9:.2f} ns per network-step per device "
        f"(one function per loop saves {(split_step - per_step) * 1e9:.2f} ns, "
        f"{1 - per_step / split_step:.0%})"
    )
    print(f"One step of a {width}-member block, by operation (profiled):")
    for row in split["ops"]:
        print(f"  {row['share']:6.1%}  {row['op']:26s} {row['does']}")
    disp = split["dispatch_s"] * split["ops_per_step"] / width
    print(
        f"dispatch, {split['ops_per_step']} ops a step: {disp * 1e9:.2f} ns per network-step "
        f"({disp / split_step:.0%} of that step)"
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {
                    "jax": jax.__version__,
                    "devices": n_dev,
                    "width": width,
                    "rate": rate,
                    "ns_per_step_per_device": per_step * 1e9,
                    "sigmoids_ns": sig * 1e9,
                    "op_by_op_rate": split["rate"],
                    "op_by_op_ns_per_step_per_device": split_step * 1e9,
                    "ops": split["ops"],
                    "dispatch_ns": disp * 1e9,
                    "ops_per_step": split["ops_per_step"],
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
