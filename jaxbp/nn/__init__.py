"""Networks as pure functions: activations and losses (each with its derivative and the
formula a student writes), the MLP (init, forward pass, trace), models of any
network as two pure functions, parameter trees and parameter files.

May import: ``jaxbp.util``.
"""

from ._activations import ACTIVATIONS, Activation
from ._equinox import equinox_model
from ._losses import LOSSES, Loss
from ._mlp import (
    SCHEMES,
    Trace,
    bce_loss,
    compute_loss,
    forward,
    forward_trace,
    init_mlp,
    mse_loss,
)
from ._model import Model, mlp_model
from ._params_io import load_params, save_params
from ._tree import Grads, Layer, Params, from_augmented, layer_sizes, to_augmented

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "SCHEMES",
    "Activation",
    "Grads",
    "Layer",
    "Loss",
    "Model",
    "Params",
    "Trace",
    "bce_loss",
    "compute_loss",
    "equinox_model",
    "forward",
    "forward_trace",
    "from_augmented",
    "init_mlp",
    "layer_sizes",
    "load_params",
    "mlp_model",
    "mse_loss",
    "save_params",
    "to_augmented",
]
