"""Built-in tasks: small classification data sets that need no download.

Each task is a [`Task`][jaxbp.sweeps.Task] with training inputs and labels (and, where the
task has one, a held-out test split), generated deterministically from a seed:

- ``seed``: the seed exercise's single example (x = (1, 2, 2), y = 1);
- ``xor``: the four corners of the unit square, label x1 XOR x2;
- ``parity`` (``bits``): all 2^bits binary vectors, label the parity of their sum;
- ``moons``, ``spirals`` (``n``, ``noise``, ``seed``): two interleaved 2-D classes;
- ``breast_cancer``: the Wisconsin data bundled with scikit-learn (569 examples,
  30 features), standardized with the training split's mean and deviation, with
  a fixed stratified 75/25 train/test split;
- ``digits`` (``positive``, ``classes``): the 8x8 handwritten digits bundled with
  scikit-learn (1,797 images, 64 pixel features), standardized and split the same
  way (stratified by digit): as a binary task, label 1 for the digit classes in
  ``positive`` (default the odd digits); with ``classes=10``, all ten digits;
- ``iris`` (150 flowers, 4 features, 3 classes) and ``wine`` (178 wines, 13
  features, 3 classes), bundled with scikit-learn, standardized and split the same
  way (stratified by class).

Tasks of more than two classes have labels that are class indices (``y`` integers
from 0): train them with ``loss="softmax_ce"`` and one output unit per class.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import math
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..teach._exercises import SEED_X, SEED_Y
from ..util._checks import is_int

__all__ = ["TASKS", "Task", "load_task"]


class Task(NamedTuple):
    """A classification data set: ``x`` is ``(n, features)``; ``y`` is ``(n,)``, in {0, 1}
    for a binary task, class indices ``0 .. n_classes - 1`` (integers) for more classes."""

    name: str
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    n_classes: int = 2

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])


def _seed_task() -> Task:
    return Task("seed", np.array([SEED_X], np.float64), np.array([SEED_Y], np.float64))


def _xor() -> Task:
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return Task("xor", x, np.array([0.0, 1.0, 1.0, 0.0]))


def _parity(bits: int = 3) -> Task:
    if not is_int(bits) or not 1 <= bits <= 16:
        raise ValueError(f"parity bits must be an integer from 1 to 16; got {bits!r}")
    x = np.array(
        [[(i >> b) & 1 for b in range(bits - 1, -1, -1)] for i in range(2**bits)], np.float64
    )
    return Task(f"parity{bits}", x, x.sum(axis=1) % 2)


def _check_n(n, noise):
    if not is_int(n) or n < 2:
        raise ValueError(f"n must be an integer >= 2; got {n!r}")
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0; got {noise!r}")


def _moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> Task:
    _check_n(n, noise)
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0 = np.linspace(0, np.pi, n0)
    t1 = np.linspace(0, np.pi, n - n0)
    x = np.concatenate(
        [
            np.stack([np.cos(t0), np.sin(t0)], axis=1),
            np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], axis=1),
        ]
    )
    x = x + noise * rng.normal(size=x.shape)
    y = np.concatenate([np.zeros(n0), np.ones(n - n0)])
    return Task("moons", x, y)


def _spirals(n: int = 200, noise: float = 0.05, seed: int = 0, turns: float = 1.5) -> Task:
    _check_n(n, noise)
    rng = np.random.default_rng(seed)
    n0 = n // 2
    parts, labels = [], []
    for label, count in ((0, n0), (1, n - n0)):
        t = np.linspace(0.1, 1.0, count)
        angle = 2 * np.pi * turns * t + label * np.pi
        parts.append(np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1))
        labels.append(np.full(count, float(label)))
    x = np.concatenate(parts) + noise * rng.normal(size=(n, 2))
    return Task("spirals", x, np.concatenate(labels))


def _breast_cancer(seed: int = 0) -> Task:
    x, target = _load_sklearn("breast_cancer")
    y = target.astype(np.float64)
    return _split_standardized("breast_cancer", x, y, y, seed)


# The files scikit-learn ships its small data sets in (``sklearn/datasets/data``): the
# digits as one gzipped table of 64 pixels and the digit per row; the others as a CSV
# whose first row gives the counts and the class names, then features and class per row.
_SKLEARN_FILES = {
    "breast_cancer": ("breast_cancer.csv", "load_breast_cancer"),
    "digits": ("digits.csv.gz", "load_digits"),
    "iris": ("iris.csv", "load_iris"),
    "wine": ("wine_data.csv", "load_wine"),
}


def _load_sklearn(task: str) -> tuple[np.ndarray, np.ndarray]:
    """The features (float64) and class numbers (int) of a data set bundled with
    scikit-learn, as its loader gives them. The files are read where scikit-learn
    installed them, without importing it (1.1-1.4 s of start-up); where they are not, its
    loader reads them."""
    name, loader = _SKLEARN_FILES[task]
    # A module entry of None is how an import is blocked: ``import sklearn`` would fail.
    blocked = "sklearn" in sys.modules and sys.modules["sklearn"] is None
    spec = None if blocked else importlib.util.find_spec("sklearn")
    if spec is None:
        raise ImportError(
            f"task {task!r} reads the data bundled with scikit-learn: pip install 'jaxbp[data]'"
        )
    path = Path(spec.submodule_search_locations[0], "datasets", "data", name)
    if not path.is_file():
        import sklearn.datasets

        data = getattr(sklearn.datasets, loader)()
        return data.data.astype(np.float64), data.target
    if name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            table = np.loadtxt(f, delimiter=",")
        return table[:, :-1], table[:, -1].astype(int)
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        n, width = (int(v) for v in next(rows)[:2])
        data, target = np.empty((n, width)), np.empty(n, dtype=int)
        for i, row in enumerate(rows):
            data[i] = np.asarray(row[:-1], dtype=np.float64)
            target[i] = int(row[-1])
    return data, target


def _classes(name: str, seed: int) -> Task:
    x, target = _load_sklearn(name)
    y = target.astype(np.int64)
    return _split_standardized(name, x, y, y, seed)._replace(n_classes=int(y.max()) + 1)


def _iris(seed: int = 0) -> Task:
    return _classes("iris", seed)


def _wine(seed: int = 0) -> Task:
    return _classes("wine", seed)


def _split_standardized(name, x, y, strata, seed) -> Task:
    """A fixed stratified 75/25 split, standardized with the training split's mean and
    deviation (a feature constant in training is centred, not scaled)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for label in np.unique(strata):  # a quarter of each stratum is held out
        idx = np.flatnonzero(strata == label)
        test[rng.permutation(idx)[: len(idx) // 4]] = True
    mean, std = x[~test].mean(axis=0), x[~test].std(axis=0)
    z = (x - mean) / np.where(std > 0, std, 1.0)
    return Task(name, z[~test], y[~test], z[test], y[test])


_ODD = (1, 3, 5, 7, 9)  # the binary task's default: odd digits against even


def _digits(positive=None, seed: int = 0, classes: int = 2) -> Task:
    if classes not in (2, 10) or isinstance(classes, bool):
        raise ValueError(f"classes must be 2 (a binary task) or 10 (every digit); got {classes!r}")
    if classes == 10:
        if positive is not None and list(positive) != list(_ODD):
            raise ValueError(
                "positive is for the binary task; with classes=10 every digit is a class"
            )
        return _classes("digits", seed)
    positive = _ODD if positive is None else positive
    if isinstance(positive, (str, bytes)) or not hasattr(positive, "__iter__"):
        raise ValueError(f"positive must be a list of digit classes 0-9; got {positive!r}")
    classes = list(positive)
    if not classes or not all(is_int(c) and 0 <= c <= 9 for c in classes):
        raise ValueError(f"positive must be a list of digit classes 0-9; got {positive!r}")
    if len(set(classes)) == 10:
        raise ValueError("positive names every digit class: the task would have one label")
    x, digit = _load_sklearn("digits")
    y = np.isin(digit, classes).astype(np.float64)
    return _split_standardized("digits", x, y, digit, seed)


TASKS = {
    "seed": _seed_task,
    "xor": _xor,
    "parity": _parity,
    "moons": _moons,
    "spirals": _spirals,
    "breast_cancer": _breast_cancer,
    "digits": _digits,
    "iris": _iris,
    "wine": _wine,
}
"""The built-in tasks by name, each a function of the task's options returning a
[`Task`][jaxbp.sweeps.Task] (see [`load_task`][jaxbp.sweeps.load_task])."""


def load_task(name: str, **options) -> Task:
    """A built-in task by name; ``options`` are the task's own (``bits``, ``n``, ``noise``,
    ``seed``, ``positive``, ``classes``).

    Examples:
      >>> t = load_task("parity", bits=3)
      >>> t.x.shape, t.y.tolist()
      ((8, 3), [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    try:
        return TASKS[name](**options)
    except TypeError as e:
        raise ValueError(f"task {name!r}: {e}") from None
