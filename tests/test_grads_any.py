"""Gradient checks for any scalar function of a pytree: a model jaxbp does not ship.

The references are independent of each other: ``jax.grad`` of the function, central
finite differences in float64, and a gradient derived here by hand.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp

from .helpers import assert_tree_close


def residual_params(dtype=np.float64):
    """A residual tanh block with a learned scalar gate: ``{"w1", "w2", "gate", "head"}``."""
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    return {
        "w1": jax.random.normal(k1, (4, 4), dtype) * 0.5,
        "w2": jax.random.normal(k2, (4, 4), dtype) * 0.5,
        "gate": jnp.asarray(0.7, dtype),
        "head": jax.random.normal(k3, (4,), dtype),
    }


def residual_loss(p, x, y):
    h = x + p["gate"] * jnp.tanh(x @ p["w1"]) @ p["w2"]
    o = h @ p["head"]
    return jnp.mean(jax.nn.softplus(o) - y * o)  # BCE from the logit


def residual_grad(p, x, y):
    """The chain rule by hand for ``residual_loss``."""
    a = jnp.tanh(x @ p["w1"])
    u = a @ p["w2"]
    h = x + p["gate"] * u
    o = h @ p["head"]
    d_o = (jax.nn.sigmoid(o) - y) / x.shape[0]  # dL/do, mean over the batch
    d_h = d_o[:, None] * p["head"][None, :]
    d_u = p["gate"] * d_h
    d_pre = (d_u @ p["w2"].T) * (1 - a * a)
    return {
        "w1": x.T @ d_pre,
        "w2": a.T @ d_u,
        "gate": jnp.sum(d_h * u),
        "head": h.T @ d_o,
    }


def data(dtype=np.float64):
    x = np.asarray(jax.random.normal(jax.random.key(5), (6, 4)), dtype)
    y = np.array([0, 1, 1, 0, 1, 0], dtype)
    return x, y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numerical_grad_of_any_function_matches_autodiff(dtype):
    p, (x, y) = residual_params(dtype), data(dtype)
    ng = jaxbp.numerical_grad(residual_loss, p, x, y)
    assert all(leaf.dtype == np.float64 for leaf in jax.tree_util.tree_leaves(ng))
    exact = jax.grad(residual_loss)(
        *jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), (p, x, y))
    )
    assert_tree_close(ng, exact, kind="finite_difference")


def test_a_hand_derivation_of_an_own_model_agrees_and_a_planted_slip_is_named():
    p, (x, y) = residual_params(), data()
    report = jaxbp.check_grads(residual_loss, p, x, y, grad=residual_grad)
    assert report.ok, str(report)
    assert_tree_close(report.manual, jax.grad(residual_loss)(p, x, y))

    def slipped(p, x, y):
        g = residual_grad(p, x, y)
        return {**g, "w2": -g["w2"]}

    bad = jaxbp.check_grads(residual_loss, p, x, y, grad=slipped)
    assert not bad.ok and bad.numerical_vs_autodiff.ok
    assert [leaf.name for leaf in bad.manual_vs_autodiff.leaves if not leaf.ok] == ["['w2']"]
    (explanation,) = bad.manual_vs_autodiff.explanation
    assert explanation.startswith("['w2']: the sign is flipped")
    assert "manual vs autodiff" in str(bad) and "MISMATCH" in str(bad)


def test_a_custom_vjp_with_a_factor_2_in_one_leaf_is_named_by_the_report():
    @jax.custom_vjp
    def layer(w, b, x):
        return jnp.tanh(x @ w + b[None, :])

    def fwd(w, b, x):
        a = jnp.tanh(x @ w + b[None, :])
        return a, (w, x, a)

    def bwd(res, g):
        w, x, a = res
        d = g * (1 - a * a)
        return 2 * (x.T @ d), jnp.sum(d, axis=0), d @ w.T  # dL/dw doubled: the planted slip

    layer.defvjp(fwd, bwd)

    def loss(p, x):
        return jnp.sum(layer(p["w"], p["b"], x) ** 2)

    p = {"w": jnp.array([[0.3, -0.2], [0.1, 0.4]]), "b": jnp.array([0.05, -0.1])}
    x = jnp.array([[1.0, 2.0], [-1.0, 0.5]])
    report = jaxbp.check_grads(loss, p, x)
    assert report.manual is None and report.manual_vs_autodiff is None
    assert not report.ok
    bad = [leaf for leaf in report.numerical_vs_autodiff.leaves if not leaf.ok]
    assert [leaf.name for leaf in bad] == ["['w']"]
    assert bad[0].norm_ratio == pytest.approx(0.5, rel=1e-6)
    (explanation,) = report.numerical_vs_autodiff.explanation
    assert explanation.startswith("['w']: same direction but scaled: candidate = 0.5 x reference")
    assert any("custom_vjp" in note for note in report.notes)
    # Without the slip the three agree.
    fixed = jaxbp.check_grads(
        lambda p, x: jnp.sum(jnp.tanh(x @ p["w"] + p["b"][None, :]) ** 2), p, x
    )
    assert fixed.ok, str(fixed)


def test_bad_functions_and_arguments_get_one_line_each():
    p, (x, y) = residual_params(), data()
    with pytest.raises(
        ValueError, match=r"must return a floating scalar \(a loss\); got shape \(6,\)"
    ):
        jaxbp.check_grads(lambda p, x: x @ p["head"], {"head": p["head"]}, x)
    with pytest.raises(ValueError, match=r"fn .*<lambda>.* raised KeyError"):
        jaxbp.numerical_grad(lambda p, x: p["nope"].sum(), p, x)
    with pytest.raises(TypeError, match=r"params\['n'\] must be a floating array .* got dtype int"):
        jaxbp.numerical_grad(lambda p: p["w"].sum(), {"w": jnp.ones(2), "n": jnp.arange(2)})
    with pytest.raises(ValueError, match=r"must return a tree of params' structure"):
        jaxbp.check_grads(residual_loss, p, x, y, grad=lambda p, x, y: [p["w1"]])
    with pytest.raises(TypeError, match=r"grad= is for a function of your own"):
        ex = jaxbp.seed_exercise()
        jaxbp.check_grads(ex.params, ex.x, ex.y, grad=residual_grad)
    with pytest.raises(TypeError, match=r"check_grads\(params, x, y\) takes the MLP's batch"):
        jaxbp.check_grads(ex.params, ex.x)
    with pytest.raises(TypeError, match=r"needs the params to differentiate"):
        jaxbp.numerical_grad(residual_loss)
    with pytest.raises(ValueError, match=r"eps must be a positive finite number"):
        jaxbp.numerical_grad(residual_loss, p, x, y, eps=0)
