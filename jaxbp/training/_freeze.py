"""``freeze``: an optax transformation that leaves chosen parameters where they are.

Many tutorials keep the biases fixed, or train one layer at a time. ``freeze``
wraps any optimizer so that the chosen leaves of the parameter tree get a zero
update (and the optimizer keeps no state for them); the others update as the
optimizer says. It is a plain ``optax.GradientTransformation``, usable wherever
one is: [`jaxbp.make_step`][jaxbp.training.make_step], [`jaxbp.train`][jaxbp.training.train], and through a factory in
[`jaxbp.train_many`][jaxbp.many.train_many].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import optax

from ..util._checks import is_int

__all__ = ["Frozen", "freeze"]


def _mask(params, biases: bool, layers: tuple[int, ...]):
    """True for every leaf that is frozen."""
    n = len(params)
    return tuple(
        {"W": l in layers or l - n in layers, "b": biases or l in layers or l - n in layers}
        for l in range(n)
    )


def _check(biases, layers) -> tuple[int, ...]:
    if not isinstance(biases, bool):
        raise TypeError(f"biases must be True or False; got {biases!r}")
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a sequence of layer indices such as (0,); got {layers!r}")
    if not all(is_int(l) for l in layers):
        raise TypeError(f"layers must hold layer indices (integers); got {tuple(layers)!r}")
    return tuple(int(l) for l in layers)


def freeze(
    optimizer: optax.GradientTransformation, *, biases: bool = False, layers: Sequence[int] = ()
) -> optax.GradientTransformation:
    """``optimizer`` with the chosen parameters left untouched.

    Args:
      optimizer: any ``optax.GradientTransformation`` (or [`jaxbp.sgd`][jaxbp.training.sgd]).
      biases: freeze every bias ``b``.
      layers: indices of layers whose ``W`` and ``b`` are frozen (0 is the first
        layer; negative indices count from the output, -1 is the output layer).

    Returns:
      A ``GradientTransformation`` whose updates are 0 for the frozen leaves.

    Examples:
      >>> import jax, optax
      >>> from jaxbp import init_mlp, seed_exercise, train
      >>> ex = seed_exercise(dtype="float32")
      >>> r = train(ex.params, ex.x, ex.y, freeze(optax.sgd(0.5), biases=True), steps=5)
      >>> bool((r.params[0]["b"] == ex.params[0]["b"]).all()), bool((r.params[0]["W"] != ex.params[0]["W"]).any())
      (True, True)
    """
    layers = _check(biases, layers)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"optimizer must be an optax.GradientTransformation; got {type(optimizer).__name__}"
        )
    frozen = lambda params: _mask(params, biases, layers)
    free = lambda params: jax.tree_util.tree_map(lambda m: not m, frozen(params))
    return optax.chain(optax.masked(optimizer, free), optax.masked(optax.set_to_zero(), frozen))


@dataclasses.dataclass(frozen=True)
class Frozen:
    """``lr -> freeze(factory(lr), biases=..., layers=...)`` as a hashable factory, for
    [`jaxbp.train_many`][jaxbp.many.train_many] (whose optimizer is a factory of the learning rate)."""

    factory: Callable[[float], optax.GradientTransformation]
    biases: bool = False
    layers: tuple[int, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "layers", _check(self.biases, self.layers))

    def __call__(self, learning_rate):
        return freeze(self.factory(learning_rate), biases=self.biases, layers=self.layers)
