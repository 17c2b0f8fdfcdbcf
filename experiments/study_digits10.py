"""Study 7: ten-class digits with 1,000 networks of 64-32-10: test accuracy over seeds, and ensembles.

    python experiments/study_digits10.py [--out runs/digits10] [--quick]

scikit-learn's 8x8 digits with every digit a class (1,352 images to train on, 445
held out, stratified; 64 standardized pixels). 1,000 networks of 64-32-10 (tanh
hidden units, Glorot-normal starts, softmax cross-entropy from integer labels),
plain SGD at 0.1 on minibatches of 32, each network in its own data order, for 40
epochs; all in one ``train_many`` call. Findings (report.md): the spread of test
accuracy over the 1,000 seeds, the accuracy of ensembles (softmax probabilities
averaged) against their size, drawn as 200 random ensembles per size, and which
digits the networks confuse.

The run folder is resumable: the trained networks' test probabilities are one file,
written whole when the training is done.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from jaxbp.internal import write_atomic

N, EPOCHS, BATCH, LR = 1000, 40, 32, 0.1
QUICK = dict(n=64, epochs=4)
SIZES = (64, 32, 10)
ENSEMBLES = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)


def train(task, n, epochs, progress):
    steps = epochs * (len(task.y) // BATCH)
    r = jaxbp.train_many(
        jax.random.key(0), SIZES, task.x.astype(np.float32), task.y, n_inits=n, steps=steps,
        learning_rate=LR, scheme="glorot_normal", activation="tanh", loss="softmax_ce",
        batch_size=BATCH, record_every=steps // epochs, x_test=task.x_test, y_test=task.y_test,
        keep_params=True, progress=progress,
    )  # fmt: skip
    x_test = jnp.asarray(task.x_test, jnp.float32)
    probs = jax.vmap(lambda p: jax.nn.softmax(jaxbp.forward(p, x_test, activation="tanh")))(
        r.params
    )
    return {
        "probabilities": np.asarray(probs),  # (members, test examples, classes)
        "test_accuracy": r.test_accuracy,
        "train_accuracy": r.accuracy,
        "test_accuracy_history": r.test_accuracy_history,
        "diverged": r.diverged,
        "steps": np.array(steps),
        "seconds": np.array(r.seconds),
    }


def ensemble_curve(probs, y, sizes, draws=200, seed=0):
    """(mean, 10%, 90%) test accuracy of random ensembles of each size (probabilities averaged)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in sizes:
        accs = [
            np.mean(probs[rng.choice(len(probs), k, replace=False)].mean(axis=0).argmax(1) == y)
            for _ in range(draws if k < len(probs) else 1)
        ]
        out.append((np.mean(accs), np.quantile(accs, 0.1), np.quantile(accs, 0.9)))
    return np.array(out)


def confusions(probs, y, top=5):
    """The most frequent (true, predicted) mistakes of the single networks, per network."""
    pred = probs.argmax(2)  # (members, examples)
    pairs = {}
    for t, p in zip(np.broadcast_to(y, pred.shape).ravel(), pred.ravel()):
        if t != p:
            pairs[(int(t), int(p))] = pairs.get((int(t), int(p)), 0) + 1
    return sorted(pairs.items(), key=lambda kv: -kv[1])[:top]


def figures(out: Path, res, curve, sizes, y):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = res["test_accuracy"]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.2))
    n_test = len(y)
    wrong = np.rint((1 - acc) * n_test)
    edges = (n_test - np.arange(wrong.max() + 1.5, wrong.min() - 1.5, -1)) / n_test
    a.hist(100 * acc, bins=100 * edges, color="#0969da")  # one bar per count of mistakes
    a.axvline(100 * acc.mean(), color="black", linewidth=1)
    a.set_xlabel("test accuracy of one network (%)")
    a.set_ylabel("networks")
    a.set_title(f"{len(acc):,} seeds: mean {acc.mean():.2%}, sd {acc.std(ddof=1):.2%}", fontsize=9)
    b.plot(sizes, 100 * curve[:, 0], "o-", color="#cf222e")
    b.fill_between(sizes, 100 * curve[:, 1], 100 * curve[:, 2], color="#cf222e", alpha=0.2)
    b.set_xscale("log")
    b.set_xlabel("ensemble size (networks, probabilities averaged)")
    b.set_ylabel("test accuracy (%): mean, 10-90% of draws")
    b.set_title("ensembles against their size", fontsize=9)
    pred = res["probabilities"].mean(axis=0).argmax(1)
    m = np.zeros((10, 10), int)
    np.add.at(m, (y, pred), 1)
    off = m - np.diag(np.diag(m))
    im = c.imshow(off, cmap="Reds")
    c.set_xticks(range(10))
    c.set_yticks(range(10))
    c.set_xlabel("predicted digit")
    c.set_ylabel("true digit")
    c.set_title(f"the {len(acc):,}-network ensemble's mistakes (test set)", fontsize=9)
    for i, j in zip(*np.nonzero(off)):
        dark = off[i, j] > 0.6 * off.max()
        c.text(j, i, str(off[i, j]), ha="center", va="center", fontsize=8,
               color="white" if dark else "black")  # fmt: skip
    fig.colorbar(im, ax=c)
    (out / "figures").mkdir(exist_ok=True)
    fig.tight_layout()
    tmp = out / "figures" / ".digits10.tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out / "figures" / "digits10.png")
    hist = res["test_accuracy_history"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    epochs = np.arange(hist.shape[1])  # record k: before the first step of epoch k
    lo, med, hi = np.quantile(100 * (1 - hist), [0.1, 0.5, 0.9], axis=0)
    ax.plot(epochs, med, color="#0969da", label="median network")
    ax.fill_between(epochs, lo, hi, color="#0969da", alpha=0.2, label="10-90% of networks")
    ax.set_yscale("log")
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("test error (%)")
    ax.legend()
    ax.set_title("held-out error during training", fontsize=9)
    fig.tight_layout()
    tmp = out / "figures" / ".test_accuracy_curves.tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out / "figures" / "test_accuracy_curves.png")


def report(res, curve, sizes, task, n, epochs) -> str:
    acc, train_acc = res["test_accuracy"], res["train_accuracy"]
    q = np.quantile(acc, [0.0, 0.1, 0.5, 0.9, 1.0])
    errors = len(task.y_test) * (1 - acc)
    lines = [
        "# Study: ten-class digits, 64-32-10, over seeds and in ensembles",
        "",
        f"{n:,} networks of 64-32-10 (tanh, Glorot-normal starts, softmax cross-entropy), "
        f"plain SGD at {LR:g} on minibatches of {BATCH}, {epochs} epochs ({int(res['steps'])} "
        f"steps), each in its own data order; {len(task.y):,} training and "
        f"{len(task.y_test):,} held-out images; one `train_many` call "
        f"({float(res['seconds']):.0f} s).",
        "",
        "## Findings",
        "",
        f"- **One network**: test accuracy {acc.mean():.2%} on average (sd {acc.std(ddof=1):.2%} "
        f"over seeds); min {q[0]:.2%}, 10% {q[1]:.2%}, median {q[2]:.2%}, 90% {q[3]:.2%}, "
        f"max {q[4]:.2%}: between {errors.max():.0f} and {errors.min():.0f} of the "
        f"{len(task.y_test)} test images wrong. Training accuracy {train_acc.mean():.2%} "
        f"(min {train_acc.min():.2%}); {int(res['diverged'].sum())} diverged.",
        "- **Ensembles** (probabilities averaged; mean test accuracy of 200 random draws, "
        "10-90% of draws): "
        + ", ".join(
            f"{k}: {m:.2%}" + (f" ({lo:.2%}-{hi:.2%})" if k < n else "")
            for k, (m, lo, hi) in zip(sizes, curve)
        )
        + ".",
        f"- The whole ensemble gains {curve[-1, 0] - acc.mean():+.2%} over the average network "
        f"and {curve[-1, 0] - q[4]:+.2%} over the best single network of the {n:,} (the best "
        "picked on the test set itself: an optimistic bar no held-out choice would reach).",
        "- **Most frequent mistakes of single networks** (true -> predicted: mistakes per "
        "network): "
        + ", ".join(
            f"{t} -> {p}: {c / n:.2f}"
            for (t, p), c in confusions(res["probabilities"], task.y_test)
        )
        + ".",
        "",
        "![digits10](figures/digits10.png)",
        "",
        "![test accuracy curves](figures/test_accuracy_curves.png)",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs") / "digits10")
    ap.add_argument("--quick", action="store_true", help="a much smaller version, for a smoke test")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    jaxbp.use_cpu_cores()
    size = dict(n=N, epochs=EPOCHS) | (QUICK if args.quick else {})
    task = jaxbp.load_task("digits", classes=10)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "networks.npz"
    t0 = time.perf_counter()
    res = None
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            stored = dict(z)
        if stored["probabilities"].shape[0] == size["n"]:
            res = stored
    if res is None:
        res = train(task, size["n"], size["epochs"], progress=False if args.no_progress else None)
        write_atomic(path, lambda f: np.savez(f, **res))
    sizes = [k for k in ENSEMBLES if k < size["n"]] + [size["n"]]
    curve = ensemble_curve(res["probabilities"], task.y_test, sizes)
    figures(args.out, res, curve, sizes, task.y_test)
    text = report(res, curve, sizes, task, **size)
    text += (
        f"\n_This call took {time.perf_counter() - t0:.0f} s on {len(jax.devices())} "
        f"{jax.default_backend()} device(s)._\n"
    )
    write_atomic(args.out / "report.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
