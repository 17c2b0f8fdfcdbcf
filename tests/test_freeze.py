"""freeze: chosen leaves keep their values; the others train exactly as without freeze."""

import jax
import numpy as np
import optax
import pytest

import jaxbp
from tests.helpers import assert_close, random_batch


def problem():
    params = jaxbp.init_mlp(jax.random.key(2), (3, 4, 2, 1), scheme="normal", dtype=np.float64)
    return (params, *random_batch(2, params, 6))


@pytest.mark.parametrize(
    "biases, layers, frozen",
    [
        (True, (), {(0, "b"), (1, "b"), (2, "b")}),
        (False, (0,), {(0, "W"), (0, "b")}),
        (False, (-1,), {(2, "W"), (2, "b")}),
        (True, (1,), {(0, "b"), (1, "W"), (1, "b"), (2, "b")}),
    ],
)
def test_frozen_leaves_stay_and_the_rest_follow_the_seed_rule(biases, layers, frozen):
    params, x, y = problem()
    step = jaxbp.make_step(jaxbp.freeze(jaxbp.sgd(0.3), biases=biases, layers=layers))
    p, s = params, step.init(params)
    expected = params
    for _ in range(4):
        g = jaxbp.manual_grad(expected, x, y)
        # The seed's rule on the free leaves, nothing on the frozen ones.
        expected = tuple(
            {k: layer[k] if (i, k) in frozen else layer[k] - 0.3 * g[i][k] for k in ("W", "b")}
            for i, layer in enumerate(expected)
        )
        p, s, _ = step(p, s, x, y)
    for i, layer in enumerate(p):
        for k in ("W", "b"):
            if (i, k) in frozen:
                np.testing.assert_array_equal(layer[k], params[i][k])
            else:
                assert not np.array_equal(layer[k], params[i][k])
            assert_close(layer[k], expected[i][k])


@pytest.mark.standard_promotion  # optax's adam mixes int32 counts with floats
def test_freeze_in_train_and_train_many():
    params, x, y = problem()
    r = jaxbp.train(params, x, y, jaxbp.freeze(optax.adam(0.01), layers=(0,)), steps=10)
    np.testing.assert_array_equal(r.params[0]["W"], params[0]["W"])
    assert not np.array_equal(r.params[1]["W"], params[1]["W"])
    many = jaxbp.train_many(
        jax.random.key(0),
        (3, 4, 2, 1),
        x,
        y[:, 0],
        n_inits=3,
        steps=10,
        learning_rate=[0.01, 0.1],
        optimizer=jaxbp.Frozen(optax.adam, biases=True),
        keep_params=True,
        progress=False,
    )
    # Every member's biases are where its initialization put them.
    for i in range(many.n_members):
        start = jaxbp.init_mlp(
            jax.random.fold_in(jax.random.key(0), i),
            (3, 4, 2, 1),
            scheme="normal",
            scale=float(many.init_scale[i]),
        )
        for layer, first in zip(many.member(i)["params"], start):
            np.testing.assert_array_equal(layer["b"], first["b"])


def test_bad_freeze_arguments():
    with pytest.raises(TypeError, match="biases must be True or False"):
        jaxbp.freeze(optax.sgd(0.1), biases="yes")
    with pytest.raises(TypeError, match="layers must hold layer indices"):
        jaxbp.freeze(optax.sgd(0.1), layers=("first",))
    with pytest.raises(TypeError, match=r"optimizer must be an optax\.GradientTransformation"):
        jaxbp.freeze(0.1)


def test_freeze_in_a_sweep_config(tmp_path):
    text = (
        '[task]\nname = "xor"\n[network]\nsizes = [2, 3, 1]\n'
        "[optimizer]\nlearning_rates = [0.5]\nfreeze_biases = true\nfreeze_layers = [-1]\n"
        "[run]\nn_inits = 4\nsteps = 10\n"
    )
    path = tmp_path / "c.toml"
    path.write_text(text)
    config = jaxbp.SweepConfig.from_toml(path)
    assert config.freeze_biases and config.freeze_layers == (-1,)
    again = tmp_path / "again.toml"
    again.write_text(config.to_toml())
    assert jaxbp.SweepConfig.from_toml(again) == config
    task = jaxbp.load_task("xor")
    r = jaxbp.train_many(
        jax.random.key(0),
        (2, 3, 1),
        task.x,
        task.y,
        keep_params=True,
        **config.train_kwargs(task),
    )
    start = jaxbp.init_mlp(
        jax.random.fold_in(jax.random.key(0), 0), (2, 3, 1), scheme="normal", dtype="float32"
    )
    p = r.member(0)["params"]
    np.testing.assert_array_equal(p[1]["W"], start[1]["W"])
    np.testing.assert_array_equal(p[0]["b"], start[0]["b"])
    assert not np.array_equal(p[0]["W"], start[0]["W"])
    path.write_text(text.replace("[-1]", '["last"]'))
    with pytest.raises(ValueError, match="freeze_layers must be a list of layer indices"):
        jaxbp.SweepConfig.from_toml(path)
