"""Three gradient sources agree: manual (chain rule) vs autodiff vs finite differences vs PyTorch."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxbp
from tests.helpers import assert_close, assert_tree_close, random_batch

ACTIVATIONS = sorted(jaxbp.ACTIVATIONS)
LOSSES = sorted(jaxbp.LOSSES)


def labels_for(loss):
    if jaxbp.LOSSES[loss].classes:
        return "classes"
    return "real" if loss.endswith("mse_linear") else "binary"


@st.composite
def networks(draw, max_depth=4, max_width=64, max_batch=64):
    depth = draw(st.integers(1, max_depth))  # number of weight layers
    widths = draw(st.lists(st.integers(1, max_width), min_size=depth, max_size=depth))
    n_out = draw(st.sampled_from([1, 1, 1, 2]))
    sizes = (*widths, n_out) if depth > 1 else (widths[0], n_out)
    per_layer = draw(st.booleans())
    n_hidden = len(sizes) - 2
    if per_layer and n_hidden:
        activation = tuple(draw(st.sampled_from(ACTIVATIONS)) for _ in range(n_hidden))
    else:
        activation = draw(st.sampled_from(ACTIVATIONS))
    return dict(
        sizes=sizes,
        activation=activation,
        loss=draw(st.sampled_from(LOSSES)),
        batch=draw(st.integers(1, max_batch)),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def make(net, dtype):
    # Plain NumPy weights: the gradient tests do not lean on init_mlp (tested on its own).
    rng = np.random.default_rng(net["seed"])
    sizes = net["sizes"]
    if jaxbp.LOSSES[net["loss"]].classes and sizes[-1] == 1:
        sizes = (*sizes[:-1], 3)  # softmax cross-entropy: an output unit per class
    params = tuple(
        {
            "W": jnp.asarray(0.7 * rng.normal(size=(a, b)), dtype),
            "b": jnp.asarray(0.7 * rng.normal(size=b), dtype),
        }
        for a, b in itertools.pairwise(sizes)
    )
    x, y = random_batch(net["seed"], params, net["batch"], labels=labels_for(net["loss"]))
    return params, x, y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=networks())
def test_manual_matches_autodiff(net, dtype):
    params, x, y = make(net, dtype)
    kw = dict(activation=net["activation"], loss=net["loss"])
    ad = jaxbp.autodiff_grad(params, x, y, **kw)
    mg = jaxbp.manual_grad(params, x, y, **kw)
    assert all(leaf.dtype == dtype for leaf in jax.tree_util.tree_leaves(mg))
    # The bars: float64 rtol 1e-12 / atol 1e-14, float32 1e-5 / 1e-6 (jaxbp.tolerance).
    cmp = jaxbp.compare_grads(ad, mg)
    if dtype == np.float64 or cmp.ok:
        assert cmp.ok, str(cmp)
        return
    # In float32, where the batch sum cancels (terms much larger than their sum), the
    # order of additions alone can exceed the bar. Then the hand-written gradient must
    # be as close to the exact (float64) gradient of the same weights as autodiff is.
    p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    exact = jaxbp.manual_grad(p64, np.asarray(x, np.float64), np.asarray(y, np.float64), **kw)

    def err(g):
        return max(
            float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b))))
            for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(exact))
        )

    assert err(mg) <= 2 * err(ad) + 1e-7, f"manual {err(mg):.3g} vs autodiff {err(ad):.3g}\n{cmp}"


# One network per depth, shared with the PyTorch comparison below: the same shapes,
# activation and loss make the same compiled gradient programs, compiled once per run.
NETS = {
    1: dict(sizes=(5, 1), batch=9, seed=1),
    2: dict(sizes=(5, 7, 1), batch=9, seed=2),
    4: dict(sizes=(5, 7, 6, 4, 1), batch=9, seed=4),
}


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("depth", [1, 2, 4])
def test_every_activation_loss_and_depth(activation, loss, depth):
    net = dict(NETS[depth], activation=activation, loss=loss)
    params, x, y = make(net, np.float64)
    ad = jaxbp.autodiff_grad(params, x, y, activation=activation, loss=loss)
    assert_tree_close(jaxbp.manual_grad(params, x, y, activation=activation, loss=loss), ad)
    # The loss value from the manual pass is the loss.
    value, _ = jaxbp.manual_value_and_grad(params, x, y, activation=activation, loss=loss)
    assert_close(
        value, jaxbp.compute_loss(params, x, y, activation=activation, loss=loss), kind="ulps"
    )


def keep_relu_away_from_kink(params, x, activation, margin=1e-3):
    """True when no ReLU pre-activation lies within ``margin`` of 0."""
    t = jaxbp.forward_trace(params, x, activation=activation)
    acts = (activation,) * len(t.a) if isinstance(activation, str) else activation
    return all(
        a != "relu" or np.min(np.abs(np.asarray(h))) > margin for a, h in zip(acts, t.h[:-1])
    )


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(net=networks(max_width=12, max_batch=16))
def test_autodiff_matches_finite_differences(net):
    from hypothesis import assume

    params, x, y = make(net, np.float64)
    assume(keep_relu_away_from_kink(params, x, net["activation"]))
    kw = dict(activation=net["activation"], loss=net["loss"])
    # rtol 1e-6; atol is the finite-difference noise floor, which grows with |L|
    # (rounding 1e-16 |L| / eps): check_grads estimates it and explains it.
    report = jaxbp.check_grads(params, x, y, **kw)
    fd = jaxbp.tolerance(np.float64, kind="finite_difference")
    assert report.numerical_vs_autodiff.tolerance.rtol == fd.rtol
    assert report.numerical_vs_autodiff.ok, str(report)


def test_check_grads_flags_relu_kink():
    # Hidden ReLU unit 1 has pre-activation exactly 0 on example 0: finite differences see a kink.
    def net(b1):
        return jaxbp.from_augmented(
            [[[b1, 1.0], [1.0, 1.0]], [[0.0], [1.0], [1.0]]], dtype=np.float64
        )

    x, y = np.array([[0.0], [1.0]]), np.array([1.0, 0.0])
    report = jaxbp.check_grads(net(0.0), x, y, activation="relu")
    assert report.manual_vs_autodiff.ok
    assert not report.numerical_vs_autodiff.ok
    assert any("kink" in n for n in report.notes), report.notes
    assert "layer 1 b" in str(report.numerical_vs_autodiff)
    # A central difference across the kink is the mean of the slopes on either side:
    # autodiff takes the left one (ReLU'(0) = 0), the right one is autodiff just above 0.
    right = jaxbp.autodiff_grad(net(1e-9), x, y, activation="relu")[0]["b"][0]
    left = report.autodiff[0]["b"][0]
    assert_close(report.numerical[0]["b"][0], (left + right) / 2, kind="finite_difference")


def test_multi_output_and_soft_labels():
    params = jaxbp.init_mlp(jax.random.key(3), (4, 6, 3), dtype=np.float64)
    x, y = random_batch(4, params, 5, labels="soft")
    for loss in ("bce", "mse"):
        ad = jaxbp.autodiff_grad(params, x, y, activation="tanh", loss=loss)
        assert_tree_close(jaxbp.manual_grad(params, x, y, activation="tanh", loss=loss), ad)
        assert_tree_close(
            jaxbp.numerical_grad(params, x, y, activation="tanh", loss=loss),
            ad,
            kind="finite_difference",
        )


class TestTorch:
    """PyTorch autograd as an independent engine (the CPU build, float64)."""

    @pytest.mark.parametrize("activation", ACTIVATIONS)
    @pytest.mark.parametrize("loss", LOSSES)
    def test_gradient_matches_torch(self, activation, loss, torch):
        params, x, y = make(dict(NETS[4], activation=activation, loss=loss), np.float64)
        tp = [
            (
                torch.tensor(np.asarray(p["W"]), requires_grad=True),
                torch.tensor(np.asarray(p["b"]), requires_grad=True),
            )
            for p in params
        ]
        act = {
            "sigmoid": torch.sigmoid,
            "tanh": torch.tanh,
            "relu": torch.relu,
            "identity": lambda h: h,
        }[activation]
        a = torch.tensor(np.asarray(x))
        for i, (W, b) in enumerate(tp):
            a = a @ W + b
            if i < len(tp) - 1:
                a = act(a)
        yt = torch.tensor(np.asarray(y))
        # Mean over the batch of the sum over output units (one unit here: the mean).
        half = 0.5 if loss.startswith("half_") else 1.0
        if loss == "softmax_ce":
            value = torch.nn.functional.cross_entropy(a, yt)
        elif loss == "bce":
            value = torch.nn.functional.binary_cross_entropy_with_logits(a, yt, reduction="mean")
        elif loss.endswith("mse"):
            value = half * torch.mean((torch.sigmoid(a) - yt) ** 2)
        else:
            value = half * torch.mean((a - yt) ** 2)
        value.backward()
        ours = jaxbp.manual_grad(params, x, y, activation=activation, loss=loss)
        theirs = tuple({"W": W.grad.numpy(), "b": b.grad.numpy()} for W, b in tp)
        assert_tree_close(ours, theirs, dtype=np.float64)
        assert_close(
            jaxbp.compute_loss(params, x, y, activation=activation, loss=loss),
            value.item(),
            kind="ulps",
        )
