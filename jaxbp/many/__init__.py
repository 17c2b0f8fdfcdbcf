"""Many networks at once: the grid of members, the plan (block width, chunks, devices),
the single-network program batched over members (``jax.vmap`` or member-last) and its
measured tuning, devices and hosts, the per-member results.

May import: ``jaxbp.util``, ``jaxbp.nn``, ``jaxbp.grads``, ``jaxbp.training``.
"""

from ._devices import SingleDeviceWarning, initialize_distributed, use_cpu_cores
from ._many import train_many
from ._result import ManyResult

__all__ = [
    "ManyResult",
    "SingleDeviceWarning",
    "initialize_distributed",
    "train_many",
    "use_cpu_cores",
]
