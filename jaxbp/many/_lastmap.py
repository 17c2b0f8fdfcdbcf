"""``vmap_last``: ``jax.vmap`` with the mapped axis kept last in every intermediate.

``jax.vmap`` moves the mapped axis to the front of nearly every value it batches, so
XLA stores the batch of many tiny networks member by member: a 3-2-1 network's hidden
layer on 8 examples becomes an array ``(members, 8, 2)`` whose minor axis has 2
elements, and every reduction over the examples vectorizes across 2 lanes. With the
member axis last, ``(8, 2, members)``, every operation of the step is a loop over
members with unit stride, which is what the CPU's vector units want (and what XLA
fuses well); docs/benchmarks.md has the measured gain for the seed network.

``vmap_last`` is that batching transformation, written the way ``jax.vmap`` is:
it traces the *single-network* function once to a jaxpr and evaluates the jaxpr on
batched values, one primitive at a time, each value carrying its member axis last
(or no member axis, when it does not depend on the member). Structural primitives
(elementwise arithmetic, broadcasts, reductions, reshapes, slices, small products,
``scan``, nested ``jit`` and custom derivatives) have rules here that keep the axis
last; any other primitive is batched by ``jax.vmap``'s own rule (correct, and only
slower; the first fallback of each primitive is logged once on the ``jaxbp`` logger at
INFO level, every one at DEBUG, and each is counted by ``record_fallbacks``). So there is still one implementation of the
network: the function given.

What it equals: ``vmap_last(f, flags, n)(*args)`` is
``jax.vmap(f, in_axes=[-1 if b else None for b in flags], out_axes=-1, axis_size=n)(*args)``
up to the rounding of sums (ordered differently). It is a batching transformation
only: custom derivative rules inside ``f`` are evaluated by their primal function,
so differentiating *through* ``vmap_last`` would not use them (``jax.grad`` would
give relu'(0) = 0.5 where ``jax.vmap`` gives 0); it raises instead. Take gradients
inside ``f``, as ``train_many``'s member program does.

The JAX primitives it handles are found by name in ``jax.extend.core.primitives``
through one table (``_PRIMITIVE_NAMES``), whose entries list the names a
primitive has had across JAX versions; a required one that is missing is an
ImportError naming the JAX version.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence

import jax
import numpy as np
from jax import lax
from jax.extend import core
from jax.extend.core import primitives as P

__all__ = ["record_fallbacks", "vmap_last"]

_log = logging.getLogger("jaxbp")
_recorders: list[collections.Counter] = []
_said: set[str] = set()  # primitives whose fallback was logged at INFO


@contextlib.contextmanager
def record_fallbacks() -> Iterator[collections.Counter]:
    """Count the primitives batched by ``jax.vmap``'s rule while tracing in this block.

    Examples:
      >>> import jax.numpy as jnp
      >>> with record_fallbacks() as seen:
      ...     _ = vmap_last(lambda x: jnp.sort(x) * 2, (True,), 4)(jnp.ones((3, 4)))
      >>> dict(seen)
      {'sort': 1}
    """
    counter: collections.Counter = collections.Counter()
    _recorders.append(counter)
    try:
        yield counter
    finally:
        _recorders.remove(counter)


def vmap_last(fun: Callable, in_batched: Sequence[bool], size: int) -> Callable:
    """``fun`` mapped over a trailing axis of length ``size``.

    Args:
      fun: a function of positional array pytrees, written for one member.
      in_batched: per positional argument, whether its leaves carry the member axis
        as their *last* axis (``True``) or are shared by every member (``False``).
      size: the number of members.

    Returns:
      A function of the same arguments whose output leaves all carry the member axis
      last: ``vmap_last(f, (True,), n)(x)`` equals
      ``jax.vmap(f, in_axes=-1, out_axes=-1)(x)`` (up to the rounding of sums, which
      may be ordered differently).
    """

    def mapped(*args):
        if len(args) != len(in_batched):
            raise TypeError(f"expected {len(in_batched)} arguments, got {len(args)}")
        flat, tree = jax.tree_util.tree_flatten(args)
        flags = [bool(b) for a, b in zip(args, in_batched) for _ in jax.tree_util.tree_leaves(a)]

        def one(*leaves):
            return fun(*jax.tree_util.tree_unflatten(tree, leaves))

        member_avals = [
            jax.ShapeDtypeStruct(np.shape(x)[:-1] if b else np.shape(x), _dtype(x))
            for x, b in zip(flat, flags)
        ]
        closed, out_shape = jax.make_jaxpr(one, return_shape=True)(*member_avals)

        @jax.custom_jvp
        def evaluate(*flat):
            outs = _eval(closed.jaxpr, closed.consts, list(zip(flat, flags)), size)
            return [_batch(v, b, size) for v, b in outs]

        evaluate.defjvp(_no_derivative)
        outs = evaluate(*flat)
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), outs)

    return mapped


def _no_derivative(primals, tangents):
    raise TypeError(
        "vmap_last is a batching transformation only and cannot be differentiated through "
        "(custom derivative rules inside it are inlined); take the gradient inside the "
        "mapped function, or use jax.vmap"
    )


def _bind(eqn, args):
    """Apply the equation's primitive to ``args`` (its bind parameters as this JAX wants them:
    a dict, or before JAX 0.8 a pair of sub-functions and a dict)."""
    params = eqn.primitive.get_bind_params(eqn.params)
    subfuns = ()
    if isinstance(params, tuple):
        subfuns, params = params
    return eqn.primitive.bind(*subfuns, *args, **params)


def _dtype(x):
    return x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype


# --------------------------------------------------------------------------- evaluation


def _eval(jaxpr, consts, args, size):
    """Evaluate ``jaxpr`` on ``(value, batched)`` pairs; returns such pairs."""
    env = {}

    def read(v):
        if isinstance(v, core.Literal):
            return v.val, False
        return env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = (c, False)
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        if not any(b for _, b in ins):
            out = _bind(eqn, [x for x, _ in ins])
            outs = [(o, False) for o in (out if eqn.primitive.multiple_results else [out])]
        else:
            rule = _RULES.get(eqn.primitive, _fallback)
            outs = rule(eqn, ins, size)
        for v, o in zip(eqn.outvars, outs):
            env[v] = o
    return [read(v) for v in jaxpr.outvars]


def _batch(x, batched, size):
    """``x`` with a trailing member axis (broadcast when it has none)."""
    if batched:
        return x
    x = jax.numpy.asarray(x)
    return lax.broadcast_in_dim(x, (*x.shape, size), tuple(range(x.ndim)))


def _to_shape(x, batched, shape, size):
    """A member value of shape ``shape`` (or a scalar) as a batched array ``(*shape, size)``."""
    x = jax.numpy.asarray(x)
    full = (*shape, size)
    inner = x.shape[:-1] if batched else x.shape
    if batched and inner == tuple(shape):
        return x
    if inner == ():  # a scalar among arrays
        return lax.broadcast_in_dim(x, full, (len(shape),) if batched else ())
    if len(inner) == len(shape) and all(i in (1, s) for i, s in zip(inner, shape)):
        dims = tuple(range(len(inner))) + ((len(shape),) if batched else ())
        return lax.broadcast_in_dim(x, full, dims)  # size-1 axes stretch, as in lax
    raise ValueError(f"vmap_last: cannot broadcast {inner} to {tuple(shape)}")


# --------------------------------------------------------------------------- rules


def _elementwise(eqn, ins, size):
    shape = eqn.outvars[0].aval.shape
    args = [_to_shape(x, b, shape, size) for x, b in ins]
    return [(eqn.primitive.bind(*args, **eqn.params), True)]


def _broadcast_in_dim(eqn, ins, size):
    (x, _), *dyn = ins
    if dyn:
        return _fallback(eqn, ins, size)
    p = dict(eqn.params)
    shape = (*p.pop("shape"), size)
    dims = (*p.pop("broadcast_dimensions"), len(shape) - 1)
    return [(lax.broadcast_in_dim(x, shape, dims), True)]


def _reduce(eqn, ins, size):
    ((x, _),) = ins
    return [(eqn.primitive.bind(x, **eqn.params), True)]


def _transpose(eqn, ins, size):
    ((x, _),) = ins
    perm = tuple(eqn.params["permutation"])
    return [(lax.transpose(x, (*perm, len(perm))), True)]


def _reshape(eqn, ins, size):
    (x, _), *dyn = ins
    if dyn or eqn.params.get("dimensions") is not None:
        return _fallback(eqn, ins, size)
    return [(lax.reshape(x, (*eqn.params["new_sizes"], size)), True)]


def _squeeze(eqn, ins, size):
    ((x, _),) = ins
    return [(lax.squeeze(x, eqn.params["dimensions"]), True)]


def _slice(eqn, ins, size):
    ((x, _),) = ins
    p = eqn.params
    strides = None if p["strides"] is None else (*p["strides"], 1)
    return [(lax.slice(x, (*p["start_indices"], 0), (*p["limit_indices"], size), strides), True)]


def _concatenate(eqn, ins, size):
    args = [_batch(x, b, size) for x, b in ins]
    return [(lax.concatenate(args, eqn.params["dimension"]), True)]


def _pad(eqn, ins, size):
    (x, b), (v, vb) = ins
    if vb:
        return _fallback(eqn, ins, size)
    config = (*eqn.params["padding_config"], (0, 0, 0))
    return [(lax.pad(_batch(x, b, size), v, config), True)]


def _dot_general(eqn, ins, size):
    """A product as broadcast, multiply and sum, everything with the member axis last.

    Only meant for the small products of tiny networks (the reason for this module);
    ``train_many`` uses ``jax.vmap`` for anything bigger.
    """
    (lhs, lb), (rhs, rb) = ins
    ((lc, rc), (lbd, rbd)) = eqn.params["dimension_numbers"]
    out_aval = eqn.outvars[0].aval
    lshape = lhs.shape[:-1] if lb else lhs.shape
    rshape = rhs.shape[:-1] if rb else rhs.shape
    lfree = [d for d in range(len(lshape)) if d not in lc and d not in lbd]
    rfree = [d for d in range(len(rshape)) if d not in rc and d not in rbd]
    nb, nlf, nrf = len(lbd), len(lfree), len(rfree)
    contract = [lshape[d] for d in lc]
    full = (
        *[lshape[d] for d in lbd],
        *[lshape[d] for d in lfree],
        *[rshape[d] for d in rfree],
        *contract,
        size,
    )

    def expand(x, batched, batch_dims, free, con, free_at):
        order = [*batch_dims, *free, *con]
        if batched:
            order.append(len(order))
        x = lax.transpose(x, tuple(order)) if order != list(range(len(order))) else x
        dims = [
            *range(nb),
            *[free_at + i for i in range(len(free))],
            *[nb + nlf + nrf + i for i in range(len(con))],
        ]
        if batched:
            dims.append(len(full) - 1)
        return lax.broadcast_in_dim(x, full, tuple(dims))

    dtype = out_aval.dtype
    a = expand(lhs.astype(dtype), lb, lbd, lfree, lc, nb)
    b = expand(rhs.astype(dtype), rb, rbd, rfree, rc, nb + nlf)
    prod = a * b
    axes = tuple(range(nb + nlf + nrf, nb + nlf + nrf + len(contract)))
    return [(prod.sum(axis=axes) if axes else prod, True)]


def _call(eqn, ins, size):
    """Nested ``jit`` and custom-derivative calls: evaluate their jaxpr inline."""
    p = eqn.params
    closed = p.get("jaxpr", p.get("call_jaxpr"))
    if closed is None:
        return _fallback(eqn, ins, size)
    if isinstance(closed, core.ClosedJaxpr):
        return _eval(closed.jaxpr, closed.consts, ins, size)
    return _eval(closed, (), ins, size)


def _carry_batched(body, consts_b, carry_b, xs_b, n_carry):
    """Which carries become batched: iterate to a fixed point, as ``jax.vmap`` does."""
    carry_b = list(carry_b)
    while True:
        out_b = _batched_outputs(body.jaxpr, [*consts_b, *carry_b, *xs_b])
        new = [c or o for c, o in zip(carry_b, out_b[:n_carry])]
        if new == carry_b:
            return carry_b
        carry_b = new


def _batched_outputs(jaxpr, in_b):
    """Which outputs of ``jaxpr`` depend on a batched input (conservatively)."""
    env = dict(zip(jaxpr.invars, in_b))
    for v in jaxpr.constvars:
        env[v] = False
    for eqn in jaxpr.eqns:
        b = any(env.get(v, False) for v in eqn.invars if not isinstance(v, core.Literal))
        if eqn.primitive is _SCAN and b:
            p = eqn.params
            nc, nk = p["num_consts"], p["num_carry"]
            flags = [
                env.get(v, False) if not isinstance(v, core.Literal) else False for v in eqn.invars
            ]
            carry = _carry_batched(
                p["jaxpr"], flags[:nc], flags[nc : nc + nk], flags[nc + nk :], nk
            )
            ys = _batched_outputs(p["jaxpr"].jaxpr, [*flags[:nc], *carry, *flags[nc + nk :]])[nk:]
            outs = [*carry, *ys]
        else:
            outs = [b] * len(eqn.outvars)
        for v, o in zip(eqn.outvars, outs):
            env[v] = o
    return [False if isinstance(v, core.Literal) else env.get(v, False) for v in jaxpr.outvars]


def _scan(eqn, ins, size):
    p = eqn.params
    nc, nk = p["num_consts"], p["num_carry"]
    body = p["jaxpr"]
    consts, carry, xs = ins[:nc], ins[nc : nc + nk], ins[nc + nk :]
    carry_b = _carry_batched(
        body, [b for _, b in consts], [b for _, b in carry], [b for _, b in xs], nk
    )
    xs_b = [b for _, b in xs]

    def as_carry(pairs):  # a carry the analysis found batched is batched from the start
        return [_batch(v, b, size) if cb else v for (v, b), cb in zip(pairs, carry_b)]

    def step(c, x):
        outs = _eval(body.jaxpr, body.consts, [*consts, *zip(c, carry_b), *zip(x, xs_b)], size)
        return as_carry(outs[:nk]), [_batch(v, b, size) for v, b in outs[nk:]]

    c, ys = lax.scan(
        step,
        as_carry(carry),
        [x for x, _ in xs],
        length=p["length"],
        reverse=p["reverse"],
        unroll=p["unroll"],
    )
    return [*zip(c, carry_b), *((y, True) for y in ys)]


def _fallback(eqn, ins, size):
    """Any other primitive: ``jax.vmap``'s own batching rule, axis moved to the end."""
    name = str(eqn.primitive)
    if name not in _said:  # once per primitive and process, at INFO; every time at DEBUG
        _said.add(name)
        _log.info(
            "vmap_last: no member-last rule for %s; jax.vmap's rule batches it (slower, "
            "the same results; batching='vmap' avoids it)",
            name,
        )
    _log.debug("vmap_last: %s batched by jax.vmap's rule (member axis moved)", name)
    for counter in _recorders:
        counter[name] += 1

    def one(*xs):
        return _bind(eqn, xs)

    axes = [-1 if b else None for _, b in ins]
    out = jax.vmap(one, in_axes=axes, out_axes=-1, axis_size=size)(*[x for x, _ in ins])
    return [(o, True) for o in (out if eqn.primitive.multiple_results else [out])]


def _bitcast(eqn, ins, size):
    """``bitcast_convert_type`` between types of one width is elementwise."""
    ((x, _),) = ins
    if np.dtype(_dtype(x)).itemsize != np.dtype(eqn.params["new_dtype"]).itemsize:
        return _fallback(eqn, ins, size)
    return _elementwise(eqn, ins, size)


# Rule -> the names its primitive has had across JAX versions, newest first. A required
# primitive that this JAX lacks is an ImportError; an optional one (elementwise
# operations a network may never use) is simply not given a rule.
_PRIMITIVE_NAMES: dict[str, tuple[str, ...]] = {
    "broadcast_in_dim": ("broadcast_in_dim_p",),
    "transpose": ("transpose_p",),
    "reshape": ("reshape_p",),
    "squeeze": ("squeeze_p",),
    "slice": ("slice_p",),
    "concatenate": ("concatenate_p",),
    "pad": ("pad_p",),
    "dot_general": ("dot_general_p",),
    "jit": ("jit_p", "pjit_p"),
    "closed_call": ("closed_call_p",),
    "custom_jvp_call": ("custom_jvp_call_p",),
    "custom_vjp_call": ("custom_vjp_call_p", "custom_vjp_call_jaxpr_p"),
    "scan": ("scan_p",),
    "bitcast_convert_type": ("bitcast_convert_type_p",),
}


def _primitive(rule: str):
    for name in _PRIMITIVE_NAMES[rule]:
        if hasattr(P, name):
            return getattr(P, name)
    raise ImportError(
        f"jaxbp's member-last batching needs the JAX primitive {rule!r} (known as "
        f"{' or '.join(_PRIMITIVE_NAMES[rule])} in jax.extend.core.primitives), which JAX "
        f"{jax.__version__} does not have: install a JAX version that pyproject.toml declares"
    )


_ELEMENTWISE = """
    abs acos acosh add and asin asinh atan atan2 atanh cbrt ceil clamp
    convert_element_type copy cos cosh div eq erf erf_inv erfc exp exp2 expm1
    floor ge gt integer_pow is_finite le lgamma log log1p logistic lt max min
    mul ne neg nextafter not or pow rem round rsqrt select_n shift_left
    shift_right_arithmetic shift_right_logical sign sin sinh sqrt square sub tan
    tanh xor add_jaxvals stop_gradient
""".split()
_RULES: dict = {getattr(P, f"{n}_p"): _elementwise for n in _ELEMENTWISE if hasattr(P, f"{n}_p")}
_RULES.update(
    {
        _primitive(rule): fn
        for rule, fn in (
            ("broadcast_in_dim", _broadcast_in_dim),
            ("transpose", _transpose),
            ("reshape", _reshape),
            ("squeeze", _squeeze),
            ("slice", _slice),
            ("concatenate", _concatenate),
            ("pad", _pad),
            ("dot_general", _dot_general),
            ("jit", _call),
            ("closed_call", _call),
            ("custom_jvp_call", _call),
            ("custom_vjp_call", _call),
            ("scan", _scan),
            ("bitcast_convert_type", _bitcast),
        )
    }
)
for _n in (
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "reduce_prod",
    "reduce_and",
    "reduce_or",
    "argmax",
    "argmin",
):
    _RULES[getattr(P, f"{_n}_p")] = _reduce
_SCAN = _primitive("scan")
