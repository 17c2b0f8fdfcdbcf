"""Sweeps into run folders: resumable after SIGKILL, refusing other configs, validating first."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxbp.cli import main

CONFIG = """
[task]
name = "parity"
bits = 3

[network]
sizes = [3, 2, 1]

[optimizer]
name = "sgd"
learning_rates = [0.5, 4.0]

[init]
scales = [0.5, 2.0]

[run]
n_inits = 64
steps = {steps}
record_every = 20
chunk_members = 32
"""


def write_config(tmp_path, steps=1000, name="sweep.toml", extra=""):
    p = tmp_path / name
    p.write_text(CONFIG.format(steps=steps) + extra)
    return p


def sweep(config, out):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jaxbp.cli",
            "sweep",
            str(config),
            "--out",
            str(out),
            "--no-progress",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    config = write_config(tmp_path)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    p = sweep(config, broken)
    deadline = time.time() + 120
    chunks = broken / "chunks"
    while time.time() < deadline and not (chunks.is_dir() and len(list(chunks.glob("*.npz"))) >= 2):
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    done = sorted(chunks.glob("*.npz"))
    assert 2 <= len(done) < 8, "the kill must land partway through the 8 chunks"
    assert not (broken / "members.csv").exists()
    # A temporary file of the chunk being written may remain: it is never read.
    r = sweep(config, broken)
    _, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    q = sweep(config, whole)
    _, err = q.communicate(timeout=300)
    assert q.returncode == 0, err
    a = (broken / "members.csv").read_text().splitlines()
    b = (whole / "members.csv").read_text().splitlines()
    assert len(a) == 1 + 256 and a == b, "no member lost, duplicated or changed"
    assert (broken / "summary.json").read_text() == (whole / "summary.json").read_text()
    # The figures are real PNGs, and the report shows them.
    report = (whole / "report.md").read_text()
    for name in ("convergence.png", "final_loss.png", "loss_curves.png"):
        png = (whole / "figures" / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, name
        assert f"](figures/{name})" in report
    assert "Highest convergence rate" in report


def test_another_config_on_a_run_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["sweep", str(write_config(tmp_path, steps=20)), "--out", str(out), "--no-progress"])
        == 0
    )
    before = sorted(p.name for p in out.rglob("*"))
    assert (
        main(["sweep", str(write_config(tmp_path, steps=40, name="other.toml")), "--out", str(out)])
        == 2
    )
    err = capsys.readouterr().err
    assert "holds a run of another config" in err
    assert sorted(p.name for p in out.rglob("*")) == before


@pytest.mark.parametrize(
    "text, message",
    [
        ("[task]\nname = 'parity'\n", r"\[network\] needs the key 'sizes'"),
        (CONFIG.format(steps=10) + "\n[extra]\nx = 1\n", r"unknown section\(s\) \['extra'\]"),
        (
            CONFIG.format(steps=10).replace("bits = 3", "bits = 3\nbitz = 4"),
            r"unknown key\(s\) \['bitz'\] in \[task\]",
        ),
        (CONFIG.format(steps=10).replace('"parity"', '"mnist"'), r"unknown task 'mnist'"),
        (
            CONFIG.format(steps=10).replace("[3, 2, 1]", "[4, 2, 1]"),
            r"sizes starts with 4 inputs but task 'parity' has 3",
        ),
        (
            CONFIG.format(steps=10).replace("[0.5, 4.0]", "[0.5, -4.0]"),
            r"learning_rates must hold positive finite",
        ),
        (
            CONFIG.format(steps=10).replace("n_inits = 64", "n_inits = 'many'"),
            r"\[run\] n_inits must be a int",
        ),
        ("not toml [", r"not valid TOML"),
    ],
)
def test_bad_configs_leave_no_folder(tmp_path, capsys, text, message):
    import re

    config = tmp_path / "bad.toml"
    config.write_text(text)
    out = tmp_path / "run"
    assert main(["sweep", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not out.exists()


def test_out_must_be_a_folder(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["sweep", str(write_config(tmp_path, steps=10)), "--out", str(f)]) == 2
    assert "is a file; expected a run folder" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "r")]) == 2
    assert "no such config file" in capsys.readouterr().err
    assert not Path(tmp_path / "r").exists()
