"""Many initializations at once: train_many against train, invariance to chunks and devices, grids."""

import itertools
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp.many._devices import (
    SMALL_LOOP_BYTES,
    SMALL_LOOPS_SINCE,
    jaxlib_version,
    small_loop_flags,
)
from jaxbp.many._program import (
    _NO_YNN,
    _WIDE_VECTORS,
    _compiler_knows,
    block_width,
    choose_program,
    compiled_programs,
    cpu_options,
    histories_into,
    train_chunk,
)
from tests.helpers import assert_close, assert_tree_equal, free_port, run_processes

PARITY_X = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], np.float64)
PARITY_Y = PARITY_X.sum(axis=1) % 2


def start_of(i, scale):
    """Member i's initial parameters, made directly (float64)."""
    return jaxbp.init_mlp(
        jax.random.fold_in(jax.random.key(3), i),
        (3, 2, 1),
        scheme="normal",
        scale=scale,
        dtype=np.float64,
    )


def run_many(**kw):
    # float32, as the subprocesses below compute (they run without jax_enable_x64).
    args = dict(
        n_inits=6,
        steps=40,
        learning_rate=[0.5, 4.0],
        init_scale=[0.5, 2.0],
        progress=False,
        dtype=np.float32,
    )
    args.update(kw)
    return jaxbp.train_many(jax.random.key(3), (3, 2, 1), PARITY_X, PARITY_Y, **args)


@pytest.mark.parametrize("grad", ["autodiff", "manual"])
def test_every_member_equals_train_alone(grad):
    r = run_many(keep_params=True, grad=grad, dtype=np.float64, record_every=4)
    assert r.n_members == 2 * 2 * 6
    assert r.history.shape == (24, 10)
    for i in (0, 5, 7, 13, 23):
        m = r.member(i)
        assert m["grid_index"] == i // 6 and m["seed_index"] == i % 6
        assert (
            m["learning_rate"] == [0.5, 4.0][i // 12]
            and m["init_scale"] == [0.5, 2.0][(i // 6) % 2]
        )
        p0 = start_of(i, m["init_scale"])
        alone = jaxbp.train(p0, PARITY_X, PARITY_Y, m["learning_rate"], steps=40, grad=grad)
        for a, b in zip(
            jax.tree_util.tree_leaves(alone.params), jax.tree_util.tree_leaves(m["params"])
        ):
            assert_close(b, a, kind="reorder")
        assert_close(m["final_loss"], alone.final_loss, kind="reorder")
        assert_close(m["history"], alone.history.loss[::4], kind="reorder")
        assert m["converged_at"] == int(alone.converged_at)


@pytest.mark.standard_promotion
def test_optax_factory_members_equal_train_alone():
    r = run_many(
        optimizer=optax.adam, learning_rate=[0.01, 0.1], keep_params=True, dtype=np.float64
    )
    i = 17
    m = r.member(i)
    p0 = start_of(i, m["init_scale"])
    alone = jaxbp.train(p0, PARITY_X, PARITY_Y, optax.adam(m["learning_rate"]), steps=40)
    assert_close(m["final_loss"], alone.final_loss, kind="trained")


def test_chunk_size_does_not_change_any_bit():
    results = [run_many(chunk_size=c, keep_params=True) for c in (1, 7, 4096)]
    for r in results[1:]:
        for field in ("final_loss", "accuracy", "converged_at", "diverged", "history"):
            np.testing.assert_array_equal(
                getattr(r, field), getattr(results[0], field), err_msg=field
            )
        for a, b in zip(
            jax.tree_util.tree_leaves(r.params), jax.tree_util.tree_leaves(results[0].params)
        ):
            np.testing.assert_array_equal(a, b)


DEVICE_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import jaxbp
    jaxbp.use_cpu_cores(int(sys.argv[2]))
    x = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], np.float64)
    r = jaxbp.train_many(jax.random.key(3), (3, 2, 1), x, x.sum(axis=1) % 2, n_inits=6, steps=40,
                         learning_rate=[0.5, 4.0], init_scale=[0.5, 2.0], progress=False, chunk_size=int(sys.argv[1]),
                         dtype=np.float32)
    loop = jax.jit(lambda v: jax.lax.fori_loop(0, 9, lambda i, a: a * 0.5 + 1.0, v))
    # A loop over 256 KiB: above XLA's own small-loop threshold, below the one use_cpu_cores sets.
    whole = "xla_cpu_small_call" in loop.lower(np.ones(1 << 16, np.float32)).compile().as_text()
    print(json.dumps({"devices": jax.local_device_count(), "loss": r.final_loss.tolist(),
                      "history": r.history.tolist(), "conv": r.converged_at.tolist(),
                      "loops_compiled_whole": whole}))
""")


def run_in_subprocess(n_devices, chunk):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", DEVICE_SCRIPT, str(chunk), str(n_devices)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_devices_do_not_change_any_bit():
    # The process in which use_cpu_cores made 4 devices also compiles each loop as one
    # function (XLA's small-loop threshold): that changes no bit either.
    one = run_many()
    four = run_in_subprocess(4, 8)
    assert four["devices"] == 4
    assert four["loops_compiled_whole"] == (jaxlib_version() >= SMALL_LOOPS_SINCE)
    np.testing.assert_array_equal(np.asarray(four["loss"], np.float32), one.final_loss)
    np.testing.assert_array_equal(np.asarray(four["history"], np.float32), one.history)
    np.testing.assert_array_equal(four["conv"], one.converged_at)


def test_use_cpu_cores_after_the_backend_started():
    have = len(jax.devices("cpu"))
    assert jaxbp.use_cpu_cores(have) == have  # what is there already: fine
    with pytest.raises(
        RuntimeError, match=rf"before JAX's first computation.*started with {have} device"
    ):
        jaxbp.use_cpu_cores(have + 1)
    with pytest.raises(ValueError, match="n must be a positive number of CPU devices; got 0"):
        jaxbp.use_cpu_cores(0)


def test_small_loop_threshold_joins_the_flags_a_user_set():
    option = f"xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}"
    assert small_loop_flags("") == f"--xla_backend_extra_options={option}"
    assert small_loop_flags("--xla_force_host_platform_device_count=4") == (
        f"--xla_force_host_platform_device_count=4 --xla_backend_extra_options={option}"
    )
    assert small_loop_flags("--xla_backend_extra_options=a=1 --xla_dump_to=d") == (
        f"--xla_backend_extra_options=a=1,{option} --xla_dump_to=d"
    )
    mine = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=5"
    assert small_loop_flags(mine) == mine  # the user's own threshold stays


def compiled_chunks():
    return compiled_programs()


def test_member_last_blocks_are_sized_to_stay_in_cache():
    # members x examples x units after the input x bytes ~ 64 KiB, nearest power of two.
    assert block_width((3, 2, 1), 8, member_last=True) == 512  # 96 B a member
    assert block_width((3, 2, 1), 8, member_last=True, itemsize=8) == 256
    assert block_width((2, 2, 1), 4, member_last=True) == 1024  # 48 B: 1365 -> 1024
    assert block_width((4, 8, 1), 8, member_last=True) == 256  # 288 B: 227 -> 256
    # jax.vmap blocks and minibatches keep their own rules.
    assert block_width((3, 2, 1), 8) == 4096
    assert block_width((3, 2, 1), 8, minibatch=True, member_last=True) == 4096


def test_histories_come_back_block_by_block_and_land_member_first():
    # A chunk's history is (n_blocks, n_records, width); member start + b * width + j,
    # record r, is blocks[b, r, j]. Written into rows 4..9 of a Fortran-ordered array.
    blocks = np.arange(3 * 5 * 2, dtype=np.float32).reshape(3, 5, 2) + 1
    dest = np.zeros((10, 5), np.float32, order="F")
    histories_into(dest, 4, blocks)
    expected = np.zeros((10, 5), np.float32)
    for b, r, j in itertools.product(range(3), range(5), range(2)):
        expected[4 + 2 * b + j, r] = blocks[b, r, j]
    np.testing.assert_array_equal(dest, expected)
    c_order = np.zeros((10, 5), np.float32)  # the same values in either layout
    histories_into(c_order, 4, blocks)
    np.testing.assert_array_equal(c_order, expected)
    # Through train_many (each member against train alone: above): one chunk at once
    # against chunks of 7 (the last one partial), each run in pieces of records.
    one = run_many(chunk_size=4096, record_every=4)
    assert one.history.shape == (one.n_members, 10)
    assert len(np.unique(one.history[:, 0])) > one.n_members // 2  # members' own losses
    pieces = run_many(chunk_size=7, record_every=4, progress=True)
    np.testing.assert_array_equal(pieces.history, one.history)


def test_cpu_compiler_options_go_with_the_program_they_were_measured_for():
    # 512-bit vectors with the member axis last only (slower under jax.vmap); no YNN
    # fusions for small networks; accelerators get the plain program, no CPU option.
    seed = cpu_options(88, member_last=True)
    assert _WIDE_VECTORS in seed
    assert (_NO_YNN in seed) == _compiler_knows((_NO_YNN,))  # an XLA with YNN fusions
    assert _WIDE_VECTORS not in cpu_options(88, member_last=False)
    assert _WIDE_VECTORS not in cpu_options(1568, member_last=False)
    assert _NO_YNN not in cpu_options(1 << 20, member_last=False)
    assert choose_program((3, 2, 1), 8, "gpu", member_last=False) is train_chunk
    assert choose_program((3, 2, 1), 8, "cpu", member_last=True) is not train_chunk
    opts = choose_program((3, 2, 1), 8, "cpu", member_last=True)
    assert opts is choose_program((3, 2, 1), 8, "cpu", member_last=True)  # one jit per set


def test_a_new_grid_of_the_same_shape_does_not_recompile():
    start = compiled_chunks()
    run_many(steps=37)  # a step count no other test uses: this call compiles
    before = compiled_chunks()
    assert before == start + 1
    r = run_many(steps=37, learning_rate=[0.1, 9.0], init_scale=[0.3, 1.7])
    assert compiled_chunks() == before
    assert set(r.learning_rate) == {0.1, 9.0} and set(r.init_scale) == {
        np.float64(0.3),
        np.float64(1.7),
    }


def test_divergence_is_flagged_frozen_and_kept_out_of_statistics():
    def go(steps):
        return jaxbp.train_many(
            jax.random.key(0),
            (3, 4, 1),
            PARITY_X,
            PARITY_X.sum(axis=1),
            n_inits=8,
            steps=steps,
            learning_rate=[0.01, 1e30],
            loss="mse_linear",
            progress=False,
            keep_params=True,
        )

    r, early = go(30), go(10)
    div = r.diverged.reshape(2, 8)
    assert not div[0].any() and div[1].all()
    assert early.diverged[8:].all()
    # A diverged member stops updating: after 30 steps it is where it was after 10;
    # the others went on learning.
    for a, b in zip(jax.tree_util.tree_leaves(r.params), jax.tree_util.tree_leaves(early.params)):
        np.testing.assert_array_equal(a[8:], b[8:])
        assert np.all(np.isfinite(a[:8])) and not np.array_equal(a[:8], b[:8])
    rows = r.summary()
    assert (
        rows[1]["diverged"] == 8 and rows[1]["converged"] == 0 and np.isnan(rows[1]["loss_median"])
    )
    assert np.isfinite(rows[0]["loss_median"]) and rows[0]["diverged"] == 0


def test_summary_convergence_rate_and_wilson_interval():
    r = run_many(n_inits=50, steps=300, learning_rate=[2.0], init_scale=[1.0])
    (row,) = r.summary()
    k, n = int(r.converged.sum()), 50
    assert row["converged"] == k and row["convergence_rate"] == k / n
    p, z = k / n, 1.959963984540054
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert row["ci_low"] == pytest.approx(max(0, centre - half), abs=1e-9)
    assert row["ci_high"] == pytest.approx(min(1, centre + half), abs=1e-9)
    # converged_at agrees with the accuracy criterion: converged members classify all 8.
    assert np.all(r.accuracy[r.converged] == 1.0)


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        (dict(n_inits=0), ValueError, r"n_inits must be a positive integer; got 0"),
        (
            dict(learning_rate=[0.1, np.nan]),
            ValueError,
            r"learning_rate must hold positive finite numbers",
        ),
        (
            dict(learning_rate=[0.1, -1.0]),
            ValueError,
            r"learning_rate must hold positive finite numbers",
        ),
        (dict(init_scale=0.0), ValueError, r"init_scale must hold positive finite numbers"),
        (
            dict(memory_budget=100),
            ValueError,
            r"memory_budget of 100 bytes is too small: one member of a 3-2-1",
        ),
        (dict(record_every=7), ValueError, r"record_every must be a positive divisor of steps=40"),
        (
            dict(optimizer=optax.adam(0.1)),
            TypeError,
            r"optimizer must be a factory taking the learning rate",
        ),
        (dict(chunk_size=0), ValueError, r"chunk_size must be a positive integer or 'auto'"),
        (
            dict(batching="last"),
            ValueError,
            r"batching must be one of \('auto', 'vmap', 'member_last'\); got 'last'",
        ),
    ],
)
def test_bad_arguments_fail_before_compiling(kw, exc, match):
    before = compiled_chunks()
    with pytest.raises(exc, match=match):
        run_many(**kw)
    assert compiled_chunks() == before


def test_inconsistent_batch():
    with pytest.raises(ValueError, match=r"y must have shape \(8,\) or \(8, 1\)"):
        jaxbp.train_many(jax.random.key(0), (3, 2, 1), PARITY_X, PARITY_Y[:5], n_inits=2, steps=2)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 4\)"):
        jaxbp.train_many(jax.random.key(0), (4, 2, 1), PARITY_X, PARITY_Y, n_inits=2, steps=2)


def test_held_out_accuracy_per_member():
    task = jaxbp.load_task("moons", n=64, noise=0.2, seed=1)
    rng = np.random.default_rng(5)
    ex = rng.normal(size=(40, 2))
    ey = (ex[:, 0] * ex[:, 1] > 0).astype(np.float64)
    r = jaxbp.train_many(
        jax.random.key(2),
        (2, 5, 1),
        task.x,
        task.y,
        n_inits=12,
        steps=60,
        learning_rate=[0.3, 3.0],
        activation="tanh",
        keep_params=True,
        x_test=ex,
        y_test=ey,
        dtype=np.float64,
        progress=False,
    )
    # An independent reference: the forward pass in NumPy on the kept parameters.
    for i in range(r.n_members):
        p = r.member(i)["params"]
        o = np.tanh(ex @ p[0]["W"] + p[0]["b"]) @ p[1]["W"] + p[1]["b"]
        o = o[:, 0]
        assert round(r.test_accuracy[i] * 40) == np.sum((o > 0) == (ey > 0.5))
        bce = np.mean(np.logaddexp(0, o) - ey * o)
        assert_close(r.test_loss[i], bce, kind="reorder")
    assert len(set(r.test_accuracy.tolist())) > 1
    rows = r.summary()
    for row in rows:
        sel = (r.grid_index == row["grid_index"]) & ~r.diverged
        assert row["median_test_accuracy"] == np.median(r.test_accuracy[sel])
    # Without a held-out set there is nothing to report.
    assert run_many().test_accuracy is None


def test_held_out_set_errors():
    with pytest.raises(ValueError, match="x_test and y_test go together"):
        run_many(x_test=PARITY_X)
    with pytest.raises(ValueError, match=r"x_test, y_test: .*x must have shape \(batch, 3\)"):
        run_many(x_test=PARITY_X[:, :2], y_test=PARITY_Y)
    with pytest.raises(TypeError, match="the held-out set is given twice"):
        run_many(x_test=PARITY_X, y_test=PARITY_Y, eval_x=PARITY_X, eval_y=PARITY_Y)


def test_older_held_out_names_are_the_same_run():
    new = run_many(x_test=PARITY_X[:5], y_test=PARITY_Y[:5])
    old = run_many(eval_x=PARITY_X[:5], eval_y=PARITY_Y[:5])
    np.testing.assert_array_equal(old.test_loss, new.test_loss)
    np.testing.assert_array_equal(old.eval_loss_history, new.test_loss_history)
    np.testing.assert_array_equal(old.eval_accuracy_history, new.test_accuracy_history)
    assert new.test_loss_history.shape == new.history.shape


def test_process_id_outside_the_process_count():
    with pytest.raises(
        ValueError, match=r"process_id must be in \[0, 2\) for num_processes=2; got 5"
    ):
        jaxbp.initialize_distributed("127.0.0.1:12345", num_processes=2, process_id=5)


HOST_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import jaxbp
    pid, n, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    jaxbp.initialize_distributed(f"127.0.0.1:{port}", num_processes=n, process_id=pid)
    x = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], np.float64)
    r = jaxbp.train_many(jax.random.key(3), (3, 2, 1), x, x.sum(axis=1) % 2, n_inits=6, steps=40,
                         learning_rate=[0.5, 4.0], init_scale=[0.5, 2.0], progress=False,
                         dtype=np.float32)
    print(json.dumps({"procs": jax.process_count(), "loss": r.final_loss.tolist(),
                      "history": r.history.tolist()}))
""")


def test_two_processes_gather_the_single_process_result():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    port = free_port()
    outs = run_processes(
        [[sys.executable, "-c", HOST_SCRIPT, str(i), "2", str(port)] for i in range(2)],
        [env, env],
        timeout=240,
    )
    results = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    one = run_many()
    for r in results:
        assert r["procs"] == 2
        np.testing.assert_array_equal(np.asarray(r["loss"], np.float32), one.final_loss)
        np.testing.assert_array_equal(np.asarray(r["history"], np.float32), one.history)


def test_the_progress_bar_moves_within_a_chunk_and_changes_no_bit(capsys):
    """One chunk, one bar: it is updated after every piece of the run, with the same bits."""

    class Bar:
        def __init__(self):
            self.updates = []

        def update(self, n):
            self.updates.append(n)

    quiet = run_many(steps=40, record_every=2, keep_params=True)
    bar = Bar()
    shown = run_many(steps=40, record_every=2, keep_params=True, progress=bar)
    assert len(bar.updates) >= 10, "the bar moves during the single chunk"
    assert sum(bar.updates) == quiet.n_members * 40, "network-steps done, padding not counted"
    for field in ("final_loss", "history", "converged_at", "diverged", "accuracy"):
        np.testing.assert_array_equal(getattr(shown, field), getattr(quiet, field))
    assert_tree_equal(shown.params, quiet.params)
    # A bar of its own, on stderr (the pieces of the run above: no new programs).
    run_many(steps=40, record_every=2, keep_params=True, progress=True)
    err = capsys.readouterr().err
    assert "train_many: 24 members" in err and "net-step" in err


def test_a_range_of_members_equals_the_same_members_of_a_full_run():
    full = run_many(n_inits=40, keep_params=True)
    part = run_many(n_inits=40, keep_params=True, members=(64, 150))
    np.testing.assert_array_equal(part.final_loss, full.final_loss[64:150])
    np.testing.assert_array_equal(part.history, full.history[64:150])
    np.testing.assert_array_equal(part.grid_index, full.grid_index[64:150])
    with pytest.raises(
        ValueError, match=r"members must be a \(start, stop\) pair with 0 <= start < stop <= 160"
    ):
        run_many(n_inits=40, members=(10, 200))


def test_mse_linear_members_are_judged_by_their_output_at_one_half():
    """An XOR fit whose outputs are 0.006, 0.995, 0.994, 0.006 is right on every example."""
    import jaxbp.nn._losses as losses

    o = jnp.asarray([[0.006], [0.995], [0.994], [0.006]])
    y = jnp.asarray([[0.0], [1.0], [1.0], [0.0]])
    assert bool(jnp.all(losses.LOSSES["mse_linear"].predicts_one(o) == (y > 0.5)))
    assert not bool(jnp.all(losses.LOSSES["bce"].predicts_one(o) == (y > 0.5)))
    # Trained members: accuracy and convergence follow the same decision, checked
    # against a NumPy forward pass of each member's kept parameters.
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    yy = np.array([0.0, 1.0, 1.0, 0.0])
    r = jaxbp.train_many(
        jax.random.key(0),
        (2, 4, 1),
        x,
        yy,
        n_inits=16,
        steps=400,
        learning_rate=0.05,
        activation="tanh",
        loss="mse_linear",
        keep_params=True,
        dtype=np.float64,
        progress=False,
    )
    for i in range(r.n_members):
        p = r.member(i)["params"]
        out = np.tanh(x @ p[0]["W"] + p[0]["b"]) @ p[1]["W"] + p[1]["b"]
        right = (out[:, 0] > 0.5) == (yy > 0.5)
        assert r.accuracy[i] == right.mean()
        assert r.converged[i] == right.all()
    assert 0 < r.converged.sum() < r.n_members, "some members fit XOR, some do not (yet)"


def test_one_cpu_device_on_several_cores_is_said_once(monkeypatch):
    from jaxbp.many import _devices

    monkeypatch.setattr(_devices, "_warned_single_device", False)
    monkeypatch.setattr(_devices, "usable_cores", lambda: 4)
    # One device, whatever an earlier in-process sweep made of this worker's backend.
    one = jax.local_devices()[:1]
    monkeypatch.setattr(jax, "local_devices", lambda *a, **k: one)
    with pytest.warns(jaxbp.SingleDeviceWarning, match=r"jaxbp.use_cpu_cores\(\)"):
        run_many(steps=4)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_many(steps=4)  # said once per process, not again
