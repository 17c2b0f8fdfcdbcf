"""One million seed networks x 100 steps: time and peak resident memory.

    python experiments/many_memory.py [--n 1000000] [--steps 100]

Trains the seed network (3-2-1 sigmoid) on 3-bit parity from N random starts with
train_many and reports the peak resident set size of this process (the issue's
bar: under 2 GiB on the 24 GiB machine), the wall time and the convergence rate.
"""

import argparse
import platform
import resource
import time

import jax
import numpy as np

import jaxbp


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=2.0)
    args = ap.parse_args(argv)
    jaxbp.use_cpu_cores()  # one CPU device per core, before any JAX computation
    x = np.array([[(i >> b) & 1 for b in range(3)] for i in range(8)], np.float32)
    y = x.sum(axis=1) % 2
    t = time.perf_counter()
    r = jaxbp.train_many(
        jax.random.key(0),
        (3, 2, 1),
        x,
        y,
        n_inits=args.n,
        steps=args.steps,
        learning_rate=args.lr,
        init_scale=1.0,
    )
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux -> GiB
    print(f"{platform.machine()} x{__import__('os').cpu_count()}, JAX {jax.__version__}")
    print(
        f"{r.n_members} networks x {args.steps} steps in {seconds:.1f} s "
        f"({r.n_members * args.steps / seconds / 1e6:.2f} M network-steps/s, compile included)"
    )
    print(f"peak resident memory: {peak:.2f} GiB; history kept: {r.history.shape}")
    print(f"converged: {r.converged.mean():.4f}, diverged: {r.diverged.mean():.4f}")


if __name__ == "__main__":
    main()
