"""A class's exercises: one network per student id, sheets to hand out, solutions kept apart."""

import json

import numpy as np
import pytest

import jaxbp
from jaxbp.cli import main


def test_every_student_gets_an_own_exercise_and_its_key_grades_all_correct(tmp_path, capsys):
    roster = tmp_path / "class.txt"
    roster.write_text("ana\nbo.li\n# absent today\n\nchen-3\n")
    out = tmp_path / "week9"
    assert main(["exercise", "--class", str(roster), "--out", str(out), "--course-seed", "7"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["_keys", "ana", "bo.li", "chen-3"]
    nets = {}
    for sid in ("ana", "bo.li", "chen-3"):
        assert sorted(p.name for p in (out / sid).iterdir()) == [
            "network.json",
            "sheet.html",
            "sheet.md",
        ]
        html = (out / sid / "sheet.html").read_text()
        assert (
            "<script" not in html
            and "http" not in html
            and f"Backpropagation exercise: {sid}" in html
        )
        nets[sid] = (out / sid / "network.json").read_text()
        capsys.readouterr()
        key = out / "_keys" / sid / "solution.json"
        assert (
            main(
                [
                    "check",
                    str(key),
                    "--network",
                    str(out / sid / "network.json"),
                    "--format",
                    "json",
                ]
            )
            == 0
        )
        assert set(json.loads(capsys.readouterr().out)["verdicts"].values()) == {"correct"}
    assert len(set(nets.values())) == 3, "each student has an own network"
    # Reproducible from the id and the course seed; another course seed, other networks.
    again = tmp_path / "again"
    assert (
        main(["exercise", "--class", str(roster), "--out", str(again), "--course-seed", "7"]) == 0
    )
    assert (again / "ana" / "network.json").read_text() == nets["ana"]
    other = tmp_path / "other"
    assert (
        main(["exercise", "--class", str(roster), "--out", str(other), "--course-seed", "8"]) == 0
    )
    assert (other / "ana" / "network.json").read_text() != nets["ana"]


def test_a_csv_roster_takes_its_student_column(tmp_path):
    roster = tmp_path / "class.csv"
    roster.write_text("name,student\nAna Lima,s001\nBo Li,s002\n")
    assert jaxbp.read_roster(roster) == ["s001", "s002"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("ana\n../evil\n", r"line 2: student id '\.\./evil' can't name a folder"),
        ("ana\n.hidden\n", r"'\.hidden' can't name a folder"),
        ("ana\nbo/li\n", r"'bo/li' can't name a folder"),
        ("ana\nbo\nana\n", r"line 3: student id 'ana' repeats line 1"),
        ("# nobody\n", r"names no student"),
    ],
)
def test_ids_that_cannot_name_a_folder_are_refused_and_nothing_is_written(
    tmp_path, capsys, text, message
):
    import re

    roster = tmp_path / "class.txt"
    roster.write_text(text)
    out = tmp_path / "out"
    assert main(["exercise", "--class", str(roster), "--out", str(out)]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists() and not (tmp_path / "evil").exists()


def test_a_page_in_the_notation_the_sheet_states_grades_all_right(tmp_path):
    jaxbp.class_exercises(["ann"], tmp_path / "week", sizes=(2, 2, 1), course_seed=3)
    sheet = (tmp_path / "week" / "ann" / "sheet.md").read_text()
    assert "`h1[0] = 1 + 1*1 + (-2)*2 + 3*2 = 4`" in sheet and "`net_{h1}`" in sheet
    spec = jaxbp.read_network(tmp_path / "week" / "ann" / "network.json")
    sol = jaxbp.explain(spec.params, spec.x, spec.y, activation=spec.activation, loss=spec.loss)
    lines = []
    for step in sol.steps:  # the textbook names for units, jaxbp's for the matrices
        v = np.asarray(step.value).reshape(-1)
        if step.name in ("h1", "a1"):
            sym = {"h1": "net_{{h{}}}", "a1": "\\sigma(h_{})"}[step.name]
            lines += [f"$${sym.format(j + 1)} = {e:.4g}$$" for j, e in enumerate(v)]
        elif v.size == 1:
            lines.append(f"{step.name} = {v[0]:.4g}")
        else:
            lines.append(f"{step.name} = [{', '.join(f'{e:.4g}' for e in v)}]")
    read = jaxbp.teach.read_derivation(jaxbp.teach.read_page("\n".join(lines)), spec)
    assert read.problems == []
    report = jaxbp.check_derivation(spec.params, spec.x, spec.y, read.claimed)
    assert report.ok and report.missing == () and set(report.verdicts.values()) <= {
        "correct", "rounding"
    }  # fmt: skip


def test_a_class_of_three_class_exercises_grades_its_keys_all_correct(tmp_path, capsys):
    roster = tmp_path / "class.txt"
    roster.write_text("ana\nbo\n")
    out = tmp_path / "week10"
    args = ["exercise", "--class", str(roster), "--out", str(out), "--sizes", "2,2,3"]
    assert main([*args, "--loss", "softmax_ce"]) == 0
    subs = tmp_path / "subs"
    subs.mkdir()
    for sid in ("ana", "bo"):
        net = json.loads((out / sid / "network.json").read_text())
        assert net["loss"] == "softmax_ce" and len(net["y"]) == 1 and net["y"][0] in (0, 1, 2)
        key = json.loads((out / "_keys" / sid / "solution.json").read_text())
        claimed = {step["name"]: step["value"] for step in key["steps"]}
        (subs / f"{sid}.json").write_text(json.dumps({"claimed": claimed}))
    capsys.readouterr()
    assert main(["grade", str(subs), "--exercises", str(out), "--out", str(tmp_path / "g")]) == 0
    rows = (tmp_path / "g" / "grades.csv").read_text().splitlines()
    assert all(",100.0," in r for r in rows[1:]), rows
