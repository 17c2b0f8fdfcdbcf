"""How fast does train_many train many networks? Network-steps per second against baselines.

    python experiments/bench_many.py [--steps 1000] [--cpu-devices N] [--repeats 3] [--rounds 20]
        [--quick] [--out FILE.json]

Seed network (3-2-1 sigmoid, 3-bit parity: 8 examples, full-batch SGD) at
N = 1, 64, 1024, 16384, 131072 networks, and a wider one (32-64-64-1 tanh, 256
examples) at N = 1, 16, 256, 1024. ``train_many`` rows are the call a user writes:
the default history (about 100 loss records). Also measured for the seed network:
the same call with the history off (``record_every=steps``) at 300 and 1000 steps,
timed side by side (``--rounds`` interleaved rounds; the ratio of the best times and
of the median times), every ``record_every`` from 1 to the step count at 1200
steps, and float64. All in this one run, against:

- loop: a Python loop over N networks, each trained by ``jaxbp.train`` (compiled once);
- step: ``jaxbp.make_step`` called from a Python loop over steps, network by network;
- numpy: the same forward/backward math in NumPy, vectorized over the N networks;
- torch.func: ``vmap(grad(loss))`` over the N networks (PyTorch CPU), where installed;
- train_many[vmap]: ``train_many(batching="vmap")``, the same program batched by
  ``jax.vmap`` instead of member-last (what ``"auto"`` picks for the seed network).

Compile time is reported apart (first call minus the best later one); every rate
is the best of ``--repeats`` timed runs (the machine may be shared). By default the
CPU is split into one JAX device per core (:func:`jaxbp.use_cpu_cores`), as the
``jaxbp`` command does; ``--cpu-devices 1`` measures a single device. For the wide net the
rate is also given in GFLOP/s against the float32 matrix multiply JAX reaches on
this machine in the same run. Prints a table; --out also writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp


def parity(n_bits=3):
    x = np.array([[(i >> b) & 1 for b in range(n_bits)] for i in range(2**n_bits)], np.float32)
    return x, (x.sum(axis=1) % 2).astype(np.float32)


def wide_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 32)).astype(np.float32)
    y = (x[:, :16].sum(axis=1) > x[:, 16:].sum(axis=1)).astype(np.float32)
    return x, y


REPEATS = 3


def timed(fn):
    t = time.perf_counter()
    out = fn()
    jax.block_until_ready(out) if not isinstance(out, (int, float)) else None
    return time.perf_counter() - t, out


def best(fn):
    """The shortest of REPEATS timed calls."""
    return min(timed(fn)[0] for _ in range(REPEATS))


def user_call(sizes, x, y, n, steps, activation, lr, seed=1, **kw):
    """The call a user writes (default history unless ``kw`` says otherwise), ready to time."""
    kw = dict(n_inits=n, steps=steps, learning_rate=lr, scheme="glorot_normal",
              activation=activation, progress=False, **kw)  # fmt: skip
    return lambda: jaxbp.train_many(jax.random.key(seed), sizes, x, y, **kw).final_loss


def bench_train_many(
    sizes, x, y, n, steps, activation, lr, batching="auto", record_every=None, dtype=None
):
    """The call a user writes: its rate (best of REPEATS) and its compile time."""
    kw = dict(batching=batching, record_every=record_every, dtype=dtype)
    first, _ = timed(user_call(sizes, x, y, n, steps, activation, lr, seed=0, **kw))
    second = best(user_call(sizes, x, y, n, steps, activation, lr, **kw))
    return n * steps / second, max(0.0, first - second)


def side_by_side(calls, rounds):
    """Each of ``calls`` (compiled by a first call) timed ``rounds`` times, interleaved:
    round r times every call once, so a slower stretch of a shared machine hits them
    all alike. Returns each call's times."""
    for call in calls:
        timed(call)
    times = [[] for _ in calls]
    for _ in range(rounds):
        for call, ts in zip(calls, times):
            ts.append(timed(call)[0])
    return times


def history_cost(sizes, x, y, n, steps, activation, lr, rounds):
    """The default call against the same call with the history off, side by side.

    Returns both rates (best times) and the ratio of their best and of their median times.
    """
    calls = [
        user_call(sizes, x, y, n, steps, activation, lr, record_every=r) for r in (None, steps)
    ]
    on, off = side_by_side(calls, rounds)
    return (
        n * steps / min(on),
        n * steps / min(off),
        min(off) / min(on),
        statistics.median(off) / statistics.median(on),
    )


def bench_loop(sizes, x, y, n, steps, activation, lr):
    """A Python loop over networks, each trained with jaxbp.train (compiled once)."""
    params = [jaxbp.init_mlp(jax.random.key(i), sizes, dtype="float32") for i in range(n)]
    jaxbp.train(
        params[0], x, y, lr, steps=steps, activation=activation
    ).final_loss.block_until_ready()
    t = best(
        lambda: [
            jaxbp.train(p, x, y, lr, steps=steps, activation=activation).final_loss for p in params
        ][-1]
    )
    return n * steps / t


def bench_step(sizes, x, y, n, steps, activation, lr):
    """make_step from a Python loop over steps (one network after another)."""
    step = jaxbp.make_step(lr, activation=activation)
    p = jaxbp.init_mlp(jax.random.key(0), sizes, dtype="float32")
    s = step.init(p)
    p, s, _ = step(p, s, x, y)  # compile

    def loop():
        nonlocal p, s
        for _ in range(steps):
            p, s, info = step(p, s, x, y)
        return info.loss

    return steps / best(loop)


def numpy_train(params, x, y, steps, lr, act):
    """Full-batch SGD on N networks at once, by hand in NumPy (leading axis = network)."""
    f, df = {
        "sigmoid": (lambda h: 1 / (1 + np.exp(-h)), lambda a: a * (1 - a)),
        "tanh": (np.tanh, lambda a: 1 - a * a),
    }[act]
    Ws = [p[0] for p in params]
    bs = [p[1] for p in params]
    B = x.shape[0]
    for _ in range(steps):
        acts = [np.broadcast_to(x, (Ws[0].shape[0], *x.shape))]
        for W, b in zip(Ws[:-1], bs[:-1]):
            acts.append(f(acts[-1] @ W + b[:, None, :]))
        o = acts[-1] @ Ws[-1] + bs[-1][:, None, :]
        d = (1 / (1 + np.exp(-o)) - y[None, :, None]) / B
        for i in range(len(Ws) - 1, -1, -1):
            gW = acts[i].transpose(0, 2, 1) @ d
            gb = d.sum(axis=1)
            if i:
                d = (d @ Ws[i].transpose(0, 2, 1)) * df(acts[i])
            Ws[i] = Ws[i] - lr * gW
            bs[i] = bs[i] - lr * gb
    return Ws


def bench_numpy(sizes, x, y, n, steps, activation, lr):
    rng = np.random.default_rng(0)
    params = [
        (
            rng.normal(size=(n, a, b)).astype(np.float32) * np.float32(np.sqrt(2 / (a + b))),
            np.zeros((n, b), np.float32),
        )
        for a, b in itertools.pairwise(sizes)
    ]
    return n * steps / best(lambda: numpy_train(params, x, y, steps, np.float32(lr), activation))


def bench_torch(sizes, x, y, n, steps, activation, lr):
    try:
        import torch
        from torch.func import grad, vmap
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}[activation]
    xt, yt = torch.tensor(x), torch.tensor(y)[:, None]

    def loss(ps):
        a = xt
        for i in range(0, len(ps) - 2, 2):
            a = act(a @ ps[i] + ps[i + 1])
        o = a @ ps[-2] + ps[-1]
        return torch.nn.functional.binary_cross_entropy_with_logits(o, yt)

    g = vmap(grad(loss))
    ps = []
    for a, b in itertools.pairwise(sizes):
        ps += [torch.randn(n, a, b) * (2 / (a + b)) ** 0.5, torch.zeros(n, b)]
    ps = tuple(ps)
    g(ps)

    def train():
        qs = ps
        with torch.no_grad():
            for _ in range(steps):
                qs = tuple(p - lr * d for p, d in zip(qs, g(qs)))
        return 0

    return n * steps / best(train)


def matmul_gflops(size=1024, repeats=10):
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()

    def many():
        for _ in range(repeats):
            out = f(a)
        return out

    return 2 * size**3 * repeats / best(many) / 1e9


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--steps", type=int, default=1000, help="steps for the seed network (wide: a tenth)"
    )
    ap.add_argument("--quick", action="store_true", help="smaller N and steps, for a smoke test")
    ap.add_argument("--out", help="also write the rows as JSON to this file")
    ap.add_argument(
        "--cpu-devices",
        type=int,
        help="JAX CPU devices to split members over (default: one per core)",
    )
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per rate; the best is kept")
    ap.add_argument(
        "--rounds",
        type=int,
        default=20,
        help="interleaved rounds timing the history against none (default 20)",
    )
    args = ap.parse_args(argv)
    global REPEATS
    REPEATS = max(1, args.repeats)
    jaxbp.use_cpu_cores(args.cpu_devices)  # before any JAX computation
    jax.config.update("jax_enable_x64", True)  # for the float64 row; all else is float32
    steps = 50 if args.quick else args.steps
    rows = []

    def add(case, n, method, rate, compile_s=None, extra=None):
        rows.append(
            {
                "case": case,
                "N": n,
                "method": method,
                "net_steps_per_s": rate,
                "compile_s": compile_s,
                **(extra or {}),
            }
        )
        comp = f"  (compile {compile_s:.2f} s)" if compile_s is not None else ""
        more = "".join(f"  {k} {v:.3g}" for k, v in (extra or {}).items())
        print(
            f"{case:6} N={n:<7} {method:16} {rate / 1e6:9.3f} M net-steps/s{comp}{more}", flush=True
        )

    machine = (
        f"{cpu_name()}, {os.cpu_count()} cores; JAX {jax.__version__} on "
        f"{len(jax.devices())} {jax.devices()[0].platform} device(s)"
    )
    print("machine:", machine)
    x, y = parity()
    seed_ns = (1, 64, 1024) if args.quick else (1, 64, 1024, 16384, 131072)
    for n in seed_ns:
        rate, comp = bench_train_many((3, 2, 1), x, y, n, steps, "sigmoid", 0.5)
        add("seed", n, "train_many", rate, comp)
    ref_n = seed_ns[-2] if args.quick else 16384
    # What the history costs: the same call with it off, at two run lengths, side by side.
    for s in (300, steps) if not args.quick else (steps,):
        on, off, ratio, median_ratio = history_cost(
            (3, 2, 1), x, y, ref_n, s, "sigmoid", 0.5, args.rounds
        )
        extra = {"vs_history_off": ratio, "by_medians": median_ratio}
        add("seed", ref_n, f"default,{s}st", on, None, extra)
        add("seed", ref_n, f"hist_off,{s}st", off)
    if not args.quick:
        for every in (1, 3, 12, 120, 1200):
            rate = bench_train_many(
                (3, 2, 1), x, y, ref_n, 1200, "sigmoid", 0.5, record_every=every
            )[0]
            add("seed", ref_n, f"every={every}", rate)
    rate, comp = bench_train_many((3, 2, 1), x, y, ref_n, steps, "sigmoid", 0.5, dtype="float64")
    add("seed", ref_n, "float64", rate, comp)
    # The same program batched by jax.vmap (member axis first), for the ratio.
    rate, comp = bench_train_many((3, 2, 1), x, y, ref_n, steps, "sigmoid", 0.5, "vmap")
    add("seed", ref_n, "train_many[vmap]", rate, comp)
    loop = bench_loop((3, 2, 1), x, y, 8 if args.quick else 32, steps, "sigmoid", 0.5)
    add("seed", ref_n, "loop", loop)
    add("seed", ref_n, "step", bench_step((3, 2, 1), x, y, 1, steps, "sigmoid", 0.5))
    add("seed", ref_n, "numpy", bench_numpy((3, 2, 1), x, y, ref_n, steps, "sigmoid", 0.5))
    torch_rate = bench_torch((3, 2, 1), x, y, ref_n, steps, "sigmoid", 0.5)
    if torch_rate:
        add("seed", ref_n, "torch.func", torch_rate)
    ours = next(
        r["net_steps_per_s"] for r in rows if r["N"] == ref_n and r["method"] == "train_many"
    )
    print(
        f"seed, N={ref_n}: train_many is {ours / loop:.1f}x the per-network loop"
        + (f", {ours / torch_rate:.1f}x torch.func" if torch_rate else "")
    )

    xw, yw = wide_data()
    wsteps = max(5, steps // 10)
    flops = 6 * xw.shape[0] * (32 * 64 + 64 * 64 + 64)  # forward 2, backward 4 per multiply-add
    peak = matmul_gflops()
    print(f"JAX float32 matmul (1024^3) on this machine: {peak:.1f} GFLOP/s")
    for n in (1, 16, 256) if args.quick else (1, 16, 256, 1024):
        rate, comp = bench_train_many((32, 64, 64, 1), xw, yw, n, wsteps, "tanh", 0.05)
        add(
            "wide",
            n,
            "train_many",
            rate,
            comp,
            {"GFLOP/s": rate * flops / 1e9, "of_matmul": rate * flops / 1e9 / peak},
        )
    nw = 16 if args.quick else 256
    for name, fn in (("loop", bench_loop), ("numpy", bench_numpy), ("torch.func", bench_torch)):
        r = fn((32, 64, 64, 1), xw, yw, 4 if name == "loop" else nw, wsteps, "tanh", 0.05)
        if r:
            add("wide", nw, name, r, None, {"GFLOP/s": r * flops / 1e9})
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {
                    "machine": machine,
                    "jax": jax.__version__,
                    "matmul_gflops": peak,
                    "rows": rows,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
