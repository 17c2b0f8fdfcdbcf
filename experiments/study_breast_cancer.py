"""Study 3: an ensemble of 1024 networks (30-16-1) on the breast-cancer data.

    python experiments/study_breast_cancer.py [--out runs/breast_cancer] [--quick]

The Wisconsin breast-cancer data bundled with scikit-learn (569 examples, 30
features, standardized; fixed stratified 75/25 split: 427 to train on, 142 held
out). 1024 networks of 30-16-1 (tanh hidden units, Glorot-normal starts, binary
cross-entropy, Adam at 0.003, 300 full-batch steps) differ only in their random
start. Findings (report.md): the spread of the members' test accuracy; how the
ensemble (the average of the members' predicted probabilities) compares with its
median and best member, and with the member a practitioner would pick without
looking at the test set (lowest training loss); and how the ensemble's accuracy
grows with its size.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from _study import main, retrained

import jaxbp

CONFIG = {
    "task": {"name": "breast_cancer", "seed": 0},
    "network": {
        "sizes": [30, 16, 1],
        "activation": "tanh",
        "loss": "bce",
        "scheme": "glorot_normal",
    },
    "optimizer": {"name": "adam", "learning_rates": [0.003]},
    "init": {"scales": [1.0]},
    "run": {"n_inits": 1024, "steps": 300, "record_every": 10, "seed": 0, "members_per_file": 256},
}
QUICK = {"run": {"n_inits": 64, "steps": 100, "record_every": 10, "members_per_file": 32}}


def probabilities(params, x):
    """Each member's predicted probability on each example, in float64 NumPy."""
    (l1, l2) = params
    h = np.tanh(np.einsum("ei,nij->nej", x, np.asarray(l1["W"], np.float64)) + l1["b"][:, None, :])
    o = np.einsum("nej,njk->nek", h, np.asarray(l2["W"], np.float64))[..., 0] + l2["b"]
    return 1 / (1 + np.exp(-o))


def figure(path: Path, acc, ens_acc, sizes, curve, lo, hi, n_test):
    plt = jaxbp.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    edges = (np.arange(n_test + 2) - 0.5) / n_test
    a.hist(
        acc,
        bins=edges[(edges > acc.min() - 2 / n_test) & (edges < acc.max() + 2 / n_test)],
        color="tab:blue",
        label=f"{len(acc)} members",
    )
    for v, c, lab in (
        (np.median(acc), "k", "median member"),
        (acc.max(), "tab:green", "best member"),
        (ens_acc, "tab:red", "ensemble average"),
    ):
        a.axvline(v, color=c, ls="--", label=f"{lab}: {v:.1%}")
    a.set_xlabel(f"test accuracy ({n_test} held-out examples)")
    a.set_ylabel("members")
    a.legend(fontsize=8)
    a.set_title("Members' test accuracy")
    b.plot(sizes, curve, "o-", color="tab:red", label="ensemble of k random members (mean)")
    b.fill_between(sizes, lo, hi, color="tab:red", alpha=0.2, label="10-90% over draws")
    b.axhline(np.median(acc), color="k", ls="--", label="median member")
    b.set_xscale("log", base=2)
    b.set_xlabel("ensemble size k (members averaged)")
    b.set_ylabel("test accuracy")
    b.legend(fontsize=8)
    b.set_title("Accuracy against ensemble size")
    fig.suptitle("Breast cancer, 30-16-1 tanh, Adam: one network against many")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def analyse(out: Path, config, summary) -> str:
    task = jaxbp.load_task("breast_cancer", **dict(config.task_options))
    r = retrained(out, config, task)
    ok = ~r.diverged
    prob = probabilities(r.params, task.x_test)[ok]
    y = task.y_test
    acc = np.mean((prob > 0.5) == (y > 0.5), axis=1)
    # The library's own per-member figure, from float32 training, agrees with this one.
    assert np.allclose(acc, r.test_accuracy[ok], atol=1.5 / len(y))
    ens = prob.mean(axis=0)
    ens_acc = np.mean((ens > 0.5) == (y > 0.5))
    vote_acc = np.mean(((prob > 0.5).mean(axis=0) > 0.5) == (y > 0.5))
    picked = int(np.argmin(r.final_loss[ok]))
    rng = np.random.default_rng(0)
    sizes = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if k <= len(acc)]
    draws = np.array(
        [
            [
                np.mean(
                    (prob[rng.choice(len(acc), k, replace=False)].mean(axis=0) > 0.5) == (y > 0.5)
                )
                for _ in range(200)
            ]
            for k in sizes
        ]
    )
    figure(
        out / "figures" / "ensemble.png",
        acc,
        ens_acc,
        sizes,
        draws.mean(axis=1),
        np.quantile(draws, 0.1, axis=1),
        np.quantile(draws, 0.9, axis=1),
        len(y),
    )
    wrong_by_all = np.mean((prob > 0.5) != (y > 0.5), axis=0)
    q = np.quantile(acc, [0.0, 0.1, 0.5, 0.9, 1.0])
    n = len(y)
    lines = [
        f"- **Spread of {ok.sum()} members' test accuracy** ({n} held-out examples, one example "
        f"= {1 / n:.2%}): min {q[0]:.1%}, 10% {q[1]:.1%}, median {q[2]:.1%}, 90% {q[3]:.1%}, "
        f"max {q[4]:.1%} (standard deviation {acc.std():.2%}); "
        f"{len(np.unique(acc))} distinct values. Training accuracy: median "
        f"{np.median(r.accuracy[ok]):.1%}.",
        f"- **Ensemble average** (mean predicted probability of all members): **{ens_acc:.1%}**; "
        f"majority vote: {vote_acc:.1%}. Median member: {q[2]:.1%}; best member: {q[4]:.1%} "
        "(picked by looking at the test set, so an optimistic figure); the member with the "
        f"lowest training loss: {acc[picked]:.1%}.",
        f"- The mean member is right on {acc.mean():.2%} of the test set, so the ensemble is "
        f"{'better' if ens_acc > acc.mean() else 'worse'} than a member picked at random "
        f"({ens_acc - acc.mean():+.2%} on average). "
        f"The ensemble beats {np.mean(acc < ens_acc):.0%} of its members, ties "
        f"{np.mean(acc == ens_acc):.0%} and loses to {np.mean(acc > ens_acc):.0%}. Averaging "
        f"{sizes[-1]} members gains {ens_acc - q[2]:+.1%} over the median member; the curve "
        "against ensemble size is in `figures/ensemble.png`.",
        f"- The errors are shared: {np.sum(wrong_by_all > 0.5)} of the {n} test examples are "
        f"misclassified by most members, {np.sum((wrong_by_all > 0) & (wrong_by_all <= 0.5))} "
        "by some but not most (these are what averaging can fix), "
        f"{np.sum(wrong_by_all == 0)} by none.",
        "",
        "![ensemble](figures/ensemble.png)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main("breast_cancer", __doc__, CONFIG, QUICK, analyse))
