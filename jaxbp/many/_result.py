"""What [`jaxbp.train_many`][jaxbp.many.train_many] returns: per-member arrays, and a summary per grid point."""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any

import jax
import numpy as np

from ..nn._tree import Params
from ._grid import Grid
from ._widths import sizes_at, trim

__all__ = ["HISTORIES", "ManyResult"]

HISTORIES = ("history", "test_loss_history", "test_accuracy_history")
"""The per-member outputs that hold one value per record point (the rest hold one value)."""


@dataclasses.dataclass(frozen=True)
class ManyResult:
    """Per-member results of [`train_many`][jaxbp.many.train_many], each a NumPy array with a leading member axis.

    Attributes:
      learning_rate: each member's learning rate.
      init_scale: each member's init scale.
      seed_index: each member's start within its grid point, ``0 .. n_inits - 1``.
      grid_index: each member's grid point (learning rate-major).
      final_loss: the loss after the last step (NaN-free unless ``diverged``).
      accuracy: the fraction of examples on the right side of 0.5 after training
        (of ``sigmoid(o)``, or for ``mse_linear`` of the output ``o`` itself).
      converged: the criterion held at some step.
      converged_at: the first step at which it held, else -1.
      diverged: the loss or an update went non-finite; the member stopped there.
      history: ``(members, steps // record_every)`` losses, each on the batch its step
        took (the whole training set, or with ``batch_size`` that step's minibatch).
        Histories are stored record by record (Fortran order), as they are computed:
        ``history[:, k]`` is contiguous, a member's row ``history[m]`` is a strided view.
      params: the final parameters, stacked on axis 0 of every leaf (when kept), else None.
        With a width axis, every member's are the widest network's, zero outside its
        own units; ``member(i)["params"]`` cuts them to its width.
      test_loss: the loss on the held-out ``x_test``, ``y_test`` (when given), else None.
      test_accuracy: the accuracy on the held-out set (when given), else None.
      test_loss_history: ``(members, steps // record_every)``: the held-out loss at every
        record point (when given), else None. ``eval_loss_history`` is its older name.
      test_accuracy_history: the same for the held-out accuracy
        (``eval_accuracy_history``).
      batch_size: the minibatch size, or None for full-batch steps.
      width: each member's hidden width (with a width axis), else None.
      widths: the grid's width axis, outside the learning rates, or None.
      sizes: the layer widths of the built-in MLP (the widest, with a width axis), or
        None for a model of one's own.
      learning_rates: the grid's first axis.
      init_scales: the grid's second axis.
      n_inits: members per grid point.
      steps: updates per member.
      record_every: steps between history records.
      seconds: the wall-clock time of the call.
    """

    learning_rate: np.ndarray
    init_scale: np.ndarray
    seed_index: np.ndarray
    grid_index: np.ndarray
    final_loss: np.ndarray
    accuracy: np.ndarray
    converged: np.ndarray
    converged_at: np.ndarray
    diverged: np.ndarray
    history: np.ndarray
    params: Params | None
    learning_rates: np.ndarray
    init_scales: np.ndarray
    n_inits: int
    steps: int
    record_every: int
    seconds: float
    test_loss: np.ndarray | None = None
    test_accuracy: np.ndarray | None = None
    test_loss_history: np.ndarray | None = None
    test_accuracy_history: np.ndarray | None = None
    batch_size: int | None = None
    width: np.ndarray | None = None
    widths: tuple[int, ...] | None = None
    sizes: tuple[int, ...] | None = None

    @property
    def eval_loss_history(self) -> np.ndarray | None:
        """The older name of ``test_loss_history``."""
        return self.test_loss_history

    @property
    def eval_accuracy_history(self) -> np.ndarray | None:
        """The older name of ``test_accuracy_history``."""
        return self.test_accuracy_history

    @classmethod
    def from_members(
        cls,
        grid: Grid,
        ids: np.ndarray,
        arrays,
        *,
        steps: int,
        record_every: int,
        seconds=0.0,
        batch_size: int | None = None,
        sizes: tuple[int, ...] | None = None,
    ) -> ManyResult:
        """The result for members ``ids`` of ``grid`` from their per-member ``arrays``
        (``final_loss``, ``accuracy``, ``converged_at``, ``diverged``, ``history``, and
        where present ``params``, ``test_loss``, ``test_accuracy``, ``test_loss_history``,
        ``test_accuracy_history``)."""
        m = grid.members(ids)
        return cls(
            learning_rate=m.learning_rate,
            init_scale=m.init_scale,
            seed_index=m.seed_index,
            grid_index=m.grid_index,
            final_loss=arrays["final_loss"],
            accuracy=arrays["accuracy"],
            converged=arrays["converged_at"] >= 0,
            converged_at=arrays["converged_at"],
            diverged=arrays["diverged"],
            history=arrays["history"],
            params=arrays.get("params"),
            learning_rates=grid.learning_rates,
            init_scales=grid.init_scales,
            n_inits=grid.n_inits,
            steps=steps,
            record_every=record_every,
            seconds=seconds,
            test_loss=arrays.get("test_loss"),
            test_accuracy=arrays.get("test_accuracy"),
            test_loss_history=arrays.get("test_loss_history"),
            test_accuracy_history=arrays.get("test_accuracy_history"),
            batch_size=batch_size,
            width=m.width,
            widths=grid.widths,
            sizes=None if sizes is None else tuple(sizes),
        )

    @property
    def n_members(self) -> int:
        return int(self.final_loss.shape[0])

    def member(self, i: int) -> dict[str, Any]:
        """Everything about member ``i``, as Python values."""
        out = {
            k: getattr(self, k)[i].item()
            for k in (
                "learning_rate",
                "init_scale",
                "seed_index",
                "grid_index",
                "final_loss",
                "accuracy",
                "converged",
                "converged_at",
                "diverged",
            )
        }
        if self.width is not None:
            out["width"] = int(self.width[i])
        out["history"] = self.history[i]
        if self.test_loss is not None:
            out["test_loss"] = self.test_loss[i].item()
            out["test_accuracy"] = self.test_accuracy[i].item()
        if self.test_loss_history is not None:
            out["test_loss_history"] = self.test_loss_history[i]
            out["test_accuracy_history"] = self.test_accuracy_history[i]
        if self.params is not None:
            out["params"] = jax.tree_util.tree_map(lambda a: a[i], self.params)
            if self.width is not None:
                out["params"] = trim(out["params"], sizes_at(self.sizes, self.width[i]))
        return out

    def summary(self, *, confidence: float = 0.95) -> list[dict[str, Any]]:
        """Per grid point: convergence rate with a Wilson confidence interval, loss quantiles.

        Diverged members count as not converged and are left out of the loss
        statistics (their count is reported), so one NaN never poisons a mean.
        """
        z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
        rows = []
        grid = Grid(self.learning_rates, self.init_scales, self.n_inits, self.widths)
        for g in range(grid.n_points):
            sel = self.grid_index == g
            n = int(sel.sum())
            if n == 0:
                continue
            k = int(self.converged[sel].sum())
            lo, hi = _wilson(k, n, z)
            ok = sel & ~self.diverged
            losses = self.final_loss[ok]
            q = np.quantile(losses, [0.1, 0.5, 0.9]) if losses.size else [math.nan] * 3
            lr, scale = grid.point(g)
            rows.append(
                {
                    "grid_index": g,
                    **({} if self.widths is None else {"width": grid.width(g)}),
                    "learning_rate": lr,
                    "init_scale": scale,
                    "members": n,
                    "converged": k,
                    "convergence_rate": k / n,
                    "ci_low": lo,
                    "ci_high": hi,
                    "diverged": int(self.diverged[sel].sum()),
                    "loss_q10": float(q[0]),
                    "loss_median": float(q[1]),
                    "loss_q90": float(q[2]),
                    "mean_accuracy": float(self.accuracy[ok].mean()) if ok.any() else math.nan,
                    "median_converged_at": float(np.median(self.converged_at[sel & self.converged]))
                    if k
                    else math.nan,
                }
            )
            if self.test_accuracy is not None:
                acc = self.test_accuracy[ok]
                rows[-1]["mean_test_accuracy"] = float(acc.mean()) if acc.size else math.nan
                rows[-1]["median_test_accuracy"] = float(np.median(acc)) if acc.size else math.nan
        return rows


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson score interval for a proportion k / n."""
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)
