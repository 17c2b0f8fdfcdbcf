"""A run folder's figures and report.md: what a person reads after a sweep.

Figures (matplotlib, PNG) are written atomically, like everything else in a run
folder: a convergence heatmap over learning rate x init scale, the final-loss
histogram, loss curves, and for 2- or 3-input tasks the decision surfaces of a few
members (as the chunk files keep them, or retrained alone: the same bits as in the
sweep). report.md shows them with the per-grid-point table;
[`add_report_section`][jaxbp.sweeps.add_report_section] lets a study add its findings.

Edge of the library: it reads what ``_runs`` wrote; nothing below knows of it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..many._grid import Grid
from ..many._many import train_many
from ..nn._losses import resolve_loss
from ..nn._mlp import forward
from ..util._files import write_atomic
from ..util._plotting import pyplot
from ._config import SweepConfig
from ._figures import (
    convergence_by_width,
    convergence_heatmap,
    decision_surfaces,
    loss_curves,
    loss_histogram,
    train_vs_heldout,
)
from ._kept import draws_decision_surfaces, kept_params

__all__ = ["add_report_section", "figures_and_report", "member_params", "pick_members"]


def _grid(config: SweepConfig) -> Grid:
    return config.grid()


def pick_members(data, grid_index, n: int = 4) -> list[int]:
    """A few members worth a picture: up to n/2 that converged, from the grid point that
    converged most often, and as many that did not (diverged ones last), from the grid
    point that converged most often among those with failures."""
    conv = data["converged_at"] >= 0
    n_grid = int(grid_index.max()) + 1
    rate = np.array([conv[grid_index == k].mean() for k in range(n_grid)])
    picks: list[int] = []
    for k in np.argsort(-rate, kind="stable"):
        ids = np.flatnonzero((grid_index == k) & conv)[: n // 2]
        if len(ids):
            picks += ids.tolist()
            break
    failed = ~conv
    for k in np.argsort(-rate, kind="stable"):
        sel = (grid_index == k) & failed
        if sel.any():
            order = np.flatnonzero(sel & ~data["diverged"]).tolist()
            order += np.flatnonzero(sel & data["diverged"]).tolist()
            picks += order[: n - len(picks)]
            break
    return picks


def member_params(
    config: SweepConfig, task, members: list[int], folder: Path, widths: list[int | None]
) -> list[Any]:
    """The final parameters of these members: as the run ``folder`` keeps them
    (``_kept``), else trained again alone, to the same bits as in the sweep (a member's
    result depends only on the key, its index and its grid point). ``widths``: each
    member's hidden width (None without a width axis)."""
    kept = kept_params(folder / "chunks", config, members, widths)
    if kept is not None:
        return kept
    kw = config.train_kwargs(task)
    out = []
    for m in members:
        r = train_many(
            jax.random.key(config.seed),
            config.network(),
            task.x,
            task.y,
            members=(m, m + 1),
            keep_params=True,
            **kw,
        )
        out.append(r.member(0)["params"])
    return out


def _decision_figure(path: Path, config: SweepConfig, task, data, grid_index, name) -> bool:
    """The decision surfaces of a few members, for tasks with 2 or 3 inputs (2 for a model
    of one's own), into ``path`` in the run folder's ``figures/``."""
    if not draws_decision_surfaces(config, task):
        return False

    picks = pick_members(data, grid_index)
    if not picks:
        return False
    grid = _grid(config)
    widths = [grid.width(int(grid_index[m])) for m in picks]
    panels = []
    kept = member_params(config, task, picks, path.parent.parent, widths)
    for m, params, width in zip(picks, kept, widths):
        lr, scale = grid.point(int(grid_index[m]))
        at = int(data["converged_at"][m])
        story = (
            f"converged at step {at}"
            if at >= 0
            else "diverged"
            if data["diverged"][m]
            else "not converged"
        )
        right = round(float(data["accuracy"][m]) * len(task.y))
        panels.append(
            {
                "params": params,
                "label": f"member {m}: "
                + ("" if width is None else f"width {width}, ")
                + f"lr {lr:g}, "
                f"scale {scale:g}\n{story}; at the end "
                f"{right}/{len(task.y)} right, loss {float(data['final_loss'][m]):.3g}",
            }
        )

    linear = not resolve_loss(config.loss).uses_probability

    network = config.network()

    def predict(params, points):
        if config.model is None:
            o = forward(params, jnp.asarray(points, jnp.float32), activation=config.activation)
        else:
            dtype = jax.tree_util.tree_leaves(params)[0].dtype
            o = network.apply(params, jnp.asarray(points, dtype))
        return jnp.clip(o, 0, 1) if linear else jax.nn.sigmoid(o)

    decision_surfaces(
        panels,
        task.x,
        task.y,
        path,
        title=f"{name}: what {len(panels)} members learned",
        predict=predict,
    )
    return True


def add_report_section(out: str | os.PathLike, heading: str, markdown: str) -> None:
    """Put a ``## heading`` section into the run folder's report.md, before the figures,
    replacing one of the same heading (so rerunning a study rewrites, never repeats, it).
    The section is kept when the report is drawn again (``jaxbp report``)."""
    path = Path(out) / "report.md"
    write_atomic(path, _with_section(path.read_text(), heading, markdown))


LOSS_UNITS = {
    "bce": "final loss (cross-entropy, nats per example)",
    "mse": "final loss (squared error of sigma(o), per example)",
    "mse_linear": "final loss (squared error of o, per example)",
    "half_mse": "final loss (half the squared error of sigma(o), per example)",
    "half_mse_linear": "final loss (half the squared error of o, per example)",
    "softmax_ce": "final loss (softmax cross-entropy, nats per example)",
}


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


FIGURES_SKIPPED = (
    "figures were skipped: matplotlib is not installed; pip install 'jaxbp[plots]', "
    "then `jaxbp report {out}` draws them"
)


def figures_and_report(out: Path, config: SweepConfig, task, data, grid_index, doc) -> bool:
    """PNG figures (written atomically, as everything else) and a report.md that shows them.

    Without matplotlib the report is written without figures and says how to draw
    them later; returns whether figures were drawn.
    """
    name = (
        f"{config.task} {config.network_name}"
        + (f" {config.activation}" if config.model is None else "")
        + f", {config.optimizer}"
    )
    try:
        made = _figures(out / "figures", name, config, task, data, grid_index, doc)
    except ImportError:
        made = None
    text = _report_text(name, config, doc, made, out)
    old = out / "report.md"
    for heading, body in _added_sections(old.read_text() if old.is_file() else ""):
        text = _with_section(text, heading, body)
    write_atomic(out / "report.md", text)
    return made is not None


_OWN_SECTIONS = ("## Findings", "## Figures", "## Per grid point")


def _added_sections(text: str) -> list[tuple[str, str]]:
    """The ``## `` sections of a report that ``add_report_section`` put there (a study's
    findings), as (heading, body): kept when the report is drawn again."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("## ")]
    out = []
    for i, j in zip(starts, [*starts[1:], len(lines)]):
        if lines[i] not in _OWN_SECTIONS:
            out.append((lines[i][3:], "\n".join(lines[i + 1 : j])))
    return out


def _with_section(text: str, heading: str, markdown: str) -> str:
    """``text`` with a ``## heading`` section before its figures, replacing one of the
    same heading."""
    lines = text.splitlines()
    title = f"## {heading}"
    if title in lines:
        i = lines.index(title)
        j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
        del lines[i:j]
    at = lines.index("## Figures") if "## Figures" in lines else len(lines)
    lines[at:at] = [title, "", *markdown.strip("\n").splitlines(), ""]
    return "\n".join(lines) + "\n"


def _cells(config: SweepConfig, grid_index: np.ndarray):
    """What the curves are drawn over: (``cell`` per member, the lines' values, their
    name). Without widths, one line per init scale (the cell is the grid point); with
    widths, one per width, every init scale pooled."""
    if config.widths is None:
        return grid_index, config.init_scales, "init scale"
    grid = config.grid()
    width_index, within = np.divmod(grid_index, grid.points_per_width)
    lr_index = within // len(config.init_scales)
    return lr_index * grid.n_widths + width_index, config.widths, "width"


def _figures(figures: Path, name, config: SweepConfig, task, data, grid_index, doc) -> list[str]:
    """Draw the figures into ``figures/``; the file names drawn."""
    pyplot()  # an ImportError before anything is drawn when matplotlib is missing
    figures.mkdir(exist_ok=True)
    made = []
    for fname, draw in _figure_draws(name, config, task, data, grid_index, doc):
        # Through a temporary file: a figure is in the folder whole or not at all. Only
        # the decision figure declines (False) for a task it cannot draw.
        tmp = figures / f".{fname}.tmp.png"
        if draw(tmp) is not False:
            os.replace(tmp, figures / fname)
            made.append(fname)
    return made


def _figure_draws(name, config: SweepConfig, task, data, grid_index, doc) -> list[tuple]:
    """``(file name, draw)`` for each figure of the report: ``draw(path)`` draws it."""
    ns = len(config.init_scales)
    cell, lines, line_name = _cells(config, grid_index)
    pooled = "" if config.widths is None or ns == 1 else f", {ns} init scales pooled"
    every = config.record_every or max(1, config.steps // data["history"].shape[1])
    ylabel = {"bce": "cross-entropy (nats)", "softmax_ce": "cross-entropy (nats)"}.get(
        config.loss, "squared error"
    )
    draws = [
        ("convergence.png", lambda p: _convergence(p, name, config, doc)),
        (
            "final_loss.png",
            lambda p: loss_histogram(
                data["final_loss"],
                data["diverged"],
                p,
                title=f"{name}: final loss after {config.steps} steps",
                xlabel=LOSS_UNITS[config.loss],
            ),
        ),
        (
            "loss_curves.png",
            lambda p: loss_curves(
                data["history"],
                cell,
                config.learning_rates,
                lines,
                every,
                p,
                title=f"{name}: loss during training{pooled}",
                ylabel=ylabel,
                line_name=line_name,
            ),
        ),
    ]
    if "test_loss_history" in data:
        minibatch = (
            ""
            if config.batch_size is None
            else f" (training: the step's minibatch of {config.batch_size})"
        )
        draws.append(
            (
                "train_vs_heldout.png",
                lambda p: train_vs_heldout(
                    data["history"],
                    data["test_loss_history"],
                    cell,
                    config.learning_rates,
                    lines,
                    every,
                    p,
                    title=f"{name}: training and held-out loss{pooled}{minibatch}",
                    ylabel=ylabel,
                    column_name=line_name,
                ),
            )
        )
    draws.append(
        (
            "decision_surfaces.png",
            lambda p: _decision_figure(p, config, task, data, grid_index, name),
        )
    )
    return draws


def _convergence(path: Path, name, config: SweepConfig, doc):
    """The convergence rate of every grid point: a heatmap, or one per hidden width."""
    n_lr, ns = len(config.learning_rates), len(config.init_scales)
    rate = np.array([row["convergence_rate"] for row in doc["grid"]])
    title = f"{name}: convergence over {config.n_inits} starts per cell"
    if config.widths is None:
        return convergence_heatmap(
            rate.reshape(n_lr, ns), config.learning_rates, config.init_scales, path, title=title
        )
    return convergence_by_width(
        rate.reshape(len(config.widths), n_lr, ns),
        config.widths,
        config.learning_rates,
        config.init_scales,
        path,
        title=title,
    )


def _report_text(name: str, config: SweepConfig, doc, made: list[str] | None, out: Path) -> str:
    """report.md: what was run, the findings, the figures, a table per grid point."""
    ns = len(config.init_scales)
    test = "median_test_accuracy" in doc["grid"][0]
    wide = config.widths is not None
    at = lambda r: (
        (f"width {r['width']}, " if wide else "") + f"learning rate {r['learning_rate']:g}"
    )
    best = max(doc["grid"], key=lambda r: r["convergence_rate"])
    worst = min(doc["grid"], key=lambda r: r["convergence_rate"])
    lines = [
        f"# Sweep: {name}",
        "",
        f"{doc['members']} networks: "
        + (f"{len(config.widths)} hidden widths x " if wide else "")
        + f"{len(config.learning_rates)} learning rates x {ns} init scales x "
        f"{config.n_inits} random starts, {config.steps} "
        + (
            "full-batch steps"
            if config.batch_size is None
            else f"minibatch steps of {config.batch_size} examples"
        )
        + " each. Config: `config.toml`; "
        "one row per network: `members.csv`.",
        "",
        "## Findings",
        "",
        f"- Highest convergence rate: {best['convergence_rate']:.1%} at {at(best)}, "
        f"init scale {best['init_scale']:g}.",
        f"- Lowest: {worst['convergence_rate']:.1%} at {at(worst)}, "
        f"init scale {worst['init_scale']:g}.",
        f"- Diverged: {sum(r['diverged'] for r in doc['grid'])} of {doc['members']} networks.",
        "",
        "## Figures",
        "",
        *(
            (f"![{f}](figures/{f})\n" for f in made)
            if made is not None
            else [f"_{FIGURES_SKIPPED.format(out=out)}._\n"]
        ),
        "## Per grid point",
        "",
        ("| width " if wide else "")
        + "| learning rate | init scale | converged | rate (95% CI) | diverged | median final loss |"
        + (" median test accuracy |" if test else ""),
        ("| ---: " if wide else "")
        + "| ---: | ---: | ---: | ---: | ---: | ---: |"
        + (" ---: |" if test else ""),
        *(
            (f"| {r['width']} " if wide else "")
            + f"| {r['learning_rate']:g} | {r['init_scale']:g} | {r['converged']} | "
            f"{r['convergence_rate']:.1%} ({r['ci_low']:.1%}-{r['ci_high']:.1%}) | "
            f"{r['diverged']} | {_fmt(r['loss_median'], '.4g')} |"
            + (f" {_fmt(r['median_test_accuracy'], '.1%')} |" if test else "")
            for r in doc["grid"]
        ),
        "",
    ]
    return "\n".join(lines)
