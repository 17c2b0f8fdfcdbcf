"""The studies in experiments/ run end to end (--quick) and report what their data say."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def study(name, out):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / f"study_{name}.py"),
            "--quick",
            "--out",
            str(out),
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert report.count("## Study findings") == 1
    return report, json.loads((out / "summary.json").read_text())


def members(out):
    rows = (out / "members.csv").read_text().splitlines()
    head = rows[0].split(",")
    return {k: np.array([float(r.split(",")[i]) for r in rows[1:]]) for i, k in enumerate(head)}


def test_parity3_study(tmp_path):
    out = tmp_path / "p3"
    report, summary = study("parity3", out)
    best = max(summary["grid"], key=lambda r: r["convergence_rate"])
    assert f"{best['converged']:,} of {best['members']:,} starts learned all 8 patterns" in report
    m = members(out)
    assert (
        f"{1 - np.mean(m['converged'] == 0):.1%} of {len(m['member']):,} starts converged" in report
    )
    assert "decision_surfaces.png" in report
    # Rerunning resumes the finished folder and rewrites, never repeats, the findings.
    report2, _ = study("parity3", out)

    def without_timing(text):
        return [line for line in text.splitlines() if "this call took" not in line]

    assert without_timing(report2) == without_timing(report)


def test_xor_study(tmp_path):
    out = tmp_path / "xor"
    report, _ = study("xor", out)
    m = members(out)
    assert f"**{np.mean(m['converged']):.1%} of {len(m['member']):,} starts converged**" in report
    assert "Sprinkhuizen-Kuyper" in report and "How the failures look" in report


@pytest.mark.standard_promotion
def test_breast_cancer_study(tmp_path):
    out = tmp_path / "bc"
    report, _ = study("breast_cancer", out)
    m = members(out)
    acc = m["test_accuracy"]
    assert f"median {np.median(acc):.1%}" in report and f"max {acc.max():.1%}" in report
    png = (out / "figures" / "ensemble.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_digits_study(tmp_path):
    import importlib.util

    out = tmp_path / "digits"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    cmd = [sys.executable, str(ROOT / "experiments" / "study_digits.py"), "--quick", "--out", str(out), "--no-progress"]  # fmt: skip
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    report = (out / "report.md").read_text()
    conds = {p.stem for p in (out / "conditions").glob("*.npz")}
    assert conds == {"full_batch", "batch_256", "batch_64", "batch_16"}
    assert (out / "figures" / "digits.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The reported medians and variance shares are those of the stored results.
    spec = importlib.util.spec_from_file_location(
        "study_digits", ROOT / "experiments" / "study_digits.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with np.load(out / "conditions" / "batch_16.npz") as z:
        acc = z["test_accuracy"]
        assert z["probabilities"].shape == (16, 445) and z["test_loss_history"].shape == (16, 4)
    shares = mod.variance_shares(acc, 4, 4)
    row = next(line for line in report.splitlines() if line.startswith("| batch 16 |"))
    assert f"| {np.median(acc):.1%} |" in row and f"| {shares['initialization']:.0%} |" in row
    # ANOVA against a table with only row effects, and only column effects.
    rows = np.repeat(np.arange(4.0), 4)
    assert mod.variance_shares(rows, 4, 4)["initialization"] == 1.0
    assert mod.variance_shares(np.tile(np.arange(4.0), 4), 4, 4)["data order"] == 1.0
    # Rerunning resumes: the stored conditions are read back, not retrained.
    before = (out / "conditions" / "batch_16.npz").stat().st_mtime_ns
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and (out / "conditions" / "batch_16.npz").stat().st_mtime_ns == before


def test_digits_conv_study(tmp_path):
    out = tmp_path / "conv"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    script = str(ROOT / "experiments" / "study_digits_conv.py")
    cmd = [sys.executable, script, "--quick", "--out", str(out), "--no-progress"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert (out / "figures" / "digits_conv.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name, label, params in (("conv", "conv 3x3x6", 277), ("mlp", "mlp 64-4-1", 265)):
        with np.load(out / "networks" / f"{name}.npz") as z:
            acc, probs = z["test_accuracy"], z["probabilities"]
        assert probs.shape == (32, 445)
        # The stored accuracy is the one the stored probabilities give.
        y = jaxbp_test_labels()
        np.testing.assert_allclose(acc, np.mean((probs > 0.5) == (y > 0.5), axis=1), atol=1e-6)
        row = next(line for line in report.splitlines() if line.startswith(f"| {label} |"))
        assert f"| {params} | 32 | {np.median(acc):.1%} |" in row
    # A second run reuses the stored networks (resumable) and writes the same report.
    before = {p.name: p.stat().st_mtime_ns for p in (out / "networks").iterdir()}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "networks").iterdir()} == before
    assert (out / "report.md").read_text() == report


def jaxbp_test_labels():
    import jaxbp

    return jaxbp.load_task("digits").y_test
