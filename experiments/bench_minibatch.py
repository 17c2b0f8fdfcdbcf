"""Minibatch training of many networks: train_many against torch.func, and the matmul rate.

    python experiments/bench_minibatch.py [--members 1024] [--repeats 3] [--cpu-devices N] [--quick]
    python experiments/bench_minibatch.py --shuffle [--members 1024] ...

64-32-1 tanh networks on the digits task (1,352 training images, 64 features,
float32, odd against even, BCE), plain SGD with minibatches of 32 and of 256, and
64-32-10 networks on the ten-class digits (softmax cross-entropy from integer
labels) with minibatches of 256; each of N networks in its own data order (a fresh
permutation per epoch). Measured in this one run:

- train_many: ``train_many(..., batch_size=B)``, the call a user writes (default
  history of about 100 records, data order drawn per member);
- torch.func: ``vmap(grad(loss))`` over the N networks (PyTorch CPU), each step
  gathering every network's minibatch from its own per-epoch permutation;
- the float32 matrix-multiply rate JAX reaches on this machine (1024 x 1024).

Rates are examples per second summed over networks (network-examples/s), and the
arithmetic rate they mean: forward + backward is about 3 x 2 x (64 x 32 + 32 x k)
flops per example (k output units). Each rate is the best of --repeats timed runs.

``--shuffle``: the same train_many rows with jaxbp's data order (JAX's shuffle, its
stable sorts done by radix passes of single-word sorts) against the programs traced
with ``jax.random.permutation`` itself (``jaxbp.internal.jax_shuffle``), and whether
the two give the same bits.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import bench_many

import jaxbp
from jaxbp.internal import jax_shuffle

ROWS = ((2, 32, 400), (2, 256, 100), (10, 256, 100))  # (classes, batch, steps)


def sizes(classes: int) -> tuple[int, int, int]:
    return (64, 32, 1 if classes == 2 else classes)


def flops_per_example(classes: int) -> int:
    return 3 * 2 * (64 * 32 + 32 * sizes(classes)[-1])


def run_jaxbp(x, y, n, steps, batch, classes=2, seed=1):
    """``train_many`` as a user calls it for one row (the result, not yet awaited)."""
    kw = dict(
        n_inits=n, steps=steps, batch_size=batch, learning_rate=0.05, scheme="glorot_normal",
        activation="tanh", progress=False, loss="bce" if classes == 2 else "softmax_ce",
    )  # fmt: skip
    return jaxbp.train_many(jax.random.key(seed), sizes(classes), x, y, **kw)


def bench_jaxbp(x, y, n, steps, batch, classes=2):
    first, _ = bench_many.timed(lambda: run_jaxbp(x, y, n, steps, batch, classes, 0).final_loss)
    t = bench_many.best(lambda: run_jaxbp(x, y, n, steps, batch, classes).final_loss)
    return n * steps * batch / t, max(0.0, first - t)


def bench_shuffle(data, n, quick):
    """The ``--shuffle`` table: jaxbp's data order against ``jax.random.permutation``'s."""
    print(
        "| network | batch | N | steps | jax.random.permutation (examples/s) | "
        "jaxbp (examples/s) | ratio | same bits |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for classes, batch, steps in ROWS:
        steps = steps // 10 if quick else steps
        x, y = data[classes]
        with jax_shuffle():
            theirs, _ = bench_jaxbp(x, y, n, steps, batch, classes)
            ref = run_jaxbp(x, y, n, steps, batch, classes)
        ours, _ = bench_jaxbp(x, y, n, steps, batch, classes)
        mine = run_jaxbp(x, y, n, steps, batch, classes)
        same = all(
            np.array_equal(np.asarray(getattr(ref, f)), np.asarray(getattr(mine, f)))
            for f in ("final_loss", "history", "accuracy")
        )
        name = "-".join(map(str, sizes(classes)))
        print(
            f"| {name} | {batch} | {n} | {steps} | {theirs / 1e6:.2f} M | {ours / 1e6:.2f} M | "
            f"{ours / theirs:.2f}x | {'yes' if same else 'NO'} |",
            flush=True,
        )


def bench_torch(x, y, n, steps, batch, classes=2):
    try:
        import torch
        from torch.func import grad, vmap
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    xt = torch.tensor(x)
    yt = torch.tensor(y) if classes == 2 else torch.tensor(y, dtype=torch.long)
    rows = len(y)
    per_epoch = rows // batch
    k = sizes(classes)[-1]

    def loss(w1, b1, w2, b2, xb, yb):
        o = torch.tanh(xb @ w1 + b1) @ w2 + b2
        if classes == 2:
            return torch.nn.functional.binary_cross_entropy_with_logits(o[:, 0], yb)
        return torch.nn.functional.cross_entropy(o, yb)

    g = vmap(grad(loss, argnums=(0, 1, 2, 3)))
    ps = (
        torch.randn(n, 64, 32) * (2 / 96) ** 0.5,
        torch.zeros(n, 32),
        torch.randn(n, 32, k) * (2 / (32 + k)) ** 0.5,
        torch.zeros(n, k),
    )

    def train():
        qs = ps
        with torch.no_grad():
            for t in range(steps):
                j = t % per_epoch
                if j == 0:  # each network's own order of the examples for this epoch
                    order = torch.argsort(torch.rand(n, rows), dim=1)
                idx = order[:, j * batch : (j + 1) * batch]
                grads = g(*qs, xt[idx], yt[idx])
                qs = tuple(p - 0.05 * d for p, d in zip(qs, grads))
        return 0

    g(*ps, xt[:batch].expand(n, -1, -1), yt[:batch].expand(n, -1))  # warm up
    return n * steps * batch / bench_many.best(train)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpu-devices", type=int)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--shuffle", action="store_true", help="jaxbp's data order vs JAX's")
    args = ap.parse_args(argv)
    bench_many.REPEATS = max(1, args.repeats)
    jaxbp.use_cpu_cores(args.cpu_devices)
    binary, ten = jaxbp.load_task("digits"), jaxbp.load_task("digits", classes=10)
    data = {
        2: (binary.x.astype(np.float32), binary.y.astype(np.float32)),
        10: (ten.x.astype(np.float32), np.asarray(ten.y, np.int32)),
    }
    n = 64 if args.quick else args.members
    matmul = bench_many.matmul_gflops()
    print(
        f"# {bench_many.cpu_name()}, {len(jax.devices())} JAX CPU device(s), JAX {jax.__version__}, "
        f"jaxbp {jaxbp.__version__}; float32 matmul {matmul:.0f} GFLOP/s"
    )
    if args.shuffle:
        bench_shuffle(data, n, args.quick)
        return
    print(
        "| network | batch | N | steps | train_many (examples/s) | GFLOP/s | share of matmul | "
        "compile s | torch.func (examples/s) | ratio |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for classes, batch, steps in ROWS:
        steps = steps // 10 if args.quick else steps
        x, y = data[classes]
        t0 = time.perf_counter()
        ours, compile_s = bench_jaxbp(x, y, n, steps, batch, classes)
        theirs = bench_torch(x, y, n, steps, batch, classes)
        gflops = ours * flops_per_example(classes) / 1e9
        name = "-".join(map(str, sizes(classes)))
        print(
            f"| {name} | {batch} | {n} | {steps} | {ours / 1e6:.2f} M | {gflops:.1f} | "
            f"{gflops / matmul:.0%} | "
            f"{compile_s:.1f} | "
            + (f"{theirs / 1e6:.2f} M | {ours / theirs:.1f}x |" if theirs else "- | - |"),
            flush=True,
        )
        print(f"  ({time.perf_counter() - t0:.0f} s for this row)", file=sys.stderr)


if __name__ == "__main__":
    main()
