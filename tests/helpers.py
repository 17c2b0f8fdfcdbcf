"""The test suite's one tolerance policy: jaxbp.tolerance(dtype, kind=...), for arrays and trees."""

import contextlib
import fcntl
import importlib.util
import os
import shutil
import socket
import subprocess
from pathlib import Path

import jax
import numpy as np

import jaxbp


def _float_dtype(a):
    dtype = getattr(a, "dtype", None)
    if dtype is not None and np.issubdtype(dtype, np.floating):
        return np.dtype(dtype)
    return None


def assert_close(actual, expected, *, kind="reorder", dtype=None, err_msg=""):
    """Assert two arrays (or numbers) are equal within ``jaxbp.tolerance(dtype, kind=kind)``.

    ``dtype`` defaults to the coarser floating dtype of the two (float64 for plain numbers).
    """
    dtypes = (
        [dtype] if dtype is not None else [d for d in map(_float_dtype, (actual, expected)) if d]
    )
    tol = jaxbp.tolerance(*(dtypes or [np.float64]), kind=kind)
    np.testing.assert_allclose(
        np.asarray(actual, np.float64),
        np.asarray(expected, np.float64),
        rtol=tol.rtol,
        atol=tol.atol,
        err_msg=err_msg,
    )


def assert_tree_close(actual, expected, *, kind="reorder", dtype=None, err_msg=""):
    """Assert two trees are equal leaf by leaf within the library's tolerance (see
    :func:`assert_close`); ``dtype`` defaults to the coarsest of all leaves."""
    a_leaves, a_def = jax.tree_util.tree_flatten(actual)
    e_leaves, e_def = jax.tree_util.tree_flatten(expected)
    assert a_def == e_def, f"tree structures differ: {a_def} vs {e_def}"
    if dtype is None:
        found = [d for d in map(_float_dtype, a_leaves + e_leaves) if d]
        dtype = min(found, key=lambda d: d.itemsize) if found else None
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        assert_close(a, e, kind=kind, dtype=dtype, err_msg=f"leaf {i}: {err_msg}")


def assert_tree_equal(actual, expected):
    """Bit-for-bit equality of two trees."""
    a_leaves, a_def = jax.tree_util.tree_flatten(actual)
    e_leaves, e_def = jax.tree_util.tree_flatten(expected)
    assert a_def == e_def, f"tree structures differ: {a_def} vs {e_def}"
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e), err_msg=f"leaf {i}")


def random_batch(seed, params, batch, *, labels="binary"):
    """Inputs ~ N(0, 1) and labels for a network: binary, soft in (0, 1), real-valued, or
    class indices (``"classes"``, for softmax cross-entropy)."""
    rng = np.random.default_rng(seed)
    n_in = params[0]["W"].shape[0]
    n_out = params[-1]["W"].shape[1]
    dtype = params[0]["W"].dtype
    x = rng.normal(size=(batch, n_in)).astype(dtype)
    if labels == "binary":
        y = (rng.uniform(size=(batch, n_out)) < 0.5).astype(dtype)
    elif labels == "classes":  # one class index per example
        y = rng.integers(0, n_out, size=batch)
    elif labels == "soft":
        y = rng.uniform(size=(batch, n_out)).astype(dtype)
    else:
        y = rng.normal(size=(batch, n_out)).astype(dtype)
    return x, y


def free_port() -> int:
    """A free TCP port on loopback (for a jax.distributed coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(commands, envs, *, timeout):
    """Start every command at once (with its environment), wait for all; return their
    ``(stdout, stderr)``, asserting each exited 0 (showing the stderr tails if not)."""
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd, env in zip(commands, envs, strict=True)
    ]
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    return outs


@contextlib.contextmanager
def without_x64():
    """JAX's default 32-bit floats within the block, as in a process that has not turned
    on ``jax_enable_x64`` (the test run has); the setting before it is restored after."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def load_experiment(name: str):
    """A script of ``experiments/`` as a module (they are not a package)."""
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location(name, root / "experiments" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder ``build(path)`` writes at ``path``, built once per test run: the xdist
    workers share it (the first to ask builds it under a lock, the others wait and
    read it), so a reference sweep is computed once, not once per worker. Its users
    only read it."""
    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = root.parent  # the run's folder, above each worker's own
    out, done = root / name / "run", root / f"{name}.built"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(out.parent, ignore_errors=True)  # a build that failed part way
            out.parent.mkdir()
            build(out)
            done.touch()
    return out
