"""Multi-layer perceptrons as pure functions: initialisation, forward pass, losses.

Every function takes the parameters first and a batch of examples ``x`` of
shape ``(batch, n_in)``; one network at a time. For many networks, ``jax.vmap``
over the parameter tree. Hidden layers apply an activation; the last layer is
linear and gives the logit ``o``; the output probability is ``z = sigmoid(o)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..util._dtypes import floating_dtype, resolve_dtype
from ..util._threefry import unrolled_threefry
from ._activations import resolve_activations
from ._losses import Loss, resolve_loss
from ._tree import Params, check_params, is_concrete

__all__ = [
    "SCHEMES",
    "Trace",
    "bce_loss",
    "check_batch",
    "compute_loss",
    "forward",
    "forward_trace",
    "init_mlp",
    "mse_loss",
]

SCHEMES = {
    "normal": ("normal", lambda fan_in, fan_out: 1.0, True),
    "uniform": ("uniform", lambda fan_in, fan_out: 1.0, True),
    "glorot_normal": ("normal", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out)), False),
    "glorot_uniform": ("uniform", lambda fan_in, fan_out: math.sqrt(6 / (fan_in + fan_out)), False),
    "he_normal": ("normal", lambda fan_in, fan_out: math.sqrt(2 / fan_in), False),
    "lecun_normal": ("normal", lambda fan_in, fan_out: math.sqrt(1 / fan_in), False),
}
"""The initialization schemes of [`init_mlp`][jaxbp.nn.init_mlp] by name: scheme -> (distribution, the
spread of ``W`` before ``scale`` as a function of fan-in and fan-out, whether the biases
are drawn too)."""


def check_key(key, argname: str = "key"):
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(
                f"{argname} must be a single PRNG key; got a key array of shape {key.shape}"
            )
        return key
    if (
        hasattr(key, "shape")
        and tuple(key.shape) == (2,)
        and jnp.issubdtype(getattr(key, "dtype", None), jnp.unsignedinteger)
    ):
        return key
    raise TypeError(
        f"{argname} must be a JAX PRNG key such as jax.random.key(0); got "
        f"{type(key).__name__} {key!r}"[:200]
    )


def check_scheme(scheme) -> str:
    """``scheme`` if it names an initialization scheme (``SCHEMES``), else a ValueError."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {sorted(SCHEMES)}")
    return scheme


def check_sizes(sizes) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(
            f"sizes must be a sequence of layer widths such as (3, 2, 1); got {sizes!r}"
        )
    if len(sizes) < 2:
        raise ValueError(
            f"sizes must name at least an input and an output width, such as (3, 2, 1); got {sizes!r}"
        )
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ValueError(
                f"sizes must be positive integers, such as (3, 2, 1); got {tuple(sizes)!r}"
            )
    return tuple(int(s) for s in sizes)


def init_mlp(
    key, sizes: Sequence[int], *, scheme: str = "glorot_normal", scale=1.0, dtype=None
) -> Params:
    """A parameter tree for an MLP with layer widths ``sizes``.

    Schemes (``s`` is ``scale``; fan_in, fan_out are the layer's widths):

    - ``normal``: W, b ~ N(0, s^2);  ``uniform``: W, b ~ U(-s, s)  (biases random too,
      as in the classic backprop experiments)
    - ``glorot_normal``: W ~ N(0, s^2 * 2 / (fan_in + fan_out));
      ``glorot_uniform``: W ~ U(+-s * sqrt(6 / (fan_in + fan_out)));
      ``he_normal``: W ~ N(0, s^2 * 2 / fan_in); ``lecun_normal``: W ~ N(0, s^2 / fan_in);
      biases 0.

    Args:
      key: a ``jax.random`` key; the same key gives the same network.
      sizes: ``(n_in, hidden..., n_out)``, e.g. ``(3, 2, 1)`` for the seed network.
      scheme: one of [`SCHEMES`][jaxbp.nn.SCHEMES]. The default, ``"glorot_normal"``, keeps the
        activations' spread steady through depth for one network trained alone;
        [`train_many`][jaxbp.many.train_many] defaults to ``"normal"``, whose scale is the spread itself
        (the axis its init-scale grids sweep).
      scale: a positive multiplier of the scheme's spread; may be a traced array
        (under ``vmap`` it varies across networks).
      dtype: the parameters' floating dtype; default JAX's default float (float32, or
        float64 under ``jax_enable_x64``).

    Returns:
      ``Params``: layer ``l`` has ``W`` of shape ``(sizes[l], sizes[l+1])`` and ``b`` of
      shape ``(sizes[l+1],)``.

    Examples:
      >>> params = init_mlp(jax.random.key(0), (3, 2, 1))
      >>> [(layer["W"].shape, layer["b"].shape) for layer in params]
      [((3, 2), (2,)), ((2, 1), (1,))]
    """
    key = check_key(key)
    sizes = check_sizes(sizes)
    check_scheme(scheme)
    dtype = resolve_dtype(dtype)
    if is_concrete(scale):
        s = np.asarray(scale)
        if s.shape != () or not np.isfinite(s) or s <= 0:
            raise ValueError(f"scale must be a positive finite number; got {scale!r}")
    with unrolled_threefry():
        return init_mlp_unchecked(
            key, jnp.asarray(scale, dtype=dtype), sizes=sizes, scheme=scheme, dtype=dtype
        )


@partial(jax.jit, static_argnames=("sizes", "scheme", "dtype"))
def init_mlp_unchecked(key, scale, *, sizes, scheme, dtype) -> Params:
    """[`init_mlp`][jaxbp.nn.init_mlp] for checked arguments (``scale`` may be traced): what programs call.

    The library's convention: ``name`` checks its arguments at the public edge,
    ``name_unchecked`` is the same computation for validated inputs, called inside ``jit``.
    """
    # One draw for the whole network, sliced by layer: a single random-bits
    # kernel compiles several times faster than one per weight matrix.
    noise = init_noise(key, n_init_draws(sizes), scheme=scheme, dtype=dtype)
    return init_from_noise(noise, scale, sizes=sizes, scheme=scheme, dtype=dtype)


def n_init_draws(sizes) -> int:
    """How many random numbers ``init_mlp_unchecked`` draws for a network of ``sizes``."""
    return sum(n_in * n_out + n_out for n_in, n_out in itertools.pairwise(sizes))


def init_noise(key, n: int, *, scheme, dtype):
    """The ``n`` random numbers an initialization of ``scheme`` starts from. Under JAX's
    partitionable threefry (its default) the first ``m`` of them are those of a draw
    of ``m``: one draw serves networks of several widths."""
    if SCHEMES[scheme][0] == "normal":
        return jax.random.normal(key, (n,), dtype)
    return jax.random.uniform(key, (n,), dtype, minval=-1.0, maxval=1.0)


def init_from_noise(noise, scale, *, sizes, scheme, dtype) -> Params:
    """``init_mlp_unchecked``'s parameters from its random numbers (``init_noise``)."""
    _, spread, random_bias = SCHEMES[scheme]
    shapes = [((n_in, n_out), (n_out,)) for n_in, n_out in itertools.pairwise(sizes)]
    params, start = [], 0
    for (n_in, n_out), _ in shapes:
        w = noise[start : start + n_in * n_out].reshape(n_in, n_out)
        b = noise[start + n_in * n_out : start + n_in * n_out + n_out]
        start += n_in * n_out + n_out
        W = scale * jnp.asarray(spread(n_in, n_out), dtype) * w
        b = scale * b if random_bias else jnp.zeros((n_out,), dtype)
        params.append({"W": W, "b": b})
    return tuple(params)


class Trace(NamedTuple):
    """Every intermediate value of a forward pass, by layer.

    ``h[l]`` is the pre-activation of layer ``l + 1`` (shape ``(batch, width)``), so
    ``h[-1]`` is the output logit ``o``; ``a[l]`` is the activation of hidden layer
    ``l + 1``. ``x`` is the input batch, ``z = sigmoid(o)``.
    """

    x: jax.Array
    h: tuple[jax.Array, ...]
    a: tuple[jax.Array, ...]

    @property
    def logits(self) -> jax.Array:
        return self.h[-1]

    @property
    def probs(self) -> jax.Array:
        return jax.nn.sigmoid(self.h[-1])


def as_float_array(a, dtype, argname):
    if isinstance(a, jax.Array):
        if not (jnp.issubdtype(a.dtype, jnp.number) or a.dtype == jnp.bool_):
            raise TypeError(f"{argname} must be numeric; got dtype {a.dtype}")
        return a.astype(dtype)
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{argname} must be a numeric array; got {type(a).__name__}") from e
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{argname} must be a numeric array; got dtype {arr.dtype}")
    return jnp.asarray(arr, dtype=dtype)


def _check_x(params: Params, x) -> jax.Array:
    # x keeps a floating dtype wider than the parameters' (never narrowed: the network
    # then computes in it, as JAX's promotion would); anything else takes the parameters'.
    dtype = params[0]["W"].dtype
    wider = floating_dtype(x)
    if wider is not None and wider.itemsize > np.dtype(dtype).itemsize:
        dtype = wider
    n_in = params[0]["W"].shape[0]
    x = as_float_array(x, dtype, "x")
    if x.ndim != 2 or x.shape[1] != n_in or x.shape[0] < 1:
        hint = "; for one example use x[None, :]" if x.ndim == 1 and x.shape[0] == n_in else ""
        raise ValueError(
            f"x must have shape (batch, {n_in}) to match params[0]['W'] of shape "
            f"{tuple(params[0]['W'].shape)}; got shape {tuple(x.shape)}{hint}"
        )
    check_finite(x, "x")
    return x


def check_finite(a, name: str) -> None:
    """A ValueError naming the first non-finite entry of ``a`` (concrete values only)."""
    if is_concrete(a):
        v = np.asarray(a)
        if not np.all(np.isfinite(v)):
            bad = tuple(np.argwhere(~np.isfinite(v))[0])
            raise ValueError(
                f"{name} must be finite; {name}[{', '.join(map(str, bad))}] is {v[bad]}"
            )


def check_batch(params: Params, x, y, loss: Loss | str) -> tuple[jax.Array, jax.Array]:
    """Validate ``x`` and ``y`` against the network and return them as arrays.

    Returns ``x`` of shape ``(batch, n_in)`` and ``y`` of shape ``(batch, n_out)``,
    both in the parameters' dtype, or in ``x``'s floating dtype where that is wider. Value checks (finite, labels in [0, 1]) run
    only on concrete values, not under ``jit``/``vmap`` tracing.
    """
    loss = resolve_loss(loss) if isinstance(loss, str) else loss
    x = _check_x(params, x)
    batch, n_out = x.shape[0], params[-1]["W"].shape[1]
    if loss.classes:
        return x, class_labels(y, batch, n_out, x.dtype, loss.name)
    y = as_float_array(y, x.dtype, "y")
    if y.shape == (batch,) and n_out == 1:
        y = y[:, None]
    if y.shape != (batch, n_out):
        want = f"({batch},) or ({batch}, 1)" if n_out == 1 else f"({batch}, {n_out})"
        raise ValueError(
            f"y must have shape {want}: one label per example of x (batch {batch}) and output "
            f"unit (n_out {n_out}); got shape {tuple(y.shape)}"
        )
    check_labels(y, loss)
    return x, y


def class_labels(y, batch: int, n_classes: int, dtype, loss_name: str) -> jax.Array:
    """Class labels as one-hot rows ``(batch, n_classes)`` in ``dtype``: from one class
    index per example (integers from 0, shape ``(batch,)``), or one-hot rows already.
    Out-of-range and non-integer indices are refused (concrete values only)."""
    shape = tuple(getattr(y, "shape", np.shape(y)))
    if shape == (batch, n_classes) and n_classes > 1:
        rows = as_float_array(y, dtype, "y")
        if is_concrete(rows):
            r = np.asarray(rows)
            if not (np.all((r == 0) | (r == 1)) and np.all(r.sum(axis=1) == 1)):
                raise ValueError(
                    f"y for loss {loss_name!r} must hold one class index per example, shape "
                    f"({batch},), or one-hot rows; got a ({batch}, {n_classes}) array that is not one-hot"
                )
        return rows
    if shape != (batch,):
        raise ValueError(
            f"y for loss {loss_name!r} must hold one class index per example: shape ({batch},) "
            f"for x's batch of {batch}; got shape {shape}"
        )
    if isinstance(y, jax.Array) and not is_concrete(y):
        return jax.nn.one_hot(y, n_classes, dtype=dtype)
    v = np.asarray(y)
    if v.dtype == np.bool_ or not np.issubdtype(v.dtype, np.number):
        raise TypeError(
            f"y for loss {loss_name!r} must hold class indices (integers); got dtype {v.dtype}"
        )
    bad = ~np.isfinite(v) | (v != np.round(v)) if v.dtype.kind == "f" else np.zeros(v.shape, bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"y for loss {loss_name!r} must hold class indices (integers); y[{i}] is {v[i]}"
        )
    out = (v < 0) | (v >= n_classes)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(
            f"y for loss {loss_name!r} must hold class indices from 0 to {n_classes - 1} (the network "
            f"has {n_classes} output units); y[{i}] is {v[i]:g}"
        )
    return jax.nn.one_hot(jnp.asarray(v.astype(np.int32)), n_classes, dtype=dtype)


def check_labels(y, loss: Loss) -> None:
    """Labels finite, and in [0, 1] for a loss of probabilities (concrete values only)."""
    check_finite(y, "y")
    if is_concrete(y):
        yv = np.asarray(y)
        if loss.labels_in_unit_interval and (yv.min() < 0 or yv.max() > 1):
            raise ValueError(
                f"y must hold labels in [0, 1] for loss {loss.name!r}; got values from "
                f"{yv.min():g} to {yv.max():g}"
            )


def in_dtype(params: Params, dtype) -> Params:
    """``params`` cast to ``dtype`` (the same tree when it already has it)."""
    if params[0]["W"].dtype == dtype:
        return params
    return jax.tree_util.tree_map(lambda a: a.astype(dtype), params)


def forward_trace_unchecked(params: Params, x: jax.Array, activation) -> Trace:
    """The forward pass for a checked ``x``; computed in ``x``'s dtype (see check_batch)."""
    params = in_dtype(params, x.dtype)
    acts = resolve_activations(activation, len(params) - 1)
    h, a = [], []
    inp = x
    for layer, act in zip(params[:-1], acts):
        h.append(inp @ layer["W"] + layer["b"][None, :])
        a.append(act.fn(h[-1]))
        inp = a[-1]
    h.append(inp @ params[-1]["W"] + params[-1]["b"][None, :])
    return Trace(x=x, h=tuple(h), a=tuple(a))


def forward_trace(params: Params, x, *, activation="sigmoid") -> Trace:
    """The forward pass with every pre-activation and activation kept.

    Args:
      params: the network.
      x: inputs of shape ``(batch, n_in)``.
      activation: a name for every hidden layer or a tuple of names, one per hidden layer.

    Returns:
      [`Trace`][jaxbp.nn.Trace] with ``h`` (pre-activations, the last is the logit) and ``a``
      (hidden activations), each of shape ``(batch, width)``.
    """
    params = check_params(params)
    return forward_trace_unchecked(params, _check_x(params, x), activation)


def forward(params: Params, x, *, activation="sigmoid") -> jax.Array:
    """The output logits ``o`` of the network for a batch ``x``.

    Args:
      params: the network (see [`init_mlp`][jaxbp.nn.init_mlp]).
      x: inputs of shape ``(batch, n_in)``.
      activation: ``"sigmoid"``, ``"tanh"``, ``"relu"`` or ``"identity"`` for every
        hidden layer, or a tuple with one per hidden layer. The output layer is linear.

    Returns:
      Logits of shape ``(batch,)`` for one output unit, else ``(batch, n_out)``.

    Examples:
      >>> from jaxbp import seed_exercise
      >>> ex = seed_exercise(dtype="float32")
      >>> forward(ex.params, ex.x)
      Array([0.10121667], dtype=float32)
    """
    o = forward_trace(params, x, activation=activation).logits
    return o[:, 0] if o.shape[1] == 1 else o


def mean_loss(o: jax.Array, y: jax.Array, loss: Loss) -> jax.Array:
    # Sum over output units, mean over the examples of the batch.
    return jnp.sum(loss.value(o, y)) / o.shape[0]


def compute_loss(params: Params, x, y, *, activation="sigmoid", loss: str = "bce") -> jax.Array:
    """The named loss of the network on ``(x, y)``: mean over examples, sum over output units.

    ``loss`` is ``"bce"`` (binary cross-entropy from the logit), ``"mse"`` (squared error
    of ``z = sigmoid(o)``) or ``"mse_linear"`` (squared error of the logit itself).
    """
    params = check_params(params)
    spec = resolve_loss(loss)
    x, y = check_batch(params, x, y, spec)
    return mean_loss(forward_trace_unchecked(params, x, activation).logits, y, spec)


def bce_loss(params: Params, x, y, *, activation="sigmoid") -> jax.Array:
    """Mean binary cross-entropy ``-[y log z + (1 - y) log(1 - z)]``, ``z = sigmoid(o)``.

    Computed from the logit as ``-[y log_sigmoid(o) + (1 - y) log_sigmoid(-o)]``, which
    stays finite for any logit (``log(sigmoid(o))`` is ``-inf`` once sigmoid rounds to 0).

    Args:
      params: the network.
      x: inputs ``(batch, n_in)``.
      y: labels in [0, 1], shape ``(batch,)`` (or ``(batch, n_out)``).

    Examples:
      >>> from jaxbp import seed_exercise
      >>> ex = seed_exercise(dtype="float32")
      >>> bce_loss(ex.params, ex.x, ex.y)  # -log(0.5252826)
      Array(0.6438189, dtype=float32)
    """
    return compute_loss(params, x, y, activation=activation, loss="bce")


def mse_loss(params: Params, x, y, *, activation="sigmoid") -> jax.Array:
    """Mean squared error ``(z - y)^2`` of the output ``z = sigmoid(o)``.

    For a linear output use ``compute_loss(..., loss="mse_linear")``.
    """
    return compute_loss(params, x, y, activation=activation, loss="mse")
