"""The seed exercise (Week 9 Q2) as the golden test: every value derived independently in float64.

The reference values below are computed with Python's ``math`` module straight
from the exercise's formulas, not with jaxbp or JAX.
"""

import math

import numpy as np
import pytest

import jaxbp
from jaxbp.cli import main
from tests.helpers import assert_close


def sig(h):
    return 1.0 / (1.0 + math.exp(-h))


# The exercise: W11 row by row, bias in row 0; W2j = (bias, from G(H1), from G(H2)).
W11 = [[1, -1], [1, -1], [-2, 2], [3, -2]]
W2 = [-1, 1, 1]
X = [1, 2, 2]
Y = 1.0


def reference():
    """Forward and backward pass of the seed network by hand, in Python floats."""
    xa = [1.0, *X]  # the bias input in front
    H = [sum(xa[r] * W11[r][c] for r in range(4)) for c in range(2)]
    G = [sig(h) for h in H]
    O = W2[0] + W2[1] * G[0] + W2[2] * G[1]
    Z = sig(O)
    L = -(Y * math.log(Z) + (1 - Y) * math.log(1 - Z))
    dO = Z - Y  # (z - y)/(z(1 - z)) * z(1 - z)
    dW2 = [dO, G[0] * dO, G[1] * dO]  # bias, w22, w23
    dH = [dO * W2[1 + c] * G[c] * (1 - G[c]) for c in range(2)]
    dW11 = [[xa[r] * dH[c] for c in range(2)] for r in range(4)]
    return dict(H=H, G=G, O=O, Z=Z, L=L, dO=dO, dW2=dW2, dH=dH, dW11=dW11)


REF = reference()


def test_reference_matches_the_issue_values():
    # The numbers the exercise (and the issue) state, to the digits given.
    assert REF["H"] == [4.0, -2.0]
    assert REF["G"][0] == pytest.approx(0.98201379, abs=5e-9)
    assert REF["G"][1] == pytest.approx(0.11920292, abs=5e-9)
    assert REF["O"] == pytest.approx(0.10121671, abs=5e-9)
    assert REF["Z"] == pytest.approx(0.52528260, abs=5e-9)


@pytest.fixture
def ex():
    return jaxbp.seed_exercise(dtype=np.float64)


def test_seed_forward(ex):
    t = jaxbp.forward_trace(ex.params, ex.x, activation="sigmoid")
    assert_close(t.h[0][0], REF["H"], kind="ulps")
    assert_close(t.a[0][0], REF["G"], kind="ulps")
    assert_close(t.logits[0, 0], REF["O"], kind="ulps")
    assert_close(t.probs[0, 0], REF["Z"], kind="ulps")
    assert_close(jaxbp.forward(ex.params, ex.x), [REF["O"]], kind="ulps")
    assert_close(jaxbp.bce_loss(ex.params, ex.x, ex.y), REF["L"], kind="ulps")
    assert_close(jaxbp.mse_loss(ex.params, ex.x, ex.y), (REF["Z"] - 1) ** 2, kind="ulps")


@pytest.mark.parametrize("source", ["autodiff", "manual", "numerical"])
def test_seed_gradients(ex, source):
    fn = {
        "autodiff": jaxbp.autodiff_grad,
        "manual": jaxbp.manual_grad,
        "numerical": jaxbp.numerical_grad,
    }[source]
    g = fn(ex.params, ex.x, ex.y, activation="sigmoid", loss="bce")
    aug = [np.asarray(m) for m in jaxbp.to_augmented(g)]
    kind = "finite_difference" if source == "numerical" else "reorder"
    assert_close(aug[0], REF["dW11"], kind=kind)
    assert_close(aug[1][:, 0], REF["dW2"], kind=kind)


def test_seed_sgd_update(ex):
    lr = 0.5
    g = jaxbp.manual_grad(ex.params, ex.x, ex.y)
    new = jaxbp.to_augmented(jaxbp.sgd_update(ex.params, g, lr))
    assert_close(new[0], np.asarray(W11) - lr * np.asarray(REF["dW11"]), kind="ulps")
    assert_close(new[1][:, 0], np.asarray(W2) - lr * np.asarray(REF["dW2"]), kind="ulps")


def test_seed_trains(ex):
    result = jaxbp.train(ex.params, ex.x, ex.y, 0.5, steps=50)
    loss = np.asarray(result.history.loss)
    assert loss[0] == pytest.approx(REF["L"], rel=1e-14)
    assert np.all(np.diff(loss) < 0), (
        "full-batch SGD on one example must lower the loss every step here"
    )
    assert float(result.final_loss) < 0.02


def test_demo_shows_the_worked_exercise(capsys):
    assert main(["demo", "--lr", "0.5", "--steps", "20"]) == 0
    out = capsys.readouterr().out
    for text in (
        "H1 = 1 + (1)(1) + (-2)(2) + (3)(2) = 4",
        "G(H1) = 1 / (1 + e^-4) = 0.98201379",
        "O = -1 + (1)(0.98201379) + (1)(0.11920292) = 0.10121671",
        "Z = G(O) = 0.52528260",
        "manual vs autodiff: agree",
        "numerical vs autodiff: agree",
        "loss 0.643819 -> 0.437028",
    ):
        assert text in out, text
    # The gradient table lists dL/dw22 = G(H1) (Z - y) from all three sources.
    row = next(line for line in out.splitlines() if line.strip().startswith("w22"))
    autodiff, manual, numerical = (float(v) for v in row.split()[4:7])
    assert autodiff == manual == pytest.approx(REF["dW2"][1], abs=1e-10)  # to 10 places
    assert numerical == pytest.approx(REF["dW2"][1], abs=1e-8)  # central differences


def test_demo_rejects_bad_learning_rate(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--lr", "-1"])
    assert e.value.code == 2
    assert "expected a positive finite number, got '-1'" in capsys.readouterr().err
