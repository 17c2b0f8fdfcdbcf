"""JAX's dtype rules: dtype=None follows the input, else JAX's default float; never narrow."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from tests.helpers import assert_close, without_x64

X = np.array([[1.0, 2.0, 2.0]])
Y = np.array([1.0])
W11 = np.reshape([1.0, -1, 1, -1, -2, 2, 3, -2], (4, 2))
W2 = np.array([-1.0, 1, 1])


def dtypes(tree):
    return {leaf.dtype for leaf in jax.tree_util.tree_leaves(tree)}


def test_defaults_follow_the_inputs_or_jax_default_float():
    # The tests run with jax_enable_x64 on: JAX's default float is float64.
    f64 = np.dtype("float64")
    assert dtypes(jaxbp.from_augmented([W11, W2])) == {f64}
    assert dtypes(jaxbp.from_augmented([W11.astype(np.float32), W2.astype(np.float32)])) == {
        np.dtype("float32")
    }
    assert dtypes(jaxbp.from_augmented([[[1, 2], [3, 4]]])) == {f64}  # integers: default float
    assert dtypes(jaxbp.init_mlp(jax.random.key(0), (3, 2, 1))) == {f64}
    assert dtypes(jaxbp.seed_exercise().params) == {f64}
    task = jaxbp.load_task("parity", bits=3)
    assert task.x.dtype == f64 and task.y.dtype == f64
    r = jaxbp.train_many(
        jax.random.key(0), (3, 2, 1), task.x, task.y, n_inits=2, steps=4, progress=False
    )
    assert r.final_loss.dtype == f64 and r.history.dtype == f64
    r32 = jaxbp.train_many(
        jax.random.key(0),
        (3, 2, 1),
        task.x,
        task.y,
        n_inits=2,
        steps=4,
        dtype="float32",
        keep_params=True,
        progress=False,
    )
    assert r32.final_loss.dtype == np.float32 and dtypes(r32.params) == {np.dtype("float32")}


def test_a_wider_input_is_never_narrowed():
    p32 = jaxbp.from_augmented([W11, W2], dtype="float32")
    p64 = jaxbp.from_augmented([W11, W2], dtype="float64")
    x = X + 1e-9  # a difference float32 cannot hold
    o = jaxbp.forward(p32, x)
    assert o.dtype == jnp.float64
    assert_close(o, jaxbp.forward(p64, x), kind="ulps")
    # Gradients keep the parameters' dtype (as jax.grad's do), computed in the wider one.
    for grad in (jaxbp.autodiff_grad, jaxbp.manual_grad):
        g = grad(p32, x, Y)
        assert dtypes(g) == {np.dtype("float32")}
        assert_close(g[0]["W"], grad(p64, x, Y)[0]["W"], dtype=np.float32)
    # A narrower input takes the parameters' dtype.
    assert jaxbp.forward(p64, X.astype(np.float32)).dtype == jnp.float64


def test_without_x64_the_default_is_float32():
    with without_x64():
        p = jaxbp.init_mlp(jax.random.key(0), (3, 2, 1))
        q = jaxbp.from_augmented([np.ones((4, 2)), np.ones(3)])
        r = jaxbp.train_many(
            jax.random.key(0), (3, 2, 1), np.ones((2, 3)), np.ones(2), n_inits=2, steps=2,
            progress=False,
        )  # fmt: skip
    assert (p[0]["W"].dtype, q[0]["W"].dtype, r.final_loss.dtype) == (np.float32,) * 3


@pytest.mark.parametrize("n", [np.int64(2), np.int32(3)])
def test_numpy_integers_are_accepted_where_ints_are(n):
    task = jaxbp.load_task("xor")
    r = jaxbp.train_many(
        jax.random.key(0),
        (np.int64(2), 2, 1),
        task.x,
        task.y,
        n_inits=n,
        steps=np.int64(4),
        record_every=np.int64(2),
        chunk_size=np.int64(4),
        progress=False,
    )
    assert r.n_members == int(n)
    p = jaxbp.init_mlp(jax.random.key(0), (2, 2, 1))
    assert jaxbp.train(p, task.x, task.y, 0.5, steps=np.int64(3)).history.loss.shape == (3,)
    ex = jaxbp.random_exercise(np.int64(1), (2, 2, 1), batch=np.int64(2))
    assert ex.x.shape == (2, 2)
