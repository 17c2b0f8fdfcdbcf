"""Hidden-layer activations, each defined together with its hand-derived derivative.

An [`Activation`][jaxbp.nn.Activation] pairs ``fn(h)`` with ``grad(h) = d fn / d h`` written by
hand (never by ``jax.grad``), plus the two formulas in symbols, so that the
manual chain rule and the worked solutions use the very same local derivative.
Beside them sits the derivative as a student writes it on paper
(``StudentRule``: ``a(1 - a)`` from the activation ``a`` rather than
``sigma(h) sigma(-h)`` from ``h``), which worked solutions and grading use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["ACTIVATIONS", "Activation", "StudentRule", "activation_key", "resolve_activations"]


class StudentRule(NamedTuple):
    """The local derivative da/dh as written on paper.

    ``source`` says what it is computed from: ``"a"`` (the activation, as in
    ``a(1 - a)``) or ``"h"`` (the pre-activation); ``fn`` takes that value;
    ``substituted(s)`` writes the rule with the number ``s`` put in.
    """

    source: str
    formula: str
    latex: str
    fn: Callable[[jax.Array], jax.Array]
    substituted: Callable[[str], str]


class Activation(NamedTuple):
    """A hidden-layer activation with its hand-derived derivative and how it is written.

    Attributes:
      name: the name functions take (``activation="tanh"``).
      fn: ``a = fn(h)``, elementwise.
      grad: ``da/dh`` as a function of ``h``, derived by hand (not by ``jax.grad``).
      formula: ``a = f(h)`` as text.
      grad_formula: ``da/dh`` as text.
      student: the rule a student writes on paper (``a(1 - a)`` for the sigmoid).
    """

    name: str
    fn: Callable[[jax.Array], jax.Array]
    grad: Callable[[jax.Array], jax.Array]
    formula: str  # a = f(h)
    grad_formula: str  # da/dh
    student: StudentRule  # da/dh on paper


def _sigmoid_grad(h):
    # sigma(h) * sigma(-h) equals sigma(1 - sigma) but does not cancel to 0 when
    # sigma(h) rounds to 1: at h = 20 in float32, 1 - sigma(h) is 0, sigma(-h) is 2e-9.
    return jax.nn.sigmoid(h) * jax.nn.sigmoid(-h)


def _tanh_grad(h):
    t = jnp.tanh(h)
    return 1 - t * t


def _relu_grad(h):
    # The kink at 0 gets derivative 0, the convention jax.nn.relu also uses.
    return (h > 0).astype(h.dtype)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation(
            "sigmoid",
            jax.nn.sigmoid,
            _sigmoid_grad,
            "1 / (1 + exp(-h))",
            "sigma(h) * sigma(-h)",
            StudentRule(
                "a", "a(1 - a)", "a(1 - a)", lambda a: a * (1 - a), lambda s: f"{s}(1 - {s})"
            ),
        ),
        Activation(
            "tanh",
            jnp.tanh,
            _tanh_grad,
            "tanh(h)",
            "1 - tanh(h)^2",
            StudentRule("a", "1 - a^2", "1 - a^2", lambda a: 1 - a * a, lambda s: f"1 - ({s})^2"),
        ),
        Activation(
            "relu",
            jax.nn.relu,
            _relu_grad,
            "max(h, 0)",
            "1 if h > 0 else 0",
            StudentRule(
                "h",
                "1 if h > 0 else 0",
                r"\mathbb{1}[h > 0]",
                lambda h: (h > 0).astype(h.dtype),
                lambda s: f"[{s} > 0]",
            ),
        ),
        Activation(
            "identity",
            lambda h: h,
            jnp.ones_like,
            "h",
            "1",
            StudentRule("h", "1", "1", jnp.ones_like, lambda s: "1"),
        ),
    )
}
"""Every built-in hidden activation by name: ``"sigmoid"``, ``"tanh"``, ``"relu"``,
``"identity"``."""


def resolve_activations(activation: str | Sequence[str], n_hidden: int) -> tuple[Activation, ...]:
    """One [`Activation`][jaxbp.nn.Activation] per hidden layer.

    Args:
      activation: a name from [`ACTIVATIONS`][jaxbp.nn.ACTIVATIONS] for every hidden layer, or a
        sequence of ``n_hidden`` names, one per hidden layer.
      n_hidden: the number of hidden layers (``len(params) - 1``).
    """
    names = (activation,) * n_hidden if isinstance(activation, str) else activation
    if not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise TypeError(
            "activation must be a name such as 'sigmoid' or a tuple of names, one per hidden "
            f"layer; got {activation!r}"
        )
    names = tuple(names)
    if len(names) != n_hidden:
        raise ValueError(
            f"activation has {len(names)} names but the network has {n_hidden} hidden "
            f"layer(s); give one name for all, or exactly {n_hidden}"
        )
    out = []
    for n in names:
        if n not in ACTIVATIONS:
            raise ValueError(f"unknown activation {n!r}; expected one of {sorted(ACTIVATIONS)}")
        out.append(ACTIVATIONS[n])
    return tuple(out)


def activation_key(activation, n_hidden: int) -> str | tuple[str, ...]:
    """Validate ``activation`` for ``n_hidden`` layers and make it hashable (a str or a
    tuple of str), as a ``jit`` static argument must be."""
    resolve_activations(activation, n_hidden)
    return activation if isinstance(activation, str) else tuple(activation)
