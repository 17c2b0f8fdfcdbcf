"""Networks of one's own: a Model (init, apply) through train, make_step and train_many.

The reference for a member is the plain optax loop a user would write for the model,
not jaxbp's own ``train``; the model is one jaxbp does not ship (a residual MLP).
"""

import json
import os
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp.internal import record_fallbacks
from jaxbp.many._spec import footprint, model_footprint
from jaxbp.training._objective import Objective
from tests.helpers import assert_close, assert_tree_close, free_port, run_processes

TASK = jaxbp.load_task("moons", n=48, noise=0.2, seed=1)
X, Y = TASK.x.astype(np.float64), TASK.y.astype(np.float64)


def res_init(key, scale):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "inp": scale * jax.random.normal(k1, (2, 4), jnp.float64),
        "res": scale * jax.random.normal(k2, (4, 4), jnp.float64),
        "out": scale * jax.random.normal(k3, (4,), jnp.float64),
        "b": jnp.zeros((), jnp.float64),
    }


def res_apply(params, x):
    h = jnp.tanh(x @ params["inp"])
    h = h + jnp.tanh(h @ params["res"])
    return h @ params["out"] + params["b"]


RES = jaxbp.Model(res_init, res_apply, name="residual")


def user_loss(params, x, y):
    return jnp.mean(optax.sigmoid_binary_cross_entropy(res_apply(params, x), y))


def hand_loop(params, optimizer, steps, x=X, y=Y):
    """The loop a user writes: jax.grad of their loss, optax's update, ``steps`` times."""
    state = optimizer.init(params)
    losses = []
    for _ in range(steps):
        value, grads = jax.value_and_grad(user_loss)(params, x, y)
        losses.append(value)
        updates, state = optimizer.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params, np.asarray(losses)


def many(**kw):
    args = dict(
        n_inits=3,
        steps=24,
        learning_rate=[0.05, 0.3],
        init_scale=[0.5, 1.5],
        optimizer=optax.adam,
        record_every=4,
        keep_params=True,
        progress=False,
    )
    args.update(kw)
    return jaxbp.train_many(jax.random.key(4), RES, X, Y, **args)


@pytest.fixture(scope="module")
def whole():
    return many(x_test=X[:20], y_test=Y[:20])


@pytest.mark.standard_promotion  # optax.adam mixes its int32 step count with floats
def test_members_equal_the_optax_loop_a_user_writes(whole):
    r = whole
    assert r.params["res"].shape == (12, 4, 4) and r.history.shape == (12, 6)
    for m in (0, 5, 11):
        start = res_init(jax.random.fold_in(jax.random.key(4), m), r.init_scale[m])
        params, losses = hand_loop(start, optax.adam(r.learning_rate[m]), 24)
        assert_tree_close(r.member(m)["params"], params)
        assert_close(r.history[m], losses[::4])
        assert_close(r.final_loss[m], user_loss(params, X, Y))
        logits = np.asarray(res_apply(params, X))
        assert_close(r.accuracy[m], np.mean((logits > 0) == (Y > 0.5)))
        held = np.asarray(res_apply(params, X[:20]))
        assert_close(r.test_loss[m], np.mean(np.logaddexp(0, held) - Y[:20] * held))
        assert_close(r.test_accuracy[m], np.mean((held > 0) == (Y[:20] > 0.5)))
    assert len(set(r.final_loss.tolist())) == 12


@pytest.mark.standard_promotion
def test_chunks_and_pieces_change_no_bit(whole):
    for kw in (dict(chunk_size=5), dict(members=(4, 9)), dict(chunk_size=2, progress=_Bar())):
        r = many(x_test=X[:20], y_test=Y[:20], **kw)
        lo = kw.get("members", (0, 12))[0]
        np.testing.assert_array_equal(r.final_loss, whole.final_loss[lo : lo + r.n_members])
        np.testing.assert_array_equal(r.history, whole.history[lo : lo + r.n_members])
        np.testing.assert_array_equal(
            r.test_loss_history, whole.test_loss_history[lo : lo + r.n_members]
        )


class _Bar:
    def __init__(self):
        self.n = 0

    def update(self, n):
        self.n += n


def test_member_last_and_vmap_agree_and_fallbacks_are_counted(caplog):
    def sorted_init(key, scale):
        return {"w": scale * jax.random.normal(key, (2, 3), jnp.float64)}

    def sorted_apply(params, x):  # a sort: a primitive member-last has no rule of its own
        return jnp.sum(jnp.sort(x @ params["w"], axis=1) * jnp.array([[1.0, -0.5, 0.25]]), axis=1)

    model = jaxbp.Model(sorted_init, sorted_apply, name="sorted")
    kw = dict(n_inits=4, steps=10, learning_rate=0.2, progress=False, record_every=5)
    import logging

    from jaxbp.many import _lastmap

    _lastmap._said.discard("sort")  # as in a fresh process
    with caplog.at_level(logging.INFO, logger="jaxbp"), record_fallbacks() as fallbacks:
        last = jaxbp.train_many(jax.random.key(1), model, X, Y, batching="member_last", **kw)
        jaxbp.train_many(jax.random.key(2), model, X, Y, batching="member_last", **kw)
    assert fallbacks["sort"] >= 2
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert sum("no member-last rule for sort" in m for m in said) == 1  # said once
    plain = jaxbp.train_many(jax.random.key(1), model, X, Y, batching="vmap", **kw)
    assert_close(last.final_loss, plain.final_loss)
    assert_close(last.history, plain.history)


def test_the_built_in_mlp_as_a_model_trains_as_its_sizes_do():
    kw = dict(n_inits=4, steps=20, learning_rate=[0.5, 2.0], progress=False, dtype=np.float64)
    by_sizes = jaxbp.train_many(jax.random.key(2), (2, 3, 1), X, Y, keep_params=True, **kw)
    model = jaxbp.mlp_model((2, 3, 1), dtype=np.float64)
    by_model = jaxbp.train_many(jax.random.key(2), model, X, Y, keep_params=True, **kw)
    assert_tree_close(by_model.params, by_sizes.params)
    assert_close(by_model.history, by_sizes.history)
    np.testing.assert_array_equal(by_model.converged_at, by_sizes.converged_at)


def test_planning_comes_from_the_model():
    params = jax.eval_shape(res_init, jax.random.key(0), 1.0)
    x = jax.ShapeDtypeStruct((48, 2), jnp.float64)
    y = jax.ShapeDtypeStruct((48,), jnp.float64)
    objective = Objective.checked(None, "bce", "autodiff", model=RES)
    net = model_footprint(RES, objective, params, x, y)
    assert net.n_params == 2 * 4 + 4 * 4 + 4 + 1 and net.name == "residual"
    # The forward pass's multiply-adds, as XLA counts them: at least the three products.
    assert 2 * 4 + 4 * 4 + 4 <= net.work <= 3 * (2 * 4 + 4 * 4 + 4)
    # The built-in MLP measured the same way lands near its formula.
    mlp = jaxbp.mlp_model((2, 8, 1), dtype=np.float64)
    measured = model_footprint(
        mlp,
        Objective.checked(None, "bce", "autodiff", model=mlp),
        jax.eval_shape(mlp.init, jax.random.key(0), 1.0),
        x,
        jax.ShapeDtypeStruct((48, 1), jnp.float64),
    )
    formula = footprint((2, 8, 1))
    assert measured.n_params == formula.n_params
    assert formula.work <= measured.work <= 2 * formula.work


def test_train_and_make_step_take_a_model():
    start = res_init(jax.random.key(9), 0.8)
    r = jaxbp.train(start, X, Y, 0.2, steps=15, model=RES, record_every=5)
    params, losses = hand_loop(start, optax.sgd(0.2), 15)
    assert_tree_close(r.params, params)
    assert_close(r.history.loss, losses[::5])
    step = jaxbp.make_step(optax.sgd(0.2), model=RES)
    p, state = start, step.init(start)
    for _ in range(15):
        p, state, _ = step(p, state, X, Y)
    assert_tree_close(p, params)


def test_a_loss_and_a_gradient_of_ones_own():
    start = res_init(jax.random.key(9), 0.8)
    per_example = optax.sigmoid_binary_cross_entropy
    own = jaxbp.train(start, X, Y, 0.2, steps=10, model=RES, loss=per_example)
    params, losses = hand_loop(start, optax.sgd(0.2), 10)
    assert_tree_close(own.params, params)
    assert_close(own.history.loss, losses)
    # The gradient passed is the one trained with: a factor 2 in one leaf changes the run.
    right = jax.grad(user_loss)

    def planted(p, x, y):
        g = right(p, x, y)
        return {**g, "res": 2 * g["res"]}

    with_right = jaxbp.train(start, X, Y, 0.2, steps=10, model=RES, grad=right)
    assert_tree_close(with_right.params, params)
    wrong = jaxbp.train(start, X, Y, 0.2, steps=10, model=RES, grad=planted)
    first = start["res"] - 0.2 * 2 * right(start, X, Y)["res"]
    step1 = jaxbp.train(start, X, Y, 0.2, steps=1, model=RES, grad=planted)
    assert_close(step1.params["res"], first)
    assert not np.allclose(wrong.params["res"], params["res"])
    # ... and train_many takes the same.
    r = jaxbp.train_many(
        jax.random.key(4), RES, X, Y, n_inits=2, steps=10, learning_rate=0.2,
        grad=right, loss=per_example, keep_params=True, progress=False,
    )  # fmt: skip
    alone, _ = hand_loop(
        res_init(jax.random.fold_in(jax.random.key(4), 1), 1.0), optax.sgd(0.2), 10
    )
    assert_tree_close(r.member(1)["params"], alone)


def _raises(*_):
    raise RuntimeError("no weights here")


def _counter():
    calls = []

    def apply(params, x):
        calls.append(1)
        return x @ params["w"] * len(calls)

    return apply


_LEAKED = []


def _leaky(params, x):
    _LEAKED.append(x)
    return x @ params["w"]


def _w_init(key, scale):
    return {"w": scale * jax.random.normal(key, (2,), jnp.float64)}


@pytest.mark.parametrize(
    "model, message",
    [
        (jaxbp.Model(_raises, res_apply, "broken"), r"model 'broken': init\(key, scale\) raised RuntimeError: no weights here"),
        (jaxbp.Model(lambda k, s: {"w": jnp.arange(3)}, res_apply, "ints"), "model 'ints': init must return a pytree of floating arrays"),
        (jaxbp.Model(res_init, _raises, "noapply"), r"model 'noapply': apply\(params, x\) raised RuntimeError"),
        (jaxbp.Model(_w_init, lambda p, x: jnp.sum(x @ p["w"]), "scalar"), "model 'scalar': apply must return one array of outputs with a row per example of x"),
        (jaxbp.Model(_w_init, _counter(), "impure"), "model 'impure': apply is not a pure function"),
        (jaxbp.Model(_w_init, _leaky, "leaky"), "model 'leaky': apply.* leaks a traced value"),
        (jaxbp.Model(_w_init, lambda p, x: (x @ p["w"])[:, None].repeat(2, 1), "wide"), r"y must have the shape of model 'wide'.s outputs \(48, 2\)"),
    ],
)  # fmt: skip
def test_a_bad_model_gets_one_line_before_training(model, message):
    with pytest.raises((ValueError, TypeError), match=message) as e:
        jaxbp.train_many(jax.random.key(0), model, X, Y, n_inits=2, steps=4, progress=False)
    assert "\n" not in str(e.value)


def test_bad_arguments_with_a_model():
    kw = dict(n_inits=2, steps=4, progress=False)
    with pytest.raises(ValueError, match="grad='manual' is the built-in MLP's derivation by hand"):
        jaxbp.train_many(jax.random.key(0), RES, X, Y, grad="manual", **kw)
    with pytest.raises(ValueError, match="activation='tanh' sets the built-in MLP's hidden units"):
        jaxbp.train_many(jax.random.key(0), RES, X, Y, activation="tanh", **kw)
    with pytest.raises(
        ValueError, match="its init returns float64 parameters, but dtype='float32'"
    ):
        jaxbp.train_many(jax.random.key(0), RES, X, Y, dtype="float32", **kw)
    with pytest.raises(ValueError, match=r"loss\(outputs, y\) must return one loss per example"):
        jaxbp.train_many(jax.random.key(0), RES, X, Y, loss=lambda o, y: jnp.mean(o - y), **kw)
    with pytest.raises(TypeError, match=r"a model must be a jaxbp\.Model"):
        jaxbp.train(res_init(jax.random.key(0), 1.0), X, Y, 0.1, steps=2, model=res_apply)
    with pytest.raises(ValueError, match="grad='manual'"):
        jaxbp.make_step(0.1, model=RES, grad="manual")


# Member m of a model jaxbp does not ship, trained on 4 CPU devices and on 1 in a
# process of its own each (both with use_cpu_cores, whose small-loop threshold changes how
# XLA compiles the loops), and on two processes of one jax.distributed job, all at once.
SPREAD_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import jaxbp
    devices, pid, n, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if devices:
        jaxbp.use_cpu_cores(devices)
    if n > 1:
        jaxbp.initialize_distributed(f"127.0.0.1:{port}", num_processes=n, process_id=pid)
    from tests.test_models import RES, X, Y
    r = jaxbp.train_many(jax.random.key(4), RES, X, Y, n_inits=3, steps=24, learning_rate=[0.05, 0.3],
                         init_scale=[0.5, 1.5], record_every=4, progress=False)
    print(json.dumps({"devices": jax.device_count(), "procs": jax.process_count(),
                      "loss": r.final_loss.tolist(), "history": r.history.tolist()}))
""")


def test_devices_and_processes_change_no_bit():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    port = str(free_port())
    runs = [
        ["4", "0", "1", port],
        ["1", "0", "1", port],
        ["0", "0", "2", port],
        ["0", "1", "2", port],
    ]
    outs = run_processes(
        [[sys.executable, "-c", SPREAD_SCRIPT, *args] for args in runs], [env] * 4, timeout=300
    )
    four, one, *procs = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert (four["devices"], one["devices"]) == (4, 1)
    for field in ("loss", "history"):
        np.testing.assert_array_equal(four[field], one[field])
    alone = many(optimizer=None, keep_params=False)
    for r in procs:
        assert (r["devices"], r["procs"]) == (2, 2)
        np.testing.assert_array_equal(r["loss"], alone.final_loss)
        np.testing.assert_array_equal(r["history"], alone.history)


def residual(hidden=4, dtype="float32"):
    """A factory a sweep config names: ``model = "tests.test_models:residual"``."""

    def init(key, scale):
        k1, k2, k3 = jax.random.split(key, 3)
        normal = lambda k, shape: scale * jax.random.normal(k, shape, dtype)
        return {
            "inp": normal(k1, (2, hidden)),
            "res": normal(k2, (hidden, hidden)),
            "out": normal(k3, (hidden,)),
            "b": jnp.zeros((), dtype),
        }

    return jaxbp.Model(init, res_apply, name=f"residual-{hidden}")


SWEEP = """
[task]
name = "moons"
n = 48
[network]
{network}
[optimizer]
learning_rates = [0.1, 0.5]
[run]
n_inits = 3
steps = 20
record_every = 5
members_per_file = 4
"""


def test_a_sweep_of_a_model_named_in_its_config(tmp_path, capsys):
    from jaxbp.cli import main

    config = tmp_path / "model.toml"
    config.write_text(
        SWEEP.format(network='model = "tests.test_models:residual"\nmodel_args = { hidden = 3 }')
    )
    out = tmp_path / "run"
    assert main(["sweep", str(config), "--out", str(out), "--no-progress"]) == 0, (
        capsys.readouterr()
    )
    meta = json.loads((out / "meta.json").read_text())
    assert meta["network"] == {"model": "tests.test_models:residual", "model_args": {"hidden": 3}}
    task = jaxbp.load_task("moons", n=48)
    ref = jaxbp.train_many(
        jax.random.key(0), residual(3), task.x, task.y, n_inits=3, steps=20,
        learning_rate=[0.1, 0.5], record_every=5, progress=False, dtype="float32",
    )  # fmt: skip
    run = jaxbp.load_run(out)
    np.testing.assert_array_equal(run.result.final_loss, ref.final_loss)
    np.testing.assert_array_equal(run.result.history, ref.history)
    assert (out / "figures" / "decision_surfaces.png").exists()
    assert "residual-3" in (out / "report.md").read_text()
    assert "model_args = { hidden = 3 }" in (out / "config.toml").read_text()


@pytest.mark.parametrize(
    "network, message",
    [
        ('model = "tests.no_such_module:net"', r"cannot import tests\.no_such_module \(ModuleNotFoundError"),
        ('model = "tests.test_models:nothing"', "tests.test_models has no nothing"),
        ('model = "tests.test_models:residual"\nmodel_args = { width = 3 }', "building it raised TypeError"),
        ('model = "tests.test_models:res_apply"', r"building it raised TypeError"),
        ('model = "tests.test_models:_counter"', "the factory returned function, not a jaxbp.Model"),
        ('model = "numpy"', "expected 'package.module:factory'"),
        ('sizes = [2, 2, 1]\nmodel = "tests.test_models:residual"', "needs the key 'sizes'.*or 'model'.*not both"),
        ('model = "tests.test_models:residual"\nmodel_args = { dtype = "int32" }', r"model 'residual-4': init\(key, scale\) raised"),
    ],
)  # fmt: skip
def test_a_model_that_cannot_be_built_leaves_no_folder(tmp_path, capsys, network, message):
    import re

    from jaxbp.cli import main

    config = tmp_path / "bad.toml"
    config.write_text(SWEEP.format(network=network))
    out = tmp_path / "run"
    assert main(["sweep", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert len([line for line in err.splitlines() if "error" in line]) == 1, err
    assert not out.exists()
