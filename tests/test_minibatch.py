"""Minibatch SGD: the data order, train against a Python loop of make_step, train_many's
members against train alone, invariance to chunks and devices, held-out curves, memory."""

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
from tests.helpers import assert_close, assert_tree_close

SIZES = (5, 4, 1)


def data(n=23, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SIZES[0]))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.float64)
    return x, y


def order_of(key, n, batch_size, steps):
    """The example indices each step takes, read through the library's own minibatch."""
    carry = jaxbp.training._train.train_start(
        jaxbp.init_mlp(jax.random.key(0), SIZES), optax.sgd(0.1), data_key=key, n_examples=n
    )
    x = jnp.arange(n, dtype=jnp.float64)[:, None]
    out = []
    for t in range(steps):
        carry, xb, _ = jaxbp.minibatch(carry, jnp.int32(t), x, x, batch_size)
        out.append(np.asarray(xb[:, 0]).astype(int))
    return out


def test_each_epoch_visits_every_example_once_in_a_fresh_order():
    n, b = 23, 5  # 4 batches an epoch, 3 examples left over (dropped)
    batches = order_of(jax.random.key(7), n, b, 12)
    epochs = [np.concatenate(batches[i : i + 4]) for i in range(0, 12, 4)]
    for e in epochs:
        assert len(set(e)) == 20 and set(e) <= set(range(n))
    assert not all(np.array_equal(epochs[0], e) for e in epochs[1:])
    # Over the epochs, no example is always the one left out.
    assert set(np.concatenate(epochs)) == set(range(n))
    # The order is the permutation of fold_in(data_key, epoch), batch_size at a time.
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(jax.random.key(7), 1), n))
    np.testing.assert_array_equal(epochs[1], perm[:20])


@pytest.mark.parametrize("n", [256, 1797, 65537])  # 1 round, 2 rounds, 3 radix passes
def test_large_data_orders_are_jax_random_permutation_bit_for_bit(n):
    from jaxbp.training._batches import permutation, stable_argsort_u32

    members = 64 if n < 10_000 else 4
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(7), i))(jnp.arange(members))
    # Ties keep their order, as in JAX's stable key-value sort: 40 values for n keys,
    # spread over all 32 bits (so every digit of a key matters).
    ties = jax.random.randint(jax.random.key(1), (members, n), 0, 40).astype(jnp.uint32)
    ties = ties * jnp.uint32(0x6B43A9B5)
    position = jnp.arange(n, dtype=jnp.uint32)

    @jax.jit
    @jax.vmap
    def both(k, t):
        return (
            (permutation(k, n), jax.random.permutation(k, n)),
            (stable_argsort_u32(t), jax.lax.sort_key_val(t, position)[1]),
        )

    (ours, jax_order), (radix, stable) = both(keys, ties)
    np.testing.assert_array_equal(ours, jax_order)
    assert ours.dtype == jnp.arange(n).dtype
    np.testing.assert_array_equal(radix, stable)


def test_data_order_key_is_a_stream_apart_from_the_initialization():
    key = jax.random.key(3)
    k = jaxbp.data_order_key(key, 5)
    init = jax.random.fold_in(key, 5)
    assert not np.array_equal(jax.random.key_data(k), jax.random.key_data(init))
    expected = jax.random.fold_in(init, jaxbp.training._train.DATA_ORDER_STREAM)
    np.testing.assert_array_equal(jax.random.key_data(k), jax.random.key_data(expected))


def test_train_equals_a_python_loop_of_make_step_on_the_same_batches():
    x, y = data()
    params = jaxbp.init_mlp(jax.random.key(1), SIZES, scheme="normal", scale=0.8)
    key = jax.random.key(9)
    result = jaxbp.train(params, x, y, 0.3, steps=10, batch_size=5, data_key=key)
    step = jaxbp.make_step(0.3)
    p, state = params, step.init(params)
    for t, idx in enumerate(order_of(key, len(x), 5, 10)):
        p, state, info = step(p, state, x[idx], y[idx])
        assert_close(result.history.loss[t], info.loss, kind="reorder")
    assert_tree_close(result.params, p, kind="reorder")
    assert_close(result.final_loss, jaxbp.bce_loss(p, x, y), kind="reorder")


def many(**kw):
    x, y = data()
    args = dict(
        n_inits=6,
        steps=24,
        learning_rate=[0.3, 1.0],
        init_scale=[0.5, 1.5],
        batch_size=5,
        progress=False,
        dtype=np.float32,
        record_every=4,
    )
    args.update(kw)
    return jaxbp.train_many(jax.random.key(3), SIZES, x, y, **args)


def test_members_equal_train_alone_with_the_same_start_and_data_order():
    x, y = data()
    ex, ey = data(11, seed=1)
    r = many(dtype=np.float64, keep_params=True, x_test=ex, y_test=ey)
    assert r.batch_size == 5 and r.test_loss_history.shape == (24, 6)
    for i in (0, 7, 23):
        m = r.member(i)
        p0 = jaxbp.init_mlp(
            jax.random.fold_in(jax.random.key(3), i), SIZES, scheme="normal",
            scale=m["init_scale"], dtype=np.float64,
        )  # fmt: skip
        alone = jaxbp.train(
            p0, x, y, m["learning_rate"], steps=24, batch_size=5, record_every=4,
            data_key=jaxbp.data_order_key(jax.random.key(3), i), x_test=ex, y_test=ey,
        )  # fmt: skip
        assert_tree_close(m["params"], alone.params, kind="reorder")
        assert_close(m["history"], alone.history.loss, kind="reorder")
        assert_close(m["test_loss_history"], alone.history.test_loss, kind="reorder")
        assert_close(m["test_accuracy_history"], alone.history.test_accuracy, kind="reorder")
        assert_close(m["final_loss"], alone.final_loss, kind="reorder")
        assert_close(m["test_loss"], jaxbp.bce_loss(alone.params, ex, ey), kind="reorder")


def test_held_out_history_is_the_held_out_loss_at_each_record_point():
    x, y = data()
    ex, ey = data(11, seed=1)
    params = jaxbp.init_mlp(jax.random.key(1), SIZES, scheme="normal", scale=0.8)
    r = jaxbp.train(params, x, y, 0.3, steps=12, record_every=3, x_test=ex, y_test=ey)
    step = jaxbp.make_step(0.3)
    p, state = params, step.init(params)
    for t in range(12):
        if t % 3 == 0:
            assert_close(r.history.test_loss[t // 3], jaxbp.bce_loss(p, ex, ey), kind="reorder")
            acc = np.mean(
                (np.asarray(jaxbp.forward(p, ex)).reshape(-1) > 0) == (ey > 0.5)
            )  # logits
            assert_close(r.history.test_accuracy[t // 3], acc)
        p, state, _ = step(p, state, x, y)
    older = jaxbp.train(params, x, y, 0.3, steps=12, record_every=3, eval_x=ex, eval_y=ey)
    np.testing.assert_array_equal(older.history.eval_loss, r.history.test_loss)
    np.testing.assert_array_equal(older.history.eval_accuracy, r.history.test_accuracy)


def test_chunks_and_pieces_do_not_change_any_bit():
    class Bar:
        def update(self, n):
            pass

    runs = [many(chunk_size=c, keep_params=True) for c in (1, 5, 4096)]
    runs.append(many(keep_params=True, progress=Bar()))  # the run in pieces
    for r in runs[1:]:
        for f in ("final_loss", "history", "accuracy", "converged_at"):
            np.testing.assert_array_equal(getattr(r, f), getattr(runs[0], f), err_msg=f)
        for a, b in zip(
            jax.tree_util.tree_leaves(r.params), jax.tree_util.tree_leaves(runs[0].params)
        ):
            np.testing.assert_array_equal(a, b)


def test_full_batch_is_the_default_and_batch_size_none_is_it():
    a = many(batch_size=None)
    b = jaxbp.train_many(
        jax.random.key(3), SIZES, *data(), n_inits=6, steps=24, learning_rate=[0.3, 1.0],
        init_scale=[0.5, 1.5], progress=False, dtype=np.float32, record_every=4,
    )  # fmt: skip
    np.testing.assert_array_equal(a.final_loss, b.final_loss)
    assert a.batch_size is None
    c = many()
    assert not np.array_equal(c.final_loss, a.final_loss)


DEVICE_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    import numpy as np
    import jaxbp
    jaxbp.use_cpu_cores(int(sys.argv[1]))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(23, 5)); y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.float64)
    r = jaxbp.train_many(jax.random.key(3), (5, 4, 1), x, y, n_inits=6, steps=24,
                         learning_rate=[0.3, 1.0], init_scale=[0.5, 1.5], batch_size=5,
                         progress=False, dtype=np.float32, record_every=4, chunk_size=8)
    print(json.dumps({"devices": jax.local_device_count(), "loss": r.final_loss.tolist(),
                      "history": r.history.tolist()}))
""")


def test_devices_do_not_change_any_bit():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", DEVICE_SCRIPT, "3"], env=env, capture_output=True, text=True,
        timeout=300, check=True,
    )  # fmt: skip
    got = json.loads(out.stdout.strip().splitlines()[-1])
    one = many()
    assert got["devices"] == 3
    np.testing.assert_array_equal(np.asarray(got["loss"], np.float32), one.final_loss)
    np.testing.assert_array_equal(np.asarray(got["history"], np.float32), one.history)


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        (dict(batch_size=0), ValueError, "batch_size must be a positive integer"),
        (dict(batch_size=2.5), ValueError, "batch_size must be a positive integer"),
        (dict(batch_size=24), ValueError, r"batch_size=24 is larger than the training set \(23"),
    ],
)
def test_bad_batch_sizes(kw, exc, match):
    with pytest.raises(exc, match=match):
        many(**kw)
    params = jaxbp.init_mlp(jax.random.key(1), SIZES)
    with pytest.raises(exc, match=match):
        jaxbp.train(params, *data(), 0.1, steps=2, data_key=jax.random.key(0), **kw)


def test_train_with_batch_size_needs_a_data_key():
    params = jaxbp.init_mlp(jax.random.key(1), SIZES)
    with pytest.raises(ValueError, match="batch_size needs data_key="):
        jaxbp.train(params, *data(), 0.1, steps=2, batch_size=4)
    with pytest.raises(TypeError, match="data_key must be a JAX PRNG key"):
        jaxbp.train(params, *data(), 0.1, steps=2, batch_size=4, data_key=3)


MEMORY_SCRIPT = textwrap.dedent("""
    import jax
    import numpy as np
    import jaxbp
    x = np.random.default_rng(0).normal(size=(1797, 64)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    r = jaxbp.train_many(jax.random.key(0), (64, 8, 1), x, y, n_inits=10_000, steps=8,
                         batch_size=32, learning_rate=0.1, progress=False, record_every=8,
                         memory_budget=1 << 30)
    assert r.n_members == 10_000
    # The peak resident memory of this process image: VmHWM, not getrusage's ru_maxrss,
    # which keeps the high-water mark of the (big) test process this one was forked from.
    with open("/proc/self/status") as f:
        print(next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:")))
""")


def test_ten_thousand_members_share_one_copy_of_the_data():
    """10,000 members on 1,797 x 64 examples under a 1 GiB chunk budget: the process peaks
    well under 2 GiB, where a copy of the data per member would be 4.6 GB."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT], env=env, capture_output=True, text=True,
        timeout=600, check=True,
    )  # fmt: skip
    peak = int(out.stdout.strip().splitlines()[-1])
    print(f"peak memory {peak / 2**30:.2f} GiB")

    assert peak < 2 * 2**30, f"peak memory {peak / 2**30:.2f} GiB"


def test_crossed_starts_share_initializations_by_row_and_data_orders_by_column():
    x, y = data()
    r = many(n_inits=6, crossed=(2, 3), dtype=np.float64, keep_params=True)
    key = jax.random.key(3)
    for m in (0, 4, 11, 20):
        g, s = divmod(m, 6)
        i, j = divmod(s, 3)
        info = r.member(m)
        p0 = jaxbp.init_mlp(
            jax.random.fold_in(key, g * 6 + i * 3), SIZES, scheme="normal",
            scale=info["init_scale"], dtype=np.float64,
        )  # fmt: skip
        alone = jaxbp.train(
            p0, x, y, info["learning_rate"], steps=24, batch_size=5,
            data_key=jaxbp.data_order_key(key, g * 6 + j),
        )  # fmt: skip
        assert_tree_close(info["params"], alone.params, kind="reorder")
    plain = many(n_inits=6, dtype=np.float64)
    np.testing.assert_array_equal(r.final_loss[::6], plain.final_loss[::6])  # start 0 is itself
    with pytest.raises(ValueError, match=r"crossed must be a pair \(rows, columns\)"):
        many(n_inits=6, crossed=(4, 2))
    with pytest.raises(ValueError, match="it needs batch_size"):
        many(n_inits=6, crossed=(2, 3), batch_size=None)
