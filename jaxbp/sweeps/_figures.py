"""Figures of a sweep (matplotlib, PNG): convergence heatmap, final-loss histogram, loss curves.

Reads the arrays a run produced and writes image files. Needs the ``plots`` extra.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from ..util._checks import ceil_div
from ..util._plotting import pyplot

__all__ = [
    "convergence_by_width",
    "convergence_heatmap",
    "decision_surfaces",
    "loss_curves",
    "loss_histogram",
    "train_vs_heldout",
]


def _suptitle(fig, title: str, **kw) -> None:
    """The figure's title, wrapped to the figure's width (about 11 characters an inch)."""
    chars = max(30, int(fig.get_figwidth() * 11))
    fig.suptitle("\n".join(textwrap.wrap(title, chars)), **kw)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _heat(ax, rate: np.ndarray, columns, rows) -> object:
    """One heatmap of convergence rates (rows x columns), each cell's rate written in it."""
    im = ax.imshow(rate, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
    ax.set_xticks(range(len(columns)), [f"{s:g}" for s in columns])
    ax.set_yticks(range(len(rows)), [f"{lr:g}" for lr in rows])
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
    return im


def convergence_heatmap(
    rate: np.ndarray, learning_rates, init_scales, path: Path, *, title: str
) -> Path:
    """Convergence rate (fraction of members) over learning rate (rows) x init scale (columns)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.2 * len(init_scales) + 3, 0.8 * len(learning_rates) + 2.2))
    im = _heat(ax, rate, init_scales, learning_rates)
    ax.set_xlabel("init scale (multiplier of the scheme's spread)")
    ax.set_ylabel("learning rate")
    fig.colorbar(im, ax=ax, label="converged (fraction of members)")
    ax.set_title(title)
    return _save(plt, fig, path)


def convergence_by_width(
    rate: np.ndarray, widths, learning_rates, init_scales, path: Path, *, title: str
) -> Path:
    """Convergence rate over learning rate (rows) x hidden width (columns): one panel
    per init scale, two panels a row. ``rate`` is ``(widths, learning rates, init scales)``."""
    plt = pyplot()
    n_s = len(init_scales)
    cols = min(2, n_s)
    rows = ceil_div(n_s, cols)
    panel = (0.62 * len(widths) + 1.6, 0.55 * len(learning_rates) + 1.5)
    fig, axes = plt.subplots(
        rows, cols, figsize=(cols * panel[0] + 1.4, rows * panel[1] + 0.9), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    for j, scale in enumerate(init_scales):
        ax = axes[j // cols, j % cols]
        im = _heat(ax, rate[:, :, j].T, widths, learning_rates)
        ax.set_xlabel("hidden width")
        if j % cols == 0:
            ax.set_ylabel("learning rate")
        ax.set_title(f"init scale {scale:g}", fontsize=9)
    for k in range(n_s, rows * cols):
        axes[k // cols, k % cols].axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), label="converged (fraction of members)")
    _suptitle(fig, title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def loss_histogram(
    final_loss: np.ndarray,
    diverged: np.ndarray,
    path: Path,
    *,
    title: str,
    xlabel: str = "final loss",
) -> Path:
    """Histogram of final losses (log scale), diverged members counted apart."""
    plt = pyplot()
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
    ax.set_xlabel(xlabel)
    ax.set_ylabel("members")
    n_div = int(diverged.sum())
    ax.legend(title=f"{n_div} diverged (left out)" if n_div else None)
    ax.set_title(title)
    return _save(plt, fig, path)


def loss_curves(
    history: np.ndarray,
    cell: np.ndarray,
    learning_rates,
    lines,
    record_every: int,
    path: Path,
    *,
    title: str,
    ylabel: str = "loss",
    line_name: str = "init scale",
) -> Path:
    """Median loss with its 10-90% band against training steps: one panel per learning
    rate, one line per value of ``lines`` (init scales, or hidden widths). ``cell``: each
    member's ``lr_index * len(lines) + line_index`` (the grid index, for init scales)."""
    plt = pyplot()
    n_lr, n_s = len(learning_rates), len(lines)
    cols = min(3, n_lr)
    rows = ceil_div(n_lr, cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(max(6.0, 4.2 * cols), 3.2 * rows + 0.5), squeeze=False, sharex=True,
        sharey=True,
    )  # fmt: skip
    steps = np.arange(history.shape[1]) * record_every
    colors = plt.cm.viridis(np.linspace(0, 0.85, n_s))
    for i, lr in enumerate(learning_rates):
        ax = axes[i // cols, i % cols]
        for j, (value, color) in enumerate(zip(lines, colors)):
            h = history[cell == i * n_s + j]
            h = h[np.all(np.isfinite(h), axis=1)]
            if not len(h):
                continue
            lo, med, hi = np.quantile(h, [0.1, 0.5, 0.9], axis=0)
            ax.plot(steps, med, color=color, label=f"{line_name} {value:g}")
            ax.fill_between(steps, lo, hi, color=color, alpha=0.12, linewidth=0)
        ax.set_yscale("log")
        ax.set_title(f"learning rate {lr:g}", fontsize=9)
        if i % cols == 0:
            ax.set_ylabel(f"{ylabel}\n(median, 10-90% band)")
        ax.tick_params(labelbottom=True)
        ax.set_xlabel("training step")
    for k in range(n_lr, rows * cols):
        axes[k // cols, k % cols].axis("off")
    axes[0, 0].legend(fontsize=7)
    _suptitle(fig, title)
    return _save(plt, fig, path)


def train_vs_heldout(
    train: np.ndarray,
    heldout: np.ndarray,
    cell: np.ndarray,
    learning_rates,
    columns,
    record_every: int,
    path: Path,
    *,
    title: str,
    ylabel: str = "loss",
    column_name: str = "init scale",
) -> Path:
    """Training loss against held-out loss during training, median and 10-90% band:
    one panel per learning rate (rows) and value of ``columns`` (init scales, or hidden
    widths); ``cell`` as for ``loss_curves``."""
    plt = pyplot()
    n_lr, n_s = len(learning_rates), len(columns)
    fig, axes = plt.subplots(
        n_lr, n_s, figsize=(3.6 * n_s + 0.6, 2.7 * n_lr + 0.8), squeeze=False, sharex=True,
        sharey=True,
    )  # fmt: skip
    steps = np.arange(train.shape[1]) * record_every
    for i, lr in enumerate(learning_rates):
        for j, value in enumerate(columns):
            ax = axes[i, j]
            sel = cell == i * n_s + j
            ok = sel & np.all(np.isfinite(train), axis=1) & np.all(np.isfinite(heldout), axis=1)
            for h, label, color in (
                (train, "training", "#0969da"),
                (heldout, "held out", "#cf222e"),
            ):
                if not ok.any():
                    continue
                lo, med, hi = np.quantile(h[ok], [0.1, 0.5, 0.9], axis=0)
                ax.plot(steps, med, color=color, label=label)
                ax.fill_between(steps, lo, hi, color=color, alpha=0.15, linewidth=0)
            ax.set_yscale("log")
            ax.set_title(f"lr {lr:g}, {column_name} {value:g} ({int(ok.sum())} nets)", fontsize=8)
            if j == 0:
                ax.set_ylabel(ylabel)
            if i == n_lr - 1:
                ax.set_xlabel("training step")
    axes[0, 0].legend(fontsize=7)
    _suptitle(fig, title)
    return _save(plt, fig, path)


def decision_surfaces(
    panels: list[dict],
    x: np.ndarray,
    y: np.ndarray,
    path: Path,
    *,
    title: str,
    predict,
) -> Path:
    """What a few members learned: the network's output sigma(o) over the input plane.

    Args:
      panels: one dict per member with ``params`` and a ``label`` (its story in a line).
      x: the training inputs (2 or 3 features), drawn on top.
      y: the training labels.
      predict: ``predict(params, points) -> sigma(o)`` for ``points`` of shape (n, features).

    Two features: the plane itself. Three: slices through the input cube at the values
    the third input takes in the data (two at most; else its minimum and maximum),
    each showing the examples that lie on that slice.
    """
    plt = pyplot()
    n_features = x.shape[1]
    if n_features not in (2, 3):
        raise ValueError(f"decision surfaces need 2 or 3 input features; got {n_features}")
    if n_features == 3:
        values = np.unique(x[:, 2])
        slices = list(values) if len(values) <= 2 else [values.min(), values.max()]
    else:
        slices = [None]
    lo, hi = x[:, :2].min(axis=0), x[:, :2].max(axis=0)
    pad = 0.25 * np.maximum(hi - lo, 1.0)
    g0 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], 121)
    g1 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], 121)
    m0, m1 = np.meshgrid(g0, g1)
    rows, cols = len(panels), len(slices)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.0 * cols + 1.2, 3.3 * rows + 0.6), squeeze=False
    )
    im = None
    for r, panel in enumerate(panels):
        for c, v in enumerate(slices):
            ax = axes[r, c]
            plane = np.stack([m0.ravel(), m1.ravel()], axis=1)
            on = np.ones(len(x), bool)
            if v is not None:
                plane = np.concatenate([plane, np.full((len(plane), 1), v)], axis=1)
                on = np.isclose(x[:, 2], v)
            z = np.asarray(predict(panel["params"], plane)).reshape(m0.shape)
            im = ax.contourf(m0, m1, z, levels=np.linspace(0, 1, 11), cmap="RdBu_r", vmin=0, vmax=1)
            ax.contour(m0, m1, z, levels=[0.5], colors="k", linewidths=1.2)
            for label, marker, color in ((0, "o", "tab:blue"), (1, "s", "tab:red")):
                sel = on & (y == label)
                ax.scatter(
                    x[sel, 0],
                    x[sel, 1],
                    marker=marker,
                    c=color,
                    edgecolors="k",
                    s=40,
                    label=f"y = {label}",
                    zorder=3,
                )
            ax.set_xlabel("input 1")
            ax.set_ylabel("input 2")
            first, _, rest = panel["label"].partition("\n")
            sub = (
                first + ("" if v is None else f"; input 3 = {v:g}") + (f"\n{rest}" if rest else "")
            )
            ax.set_title(sub, fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left", framealpha=0.8)
    _suptitle(fig, title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    cax = fig.add_axes((0.91, 0.15, 0.02, 0.7))
    fig.colorbar(im, cax=cax, label="network output sigma(o)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
