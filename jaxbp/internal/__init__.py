"""What jaxbp's experiments and benchmarks use that is not public API.

As equinox's ``internal``: these names may change or go without notice. They are
here so that nothing outside the package imports a private module.

May import every floor.
"""

from ..many._devices import small_loop_flags
from ..many._lastmap import record_fallbacks, vmap_last
from ..teach._steps import Problem, StepSpec, step_specs
from ..teach._textread import flat, mend
from ..training._batches import jax_shuffle
from ..util._dtypes import float64_mode
from ..util._files import write_atomic
from ..util._threefry import rolled_threefry

__all__ = [
    "Problem",
    "StepSpec",
    "flat",
    "float64_mode",
    "jax_shuffle",
    "mend",
    "record_fallbacks",
    "rolled_threefry",
    "small_loop_flags",
    "step_specs",
    "vmap_last",
    "write_atomic",
]
