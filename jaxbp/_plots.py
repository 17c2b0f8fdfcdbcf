"""Figures of a sweep (matplotlib, PNG): convergence heatmap, final-loss histogram, loss curves.

Edge of the library: reads the arrays a run produced and writes image files; the
core and the training code know nothing of it. Needs the ``plots`` extra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["convergence_heatmap", "loss_curves", "loss_histogram"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ValueError("figures need matplotlib: pip install 'jaxbp[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def convergence_heatmap(
    rate: np.ndarray, learning_rates, init_scales, path: Path, *, title: str
) -> Path:
    """Convergence rate (fraction of members) over learning rate (rows) x init scale (columns)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.2 * len(init_scales) + 3, 0.8 * len(learning_rates) + 2.2))
    im = ax.imshow(rate, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
    ax.set_xticks(range(len(init_scales)), [f"{s:g}" for s in init_scales])
    ax.set_yticks(range(len(learning_rates)), [f"{lr:g}" for lr in learning_rates])
    ax.set_xlabel("init scale (multiplier of the scheme's spread)")
    ax.set_ylabel("learning rate")
    for i in range(rate.shape[0]):
        for j in range(rate.shape[1]):
            ax.text(
                j,
                i,
                f"{rate[i, j]:.0%}",
                ha="center",
                va="center",
                color="white" if rate[i, j] < 0.6 else "black",
                fontsize=9,
            )
    fig.colorbar(im, ax=ax, label="converged (fraction of members)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def loss_histogram(final_loss: np.ndarray, diverged: np.ndarray, path: Path, *, title: str) -> Path:
    """Histogram of final losses (log scale), diverged members counted apart."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ok = final_loss[~diverged]
    ok = ok[np.isfinite(ok)]
    floor = max(float(ok[ok > 0].min()) if (ok > 0).any() else 1e-8, 1e-12)
    bins = (
        np.logspace(np.log10(floor), np.log10(max(float(ok.max()), floor * 10)), 40)
        if ok.size
        else 10
    )
    ax.hist(np.maximum(ok, floor), bins=bins, color="tab:blue", label=f"{ok.size} members")
    ax.set_xscale("log")
    ax.set_xlabel("final loss (nats per example)")
    ax.set_ylabel("members")
    n_div = int(diverged.sum())
    ax.legend(title=f"{n_div} diverged (left out)" if n_div else None)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def loss_curves(
    history: np.ndarray,
    grid_index: np.ndarray,
    labels: list[str],
    record_every: int,
    path: Path,
    *,
    title: str,
) -> Path:
    """Median loss per grid point with its 10-90% band, against training steps."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    steps = np.arange(history.shape[1]) * record_every
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(labels)))
    for g, (label, color) in enumerate(zip(labels, colors)):
        h = history[grid_index == g]
        h = h[np.all(np.isfinite(h), axis=1)]
        if not len(h):
            continue
        lo, med, hi = np.quantile(h, [0.1, 0.5, 0.9], axis=0)
        ax.plot(steps, med, color=color, label=label)
        ax.fill_between(steps, lo, hi, color=color, alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (median, 10-90% band)")
    ax.legend(fontsize=8, ncol=2 if len(labels) > 6 else 1)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
