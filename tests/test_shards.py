"""Sweeps across processes: shards of one run folder, crashes and reruns, SLURM arrays,
one multi-process JAX job; the files end byte for byte those of a single-process run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import jaxbp
from jaxbp.cli import main
from tests.helpers import built_once, free_port, run_processes

CONFIG = """
[task]
name = "parity"
bits = 3
[network]
sizes = [3, 2, 1]
[optimizer]
learning_rates = [0.5, 2.0]
[init]
scales = [0.5, 1.0]
[run]
n_inits = 96
steps = 400
record_every = 40
members_per_file = 32
batch_size = 4
"""
FILES = ("members.csv", "histories.npz", "summary.json", "report.md")


@pytest.fixture(scope="session")
def single(tmp_path_factory):
    """The same sweep in one process, for reference."""

    def build(out):
        (out.parent / "c.toml").write_text(CONFIG)
        assert main(["sweep", str(out.parent / "c.toml"), "--out", str(out), "--no-progress"]) == 0

    return built_once(tmp_path_factory, "test_shards-single", build)


def sweep_cmd(config, out, *extra):
    return [
        sys.executable,
        "-m",
        "jaxbp",
        "sweep",
        str(config),
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def env(**kw):
    e = dict(os.environ, JAX_PLATFORMS="cpu", **kw)
    e.pop("XLA_FLAGS", None)
    return e


def same_files(a: Path, b: Path):
    for f in FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    for p in sorted((a / "chunks").glob("members-*.npz")):
        assert p.read_bytes() == (b / "chunks" / p.name).read_bytes(), p.name
    names = lambda d: sorted(p.name for p in (d / "chunks").glob("members-*.npz"))
    assert names(a) == names(b)


def test_three_shards_one_killed_and_rerun_end_as_one_process(tmp_path, capsys, single):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    out = tmp_path / "run"
    procs = [
        subprocess.Popen(sweep_cmd(config, out, "--shard", f"{i}/3"), env=env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(3)
    ]  # fmt: skip
    # Kill shard 1 once its first chunk (members 32-63) is written, or at the latest
    # after 60 s; shards 0 and 2 run on.
    first = out / "chunks" / "members-000000032-000000064.npz"
    deadline = time.time() + 60
    while not first.exists() and time.time() < deadline and procs[1].poll() is None:
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    outs = [p.communicate(timeout=300) for p in procs]
    assert procs[0].returncode == 0 and procs[2].returncode == 0, [o[1][-1500:] for o in outs]
    if procs[1].returncode == -signal.SIGKILL:
        assert not (out / "members.csv").exists()  # nobody could assemble
        # A write cut short leaves at most a hidden temporary file, never a chunk.
        (out / "chunks" / ".members-000000160-000000192.npz.x.tmp").write_bytes(b"cut short")
    # The killed shard rerun (here, in the test process), which assembles the run.
    assert main(["sweep", str(config), "--out", str(out), "--no-progress", "--shard", "1/3"]) == 0
    assert "384 members of task 'parity'" in capsys.readouterr().out
    same_files(out, single)


def test_slurm_array_task_picks_the_shard_and_finish_assembles(
    tmp_path, monkeypatch, capsys, single
):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    out = tmp_path / "run"
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "4")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    assert main(["sweep", str(config), "--out", str(out), "--no-progress"]) == 0
    assert "shard 1/2" in capsys.readouterr().out
    starts = sorted(int(p.name.split("-")[1]) // 32 for p in (out / "chunks").glob("members-*"))
    assert starts == [1, 3, 5, 7, 9, 11]  # chunks k with k % 2 == 1
    assert main(["sweep", str(config), "--out", str(out), "--finish"]) == 2
    assert "192 of 384 members have no chunk yet (members 0-31, 64-95" in capsys.readouterr().err
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "4")
    assert main(["sweep", str(config), "--out", str(out), "--no-progress"]) == 0
    same_files(out, single)
    assert main(["sweep", str(config), "--out", str(out), "--finish"]) == 0  # again: the same
    same_files(out, single)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "9")
    assert main(["sweep", str(config), "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "SLURM array task 9 is not one of 2 tasks" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sweep", str(config), "--out", str(out), "--shard", "3/3"])
    with pytest.raises(ValueError, match=r"shard must be \(index, count\)"):
        jaxbp.run_sweep(jaxbp.SweepConfig.from_toml(config), out, shard=(2, 2))


def test_one_multi_process_jax_job_splits_the_chunks(tmp_path, single):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    out = tmp_path / "run"
    port = free_port()
    outs = run_processes(
        [sweep_cmd(config, out)] * 2,
        [
            env(
                JAXBP_COORDINATOR=f"127.0.0.1:{port}",
                JAXBP_NUM_PROCESSES="2",
                JAXBP_PROCESS_ID=str(i),
            )
            for i in range(2)
        ],
        timeout=300,
    )
    assert "384 members of task 'parity'" in outs[0][0]
    assert "process 0 assembled the results" in outs[1][0]
    same_files(out, single)


def test_batch_size_larger_than_the_task_is_refused_before_anything_is_written(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.replace("batch_size = 4", "batch_size = 9"))
    assert main(["sweep", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "batch_size=9 is larger than the training set (8 examples)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_minibatch_digits_sweep_records_held_out_curves(tmp_path):
    config = tmp_path / "d.toml"
    config.write_text(
        '[task]\nname = "digits"\npositive = [0, 1]\n[network]\nsizes = [64, 8, 1]\n'
        "[optimizer]\nlearning_rates = [0.2]\n[run]\nn_inits = 8\nsteps = 60\n"
        "record_every = 10\nbatch_size = 50\n"
    )
    assert main(["sweep", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    run = jaxbp.load_run(tmp_path / "run")
    assert run.config.batch_size == 50 and dict(run.config.task_options)["positive"] == (0, 1)
    with np.load(tmp_path / "run" / "histories.npz") as h:
        assert h["test_loss"].shape == h["loss"].shape == (8, 6)
        np.testing.assert_array_equal(h["test_accuracy"], run.result.test_accuracy_history)
    assert (tmp_path / "run" / "figures" / "train_vs_heldout.png").stat().st_size > 10_000
    assert "minibatch steps of 50 examples" in (tmp_path / "run" / "report.md").read_text()
    header = (tmp_path / "run" / "members.csv").read_text().splitlines()[0]
    assert header.endswith(",diverged,test_loss,test_accuracy")
    table = run.members()
    np.testing.assert_allclose(table["test_accuracy"], run.result.test_accuracy, atol=1e-8)
    # Member 3 alone, from the same start and data order: the sweep's numbers.
    task = jaxbp.load_task("digits", positive=[0, 1])
    import jax

    key = jax.random.key(0)
    p0 = jaxbp.init_mlp(jax.random.fold_in(key, 3), (64, 8, 1), scheme="normal", dtype=np.float32)
    alone = jaxbp.train(p0, task.x.astype(np.float32), task.y, 0.2, steps=60, batch_size=50,
                        data_key=jaxbp.data_order_key(key, 3), record_every=10,
                        x_test=task.x_test, y_test=task.y_test)  # fmt: skip
    np.testing.assert_allclose(run.result.history[3], alone.history.loss, rtol=2e-5)
    np.testing.assert_allclose(run.result.test_loss_history[3], alone.history.test_loss, rtol=2e-5)
