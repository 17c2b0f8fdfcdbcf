"""Study 6: how does the hidden width change how often XOR and 3-bit parity are learned?

    python experiments/study_width.py --task {xor,parity3} [--out runs/width_TASK] [--quick]

One sweep over hidden width (2-16) x init scale, 10,000 random starts per cell, all
widths in one compiled program (``[network] widths``): plain full-batch gradient
descent on every pattern, sigmoid units, N(0, scale^2) weights; XOR (4 patterns)
with squared error at learning rate 8, the literature's setting and the best cell of
the 2-2-1 study; 3-bit parity (8 patterns) with cross-entropy at learning rate 4, the
best cell of the seed-network study. A start has converged once every pattern is on
the right side of 0.5. The findings compare the convergence rate against width with
the claim that t - 1 hidden units for t patterns leave no suboptimal local minima
(3 for XOR, 7 for 3-bit parity) and its counterexample; each failure is called still
learning (its loss fell by more than 1% over the last fifth of training) or stuck.
Adds ``figures/rate_by_width.png``: the rate against width, one line per init scale,
with 95% intervals.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _study import main

import jaxbp

WIDTHS = [2, 3, 4, 5, 6, 7, 8, 10, 12, 16]
SCALES = [0.5, 1.0, 2.0, 4.0]
RUN = {"n_inits": 10_000, "seed": 0, "members_per_file": 100_000}
CONFIGS = {
    "xor": {
        "task": {"name": "xor"},
        "network": {"sizes": [2, 2, 1], "widths": WIDTHS, "activation": "sigmoid",
                    "loss": "mse", "scheme": "normal"},
        "optimizer": {"name": "sgd", "learning_rates": [8.0]},
        "init": {"scales": SCALES},
        "run": {**RUN, "steps": 3000, "record_every": 30},
    },
    "parity3": {
        "task": {"name": "parity", "bits": 3},
        "network": {"sizes": [3, 2, 1], "widths": WIDTHS, "activation": "sigmoid",
                    "loss": "bce", "scheme": "normal"},
        "optimizer": {"name": "sgd", "learning_rates": [4.0]},
        "init": {"scales": SCALES},
        "run": {**RUN, "steps": 2000, "record_every": 20},
    },
}  # fmt: skip
PATTERNS = {"xor": 4, "parity3": 8}
QUICK = {"run": {"n_inits": 60, "steps": 200, "record_every": 10, "members_per_file": 20_000}}

LITERATURE = """\
**What the literature says.** Yu (1992, *IEEE Transactions on Neural Networks* 3(6),
"Can backpropagation error surface not have local minima") argued that a network of
one hidden layer with t - 1 hidden units, given t patterns, has no suboptimal local
minima: for XOR (t = 4) that is 3 hidden units, for 3-bit parity (t = 8) 7.
Sprinkhuizen-Kuyper and Boers (1999, *IEEE Transactions on Neural Networks* 10(4),
"A local minimum for the 2-3-1 XOR network") gave a counterexample: a region of
local minima with nonzero error for XOR with exactly 3 hidden units, and showed the
original proof holds only for an unusual definition of a local minimum. For two
hidden units, Hamey (1998, *Neural Networks* 11) and Sprinkhuizen-Kuyper and Boers
(1998, *Neural Networks* 11) show the 2-2-1 XOR surface has no strict local minima,
only saddle points and flat regions where a hidden unit saturates (study 2). So
the prediction to test is: the rate should climb towards 100% by t - 1 units, and
the failures left at or past t - 1 should be slow (plateaus, still learning), not
stuck for good; what a finite run of plain gradient descent sees on top of that is
the time it takes to leave a plateau, which depends on the init scale.
"""


def _pct(v: float) -> str:
    return f"{100 * v:.3g}%"


def rate_figure(path: Path, grid, title: str, threshold: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(SCALES)))
    for scale, color in zip(SCALES, colors):
        rows = [g for g in grid if g["init_scale"] == scale]
        w = [g["width"] for g in rows]
        rate = np.array([g["convergence_rate"] for g in rows])
        lo = np.array([g["ci_low"] for g in rows])
        hi = np.array([g["ci_high"] for g in rows])
        ax.plot(w, 100 * rate, "o-", color=color, label=f"init scale {scale:g}", markersize=4)
        ax.fill_between(w, 100 * lo, 100 * hi, color=color, alpha=0.2, linewidth=0)
    ax.axvline(threshold, color="grey", linestyle="--", linewidth=1)
    ax.text(threshold, 3, f" t - 1 = {threshold}", color="grey", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(WIDTHS, [str(w) for w in WIDTHS])
    ax.set_ylim(0, 101)
    ax.set_xlabel("hidden units")
    ax.set_ylabel("starts that learned every pattern (%)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def analyse_for(task_name: str):
    t = PATTERNS[task_name]

    def analyse(out: Path, config, summary) -> str:
        grid = summary["grid"]
        run = jaxbp.load_run(out)
        r = run.result
        failed = ~r.converged & ~r.diverged
        h = r.history
        tail = h[:, -max(2, h.shape[1] // 5)]
        learning = failed & ((tail - h[:, -1]) > 0.01 * tail)
        stuck = failed & ~learning
        right = np.rint(r.accuracy * t).astype(int)
        lines = [
            "| hidden units | " + " | ".join(f"init scale {s:g}" for s in SCALES) + " |",
            "| ---: |" + " ---: |" * len(SCALES),
        ]
        for w in WIDTHS:
            cells = [g for g in grid if g["width"] == w]
            lines.append(
                f"| {w} | "
                + " | ".join(
                    f"{g['convergence_rate']:.1%} ({g['ci_low']:.1%}-{g['ci_high']:.1%})"
                    for g in cells
                )
                + " |"
            )
        best = max(grid, key=lambda g: g["convergence_rate"])
        at_t = r.width >= t - 1
        lines += [
            "",
            f"_Convergence rate (95% Wilson interval) of {config.n_inits:,} starts per cell, "
            f"learning rate {config.learning_rates[0]:g}, {config.steps} steps._",
            "",
            f"- **Best cell** (the narrowest at the highest rate): {best['width']} hidden units, init scale {best['init_scale']:g}: "
            f"{best['convergence_rate']:.2%} ({best['converged']:,} of {best['members']:,}).",
            "- **By width** (every init scale pooled): "
            + ", ".join(f"{w}: {r.converged[r.width == w].mean():.1%}" for w in WIDTHS)
            + ".",
            f"- **At t - 1 = {t - 1} hidden units and wider**: {r.converged[at_t].mean():.2%} of "
            f"{int(at_t.sum()):,} starts converged; of their {int(failed[at_t].sum()):,} "
            f"failures, {_pct(learning[at_t].sum() / max(1, failed[at_t].sum()))} were still "
            f"learning when training stopped and {int(stuck[at_t].sum()):,} were stuck "
            f"({_pct(stuck[at_t].mean())} of those starts).",
            "- **Stuck at t - 1 units and wider, by init scale** (share of that scale's starts): "
            + ", ".join(
                f"{sc:g}: {_pct(stuck[at_t & (r.init_scale == sc)].mean())}" for sc in SCALES
            )
            + "; by patterns right at the end: "
            + ", ".join(
                f"{k} of {t}: {_pct(np.mean(right[stuck & at_t] == k))}"
                for k in range(t, -1, -1)
                if np.any(right[stuck & at_t] == k)
            )
            + ".",
            f"- **Below t - 1**: {r.converged[~at_t].mean():.2%} converged; "
            f"{_pct(learning[~at_t].sum() / max(1, failed[~at_t].sum()))} of the failures were "
            "still learning.",
            f"- Diverged: {int(r.diverged.sum())} of {r.n_members:,}.",
            "",
            "![rate by width](figures/rate_by_width.png)",
            "",
            LITERATURE,
        ]
        rate_figure(
            out / "figures" / "rate_by_width.png",
            grid,
            f"{task_name}: {config.n_inits:,} starts per point, lr {config.learning_rates[0]:g}, "
            f"{config.steps} steps",
            t - 1,
        )
        return "\n".join(lines)

    return analyse


if __name__ == "__main__":
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--task", choices=sorted(CONFIGS), required=True)
    known, rest = ap.parse_known_args()
    sys.exit(
        main(
            f"width_{known.task}",
            __doc__,
            CONFIGS[known.task],
            QUICK,
            analyse_for(known.task),
            argv=rest,
        )
    )
