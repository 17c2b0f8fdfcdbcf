"""Parameter trees: the augmented layout, and initialisation schemes."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from tests.helpers import assert_close


def test_from_augmented_reads_the_seed_layout():
    W11 = np.reshape([1, -1, 1, -1, -2, 2, 3, -2], (4, 2))
    params = jaxbp.from_augmented([W11, [-1, 1, 1]], dtype=np.float64)
    np.testing.assert_array_equal(params[0]["b"], [1, -1])
    np.testing.assert_array_equal(params[0]["W"], [[1, -1], [-2, 2], [3, -2]])
    np.testing.assert_array_equal(params[1]["W"], [[1], [1]])
    np.testing.assert_array_equal(params[1]["b"], [-1])
    back = jaxbp.to_augmented(params)
    np.testing.assert_array_equal(back[0], W11)
    np.testing.assert_array_equal(back[1][:, 0], [-1, 1, 1])
    assert jaxbp.layer_sizes(params) == (3, 2, 1)


@pytest.mark.parametrize("scheme", sorted(jaxbp.SCHEMES))
def test_init_is_deterministic_and_scaled(scheme):
    key = jax.random.key(42)
    a = jaxbp.init_mlp(key, (3, 5, 2), scheme=scheme, dtype=np.float64)
    b = jaxbp.init_mlp(key, (3, 5, 2), scheme=scheme, dtype=np.float64)
    c = jaxbp.init_mlp(key, (3, 5, 2), scheme=scheme, scale=2.5, dtype=np.float64)
    d = jaxbp.init_mlp(jax.random.key(43), (3, 5, 2), scheme=scheme, dtype=np.float64)
    for la, lb, lc, ld in zip(a, b, c, d):
        np.testing.assert_array_equal(la["W"], lb["W"])
        assert_close(lc["W"], 2.5 * la["W"], kind="ulps")
        assert_close(lc["b"], 2.5 * la["b"], kind="ulps")
        assert not np.array_equal(la["W"], ld["W"])


@pytest.mark.parametrize(
    "scheme, std, bias_random",
    [
        ("normal", lambda i, o: 1.0, True),
        ("uniform", lambda i, o: 1 / math.sqrt(3), True),
        ("glorot_normal", lambda i, o: math.sqrt(2 / (i + o)), False),
        ("glorot_uniform", lambda i, o: math.sqrt(2 / (i + o)), False),
        ("he_normal", lambda i, o: math.sqrt(2 / i), False),
        ("lecun_normal", lambda i, o: math.sqrt(1 / i), False),
    ],
)
def test_init_statistics(scheme, std, bias_random):
    sizes = (300, 200, 100)
    params = jaxbp.init_mlp(jax.random.key(0), sizes, scheme=scheme, scale=1.5, dtype=np.float64)
    for layer, n_in, n_out in zip(params, sizes[:-1], sizes[1:]):
        W = np.asarray(layer["W"])
        assert W.shape == (n_in, n_out)
        # The sample std of n >= 20000 draws is within 2% of the truth with overwhelming probability.
        assert W.std() == pytest.approx(1.5 * std(n_in, n_out), rel=0.02)
        assert abs(W.mean()) < 0.05 * 1.5 * std(n_in, n_out)
        if scheme == "uniform":
            assert np.abs(W).max() <= 1.5
        assert bool(np.any(layer["b"] != 0)) == bias_random


def test_init_under_vmap_with_traced_scale():
    keys = jax.random.split(jax.random.key(0), 3)
    scales = np.array([0.5, 1.0, 2.0])
    many = jax.vmap(lambda k, s: jaxbp.init_mlp(k, (3, 2, 1), scheme="normal", scale=s))(
        keys, scales
    )
    for i in range(3):
        one = jaxbp.init_mlp(keys[i], (3, 2, 1), scheme="normal", scale=float(scales[i]))
        assert_close(many[0]["W"][i], one[0]["W"])


def test_init_dtype():
    # dtype=None follows JAX: its default float, float64 here (the tests run with x64 on).
    default = jaxbp.init_mlp(jax.random.key(0), (2, 3, 1))
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(default)} == {jnp.asarray(0.0).dtype}
    p32 = jaxbp.init_mlp(jax.random.key(0), (2, 3, 1), dtype="float32")
    p64 = jaxbp.init_mlp(jax.random.key(0), (2, 3, 1), dtype="float64")
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(p32)} == {np.dtype("float32")}
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(p64)} == {np.dtype("float64")}
