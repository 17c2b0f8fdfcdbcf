"""The hidden width as a grid axis: one train_many over several widths, each member as
train_many of its width alone, padded units never leaking into a result."""

import jax
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp.many._widths import padded_init, sizes_at
from tests.helpers import assert_close

PARITY_X = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], np.float32)
PARITY_Y = PARITY_X.sum(axis=1) % 2
WIDTHS = (2, 3, 8)
GRID = dict(learning_rate=[0.5, 2.0], init_scale=[1.0, 2.0], n_inits=8, progress=False)


def _block(result, i):
    """The members of the i-th width, as a grid of their own."""
    per = result.n_members // len(result.widths)
    return slice(i * per, (i + 1) * per)


@pytest.mark.parametrize("scheme", ["normal", "glorot_uniform"])
def test_each_width_starts_from_init_mlp_at_that_width(scheme):
    # The start of local member k of width w is init_mlp(fold_in(key, k), sizes at w),
    # bit for bit, with the widest network's extra entries zero.
    key, sizes = jax.random.key(3), (4, 5, 5, 2)
    widest = sizes_at(sizes, max(WIDTHS))
    init = jax.jit(
        lambda k, i: padded_init(
            k, 1.5, i, sizes=widest, widths=WIDTHS, scheme=scheme, dtype=np.float32
        )
    )
    for w in WIDTHS:
        k = jax.random.fold_in(key, 7)
        held = init(k, np.int32(w))
        alone = jaxbp.init_mlp(k, sizes_at(sizes, w), scale=1.5, scheme=scheme, dtype=np.float32)
        for layer, own in zip(held, alone):
            a, b = own["W"].shape
            np.testing.assert_array_equal(layer["W"][:a, :b], own["W"])
            np.testing.assert_array_equal(layer["b"][:b], own["b"])
            assert not np.any(layer["W"][a:]) and not np.any(layer["W"][:, b:])
            assert not np.any(layer["b"][b:])


def test_member_last_trains_every_width_as_it_trains_alone():
    # A padded unit adds an exact 0 to every sum it enters, so what differs from the
    # network alone is the association of the sums (and the block's vector width).
    key = jax.random.key(0)
    kw = dict(GRID, steps=200, keep_params=True, batching="member_last")
    many = jaxbp.train_many(key, (3, 2, 1), PARITY_X, PARITY_Y, widths=WIDTHS, **kw)
    assert many.widths == WIDTHS
    for i, w in enumerate(WIDTHS):
        alone = jaxbp.train_many(key, (3, w, 1), PARITY_X, PARITY_Y, **kw)
        part = _block(many, i)
        np.testing.assert_array_equal(many.width[part], w)
        np.testing.assert_array_equal(many.converged_at[part], alone.converged_at)
        assert_close(many.history[part], alone.history)
        assert_close(many.final_loss[part], alone.final_loss)
        for k in (0, 13, alone.n_members - 1):
            mine, own = many.member(part.start + k)["params"], alone.member(k)["params"]
            jax.tree_util.tree_map(assert_close, mine, own)
    assert 0 < many.converged.mean() < 1  # the grid has members of both kinds


@pytest.mark.standard_promotion  # optax.adam's own arithmetic
@pytest.mark.parametrize(
    "optimizer,grad,activation",
    [(None, "manual", "tanh"), (optax.adam, "autodiff", "sigmoid")],
    ids=["sgd-manual", "adam"],
)
def test_vmap_trains_every_width_as_it_trains_alone(optimizer, grad, activation):
    # jax.vmap's products over a padded width are other XLA kernels: the same sums, in
    # another order, whose rounding each step compounds ("trained").
    x, y = PARITY_X.astype(np.float64), PARITY_Y.astype(np.float64)
    key = jax.random.key(1)
    kw = dict(
        GRID, learning_rate=[0.05, 0.2], steps=40, batching="vmap", optimizer=optimizer,
        grad=grad, activation=activation, dtype="float64", keep_params=True,
    )  # fmt: skip
    many = jaxbp.train_many(key, (3, 2, 2, 1), x, y, widths=(2, 5), **kw)
    for i, w in enumerate((2, 5)):
        alone = jaxbp.train_many(key, (3, w, w, 1), x, y, **kw)
        part = _block(many, i)
        assert_close(many.history[part], alone.history, kind="trained")
        assert_close(many.final_loss[part], alone.final_loss, kind="trained")
        np.testing.assert_array_equal(many.converged_at[part], alone.converged_at)
        got = many.member(part.start + 5)["params"]
        assert [p["W"].shape for p in got] == [(3, w), (w, w), (w, 1)]
        close = lambda a, b: assert_close(a, b, kind="trained")
        jax.tree_util.tree_map(close, got, alone.member(5)["params"])


def test_vmap_steps_differ_from_alone_by_reordered_sums_only():
    # Step by step the difference is the rounding of the same sums ordered otherwise:
    # "reorder", for the start and for the parameters after a few steps.
    x, y = PARITY_X.astype(np.float64), PARITY_Y.astype(np.float64)
    key = jax.random.key(6)
    kw = dict(GRID, steps=4, record_every=1, batching="vmap", dtype="float64", keep_params=True)
    many = jaxbp.train_many(key, (3, 2, 1), x, y, widths=(3, 7), **kw)
    alone = jaxbp.train_many(key, (3, 3, 1), x, y, **kw)
    part = _block(many, 0)
    assert_close(many.history[part], alone.history)
    for k in range(0, alone.n_members, 5):
        jax.tree_util.tree_map(
            assert_close, many.member(part.start + k)["params"], alone.member(k)["params"]
        )


@pytest.mark.standard_promotion
@pytest.mark.parametrize("clipped_adam", [True, False], ids=["clipped-adam", "sgd"])
def test_padded_entries_stay_zero_through_any_optimizer_and_divergence(clipped_adam):
    # A clipped adam reads the global norm of the gradient; plain SGD at 1e4 diverges.
    # Outside its own units a member's parameters stay exactly zero, and its own are
    # those of the network alone.
    key = jax.random.key(2)
    opt = (
        (lambda lr: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr)))
        if clipped_adam
        else None
    )
    kw = dict(n_inits=16, steps=60, learning_rate=[0.1, 1e4], init_scale=[3.0], optimizer=opt,
              keep_params=True, progress=False, activation="relu", loss="mse_linear")  # fmt: skip
    many = jaxbp.train_many(key, (3, 4, 1), PARITY_X, PARITY_Y, widths=(1, 4), **kw)
    alone = jaxbp.train_many(key, (3, 1, 1), PARITY_X, PARITY_Y, **kw)
    first = _block(many, 0)
    w1, w2 = many.params[0]["W"][first], many.params[1]["W"][first]
    assert not np.any(w1[:, :, 1:]) and not np.any(many.params[0]["b"][first][:, 1:])
    assert not np.any(w2[:, 1:, :])
    np.testing.assert_array_equal(many.diverged[first], alone.diverged)
    assert alone.diverged.any() != clipped_adam
    calm = alone.learning_rate == 0.1  # the others' trajectories amplify every rounding
    assert not alone.diverged[calm].any()
    assert_close(many.final_loss[first][calm], alone.final_loss[calm])


class _Bar:
    def __init__(self):
        self.n = 0

    def update(self, n):
        self.n += n


def test_pieces_and_chunks_change_no_bit():
    # A progress bar cuts each chunk's run into pieces (the mask rides in the
    # optimizer's state between them); a small chunk size splits widths across calls.
    key = jax.random.key(4)
    kw = dict(GRID, steps=50, record_every=5)
    whole = jaxbp.train_many(key, (3, 2, 1), PARITY_X, PARITY_Y, widths=WIDTHS, **kw)
    bar = _Bar()
    pieces = jaxbp.train_many(
        key, (3, 2, 1), PARITY_X, PARITY_Y, widths=WIDTHS, **{**kw, "progress": bar},
        chunk_size=24, members=(20, 90),
    )  # fmt: skip
    assert bar.n == 70 * 50
    np.testing.assert_array_equal(pieces.history, whole.history[20:90])
    np.testing.assert_array_equal(pieces.width, whole.width[20:90])
    np.testing.assert_array_equal(pieces.converged_at, whole.converged_at[20:90])


def test_summary_has_a_row_per_width_and_grid_point():
    key = jax.random.key(5)
    r = jaxbp.train_many(key, (3, 2, 1), PARITY_X, PARITY_Y, widths=(2, 6), steps=20, **GRID)
    rows = r.summary()
    assert [(row["width"], row["learning_rate"], row["init_scale"]) for row in rows] == [
        (w, lr, s) for w in (2, 6) for lr in (0.5, 2.0) for s in (1.0, 2.0)
    ]
    for row in rows:
        sel = r.grid_index == row["grid_index"]
        assert np.all(r.width[sel] == row["width"]) and row["members"] == 8
        assert row["converged"] == int(r.converged[sel].sum())
    assert r.member(9)["width"] == 2 and r.member(40)["width"] == 6


@pytest.mark.parametrize(
    "widths,message",
    [
        ([], "widths must be a non-empty list of positive integers; got []"),
        ([2, 0], "widths must be a non-empty list of positive integers; got [2, 0]"),
        ([2, 2.5], "widths must be a non-empty list of positive integers; got [2, 2.5]"),
        ("48", "widths must be a non-empty list of positive integers; got '48'"),
        ([4, 2, 4], "widths must not repeat a width; got [4, 2, 4]"),
    ],
)
def test_bad_widths_are_refused_in_one_line(widths, message):
    with pytest.raises(ValueError) as e:
        jaxbp.train_many(
            jax.random.key(0), (3, 2, 1), PARITY_X, PARITY_Y, widths=widths, n_inits=1, steps=1
        )
    assert str(e.value) == message


def test_widths_need_a_hidden_layer_of_the_built_in_mlp():
    with pytest.raises(ValueError, match=r"sizes=\[3, 1\] has no hidden layer"):
        jaxbp.train_many(
            jax.random.key(0), (3, 1), PARITY_X, PARITY_Y, widths=[2], n_inits=1, steps=1
        )
    model = jaxbp.mlp_model((3, 2, 1))
    with pytest.raises(ValueError, match=r"model '.*' has none to set"):
        jaxbp.train_many(
            jax.random.key(0), model, PARITY_X, PARITY_Y, widths=[2], n_inits=1, steps=1
        )
