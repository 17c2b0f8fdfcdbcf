"""Worked solutions and the hand-derivation checker.

The checker is tested against an independent "student": a plain NumPy forward and
backward pass that can round every value it writes and can make planted mistakes.
"""

import json
from decimal import Decimal
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxbp
from jaxbp.cli import main
from tests.helpers import assert_close, assert_tree_close

ROOT = Path(__file__).resolve().parents[1]
SEED_CLAIMED = ROOT / "experiments" / "data" / "week9_q2_claimed.json"

ACT = {
    "sigmoid": (lambda h: 1 / (1 + np.exp(-h)), "a", lambda a: a * (1 - a)),
    "tanh": (np.tanh, "a", lambda a: 1 - a * a),
    "relu": (lambda h: np.maximum(h, 0), "h", lambda h: (h > 0).astype(float)),
    "identity": (lambda h: h, "h", np.ones_like),
}


def student(params, x, y, activation, *, rnd=lambda v: v, plant=None, carry=None):
    """A hand derivation in NumPy, BCE loss: every step rounded by `rnd`, `plant` may alter steps.

    `plant` maps a step name to f(correct value, steps so far) -> the value written.
    `carry` (default: what was written) rounds the value used downstream: a student who
    writes a calculator's full value and carries 0.679.
    """
    P = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in params]
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64).reshape(len(x), -1)
    L, B = len(P), len(x)
    acts = (activation,) * (L - 1) if isinstance(activation, str) else activation
    steps, held = {}, {}

    def put(name, value):
        value = np.asarray(value, np.float64)
        if plant and name in plant:
            value = np.asarray(plant[name](value, steps), np.float64)
        steps[name] = rnd(value)
        held[name] = steps[name] if carry is None else carry(value)
        return held[name]

    a = x
    for l in range(1, L):
        h = put(f"h{l}", a @ P[l - 1]["W"] + P[l - 1]["b"])
        a = put(f"a{l}", ACT[acts[l - 1]][0](h))
    o = put("o", a @ P[-1]["W"] + P[-1]["b"])
    z = put("z", 1 / (1 + np.exp(-o)))
    put("loss", -np.sum(y * np.log(z) + (1 - y) * np.log(1 - z)) / B)
    put("dL/dz", (z - y) / (z * (1 - z)) / B)
    d = put("dL/do", (z - y) / B)
    for l in range(L, 0, -1):
        a_prev = x if l == 1 else held[f"a{l - 1}"]
        put(f"dL/dW{l}", a_prev.T @ d)
        put(f"dL/db{l}", d.sum(axis=0))
        if l > 1:
            k = l - 1
            da = put(f"dL/da{k}", d @ P[l - 1]["W"].T)
            _, src, deriv = ACT[acts[k - 1]]
            g = put(f"da{k}/dh{k}", deriv(held[f"{src}{k}"]))
            d = put(f"dL/dh{k}", da * g)
    return steps


def sig_figs(n):
    def rnd(v):
        return np.vectorize(
            lambda e: float(
                np.format_float_positional(e, precision=n, unique=False, fractional=False)
            )
        )(v)

    return rnd


def as_written(steps, n=None):
    """Claims as a student writes them: strings with n significant figures (trailing zeros kept)."""

    def fmt(e):
        if n is None:
            return repr(float(e))
        return np.format_float_positional(e, precision=n, unique=False, fractional=False, trim="k")

    return {k: np.vectorize(fmt, otypes=[object])(v).tolist() for k, v in steps.items()}


# Seeds whose labels hold a 1, so that a planted "z for z - y" is visible (z - 0 = z).
NETS = {
    "seed": lambda: (*_seed(), "sigmoid"),
    "deep_tanh": lambda: (*_net((3, 4, 3, 2, 1), 2, batch=1), "tanh"),
    "batch3_sigmoid": lambda: (*_net((2, 3, 1), 1, batch=3), "sigmoid"),
    "batch3_mixed": lambda: (*_net((3, 3, 2, 1), 3, batch=3), ("tanh", "sigmoid")),
}


def _seed():
    ex = jaxbp.seed_exercise(dtype=np.float64)
    return ex.params, np.asarray(ex.x), np.asarray(ex.y)


def _net(sizes, seed, batch):
    ex = jaxbp.teach._exercises.random_exercise(seed, sizes, batch=batch)
    return ex.params, np.asarray(ex.x), np.asarray(ex.y)


# ---------------------------------------------------------------- explain


@pytest.mark.parametrize("name", sorted(NETS))
def test_explain_values_agree_with_the_gradients(name):
    params, x, y, act = NETS[name]()
    sol = jaxbp.explain(params, x, y, activation=act)
    assert [s.name for s in sol.steps] == list(jaxbp.step_names(params))
    grads = tuple(
        {"W": sol[f"dL/dW{l}"].value, "b": sol[f"dL/db{l}"].value}
        for l in range(1, len(params) + 1)
    )
    assert_tree_close(grads, jaxbp.manual_grad(params, x, y, activation=act), dtype=np.float64)
    assert_tree_close(grads, jaxbp.autodiff_grad(params, x, y, activation=act), dtype=np.float64)
    assert_close(sol["loss"].value, jaxbp.bce_loss(params, x, y, activation=act), kind="ulps")
    # And with the independent NumPy derivation, step by step.
    ref = student(params, x, y, act)
    for s in sol.steps:
        assert_close(s.value, ref[s.name].reshape(s.value.shape), kind="reorder", err_msg=s.name)


def test_explain_renders_text_markdown_and_json():
    params, x, y, act = NETS["batch3_sigmoid"]()
    sol = jaxbp.explain(params, x, y, activation=act)
    text = sol.to_text()
    assert (
        "Forward pass" in text
        and "Backward pass" in text
        and "batch of 3 (the loss is the batch mean)" in text
    )
    assert "(1/3)" in sol["loss"].substituted[0]
    md = sol.to_markdown()
    assert md.count("$$") >= 2 * len(sol.steps)
    assert r"\frac{\partial L}{\partial W^{(2)}_{0,0}}" in md
    doc = json.loads(sol.to_json())
    assert [s["name"] for s in doc["steps"]] == [s.name for s in sol.steps]
    for s, d in zip(sol.steps, doc["steps"]):
        np.testing.assert_array_equal(np.asarray(d["value"]).reshape(s.value.shape), s.value)


def test_explain_seed_shows_the_exercise():
    params, x, y, act = NETS["seed"]()
    sol = jaxbp.explain(params, x, y, activation=act)
    assert sol["h1"].substituted == (
        "h1[0] = 1 + (1)(1) + (-2)(2) + (3)(2) = 4",
        "h1[1] = -1 + (-1)(1) + (2)(2) + (-2)(2) = -2",
    )
    assert sol["o"].substituted[0] == "o[0] = -1 + (1)(0.98201379) + (1)(0.11920292) = 0.10121671"
    assert sol["dL/dW2"].substituted[0] == "dL/dW2[0, 0] = (0.98201379)(-0.4747174) = -0.46617904"
    assert sol["da1/dh1"].substituted[0] == "da1/dh1[0] = 0.98201379(1 - 0.98201379) = 0.017662706"


# ---------------------------------------------------------------- the seed's derivation


def test_seed_derivation_verdicts():
    doc = json.loads(SEED_CLAIMED.read_text(), parse_float=Decimal)
    params, x, y, act = NETS["seed"]()
    r = jaxbp.check_derivation(params, x, y, doc["claimed"], activation=act)
    # The student's two real mistakes, found and explained:
    #  1. dL/dw22 = 0.98 x (-0.48) written as -0.48: the factor G(H1) = 0.98 was dropped
    #     (0.98 x -0.48 = -0.4704 rounds to -0.47; the exact value is -0.466).
    #  2. the gradient flowing into H2 used dL/dw23 = -0.06, a weight gradient, where
    #     w23 x dL/dO = 1 x (-0.48) belongs.
    assert r.wrong == ("dL/dW2", "dL/da1")
    assert r.entry_verdicts["dL/dW2"].tolist() == [["wrong"], ["correct"]]
    assert "current value (the input of the weight) was left out" in r.diagnoses["dL/dW2"][0, 0]
    assert r.entry_verdicts["dL/da1"].tolist() == [["rounding", "wrong"]]
    assert (
        "a weight gradient (dL/dW2) was used in place of the weight times the backward gradient"
        in r.diagnoses["dL/da1"][0, 1]
    )
    np.testing.assert_allclose(r.own["dL/dW2"][0, 0], 0.98 * -0.48)
    # Everything computed from the H2 error inherits it, the H1 column does not.
    assert r.entry_verdicts["dL/dh1"].tolist() == [["rounding", "inherited"]]
    assert r.entry_verdicts["dL/db1"].tolist() == ["rounding", "inherited"]
    assert r.entry_verdicts["dL/dW1"][:, 1].tolist() == ["inherited"] * 3
    assert r.roots["dL/dW1"][2, 1] == "dL/da1"
    # Its rounding is accepted: Z = 0.52 (exact 0.5253) follows from O = 0.1; dL/dO = 0.52 - 1.
    assert r.verdicts["z"] == "rounding" and r.verdicts["dL/do"] == "rounding"
    assert r.verdicts["h1"] == r.verdicts["a1"] == r.verdicts["o"] == "correct"
    # dL/dh1[0] = (0.02)(-0.48) written -0.0094: the student carried 0.98 x 0.02 = 0.0196.
    assert r.entry_verdicts["dL/dh1"][0, 0] == "rounding"
    assert r.missing == ("loss", "dL/dz")
    assert not r.ok
    assert "Root errors: dL/dW2, dL/da1" in str(r)


# ---------------------------------------------------------------- correct derivations pass


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("figures", [2, 3, 4])
def test_rounded_correct_derivations_pass(name, figures):
    params, x, y, act = NETS[name]()
    steps = student(params, x, y, act, rnd=sig_figs(figures))  # rounds as it goes, like a student
    r = jaxbp.check_derivation(params, x, y, as_written(steps, figures), activation=act)
    bad = {n: v for n, v in r.verdicts.items() if v not in ("correct", "rounding")}
    assert r.ok and not bad, f"{bad}\n{r}"


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("carried", [3, 4])
def test_full_values_written_rounded_values_carried_are_rounding(name, carried):
    """A student copies the calculator's value (7 figures) but carries 3 or 4 figures on."""
    params, x, y, act = NETS[name]()
    steps = student(params, x, y, act, rnd=sig_figs(7), carry=sig_figs(carried))
    r = jaxbp.check_derivation(params, x, y, as_written(steps, 7), activation=act)
    bad = {n: v for n, v in r.verdicts.items() if v not in ("correct", "rounding")}
    assert r.ok and not bad, f"{bad}\n{r}"
    notes = [n for v in r.diagnoses.values() for n in v.reshape(-1)]
    assert any(f"rounded to {carried} significant figures" in n for n in notes), str(r)


def test_the_note_names_the_rounding():
    params, x, y, _ = NETS["seed"]()
    a1 = jaxbp.explain(params, x, y)["a1"].value.reshape(-1)
    # a1 written in full, o computed from a1 rounded to 3 figures (0.982 + 0.119 - 1).
    claim = {"a1": [f"{v:.8f}" for v in a1], "o": "0.1010000"}
    r = jaxbp.check_derivation(params, x, y, claim)
    assert r.verdicts["o"] == "rounding", str(r)
    assert (
        "your a1 rounded to 3 significant figures (a1 = [0.982, 0.119])"
        in r.diagnoses["o"].reshape(-1)[0]
    )


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("figures", [3, 4, 5, 6])
@pytest.mark.parametrize("units", [-0.45, -0.3, 0.3, 0.45])
def test_within_one_unit_of_the_last_digit_is_never_wrong(name, figures, units):
    """Exact values moved by under half a unit of the last digit, then rounded to it (at most
    0.95 of a unit off): rounding or correct, never wrong."""
    params, x, y, act = NETS[name]()
    exact = student(params, x, y, act)

    def nudge(v):
        def one(e):
            unit = 10.0 ** (np.floor(np.log10(abs(e))) - figures + 1) if e else 0.0
            moved = e + units * unit
            if e and np.floor(np.log10(abs(moved))) != np.floor(np.log10(abs(e))):
                moved = e  # 1 moved to 0.9955 is written 0.996: its last digit is a smaller unit
            return np.format_float_positional(
                moved, precision=figures, unique=False, fractional=False, trim="k"
            )

        return np.vectorize(one, otypes=[object])(v).tolist()

    claim = {k: nudge(v) for k, v in exact.items()}
    r = jaxbp.check_derivation(params, x, y, claim, activation=act)
    assert r.ok and set(r.verdicts.values()) <= {"correct", "rounding"}, str(r)
    notes = [n for v in r.diagnoses.values() for n in v.reshape(-1)]
    if abs(units) == 0.45 and figures >= 4:  # some entry lands over half a unit off
        assert any("within one unit of its last digit" in n for n in notes), str(r)


def test_wrong_values_are_shown_with_the_digits_that_tell_them_apart():
    params, x, y, _ = NETS["seed"]()
    # Exact o is 0.10121671...; 0.10121690 (8 figures) is 2 units of its last digit away.
    r = jaxbp.check_derivation(params, x, y, {"o": "0.10121690"})
    assert r.verdicts["o"] == "wrong"
    text = str(r)
    assert "0.1012169" in text and "0.1012167" in text, text
    assert jaxbp.teach._grading.fmt_distinct(0.1643344, 0.1643338) == "0.1643344"
    assert jaxbp.teach._grading.fmt_distinct(0.1, 0.1000000000000001) == "0.1"


# ---------------------------------------------------------------- planted mistakes


def swap_first_two(v, steps):
    flat = v.reshape(-1).copy()
    flat[[0, 1]] = flat[[1, 0]]
    return flat.reshape(v.shape)


PLANTS = {
    # name: (step, plant, expected diagnosis)
    "activation derivative left out": (
        "dL/dh1",
        lambda v, s: s["dL/da1"],
        "the activation derivative da1/dh1 was left out",
    ),
    "weight gradient for weight x delta": (
        "dL/da{last}",
        lambda v, s, last=None: None,
        "a weight gradient (dL/dW",
    ),
    "sign flip": ("dL/do", lambda v, s: -v, "the sign is flipped"),
    "transposed index": ("dL/dW1", swap_first_two, "swapped or transposed index"),
    "forgotten bias": ("h1", None, "the bias was left out"),
    "z for z - y": ("dL/do", lambda v, s: s["z"] / len(s["z"]), "z was used where z - y belongs"),
}


def plant_for(kind, params, x):
    step, fn, diag = PLANTS[kind]
    L = len(params)
    if kind == "weight gradient for weight x delta":
        k = L - 1
        step = f"dL/da{k}"
        fn = lambda v, s: np.broadcast_to(s[f"dL/dW{L}"].sum(axis=1)[None, :], v.shape)
    if kind == "forgotten bias":
        fn = lambda v, s: v - np.asarray(params[0]["b"])
    return step, fn, diag


def downstream(names, step, inputs):
    """Steps computed (directly or not) from `step`."""
    out, frontier = set(), {step}
    for n in names:
        if any(i in frontier for i in inputs[n]):
            out.add(n)
            frontier.add(n)
    return out


@pytest.mark.parametrize("name", ["deep_tanh", "batch3_sigmoid", "batch3_mixed"])
@pytest.mark.parametrize("kind", sorted(PLANTS))
def test_planted_mistakes_are_found_and_classified(name, kind):
    params, x, y, act = NETS[name]()
    step, fn, diag = plant_for(kind, params, x)
    steps = student(params, x, y, act, plant={step: fn})
    r = jaxbp.check_derivation(params, x, y, as_written(steps), activation=act)
    sol = jaxbp.explain(params, x, y, activation=act)
    inputs = {s.name: s.inputs for s in sol.steps}
    assert r.verdicts[step] == "wrong", str(r)
    assert r.wrong == (step,), str(r)
    wrong_entries = np.argwhere(r.entry_verdicts[step] == "wrong")
    assert len(wrong_entries)
    for idx in map(tuple, wrong_entries):
        assert diag in r.diagnoses[step][idx], r.diagnoses[step][idx]
    after = downstream([s.name for s in sol.steps], step, inputs)
    for n in r.names:
        if n == step:
            continue
        if r.verdicts[n] == "inherited":
            assert n in after, n
            assert step in set(r.roots[n].reshape(-1)), (n, r.roots[n])
        else:
            assert r.verdicts[n] == "correct", (n, r.verdicts[n], str(r))
    assert (
        any(r.verdicts[n] == "inherited" for n in after) or not after or kind == "transposed index"
    )


# ---------------------------------------------------------------- bad input


def test_bad_claims():
    params, x, y, _act = NETS["seed"]()
    with pytest.raises(ValueError, match=r"unknown step 'dL/dw2'; did you mean 'dL/dW2'\?"):
        jaxbp.check_derivation(params, x, y, {"dL/dw2": [1, 2]})
    with pytest.raises(
        ValueError,
        match=r"claimed\['dL/dW2'\] must have 2 entries \(shape \(2, 1\), read row by row\); got 3",
    ):
        jaxbp.check_derivation(params, x, y, {"dL/dW2": [1, 2, 3]})
    with pytest.raises(TypeError, match=r"claimed\['o'\] must be a number; got the string 'zero'"):
        jaxbp.check_derivation(params, x, y, {"o": "zero"})
    with pytest.raises(TypeError, match=r"claimed must be a mapping"):
        jaxbp.check_derivation(params, x, y, [("o", 1)])


# ---------------------------------------------------------------- command line


def test_cli_check_grades_the_seed(capsys):
    assert main(["check", str(SEED_CLAIMED)]) == 1
    out = capsys.readouterr().out
    assert "wrong" in out and "Root errors: dL/dW2, dL/da1" in out


def test_cli_exercise_explain_and_check_round_trip(tmp_path, capsys):
    assert main(["exercise", "--sizes", "2,3,1", "--seed", "5", "--out", str(tmp_path / "ex")]) == 0
    files = sorted(p.name for p in (tmp_path / "ex").iterdir())
    assert files == ["network.json", "solution.json", "solution.md", "solution.txt"]
    net = json.loads((tmp_path / "ex" / "network.json").read_text())
    assert net["sizes"] == [2, 3, 1] and all(
        (2 * float(v)).is_integer() for m in net["augmented"] for r in m for v in r
    )
    # The same seed gives the same exercise.
    assert (
        main(["exercise", "--sizes", "2,3,1", "--seed", "5", "--out", str(tmp_path / "again")]) == 0
    )
    assert (tmp_path / "again" / "network.json").read_text() == (
        tmp_path / "ex" / "network.json"
    ).read_text()
    # explain --network reads it back; a correct claimed file passes `check` with exit 0.
    capsys.readouterr()
    assert (
        main(["explain", "--network", str(tmp_path / "ex" / "network.json"), "--format", "json"])
        == 0
    )
    sol = json.loads(capsys.readouterr().out)
    claimed = {"network": net, "claimed": {s["name"]: s["value"] for s in sol["steps"]}}
    (tmp_path / "claimed.json").write_text(json.dumps(claimed))
    assert main(["check", str(tmp_path / "claimed.json")]) == 0


def test_cli_network_toml(tmp_path, capsys):
    (tmp_path / "net.toml").write_text(
        'activation = "tanh"\nx = [1, 2]\ny = 1\n[[layers]]\nW = [[1, 0.5], [0, -1]]\nb = [0, 0.25]\n'
        "[[layers]]\nW = [[1], [2]]\nb = [0]\n"
    )
    assert main(["explain", "--network", str(tmp_path / "net.toml")]) == 0
    assert "a1[0] = tanh(1) = 0.76159416" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", r"net.json: not valid JSON"),
        ('{"x": [1, 2, 2], "y": 1}', r"net.json: give the weights as exactly one of 'augmented'"),
        (
            '{"x": [1, 2, 2], "augmented": [[[1, 1], [1, 1], [1, 1], [1, 1]], [1, 1, 1]]}',
            r"net.json: missing key 'y'",
        ),
        ('{"x": "abc", "y": 1, "augmented": [[[1], [1]]]}', r"net.json: key 'x' must hold numbers"),
        (
            '{"x": [1], "y": 1, "augmented": [[[1], [1]]], "activations": "tanh"}',
            r"unknown key\(s\) \['activations'\]",
        ),
        ('{"x": [1, 2], "y": 1, "augmented": [[[1], [1]]]}', r"x must have shape \(batch, 1\)"),
    ],
)
def test_cli_bad_network_file(tmp_path, capsys, content, message):
    (tmp_path / "net.json").write_text(content)
    assert main(["explain", "--network", str(tmp_path / "net.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxbp explain: error: ")
    import re

    assert re.search(message, err), err
    assert "Traceback" not in err


def test_cli_check_bad_claims_file(tmp_path, capsys):
    (tmp_path / "c.json").write_text('{"claimed": {"H1": 4}}')
    assert main(["check", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert "c.json: unknown step 'H1'" in err and "did you mean 'h1'" in err
    assert main(["check", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: no such file" in capsys.readouterr().err


def test_step_names_come_from_the_step_model_for_any_form_of_sizes():
    # Widths as a tuple, a NumPy integer array or a parameter tree give the same names,
    # and they are exactly the steps explain() works through.
    ex = jaxbp.seed_exercise()
    names = jaxbp.step_names((3, 2, 1))
    assert jaxbp.step_names(np.array([3, 2, 1])) == names
    assert jaxbp.step_names(ex.params) == names
    assert names == tuple(s.name for s in jaxbp.explain(ex.params, ex.x, ex.y).steps)
    assert len(names) == 14
    deep = jaxbp.init_mlp(jax.random.key(0), (2, 3, 2, 1))
    x, y = np.ones((2, 2)), np.array([0.0, 1.0])
    for loss in ("bce", "mse", "mse_linear"):
        sol = jaxbp.explain(deep, x, y, activation="tanh", loss=loss)
        assert jaxbp.step_names((2, 3, 2, 1), loss=loss) == tuple(s.name for s in sol.steps)


def test_nothing_claimed_is_not_a_pass(tmp_path, capsys):
    ex = jaxbp.seed_exercise()
    report = jaxbp.check_derivation(ex.params, ex.x, ex.y, {})
    assert not report.ok and report.graded == ()
    assert "nothing to grade" in str(report)
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    assert main(["check", str(empty)]) == 1
    assert "nothing to grade" in capsys.readouterr().err
    # One graded step is enough to pass.
    assert jaxbp.check_derivation(ex.params, ex.x, ex.y, {"h1": [4, -2]}).ok


def test_version_and_python_dash_m(capsys):
    import subprocess
    import sys

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"jaxbp {jaxbp.__version__}"
    out = subprocess.run(
        [sys.executable, "-m", "jaxbp", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"jaxbp {jaxbp.__version__}"


@pytest.mark.parametrize(
    "args",
    [
        ["--sizes", "3,2,1"],
        ["--sizes", "2,3,2,1", "--activation", "tanh", "--batch", "3"],
        ["--sizes", "2,2", "--loss", "mse_linear"],
        ["--sizes", "4,3,1", "--activation", "relu", "--loss", "mse"],
    ],
)
def test_an_exercise_solution_grades_as_all_correct(tmp_path, capsys, args):
    out = tmp_path / "ex"
    assert main(["exercise", "--seed", "3", *args, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["check", str(out / "solution.json"), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and set(report["verdicts"].values()) == {"correct"}
    # The same with the network given apart.
    assert main(["check", str(out / "solution.json"), "--network", str(out / "network.json")]) == 0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"augmented": [[[1, "nan"], [2, 3]], [[1], [2], [3]]]}, r"matrix 0 must hold numbers"),
        (
            {"augmented": [[[1, float("nan")], [2, 3]], [[1], [2], [3]]]},
            r"matrix 0 must be finite numbers; entry \[0, 1\] is nan",
        ),
        (
            {"augmented": [[[1, 2], [2]], [[1], [2], [3]]]},
            r"matrix 0 must be a 1-D or 2-D array of numbers with rows of equal length",
        ),
        ({"augmented": [[[1, float("inf")], [2, 3]], [[1], [2], [3]]]}, r"entry \[0, 1\] is inf"),
        ({"x": ["a"]}, r"key 'x' must hold numbers"),
        (
            {"y": [[1, 0], [0]]},
            r"key 'y' must be a 0-D or 1-D or 2-D array of numbers with rows of equal length",
        ),
    ],
)
def test_bad_values_in_network_files_are_one_line_naming_file_and_key(
    tmp_path, capsys, change, message
):
    doc = {"x": [2.0], "y": 1, "augmented": [[[1, -1], [2, 3]], [[1], [2], [3]]]}
    doc.update(change)
    path = tmp_path / "net.json"
    path.write_text(json.dumps(doc).replace("NaN", "NaN").replace("Infinity", "Infinity"))
    assert main(["explain", "--network", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err), err


def test_one_example_with_several_outputs_takes_a_1d_y(tmp_path, capsys):
    doc = {"x": [1.0, 2.0], "y": [1, 0], "augmented": [[[0.5, -0.5], [1, 2], [3, -1]]]}
    path = tmp_path / "net.json"
    path.write_text(json.dumps(doc))
    assert main(["explain", "--network", str(path), "--format", "json"]) == 0
    sol = json.loads(capsys.readouterr().out)
    assert sol["network"]["y"] == [[1.0, 0.0]]


def test_rounding_carried_through_a_step_not_written_is_rounding():
    # scikit-learn's worked comment in neural_network/tests/test_mlp.py::test_fit: a1 written
    # in full, o not written, z worked from a1 carried as 0.679 and 0.574.
    params = (
        {"W": np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0.0]]), "b": np.array([0.1, 0.1])},
        {"W": np.array([[0.1], [0.2]]), "b": np.array([1.0])},
    )
    x, y = np.array([[0.6, 0.8, 0.7]]), np.array([[0.0]])
    claimed = {
        "a1": ["0.679178699175393", "0.574442516811659"],
        "z": "0.7654329236196236",
        "dL/do": "0.765",
        "dL/dh1": ["0.01667", "0.0374"],
        "dL/db2": "0.765",
    }
    report = jaxbp.check_derivation(params, x, y, claimed)
    assert report.ok and report.verdicts["z"] == "rounding"
    assert (
        "your a1 rounded to 3 significant figures, carried through o (not written)"
        in (report.diagnoses["z"][0, 0])
    )
    # The same z without the rounding to 3 figures anywhere upstream is wrong.
    other = jaxbp.check_derivation(params, x, y, {**claimed, "z": "0.7656"})
    assert other.verdicts["z"] == "wrong"


def test_an_inherited_entry_names_the_wrong_values_it_was_computed_from():
    ex = jaxbp.seed_exercise()
    claimed = json.loads(SEED_CLAIMED.read_text())["claimed"]
    report = jaxbp.check_derivation(ex.params, ex.x, ex.y, claimed)
    note = report.diagnoses["dL/dW1"][2, 1]
    assert report.entry_verdicts["dL/dW1"][2, 1] == "inherited"
    assert note == "follows from your dL/da1[1] = -0.06, which is wrong"
    assert report.roots["dL/dW1"][2, 1] == "dL/da1"
