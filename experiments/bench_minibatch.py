"""Minibatch training of many networks: train_many against torch.func, and the matmul rate.

    python experiments/bench_minibatch.py [--members 1024] [--repeats 3] [--cpu-devices N] [--quick]

64-32-1 tanh networks on the digits task (1,352 training images, 64 features,
float32), plain SGD with minibatches of 32 and of 256, each of N networks in its
own data order (a fresh permutation per epoch). Measured in this one run:

- train_many: ``train_many(..., batch_size=B)``, the call a user writes (default
  history of about 100 records, data order drawn per member);
- torch.func: ``vmap(grad(loss))`` over the N networks (PyTorch CPU), each step
  gathering every network's minibatch from its own per-epoch permutation;
- the float32 matrix-multiply rate JAX reaches on this machine (1024 x 1024).

Rates are examples per second summed over networks (network-examples/s), and the
arithmetic rate they mean: forward + backward is about 3 x 2 x (64 x 32 + 32 x 1)
flops per example. Each rate is the best of --repeats timed runs.
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

SIZES = (64, 32, 1)
FLOPS_PER_EXAMPLE = 3 * 2 * (64 * 32 + 32 * 1)


def bench_jaxbp(x, y, n, steps, batch):
    kw = dict(
        n_inits=n, steps=steps, batch_size=batch, learning_rate=0.05, scheme="glorot_normal",
        activation="tanh", progress=False,
    )  # fmt: skip
    first, _ = bench_many.timed(
        lambda: jaxbp.train_many(jax.random.key(0), SIZES, x, y, **kw).final_loss
    )
    t = bench_many.best(lambda: jaxbp.train_many(jax.random.key(1), SIZES, x, y, **kw).final_loss)
    return n * steps * batch / t, max(0.0, first - t)


def bench_torch(x, y, n, steps, batch):
    try:
        import torch
        from torch.func import grad, vmap
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    xt, yt = torch.tensor(x), torch.tensor(y)
    rows = len(y)
    per_epoch = rows // batch

    def loss(w1, b1, w2, b2, xb, yb):
        o = torch.tanh(xb @ w1 + b1) @ w2 + b2
        return torch.nn.functional.binary_cross_entropy_with_logits(o[:, 0], yb)

    g = vmap(grad(loss, argnums=(0, 1, 2, 3)))
    ps = (
        torch.randn(n, 64, 32) * (2 / 96) ** 0.5,
        torch.zeros(n, 32),
        torch.randn(n, 32, 1) * (2 / 33) ** 0.5,
        torch.zeros(n, 1),
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
    args = ap.parse_args(argv)
    bench_many.REPEATS = max(1, args.repeats)
    jaxbp.use_cpu_cores(args.cpu_devices)
    task = jaxbp.load_task("digits")
    x, y = task.x.astype(np.float32), task.y.astype(np.float32)
    n = 64 if args.quick else args.members
    matmul = bench_many.matmul_gflops()
    print(
        f"# {bench_many.cpu_name()}, {len(jax.devices())} JAX CPU device(s), JAX {jax.__version__}, "
        f"jaxbp {jaxbp.__version__}; float32 matmul {matmul:.0f} GFLOP/s"
    )
    print(
        "| batch | N | steps | train_many (examples/s) | GFLOP/s | share of matmul | compile s | "
        "torch.func (examples/s) | ratio |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for batch, steps in ((32, 400), (256, 100)):
        steps = steps // 10 if args.quick else steps
        t0 = time.perf_counter()
        ours, compile_s = bench_jaxbp(x, y, n, steps, batch)
        theirs = bench_torch(x, y, n, steps, batch)
        gflops = ours * FLOPS_PER_EXAMPLE / 1e9
        print(
            f"| {batch} | {n} | {steps} | {ours / 1e6:.2f} M | {gflops:.1f} | {gflops / matmul:.0%} | "
            f"{compile_s:.1f} | "
            + (f"{theirs / 1e6:.2f} M | {ours / theirs:.1f}x |" if theirs else "- | - |"),
            flush=True,
        )
        print(f"  ({time.perf_counter() - t0:.0f} s for this row)", file=sys.stderr)


if __name__ == "__main__":
    main()
