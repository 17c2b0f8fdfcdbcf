"""Update rules, the compiled step and the compiled loop."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from tests.helpers import assert_close, assert_tree_close, assert_tree_equal, random_batch


def problem(dtype=np.float64, sizes=(4, 6, 5, 1), seed=0):
    params = jaxbp.init_mlp(jax.random.key(seed), sizes, scheme="normal", scale=0.8, dtype=dtype)
    x, y = random_batch(seed, params, 10)
    return params, x, y


def copy(tree):
    return jax.tree_util.tree_map(lambda a: jax.numpy.array(a, copy=True), tree)


def test_sgd_update_is_the_seed_rule():
    params, x, y = problem()
    g = jaxbp.manual_grad(params, x, y)
    new = jaxbp.sgd_update(params, g, 0.25)
    expected = jax.tree_util.tree_map(lambda p, d: np.asarray(p) - 0.25 * np.asarray(d), params, g)
    assert_tree_equal(new, expected)


def test_sgd_transform_equals_sgd_update_exactly():
    params, x, y = problem()
    g = jaxbp.manual_grad(params, x, y)
    opt = jaxbp.sgd(0.25)
    updates, _ = opt.update(g, opt.init(params), params)
    assert_tree_equal(optax.apply_updates(params, updates), jaxbp.sgd_update(params, g, 0.25))


@pytest.mark.parametrize("grad", ["autodiff", "manual"])
@pytest.mark.standard_promotion
def test_step_compiles_once_and_donates_only_when_asked(grad):
    params, x, y = problem()
    step = jaxbp.make_step(optax.adam(1e-2), activation="tanh", grad=grad, donate=True)
    state = step.init(params)
    p = copy(params)
    for _ in range(3):
        old = p
        p, state, info = step(p, state, x, y)
    assert step.trace_count == 1, "the step must not be traced again on later calls"
    assert step.jitted._cache_size() == 1
    assert all(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(old)), (
        "params must be donated"
    )
    assert np.isfinite(float(info.loss))
    # By default the caller's parameters survive the step and can be used again.
    plain = jaxbp.make_step(optax.adam(1e-2), activation="tanh", grad=grad)
    q = copy(params)
    new, _, _ = plain(q, plain.init(q), x, y)
    assert not any(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(q))
    assert_tree_close(plain(q, plain.init(q), x, y)[0], new)


def test_learning_rate_errors_name_the_learning_rate():
    params, x, y = problem()
    with pytest.raises(ValueError, match="a learning rate for plain SGD"):
        jaxbp.train(params, x, y, 0.0, steps=3)
    with pytest.raises(ValueError, match="learning_rate must be a positive finite number"):
        jaxbp.make_step(0.0)


@pytest.mark.parametrize("grad", ["autodiff", "manual"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_jitted_step_equals_eager(grad, dtype):
    params, x, y = problem(dtype)
    step = jaxbp.make_step(0.3, activation="sigmoid", grad=grad)
    new, _, info = step(copy(params), step.init(params), x, y)
    # Eager: the loss, the hand-written gradient and the seed's rule, op by op.
    with jax.disable_jit():
        g = jaxbp.manual_grad(params, x, y)
        expected = jaxbp.sgd_update(params, g, 0.3)
        loss = jaxbp.bce_loss(params, x, y)
    assert_tree_close(new, expected)
    assert_close(info.loss, loss, dtype=dtype)
    assert_close(
        info.grad_norm,
        np.sqrt(sum(np.sum(np.square(leaf)) for leaf in jax.tree_util.tree_leaves(g))),
        dtype=dtype,
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "momentum"])
@pytest.mark.parametrize("grad", ["autodiff", "manual"])
@pytest.mark.standard_promotion
def test_train_equals_a_python_loop_of_steps(optimizer, grad):
    params, x, y = problem()
    opt = {
        "sgd": lambda: 0.5,
        "adam": lambda: optax.adam(0.05),
        "momentum": lambda: optax.sgd(0.1, momentum=0.9),
    }[optimizer]()
    steps = 25
    result = jaxbp.train(params, x, y, opt, steps=steps, activation="tanh", grad=grad)
    step = jaxbp.make_step(opt, activation="tanh", grad=grad)
    p, state = copy(params), step.init(params)
    losses, norms = [], []
    for _ in range(steps):
        p, state, info = step(p, state, x, y)
        losses.append(float(info.loss))
        norms.append(float(info.grad_norm))
    assert_tree_close(result.params, p)
    assert_close(result.history.loss, losses)
    assert_close(result.history.grad_norm, norms)
    assert_close(result.final_loss, jaxbp.bce_loss(p, x, y, activation="tanh"))
    assert result.history.loss.shape == (steps,)
    assert result.final_loss < result.history.loss[0]


@pytest.mark.standard_promotion
def test_train_with_manual_grad_matches_autodiff():
    params, x, y = problem(sizes=(4, 8, 8, 1))
    a = jaxbp.train(params, x, y, optax.adam(0.02), steps=100, activation="relu", grad="autodiff")
    m = jaxbp.train(params, x, y, optax.adam(0.02), steps=100, activation="relu", grad="manual")
    assert_tree_close(m.params, a.params, kind="trained")


def test_train_learning_rate_is_data_not_a_recompile():
    params, x, y = problem()
    from jaxbp.training._train import _train

    jaxbp.train(params, x, y, 0.1, steps=7)
    before = _train._cache_size()
    r1 = jaxbp.train(params, x, y, 0.2, steps=7)
    r2 = jaxbp.train(params, x, y, 0.4, steps=7)
    assert _train._cache_size() == before
    assert not np.allclose(r1.final_loss, r2.final_loss)


def test_train_does_not_consume_its_input():
    params, x, y = problem()
    jaxbp.train(params, x, y, 0.1, steps=3)
    assert not any(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(params))


@pytest.mark.standard_promotion
def test_train_float32_stays_float32():
    params, x, y = problem(np.float32)
    result = jaxbp.train(params, x, y, optax.adam(1e-2), steps=5)
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(result.params)} == {
        np.dtype(np.float32)
    }
    assert result.history.loss.dtype == np.float32


def _count(jaxpr, name, *, into_scans):
    """How many ``name`` equations ``jaxpr`` runs, looking into nested calls (and scans)."""
    n = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == name:
            n += 1
        if eqn.primitive.name == "scan" and not into_scans:
            continue
        for v in eqn.params.values():
            sub = getattr(v, "jaxpr", v)
            if hasattr(sub, "eqns"):
                n += _count(sub, name, into_scans=into_scans)
    return n


@pytest.mark.parametrize("grad", ["autodiff", "manual"])
def test_history_rides_on_the_step_it_records(grad):
    """A record point costs no second forward pass, and only it takes a gradient norm.

    The step at a record point runs the same matrix products as every other step
    (the loss comes from its own forward pass); the steps between compute no norm.
    """
    from jaxbp.training._objective import Objective
    from jaxbp.training._train import train_program

    params, x, y = problem()
    x, y = jnp.asarray(x), jnp.asarray(y)
    sgd = optax.sgd(0.1)

    def run(p):
        return train_program(
            p,
            x,
            y,
            sgd,
            Objective("tanh", "bce", grad),
            steps=12,
            record_every=4,
        )

    jaxpr = jax.make_jaxpr(run)(params).jaxpr
    outer = next(e for e in jaxpr.eqns if e.primitive.name == "scan").params["jaxpr"].jaxpr
    inner = next(e for e in outer.eqns if e.primitive.name == "scan").params["jaxpr"].jaxpr
    per_step = _count(inner, "dot_general", into_scans=True)
    assert per_step > 0
    assert _count(outer, "dot_general", into_scans=False) == per_step, "one forward pass"
    assert _count(inner, "sqrt", into_scans=True) == 0, "no gradient norm between records"
    assert _count(outer, "sqrt", into_scans=False) == 1
