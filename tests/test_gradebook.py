"""Grading a class: planted mistakes found, scores by the stated rule, both file formats,
malformed submissions, per-student networks, and the feedback page as a browser draws it."""

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import jaxbp
from jaxbp.cli import main
from tests.helpers import load_experiment

ROOT = Path(__file__).resolve().parents[1]
CLASS = ROOT / "experiments" / "data" / "class_week9"
SEED_CLAIMED = ROOT / "experiments" / "data" / "week9_q2_claimed.json"


def _synthetic():
    return load_experiment("synthetic_class")


# What the grader should say for each planted mistake: the step, and words of the diagnosis.
EXPECTED = {
    "bias left out": ("h1", "the bias was left out"),
    "h(1 - h) for a(1 - a)": ("da1/dh1", "h(1 - h) was used"),
    "sign of dL/do flipped": ("dL/do", "the sign is flipped"),
    "z for z - y": ("dL/do", "z was used where z - y belongs"),
    "log base 10": ("loss", "log base 10"),
    "weight gradient for W x delta": ("dL/da1", "a weight gradient (dL/dW2) was used"),
    "activation derivative left out": ("dL/dh1", "the activation derivative da1/dh1 was left out"),
    "transposed entries": ("dL/dW1", ""),
    "input left out of dL/dW2": (
        "dL/dW2",
        "the current value (the input of the weight) was left out",
    ),
    "arithmetic slip": ("dL/dW2", ""),
}


def rows(path):
    """grades.csv by student (the first row of a student id that repeats)."""
    with open(path, newline="") as f:
        out = {}
        for r in csv.DictReader(f):
            out.setdefault(r["student"], r)
        return out


def test_planted_mistakes_are_the_root_errors_found():
    mod = _synthetic()
    students, planted = mod.make_class(120, seed=7)
    subs = [jaxbp.Submission(sid, f"{sid}.json", claimed) for sid, claimed in students.items()]
    grades = jaxbp.grade_class(subs)
    seen_kinds = set()
    for g in grades.grades:
        p = planted[g.student]
        if p["problems"]:
            assert g.problems and g.report is not None
            continue
        assert not g.problems, g.problems
        roots = {s for s, _, _ in g.wrong_entries()}
        left_out = set(p.get("left out", ()))
        want = {EXPECTED[k][0] for k in p["mistakes"]} - left_out
        assert roots == want, (g.student, p, str(g.report))
        for kind in p["mistakes"]:
            step, words = EXPECTED[kind]
            if step in left_out:
                continue
            notes = [n for s, _, n in g.wrong_entries() if s == step]
            assert any(words in n for n in notes), (g.student, kind, notes)
            seen_kinds.add(kind)
        if not p["mistakes"]:
            assert g.report.ok and not set(g.report.verdicts.values()) & {"wrong", "inherited"}
            assert g.score == (100.0 if "left out" not in p else 100.0 * 12 / 14)
    assert seen_kinds == set(EXPECTED)


def test_score_rule_on_the_seed_derivation(tmp_path):
    """Worked by hand from the seed's verdicts: 14 steps; dL/dW2 and dL/da1 half right; dL/dh1,
    dL/dW1, dL/db1 half inherited; loss and dL/dz missing."""
    (tmp_path / "subs").mkdir()
    shutil.copy(SEED_CLAIMED, tmp_path / "subs" / "ada.json")
    assert main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "cf")]) == 0
    assert float(rows(tmp_path / "cf" / "grades.csv")["ada"]["score"]) == round(100 * 11 / 14, 1)
    assert (
        main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "no"), "--no-carry-forward"])
        == 0
    )
    r = rows(tmp_path / "no" / "grades.csv")["ada"]
    assert float(r["score"]) == round(100 * 9.5 / 14, 1)
    assert (r["correct"], r["rounding"], r["inherited"], r["wrong"], r["missing"]) == (
        "3",
        "4",
        "3",
        "2",
        "2",
    )
    assert r["root_errors"] == "dL/dW2; dL/da1"
    assert "dL/dW2[0, 0]: likely: the current value" in r["diagnoses"]
    # Only the steps the exercise asked for.
    steps = "h1,a1,o,z,dL/do,dL/dW2,dL/db2"
    for flag in ("--graded-steps", "--steps"):  # --steps: the older spelling, still accepted
        out = tmp_path / f"st{flag}"
        assert main(["grade", str(tmp_path / "subs"), "--out", str(out), flag, steps]) == 0
        assert float(rows(out / "grades.csv")["ada"]["score"]) == round(100 * 6.5 / 7, 1)
    with pytest.raises(ValueError, match=r"ScoreRule.inherited must be a credit between 0 and 1"):
        jaxbp.ScoreRule(inherited=2)


def test_the_shipped_class_folder_and_csv(tmp_path, capsys):
    out = tmp_path / "graded"
    code = main(["grade", str(CLASS / "submissions"), "--out", str(out)])
    assert code == 1  # s000.json is not valid JSON
    got = rows(out / "grades.csv")
    planted = json.loads((CLASS / "planted.json").read_text())
    assert set(got) == set(planted)
    assert "s000.json: not valid JSON" in got["s000"]["problems"] and got["s000"]["score"] == ""
    for sid, p in planted.items():
        if sid == "s000":
            continue
        assert bool(got[sid]["problems"]) == bool(p["problems"]), sid
        assert (out / "feedback" / f"{sid}.md").is_file() and (
            out / "feedback" / f"{sid}.html"
        ).is_file()
        roots = set(filter(None, got[sid]["root_errors"].split("; ")))
        assert roots == {EXPECTED[k][0] for k in p["mistakes"]}, sid
    report = (out / "class_report.md").read_text()
    assert (
        "## The most common root mistakes" in report
        and "![verdicts per step](figures/steps.png)" in report
    )
    assert (out / "figures" / "steps.png").stat().st_size > 10_000
    assert "s000" in report.split("## Submissions with problems")[1]
    # The same class as one CSV grades the same.
    code = main(["grade", str(CLASS / "class.csv"), "--out", str(tmp_path / "from_csv")])
    from_csv = rows(tmp_path / "from_csv" / "grades.csv")
    assert set(from_csv) == set(got) - {"s000"}
    for sid in from_csv:
        assert from_csv[sid]["score"] == got[sid]["score"], sid
        assert from_csv[sid]["diagnoses"] == got[sid]["diagnoses"], sid


def test_malformed_submissions_are_listed_and_graded_as_far_as_they_can_be(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    seed = json.loads(SEED_CLAIMED.read_text())["claimed"]
    (subs / "typo.json").write_text(json.dumps({"claimed": {**seed, "dL/dw2": [[1], [2]]}}))
    (subs / "short.toml").write_text('h1 = [4, -2]\n"dL/dW1" = [1, 2, 3]\n')
    (subs / "word.json").write_text(json.dumps({"h1": [4, "minus two"]}))
    (subs / "broken.json").write_text("{")
    (subs / "bad id!.json").write_text(json.dumps(seed))
    (subs / "notes.pdf").write_text("not a submission")
    out = tmp_path / "out"
    assert main(["grade", str(subs), "--out", str(out)]) == 1
    got = rows(out / "grades.csv")
    assert "unknown step 'dL/dw2'; did you mean 'dL/dW2'?" in got["typo"]["problems"]
    assert got["typo"]["root_errors"] == "dL/dW2; dL/da1"  # the rest graded as usual
    assert "step 'dL/dW1' must have 6 entries" in got["short"]["problems"]
    assert got["short"]["correct"] == "1"  # h1 still graded
    assert "'minus two'" in got["word"]["problems"] and got["word"]["score"] != ""
    assert "not valid JSON" in got["broken"]["problems"]
    assert "not a usable student id" in got["bad id!"]["problems"]
    assert "not a JSON, TOML, Markdown, text or LaTeX file" in got["notes"]["problems"]
    assert sorted(p.name for p in (out / "feedback").iterdir()) == [
        f"{s}.{e}" for s in ("short", "typo", "word") for e in ("html", "md")
    ]


def test_csv_columns_and_ids(tmp_path):
    out = tmp_path / "out"
    table = tmp_path / "class.csv"
    table.write_text(
        'student,h1[0],h1[1],o,a1,"dL/dW2[1,0]",h1[5],weird col[\n'
        'ann,4,-2,0.1,"[0.98, 0.12]",-0.06,,\n'
        "../../evil,4,-2,,,,,\n"
        "ann,1,1,,,,,\n"
        "bob,4,,0.2,,,1,\n"
    )
    assert main(["grade", str(table), "--out", str(out)]) == 1
    got = rows(out / "grades.csv")
    assert got["ann"]["correct"] == "4" and got["ann"]["problems"].count("weird col[") == 1
    assert "student id '../../evil' is not usable" in got["../../evil"]["problems"]
    assert (
        "row 4: student 'ann' already has row 2; not graded twice"
        in (out / "grades.csv").read_text()
    )
    assert "column 'h1[5]' names no entry of h1" in got["bob"]["problems"]
    assert not any(tmp_path.parent.glob("evil*")) and not (tmp_path / "evil.md").exists()
    assert all(p.parent == out / "feedback" for p in (out / "feedback").rglob("*"))


def test_each_student_their_own_network(tmp_path):
    roster = ["amy", "ben", "cy"]
    jaxbp.class_exercises(roster, tmp_path / "ex", sizes=(2, 3, 1), batch=2, course_seed=5)
    subs = tmp_path / "subs"
    subs.mkdir()
    for sid in [*roster[:2], "dan"]:
        net = jaxbp.read_network(
            tmp_path / "ex" / (sid if sid != "dan" else "amy") / "network.json"
        )
        sol = jaxbp.explain(net.params, net.x, net.y, activation=net.activation, loss=net.loss)
        claim = {
            s.name: np.vectorize(lambda v: f"{v:.4g}", otypes=[object])(s.value).tolist()
            for s in sol.steps
        }
        (subs / f"{sid}.json").write_text(json.dumps({"claimed": claim}))
    # ben hands in amy's answers: graded against ben's own network, not the one he copied.
    (subs / "ben.json").write_text((subs / "dan.json").read_text())
    out = tmp_path / "out"
    assert main(["grade", str(subs), "--exercises", str(tmp_path / "ex"), "--out", str(out)]) == 1
    got = rows(out / "grades.csv")
    assert float(got["amy"]["score"]) == 100.0 and got["amy"]["wrong"] == "0"
    # Amy's working carried forward from ben's first wrong value: carry-forward credit only.
    assert got["ben"]["root_errors"].startswith("h1") and int(got["ben"]["inherited"]) >= 5
    assert "no exercise for 'dan'" in got["dan"]["problems"]
    # cy has an exercise but handed nothing in: listed, no score, no feedback page.
    assert got["cy"]["problems"] == "no submission" and got["cy"]["score"] == ""
    assert not (out / "feedback" / "cy.md").exists()


def test_a_roster_lists_who_handed_nothing_in(tmp_path, capsys):
    (tmp_path / "subs").mkdir()
    shutil.copy(SEED_CLAIMED, tmp_path / "subs" / "ada.json")
    (tmp_path / "roster.txt").write_text("ada\nbob\n")
    out = tmp_path / "out"
    code = main(
        [
            "grade",
            str(tmp_path / "subs"),
            "--roster",
            str(tmp_path / "roster.txt"),
            "--out",
            str(out),
        ]
    )
    assert code == 0  # every file handed in was graded in full
    assert (
        "graded 1 of 1 submissions (1 in full; 1 on the roster handed nothing in)"
        in capsys.readouterr().out
    )
    got = rows(out / "grades.csv")
    assert got["bob"]["problems"] == "no submission" and got["ada"]["score"] == "78.6"
    assert "1 student(s) on the roster handed nothing in" in (out / "class_report.md").read_text()


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("JAXBP_REQUIRE_BROWSER"):
        pytest.fail("JAXBP_REQUIRE_BROWSER is set but no chromium is on PATH")
    pytest.skip("no headless Chromium (apt-get install chromium); .ci/run installs it")


def test_feedback_page_as_chromium_draws_it(tmp_path):
    browser = _chromium()
    from matplotlib.image import imread

    claim = json.loads(SEED_CLAIMED.read_text())["claimed"]  # wrong, inherited, rounding, missing
    grades = jaxbp.grade_class([jaxbp.Submission("ada", "ada.json", claim)])
    jaxbp.write_class(grades, tmp_path / "out", figures=False)
    page = tmp_path / "out" / "feedback" / "ada.html"
    text = page.read_text()
    assert "<script" not in text and "http" not in text and "<link" not in text  # self-contained
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            "--window-size=1000,1400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    img = imread(shot)[..., :3]
    assert (img < 0.9).any(axis=-1).mean() > 0.05, "the page looks blank"
    from jaxbp.teach._feedback import COLOURS

    for verdict in ("correct", "rounding", "inherited", "wrong", "missing"):
        rgb = np.array([int(COLOURS[verdict][0][i : i + 2], 16) for i in (1, 3, 5)]) / 255
        share = (np.abs(img - rgb).max(axis=-1) < 0.06).mean()
        assert share > 1e-4, f"no {verdict} colour on the page ({share})"
    pdf = tmp_path / "page.pdf"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000


def test_canvas_and_moodle_gradebooks_follow_their_import_rules(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "student,Name,Canvas_ID,SIS User ID,sis_login_id,Section,Email\n"
        's001,"Doe, Jane",101,U1,jdoe,A,jdoe@uni.edu\n'
        "s002,Ann Lee,102,U2,alee,B,alee@uni.edu\n"
        "s099,Absent One,199,U9,aone,B,aone@uni.edu\n"
    )
    table = jaxbp.teach.read_roster_table(roster)
    assert table["s001"]["canvas id"] == "101" and table["s002"]["email"] == "alee@uni.edu"
    subs = tmp_path / "subs"  # four of the shipped class, the broken file among them
    subs.mkdir()
    for sid in ("s000", "s001", "s002", "s003"):
        shutil.copy(CLASS / "submissions" / f"{sid}.json", subs)
    out = tmp_path / "graded"
    code = main(["grade", str(subs), "--roster", str(roster), "--assignment", "Week 9 Q2",
                 "--points", "20", "--out", str(out)])  # fmt: skip
    assert code == 1  # the class has a broken file
    by_id = rows(out / "grades.csv")
    with open(out / "canvas.csv", newline="") as f:
        canvas = list(csv.reader(f))
    # Canvas: the five identity columns, then the assignment; then the points row.
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Week 9 Q2"]
    assert canvas[1] == ["Points Possible", "", "", "", "", "20"]
    body = {r[3]: r for r in canvas[2:]}
    assert body["jdoe"][:5] == ["Doe, Jane", "101", "U1", "jdoe", "A"]
    assert float(body["jdoe"][5]) == pytest.approx(
        float(by_id["s001"]["score"]) / 5, abs=0.011
    )  # grades.csv: 1 decimal
    assert body["aone"][5] == ""  # on the roster, nothing handed in: the grade is left alone
    assert body["s003"][:5] == ["s003", "", "", "s003", ""]  # not on the roster: its jaxbp id
    assert len(canvas) == 2 + len(by_id)
    with open(out / "moodle.csv", newline="") as f:
        moodle = list(csv.DictReader(f))
    assert list(moodle[0]) == ["Email address", "Week 9 Q2", "Feedback"]
    first = next(r for r in moodle if r["Email address"] == "jdoe@uni.edu")
    assert float(first["Week 9 Q2"]) == pytest.approx(float(by_id["s001"]["score"]), abs=0.051)
    assert first["Feedback"].startswith(f"Score {by_id['s001']['score']}/100. Steps: ")
    assert next(r for r in moodle if r["Email address"] == "s000")["Week 9 Q2"] == ""
    # Without e-mail addresses the identifier is the ID number (the jaxbp id if none is given).
    text = jaxbp.teach.moodle_csv(jaxbp.grade_class(subs), "Q2")
    assert text.splitlines()[0] == "ID number,Q2,Feedback"
    with pytest.raises(ValueError, match="assignment must be a name on one line"):
        jaxbp.teach.canvas_csv(jaxbp.grade_class(subs), "")
