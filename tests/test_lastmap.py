"""vmap_last against jax.vmap: every rule, the fallback, scans, and train_many both ways."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp.many._lastmap import vmap_last
from jaxbp.many._program import choose_member_last
from tests.helpers import assert_close

N = 5
RNG = np.random.default_rng(0)


def member_arrays(*shapes):
    """Random float64 arrays with a trailing member axis of length N."""
    return [RNG.normal(size=(*s, N)) for s in shapes]


def both(fun, args, batched):
    """``vmap_last(fun)`` and ``jax.vmap(fun)`` (axis last in and out) on the same arguments."""
    axes = tuple(-1 if b else None for b in batched)
    ours = vmap_last(fun, batched, N)(*args)
    ref = jax.vmap(fun, in_axes=axes, out_axes=-1, axis_size=N)(*args)
    return ours, ref


def assert_same(ours, ref, exact=False):
    a_leaves, a_def = jax.tree_util.tree_flatten(ours)
    r_leaves, r_def = jax.tree_util.tree_flatten(ref)
    assert a_def == r_def
    for a, r in zip(a_leaves, r_leaves):
        assert a.shape == r.shape and a.dtype == r.dtype
        if exact:
            np.testing.assert_array_equal(a, r)
        else:
            assert_close(a, r, kind="reorder")


CASES = {
    # elementwise, with a shared operand, a scalar and size-1 axes stretched
    "elementwise": (lambda a, s: jnp.tanh(a * s + 1.5) - jnp.exp(-a) / (1 + a**2), [(3, 4), ()]),
    "where": (lambda a, b: jnp.where(a > b, a, jnp.float64(0)), [(3,), (3,)]),
    "broadcast": (lambda a, b: a[:, None] + b[None, :], [(3,), (4,)]),
    "reductions": (
        lambda a: (a.sum(0), a.max(1), a.min(), jnp.argmax(a, axis=1), jnp.all(a > 0, axis=0)),
        [(3, 4)],
    ),
    "transpose_reshape": (lambda a: (a.T.reshape(2, 6), a.reshape(-1)[::2]), [(3, 4)]),
    "squeeze_slice": (lambda a: (a[0, 1:3], a[:, :1].squeeze(1), a[::2, ::3]), [(3, 4)]),
    "concatenate_pad": (
        lambda a, b: (jnp.concatenate([a, b, a]), jnp.pad(a, (1, 2)), jnp.stack([a, b], 1)),
        [(3,), (3,)],
    ),
    "matmul": (lambda x, w, b: jnp.tanh(x @ w + b[None]) @ w.T, [(8, 3), (3, 2), (2,)]),
    "batched_dot": (lambda a, b: jnp.einsum("bij,bjk->bik", a, b), [(2, 3, 4), (2, 4, 5)]),
    "grad": (
        lambda w, x: jax.grad(lambda w: jnp.sum(jax.nn.softplus(x @ w) ** 2))(w),
        [(3, 2), (4, 3)],
    ),
    "fallback": (
        lambda a: (jnp.sort(a), jnp.cumsum(a), jax.lax.dynamic_slice(a, (1,), (2,))),
        [(4,)],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_rule_matches_vmap(name):
    fun, shapes = CASES[name]
    args = member_arrays(*shapes)
    assert_same(*both(fun, args, [True] * len(args)))


@pytest.mark.parametrize("name", ["elementwise", "broadcast", "matmul", "concatenate_pad"])
def test_shared_arguments_stay_unbatched(name):
    fun, shapes = CASES[name]
    args = member_arrays(*shapes)
    args[0] = args[0][..., 0]  # the first argument is the same for every member
    batched = [False] + [True] * (len(args) - 1)
    assert_same(*both(fun, args, batched))


def test_nested_jit_and_custom_derivatives():
    @jax.custom_jvp
    def f(x):
        return jnp.log1p(jnp.exp(x))

    f.defjvp(lambda p, t: (f(p[0]), t[0] * jax.nn.sigmoid(p[0])))

    @jax.custom_vjp
    def g(x):
        return jnp.sin(x)

    g.defvjp(lambda x: (jnp.sin(x), x), lambda x, ct: (ct * jnp.cos(x),))

    fun = jax.jit(lambda a: jax.grad(lambda a: jnp.sum(f(a) * g(a)))(a) + jax.nn.relu(a))
    assert_same(*both(fun, member_arrays((6,)), [True]))


def test_scan_carry_becomes_batched_through_the_body():
    # The counter stays shared; the accumulator starts shared and becomes per member.
    def fun(a):
        def body(c, t):
            i, acc = c
            return (i + 1, acc * 0.5 + a * t), acc.sum()

        (i, acc), ys = jax.lax.scan(body, (0, jnp.zeros(3)), jnp.arange(4.0))
        return i, acc, ys

    ours, ref = both(fun, member_arrays((3,)), [True])
    assert_same(ours, ref)


def test_random_keys_folded_per_member():
    key = jax.random.key(7)

    def fun(m):
        return jax.random.normal(jax.random.fold_in(key, m), (3, 2))

    ids = np.arange(N, dtype=np.int32)
    assert_same(*both(fun, [ids], [True]), exact=True)


def test_argument_count_checked():
    with pytest.raises(TypeError, match="expected 2 arguments, got 1"):
        vmap_last(lambda a, b: a + b, (True, True), N)(np.zeros(N))


PARITY_X = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], np.float64)
PARITY_Y = PARITY_X.sum(axis=1) % 2


@pytest.mark.parametrize(
    "kw",
    [
        dict(grad="autodiff"),
        dict(grad="manual", activation="tanh"),
        dict(activation=("relu",), loss="mse"),
        dict(sizes=(3, 4, 3, 1), activation=("tanh", "sigmoid"), loss="mse_linear"),
        pytest.param(dict(optimizer=optax.adam), marks=pytest.mark.standard_promotion),
    ],
    ids=["autodiff", "manual-tanh", "relu-mse", "deep-mixed", "adam"],
)
def test_train_many_member_last_equals_vmap(kw):
    """The library's real member program, batched both ways: same members, same metrics.

    The two orders of summation round differently; at moderate learning rates the
    difference stays near float64's epsilon over 30 steps (at lr 1 a ReLU member can
    amplify it 3x a step, which is the dynamics, not the batching).
    """
    kw = dict(kw)
    sizes = kw.pop("sizes", (3, 2, 1))
    args = dict(
        n_inits=7,
        steps=30,
        learning_rate=[0.1, 0.5] if "optimizer" not in kw else [0.01, 0.1],
        init_scale=[0.5, 2.0],
        record_every=5,
        keep_params=True,
        dtype=np.float64,
        progress=False,
        x_test=PARITY_X[:5],
        y_test=PARITY_Y[:5],
        **kw,
    )
    assert choose_member_last("auto", sizes, len(PARITY_X), "cpu")  # what "auto" picks here
    last = jaxbp.train_many(jax.random.key(1), sizes, PARITY_X, PARITY_Y, **args)
    first = jaxbp.train_many(jax.random.key(1), sizes, PARITY_X, PARITY_Y, batching="vmap", **args)
    for field in ("final_loss", "history", "test_loss"):
        assert_close(getattr(last, field), getattr(first, field), kind="trained")
    for field in ("accuracy", "test_accuracy", "converged_at", "diverged"):
        np.testing.assert_array_equal(getattr(last, field), getattr(first, field))
    for a, b in zip(
        jax.tree_util.tree_leaves(last.params), jax.tree_util.tree_leaves(first.params)
    ):
        assert_close(a, b, kind="trained")


@pytest.mark.parametrize("grad", ["autodiff", "manual"])
@pytest.mark.parametrize(
    "optimizer", [None, pytest.param(optax.adam, marks=pytest.mark.standard_promotion)]
)
def test_the_seed_member_program_needs_no_fallback_in_its_steps(grad, optimizer):
    """Every primitive of the seed network's training runs on a member-last rule.

    Only the per-member random initialization (once per member, not per step) uses
    jax.vmap's rule. A JAX that renames a primitive of the step fails here instead of
    silently losing the member-last speed-up.
    """
    from jaxbp.many._lastmap import record_fallbacks
    from jaxbp.many._program import Phase, member_program
    from jaxbp.many._spec import MemberSpec
    from jaxbp.training._objective import Objective

    x, y = jnp.asarray(PARITY_X), jnp.asarray(PARITY_Y)[:, None]
    member = member_program(
        jax.random.key(0),
        x,
        y,
        (x, y),
        MemberSpec(
            sizes=(3, 2, 1),
            scheme="normal",
            dtype=x.dtype,
            make_optimizer=optimizer or jaxbp.sgd,
            objective=Objective("sigmoid", "bce", grad),
            steps=10,
            record_every=2,
            keep_params=True,
        ),
        phase=Phase.ALL,
    )
    with record_fallbacks() as seen:
        jax.make_jaxpr(vmap_last(member, (True, True, True), 8))(
            jnp.arange(8), jnp.full(8, 0.1), jnp.ones(8)
        )
    assert set(seen) <= {"random_bits", "random_fold_in"}, dict(seen)


def test_vmap_last_refuses_to_be_differentiated_through():
    f = vmap_last(lambda w: jnp.sum(jax.nn.relu(w)), (True,), N)
    with pytest.raises(TypeError, match="cannot be differentiated through"):
        jax.grad(lambda w: jnp.sum(f(w)))(jnp.zeros((3, N)))


def test_a_primitive_missing_from_jax_is_an_import_error_naming_the_version(monkeypatch):
    from jaxbp.many import _lastmap

    monkeypatch.setitem(_lastmap._PRIMITIVE_NAMES, "scan", ("no_such_scan_p",))
    with pytest.raises(ImportError, match=rf"JAX {jax.__version__} does not have"):
        _lastmap._primitive("scan")
