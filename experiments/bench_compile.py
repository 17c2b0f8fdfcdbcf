"""What two ways of compiling on CPU cost: each call's compile time (and run time) one way
and the other.

    python experiments/bench_compile.py [--compare threefry|emitters|both] [--repeats 3] [--out FILE.json]

``--compare threefry``: JAX's threefry hash lowered straight-line (what jaxbp compiles
its programs with on CPU) against JAX's rolled CPU lowering (inside
``jaxbp.internal.rolled_threefry()``); both give the same bits (tests/test_threefry.py).
``--compare emitters``: XLA's default fusion emitters (what jaxbp compiles with) against
its elemental emitters (``XLA_FLAGS=--xla_cpu_use_fusion_emitters=false``), which
compile faster but round some elementwise functions otherwise, so that results differ
in their last bits: jaxbp keeps XLA's default.

Each row is one first call, the kind that compiles: ``train_many`` on the seed
network (256 starts x 2 learning rates x 100 steps), the same with a uniform
initialization and with minibatches, a 64-32-10 network on the ten digits; ``train``
full-batch and with minibatches; ``init_mlp``; and, for the emitters, the gradient and
exercise programs and a long run of the seed network (16,384 starts x 1,000 steps),
whose time is mostly running. Every measurement runs in a fresh process (no
compilation cache). The compile time is XLA's as JAX reports it
(``/jax/core/compile/backend_compile_duration``); the run time is the best of three
later calls. Each figure is the median of ``--repeats`` processes. With the emitters,
two results (a float64 ``numerical_grad``, a float32 adam ``train``) are also computed
both ways and compared entry by entry.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

import jax
import numpy as np

CALLS = {
    "train_many, seed network (3-2-1, float32)": "many()",
    "train_many, glorot_uniform init": "many(scheme='glorot_uniform')",
    "train_many, minibatches of 4": "many(batch_size=4)",
    "train_many, 64-32-10 digits, minibatches of 64": "digits()",
    "train, full batch": "one(batch_size=None)",
    "train, minibatches of 4": "one()",
    "init_mlp, 3-2-1": "jaxbp.init_mlp(jax.random.key(0), (3, 2, 1))",
}
EMITTER_CALLS = {
    **CALLS,
    "manual_value_and_grad, 3-5-2-1, 64 examples": "grads(jaxbp.manual_value_and_grad)",
    "check_grads, 3-5-2-1, 64 examples": "grads(jaxbp.check_grads)",
    "random_exercise, 3-3-2-1, batch 2": "jaxbp.random_exercise(1, (3, 3, 2, 1), batch=2).x",
    "train_many, seed network, 16,384 starts x 1,000 steps": "many(n_inits=16384, steps=1000)",
}
MODES = {"threefry": ("rolled", "straight"), "emitters": ("fusion", "elemental")}
ELEMENTAL = "--xla_cpu_use_fusion_emitters=false"

CHILD = """
import contextlib, sys, time, jax, numpy as np
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
    kw = {"n_inits": 256, "steps": 100, **kw}
    return jaxbp.train_many(jax.random.key(0), (3, 2, 1), X, Y, learning_rate=[0.5, 2.0],
                            progress=False, **kw).final_loss
def digits():
    t = jaxbp.load_task("digits", classes=10)
    return jaxbp.train_many(jax.random.key(0), (64, 32, 10), t.x.astype(np.float32), t.y,
                            loss="softmax_ce", activation="tanh", n_inits=16, steps=20,
                            batch_size=64, progress=False).final_loss
def one(batch_size=4):
    p = jaxbp.init_mlp(jax.random.key(0), (3, 2, 1))
    key = None if batch_size is None else jax.random.key(1)
    return jaxbp.train(p, X, Y, 0.5, steps=100, batch_size=batch_size, data_key=key).params
def grads(fn):
    p = jaxbp.init_mlp(jax.random.key(0), (3, 5, 2, 1))
    x = np.asarray(jax.random.normal(jax.random.key(1), (64, 3)), np.float32)
    out = fn(p, x, (x[:, :1] > 0).astype(np.float32))
    return getattr(out, "numerical", out)
mode = sys.argv[1]
context = rolled_threefry if mode == "rolled" else contextlib.nullcontext
with context():
    jax.block_until_ready(eval(sys.argv[2]))
    compiled = total[0]
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        jax.block_until_ready(eval(sys.argv[2]))
        runs.append(time.perf_counter() - t)
print(compiled, min(runs))
"""


def child_env(mode: str) -> dict:
    """A fresh CPU process's environment, without a compilation cache; ``"elemental"``
    adds the XLA flag."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if mode == "elemental":
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {ELEMENTAL}".strip()
    return env


def measure(call: str, mode: str) -> tuple[float, float]:
    """(compile seconds, best run seconds) of ``call`` in a fresh process."""
    r = subprocess.run(
        [sys.executable, "-c", CHILD, mode, call], env=child_env(mode), capture_output=True,
        text=True,
    )  # fmt: skip
    if r.returncode:
        raise SystemExit(r.stderr[-2000:])
    compiled, run = r.stdout.split()[-2:]
    return float(compiled), float(run)


def compare(what: str, repeats: int) -> list[dict]:
    """Each call's median compile and run time in both modes of ``what``, and their ratios."""
    base, other = MODES[what]
    calls = CALLS if what == "threefry" else EMITTER_CALLS
    print(f"\n{what}: {base} against {other} (compile s, run s; ratio {base}/{other})")
    rows = []
    for name, call in calls.items():
        row = {"call": name}
        for mode in (base, other):
            got = [measure(call, mode) for _ in range(repeats)]
            row[mode] = statistics.median(g[0] for g in got)
            row[f"{mode}_run"] = statistics.median(g[1] for g in got)
        row["ratio"] = row[base] / row[other]
        row["run_ratio"] = row[f"{base}_run"] / row[f"{other}_run"]
        rows.append(row)
        print(
            f"{name:56s} compile {row[base]:5.2f}s {row[other]:5.2f}s {row['ratio']:4.2f}x"
            f"   run {row[f'{base}_run']:7.4f}s {row[f'{other}_run']:7.4f}s {row['run_ratio']:4.2f}x"
        )
    return rows


BITS = """
import sys, jax, numpy as np, optax
jax.config.update("jax_enable_x64", True)
import jaxbp
key = jax.random.key(3)
q = jaxbp.init_mlp(key, (4, 6, 3), dtype=np.float64)
rng = np.random.default_rng(7)
x, y = rng.normal(size=(16, 4)), rng.integers(0, 3, size=16)
fd = jaxbp.numerical_grad(q, x, y, loss="softmax_ce")
X = np.array([[(i >> b) & 1 for b in range(3)] for i in range(8)], np.float32)
p = jaxbp.init_mlp(key, (3, 2, 1), dtype=np.float32)
adam = jaxbp.train(p, X, X.sum(1) % 2, optax.adam(0.05), steps=60, batch_size=4, data_key=key)
out = {"numerical_grad, 4-6-3 softmax_ce, float64": fd,
       "train, adam, batch_size=4, seed network, float32": adam.params}
np.savez(sys.argv[1], **{f"{k}|{i}": np.asarray(a) for k, t in out.items()
                         for i, a in enumerate(jax.tree_util.tree_leaves(t))})
"""


def bit_differences() -> list[dict]:
    """Two results computed with each emitter: how many entries differ, and by how much."""
    got = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES["emitters"]:
            path = os.path.join(tmp, f"{mode}.npz")
            cmd = [sys.executable, "-c", BITS, path]
            r = subprocess.run(cmd, env=child_env(mode), capture_output=True)
            if r.returncode:
                raise SystemExit(r.stderr.decode()[-2000:])
            with np.load(path) as z:
                got[mode] = {k: z[k] for k in z.files}
    rows = []
    for name in sorted({k.split("|")[0] for k in got["fusion"]}):
        keys = [k for k in got["fusion"] if k.startswith(name + "|")]
        a = np.concatenate([got["fusion"][k].ravel() for k in keys])
        b = np.concatenate([got["elemental"][k].ravel() for k in keys])
        rows.append(
            dict(
                result=name,
                entries=int(a.size),
                differ=int(np.sum(a != b)),
                max_abs_difference=float(np.max(np.abs(a - b))),
            )
        )
        print(f"{name}: {rows[-1]['differ']} of {a.size} entries differ, by up to "
              f"{rows[-1]['max_abs_difference']:.2g}")  # fmt: skip
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--compare", choices=("threefry", "emitters", "both"), default="both")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", help="write the figures to this JSON file")
    a = p.parse_args(argv)
    which = list(MODES) if a.compare == "both" else [a.compare]
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "jax": jax.__version__,
        **{what: compare(what, a.repeats) for what in which},
    }
    if "emitters" in which:
        print("\nthe same results, fusion against elemental emitters:")
        result["emitter_bits"] = bit_differences()
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
