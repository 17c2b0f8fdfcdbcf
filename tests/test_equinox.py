"""Equinox modules through train_many: an eqx.nn.MLP and a small convolutional network.

The reference is the loop an Equinox user writes (``eqx.filter_value_and_grad``,
optax, ``eqx.apply_updates``) from the module ``make(fold_in(key, m))``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp.internal import record_fallbacks
from jaxbp.many._program import choose_member_last
from tests.helpers import assert_close, assert_tree_close

MOONS = jaxbp.load_task("moons", n=48, noise=0.2, seed=1)
DIGITS = jaxbp.load_task("digits")


def mlp(key):
    return eqx.nn.MLP(2, "scalar", 6, 2, activation=jax.nn.tanh, key=key, dtype=jnp.float64)


class SmallConv(eqx.Module):
    """One 3x3 convolution of the 8x8 image into 3 channels, ReLU, one logit."""

    conv: eqx.nn.Conv2d
    out: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.conv = eqx.nn.Conv2d(1, 3, 3, key=k1, dtype=jnp.float64)
        self.out = eqx.nn.Linear(3 * 6 * 6, "scalar", key=k2, dtype=jnp.float64)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.conv(x.reshape(1, 8, 8))).ravel())


def equinox_loop(module, x, y, optimizer, steps):
    @eqx.filter_value_and_grad
    def loss(m):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(jax.vmap(m)(x), y))

    state = optimizer.init(eqx.filter(module, eqx.is_inexact_array))
    losses = []
    for _ in range(steps):
        value, grads = loss(module)
        losses.append(value)
        updates, state = optimizer.update(grads, state, eqx.filter(module, eqx.is_inexact_array))
        module = eqx.apply_updates(module, updates)
    return module, np.asarray(losses)


@pytest.mark.standard_promotion  # optax.adam mixes its int32 step count with floats
def test_an_equinox_mlp_trains_as_the_equinox_loop_does():
    model = jaxbp.equinox_model(mlp)
    x, y = MOONS.x.astype(np.float64), MOONS.y.astype(np.float64)
    r = jaxbp.train_many(
        jax.random.key(5), model, x, y, n_inits=4, steps=20, learning_rate=0.05,
        init_scale=[1.0, 0.5], optimizer=optax.adam, keep_params=True, progress=False,
    )  # fmt: skip
    for m in (0, 6):
        module = mlp(jax.random.fold_in(jax.random.key(5), m))
        scale = r.init_scale[m]
        module = jax.tree_util.tree_map(
            lambda a, s=scale: a * s if eqx.is_inexact_array(a) else a, module
        )
        module, losses = equinox_loop(module, jnp.asarray(x), jnp.asarray(y), optax.adam(0.05), 20)
        assert_close(r.history[m], losses)
        trained, _ = eqx.partition(module, eqx.is_inexact_array)
        assert_tree_close(r.member(m)["params"], trained)


def test_a_convolutional_network_on_the_digits():
    x, y = DIGITS.x[:120].astype(np.float64), DIGITS.y[:120].astype(np.float64)
    model = jaxbp.equinox_model(SmallConv, name="conv")
    kw = dict(n_inits=3, steps=8, learning_rate=0.2, keep_params=True, progress=False)
    r = jaxbp.train_many(jax.random.key(6), model, x, y, **kw)
    module, losses = equinox_loop(
        SmallConv(jax.random.fold_in(jax.random.key(6), 2)), jnp.asarray(x), jnp.asarray(y),
        optax.sgd(0.2), 8,
    )  # fmt: skip
    assert_close(r.history[2], losses)
    assert_tree_close(r.member(2)["params"], eqx.partition(module, eqx.is_inexact_array)[0])
    # The convolution is more work than member-last is for: "auto" maps members with vmap;
    # forced member-last, the convolution falls back to jax.vmap's rule, counted.
    with record_fallbacks() as fallbacks:
        last = jaxbp.train_many(jax.random.key(6), model, x, y, batching="member_last", **kw)
    assert fallbacks["conv_general_dilated"] >= 1
    assert_close(last.final_loss, r.final_loss)


def test_auto_batching_follows_the_model_s_measured_work():
    from jaxbp.many._spec import model_footprint
    from jaxbp.training._objective import Objective

    def planned(model, x, y):
        params = jax.eval_shape(model.init, jax.random.key(0), 1.0)
        objective = Objective.checked(None, "bce", "autodiff", model=model)
        xs = jax.ShapeDtypeStruct(x.shape, jnp.float64)
        ys = jax.ShapeDtypeStruct(y.shape, jnp.float64)
        net = model_footprint(model, objective, params, xs, ys)
        return net, choose_member_last("auto", net, x.shape[0], "cpu")

    # 2-6-6-1: 12 + 36 + 6 weights, 13 biases: about 67 multiply-adds an example.
    net, last = planned(jaxbp.equinox_model(mlp), MOONS.x[:4], MOONS.y[:4])
    assert 54 <= net.work <= 2 * 67 and last
    # 36 positions x 3 channels x 9 taps, and 108 weights of the logit.
    net, last = planned(jaxbp.equinox_model(SmallConv), DIGITS.x[:64], DIGITS.y[:64])
    assert 36 * 3 * 9 + 108 <= net.work <= 2 * (36 * 3 * 10 + 109) and not last
