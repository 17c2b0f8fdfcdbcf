"""An independent second library: scikit-learn's MLPClassifier (logistic, plain SGD, full batch)."""

import warnings

import jax
import numpy as np
import pytest

import jaxbp
from tests.helpers import assert_close

sklearn_nn = pytest.importorskip("sklearn.neural_network")


def _sklearn_from(params, x, y, lr):
    """An MLPClassifier initialised by one partial_fit, then given our weights in place."""
    sizes = jaxbp.layer_sizes(params)
    clf = sklearn_nn.MLPClassifier(
        hidden_layer_sizes=sizes[1:-1],
        activation="logistic",
        solver="sgd",
        learning_rate="constant",
        learning_rate_init=lr,
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        batch_size=x.shape[0],
        shuffle=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(x, y, classes=[0, 1])
    # The SGD optimizer keeps references to these arrays: write into them.
    for layer, W, b in zip(params, clf.coefs_, clf.intercepts_):
        W[...] = np.asarray(layer["W"])
        b[...] = np.asarray(layer["b"])
    return clf


@pytest.mark.parametrize("sizes", [(3, 2, 1), (4, 5, 3, 1)])
def test_sgd_steps_match_sklearn(sizes):
    key = jax.random.key(7)
    params = jaxbp.init_mlp(key, sizes, scheme="normal", dtype=np.float64)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, sizes[0]))
    y = (rng.uniform(size=8) < 0.5).astype(np.int64)
    y[:2] = [0, 1]  # both classes present
    lr = 0.3
    clf = _sklearn_from(params, x, y, lr)

    # Step 1 gives sklearn's gradient: (W0 - W1) / lr.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(x, y)
    grads = jaxbp.manual_grad(params, x, y.astype(np.float64), activation="sigmoid")
    for layer, g, W1, b1 in zip(params, grads, clf.coefs_, clf.intercepts_):
        assert_close((np.asarray(layer["W"]) - W1) / lr, g["W"], kind="independent")
        assert_close((np.asarray(layer["b"]) - b1) / lr, g["b"], kind="independent")

    # Four more steps: our compiled loop against sklearn, parameter by parameter.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(4):
            clf.partial_fit(x, y)
    for grad in ("manual", "autodiff"):
        result = jaxbp.train(params, x, y.astype(np.float64), lr, steps=5, grad=grad)
        for layer, W, b in zip(result.params, clf.coefs_, clf.intercepts_):
            assert_close(layer["W"], W, kind="independent")
            assert_close(layer["b"], b, kind="independent")
    # sklearn's reported loss is the BCE at the start of its last step.
    assert_close(result.history.loss[-1], clf.loss_, kind="independent")
