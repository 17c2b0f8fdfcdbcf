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
import functools
import itertools
import math
from collections.abc import Callable

import jax
import numpy as np

from ..nn._mlp import init_mlp_unchecked
from ..nn._model import Model
from ..training._objective import Objective
from ._widths import masked, padded_init

__all__ = ["Footprint", "MemberSpec", "footprint", "model_footprint"]


@dataclasses.dataclass(frozen=True)
class MemberSpec:
    """The static part of a member: the same for every member of one call.

    Attributes:
      sizes: the built-in MLP's layer widths (None for a model of one's own).
      scheme: the MLP's initialization scheme ([`jaxbp.SCHEMES`][jaxbp.nn.SCHEMES]).
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
      model: a [`Model`][jaxbp.nn.Model] of one's own, or None for the built-in MLP.
      widths: the hidden widths of a width axis, or None; ``sizes`` are then the
        widest, in which every member is held (``_widths``).
    """

    sizes: tuple[int, ...] | None
    scheme: str | None
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
    model: Model | None = None
    widths: tuple[int, ...] | None = None

    def init(self, key, scale, width=None):
        """A member's starting parameters from its key and init scale (and, with a
        width axis, its hidden width)."""
        if self.model is not None:
            return self.model.init(key, scale)
        if self.widths is not None:
            return padded_init(
                key, scale, width, sizes=self.sizes, widths=self.widths,
                scheme=self.scheme, dtype=self.dtype,
            )  # fmt: skip
        return init_mlp_unchecked(
            key, scale, sizes=self.sizes, scheme=self.scheme, dtype=self.dtype
        )

    def optimizer(self, lr, width=None):
        """The member's optimizer; with a width axis, masked to its own entries (its
        ``width`` given at the start, then carried in the optimizer's state)."""
        opt = self.make_optimizer(lr)
        return opt if self.widths is None else masked(opt, width, sizes=self.sizes)

    @property
    def n_records(self) -> int:
        """History records per member."""
        return self.steps // self.record_every


@dataclasses.dataclass(frozen=True)
class Footprint:
    """What planning knows of one member's network, per example of a step's batch.

    Attributes:
      n_params: parameter scalars.
      work: multiply-adds of one forward pass, per example.
      units: values a forward pass computes after the input, per example.
      acts: words the forward and backward passes keep, per example.
      name: what messages call the network.
    """

    n_params: int
    work: int
    units: int
    acts: int
    name: str


def footprint(net) -> Footprint:
    """``net``'s footprint: a ``Footprint`` as it is, or the built-in MLP's from its sizes."""
    if isinstance(net, Footprint):
        return net
    sizes = tuple(net)
    n_params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    # h, a, da/dh, dL/da, dL/dh, and the loss's own, for every unit (the input's too).
    return Footprint(n_params, n_params, sum(sizes[1:]), 6 * sum(sizes), "-".join(map(str, sizes)))


def model_footprint(model: Model, objective: Objective, params, x, y) -> Footprint:
    """A model's footprint, measured: its parameters' shapes (``params``, from
    ``jax.eval_shape`` of its init), the multiply-adds XLA counts in its forward pass on
    the batch ``x`` (shapes), and the temporary memory of its compiled gradient step.
    Measured once per model, objective and shapes (a compile), then remembered."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    return _measured(model, objective, tree, tuple(leaves), x, y)


@functools.lru_cache(maxsize=64)
def _measured(model, objective, tree, leaves, x, y) -> Footprint:
    params = jax.tree_util.tree_unflatten(tree, leaves)
    batch = x.shape[0]
    n_params = sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(params))
    forward = jax.jit(lambda p, a: model.apply(p, a)).lower(params, x)
    cost = forward.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float((cost or {}).get("flops", 0.0))
    jaxpr = jax.make_jaxpr(lambda p, a: model.apply(p, a))(params, x)
    units = sum(math.prod(v.aval.shape) for e in jaxpr.eqns for v in e.outvars)
    step = jax.jit(objective.value_logits_and_grad).lower(params, x, y).compile()
    memory = step.memory_analysis()
    temp = getattr(memory, "temp_size_in_bytes", 0) if memory is not None else 0
    itemsize = np.dtype(x.dtype).itemsize
    per = lambda v: max(1, math.ceil(v / batch))
    return Footprint(
        n_params=n_params,
        work=per(flops / 2),
        units=per(units),
        acts=max(per(temp / itemsize), 2 * per(units)),
        name=model.name,
    )
