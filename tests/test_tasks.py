"""Built-in tasks: the data each one promises, deterministic for its seed."""

import jax
import numpy as np
import pytest

import jaxbp
from tests.helpers import assert_close


def test_xor_and_parity_labels():
    t = jaxbp.load_task("xor")
    np.testing.assert_array_equal(t.y, np.logical_xor(t.x[:, 0], t.x[:, 1]))
    for bits in (1, 3, 5):
        p = jaxbp.load_task("parity", bits=bits)
        assert p.x.shape == (2**bits, bits) and len({tuple(r) for r in p.x}) == 2**bits
        np.testing.assert_array_equal(p.y, p.x.sum(axis=1) % 2)


def test_seed_task_is_the_exercise():
    t = jaxbp.load_task("seed")
    ex = jaxbp.seed_exercise()
    np.testing.assert_array_equal(t.x, np.asarray(ex.x))
    np.testing.assert_array_equal(t.y, np.asarray(ex.y))


@pytest.mark.parametrize("name", ["moons", "spirals"])
def test_generated_2d_sets(name):
    a = jaxbp.load_task(name, n=101, seed=1)
    b = jaxbp.load_task(name, n=101, seed=1)
    c = jaxbp.load_task(name, n=101, seed=2)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    assert a.x.shape == (101, 2) and set(np.unique(a.y)) == {0.0, 1.0}
    assert abs(a.y.sum() - 50.5) <= 0.5  # balanced
    clean = jaxbp.load_task(name, n=100, noise=0.0)
    # Without noise the classes do not overlap: each point's nearest other point shares its label.
    d = np.linalg.norm(clean.x[:, None] - clean.x[None], axis=-1) + np.eye(100) * 1e9
    assert np.mean(clean.y[d.argmin(axis=1)] == clean.y) > 0.95


def test_breast_cancer_split_and_standardization():
    t = jaxbp.load_task("breast_cancer")
    assert t.x.shape[1] == 30 and len(t.y) + len(t.y_test) == 569
    assert abs(len(t.y_test) / 569 - 0.25) < 0.01
    # Stratified: both splits keep the class balance (212 malignant, 357 benign).
    assert abs(t.y.mean() - t.y_test.mean()) < 0.02
    assert_close(t.x.mean(axis=0), 0, kind="reorder")
    assert_close(t.x.std(axis=0), 1, kind="reorder")
    again = jaxbp.load_task("breast_cancer")
    np.testing.assert_array_equal(t.x_test, again.x_test)


def test_digits_binary_split_and_standardization():
    from sklearn.datasets import load_digits

    raw = load_digits()
    t = jaxbp.load_task("digits")
    assert t.x.shape[1] == 64 and len(t.y) + len(t.y_test) == 1797
    assert_close(t.x.mean(axis=0), 0, kind="reorder")
    spread = t.x.std(axis=0)
    assert_close(spread[spread > 0], 1, kind="reorder")
    # Undo the standardization from the data alone: both splits together are sklearn's
    # images (each its own label: odd digits are 1), in some order.
    z = np.concatenate([t.x, t.x_test])
    pix = raw.data.astype(np.float64)
    scale = np.where(
        z.std(axis=0) > 0, pix.std(axis=0) / np.where(z.std(axis=0) > 0, z.std(axis=0), 1), 1
    )
    images = z * scale + (pix.mean(axis=0) - scale * z.mean(axis=0))
    np.testing.assert_allclose(images, np.round(images), atol=1e-9)
    labels = {}
    for row, digit in zip(pix, raw.target):
        labels.setdefault(tuple(row), set()).add(int(digit) % 2)
    y_all = np.concatenate([t.y, t.y_test])
    assert sorted(map(tuple, np.round(images))) == sorted(map(tuple, pix))
    assert all(int(y) in labels[tuple(r)] for r, y in zip(np.round(images), y_all))
    # Stratified by digit: a quarter of each class held out, so the balance holds.
    assert abs(len(t.y_test) / 1797 - 0.25) < 0.01
    assert abs(t.y.mean() - t.y_test.mean()) < 0.02
    zero = jaxbp.load_task("digits", positive=[0])
    assert np.concatenate([zero.y, zero.y_test]).sum() == (raw.target == 0).sum()
    np.testing.assert_array_equal(jaxbp.load_task("digits").x_test, t.x_test)
    for bad in ([], [10], "13", list(range(10))):
        with pytest.raises(ValueError, match="positive"):
            jaxbp.load_task("digits", positive=bad)


def test_bad_task_arguments():
    with pytest.raises(ValueError, match=r"unknown task 'mnist'; expected one of"):
        jaxbp.load_task("mnist")
    with pytest.raises(ValueError, match=r"parity bits must be an integer from 1 to 16; got 0"):
        jaxbp.load_task("parity", bits=0)
    with pytest.raises(ValueError, match=r"task 'xor': .*unexpected keyword argument 'bits'"):
        jaxbp.load_task("xor", bits=3)
    with pytest.raises(ValueError, match=r"noise must be a finite number >= 0"):
        jaxbp.load_task("moons", noise=-1.0)


def test_xor_is_learnable_by_many_2_2_1_networks():
    t = jaxbp.load_task("xor")
    r = jaxbp.train_many(
        jax.random.key(0),
        (2, 2, 1),
        t.x,
        t.y,
        n_inits=64,
        steps=2000,
        learning_rate=2.0,
        init_scale=1.0,
        progress=False,
    )
    # Some starts solve XOR, some stall (the classic local minima and plateaus).
    assert 0.2 < r.converged.mean() < 1.0
    assert np.all(r.accuracy[r.converged] == 1.0)


def test_a_missing_data_package_is_an_import_error_with_the_extra_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'jaxbp\[data\]'"):
        jaxbp.load_task("breast_cancer")


@pytest.mark.parametrize(
    "task, loader",
    [
        ("breast_cancer", "load_breast_cancer"),
        ("digits", "load_digits"),
        ("iris", "load_iris"),
        ("wine", "load_wine"),
    ],
)
def test_bundled_data_is_read_as_scikit_learn_loads_it(task, loader, monkeypatch):
    import sys

    import sklearn.datasets

    from jaxbp.sweeps._tasks import _load_sklearn

    raw = getattr(sklearn.datasets, loader)()
    # Read from scikit-learn's files without its loaders (a blocked import would fail).
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    data, target = _load_sklearn(task)
    assert data.dtype == np.float64 and target.dtype.kind == "i"
    assert data.tobytes() == raw.data.astype(np.float64).tobytes()
    np.testing.assert_array_equal(target, raw.target)


def test_bundled_data_falls_back_to_the_loader_where_the_file_is_not(monkeypatch):
    import sklearn.datasets

    from jaxbp.sweeps import _tasks

    # A scikit-learn that keeps its files elsewhere: its loader reads them.
    monkeypatch.setitem(_tasks._SKLEARN_FILES, "iris", ("moved.csv", "load_iris"))
    data, target = _tasks._load_sklearn("iris")
    raw = sklearn.datasets.load_iris()
    assert data.dtype == np.float64 and data.tobytes() == raw.data.astype(np.float64).tobytes()
    np.testing.assert_array_equal(target, raw.target)


def test_a_missing_plotting_package_is_an_import_error_with_the_extra_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'jaxbp\[plots\]'"):
        jaxbp.pyplot()


@pytest.mark.parametrize(
    "name, options, loader, classes",
    [
        ("iris", {}, "load_iris", 3),
        ("wine", {}, "load_wine", 3),
        ("digits", {"classes": 10}, "load_digits", 10),
    ],
)
def test_tasks_of_several_classes(name, options, loader, classes):
    import sklearn.datasets

    raw = getattr(sklearn.datasets, loader)()
    t = jaxbp.load_task(name, **options)
    assert t.n_classes == classes and t.y.dtype.kind == "i" and t.y_test.dtype.kind == "i"
    assert len(t.y) + len(t.y_test) == len(raw.target) and t.x.shape[1] == raw.data.shape[1]
    # Stratified: a quarter of each class (rounded down) held out.
    want = np.bincount(raw.target) // 4
    np.testing.assert_array_equal(np.bincount(t.y_test, minlength=classes), want)
    np.testing.assert_array_equal(
        np.bincount(t.y, minlength=classes), np.bincount(raw.target) - want
    )
    # Standardized with the training split's statistics.
    assert_close(t.x.mean(axis=0), 0, kind="reorder")
    spread = t.x.std(axis=0)
    assert_close(spread[spread > 0], 1, kind="reorder")
    again = jaxbp.load_task(name, **options)
    np.testing.assert_array_equal(again.x_test, t.x_test)
    # Undo the standardization from the data alone: each example is one of sklearn's,
    # with its own label.
    z, pix = np.concatenate([t.x, t.x_test]), raw.data.astype(np.float64)
    zs = z.std(axis=0)
    scale = np.where(zs > 0, pix.std(axis=0) / np.where(zs > 0, zs, 1), 1)
    rows = np.round(z * scale + (pix.mean(axis=0) - scale * z.mean(axis=0)), 6)
    labels = {}
    for row, k in zip(np.round(pix, 6), raw.target):
        labels.setdefault(tuple(row), set()).add(int(k))
    assert all(int(k) in labels[tuple(r)] for r, k in zip(rows, np.concatenate([t.y, t.y_test])))


def test_digits_classes_option_is_checked():
    with pytest.raises(ValueError, match=r"classes must be 2 .* or 10"):
        jaxbp.load_task("digits", classes=3)
    with pytest.raises(ValueError, match="positive is for the binary task"):
        jaxbp.load_task("digits", classes=10, positive=[1])
    assert jaxbp.load_task("digits").n_classes == 2  # the odd-against-even task stays the default
