"""The test suite's one tolerance policy: jaxbp.tolerance(dtype), applied leaf by leaf."""

import jax
import numpy as np

import jaxbp


def assert_tree_close(actual, expected, *, dtype=None, rtol=None, atol=None, err_msg=""):
    """Assert two trees are equal within the library's tolerance for ``dtype``.

    ``dtype`` defaults to the coarser of the two trees' dtypes.
    """
    a_leaves, a_def = jax.tree_util.tree_flatten(actual)
    e_leaves, e_def = jax.tree_util.tree_flatten(expected)
    assert a_def == e_def, f"tree structures differ: {a_def} vs {e_def}"
    dtypes = (
        [dtype]
        if dtype is not None
        else [leaf.dtype for leaf in a_leaves + e_leaves if hasattr(leaf, "dtype")]
    )
    tol = jaxbp.tolerance(*dtypes)
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        np.testing.assert_allclose(
            np.asarray(a, np.float64),
            np.asarray(e, np.float64),
            rtol=tol.rtol if rtol is None else rtol,
            atol=tol.atol if atol is None else atol,
            err_msg=f"leaf {i}: {err_msg}",
        )


def assert_tree_equal(actual, expected):
    """Bit-for-bit equality of two trees."""
    a_leaves, a_def = jax.tree_util.tree_flatten(actual)
    e_leaves, e_def = jax.tree_util.tree_flatten(expected)
    assert a_def == e_def, f"tree structures differ: {a_def} vs {e_def}"
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e), err_msg=f"leaf {i}")


def random_batch(seed, params, batch, *, labels="binary"):
    """Inputs ~ N(0, 1) and labels for a network: binary, soft in (0, 1), or real-valued."""
    rng = np.random.default_rng(seed)
    n_in = params[0]["W"].shape[0]
    n_out = params[-1]["W"].shape[1]
    dtype = params[0]["W"].dtype
    x = rng.normal(size=(batch, n_in)).astype(dtype)
    if labels == "binary":
        y = (rng.uniform(size=(batch, n_out)) < 0.5).astype(dtype)
    elif labels == "soft":
        y = rng.uniform(size=(batch, n_out)).astype(dtype)
    else:
        y = rng.normal(size=(batch, n_out)).astype(dtype)
    return x, y
