"""Study 2: where does XOR with a 2-2-1 sigmoid network fail, and how often?

    python experiments/study_xor.py [--out runs/xor] [--quick]

The classic setting of the backprop literature: 2 inputs, 2 sigmoid hidden units, a
sigmoid output, squared error, plain full-batch gradient descent on the 4 patterns;
10,000 starts per cell of a learning rate x init scale grid, 3000 steps each. A start
has converged once all 4 patterns are on the right side of 0.5. After the sweep every
member is trained again alone with its final parameters kept (the same bits: a
member's result depends only on the key, its index and its grid point), and each
failure is classified by what its network outputs on the 4 patterns:

- still learning: the loss fell by more than 1% over the last fifth of training;
- flat: all 4 outputs within 0.1 of 0.5 (nothing learned; loss about 0.25);
- k right, the rest undecided: some patterns learned, the others stuck near 0.5;
- confidently wrong: a pattern on the wrong side of 0.5 by more than 0.1.

It also measures how many stuck networks have a saturated hidden unit (output below
0.01 or above 0.99) on at least two patterns: the regions where Sprinkhuizen-Kuyper
and Boers proved the 2-2-1 XOR error surface has (non-strict) local minima.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from _study import main, retrained

import jaxbp

CONFIG = {
    "task": {"name": "xor"},
    "network": {"sizes": [2, 2, 1], "activation": "sigmoid", "loss": "mse", "scheme": "normal"},
    "optimizer": {"name": "sgd", "learning_rates": [0.5, 2.0, 8.0, 32.0]},
    "init": {"scales": [0.1, 0.5, 1.0, 2.0, 4.0]},
    "run": {
        "n_inits": 10_000,
        "steps": 3000,
        "record_every": 30,
        "seed": 0,
        "members_per_file": 50_000,
    },
}
QUICK = {"run": {"n_inits": 300, "steps": 600, "record_every": 30, "members_per_file": 3000}}

LITERATURE = """\
**What the literature reports for XOR with two hidden units.** Rumelhart, Hinton and
Williams (1986, *Parallel Distributed Processing* vol. 1, ch. 8) found that the 2-2-1
XOR network occasionally failed to learn and described it as stuck in a local minimum.
Later analyses of the error surface disagree about the word, not the phenomenon:
Hamey (1998, *Neural Networks* 11, "XOR has no local minima") shows there are no
strict local minima, and Sprinkhuizen-Kuyper and Boers (1998, *Neural Networks* 11,
"The error surface of the 2-2-1 XOR network: the finite stationary points"; and their
local-minima report) prove that every finite stationary point is a saddle point or
lies in a region of non-strict local minima where a hidden unit is saturated on at
least two patterns, that the boundaries of those regions are saddle points, and that
from every finite point a strictly decreasing path leads to zero error. So failures
should look like plateaus and saturated regions that gradient descent is slow to leave,
not like isolated bowls; and more steps (or more precision) should rescue some of them.
"""


def classify(params, x, y, history, steps):
    """Each failed member's kind, from its outputs on the 4 patterns and its loss curve."""
    W1, b1, W2, b2 = (np.asarray(a, np.float64) for a in params)
    h = 1 / (1 + np.exp(-(np.einsum("pi,nij->npj", x, W1) + b1[:, None, :])))
    z = 1 / (1 + np.exp(-(np.einsum("npj,njk->npk", h, W2) + b2[:, None, :])))[..., 0]
    right = np.abs(z - y) < 0.5
    undecided = np.abs(z - 0.5) < 0.1
    wrong = ~right & ~undecided
    tail = history[:, -max(2, history.shape[1] // 5)]
    learning = (tail - history[:, -1]) > 0.01 * tail
    kind = np.full(len(z), "other", dtype=object)
    kind[undecided.all(axis=1)] = "flat: all 4 outputs near 0.5"
    for k in (3, 2, 1):
        sel = (right.sum(axis=1) == k) & (right | undecided).all(axis=1) & ~undecided.all(axis=1)
        kind[sel] = f"{k} right, {4 - k} undecided"
    kind[wrong.any(axis=1)] = "confidently wrong on a pattern"
    kind[learning] = "still learning when training stopped"
    saturated = ((h < 0.01) | (h > 0.99)).sum(axis=1).max(axis=1) >= 2
    return kind, saturated


def analyse(out: Path, config, summary) -> str:
    task = jaxbp.load_task("xor")
    r = retrained(out, config, task)
    p = r.params
    params = (p[0]["W"], p[0]["b"], p[1]["W"], p[1]["b"])
    failed = ~r.converged & ~r.diverged
    kind, saturated = classify(
        [a[failed] for a in params], task.x, task.y, r.history[failed], config.steps
    )
    kinds, counts = np.unique(kind.astype(str), return_counts=True)
    order = np.argsort(-counts)
    n = r.n_members
    grid = summary["grid"]
    best = max(grid, key=lambda g: g["convergence_rate"])
    worst = min(grid, key=lambda g: g["convergence_rate"])
    stuck = kind != "still learning when training stopped"
    flat_all = np.zeros(n, bool)
    flat_all[np.flatnonzero(failed)[kind == "flat: all 4 outputs near 0.5"]] = True
    lines = [
        f"- **{r.converged.mean():.1%} of {n:,} starts converged** "
        f"(all 4 patterns right within {config.steps} steps); {failed.sum():,} failed, "
        f"{int(r.diverged.sum())} diverged.",
        f"- Best cell: learning rate {best['learning_rate']:g}, init scale {best['init_scale']:g}: "
        f"{best['convergence_rate']:.1%} (95% CI {best['ci_low']:.1%}-{best['ci_high']:.1%}); "
        f"worst: learning rate {worst['learning_rate']:g}, init scale {worst['init_scale']:g}: "
        f"{100 * worst['convergence_rate']:.3g}% (95% CI up to {100 * worst['ci_high']:.3g}%).",
        "- **How the failures look** (share of failed starts): "
        + "; ".join(f"{kinds[i]}: {counts[i] / max(1, failed.sum()):.1%}" for i in order)
        + ".",
        f"- Of the stuck failures (not still learning), {saturated[stuck].mean():.1%} have a "
        "hidden unit saturated (below 0.01 or above 0.99) on at least two patterns: the "
        "regions where Sprinkhuizen-Kuyper and Boers locate the 2-2-1 XOR network's "
        "non-strict local minima."
        if stuck.any()
        else "- Every failure was still learning when training stopped.",
        "- **Flat failures by init scale** (share of that scale's starts ending flat, over "
        "all learning rates): "
        + ", ".join(
            f"{sc:g}: {np.mean(flat_all[r.init_scale == sc]):.1%}" for sc in config.init_scales
        )
        + ".",
        "",
        LITERATURE,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main("xor", __doc__, CONFIG, QUICK, analyse))
