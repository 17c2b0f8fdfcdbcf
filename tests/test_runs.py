"""Sweeps into run folders: resumable after SIGKILL, refusing other configs, validating first."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxbp.cli import main
from tests.helpers import built_once

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
members_per_file = 32
"""


def write_config(tmp_path, steps=1000, name="sweep.toml", extra=""):
    p = tmp_path / name
    p.write_text(CONFIG.format(steps=steps) + extra)
    return p


# The sweep as the command runs it, with one change: when a chunk's training starts
# with ``done`` chunk files already written, the process sends itself ``sig``. So the
# signal lands while a later chunk trains, however fast the chunks are. Ctrl-C is
# handled as in a terminal even where the test runs in the background (a shell's
# background jobs start with SIGINT ignored).
SIGNAL_WHEN_DONE = """
import os, pathlib, signal, sys
import jaxbp.sweeps._runs as runs
from jaxbp.cli import main
signal.signal(signal.SIGINT, signal.default_int_handler)
real, chunks = runs.train_many, pathlib.Path(sys.argv[1]) / "chunks"
def train_many(*args, **kw):
    if len(list(chunks.glob("*.npz"))) >= {done}:
        os.kill(os.getpid(), {sig})
    return real(*args, **kw)
runs.train_many = train_many
sys.exit(main(sys.argv[2:]))
"""


def interrupted_sweep(config, out, done, sig):
    """The sweep in a process of its own that gets ``sig`` once ``done`` chunks are written."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    args = ["sweep", str(config), "--out", str(out), "--no-progress"]
    code = SIGNAL_WHEN_DONE.format(done=done, sig=int(sig))
    command = [sys.executable, "-c", code, str(out), *args]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def sweep_here(config, out):
    """The sweep as the command runs it, in this process (one CPU device: the same bits)."""
    assert main(["sweep", str(config), "--out", str(out), "--no-progress"]) == 0


@pytest.fixture(scope="session")
def whole(tmp_path_factory):
    """An uninterrupted run of CONFIG, the reference for the interrupted ones."""
    return built_once(
        tmp_path_factory, "test_runs-whole", lambda out: sweep_here(write_config(out.parent), out)
    )


def interrupt_after_two_chunks(config, out, sig):
    """The sweep gets ``sig`` while its third of 8 chunks trains."""
    p = interrupted_sweep(config, out, 2, sig)
    _, err = p.communicate(timeout=120)
    done = sorted((out / "chunks").glob("*.npz"))
    assert len(done) == 2, err
    assert not (out / "members.csv").exists()
    return p.returncode, err


def resume_and_compare(config, out, whole):
    sweep_here(config, out)
    a = (out / "members.csv").read_text().splitlines()
    b = (whole / "members.csv").read_text().splitlines()
    assert len(a) == 1 + 256 and a == b, "no member lost, duplicated or changed"
    assert (out / "summary.json").read_text() == (whole / "summary.json").read_text()


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, whole):
    config = write_config(tmp_path)
    broken = tmp_path / "broken"
    interrupt_after_two_chunks(config, broken, signal.SIGKILL)
    # A temporary file of the chunk being written may remain: it is never read.
    resume_and_compare(config, broken, whole)
    # The figures are real PNGs, and the report shows them.
    report = (whole / "report.md").read_text()
    for name in ("convergence.png", "final_loss.png", "loss_curves.png", "decision_surfaces.png"):
        png = (whole / "figures" / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, name
        assert f"](figures/{name})" in report
    assert "Highest convergence rate" in report


def test_ctrl_c_leaves_a_resumable_folder(tmp_path, whole):
    config = write_config(tmp_path)
    out = tmp_path / "interrupted"
    code, err = interrupt_after_two_chunks(config, out, signal.SIGINT)
    assert code == 130 and "interrupted: finished chunks are kept" in err, err
    assert "Traceback" not in err
    # Nothing half-written: no temporary file left, every chunk file whole.
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    for p in (out / "chunks").glob("*.npz"):
        with np.load(p, allow_pickle=False) as z:
            assert z["final_loss"].shape[0] == 32
    resume_and_compare(config, out, whole)


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
        ("[task]\nname = 'parity'\n", r"\[optimizer\] needs the key 'learning_rates'"),
        (
            CONFIG.format(steps=20).replace("sizes = [3, 2, 1]", ""),
            r"\[network\] needs the key 'sizes' \(the built-in MLP's layer widths\) or 'model'",
        ),
        (CONFIG.format(steps=20) + "\n[extra]\nx = 1\n", r"unknown section\(s\) \['extra'\]"),
        (
            CONFIG.format(steps=20).replace("bits = 3", "bits = 3\nbitz = 4"),
            r"unknown key\(s\) \['bitz'\] in \[task\]",
        ),
        (CONFIG.format(steps=20).replace('"parity"', '"mnist"'), r"unknown task 'mnist'"),
        (
            CONFIG.format(steps=20).replace("[3, 2, 1]", "[4, 2, 1]"),
            r"sizes starts with 4 inputs but task 'parity' has 3",
        ),
        (
            CONFIG.format(steps=20).replace("[0.5, 4.0]", "[0.5, -4.0]"),
            r"learning_rates must hold positive finite",
        ),
        (
            CONFIG.format(steps=20).replace("n_inits = 64", "n_inits = 'many'"),
            r"\[run\] n_inits must be a int",
        ),
        ("not toml [", r"not valid TOML"),
        (
            CONFIG.format(steps=30),
            r"\[run\] record_every must be a positive divisor of steps=30; got 20",
        ),
        # The rules train_many applies itself, before any data is loaded.
        (CONFIG.format(steps=0), r"\[run\] steps must be a positive integer; got 0"),
        (
            CONFIG.format(steps=20).replace("[3, 2, 1]", "[3]"),
            r"\[network\] sizes must name at least an input and an output width",
        ),
        (
            CONFIG.format(steps=20).replace("sizes =", 'scheme = "even"\nsizes ='),
            r"\[network\] unknown scheme 'even'",
        ),
        (
            CONFIG.format(steps=20) + "batch_size = 0\n",
            r"\[run\] batch_size must be a positive integer; got 0",
        ),
        (
            CONFIG.format(steps=20).replace("sizes =", "widths = [2, 0]\nsizes ="),
            r"\[network\] widths must be a non-empty list of positive integers; got \[2, 0\]",
        ),
        (
            CONFIG.format(steps=20).replace("sizes =", "widths = []\nsizes ="),
            r"\[network\] widths must be a non-empty list of positive integers; got \[\]",
        ),
        (
            CONFIG.format(steps=20).replace("[3, 2, 1]", "[3, 1]\nwidths = [2]"),
            r"\[network\] widths sets the hidden layers' width, but sizes=\[3, 1\] has no hidden",
        ),
        (
            CONFIG.format(steps=20).replace(
                "sizes = [3, 2, 1]",
                'model = "jaxbp:mlp_model"\nmodel_args = { sizes = [3, 2, 1] }\nwidths = [2, 4]',
            ),
            r"\[network\] widths sets the hidden width of the built-in MLP: it needs sizes",
        ),
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
    assert main(["sweep", str(write_config(tmp_path, steps=20)), "--out", str(f)]) == 2
    assert "is a file; expected a run folder" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "r")]) == 2
    assert "no such config file" in capsys.readouterr().err
    assert not Path(tmp_path / "r").exists()


@pytest.mark.standard_promotion  # optax's adam mixes Python floats and int32 counts
def test_a_task_with_a_test_split_reports_test_accuracy_per_member(tmp_path):
    import csv

    import jax
    import optax

    import jaxbp

    config = tmp_path / "bc.toml"
    config.write_text(
        '[task]\nname = "breast_cancer"\n[network]\nsizes = [30, 4, 1]\n'
        '[optimizer]\nname = "adam"\nlearning_rates = [0.01]\n[init]\nscales = [1.0]\n'
        "[run]\nn_inits = 6\nsteps = 30\nrecord_every = 10\nmembers_per_file = 4\n"
    )
    out = tmp_path / "run"
    assert main(["sweep", str(config), "--out", str(out), "--no-progress"]) == 0
    with open(out / "members.csv") as f:
        rows = list(csv.DictReader(f))
    task = jaxbp.load_task("breast_cancer")
    ref = jaxbp.train_many(
        jax.random.key(0),
        (30, 4, 1),
        task.x,
        task.y,
        n_inits=6,
        steps=30,
        learning_rate=0.01,
        optimizer=optax.adam,
        record_every=10,
        x_test=task.x_test,
        y_test=task.y_test,
        dtype=np.float32,  # the config's default
        progress=False,
    )
    assert [float(r["test_accuracy"]) for r in rows] == [
        float(f"{v:.9g}") for v in ref.test_accuracy
    ]
    assert all(0.5 < float(r["test_accuracy"]) <= 1 for r in rows)
    assert "median test accuracy" in (out / "report.md").read_text()
    # 30 inputs: no decision surface to draw.
    assert not (out / "figures" / "decision_surfaces.png").exists()
    with np.load(out / "histories.npz") as h:
        np.testing.assert_array_equal(h["test_loss"], ref.test_loss_history)
    # Chunk files that give the held-out histories their older eval_ names still read.
    from jaxbp.sweeps._runs import FIELDS, TEST_FIELDS, _read_chunks

    before = _read_chunks(out, 6, FIELDS + TEST_FIELDS)
    for p in (out / "chunks").glob("members-*.npz"):
        with np.load(p) as z:
            arrays = {
                k.replace("test_loss_h", "eval_loss_h").replace(
                    "test_accuracy_h", "eval_accuracy_h"
                ): z[k]
                for k in z
            }
        assert "eval_loss_history" in arrays
        np.savez(p, **arrays)
    after = _read_chunks(out, 6, FIELDS + TEST_FIELDS)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


def test_cpu_devices_asked_for_too_late_is_a_clear_error(tmp_path, capsys):
    import jax

    have = len(jax.devices("cpu"))
    out = tmp_path / "run"
    code = main(
        [
            "sweep",
            str(write_config(tmp_path, steps=20)),
            "--out",
            str(out),
            "--no-progress",
            "--cpu-devices",
            str(have + 1),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"use_cpu_cores({have + 1}) must be called before JAX's first computation" in err
    assert not out.exists()


def test_load_run_gives_back_what_train_many_returns(whole):
    import jax

    import jaxbp

    run = jaxbp.load_run(whole)
    assert run.config == jaxbp.SweepConfig.from_toml(whole / "config.toml")
    task = jaxbp.load_task("parity", bits=3)
    ref = jaxbp.train_many(
        jax.random.key(0),
        (3, 2, 1),
        task.x,
        task.y,
        keep_params=True,
        **run.config.train_kwargs(task),
    )
    for field in ("final_loss", "accuracy", "converged_at", "diverged", "history"):
        np.testing.assert_array_equal(getattr(run.result, field), getattr(ref, field))
    for field in ("learning_rate", "init_scale", "seed_index", "grid_index"):
        np.testing.assert_array_equal(getattr(run.result, field), getattr(ref, field))
    assert run.summary["members"] == 256
    assert [g["converged"] for g in run.summary["grid"]] == [g["converged"] for g in ref.summary()]
    # A 3-input sweep's chunk files keep every member's final parameters (for the
    # decision figure): train_many's, bit for bit.
    leaves = jax.tree_util.tree_leaves(ref.params)
    for path in sorted((whole / "chunks").glob("*.npz")):
        start, stop = (int(v) for v in path.stem.split("-")[1:])
        with np.load(path) as z:
            assert sorted(k for k in z if k.startswith("params.")) == ["params.0", "params.1",
                                                                      "params.2", "params.3"]  # fmt: skip
            for i, leaf in enumerate(leaves):
                np.testing.assert_array_equal(z[f"params.{i}"], leaf[start:stop])


def test_a_folder_without_kept_parameters_retrains_the_members_it_draws(tmp_path, whole):
    # A run folder whose chunks keep no parameters (an older jaxbp's) redraws the
    # decision figure from members trained again: byte for byte the same figure.
    old = tmp_path / "old"
    shutil.copytree(whole, old)
    for path in (old / "chunks").glob("*.npz"):
        with np.load(path) as z:
            arrays = {k: z[k] for k in z if not k.startswith("params.")}
        np.savez(path, **arrays)
    assert main(["report", str(old)]) == 0
    name = "figures/decision_surfaces.png"
    assert (old / name).read_bytes() == (whole / name).read_bytes()


def test_the_sweep_config_is_train_many_s_settings():
    import dataclasses
    import inspect

    import jaxbp
    from jaxbp.sweeps._config import FIELDS, SweepConfig

    held = [f.name for f in dataclasses.fields(SweepConfig)]
    assert held == ["task", "task_options"] + [f.name for f in FIELDS if f.section != "task"]
    params = inspect.signature(jaxbp.train_many).parameters
    set_by_fields = {f.arg for f in FIELDS if f.arg is not None}
    assert set_by_fields <= set(params)
    # Every other train_many argument is the run's own business, or composed (optimizer).
    apart = {
        "key", "x", "y", "optimizer", "chunk_size", "keep_params", "progress", "members",
        "x_test", "y_test", "batching", "crossed", "eval_x", "eval_y",
    }  # fmt: skip
    assert set(params) - set_by_fields == apart
    # A sweep's defaults are train_many's, but the dtype (a run folder pins it down), the
    # init scales (a list, the grid axis) and the sizes (or a model instead).
    own = {"dtype": "float32", "scales": [1.0], "sizes": None}
    for f in FIELDS:
        if f.arg is not None and not f.required:
            assert f.default == own.get(f.key, params[f.arg].default), f.key
    config = SweepConfig.from_dict(
        {
            "task": {"name": "parity"},
            "network": {"sizes": [3, 2, 1]},
            "optimizer": {"learning_rates": [0.5]},
            "run": {"n_inits": 2, "steps": 10},
        }
    )
    kw = config.train_kwargs(jaxbp.load_task("parity"))
    assert kw.keys() == set_by_fields - {"sizes"} | {"optimizer", "progress"}
    assert (kw["activation"], kw["loss"], kw["scheme"], kw["grad"]) == (
        "sigmoid", "bce", "normal", "autodiff",
    )  # fmt: skip
    np.testing.assert_array_equal(kw["learning_rate"], [0.5])


def test_load_run_refuses_what_is_not_a_finished_run(tmp_path):
    import jaxbp

    with pytest.raises(ValueError, match="not a run folder"):
        jaxbp.load_run(tmp_path)


def test_files_written_atomically_get_the_mode_of_a_plain_write(whole):
    # Under the test process's umask (022 in CI): 0644, as open(path, "w") would give.
    mask = os.umask(0)
    os.umask(mask)
    for name in ("config.toml", "members.csv", "summary.json", "report.md"):
        assert (whole / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def test_sweep_docs_list_every_config_key():
    from jaxbp.sweeps._config import FIELDS

    docs = (Path(__file__).parent.parent / "docs" / "sweeps.md").read_text()
    for f in FIELDS:
        assert f"`[{f.section}] {f.key}`" in docs, f"docs/sweeps.md lacks [{f.section}] {f.key}"


def test_unset_optional_keys_are_left_out_of_the_config_as_run(tmp_path):
    import jaxbp

    config = jaxbp.SweepConfig.from_toml(write_config(tmp_path))
    assert config.memory_budget is None and config.converge_loss is None
    text = config.to_toml()
    assert "memory_budget" not in text and "converge_loss" not in text
    again = tmp_path / "again.toml"
    again.write_text(text)
    assert jaxbp.SweepConfig.from_toml(again) == config


def test_resume_with_another_file_size_keeps_the_finished_chunks(tmp_path, whole):
    """Chunks written 32 members at a time, then the run finished 48 at a time: the same run."""
    config = write_config(tmp_path)
    out = tmp_path / "run"
    interrupt_after_two_chunks(config, out, signal.SIGKILL)
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "chunks").glob("*.npz")}
    assert len(kept) == 2, "6 chunks of 32 members are left, for files of 48"
    bigger = write_config(tmp_path, name="bigger.toml")
    bigger.write_text(bigger.read_text().replace("members_per_file = 32", "members_per_file = 48"))
    resume_and_compare(bigger, out, whole)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "chunks").glob("*.npz")}
    assert all(after[name] == t for name, t in kept.items()), "finished chunks are kept as they are"
    assert any(int(n.split("-")[2].split(".")[0]) - int(n.split("-")[1]) == 48 for n in after), (
        "the rest was trained 48 members at a time"
    )


def test_a_sweep_without_matplotlib_keeps_its_results_and_says_how_to_draw(
    tmp_path, capsys, monkeypatch
):
    import sys

    import jaxbp

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "matplotlib", None)
        code = main(
            ["sweep", str(write_config(tmp_path, steps=20)), "--out", str(out), "--no-progress"]
        )
    printed = capsys.readouterr().out
    assert code == 0, "results are the job: the sweep succeeds"
    assert (out / "members.csv").exists() and (out / "summary.json").exists()
    assert not list((out / "figures").glob("*.png")) if (out / "figures").exists() else True
    assert "figures were skipped" in printed and f"jaxbp report {out}" in printed
    assert "figures were skipped" in (out / "report.md").read_text()
    # With matplotlib, `jaxbp report` draws them from the finished folder.
    assert main(["report", str(out)]) == 0
    assert (out / "figures" / "convergence.png").stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "![convergence.png](figures/convergence.png)" in report
    assert "skipped" not in report
    assert jaxbp.report_run(out) is True


def test_run_members_as_a_dataframe(whole):
    pd = pytest.importorskip("pandas")
    import jaxbp

    run = jaxbp.load_run(whole)
    frame = run.members()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 256
    np.testing.assert_array_equal(frame["converged_at"].to_numpy(), run.result.converged_at)


def test_a_sweep_too_big_for_the_disk_limit_is_refused_before_anything_is_written(tmp_path, capsys):
    huge = write_config(tmp_path, name="huge.toml")
    huge.write_text(huge.read_text().replace("n_inits = 64", "n_inits = 1000000000000"))
    out = tmp_path / "run"
    assert main(["sweep", str(huge), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "on disk" in err and "--max-disk" in err and "GiB" in err
    assert not out.exists()
    # A small sweep under a tiny limit is refused the same way, and the limit can be raised.
    small = write_config(tmp_path, steps=20)
    assert main(["sweep", str(small), "--out", str(out), "--max-disk", "0.00001"]) == 2
    assert "more than --max-disk" in capsys.readouterr().err and not out.exists()
    assert main(["sweep", str(small), "--out", str(out), "--no-progress", "--max-disk", "1"]) == 0


def test_a_sweep_shows_one_bar_for_the_whole_run(tmp_path, capsys):
    import jaxbp

    config = jaxbp.SweepConfig.from_toml(write_config(tmp_path, steps=20))
    jaxbp.run_sweep(config, tmp_path / "run", progress=True)
    err = capsys.readouterr().err
    assert "sweep: 256 members" in err, "one bar over every member still to train"
    assert "train_many:" not in err, "no bar per chunk"
    assert "5.12k/5.12k" in err, "256 members x 20 steps, all done"


def test_the_time_estimate_bounds_the_real_run(tmp_path):
    import jaxbp

    config = jaxbp.SweepConfig.from_toml(write_config(tmp_path, steps=200))
    est = jaxbp.estimate_sweep(config, probe=True)
    assert est.seconds is not None and est.seconds > 0 and "of training" in str(est)
    t = time.perf_counter()
    jaxbp.run_sweep(config, tmp_path / "run", progress=False)
    took = time.perf_counter() - t
    # An upper estimate of the training (the real run adds compilation and files).
    assert est.seconds < 20 * took
    assert est.disk > sum(p.stat().st_size for p in (tmp_path / "run" / "chunks").glob("*"))


def test_a_sweep_over_widths_trains_each_width_as_train_many_does(tmp_path, capsys):
    import csv

    import jax

    import jaxbp

    config = tmp_path / "widths.toml"
    config.write_text(CONFIG.format(steps=20).replace("[3, 2, 1]", "[3, 2, 1]\nwidths = [2, 5]"))
    out = tmp_path / "run"
    assert main(["sweep", str(config), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "grid point  width  learning rate" in printed
    with (out / "members.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 512 and [r["width"] for r in rows[255:257]] == ["2", "5"]
    task = jaxbp.load_task("parity", bits=3)
    run = jaxbp.load_run(out)
    kw = run.config.train_kwargs(task)
    assert kw["widths"] == (2, 5)
    for i, w in enumerate((2, 5)):
        alone = jaxbp.train_many(
            jax.random.key(0), (3, w, 1), task.x, task.y, **{**kw, "widths": None}
        )
        part = slice(256 * i, 256 * (i + 1))
        np.testing.assert_array_equal(run.result.width[part], w)
        np.testing.assert_array_equal(run.result.converged_at[part], alone.converged_at)
        finals = [float(r["final_loss"]) for r in rows[part]]
        np.testing.assert_allclose(finals, alone.final_loss, rtol=1e-5, atol=1e-6)
    grid = run.summary["grid"]
    assert [(g["width"], g["learning_rate"], g["init_scale"]) for g in grid][:5] == [
        (2, 0.5, 0.5), (2, 0.5, 2.0), (2, 4.0, 0.5), (2, 4.0, 2.0), (5, 0.5, 0.5),
    ]  # fmt: skip
    report = (out / "report.md").read_text()
    assert "2 hidden widths x 2 learning rates x 2 init scales x 64 random starts" in report
    assert "| width | learning rate | init scale |" in report
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "convergence.png", "decision_surfaces.png", "final_loss.png", "loss_curves.png",
    ]  # fmt: skip


def test_a_section_a_study_added_survives_redrawing_the_report(tmp_path, capsys):
    import jaxbp

    out = tmp_path / "run"
    config = write_config(tmp_path, steps=20)
    assert main(["sweep", str(config), "--out", str(out), "--no-progress"]) == 0
    jaxbp.add_report_section(out, "Study findings", "- **Finding:** the rate rises.")
    before = (out / "report.md").read_text()
    assert main(["report", str(out)]) == 0
    after = (out / "report.md").read_text()
    assert after == before and after.count("## Study findings") == 1
    assert after.index("## Study findings") < after.index("## Figures")
