"""The studies in experiments/ run end to end (--quick) and report what their data say.

Each script runs in this process as ``python experiments/study_*.py`` would run it (its
``__main__`` block, its arguments, JAX's default 32-bit floats), so the studies share
the test process's JAX and compiled programs instead of starting one each."""

import contextlib
import json
import runpy
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxbp
from tests.helpers import load_experiment, without_x64

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"


@pytest.fixture
def run_script(monkeypatch):
    """``run_script(name, *args)``: ``python experiments/{name}.py *args`` in this
    process; returns its exit status."""
    monkeypatch.syspath_prepend(str(EXPERIMENTS))  # as python puts the script's folder first
    use_cpu_cores = jaxbp.use_cpu_cores

    def started_backend(n=None):
        # The test process's CPU backend has started with one device: keep it, as the
        # jaxbp command does when it runs in a started process.
        with contextlib.suppress(RuntimeError):
            return use_cpu_cores(n)
        return len(jax.devices("cpu"))

    monkeypatch.setattr(jaxbp, "use_cpu_cores", started_backend)

    def run(name, *args):
        script = EXPERIMENTS / f"{name}.py"
        monkeypatch.setattr(sys, "argv", [str(script), *map(str, args)])
        # A fresh process's settings: 32-bit floats, JAX's default promotion rules.
        with (
            without_x64(),
            jax.numpy_rank_promotion("allow"),
            jax.numpy_dtype_promotion("standard"),
        ):
            try:
                runpy.run_path(str(script), run_name="__main__")
            except SystemExit as e:
                return e.code or 0
        return 0

    return run


@pytest.fixture
def quick(run_script, capsys):
    """``quick(script, out, *extra)``: the script's --quick run into ``out``, which must
    succeed."""

    def run(script, out, *extra):
        status = run_script(script, *extra, "--quick", "--out", out, "--no-progress")
        assert status == 0, capsys.readouterr().err[-3000:]

    return run


@pytest.fixture
def study(quick):
    """``study(name, out, *extra)``: a sweep-based study's --quick run; its report and
    summary."""

    def run(name, out, *extra):
        quick(f"study_{name}", out, *extra)
        report = (out / "report.md").read_text()
        assert report.count("## Study findings") == 1
        return report, json.loads((out / "summary.json").read_text())

    return run


def members(out):
    rows = (out / "members.csv").read_text().splitlines()
    head = rows[0].split(",")
    return {k: np.array([float(r.split(",")[i]) for r in rows[1:]]) for i, k in enumerate(head)}


def test_parity3_study(tmp_path, study):
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


def test_xor_study(tmp_path, study):
    out = tmp_path / "xor"
    report, _ = study("xor", out)
    m = members(out)
    assert f"**{np.mean(m['converged']):.1%} of {len(m['member']):,} starts converged**" in report
    assert "Sprinkhuizen-Kuyper" in report and "How the failures look" in report


def test_width_study(tmp_path, study):
    out = tmp_path / "width"
    report, summary = study("width", out, "--task", "xor")
    m = members(out)
    widths = sorted(set(m["width"].astype(int)))
    assert widths == [2, 3, 4, 5, 6, 7, 8, 10, 12, 16]
    pooled = ", ".join(f"{w}: {m['converged'][m['width'] == w].mean():.1%}" for w in widths)
    assert f"**By width** (every init scale pooled): {pooled}." in report
    row = next(line for line in report.splitlines() if line.startswith("| 3 |"))
    cell = next(g for g in summary["grid"] if g["width"] == 3 and g["init_scale"] == 0.5)
    assert row.startswith(f"| 3 | {cell['convergence_rate']:.1%} ({cell['ci_low']:.1%}")
    assert "Sprinkhuizen-Kuyper" in report and "t - 1 = 3" in report
    assert (out / "figures" / "rate_by_width.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_digits10_study(tmp_path, quick):
    out = tmp_path / "digits10"
    quick("study_digits10", out)
    report = (out / "report.md").read_text()
    with np.load(out / "networks.npz") as z:
        acc, probs = z["test_accuracy"], z["probabilities"]
    y = jaxbp_test_labels(classes=10)
    assert probs.shape == (64, 445, 10)
    # The stored accuracy is the argmax of the stored probabilities, per network.
    np.testing.assert_allclose(acc, np.mean(probs.argmax(2) == y, axis=1), atol=1e-6)
    assert f"test accuracy {acc.mean():.2%} on average" in report
    whole = np.mean(probs.mean(axis=0).argmax(1) == y)
    assert f"64: {whole:.2%}." in report
    assert (out / "figures" / "digits10.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_breast_cancer_study(tmp_path, study):
    out = tmp_path / "bc"
    report, _ = study("breast_cancer", out)
    m = members(out)
    acc = m["test_accuracy"]
    assert f"median {np.median(acc):.1%}" in report and f"max {acc.max():.1%}" in report
    png = (out / "figures" / "ensemble.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_digits_study(tmp_path, quick):
    out = tmp_path / "digits"
    quick("study_digits", out)
    report = (out / "report.md").read_text()
    conds = {p.stem for p in (out / "conditions").glob("*.npz")}
    assert conds == {"full_batch", "batch_256", "batch_64", "batch_16"}
    assert (out / "figures" / "digits.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The reported medians and variance shares are those of the stored results.
    mod = load_experiment("study_digits")
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
    quick("study_digits", out)
    assert (out / "conditions" / "batch_16.npz").stat().st_mtime_ns == before


def test_digits_conv_study(tmp_path, quick):
    out = tmp_path / "conv"
    quick("study_digits_conv", out)
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
    quick("study_digits_conv", out)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "networks").iterdir()} == before
    assert (out / "report.md").read_text() == report


def jaxbp_test_labels(classes=2):
    return jaxbp.load_task("digits", classes=classes).y_test
