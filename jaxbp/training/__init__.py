"""Training one network: the seed's SGD rule and any optax optimizer, a jitted step,
the whole loop as one compiled program, minibatch order, frozen leaves.

May import: ``jaxbp.util``, ``jaxbp.nn``, ``jaxbp.grads``.
"""

from ._batches import data_order_key, minibatch
from ._freeze import Frozen, freeze
from ._step import Step, StepInfo, make_step, sgd, sgd_update
from ._train import History, TrainResult, train

__all__ = [
    "Frozen",
    "History",
    "Step",
    "StepInfo",
    "TrainResult",
    "data_order_key",
    "freeze",
    "make_step",
    "minibatch",
    "sgd",
    "sgd_update",
    "train",
]
