"""Derivations as students write them: the raw seed page, notation, workings and slips."""

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

import jaxbp
from jaxbp.cli import main
from jaxbp.teach import ScoreRule, check_derivation, read_derivation, read_network, read_page
from jaxbp.teach._textread import evaluate, factors, number, symbol_key
from tests.helpers import load_experiment

ROOT = Path(__file__).resolve().parent.parent
SEED_PAGE = ROOT.parent / "shared" / "seed" / "000_acf6a7ab2366700c.txt"
SEED_NOTATION = ROOT / "experiments" / "data" / "week9_q2_notation.toml"
SEED_CLAIMED = ROOT / "experiments" / "data" / "week9_q2_claimed.json"

needs_seed = pytest.mark.skipif(not SEED_PAGE.is_file(), reason="the shared seed page is not here")


def _grade(read, spec=None):
    spec = spec or read_network(None)
    return check_derivation(
        spec.params, spec.x, spec.y, read.claimed, workings=read.workings, sources=read.sources
    )


@needs_seed
def test_the_raw_seed_page_gets_the_verdicts_of_its_transcription_entry_by_entry():
    read = read_derivation(SEED_PAGE, notation=SEED_NOTATION)
    assert read.problems == []
    spec = read_network(None)
    page = _grade(read, spec)
    claimed = json.loads(SEED_CLAIMED.read_text())["claimed"]
    twin = check_derivation(spec.params, spec.x, spec.y, claimed)
    assert page.names == twin.names
    for n in twin.names:
        assert np.array_equal(page.entry_verdicts[n], twin.entry_verdicts[n]), n
        np.testing.assert_array_equal(page.claimed[n], twin.claimed[n])
        np.testing.assert_array_equal(page.claimed_units[n], twin.claimed_units[n])
    assert page.verdicts == twin.verdicts


@needs_seed
def test_the_seed_slip_is_told_apart_from_its_method_error():
    report = _grade(read_derivation(SEED_PAGE, notation=SEED_NOTATION))
    flagged = {(n, i) for n, f in report.slips.items() for i in np.ndindex(f.shape) if f[i]}
    # 0.98 x (-0.48) "= -0.48": the factors are the student's, the product is not.
    assert flagged == {("dL/dW2", (0, 0))}
    note = report.diagnoses["dL/dW2"][0, 0]
    assert "arithmetic slip" in note and "0.98 \\cdot (-0.48)" in note and "-0.4704" in note
    assert report.source("dL/dW2", (0, 0)).startswith("line 36: ")
    # The gradient into H2 used dL/dw23 where w23 x dL/dO belongs: a method error, no slip.
    assert not report.slip("dL/da1", (0, 1))
    assert "weight gradient (dL/dW2) was used" in report.diagnoses["dL/da1"][0, 1]
    # The slip earns the slip credit for its one entry of the two in dL/dW2.
    steps = report.graded
    full, none = ScoreRule(slip=1.0), ScoreRule(slip=0.0)
    gap = full.score(report, steps) - none.score(report, steps)
    assert gap == pytest.approx(100 * 0.5 / len(steps))
    assert ScoreRule().score(report, steps) == pytest.approx(none.score(report, steps) + gap / 2)


@needs_seed
def test_every_equation_of_the_seed_is_graded_or_listed_with_its_line():
    read = read_derivation(SEED_PAGE, notation=SEED_NOTATION)
    graded_lines = {
        int(s.split(":")[0].split()[1])
        for grid in read.sources.values()
        for s in np.asarray(grid, object).reshape(-1)
        if s
    }
    listed = {int(t.split(":")[0].split()[1]) for t in read.not_graded}
    text = SEED_PAGE.read_text().split("\n")
    with_equals = {i + 1 for i, line in enumerate(text) if "=" in line}
    assert with_equals <= graded_lines | listed
    assert graded_lines == {12, 14, 16, 18, 20, 34, 36, 38, 40, 46, 50}
    by_line = {int(t.split(":")[0].split()[1]): t for t in read.not_graded}
    assert "names no quantity" in by_line[32]  # \frac{\partial O}{\partial} = 1 for bias
    assert "no equation" in by_line[52]  # the arrows
    assert "given data" in by_line[8] and "formula" in by_line[22]


@needs_seed
def test_the_default_notation_lists_what_it_cannot_map_and_grades_the_rest():
    read = read_derivation(SEED_PAGE)
    unmapped = [p for p in read.problems if "is not in the default notation" in p]
    assert [p.split(":")[0] for p in unmapped] == [
        "line 8", "line 8", "line 34", "line 36", "line 38", "line 40", "line 50"
    ]  # fmt: skip
    assert "'dL/dw22'" in unmapped[3]
    # H_1, G(H_1), O, G(O) = Z are textbook names the default knows.
    assert read.claimed["h1"] == [[Decimal("4"), Decimal("-2")]]
    assert read.claimed["z"] == [[Decimal("0.52")]]


PAGE = r"""
# My working

$$H_1 = 1 + 1 \times 1 + (-2) \times 2 + 3 \times 2 = 4$$
\(h_2 = -1 + (-1) * 1 + 2 * 2 + (-2) * 2 = −2\)

The activations: $a_1 = 0.98$ and $$\sigma(h_2) = 0. 12$$

O = -1 + 0.98 + 0.12 = 0.1
\[\hat{y} = \frac{1}{1 + e^{-0.1}} = 0.52\]
$$\frac{\partial E}{\partial O} = 0.52 - 1 = \left(-0.48\right)$$
$$\frac{\partial L}{\partial W_2} = \begin{pmatrix} 0.98 \cdot (-0.48) \\ 0.12 \cdot (-0.48) \end{pmatrix} = \begin{pmatrix} -0.47 \\ -0.058 \end{pmatrix}$$
$$\frac{\partial L}{\partial W_1} = \left[\begin{array}{cc} -0.0084 & -0.050 \\ -0.017 & -0.10 \\ -0.017 & -0.10 \end{array}\right]$$
dL/db1 = [-0.0084, -0.050]
"""
TWIN = {
    "h1": [4, -2],
    "a1": [0.98, 0.12],
    "o": 0.1,
    "z": 0.52,
    "dL/do": -0.48,
    "dL/dW2": [[-0.47], [-0.058]],
    "dL/dW1": [[-0.0084, -0.050], [-0.017, -0.10], [-0.017, -0.10]],
    "dL/db1": [-0.0084, -0.050],
}


def test_the_ways_students_write_read_as_one_claim():
    read = read_derivation(read_page(PAGE))
    assert read.problems == []
    spec = read_network(None)
    page, twin = _grade(read, spec), check_derivation(spec.params, spec.x, spec.y, TWIN)
    for n in page.names:
        assert np.array_equal(page.entry_verdicts[n], twin.entry_verdicts[n]), n
        np.testing.assert_array_equal(page.claimed[n], twin.claimed[n])
    assert read.workings["h1"][0][0] == r"1 + 1 \times 1 + (-2) \times 2 + 3 \times 2"
    assert not any(f.any() for f in page.slips.values())
    # The output layer's working in one bmatrix, read entry by entry.
    assert read.workings["dL/dW2"] == [[r"0.98 \cdot (-0.48)"], [r"0.12 \cdot (-0.48)"]]


def test_a_step_written_twice_grades_the_later_and_lists_the_earlier():
    read = read_derivation(read_page("$$O = 0.3$$\n\nno, again:\n\n$$O = 0.1$$\n"))
    assert read.claimed["o"] == [[Decimal("0.1")]]
    assert read.not_graded == [
        "line 1: 'O = 0.3': o written again on line 5 as 0.1; that one is graded"
    ]


@pytest.mark.parametrize(
    "text, value",
    [
        (r"0.98 \cdot (-0.48)", 0.98 * -0.48),
        (r"\left(0.98\right) \times \left(-0.48\right)", 0.98 * -0.48),
        ("0.98 × −0.48", 0.98 * -0.48),
        ("0.98(1 - 0.98)", 0.98 * (1 - 0.98)),
        (r"\frac{0.52 - 1}{0.52(1 - 0.52)}", (0.52 - 1) / (0.52 * (1 - 0.52))),
        (r"\frac{1}{1 + e^{-4}}", 1 / (1 + np.exp(-4))),
        ("0.4 8 + 1", 1.48),
        ("1 + 1*1 + (-2)*2 + 3*2", 4.0),
    ],
)
def test_workings_evaluate_as_python_does(text, value):
    assert evaluate(text) == pytest.approx(value, rel=1e-12)


def test_what_is_not_arithmetic_is_not_evaluated():
    for text in ["z(1-z)", r"\frac{\partial L}{\partial z}", r"\sigma(0.1)", "", "-x + 1"]:
        assert evaluate(text) is None, text


def test_numbers_keep_their_digits_and_symbols_their_keys():
    assert number("- 0.4 8") == Decimal("-0.48") and str(number("0.50")) == "0.50"
    assert number(r"\left(−0.0094\right)") == Decimal("-0.0094")
    assert number("0.98 - 1") is None and number("Z") is None
    assert factors("(0.02)(-0.48)") == ["(0.02)", "(-0.48)"]
    assert factors("0.98(1-0.98)") == ["0.98", "(1-0.98)"] and factors("0.5 + 0.2") == []
    assert symbol_key(r"\frac{\partial L}{\partial w_{22}}") == "dL/dw22"
    assert symbol_key(r"\frac{dE_{total}}{d\,out_{o1}}") == "dEtotal/douto1"
    assert symbol_key(r"\hat{y}") == "yhat" and symbol_key("G(H_1)") == "G(H1)"
    assert symbol_key("dL/dW1[2, 1]") == "dL/dW1[2,1]"


def test_a_bad_notation_file_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "n.toml"
    bad.write_text('[symbols]\n"w_{22}" = "dL/dV2"\n')
    with pytest.raises(ValueError, match=r"n.toml: 'w22': unknown step 'dL/dV2'.*did you mean"):
        read_derivation(read_page("$$w_{22} = 0.5$$"), notation=bad)
    bad.write_text('[symbols]\n"w" = "dL/dW2[5,0]"\n')
    with pytest.raises(ValueError, match=r"names no entry of dL/dW2 \(shape \(2, 1\)"):
        read_derivation(read_page("$$w = 0.5$$"), notation=bad)
    bad.write_text("simbols = {}\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['simbols'\]"):
        jaxbp.teach.read_notation(bad)


@needs_seed
def test_jaxbp_check_reads_the_raw_seed_page(capsys):
    code = main(["check", str(SEED_PAGE), "--notation", str(SEED_NOTATION)])
    out = capsys.readouterr().out
    assert code == 1  # two root errors
    assert "an arithmetic slip: your working 0.98 \\cdot (-0.48) comes to -0.4704" in out
    assert "Not graded:" in out and "line 32:" in out and "Not read:" not in out
    code = main(["check", str(SEED_PAGE), "--notation", str(SEED_NOTATION), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["not_read"] == [] and any(r["slip"] for r in doc["rows"])
    assert main(["check", str(SEED_CLAIMED), "--notation", str(SEED_NOTATION)]) == 2
    assert "--notation is for pages written as text" in capsys.readouterr().err


def _rows(path: Path) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader(io.StringIO(path.read_text()))}


@needs_seed
def test_jaxbp_grade_reads_pages_beside_json_files(tmp_path, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ann.md").write_text(SEED_PAGE.read_text())
    (subs / "bob.json").write_text(SEED_CLAIMED.read_text())
    (subs / "cy.txt").write_text("H1 = 4\nH2 = -2\nweights = what?\nsee dL/dq = 0.5\n")
    out = tmp_path / "graded"
    assert main(["grade", str(subs), "--notation", str(SEED_NOTATION), "--out", str(out)]) == 1
    rows = _rows(out / "grades.csv")
    # The page and its transcription: the same verdicts; the page's slip is worth half.
    verdicts = ("correct", "rounding", "inherited", "wrong", "missing")
    assert [rows["ann"][v] for v in verdicts] == [rows["bob"][v] for v in verdicts]
    assert rows["ann"]["slips"] == "1" and rows["bob"]["slips"] == "0"
    assert float(rows["ann"]["score"]) > float(rows["bob"]["score"])
    assert "line 52:" in rows["ann"]["not_graded"] and rows["ann"]["problems"] == ""
    assert "(you wrote line 36:" in rows["ann"]["diagnoses"]
    assert "line 4: 'see dL/dq = 0.5': the symbol 'dL/dq' is not in" in rows["cy"]["problems"]
    assert "line 3" in rows["cy"]["not_graded"]  # 'weights = what?': no value
    feedback = (out / "feedback" / "ann.md").read_text()
    assert "arithmetic slip" in feedback and "line 36:" in feedback
    assert "## Lines not graded" in feedback and "line 32:" in feedback
    assert "line 32:" in (out / "feedback" / "ann.html").read_text()
    assert main(["grade", str(subs), "--slip-credit", "0", "--notation", str(SEED_NOTATION),
                 "--out", str(tmp_path / "g0")]) == 1  # fmt: skip
    zero = _rows(tmp_path / "g0" / "grades.csv")
    assert zero["ann"]["score"] == rows["bob"]["score"]


def _synthetic():
    return load_experiment("synthetic_class")


def test_ocr_style_pages_grade_exactly_as_their_json_twins():
    mod = _synthetic()
    students, planted = mod.make_class(60, seed=11)
    ex = jaxbp.seed_exercise(dtype="float64")
    prob = mod.Problem.build(ex.params, ex.x, ex.y, ex.activation, ex.loss)
    rng = np.random.default_rng(5)
    pages = {sid: mod.page(c, prob, planted[sid]["mistakes"], rng) for sid, c in students.items()}
    twins = jaxbp.grade_class([jaxbp.Submission(s, f"{s}.json", c) for s, c in students.items()])
    read = jaxbp.grade_class(
        [jaxbp.Submission(s, f"{s}.md", read_page(t)) for s, t in pages.items()]
    )
    styles, found = set(), 0
    for twin, got in zip(twins.grades, read.grades):
        text = pages[got.student]
        styles |= {m for m in ("\\times", "\\cdot", "*", "\u2212", "\\left(", "pmatrix", "array",
                               "\\[", "so $", "no, redo") if m in text}  # fmt: skip
        for n in twin.report.names:
            assert np.array_equal(got.report.entry_verdicts[n], twin.report.entry_verdicts[n]), (
                got.student,
                n,
                text,
            )
            np.testing.assert_array_equal(got.report.claimed[n], twin.report.claimed[n])
        # The problems of the JSON (a word for a number, too few entries) are the page's too.
        assert bool(got.problems) == any("entries" in p for p in twin.problems), (
            got.problems,
            twin.problems,
        )
        # The slip planted in dL/dW2 is found in the page's working, and only it (where the
        # working can be read: not with a word for a number, not under a misspelt name).
        p = planted[got.student]
        slipped = {n for n, f in got.report.slips.items() if f.any()}
        assert slipped == (
            {"dL/dW2"} if "arithmetic slip" in p["mistakes"] and not p["problems"] else set()
        )
        found += bool(slipped)
        assert twin.score <= got.score
    assert len(styles) == 10  # every variation was written somewhere
    assert found >= 2


def test_a_latex_document_is_read_from_its_equation_environments(tmp_path):
    tex = tmp_path / "ann.tex"
    tex.write_text(
        "\\documentclass{article}\n\\begin{document}\nMy answers.\n"
        "\\begin{align*}\n"
        "H_1 &= 1 + 1 \\cdot 1 + (-2) \\cdot 2 + 3 \\cdot 2 = 4 \\\\\n"
        "H_2 &= -2\n"
        "\\end{align*}\n"
        "\\begin{equation}\n\\frac{\\partial L}{\\partial O} = 0.52 - 1 = -0.48\n\\end{equation}\n"
        "\\end{document}\n"
    )
    read = read_derivation(tex)
    assert read.claimed == {"h1": [[Decimal("4"), Decimal("-2")]], "dL/do": [[Decimal("-0.48")]]}
    assert read.problems == [] and read.not_graded == []
    assert read.sources["dL/do"] == [
        ["line 8: \\frac{\\partial L}{\\partial O} = 0.52 - 1 = -0.48"]
    ]
