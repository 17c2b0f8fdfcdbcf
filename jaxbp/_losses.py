"""Losses on the output logit, each defined together with its derivative dL/do.

A :class:`Loss` gives, for one output unit of one example, the loss ``value(o, y)``
from the logit ``o`` and the label ``y``, and ``dlogit(o, y) = d value / d o``
derived by hand. Networks average over the batch and sum over output units.

Binary cross-entropy is computed from the logit with ``log_sigmoid``, never as
``log(sigmoid(o))``: the latter is ``log(0) = -inf`` once ``sigmoid`` rounds to 0
or 1. Its derivative ``sigmoid(o) - y`` is the seed exercise's
``dL/dz * dz/do = (z - y) / (z (1 - z)) * z (1 - z)`` with the division cancelled
on paper, so it can never divide by zero.

This module knows nothing of networks, training, files or the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax

__all__ = ["LOSSES", "Loss", "resolve_loss"]


class Loss(NamedTuple):
    name: str
    value: Callable[[jax.Array, jax.Array], jax.Array]
    dlogit: Callable[[jax.Array, jax.Array], jax.Array]
    formula: str
    dlogit_formula: str
    labels_in_unit_interval: bool


def _bce_dlogit(o, y):
    return jax.nn.sigmoid(o) - y


@jax.custom_jvp
def _bce(o, y):
    # -[y log z + (1 - y) log(1 - z)] with z = sigmoid(o); log(1 - z) = log_sigmoid(-o).
    return -(y * jax.nn.log_sigmoid(o) + (1 - y) * jax.nn.log_sigmoid(-o))


@_bce.defjvp
def _bce_jvp(primals, tangents):
    # d/do = sigma(o) - y, the hand-derived rule (one exponential; differentiating the two log_sigmoid terms
    # separately costs two, which was 17% of a seed-network training step), and
    # d/dy = log_sigmoid(-o) - log_sigmoid(o) = -o. Like jax.nn's own rules, the rule
    # itself is differentiable, so higher derivatives still work.
    (o, y), (do, dy) = primals, tangents
    return _bce(o, y), _bce_dlogit(o, y) * do - o * dy


def _mse(o, y):
    d = jax.nn.sigmoid(o) - y
    return d * d


def _mse_dlogit(o, y):
    # 2 (z - y) dz/do, with dz/do = sigma(o) sigma(-o) (no cancellation near z = 1).
    return 2 * (jax.nn.sigmoid(o) - y) * (jax.nn.sigmoid(o) * jax.nn.sigmoid(-o))


def _mse_linear(o, y):
    d = o - y
    return d * d


def _mse_linear_dlogit(o, y):
    return 2 * (o - y)


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss(
            "bce",
            _bce,
            _bce_dlogit,
            "-[y log z + (1 - y) log(1 - z)],  z = sigma(o)",
            "z - y",
            True,
        ),
        Loss("mse", _mse, _mse_dlogit, "(z - y)^2,  z = sigma(o)", "2 (z - y) z (1 - z)", True),
        Loss("mse_linear", _mse_linear, _mse_linear_dlogit, "(o - y)^2", "2 (o - y)", False),
    )
}


def resolve_loss(loss: str) -> Loss:
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a name such as 'bce'; got {loss!r}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[loss]
