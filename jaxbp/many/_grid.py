"""The grid layout of many members: member index <-> (learning rate, init scale, seed).

Members form one flat axis, grid-major: member ``m`` belongs to grid point
``g = m // n_inits``, which has learning rate ``learning_rates[g // n_scales]`` and
init scale ``init_scales[g % n_scales]``; its seed index is ``m % n_inits``.
Everything that maps members to hyperparameters (training, run folders, figures)
decodes it here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Grid", "grid_axis"]


def grid_axis(values, name: str) -> np.ndarray:
    """A grid axis (learning rates, init scales) as a float64 array of positive finite numbers."""
    a = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"{name} must be a positive number or a non-empty 1-D array; got shape {np.shape(values)}"
        )
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must hold positive finite numbers; got {a.tolist()}"[:300])
    return a


class Member(NamedTuple):
    """Where members sit in the grid; each field has the shape of the member indices."""

    grid_index: np.ndarray
    learning_rate: np.ndarray
    init_scale: np.ndarray
    seed_index: np.ndarray


class Grid(NamedTuple):
    """Learning rates x init scales x ``n_inits`` seeds, flattened grid-major.

    Examples:
      >>> grid = Grid(np.array([0.1, 1.0]), np.array([0.5, 1.0, 2.0]), n_inits=4)
      >>> grid.n_members
      24
      >>> m = grid.members(np.array([0, 5, 23]))
      >>> m.grid_index.tolist(), m.learning_rate.tolist(), m.init_scale.tolist(), m.seed_index.tolist()
      ([0, 1, 5], [0.1, 0.1, 1.0], [0.5, 1.0, 2.0], [0, 1, 3])
    """

    learning_rates: np.ndarray
    init_scales: np.ndarray
    n_inits: int

    @property
    def n_points(self) -> int:
        return len(self.learning_rates) * len(self.init_scales)

    @property
    def n_members(self) -> int:
        return self.n_points * self.n_inits

    def point(self, g: int) -> tuple[float, float]:
        """(learning rate, init scale) of grid point ``g``."""
        ns = len(self.init_scales)
        return float(self.learning_rates[g // ns]), float(self.init_scales[g % ns])

    def index(self, lr_index: int, scale_index: int) -> int:
        """The grid point of the ``lr_index``-th learning rate and ``scale_index``-th scale."""
        return lr_index * len(self.init_scales) + scale_index

    def members(self, ids) -> Member:
        """The grid point, hyperparameters and seed index of each member in ``ids``."""
        ids = np.asarray(ids)
        g = ids // self.n_inits
        ns = len(self.init_scales)
        return Member(
            grid_index=g,
            learning_rate=np.asarray(self.learning_rates)[g // ns],
            init_scale=np.asarray(self.init_scales)[g % ns],
            seed_index=ids % self.n_inits,
        )
