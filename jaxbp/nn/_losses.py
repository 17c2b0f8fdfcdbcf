"""Losses on the output logit, each defined together with its derivative dL/do.

A [`Loss`][jaxbp.nn.Loss] gives, for one output unit of one example, the loss ``value(o, y)``
from the logit ``o`` and the label ``y``, and ``dlogit(o, y) = d value / d o``
derived by hand. Networks average over the batch and sum over output units.

Binary cross-entropy is computed from the logit with ``log_sigmoid``, never as
``log(sigmoid(o))``: the latter is ``log(0) = -inf`` once ``sigmoid`` rounds to 0
or 1. Its derivative ``sigmoid(o) - y`` is the seed exercise's
``dL/dz * dz/do = (z - y) / (z (1 - z)) * z (1 - z)`` with the division cancelled
on paper, so it can never divide by zero.

Beside each loss sit its output steps as a student writes them on paper
(``PaperStep``: the loss, ``dL/dz`` and ``dL/do`` for a batch of ``B``
examples, in the probability form the seed exercise uses); worked solutions
and grading use them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["LOSSES", "Loss", "PaperStep", "resolve_loss"]


class PaperStep(NamedTuple):
    """One output step of a derivation as written on paper.

    ``fn(*inputs, y, B)`` computes it from the named earlier steps (``o``, ``z``,
    ``dL/dz``), the labels ``y`` ``(batch, n_out)`` and the batch size ``B``.
    """

    inputs: tuple[str, ...]
    formula: str
    latex: str
    what: str
    fn: Callable[..., jax.Array]


class Loss(NamedTuple):
    """A loss on the output logits with its derivative ``dL/do``, derived by hand.

    Attributes:
      name: the name functions take (``loss="bce"``).
      value: ``(o, y) -> L`` per output unit and example, from the logit ``o``.
      dlogit: ``(o, y) -> dL/do``, derived by hand.
      formula: the loss as text.
      dlogit_formula: ``dL/do`` as text.
      labels_in_unit_interval: labels must lie in [0, 1] (BCE).
      paper: the output steps of a derivation as written on paper, in order.
      squared: for squared errors, the factor ``c`` of ``c (out - y)^2``; else None.
    """

    name: str
    value: Callable[[jax.Array, jax.Array], jax.Array]
    dlogit: Callable[[jax.Array, jax.Array], jax.Array]
    formula: str
    dlogit_formula: str
    labels_in_unit_interval: bool
    paper: dict[str, PaperStep]  # "loss", ("dL/dz",) "dL/do", in order
    squared: float | None = None  # for squared errors: the factor c of c (out - y)^2
    classes: bool = False  # labels are class indices, held one-hot (softmax cross-entropy)

    @property
    def uses_probability(self) -> bool:
        """Whether the loss is of ``z = sigma(o)`` (so a derivation has ``z`` and ``dL/dz``)."""
        return "dL/dz" in self.paper

    def predicts_one(self, o: jax.Array) -> jax.Array:
        """The decision for class 1: ``z = sigma(o) > 0.5`` (that is ``o > 0``) for losses
        of the probability, the output itself above 0.5 for ``mse_linear``."""
        return o > 0.5 if not self.uses_probability else o > 0

    def right(self, o: jax.Array, y: jax.Array) -> jax.Array:
        """Whether each prediction is right: per example, the largest logit at the label's
        class (softmax cross-entropy); else per example and output unit, on the label's
        side of 0.5."""
        if self.classes:
            return jnp.argmax(o, axis=-1) == jnp.argmax(y, axis=-1)
        return self.predicts_one(o) == (y > 0.5)

    def probs(self, o: jax.Array) -> jax.Array:
        """The output probabilities: ``softmax(o)`` over the classes, else ``sigma(o)``."""
        return jax.nn.softmax(o, axis=-1) if self.classes else jax.nn.sigmoid(o)


def _bce_dlogit(o, y):
    # sigma(o) from e = exp(-|o|), the exponential the loss itself takes: where a step
    # records its loss, XLA computes the one exponential for both. Never overflows:
    # sigma(o) = 1 / (1 + e) for o >= 0 and e / (1 + e) below.
    e = jnp.exp(-jnp.abs(o))
    return jnp.where(o >= 0, 1, e) / (1 + e) - y


@functools.cache
def _log1p_polynomial(dtype) -> tuple[float, ...] | None:
    """Coefficients ``c_0 .. c_k`` of ``log(1 + e) / e ~ sum c_j e^j`` on ``[0, 1]`` for a
    float type of at most 32 bits, else None.

    The polynomial interpolates at ``k + 1`` Chebyshev nodes (in float64); ``k`` is the
    smallest degree whose error on a fine grid is below a quarter of the type's
    epsilon: 4 for float16, 9 for float32.
    """
    info = jnp.finfo(dtype)
    if info.bits > 32:
        return None
    grid = np.linspace(0.0, 1.0, 4097)
    target = np.log1p(grid[1:]) / grid[1:]
    for k in range(2, 24):
        t = np.cos((2 * np.arange(k + 1) + 1) * np.pi / (2 * k + 2))  # nodes on [-1, 1]
        nodes = (t + 1) / 2
        fit = np.polynomial.Polynomial.fit(nodes, np.log1p(nodes) / nodes, k, domain=[0, 1])
        coef = fit.convert().coef  # in powers of e itself
        if np.max(np.abs(np.polynomial.polynomial.polyval(grid[1:], coef) - target)) < info.eps / 4:
            return tuple(float(c) for c in coef)
    raise AssertionError(f"no polynomial of degree < 24 fits log1p for {dtype}")


def log1p_unit(e: jax.Array) -> jax.Array:
    """``log(1 + e)`` for ``0 <= e <= 1``, to within 3 units in the last place of ``e``'s dtype.

    float16 and float32: ``e * p(e)`` with ``p`` a polynomial of degree 4 or 9 fitted to
    ``log(1 + e) / e`` (``_log1p_polynomial``): multiply-adds only. Wider types:
    ``log1p(e) = 2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ...)`` with ``s = e / (2 + e)``,
    so ``s^2 <= 1/9``: two divisions and a short polynomial (16 terms for float64). Both
    are exact for tiny ``e`` (where ``log(1 + e)`` would round to 0). On XLA's CPU backend
    ``jnp.log1p`` is several times slower (float32: 7x the cost of the series;
    docs/benchmarks.md).
    """
    coef = _log1p_polynomial(e.dtype)
    if coef is not None:
        p = jnp.full_like(e, coef[-1])
        for c in coef[-2::-1]:
            p = p * e + c
        return e * p
    eps = float(jnp.finfo(e.dtype).eps)
    k = 1
    while 9.0**-k / (2 * k + 1) >= eps / 4:  # the first term left out is below eps / 4
        k += 1
    d = 2 + e
    s2 = (e / d) ** 2
    p = jnp.full_like(e, 1 / (2 * k + 1))
    for j in range(k - 1, -1, -1):
        p = p * s2 + 1 / (2 * j + 1)
    # e * (2p / d), not 2 s p: s = e / d of the smallest e would be subnormal (flushed to 0).
    return e * (2 * p / d)


@jax.custom_jvp
def _bce(o, y):
    # -[y log z + (1 - y) log(1 - z)] with z = sigmoid(o) is y softplus(-o) + (1 - y) softplus(o)
    # = softplus(o) - y o = max(o, 0) - y o + log(1 + e^-|o|): one exponential and one log1p
    # (two log_sigmoid terms take two of each), finite for any logit, and with no
    # cancellation where the loss is tiny (o >> 0 with y = 1: max(o, 0) - y o is exactly 0).
    return jnp.maximum(o, 0) - y * o + log1p_unit(jnp.exp(-jnp.abs(o)))


@_bce.defjvp
def _bce_jvp(primals, tangents):
    # d/do = sigma(o) - y, the hand-derived rule (one exponential; differentiating the two log_sigmoid terms
    # separately costs two: a measurable share of a seed-network step, docs/benchmarks.md), and
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


def _half_mse(o, y):
    d = jax.nn.sigmoid(o) - y
    return 0.5 * (d * d)


def _half_mse_dlogit(o, y):
    # (z - y) dz/do: the 1/2 cancels the 2 of the square (the textbooks' convention).
    return (jax.nn.sigmoid(o) - y) * (jax.nn.sigmoid(o) * jax.nn.sigmoid(-o))


def _half_mse_linear(o, y):
    d = o - y
    return 0.5 * (d * d)


def _half_mse_linear_dlogit(o, y):
    return o - y


def _mse_linear(o, y):
    d = o - y
    return d * d


def _mse_linear_dlogit(o, y):
    return 2 * (o - y)


def _softmax_ce(o, y):
    # -sum_k y_k log softmax(o)_k with y one-hot: per output unit, -y_k log z_k, so the sum
    # over units (as every loss here is summed) is the cross-entropy. log_softmax takes the
    # row's maximum out first: finite for any finite logits (o = +-1e9 included).
    return -y * jax.nn.log_softmax(o, axis=-1)


def _softmax_ce_dlogit(o, y):
    # d/do_j of -sum_k y_k log z_k = z_j sum_k y_k - y_j = z_j - y_j for one-hot y.
    return jax.nn.softmax(o, axis=-1) - y


_SOFTMAX_CE_PAPER = {
    "loss": PaperStep(
        ("o",),
        "L = -mean[sum_k y_k log z_k],  z = softmax(o)",
        r"L = -\frac{1}{B}\sum_b \sum_k y_k \log z_k,\quad z_k = \frac{e^{o_k}}{\sum_j e^{o_j}}",
        "cross-entropy of the softmax, mean over the batch",
        lambda o, y, B: -jnp.sum(y * jax.nn.log_softmax(o, axis=-1)) / B,
    ),
    "dL/do": PaperStep(
        ("o",),
        "dL/do = (softmax(o) - onehot(y)) / B",
        r"\frac{\partial L}{\partial o_k} = \frac{z_k - y_k}{B}",
        "output delta: the softmax minus the one-hot label",
        lambda o, y, B: (jax.nn.softmax(o, axis=-1) - y) / B,
    ),
}

_BCE_PAPER = {
    "loss": PaperStep(
        ("z",),
        "L = -mean[y log z + (1 - y) log(1 - z)]",
        r"L = -\frac{1}{B}\sum_b \left[y \log z + (1 - y)\log(1 - z)\right]",
        "binary cross-entropy, mean over the batch",
        lambda z, y, B: -jnp.sum(y * jnp.log(z) + (1 - y) * jnp.log(1 - z)) / B,
    ),
    "dL/dz": PaperStep(
        ("z",),
        "dL/dz = -[y/z - (1 - y)/(1 - z)] / B = (z - y) / (z (1 - z) B)",
        r"\frac{\partial L}{\partial z} = -\frac{1}{B}\left[\frac{y}{z} - \frac{1-y}{1-z}\right] = \frac{z - y}{B\,z(1 - z)}",
        "derivative of the loss with respect to the output probability",
        # Shown as the seed writes it; training never divides by z(1 - z).
        lambda z, y, B: (z - y) / (z * (1 - z)) / B,
    ),
    "dL/do": PaperStep(
        ("z",),
        "dL/do = dL/dz * z(1 - z) = (z - y) / B",
        r"\frac{\partial L}{\partial o} = \frac{\partial L}{\partial z}\, z(1 - z) = \frac{z - y}{B}",
        "output delta (the division by z(1 - z) cancels on paper)",
        lambda z, y, B: (z - y) / B,
    ),
}

_MSE_PAPER = {
    "loss": PaperStep(
        ("z",),
        "L = mean[(z - y)^2]",
        r"L = \frac{1}{B}\sum_b (z - y)^2",
        "squared error of the output probability, mean over the batch",
        lambda z, y, B: jnp.sum((z - y) ** 2) / B,
    ),
    "dL/dz": PaperStep(
        ("z",),
        "dL/dz = 2 (z - y) / B",
        r"\frac{\partial L}{\partial z} = \frac{2 (z - y)}{B}",
        "derivative of the loss with respect to the output probability",
        lambda z, y, B: 2 * (z - y) / B,
    ),
    "dL/do": PaperStep(
        ("dL/dz", "z"),
        "dL/do = dL/dz * z(1 - z)",
        r"\frac{\partial L}{\partial o} = \frac{\partial L}{\partial z}\, z(1 - z)",
        "output delta",
        lambda dz, z, y, B: dz * z * (1 - z),
    ),
}

_MSE_LINEAR_PAPER = {
    "loss": PaperStep(
        ("o",),
        "L = mean[(o - y)^2]",
        r"L = \frac{1}{B}\sum_b (o - y)^2",
        "squared error of the logit, mean over the batch",
        lambda o, y, B: jnp.sum((o - y) ** 2) / B,
    ),
    "dL/do": PaperStep(
        ("o",),
        "dL/do = 2 (o - y) / B",
        r"\frac{\partial L}{\partial o} = \frac{2 (o - y)}{B}",
        "output delta",
        lambda o, y, B: 2 * (o - y) / B,
    ),
}

_HALF_MSE_PAPER = {
    "loss": PaperStep(
        ("z",),
        "L = mean[1/2 (z - y)^2]",
        r"L = \frac{1}{B}\sum_b \tfrac{1}{2}(z - y)^2",
        "half the squared error of the output probability, mean over the batch",
        lambda z, y, B: 0.5 * jnp.sum((z - y) ** 2) / B,
    ),
    "dL/dz": PaperStep(
        ("z",),
        "dL/dz = (z - y) / B",
        r"\frac{\partial L}{\partial z} = \frac{z - y}{B}",
        "derivative of the loss with respect to the output probability",
        lambda z, y, B: (z - y) / B,
    ),
    "dL/do": _MSE_PAPER["dL/do"],
}

_HALF_MSE_LINEAR_PAPER = {
    "loss": PaperStep(
        ("o",),
        "L = mean[1/2 (o - y)^2]",
        r"L = \frac{1}{B}\sum_b \tfrac{1}{2}(o - y)^2",
        "half the squared error of the logit, mean over the batch",
        lambda o, y, B: 0.5 * jnp.sum((o - y) ** 2) / B,
    ),
    "dL/do": PaperStep(
        ("o",),
        "dL/do = (o - y) / B",
        r"\frac{\partial L}{\partial o} = \frac{o - y}{B}",
        "output delta",
        lambda o, y, B: (o - y) / B,
    ),
}

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
            _BCE_PAPER,
        ),
        Loss(
            "mse",
            _mse,
            _mse_dlogit,
            "(z - y)^2,  z = sigma(o)",
            "2 (z - y) z (1 - z)",
            True,
            _MSE_PAPER,
            1.0,
        ),
        Loss(
            "half_mse",
            _half_mse,
            _half_mse_dlogit,
            "1/2 (z - y)^2,  z = sigma(o)",
            "(z - y) z (1 - z)",
            True,
            _HALF_MSE_PAPER,
            0.5,
        ),
        Loss(
            "mse_linear",
            _mse_linear,
            _mse_linear_dlogit,
            "(o - y)^2",
            "2 (o - y)",
            False,
            _MSE_LINEAR_PAPER,
            1.0,
        ),
        Loss(
            "softmax_ce",
            _softmax_ce,
            _softmax_ce_dlogit,
            "-log z_y,  z = softmax(o)",
            "z - onehot(y)",
            False,
            _SOFTMAX_CE_PAPER,
            classes=True,
        ),
        Loss(
            "half_mse_linear",
            _half_mse_linear,
            _half_mse_linear_dlogit,
            "1/2 (o - y)^2",
            "o - y",
            False,
            _HALF_MSE_LINEAR_PAPER,
            0.5,
        ),
    )
}
"""Every built-in loss by name: ``"bce"``, ``"mse"``, ``"mse_linear"``, ``"half_mse"``,
``"half_mse_linear"``, and ``"softmax_ce"`` (optax's ``softmax_cross_entropy_with_integer_labels``:
one output unit per class, labels given as class indices)."""


def resolve_loss(loss: str) -> Loss:
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a name such as 'bce'; got {loss!r}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[loss]
