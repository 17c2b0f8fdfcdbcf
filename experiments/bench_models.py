"""train_many on networks of one's own against the jax.jit(jax.vmap(training loop)) a user writes.

    python experiments/bench_models.py [--repeats 3] [--quick] [--cpu-devices N] [--out FILE.json]

Two models jaxbp does not ship, each trained by ``train_many(key, model, ...)`` (the
call a user writes: default history, ``batching="auto"``) and by the straightforward
program a JAX user writes for the same training: ``jax.jit(jax.vmap(train_one))``
over the members' keys and learning rates, where ``train_one`` initializes one
network from its key and runs ``lax.scan`` over the optax steps. Same starts, same
steps, same data; both on the same devices (one per core, as ``jaxbp.use_cpu_cores``
makes them, the vmap program given the members sharded over them as well).

- tiny: a 3-4-1 network with a residual tanh layer on 3-bit parity (8 examples), SGD,
  16,384 members x 500 steps (member-last applies);
- conv: a 3x3 convolution into 4 channels, ReLU, one logit, on 256 of the 8x8 digits
  (odd vs even), SGD, 256 members x 50 steps (``jax.vmap`` batching).

Every rate is the best of ``--repeats`` timed runs after a compiling one; network-steps
per second and the ratio to the vmap program, printed as a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxbp


def tiny_model():
    def init(key, scale):
        k1, k2, k3 = jax.random.split(key, 3)
        return {
            "inp": scale * jax.random.normal(k1, (3, 4)),
            "res": scale * jax.random.normal(k2, (4, 4)),
            "out": scale * jax.random.normal(k3, (4,)),
        }

    def apply(p, x):
        h = jnp.tanh(x @ p["inp"])
        h = h + jnp.tanh(h @ p["res"])
        return h @ p["out"]

    return jaxbp.Model(init, apply, name="tiny residual 3-4-1")


def conv_model():
    def init(key, scale):
        k1, k2 = jax.random.split(key)
        return {
            "k": scale * jax.random.normal(k1, (4, 1, 3, 3)) / 3.0,
            "w": scale * jax.random.normal(k2, (4 * 6 * 6,)) / 12.0,
            "b": jnp.zeros(()),
        }

    def apply(p, x):
        images = x.reshape(-1, 1, 8, 8)
        h = jax.lax.conv_general_dilated(images, p["k"], (1, 1), "VALID")
        return jax.nn.relu(h).reshape(x.shape[0], -1) @ p["w"] + p["b"]

    return jaxbp.Model(init, apply, name="conv 3x3x4")


def vmap_program(model, x, y, steps, scale):
    """The program a user writes: one network's whole training, vmapped, jitted."""

    def loss(p):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(model.apply(p, x), y))

    def train_one(key, lr):
        params = model.init(key, scale)
        opt = optax.sgd(lr)

        def step(carry, _):
            p, state = carry
            value, grads = jax.value_and_grad(loss)(p)
            updates, state = opt.update(grads, state, p)
            return (optax.apply_updates(p, updates), state), value

        (params, _), history = jax.lax.scan(step, (params, opt.init(params)), length=steps)
        return loss(params), history

    return jax.jit(jax.vmap(train_one))


def best_rate(run, work, repeats):
    jax.block_until_ready(run())  # compiles
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(run())
        best = min(best, time.perf_counter() - t)
    return work / best


def bench(name, model, x, y, members, steps, repeats, lr=0.5, scale=1.0):
    key = jax.random.key(0)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    ours = best_rate(
        lambda: jaxbp.train_many(
            key, model, x, y, n_inits=members, steps=steps, learning_rate=lr,
            init_scale=scale, progress=False,
        ).final_loss,
        members * steps,
        repeats,
    )  # fmt: skip
    keys = jax.vmap(lambda m: jax.random.fold_in(key, m))(jnp.arange(members))
    lrs = jnp.full((members,), lr, jnp.float32)
    devices = jax.local_devices()
    if len(devices) > 1 and members % len(devices) == 0:
        sharding = jax.sharding.NamedSharding(
            jax.sharding.Mesh(np.asarray(devices), ("m",)), jax.sharding.PartitionSpec("m")
        )
        keys, lrs = jax.device_put(keys, sharding), jax.device_put(lrs, sharding)
    program = vmap_program(model, x, y, steps, jnp.float32(scale))
    theirs = best_rate(lambda: program(keys, lrs)[0], members * steps, repeats)
    return {
        "model": name,
        "members": members,
        "steps": steps,
        "examples": int(x.shape[0]),
        "train_many": ours,
        "jit_vmap": theirs,
        "ratio": ours / theirs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer members and steps")
    ap.add_argument("--cpu-devices", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    jaxbp.use_cpu_cores(args.cpu_devices)
    parity = np.array([[(i >> b) & 1 for b in range(3)] for i in range(8)], np.float32)
    digits = jaxbp.load_task("digits")
    q = 8 if args.quick else 1
    rows = [
        bench("tiny", tiny_model(), parity, parity.sum(1) % 2, 16384 // q, 500 // q, args.repeats),
        bench(
            "conv", conv_model(), digits.x[:256], digits.y[:256], 256 // q, 50, args.repeats,
            lr=0.2,
        ),
    ]  # fmt: skip
    print(
        f"{platform.processor() or platform.machine()}, {len(jax.devices())} "
        f"{jax.default_backend()} device(s), jax {jax.__version__}"
    )
    print("network-steps per second (best of the timed runs)")
    print(
        f"{'model':6} {'members':>8} {'steps':>6} {'train_many':>14} {'jit(vmap)':>14} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['model']:6} {r['members']:8d} {r['steps']:6d} {r['train_many']:14,.0f}"
            f" {r['jit_vmap']:14,.0f} {r['ratio']:6.2f}"
        )
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"jax": jax.__version__, "devices": len(jax.devices()), "rows": rows}, f)


if __name__ == "__main__":
    main()
