"""Extreme logits, saturated units, and the explanations compare_grads gives."""

import math

import jax
import numpy as np
import pytest

import jaxbp
from tests.helpers import assert_close

DTYPES = [np.float32, np.float64]
LOGITS = [0.0, 1e4, -1e4, 1e9, -1e9]


def net_with_logit(logit, dtype):
    # Hidden layer with ordinary values; the output logit is `logit` for every input
    # (output weights 0, bias = logit), so its gradient is exactly a * (sigma(logit) - y).
    return jaxbp.from_augmented(
        [[[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]], [[logit], [0.0], [0.0]]], dtype=dtype
    )


def exact_sigmoid(o):
    return 1 / (1 + math.exp(-o)) if o >= 0 else math.exp(o) / (1 + math.exp(o))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("logit", LOGITS)
@pytest.mark.parametrize("label", [0.0, 1.0])
@pytest.mark.parametrize("source", ["autodiff", "manual"])
def test_bce_at_extreme_logits(dtype, logit, label, source):
    params = net_with_logit(logit, dtype)
    x = np.array([[0.5, -1.0]], dtype)
    y = np.array([label], dtype)
    loss = float(jaxbp.bce_loss(params, x, y))
    # -log sigma(o) for y = 1, -log sigma(-o) for y = 0: softplus of the wrong-way logit.
    s = -logit if label == 1.0 else logit
    expected_loss = max(s, 0.0) + math.log1p(math.exp(-abs(s)))
    assert math.isfinite(loss)
    assert loss == pytest.approx(expected_loss, rel=jaxbp.tolerance(dtype).rtol)
    if logit == 0.0:
        assert loss == pytest.approx(math.log(2), rel=1e-7)
    fn = jaxbp.autodiff_grad if source == "autodiff" else jaxbp.manual_grad
    g = fn(params, x, y, loss="bce")
    delta = exact_sigmoid(logit) - label  # the limit gradient dL/do
    assert float(g[1]["b"][0]) == pytest.approx(delta, abs=1e-7)
    if logit == 0.0:
        assert float(g[1]["b"][0]) == (0.5 if label == 0.0 else -0.5)
    if abs(logit) >= 1e4:  # saturated: the gradient is exactly 0 or +-1
        assert float(g[1]["b"][0]) == delta
    a = np.asarray(jaxbp.forward_trace(params, x).a[0])[0]
    assert_close(g[1]["W"][:, 0], a * delta, dtype=dtype)
    for leaf in jax.tree_util.tree_leaves(g):
        assert np.all(np.isfinite(leaf))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_log1p_of_the_bce_term_to_three_units_in_the_last_place(dtype):
    # log(1 + e) for e = exp(-|o|) in [0, 1], against NumPy's log1p in a wider type,
    # from just above the smallest normal number (log1p(tiny) < tiny is subnormal, which
    # XLA's CPU code flushes to 0) through every scale to 1 (for the tiny e, log(1 + e)
    # would round to 0); and exactly 0 at e = 0 (|o| huge).
    from jaxbp.nn._losses import log1p_unit

    info = np.finfo(dtype)
    e = np.concatenate(
        [np.logspace(np.log10(4 * info.tiny), 0, 4000), np.linspace(0, 1, 4001)]
    ).astype(dtype)
    wide = np.longdouble if dtype == np.float64 else np.float64
    exact = np.log1p(e.astype(wide))
    got = np.asarray(jax.jit(log1p_unit)(jax.numpy.asarray(e)))
    assert got.dtype == dtype
    unit = np.spacing(exact.astype(dtype)).astype(wide)
    unit[exact == 0] = info.tiny
    assert np.max(np.abs(got.astype(wide) - exact) / unit) <= 3
    assert float(log1p_unit(jax.numpy.zeros((), dtype))) == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("logit", LOGITS)
@pytest.mark.parametrize("loss", ["mse", "mse_linear"])
def test_mse_at_extreme_logits(dtype, logit, loss):
    params = net_with_logit(logit, dtype)
    x, y = np.array([[0.5, -1.0]], dtype), np.array([1.0], dtype)
    value = float(jaxbp.compute_loss(params, x, y, loss=loss))
    z = exact_sigmoid(logit) if loss == "mse" else logit
    assert value == pytest.approx((z - 1.0) ** 2, rel=jaxbp.tolerance(dtype).rtol)
    ad = jaxbp.autodiff_grad(params, x, y, loss=loss)
    mg = jaxbp.manual_grad(params, x, y, loss=loss)
    assert jaxbp.compare_grads(ad, mg).ok
    for leaf in jax.tree_util.tree_leaves((ad, mg)):
        assert np.all(np.isfinite(leaf))


@pytest.mark.parametrize("h", [12.0, 20.0, 40.0, -40.0, 80.0])
def test_manual_sigmoid_derivative_does_not_cancel(h):
    """In float32, sigma(h)(1 - sigma(h)) is 0 once sigma(h) rounds to 1; sigma(h) sigma(-h) is not."""

    # One hidden sigmoid unit with pre-activation h (its bias; the input is 0), read out
    # linearly: o = a. With y = 0, dL/db_hidden = sigma(o) * sigma'(h).
    def grad(dtype):
        params = jaxbp.from_augmented([[[h], [0.0]], [[0.0], [1.0]]], dtype=dtype)
        x, y = np.zeros((1, 1), dtype), np.zeros(1, dtype)
        return float(jaxbp.manual_grad(params, x, y)[0]["b"][0])

    a = exact_sigmoid(h)
    expected = exact_sigmoid(a) * math.exp(-abs(h)) / (1 + math.exp(-abs(h))) ** 2
    assert grad(np.float64) == pytest.approx(expected, rel=1e-12)
    ours = grad(np.float32)
    assert ours != 0.0
    assert ours == pytest.approx(expected, rel=1e-5)


def test_compare_grads_explains_differences():
    rng = np.random.default_rng(0)
    ref = (
        {"W": rng.normal(size=(3, 3)), "b": rng.normal(size=3)},
        {"W": rng.normal(size=(3, 1)), "b": rng.normal(size=1)},
    )
    flip = jax.tree_util.tree_map(lambda a: -a, ref)
    scaled = jax.tree_util.tree_map(lambda a: 8 * a, ref)
    transposed = ({"W": ref[0]["W"].T, "b": ref[0]["b"]}, ref[1])
    one_bad = ({"W": ref[0]["W"].copy(), "b": ref[0]["b"]}, ref[1])
    one_bad[0]["W"][1, 2] += 0.5

    same = jaxbp.compare_grads(ref, ref)
    assert same.ok and same.max_abs_error == 0.0 and "agree" in same.explanation[0]

    cmp = jaxbp.compare_grads(ref, flip)
    assert not cmp.ok and all("sign is flipped" in e for e in cmp.explanation)
    assert all(leaf.cosine == pytest.approx(-1.0) for leaf in cmp.leaves)

    cmp = jaxbp.compare_grads(ref, scaled)
    assert "candidate = 8 x reference" in cmp.explanation[0]
    assert "a sum over 8 examples where the mean belongs" in cmp.explanation[0]

    cmp = jaxbp.compare_grads(ref, transposed)
    assert cmp.explanation == (
        "layer 1 W: the candidate is the transpose of the reference (row and column indices swapped)",
    )

    cmp = jaxbp.compare_grads(ref, one_bad)
    assert not cmp.ok
    assert cmp.worst.name == "layer 1 W" and cmp.worst.worst_index == (1, 2)
    assert cmp.worst.worst_candidate - cmp.worst.worst_reference == pytest.approx(0.5)
    assert "1 of 9 entries differ" in cmp.explanation[0]
    text = str(cmp)
    assert "MISMATCH" in text and "layer 1 W" in text and "[1, 2]" in text


def test_compare_grads_rejects_mismatched_trees():
    a = ({"W": np.ones((2, 1)), "b": np.ones(1)},)
    with pytest.raises(ValueError, match="same tree structure"):
        jaxbp.compare_grads(a, (*a, *a))
    with pytest.raises(ValueError, match=r"layer 1 W must have shape \(2, 1\)"):
        jaxbp.compare_grads(a, ({"W": np.ones((1, 2)), "b": np.ones(1)},))


def test_tolerance_table():
    assert jaxbp.tolerance(np.float64) == (1e-12, 1e-14)
    assert jaxbp.tolerance(np.float32) == (1e-5, 1e-6)
    assert jaxbp.tolerance(np.float64, np.float32) == jaxbp.tolerance(np.float32)
    with pytest.raises(ValueError, match="no 'reorder' tolerance is defined for dtype int32"):
        jaxbp.tolerance(np.int32)
    # Every kind is at least as loose as comparing the same formula twice, in every dtype.
    for kind in ("reorder", "trained", "independent"):
        for dtype in (np.float32, np.float64):
            tol, ulps = jaxbp.tolerance(dtype, kind=kind), jaxbp.tolerance(dtype, kind="ulps")
            assert tol.rtol >= ulps.rtol and tol.atol >= ulps.atol
    with pytest.raises(ValueError, match="kind must be one of"):
        jaxbp.tolerance(np.float64, kind="loose")
