"""Study 5: a convolutional network against an MLP of the same size, over thousands of seeds.

    python experiments/study_digits_conv.py [--out runs/digits_conv] [--seeds 2000] [--quick]

scikit-learn's 8x8 digits as odd-vs-even (1,352 images to train on, 445 held out).
Two networks of about the same parameter count, both given to ``train_many`` as a
``jaxbp.Model`` (jaxbp ships neither):

- conv: a 3x3 convolution of the image into 6 channels, ReLU, one logit from the
  6 x 6 x 6 feature map (277 parameters);
- mlp: 64 pixels, 4 tanh hidden units, one logit (265 parameters).

Each is trained from ``--seeds`` starts (default 2,000; Glorot-style normal starts),
SGD at 0.1 on minibatches of 64, 20 epochs, each start in its own data order.
Findings (report.md): the spread of test accuracy over seeds, and the test accuracy
of ensembles (averaged probabilities) against their size. The run folder is
resumable: each network's results are one file in ``networks/``, written whole.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from study_digits import ensemble_curve

import jaxbp
from jaxbp.internal import write_atomic

EPOCHS, BATCH, LR, CHANNELS, HIDDEN = 20, 64, 0.1, 6, 4
ENSEMBLES = (1, 2, 4, 8, 16, 32, 64, 128)


def conv_model() -> jaxbp.Model:
    def init(key, scale):
        k1, k2 = jax.random.split(key)
        return {
            "kernel": scale * jax.random.normal(k1, (CHANNELS, 1, 3, 3)) / 3.0,
            "bias": jnp.zeros((CHANNELS, 1, 1)),
            "out": scale * jax.random.normal(k2, (CHANNELS * 36,)) / np.sqrt(CHANNELS * 36),
            "b": jnp.zeros(()),
        }

    def apply(params, x):
        images = x.reshape(-1, 1, 8, 8)
        h = jax.lax.conv_general_dilated(images, params["kernel"], (1, 1), "VALID")
        h = jax.nn.relu(h + params["bias"])
        return h.reshape(x.shape[0], -1) @ params["out"] + params["b"]

    return jaxbp.Model(init, apply, name=f"conv 3x3x{CHANNELS}")


def mlp_model() -> jaxbp.Model:
    def init(key, scale):
        k1, k2 = jax.random.split(key)
        return {
            "W1": scale * jax.random.normal(k1, (64, HIDDEN)) * np.sqrt(2 / (64 + HIDDEN)),
            "b1": jnp.zeros((HIDDEN,)),
            "w2": scale * jax.random.normal(k2, (HIDDEN,)) * np.sqrt(2 / (HIDDEN + 1)),
            "b2": jnp.zeros(()),
        }

    def apply(params, x):
        return jnp.tanh(x @ params["W1"] + params["b1"]) @ params["w2"] + params["b2"]

    return jaxbp.Model(init, apply, name=f"mlp 64-{HIDDEN}-1")


NETWORKS = {"conv": conv_model, "mlp": mlp_model}


def n_params(model: jaxbp.Model) -> int:
    shapes = jax.eval_shape(model.init, jax.random.key(0), 1.0)
    return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(shapes))


def train(task, name, *, seeds, epochs, progress):
    model = NETWORKS[name]()
    x, y = task.x.astype(np.float32), task.y.astype(np.float32)
    x_test = task.x_test.astype(np.float32)
    steps = epochs * (len(y) // BATCH)
    t = time.perf_counter()
    r = jaxbp.train_many(
        jax.random.key(0), model, x, y, n_inits=seeds, steps=steps, learning_rate=LR,
        batch_size=BATCH, record_every=steps // epochs, x_test=x_test, y_test=task.y_test,
        keep_params=True, progress=progress,
    )  # fmt: skip
    probs = jax.vmap(lambda p: jax.nn.sigmoid(model.apply(p, jnp.asarray(x_test))))(r.params)
    return {
        "test_accuracy": r.test_accuracy,
        "test_loss": r.test_loss,
        "accuracy": r.accuracy,
        "test_loss_history": r.test_loss_history,
        "probabilities": np.asarray(probs),
        "seconds": np.array(time.perf_counter() - t),
        "steps": np.array(steps),
        "params": np.array(n_params(model)),
    }


def figures(out: Path, results, task, curves, sizes) -> None:
    plt = jaxbp.pyplot()
    colors = {"conv": "#0969da", "mlp": "#cf222e"}
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.6))
    n_test = len(task.y_test)
    edges = np.arange(0.5, 1.0 + 1.5 / n_test, 1 / n_test)
    for name, res in results.items():
        acc = res["test_accuracy"]
        a.hist(acc, bins=edges, histtype="step", lw=1.6, color=colors[name],
               label=f"{res['label']}: median {np.median(acc):.1%}")  # fmt: skip
    lo = min(np.quantile(r["test_accuracy"], 0.002) for r in results.values())
    a.set_xlim(lo - 0.01, 1.0)
    a.set_xlabel(f"test accuracy ({n_test} held-out images)")
    a.set_ylabel("networks")
    a.set_title("Spread of test accuracy over seeds")
    a.legend(fontsize=8, loc="upper left")
    for name, curve in curves.items():
        b.plot(sizes, curve[:, 0], "o-", ms=3, color=colors[name], label=results[name]["label"])
        b.fill_between(sizes, curve[:, 1], curve[:, 2], color=colors[name], alpha=0.15)
    b.set_xscale("log", base=2)
    b.set_xlabel("ensemble size (networks whose probabilities are averaged)")
    b.set_ylabel("test accuracy")
    b.set_title("Ensembles: mean and 10-90% over random draws")
    b.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Digits, odd vs even: convolution against MLP, SGD {LR}, batch {BATCH}")
    fig.tight_layout()
    (out / "figures").mkdir(exist_ok=True)
    path = out / "figures" / "digits_conv.png"
    tmp = path.with_name(".digits_conv.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def report(results, task, curves, sizes, epochs) -> str:
    lines = [
        "# Study: a convolutional network against an MLP of the same size",
        "",
        f"{len(task.y):,} training images, {len(task.y_test)} held out (odd vs even digits). "
        f"SGD at {LR} on minibatches of {BATCH}, {epochs} epochs, each seed its own start "
        "and data order.",
        "",
        "## Findings",
        "",
        "| network | parameters | seeds | median test accuracy | 10-90% | min | max | std | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for res in results.values():
        acc = res["test_accuracy"]
        q = np.quantile(acc, [0.1, 0.5, 0.9])
        lines.append(
            f"| {res['label']} | {int(res['params'])} | {len(acc):,} | {q[1]:.1%} | "
            f"{q[0]:.1%}-{q[2]:.1%} | {acc.min():.1%} | {acc.max():.1%} | {acc.std():.2%} | "
            f"{float(res['seconds']):.0f} |"
        )
    lines += ["", "| ensemble size | " + " | ".join(r["label"] for r in results.values()) + " |"]
    lines += ["| ---: |" + " ---: |" * len(results)]
    for i, k in enumerate(sizes):
        lines.append(f"| {k} | " + " | ".join(f"{curves[n][i, 0]:.1%}" for n in results) + " |")
    lines += ["", "![conv against mlp](figures/digits_conv.png)", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/digits_conv")
    ap.add_argument("--seeds", type=int, default=2000)
    ap.add_argument("--quick", action="store_true", help="32 seeds, 2 epochs: a smoke test")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    jaxbp.use_cpu_cores()
    seeds, epochs = (32, 2) if args.quick else (args.seeds, EPOCHS)
    out = Path(args.out)
    (out / "networks").mkdir(parents=True, exist_ok=True)
    task = jaxbp.load_task("digits")
    results = {}
    for name in NETWORKS:
        path = out / "networks" / f"{name}.npz"
        if path.exists():
            with np.load(path) as z:
                res = dict(z)
            if len(res["test_accuracy"]) != seeds:
                print(
                    f"{path} holds another run ({len(res['test_accuracy'])} seeds)", file=sys.stderr
                )
                return 2
        else:
            res = train(task, name, seeds=seeds, epochs=epochs, progress=not args.no_progress)
            write_atomic(path, lambda f, a=res: np.savez(f, **a))
        res["label"] = NETWORKS[name]().name
        results[name] = res
    sizes = [k for k in ENSEMBLES if k <= seeds // 2]
    curves = {
        n: ensemble_curve(r["probabilities"], task.y_test, sizes, draws=200)
        for n, r in results.items()
    }
    figures(out, results, task, curves, sizes)
    write_atomic(out / "report.md", report(results, task, curves, sizes, epochs))
    print(report(results, task, curves, sizes, epochs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
