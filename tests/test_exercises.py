"""Generated exercises are worth working by hand: nice numbers, units in range, gradients visible."""

import itertools

import jax
import numpy as np
import pytest

import jaxbp

SIZES = [(3, 2, 1), (2, 3, 1), (2, 2, 2), (3, 3, 2, 1), (4, 2, 3)]


@pytest.mark.parametrize("activation", sorted(jaxbp.ACTIVATIONS))
def test_500_exercises_per_activation_can_be_worked_by_hand(activation):
    for seed in range(500):
        sizes = SIZES[seed % len(SIZES)]
        batch = 1 + seed % 3
        loss = ("bce", "mse", "mse_linear", "half_mse")[seed % 4]
        ex = jaxbp.random_exercise(seed, sizes, activation=activation, loss=loss, batch=batch)
        aug = [np.asarray(m) for m in jaxbp.to_augmented(ex.params)]
        x, y = np.asarray(ex.x), np.asarray(ex.y)
        assert x.shape == (batch, sizes[0]) and y.shape == (batch, sizes[-1])
        # Halves from -2 to 2, no zeros: multiplied on paper without a calculator.
        for v in itertools.chain(x.ravel(), *(m.ravel() for m in aug)):
            assert v != 0 and abs(v) <= 2 and (2 * v).is_integer()
        assert set(np.unique(y)) <= {0.0, 1.0}
        # Every unit in its useful range (checked with the library's forward pass).
        trace = jaxbp.forward_trace(ex.params, x, activation=activation)
        for h in (*trace.h[:-1], trace.logits):
            assert np.all(np.abs(np.asarray(h)) <= 3)
        if activation == "relu":
            for h in trace.h[:-1]:
                assert np.all((np.asarray(h) > 0).any(axis=0)), "every ReLU unit active somewhere"
        # Every gradient entry big enough to write down (by jax.grad, not the generator's).
        g = jaxbp.autodiff_grad(ex.params, x, y, activation=activation, loss=loss)
        assert min(float(np.min(np.abs(leaf))) for leaf in jax.tree_util.tree_leaves(g)) >= 1e-3


def test_the_same_arguments_give_the_same_exercise():
    a = jaxbp.random_exercise(7, (3, 2, 1))
    b = jaxbp.random_exercise(7, (3, 2, 1))
    c = jaxbp.random_exercise(8, (3, 2, 1))
    assert all(
        np.array_equal(u, v)
        for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
        if hasattr(u, "shape")
    )
    assert not np.array_equal(a.params[0]["W"], c.params[0]["W"])
