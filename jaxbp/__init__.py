"""jaxbp: backpropagation three ways, and many small networks at once, in JAX.

Parameters are plain pytrees (a tuple of ``{"W", "b"}`` layers); every function
is pure, parameters first, configuration keyword-only.
"""

from ._activations import ACTIVATIONS, Activation
from ._batches import data_order_key, minibatch
from ._classroom import class_exercises, read_roster
from ._demo import seed_demo
from ._devices import SingleDeviceWarning, initialize_distributed, use_cpu_cores
from ._dtypes import Tolerance, tolerance
from ._exercises import Exercise, random_exercise, seed_exercise
from ._explain import Explanation, explain
from ._explain import Step as DerivationStep
from ._files import NetworkSpec, dumps_network, network_to_dict, read_claimed, read_network
from ._freeze import Frozen, freeze
from ._gradcheck import (
    GradCheck,
    GradComparison,
    LeafComparison,
    check_grads,
    compare_grads,
    numerical_grad,
)
from ._gradebook import ClassGrades, ScoreRule, StudentGrade, grade_class, write_class
from ._grading import DerivationReport, check_derivation
from ._grads import autodiff_grad
from ._losses import LOSSES, Loss
from ._manual import manual_grad, manual_value_and_grad
from ._many import train_many
from ._mlp import SCHEMES, Trace, bce_loss, compute_loss, forward, forward_trace, init_mlp, mse_loss
from ._params_io import load_params, save_params
from ._plots import pyplot
from ._report import add_report_section
from ._result import ManyResult
from ._runs import (
    Estimate,
    Run,
    estimate_sweep,
    finish_sweep,
    load_run,
    report_run,
    run_sweep,
)
from ._steps import step_names
from ._submissions import Submission, read_submissions
from ._sweep_config import SweepConfig
from ._tasks import TASKS, Task, load_task
from ._train import (
    History,
    Step,
    StepInfo,
    TrainResult,
    make_step,
    sgd,
    sgd_update,
    train,
)
from ._tree import Grads, Layer, Params, from_augmented, layer_sizes, to_augmented

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "SCHEMES",
    "TASKS",
    "Activation",
    "ClassGrades",
    "DerivationReport",
    "DerivationStep",
    "Estimate",
    "Exercise",
    "Explanation",
    "Frozen",
    "GradCheck",
    "GradComparison",
    "Grads",
    "History",
    "Layer",
    "LeafComparison",
    "Loss",
    "ManyResult",
    "NetworkSpec",
    "Params",
    "Run",
    "ScoreRule",
    "SingleDeviceWarning",
    "Step",
    "StepInfo",
    "StudentGrade",
    "Submission",
    "SweepConfig",
    "Task",
    "Tolerance",
    "Trace",
    "TrainResult",
    "__version__",
    "add_report_section",
    "autodiff_grad",
    "bce_loss",
    "check_derivation",
    "check_grads",
    "class_exercises",
    "compare_grads",
    "compute_loss",
    "data_order_key",
    "dumps_network",
    "estimate_sweep",
    "explain",
    "finish_sweep",
    "forward",
    "forward_trace",
    "freeze",
    "from_augmented",
    "grade_class",
    "init_mlp",
    "initialize_distributed",
    "layer_sizes",
    "load_params",
    "load_run",
    "load_task",
    "make_step",
    "manual_grad",
    "manual_value_and_grad",
    "minibatch",
    "mse_loss",
    "network_to_dict",
    "numerical_grad",
    "pyplot",
    "random_exercise",
    "read_claimed",
    "read_network",
    "read_roster",
    "read_submissions",
    "report_run",
    "run_sweep",
    "save_params",
    "seed_demo",
    "seed_exercise",
    "sgd",
    "sgd_update",
    "step_names",
    "to_augmented",
    "tolerance",
    "train",
    "train_many",
    "use_cpu_cores",
    "write_class",
]
