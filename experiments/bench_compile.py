"""What compiling the random draws costs: each call's compile time with JAX's threefry hash
lowered straight-line (what jaxbp compiles its programs with on CPU) against JAX's rolled
CPU lowering.

    python experiments/bench_compile.py [--repeats 3] [--out FILE.json]

Each row is one first call, the kind that compiles: ``train_many`` on the seed
network (256 starts x 2 learning rates x 100 steps), the same with a uniform
initialization and with minibatches, a 64-32-10 network on the ten digits; ``train``
with minibatches; ``init_mlp``. Every measurement runs in a fresh process (no
compilation cache), once as jaxbp compiles and once inside
``jaxbp.internal.rolled_threefry()`` (JAX's own lowering). The time is XLA's compile
time as JAX reports it (``/jax/core/compile/backend_compile_duration``), the median of
``--repeats`` processes. Both ways give the same bits (tests/test_threefry.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

import jax

CALLS = {
    "train_many, seed network (3-2-1, float32)": "many()",
    "train_many, glorot_uniform init": "many(scheme='glorot_uniform')",
    "train_many, minibatches of 4": "many(batch_size=4)",
    "train_many, 64-32-10 digits, minibatches of 64": "digits()",
    "train, minibatches of 4": "one()",
    "init_mlp, 3-2-1": "jaxbp.init_mlp(jax.random.key(0), (3, 2, 1))",
}

CHILD = """
import contextlib, sys, jax, numpy as np
import jaxbp
from jaxbp.internal import rolled_threefry
total = [0.0]
def listen(event, duration, **kw):
    if event == "/jax/core/compile/backend_compile_duration":
        total[0] += duration
jax.monitoring.register_event_duration_secs_listener(listen)
X = np.array([[(i >> b) & 1 for b in range(3)] for i in range(8)], np.float32)
Y = X.sum(axis=1) % 2
def many(**kw):
    return jaxbp.train_many(jax.random.key(0), (3, 2, 1), X, Y, n_inits=256, steps=100,
                            learning_rate=[0.5, 2.0], progress=False, **kw)
def digits():
    t = jaxbp.load_task("digits", classes=10)
    return jaxbp.train_many(jax.random.key(0), (64, 32, 10), t.x.astype(np.float32), t.y,
                            loss="softmax_ce", activation="tanh", n_inits=16, steps=20,
                            batch_size=64, progress=False)
def one():
    p = jaxbp.init_mlp(jax.random.key(0), (3, 2, 1))
    return jaxbp.train(p, X, Y, 0.5, steps=100, batch_size=4, data_key=jax.random.key(1))
with rolled_threefry() if sys.argv[1] == "rolled" else contextlib.nullcontext():
    jax.block_until_ready(eval(sys.argv[2]))
print(total[0])
"""


def compile_seconds(call: str, mode: str) -> float:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    r = subprocess.run(
        [sys.executable, "-c", CHILD, mode, call], env=env, capture_output=True, text=True
    )
    if r.returncode:
        raise SystemExit(r.stderr[-2000:])
    return float(r.stdout.split()[-1])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", help="write the figures to this JSON file")
    a = p.parse_args(argv)
    rows = []
    print(f"{'call':48s} {'rolled':>8s} {'straight':>9s} {'ratio':>6s}")
    for name, call in CALLS.items():
        times = {
            mode: statistics.median(compile_seconds(call, mode) for _ in range(a.repeats))
            for mode in ("rolled", "straight")
        }
        ratio = times["rolled"] / times["straight"]
        rows.append(dict(call=name, **times, ratio=ratio))
        print(f"{name:48s} {times['rolled']:7.2f}s {times['straight']:8.2f}s {ratio:5.2f}x")
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "jax": jax.__version__,
        "rows": rows,
    }
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
