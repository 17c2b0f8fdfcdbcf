"""Bad input gets a clear error at the public edge: which argument, what was expected, what was given."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp

P = jaxbp.from_augmented([np.ones((4, 2)), np.ones((3, 1))], dtype=np.float64)
X = np.ones((5, 3))
Y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])

GRAD_FNS = [jaxbp.autodiff_grad, jaxbp.manual_grad, jaxbp.numerical_grad, jaxbp.bce_loss]


@pytest.mark.parametrize("fn", GRAD_FNS)
@pytest.mark.parametrize(
    "x, y, match",
    [
        (
            np.ones((5, 4)),
            Y,
            r"x must have shape \(batch, 3\) to match params\[0\]\['W'\] of shape \(3, 2\); got shape \(5, 4\)",
        ),
        (np.ones(3), Y[:1], r"got shape \(3,\); for one example use x\[None, :\]"),
        (X, Y[:4], r"y must have shape \(5,\) or \(5, 1\).*got shape \(4,\)"),
        (X, np.ones((5, 2)), r"got shape \(5, 2\)"),
        (np.where(np.eye(5, 3) > 0, np.nan, 1.0), Y, r"x must be finite; x\[0, 0\] is nan"),
        (X, np.array([0.0, 1.0, np.inf, 0.0, 1.0]), r"y must be finite"),
        (
            X,
            np.array([0.0, 1.0, 2.0, 0.0, -1.0]),
            r"y must hold labels in \[0, 1\] for loss 'bce'; got values from -1 to 2",
        ),
        (np.array([["a", "b", "c"]]), Y[:1], r"x must be a numeric array; got dtype <U1"),
    ],
)
def test_bad_batches(fn, x, y, match):
    with pytest.raises(ValueError if "numeric" not in match else TypeError, match=match):
        fn(P, x, y)


def test_mse_linear_accepts_any_real_label():
    jaxbp.compute_loss(P, X, np.array([-3.0, 4.0, 0.5, 0.0, 9.0]), loss="mse_linear")
    with pytest.raises(ValueError, match="labels in"):
        jaxbp.mse_loss(P, X, np.array([-3.0, 4.0, 0.5, 0.0, 9.0]))


@pytest.mark.parametrize(
    "params, exc, match",
    [
        (
            {"W": np.ones((3, 1)), "b": np.ones(1)},
            TypeError,
            r"params must be a tuple of layers.*got dict",
        ),
        ((), ValueError, r"params must hold at least one layer"),
        (
            ({"W": jnp.ones((3, 1))},),
            TypeError,
            r"params\[0\] must be a dict with exactly the keys 'W' and 'b'; got \['W'\]",
        ),
        (
            ({"W": jnp.ones((3, 1)), "b": jnp.ones((1, 1))},),
            ValueError,
            r"params\[0\]\['b'\] must have shape \(n_out,\)",
        ),
        (
            ({"W": jnp.ones((3, 2)), "b": jnp.ones(3)},),
            ValueError,
            r"params\[0\]\['b'\] must have shape \(2,\) to match",
        ),
        (
            ({"W": jnp.ones((3, 2)), "b": jnp.ones(2)}, {"W": jnp.ones((4, 1)), "b": jnp.ones(1)}),
            ValueError,
            r"params\[1\]\['W'\] must have 2 rows, the width of layer 0; got shape \(4, 1\)",
        ),
        (
            ({"W": jnp.ones((3, 1), jnp.int32), "b": jnp.ones(1)},),
            TypeError,
            r"params\[0\]\['W'\] must be floating point",
        ),
        (
            ({"W": jnp.ones((3, 1), jnp.float32), "b": jnp.ones(1, jnp.float64)},),
            TypeError,
            r"params\[0\]\['b'\] has dtype float64 but earlier leaves have float32",
        ),
        (
            ({"W": [[1.0], [1.0], [1.0]], "b": jnp.ones(1)},),
            TypeError,
            r"params\[0\]\['W'\] must be an array; got list",
        ),
    ],
)
def test_bad_params(params, exc, match):
    with pytest.raises(exc, match=match):
        jaxbp.forward(params, X)
    with pytest.raises(exc, match=match):
        jaxbp.manual_grad(params, X, Y)


def test_unknown_names():
    with pytest.raises(
        ValueError,
        match=r"unknown activation 'softsign'; expected one of \['identity', 'relu', 'sigmoid', 'tanh'\]",
    ):
        jaxbp.forward(P, X, activation="softsign")
    with pytest.raises(
        ValueError, match=r"activation has 2 names but the network has 1 hidden layer"
    ):
        jaxbp.forward(P, X, activation=("tanh", "relu"))
    with pytest.raises(
        ValueError,
        match=r"unknown loss 'hinge'; expected one of \['bce', 'half_mse', 'half_mse_linear', 'mse', 'mse_linear', 'softmax_ce'\]",
    ):
        jaxbp.autodiff_grad(P, X, Y, loss="hinge")
    with pytest.raises(ValueError, match=r"unknown scheme 'xavier'; expected one of"):
        jaxbp.init_mlp(jax.random.key(0), (3, 1), scheme="xavier")
    with pytest.raises(
        ValueError, match=r"grad must be one of \('autodiff', 'manual'\); got 'symbolic'"
    ):
        jaxbp.make_step(0.1, grad="symbolic")
    with pytest.raises(ValueError, match=r"grad must be one of"):
        jaxbp.train(P, X, Y, 0.1, steps=3, grad="symbolic")


@pytest.mark.parametrize(
    "sizes, match",
    [
        ((), r"sizes must name at least an input and an output width"),
        ((3,), r"sizes must name at least an input and an output width"),
        ((3, 0, 1), r"sizes must be positive integers, such as \(3, 2, 1\); got \(3, 0, 1\)"),
        ((3, -2, 1), r"sizes must be positive integers"),
        ((3, 2.5, 1), r"sizes must be positive integers"),
    ],
)
def test_bad_sizes(sizes, match):
    with pytest.raises(ValueError, match=match):
        jaxbp.init_mlp(jax.random.key(0), sizes)


def test_bad_init_arguments():
    with pytest.raises(TypeError, match=r"sizes must be a sequence of layer widths"):
        jaxbp.init_mlp(jax.random.key(0), 3)
    with pytest.raises(
        TypeError, match=r"key must be a JAX PRNG key such as jax.random.key\(0\); got int"
    ):
        jaxbp.init_mlp(0, (3, 1))
    for scale in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"scale must be a positive finite number"):
            jaxbp.init_mlp(jax.random.key(0), (3, 1), scale=scale)
    with pytest.raises(
        TypeError, match=r"dtype must be a floating dtype such as 'float32'; got int32"
    ):
        jaxbp.init_mlp(jax.random.key(0), (3, 1), dtype=np.int32)


def _x64(on: bool):
    """``jax.enable_x64(on)``; ``jax.experimental``'s context managers on JAX before 0.8."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(on)
    from jax.experimental import disable_x64, enable_x64

    return enable_x64() if on else disable_x64()


def test_float64_without_x64_says_how_to_enable_it():
    with _x64(False):
        with pytest.raises(ValueError, match=r"jax.config.update\('jax_enable_x64', True\)"):
            jaxbp.init_mlp(jax.random.key(0), (3, 1), dtype="float64")


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_learning_rates(lr):
    g = jaxbp.manual_grad(P, X, Y)
    with pytest.raises(ValueError, match=r"learning_rate must be a positive finite number"):
        jaxbp.sgd_update(P, g, lr)
    with pytest.raises(ValueError, match=r"learning_rate must be a positive finite number"):
        jaxbp.make_step(lr)
    with pytest.raises(
        ValueError,
        match=r"optimizer \(a learning rate for plain SGD\) must be a positive finite number",
    ):
        jaxbp.train(P, X, Y, lr, steps=2)


def test_bad_optimizer_and_steps():
    with pytest.raises(
        TypeError, match=r"optimizer must be an optax.GradientTransformation.*got str"
    ):
        jaxbp.make_step("adam")
    with pytest.raises(TypeError, match=r"learning_rate must be a positive number; got '0.1'"):
        jaxbp.sgd_update(P, P, "0.1")
    for steps in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=r"steps must be a positive integer"):
            jaxbp.train(P, X, Y, optax.sgd(0.1), steps=steps)


def test_grads_of_the_wrong_structure():
    with pytest.raises(ValueError, match=r"grads must have the same tree structure as params"):
        jaxbp.sgd_update(P, P[:1], 0.1)


def test_from_augmented_bad_input():
    with pytest.raises(
        ValueError, match=r"matrices\[1\] must have shape \(n_in \+ 1, n_out\).*got shape \(1, 1\)"
    ):
        jaxbp.from_augmented([np.ones((4, 2)), np.ones((1, 1))])
    with pytest.raises(TypeError, match=r"matrices must be a non-empty sequence"):
        jaxbp.from_augmented([])
    with pytest.raises(
        ValueError,
        match=r"matrices\[1\] must have 3 rows \(the bias row, then one per unit of matrices\[0\], which has 2 columns\); got shape \(4, 1\)",
    ):
        jaxbp.from_augmented([np.ones((4, 2)), np.ones((4, 1))])


def test_numerical_grad_bad_eps():
    with pytest.raises(ValueError, match=r"eps must be a positive finite number; got 0"):
        jaxbp.numerical_grad(P, X, Y, eps=0)
