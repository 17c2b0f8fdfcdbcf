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
        # Every sizes x loss, each with one batch size, chosen so that every pair of the
        # three (sizes and batch, loss and batch, sizes and loss) occurs: 20 shapes to
        # compile per activation rather than all 60 triples.
        i, j = seed % len(SIZES), seed % 4
        sizes, batch = SIZES[i], 1 + (i + j) % 3
        loss = ("bce", "mse", "mse_linear", "half_mse")[j]
        ex = jaxbp.random_exercise(seed, sizes, activation=activation, loss=loss, batch=batch)
        aug = [np.array(m, np.float64) for m in jaxbp.to_augmented(ex.params)]
        x, y = np.asarray(ex.x), np.asarray(ex.y)
        assert x.shape == (batch, sizes[0]) and y.shape == (batch, sizes[-1])
        # Halves from -2 to 2, no zeros: multiplied on paper without a calculator.
        for v in itertools.chain(x.ravel(), *(m.ravel() for m in aug)):
            assert v != 0 and abs(v) <= 2 and (2 * v).is_integer()
        assert set(np.unique(y)) <= {0.0, 1.0}
        # Every unit in its useful range (a NumPy forward pass, not the library's).
        hs = _forward(aug, x, activation)
        for h in hs:
            assert np.all(np.abs(h) <= 3)
        if activation == "relu":
            for h in hs[:-1]:
                assert np.all((h > 0).any(axis=0)), "every ReLU unit active somewhere"
        # Every gradient entry big enough to write down (by central differences in float64,
        # not the generator's chain rule): 1e-3 give or take the differences' own error.
        assert np.min(np.abs(_fd_grad(aug, x, y, activation, loss))) >= 1e-3 * (1 - 1e-6)


_ACT = {
    "sigmoid": lambda h: 1 / (1 + np.exp(-h)),
    "tanh": np.tanh,
    "relu": lambda h: np.maximum(h, 0.0),
    "identity": lambda h: h,
}


def _forward(aug, x, activation, masks=None) -> list[np.ndarray]:
    """Each layer's pre-activation (the last is the logit), for augmented matrices. With
    ``masks``, ReLU units keep the pattern given (h > 0 at the point differentiated): the
    derivative 0 at the kink, JAX's convention, for differences across it."""
    hs, a = [], x
    for l, m in enumerate(aug):
        h = a @ m[1:] + m[0]
        hs.append(h)
        if l == len(aug) - 1:
            break
        a = h * masks[l] if masks is not None else _ACT[activation](h)
    return hs


def _loss(aug, x, y, activation, loss, masks) -> float:
    o = _forward(aug, x, activation, masks)[-1]
    if loss == "softmax_ce":  # y one-hot: log sum_j e^(o_j) - o_y per example
        top = o.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(o - top).sum(axis=1))
        return float((lse - (o * y).sum(axis=1)).mean())
    z = 1 / (1 + np.exp(-o))
    per = {
        "bce": np.logaddexp(0, o) - y * o,  # -y log z - (1 - y) log(1 - z), from the logit
        "mse": (z - y) ** 2,
        "half_mse": 0.5 * (z - y) ** 2,
        "mse_linear": (o - y) ** 2,
    }[loss]
    return float(per.sum(axis=1).mean())


def _fd_grad(aug, x, y, activation, loss, eps=1e-6) -> np.ndarray:
    masks = None
    if activation == "relu":
        masks = [h > 0 for h in _forward(aug, x, activation)[:-1]]
    out = []
    for m in aug:
        for idx in np.ndindex(m.shape):
            keep = m[idx]
            m[idx] = keep + eps
            up = _loss(aug, x, y, activation, loss, masks)
            m[idx] = keep - eps
            down = _loss(aug, x, y, activation, loss, masks)
            m[idx] = keep
            out.append((up - down) / (2 * eps))
    return np.array(out)


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


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_exercises_of_three_or_four_classes_can_be_worked_by_hand(activation):
    for seed in range(60):
        sizes = [(2, 2, 3), (3, 2, 3), (2, 3, 4)][seed % 3]
        batch = 1 + seed % 2
        ex = jaxbp.random_exercise(
            seed, sizes, activation=activation, loss="softmax_ce", batch=batch
        )
        y = np.asarray(ex.y)
        assert y.shape == (batch,) and y.dtype.kind == "i" and set(y) <= set(range(sizes[-1]))
        aug = [np.array(m, np.float64) for m in jaxbp.to_augmented(ex.params)]
        x = np.asarray(ex.x, np.float64)
        for v in itertools.chain(x.ravel(), *(m.ravel() for m in aug)):
            assert v != 0 and abs(v) <= 2 and (2 * v).is_integer()
        assert all(np.all(np.abs(h) <= 3) for h in _forward(aug, x, activation))
        onehot = np.eye(sizes[-1])[y]
        assert np.min(np.abs(_fd_grad(aug, x, onehot, activation, "softmax_ce"))) >= 1e-3 * (
            1 - 1e-6
        )
    with pytest.raises(ValueError, match="needs an output unit per class"):
        jaxbp.random_exercise(0, (2, 2, 1), loss="softmax_ce")
