"""What a member of ``train_many`` is: one frozen, hashable value.

A ``MemberSpec`` holds everything that every member of one ``train_many`` call
shares and that shapes its compiled program: the network, its initialization, the
optimizer, the objective, the number of steps and records, the convergence test,
minibatches and the crossed design. The compiled chunk program takes it as its one
static argument. What varies across members (index, learning rate, init scale) and
the data are arrays, so one program serves a whole grid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..training._objective import Objective

__all__ = ["MemberSpec"]


@dataclasses.dataclass(frozen=True)
class MemberSpec:
    """The static part of a member: the same for every member of one call.

    Attributes:
      sizes: the MLP's layer widths.
      scheme: the initialization scheme ([`jaxbp.SCHEMES`][jaxbp.nn.SCHEMES]).
      dtype: the networks' floating dtype.
      make_optimizer: ``learning_rate -> optax.GradientTransformation``.
      objective: activation(s), loss and gradient source (``Objective``).
      steps: updates per member.
      record_every: steps between history records (divides ``steps``).
      converge_loss: the loss below which a member has converged, or None (every
        example right).
      keep_params: return each member's final parameters.
      batch_size: examples per step, or None for full batches.
      crossed: ``(rows, columns)`` of the crossed design, or None.
      n_inits: members per grid point.
    """

    sizes: tuple[int, ...]
    scheme: str
    dtype: np.dtype
    make_optimizer: Callable
    objective: Objective
    steps: int
    record_every: int
    converge_loss: float | None = None
    keep_params: bool = False
    batch_size: int | None = None
    crossed: tuple[int, int] | None = None
    n_inits: int = 1

    @property
    def n_records(self) -> int:
        """History records per member."""
        return self.steps // self.record_every
