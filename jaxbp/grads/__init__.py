"""Gradients three ways and their comparison: the chain rule by hand, ``jax.grad``,
central finite differences, and a per-leaf comparison that explains a difference.

May import: ``jaxbp.util``, ``jaxbp.nn``.
"""

from ._autodiff import autodiff_grad
from ._check import (
    GradCheck,
    GradComparison,
    LeafComparison,
    check_grads,
    compare_grads,
    numerical_grad,
)
from ._manual import manual_grad, manual_value_and_grad

__all__ = [
    "GradCheck",
    "GradComparison",
    "LeafComparison",
    "autodiff_grad",
    "check_grads",
    "compare_grads",
    "manual_grad",
    "manual_value_and_grad",
    "numerical_grad",
]
