"""The grid layout of many members: member index <-> (width, learning rate, init scale, seed).

Members form one flat axis, grid-major: member ``m`` belongs to grid point
``g = m // n_inits``, which has learning rate ``learning_rates[g // n_scales]`` and
init scale ``init_scales[g % n_scales]``; its seed index is ``m % n_inits``. With a
width axis (``widths``), it is the outermost: the members of width ``widths[i]`` are
the block ``[i * per_width, (i + 1) * per_width)``, laid out within it exactly as a
grid without widths, and member ``m``'s index within its width (``local_index``) is
what its start and data order derive from, so it starts and trains as member
``local_index`` of that width alone. Everything that maps members to hyperparameters
(training, run folders, figures) decodes it here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..util._checks import is_int

__all__ = ["Grid", "check_widths", "grid_axis"]


def check_widths(widths) -> tuple[int, ...] | None:
    """``train_many``'s ``widths``: None, or a non-empty sequence of distinct positive integers."""
    if widths is None:
        return None
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        raise ValueError(f"widths must be a non-empty list of positive integers; got {widths!r}")
    values = list(widths)
    if not values or not all(is_int(w) and w >= 1 for w in values):
        raise ValueError(
            f"widths must be a non-empty list of positive integers; got {values!r}"[:300]
        )
    if len(set(values)) != len(values):
        raise ValueError(f"widths must not repeat a width; got {values!r}"[:300])
    return tuple(int(w) for w in values)


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
    width: np.ndarray | None = None  # the hidden width, with a width axis
    width_index: np.ndarray | None = None  # its position in ``widths``
    local_index: np.ndarray | None = None  # the member's index within its width


class Grid(NamedTuple):
    """[Widths x] learning rates x init scales x ``n_inits`` seeds, flattened grid-major.

    Examples:
      >>> grid = Grid(np.array([0.1, 1.0]), np.array([0.5, 1.0, 2.0]), n_inits=4)
      >>> grid.n_members
      24
      >>> m = grid.members(np.array([0, 5, 23]))
      >>> m.grid_index.tolist(), m.learning_rate.tolist(), m.init_scale.tolist(), m.seed_index.tolist()
      ([0, 1, 5], [0.1, 0.1, 1.0], [0.5, 1.0, 2.0], [0, 1, 3])

      With a width axis, each width holds the grid above:

      >>> grid = Grid(np.array([0.1, 1.0]), np.array([0.5, 1.0, 2.0]), 4, widths=(2, 8))
      >>> m = grid.members(np.array([5, 24, 29]))
      >>> m.width.tolist(), m.local_index.tolist(), m.grid_index.tolist(), m.init_scale.tolist()
      ([2, 8, 8], [5, 0, 5], [1, 6, 7], [1.0, 0.5, 1.0])
    """

    learning_rates: np.ndarray
    init_scales: np.ndarray
    n_inits: int
    widths: tuple[int, ...] | None = None

    @property
    def n_widths(self) -> int:
        return 1 if self.widths is None else len(self.widths)

    @property
    def points_per_width(self) -> int:
        return len(self.learning_rates) * len(self.init_scales)

    @property
    def per_width(self) -> int:
        """Members of one width (all of them without a width axis)."""
        return self.points_per_width * self.n_inits

    @property
    def n_points(self) -> int:
        return self.n_widths * self.points_per_width

    @property
    def n_members(self) -> int:
        return self.n_points * self.n_inits

    def point(self, g: int) -> tuple[float, float]:
        """(learning rate, init scale) of grid point ``g``."""
        ns = len(self.init_scales)
        g = g % self.points_per_width
        return float(self.learning_rates[g // ns]), float(self.init_scales[g % ns])

    def width(self, g: int) -> int | None:
        """The hidden width of grid point ``g`` (None without a width axis)."""
        return None if self.widths is None else self.widths[g // self.points_per_width]

    def index(self, lr_index: int, scale_index: int, width_index: int = 0) -> int:
        """The grid point of the ``lr_index``-th learning rate and ``scale_index``-th scale
        (of the ``width_index``-th width)."""
        return width_index * self.points_per_width + lr_index * len(self.init_scales) + scale_index

    def members(self, ids) -> Member:
        """The grid point, hyperparameters and seed index of each member in ``ids``."""
        ids = np.asarray(ids)
        g = ids // self.n_inits
        ns = len(self.init_scales)
        within = g % self.points_per_width
        member = Member(
            grid_index=g,
            learning_rate=np.asarray(self.learning_rates)[within // ns],
            init_scale=np.asarray(self.init_scales)[within % ns],
            seed_index=ids % self.n_inits,
        )
        if self.widths is None:
            return member
        wi = ids // self.per_width
        return member._replace(
            width=np.asarray(self.widths)[wi], width_index=wi, local_index=ids % self.per_width
        )
