"""The members' final parameters in a run folder's chunk files, for the decision figure.

Sweeps of the built-in MLP on 2 or 3 input features draw the decision surfaces of a
few members, picked once every member has finished. Their chunk files keep every
member's final parameters (arrays ``params.0``, ``params.1``, ...: the leaves of
``train_many``'s ``params``, member first, in ``jax.tree_util`` order) when a member
has at most ``MAX_KEPT`` of them, so the figure reads the members it shows. A
folder without them (a larger network, a model of one's own, an older jaxbp) has
them trained again, to the same bits.

Below ``_runs`` and ``_report``, which both read the chunk files through it.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from ..many._widths import sizes_at, trim, widest
from ..nn._mlp import n_init_draws
from ._config import SweepConfig

__all__ = [
    "MAX_KEPT",
    "chunk_range",
    "draws_decision_surfaces",
    "keeps_params",
    "kept_params",
    "n_kept",
    "params_arrays",
]

# Numbers per member (weights and biases) up to which the chunk files keep them: a
# 3-16-1 network's 81, at most 512 bytes a member in float32.
MAX_KEPT = 128
PREFIX = "params."


def chunk_range(path: Path) -> tuple[int, int]:
    """The members ``[start, stop)`` a chunk file ``members-START-STOP.npz`` holds."""
    start, stop = (int(v) for v in path.stem.split("-")[1:])
    return start, stop


def draws_decision_surfaces(config: SweepConfig, task) -> bool:
    """Whether the report shows decision surfaces: tasks of 2 or 3 inputs (2 for a model
    of one's own)."""
    return task.n_features in ((2, 3) if config.model is None else (2,))


def n_kept(config: SweepConfig, task) -> int:
    """Numbers per member the chunk files keep (0 when they keep no parameters)."""
    if config.model is not None or not draws_decision_surfaces(config, task):
        return 0
    sizes = config.sizes if config.widths is None else widest(config.sizes, config.widths)
    n = n_init_draws(sizes)  # at the widest width, as train_many holds every member
    return n if n <= MAX_KEPT else 0


def keeps_params(config: SweepConfig, task) -> bool:
    """Whether this sweep's chunk files keep every member's final parameters."""
    return n_kept(config, task) > 0


def params_arrays(params) -> dict[str, np.ndarray]:
    """``train_many``'s ``params`` as the chunk file's arrays."""
    return {f"{PREFIX}{i}": np.asarray(a) for i, a in enumerate(jax.tree_util.tree_leaves(params))}


def kept_params(chunks: Path, config: SweepConfig, members, widths) -> list | None:
    """The final parameters of ``members`` (each at its hidden width in ``widths``, None
    without a width axis) as the chunk files keep them; None if a chunk keeps none."""
    if config.model is not None:
        return None
    files = [(chunk_range(p), p) for p in chunks.glob("members-*.npz")]
    layers = tuple({"W": 0, "b": 0} for _ in range(len(config.sizes) - 1))
    treedef = jax.tree_util.tree_structure(layers)
    names = [f"{PREFIX}{i}" for i in range(treedef.num_leaves)]
    out = []
    for m, width in zip(members, widths, strict=True):
        (start, _), path = next(f for f in files if f[0][0] <= m < f[0][1])
        with np.load(path, allow_pickle=False) as z:
            if not all(n in z for n in names):
                return None
            params = treedef.unflatten([z[n][m - start] for n in names])
        out.append(params if width is None else trim(params, sizes_at(config.sizes, width)))
    return out
