"""JAX's threefry hash lowered as straight-line code while jaxbp compiles its programs on CPU.

Every ``jax.random`` draw of a threefry key computes the threefry2x32 hash. JAX lowers
that hash in two ways that compute the same function, so the same bits: a rolled loop
of five iterations (its CPU rule) and straight-line code (its rule for every other
platform). On CPU, XLA compiles the straight-line form faster: a seed-network
``train_many`` compiles in 1.75 s instead of 2.78 s (docs/benchmarks.md, "Compiling the
random draws"). JAX has since made it the CPU default too (jax-ml/jax#37872).

``unrolled_threefry()`` makes the programs compiled inside it take the straight-line
form, by setting JAX's CPU rule aside for that time: the CPU then gets the rule every
other platform gets. Programs compiled outside it, a user's own included, are left as
JAX makes them. Where this JAX has no separate CPU rule (or keeps its rules elsewhere),
it changes nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import threading

from jax.interpreters import mlir

__all__ = ["rolled_threefry", "unrolled_threefry"]


def _rolled_cpu_rule():
    """``(primitive, CPU rules table)`` where this JAX lowers threefry2x32 rolled on CPU, else None."""
    tables = getattr(mlir, "_platform_specific_lowerings", None)
    generic = getattr(mlir, "_lowerings", {})
    for name in ("jax._src.random.threefry2x32", "jax._src.prng"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        prim = getattr(module, "threefry2x32_p", None)
        rolled = getattr(module, "_threefry2x32_cpu_lowering_rule", None)
        if prim is None or rolled is None or tables is None or prim not in generic:
            return None
        entry = tables["cpu"].get(prim)
        return (prim, tables["cpu"]) if entry is not None and entry.rule is rolled else None
    return None


_ROLLED = _rolled_cpu_rule()
_LOCK = threading.RLock()


@contextlib.contextmanager
def unrolled_threefry():
    """Within it, programs that compile for CPU lower threefry2x32 as straight-line code.

    Re-entrant and thread-safe: one thread at a time holds the CPU rule aside, and the
    outermost exit puts it back.
    """
    if _ROLLED is None:
        yield
        return
    prim, table = _ROLLED
    with _LOCK:
        entry = table.pop(prim, None)
        try:
            yield
        finally:
            if entry is not None:
                table[prim] = entry


@contextlib.contextmanager
def rolled_threefry():
    """Within it, ``unrolled_threefry`` changes nothing: programs compile as JAX lowers
    them, for comparisons (experiments/bench_compile.py)."""
    global _ROLLED
    saved, _ROLLED = _ROLLED, None
    try:
        yield
    finally:
        _ROLLED = saved
