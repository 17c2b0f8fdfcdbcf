"""The textbooks' squared error, E = sum 1/2 (target - out)^2: half_mse and half_mse_linear."""

import jax
import numpy as np
import pytest

import jaxbp
from tests.helpers import assert_close, assert_tree_close, random_batch


@pytest.mark.parametrize("half, full", [("half_mse", "mse"), ("half_mse_linear", "mse_linear")])
def test_half_conventions_are_half_of_the_full_ones(half, full):
    params = jaxbp.init_mlp(jax.random.key(4), (3, 5, 2), scheme="normal", dtype=np.float64)
    x, y = random_batch(4, params, 6, labels="soft")
    assert_close(
        jaxbp.compute_loss(params, x, y, loss=half),
        0.5 * jaxbp.compute_loss(params, x, y, loss=full),
    )
    g_half = jaxbp.manual_grad(params, x, y, loss=half)
    g_full = jaxbp.autodiff_grad(params, x, y, loss=full)
    assert_tree_close(g_half, jax.tree_util.tree_map(lambda g: 0.5 * g, g_full))
    assert_tree_close(g_half, jaxbp.autodiff_grad(params, x, y, loss=half))
    assert_tree_close(
        jaxbp.numerical_grad(params, x, y, loss=half), g_half, kind="finite_difference"
    )


def test_a_derivation_in_the_other_convention_is_named_as_such():
    """The seed network under half_mse, worked by a student who kept the factor 2."""
    ex = jaxbp.seed_exercise(dtype="float64")
    mse = jaxbp.explain(ex.params, ex.x, ex.y, loss="mse").values
    claimed = {k: np.round(mse[k], 4).tolist() for k in ("h1", "a1", "o", "z", "loss", "dL/dz")}
    report = jaxbp.check_derivation(ex.params, ex.x, ex.y, claimed, loss="half_mse")
    assert report.verdicts["a1"] == "correct"
    for step in ("loss", "dL/dz"):
        assert report.verdicts[step] == "wrong"
        assert "other convention" in report.diagnoses[step].reshape(-1)[0]
        assert "'mse'" in report.diagnoses[step].reshape(-1)[0]
    sol = jaxbp.explain(ex.params, ex.x, ex.y, loss="half_mse")
    assert sol["loss"].formula == "L = mean[1/2 (z - y)^2]"
    assert sol["loss"].substituted[0].startswith("loss = [1/2 (")
    assert sol["dL/dz"].formula == "dL/dz = (z - y) / B"


def test_half_mse_trains_many_and_checks_all_correct(tmp_path, capsys):
    task = jaxbp.load_task("xor")
    r = jaxbp.train_many(
        jax.random.key(0),
        (2, 3, 1),
        task.x,
        task.y,
        n_inits=8,
        steps=50,
        loss="half_mse_linear",
        keep_params=True,
        progress=False,
    )
    p = r.member(3)["params"]
    assert_close(
        r.final_loss[3], jaxbp.compute_loss(p, task.x, task.y, loss="half_mse_linear"), kind="ulps"
    )
    from jaxbp.cli import main

    d = tmp_path / "ex"
    assert main(["exercise", "--sizes", "2,2,1", "--loss", "half_mse", "--out", str(d)]) == 0
    assert main(["check", str(d / "solution.json")]) == 0
