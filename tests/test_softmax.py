"""Softmax cross-entropy on integer labels: three gradients, two peers, the extremes, the labels."""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from tests.helpers import assert_close, assert_tree_close

NETS = [((4, 3), 3), ((3, 5, 4), 4), ((5, 4, 3, 6), 6), ((2, 3, 2), 2)]


def _problem(sizes, seed, batch=7):
    rng = np.random.default_rng(seed)
    params = jaxbp.init_mlp(jax.random.key(seed), sizes, dtype=np.float64)
    x = rng.normal(size=(batch, sizes[0]))
    y = rng.integers(0, sizes[-1], size=batch)
    return params, x, y


@pytest.mark.parametrize("sizes, classes", NETS)
def test_manual_equals_autodiff_equals_finite_differences(sizes, classes):
    params, x, y = _problem(sizes, seed=len(sizes) + classes)
    ad = jaxbp.autodiff_grad(params, x, y, activation="tanh", loss="softmax_ce")
    mg = jaxbp.manual_grad(params, x, y, activation="tanh", loss="softmax_ce")
    assert_tree_close(mg, ad, dtype=np.float64)
    fd = jaxbp.numerical_grad(params, x, y, activation="tanh", loss="softmax_ce")
    assert_tree_close(fd, ad, kind="finite_difference", dtype=np.float64)


# The shapes, batches and tanh units of the test above (other weights): the same compiled
# gradient programs.
@pytest.mark.parametrize("sizes, classes", NETS)
def test_loss_and_gradients_equal_torch_cross_entropy(sizes, classes, torch):
    params, x, y = _problem(sizes, seed=3 * classes)
    ts = [
        (
            torch.tensor(np.asarray(l["W"]), requires_grad=True),
            torch.tensor(np.asarray(l["b"]), requires_grad=True),
        )
        for l in params
    ]
    a = torch.tensor(x)
    for i, (W, b) in enumerate(ts):
        a = a @ W + b
        if i < len(ts) - 1:
            a = torch.tanh(a)
    loss = torch.nn.functional.cross_entropy(a, torch.tensor(y))
    loss.backward()
    ours = jaxbp.compute_loss(params, x, y, activation="tanh", loss="softmax_ce")
    assert_close(ours, loss.detach().numpy(), kind="independent")
    for source in (jaxbp.autodiff_grad, jaxbp.manual_grad):
        g = source(params, x, y, activation="tanh", loss="softmax_ce")
        for layer, (W, b) in zip(g, ts):
            assert_close(layer["W"], W.grad.numpy(), kind="independent")
            assert_close(layer["b"], b.grad.numpy(), kind="independent")


def _net_with_logits(logits, dtype):
    # The output layer's weights are 0 and its bias the logits: o = logits for any input,
    # so dL/db_out is exactly softmax(logits) - onehot(y).
    k = len(logits)
    return jaxbp.from_augmented(
        [[[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]], [list(logits), [0.0] * k, [0.0] * k]], dtype=dtype
    )


def _exact(logits, label):
    top = max(logits)
    s = sum(math.exp(v - top) for v in logits)
    probs = [math.exp(v - top) / s for v in logits]
    return (top + math.log(s)) - logits[label], [p - (i == label) for i, p in enumerate(probs)]


EXTREMES = [(0.0, 0.0, 0.0), (1e4, -1e4, 0.0), (-1e4, 1e4, 3.0), (1e9, -1e9, 0.0), (-1e9, 0.0, 1e9)]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("logits", EXTREMES)
@pytest.mark.parametrize("label", [0, 1, 2])
@pytest.mark.parametrize("source", ["autodiff", "manual"])
def test_extreme_logits_give_a_finite_loss_and_the_exact_gradient(dtype, logits, label, source):
    if dtype == np.float16 and max(abs(v) for v in logits) > float(np.finfo(np.float16).max):
        pytest.skip("1e9 is not a float16 number")
    params = _net_with_logits(logits, dtype)
    x, y = np.array([[0.5, -1.0]], dtype), np.array([label])
    value = float(jaxbp.compute_loss(params, x, y, loss="softmax_ce"))
    want_loss, want_delta = _exact(list(logits), label)
    assert math.isfinite(value)
    assert value == pytest.approx(
        want_loss, rel=jaxbp.tolerance(dtype).rtol, abs=1e-3 if dtype == np.float16 else 1e-7
    )
    fn = jaxbp.autodiff_grad if source == "autodiff" else jaxbp.manual_grad
    g = fn(params, x, y, loss="softmax_ce")
    delta = np.asarray(g[1]["b"], np.float64)
    assert np.all(np.isfinite(delta))
    if max(abs(v) for v in logits) >= 1e4:
        # Saturated: one probability exactly 1, the others exactly 0, in every dtype.
        np.testing.assert_array_equal(delta, np.asarray(want_delta))
    else:
        assert_close(delta, np.asarray(want_delta), dtype=dtype)
    for leaf in jax.tree_util.tree_leaves(g):
        assert np.all(np.isfinite(leaf))


@pytest.mark.parametrize(
    "y, message",
    [
        ([0, 1, 3], r"class indices from 0 to 2 \(the network has 3 output units\); y\[2\] is 3"),
        ([0, -1, 2], r"y\[1\] is -1"),
        ([0, 1.5, 2], r"must hold class indices \(integers\); y\[1\] is 1.5"),
        ([[0], [1], [2]], r"one class index per example: shape \(3,\)"),
        ([[1, 0, 0], [0, 1, 1], [0, 0, 1]], "not one-hot"),
        ([True, False, True], "must hold class indices"),
    ],
)
def test_bad_class_labels_are_refused_in_one_line(y, message):
    params = jaxbp.init_mlp(jax.random.key(0), (2, 3))
    x = np.zeros((3, 2), np.float32)
    with pytest.raises((ValueError, TypeError), match=message):
        jaxbp.compute_loss(params, x, np.asarray(y), loss="softmax_ce")


def test_one_hot_rows_and_class_indices_are_the_same_labels():
    params, x, y = _problem((3, 4, 3), seed=1)
    rows = np.eye(3)[y]
    for fn in (jaxbp.compute_loss, jaxbp.autodiff_grad, jaxbp.manual_grad):
        assert_tree_close(
            fn(params, x, rows, loss="softmax_ce"), fn(params, x, y, loss="softmax_ce")
        )


def test_accuracy_is_the_argmax_and_convergence_every_example_right():
    params, x, _ = _problem((4, 6, 3), seed=2, batch=12)
    y = np.argmax(x @ np.random.default_rng(2).normal(size=(4, 3)), axis=1)  # learnable
    result = jaxbp.train(params, x, y, 0.5, loss="softmax_ce", steps=300)
    logits = np.asarray(jaxbp.forward(result.params, x))
    right = np.argmax(logits, axis=1) == y
    runs = jaxbp.train_many(
        jax.random.key(0), (4, 6, 3), x, y, n_inits=8, steps=300, learning_rate=0.5,
        loss="softmax_ce", dtype=np.float64, keep_params=True,
    )  # fmt: skip
    for m in range(8):
        member = jax.tree_util.tree_map(lambda a, m=m: a[m], runs.params)
        got = np.argmax(np.asarray(jaxbp.forward(member, x)), axis=1) == y
        assert float(runs.accuracy[m]) == pytest.approx(got.mean())
        assert bool(runs.converged[m]) == bool(got.all())
    assert right.mean() > 0.9


def test_one_sgd_step_of_sklearn_mlpclassifier_on_three_classes():
    sklearn_nn = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(9, 4))
    y = np.array([0, 1, 2, 0, 1, 2, 2, 1, 0])
    params = jaxbp.init_mlp(jax.random.key(4), (4, 5, 3), dtype=np.float64)
    lr = 0.2
    clf = sklearn_nn.MLPClassifier(
        hidden_layer_sizes=(5,), activation="logistic", solver="sgd", learning_rate="constant",
        learning_rate_init=lr, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
        batch_size=x.shape[0], shuffle=False,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(x, y, classes=[0, 1, 2])
    for layer, W, b in zip(params, clf.coefs_, clf.intercepts_):
        W[...], b[...] = np.asarray(layer["W"]), np.asarray(layer["b"])
    # Its softmax output is ours.
    probs = jax.nn.softmax(jaxbp.forward(params, x), axis=-1)
    assert_close(probs, clf.predict_proba(x), kind="independent")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(x, y)
    # Its log-loss before the step is ours, and so is the step itself.
    assert_close(jaxbp.compute_loss(params, x, y, loss="softmax_ce"), clf.loss_, kind="independent")
    for grad in ("manual", "autodiff"):
        result = jaxbp.train(params, x, y, lr, steps=1, loss="softmax_ce", grad=grad)
        for layer, W, b in zip(result.params, clf.coefs_, clf.intercepts_):
            assert_close(layer["W"], W, kind="independent")
            assert_close(layer["b"], b, kind="independent")


def _taught():
    params = jaxbp.from_augmented(
        [[[0.5, -0.5], [1, 0.5], [-1, 1]], [[0, 0.5, -0.5], [1, -1, 0.5], [-0.5, 1, 1]]],
        dtype=np.float64,
    )
    return params, np.array([[1.0, 2.0]]), np.array([2])


def test_the_worked_solution_writes_the_softmax_out_with_the_numbers():
    params, x, y = _taught()
    text = jaxbp.explain(params, x, y, loss="softmax_ce").to_text()
    o = np.asarray(jaxbp.forward(params, x))[0]
    total = " + ".join(f"e^({v:.8g})" for v in o)
    assert f"loss = -log(e^({o[2]:.8g}) / ({total}))" in text
    z = np.exp(o) / np.exp(o).sum()
    assert f"= {z[2]:.8g} - 1 = {z[2] - 1:.8g}" in text
    assert f"{float(jaxbp.compute_loss(params, x, y, loss='softmax_ce')):.8g}" in text


@pytest.mark.parametrize(
    "mistake, words",
    [
        (lambda o, z, y: 1 / (1 + np.exp(-o)) - y, "a sigmoid per output was used"),
        (lambda o, z, y: z - np.roll(y, 1), "the one-hot label was put at the wrong class"),
        (lambda o, z, y: y - z, "the sign is flipped"),
        (
            lambda o, z, y: np.exp(o) / (np.exp(o).sum() - np.exp(o)) - y,
            "left out the class's own term",
        ),
    ],
)
def test_the_mistakes_students_make_with_the_softmax_are_named(mistake, words):
    params, x, y = _taught()
    o = np.asarray(jaxbp.forward(params, x))[0]
    z = np.exp(o) / np.exp(o).sum()
    onehot = np.eye(3)[y[0]]
    right = jaxbp.check_derivation(
        params, x, y, {"dL/do": [np.round(z - onehot, 4).tolist()]}, loss="softmax_ce"
    )
    assert right.verdicts["dL/do"] == "correct"
    claimed = np.round(mistake(o, z, onehot), 4)
    report = jaxbp.check_derivation(params, x, y, {"dL/do": [claimed.tolist()]}, loss="softmax_ce")
    assert report.verdicts["dL/do"] == "wrong"
    notes = [
        n
        for n, v in zip(report.diagnoses["dL/do"][0], report.entry_verdicts["dL/do"][0])
        if v == "wrong"
    ]
    assert notes and all(words in n for n in notes), notes


def test_a_sweep_of_three_classes_equals_train_many_and_bad_combinations_write_nothing(
    tmp_path, capsys
):
    import csv

    from jaxbp.cli import main

    def config(loss, out_units):
        path = tmp_path / f"{loss}{out_units}.toml"
        path.write_text(
            f'[task]\nname = "iris"\n[network]\nsizes = [4, 5, {out_units}]\nactivation = "tanh"\n'
            f'loss = "{loss}"\n[optimizer]\nname = "sgd"\nlearning_rates = [0.5]\n[init]\n'
            "scales = [1.0]\n[run]\nn_inits = 4\nsteps = 40\nrecord_every = 10\n"
        )
        return path

    out = tmp_path / "run"
    assert main(["sweep", str(config("softmax_ce", 3)), "--out", str(out), "--no-progress"]) == 0
    with open(out / "members.csv") as f:
        rows = list(csv.DictReader(f))
    task = jaxbp.load_task("iris")
    ref = jaxbp.train_many(
        jax.random.key(0), (4, 5, 3), task.x, task.y, n_inits=4, steps=40, learning_rate=0.5,
        activation="tanh", loss="softmax_ce", record_every=10, x_test=task.x_test,
        y_test=task.y_test, dtype=np.float32, progress=False,
    )  # fmt: skip
    assert [float(r["test_accuracy"]) for r in rows] == [
        float(f"{v:.9g}") for v in ref.test_accuracy
    ]
    assert [float(r["accuracy"]) for r in rows] == [float(f"{v:.9g}") for v in ref.accuracy]
    assert (out / "figures" / "final_loss.png").is_file()
    capsys.readouterr()
    for loss, units, words in [
        ("bce", 1, "task 'iris' has 3 classes: [network] loss must be 'softmax_ce'"),
        (
            "softmax_ce",
            2,
            "sizes ends with 2 output units but task 'iris' with loss 'softmax_ce' needs 3",
        ),
    ]:
        bad = tmp_path / f"bad_{loss}"
        assert main(["sweep", str(config(loss, units)), "--out", str(bad)]) == 2
        assert words in capsys.readouterr().err and not bad.exists()


def test_a_model_of_ones_own_trains_on_class_labels_as_a_hand_optax_loop_does():
    import optax

    def init(key, scale):
        k1, k2 = jax.random.split(key)
        return {
            "W": scale * jax.random.normal(k1, (4, 3), jnp.float32),
            "V": scale * jax.random.normal(k2, (3, 3), jnp.float32),
        }

    def apply(params, x):
        return jnp.tanh(x @ params["W"]) @ params["V"]

    model = jaxbp.Model(init, apply, name="two-layer")
    rng = np.random.default_rng(6)
    x = rng.normal(size=(10, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=10)
    runs = jaxbp.train_many(
        jax.random.key(2), model, x, y, n_inits=3, steps=25, learning_rate=0.3,
        loss="softmax_ce", keep_params=True, batching="vmap", progress=False, dtype=np.float32,
    )  # fmt: skip
    onehot = np.eye(3, dtype=np.float32)[y]
    for m in range(3):
        start = model.init(jax.random.fold_in(jax.random.key(2), m), 1.0)
        params, opt = start, optax.sgd(0.3)
        state = opt.init(params)

        def loss_fn(p):
            return -jnp.mean(jnp.sum(onehot * jax.nn.log_softmax(apply(p, x)), axis=1))

        for _ in range(25):
            g = jax.grad(loss_fn)(params)
            updates, state = opt.update(g, state)
            params = optax.apply_updates(params, updates)
        assert_tree_close(runs.member(m)["params"], params, dtype=np.float32)
        right = np.argmax(np.asarray(apply(params, x)), axis=1) == y
        assert float(runs.accuracy[m]) == pytest.approx(right.mean())
