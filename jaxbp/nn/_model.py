"""A network as two pure functions: ``init(key, scale) -> params`` and ``apply(params, x)``.

Any JAX network fits: the parameters are any pytree of floating arrays, the outputs
the logits of a batch (leading axis the examples). The built-in MLP is one such
model ([`mlp_model`][jaxbp.nn.mlp_model]); ``check_init`` and ``check_apply`` trace a
user's model abstractly and say in one line what is wrong with it before anything
trains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..util._dtypes import floating_dtype, resolve_dtype
from ._activations import activation_key
from ._losses import resolve_loss
from ._mlp import (
    as_float_array,
    check_finite,
    check_labels,
    check_scheme,
    check_sizes,
    class_labels,
    forward_trace_unchecked,
    init_mlp_unchecked,
)

__all__ = [
    "Model",
    "check_apply",
    "check_init",
    "check_is_model",
    "check_model_batch",
    "check_model_params",
    "mlp_model",
]


class Model(NamedTuple):
    """A network as two pure functions.

    Attributes:
      init: ``(key, scale) -> params``: a pytree of floating arrays, drawn from the
        ``jax.random`` key; ``scale`` is the init scale (a scalar, traced in
        ``train_many``, where it is the grid's second axis).
      apply: ``(params, x) -> outputs``: the logits of the batch ``x``, one row per
        example (for a loss from logits).
      name: what messages call the model.

    A model is a static argument of the compiled programs: the same two functions
    (the same objects) reuse a compiled program, new ones compile again.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> def init(key, scale):
      ...     return {"w": scale * jax.random.normal(key, (3,)), "b": jnp.zeros(())}
      >>> def apply(params, x):
      ...     return x @ params["w"] + params["b"]
      >>> linear = Model(init, apply, name="linear")
      >>> params = linear.init(jax.random.key(0), 0.0)
      >>> linear.apply(params, jnp.ones((2, 3))).tolist()
      [0.0, 0.0]
    """

    init: Callable[..., Any]
    apply: Callable[..., jax.Array]
    name: str = "model"


@dataclasses.dataclass(frozen=True)
class _MLPInit:
    sizes: tuple[int, ...]
    scheme: str
    dtype: Any

    def __call__(self, key, scale):
        return init_mlp_unchecked(
            key, scale, sizes=self.sizes, scheme=self.scheme, dtype=self.dtype
        )


@dataclasses.dataclass(frozen=True)
class _MLPApply:
    activation: str | tuple[str, ...]

    def __call__(self, params, x):
        return forward_trace_unchecked(params, x, self.activation).logits


def mlp_model(sizes, *, activation="sigmoid", scheme: str = "normal", dtype=None) -> Model:
    """The built-in MLP as a [`Model`][jaxbp.nn.Model]: ``init_mlp`` and the forward pass.

    Two calls with the same arguments give equal models, which share compiled
    programs. ``train_many(key, sizes, ...)`` trains the same networks (``scheme``
    defaults to ``train_many``'s ``"normal"``) with the MLP's own planning and its
    hand-derived gradient available.

    Examples:
      >>> import jax
      >>> m = mlp_model((3, 2, 1), activation="tanh")
      >>> m == mlp_model((3, 2, 1), activation="tanh")
      True
      >>> m.apply(m.init(jax.random.key(0), 0.5), jax.numpy.ones((4, 3))).shape
      (4, 1)
    """
    sizes = check_sizes(sizes)
    check_scheme(scheme)
    dtype = resolve_dtype(dtype)
    name = "mlp " + "-".join(map(str, sizes))
    init = _MLPInit(sizes, scheme, dtype)
    return Model(init, _MLPApply(activation_key(activation, len(sizes) - 2)), name)


def _fail(model: Model, what: str) -> ValueError:
    return ValueError(f"model {model.name!r}: {what}")


def _raised(model: Model, call: str, e: Exception) -> ValueError:
    """An exception from a user's function, in one line naming the model."""
    text = str(e).strip()
    if "Leaked trace" in text:
        return _fail(
            model,
            f"{call} leaks a traced value (it keeps an argument or an intermediate "
            "outside the call, in a global or a list): it must be a pure function",
        )
    first = text.splitlines()[0] if text else ""
    return _fail(model, f"{call} raised {type(e).__name__}" + (f": {first}" if first else ""))


def check_is_model(model) -> Model:
    if not isinstance(model, Model):
        raise TypeError(f"a model must be a jaxbp.Model(init, apply); got {type(model).__name__}")
    if not (callable(model.init) and callable(model.apply)):
        raise TypeError(f"model {model.name!r}: init and apply must be functions")
    return model


def check_init(model: Model, key, scale_dtype) -> tuple[Any, np.dtype]:
    """The shapes of ``model.init(key, scale)`` (traced abstractly: nothing is computed)
    and their one floating dtype; a one-line ``ValueError`` naming the model when the
    init raises, leaks a traced value or returns anything but floating arrays."""
    scale = jax.ShapeDtypeStruct((), scale_dtype)
    try:
        with jax.checking_leaks():
            params = jax.eval_shape(model.init, key, scale)
    except Exception as e:  # the user's code: whatever it raised, said in one line
        raise _raised(model, "init(key, scale)", e) from None
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves or not all(
        isinstance(p, jax.ShapeDtypeStruct) and jnp.issubdtype(p.dtype, jnp.floating)
        for p in leaves
    ):
        got = jax.tree_util.tree_map(lambda p: str(getattr(p, "dtype", type(p).__name__)), params)
        raise _fail(model, f"init must return a pytree of floating arrays; got {got}")
    dtypes = sorted({str(p.dtype) for p in leaves})
    if len(dtypes) > 1:
        raise _fail(model, f"init returns parameters of several dtypes {dtypes}; give them one")
    return params, np.dtype(dtypes[0])


def check_apply(model: Model, params, x) -> jax.ShapeDtypeStruct:
    """The shape of ``model.apply(params, x)`` (traced abstractly, twice: a pure function
    traces the same both times); a one-line ``ValueError`` naming the model when apply
    raises, leaks a traced value, has a Python side effect, or does not return one
    array with a row per example."""
    try:
        with jax.checking_leaks():
            # A fresh function each time: a trace of ``model.apply`` itself would be cached.
            jaxprs = [
                str(jax.make_jaxpr(lambda p, v: model.apply(p, v))(params, x)) for _ in range(2)
            ]
            outputs = jax.eval_shape(model.apply, params, x)
    except Exception as e:
        raise _raised(model, "apply(params, x)", e) from None
    if jaxprs[0] != jaxprs[1]:
        raise _fail(
            model,
            "apply is not a pure function: two calls on the same arguments traced "
            "differently (a Python side effect, such as a counter it reads and changes?)",
        )
    n = x.shape[0]
    if not isinstance(outputs, jax.ShapeDtypeStruct) or not outputs.shape or outputs.shape[0] != n:
        shape = getattr(outputs, "shape", type(outputs).__name__)
        raise _fail(
            model,
            f"apply must return one array of outputs with a row per example of x "
            f"({n} examples); got {shape}",
        )
    return outputs


def check_model_batch(model: Model, params, x, y, loss) -> tuple[jax.Array, jax.Array]:
    """``x`` and ``y`` for ``model`` with parameters ``params`` (arrays or shapes), as
    arrays: ``x`` with a row per example in the parameters' floating dtype (or its own,
    where wider: never narrowed); ``y`` with a row per example, for a loss name in
    ``x``'s dtype and shaped like the outputs (a ``(batch,)`` vector fits outputs of
    ``(batch, 1)``). A loss given as a function must return one value per example."""
    leaves = jax.tree_util.tree_leaves(params)
    dtype = np.dtype(leaves[0].dtype)
    wider = floating_dtype(x)
    if wider is not None and wider.itemsize > dtype.itemsize:
        dtype = wider
    x = as_float_array(x, dtype, "x")
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"x must hold a row per example; got shape {tuple(x.shape)}")
    check_finite(x, "x")
    struct = jax.tree_util.tree_map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    outputs = check_apply(model, struct, jax.ShapeDtypeStruct(x.shape, x.dtype))
    n = x.shape[0]
    if callable(loss):
        y = jnp.asarray(y)
        if y.ndim < 1 or y.shape[0] != n:
            raise ValueError(
                f"y must hold a label per example of x ({n} examples); got shape {tuple(y.shape)}"
            )
        try:
            per = jax.eval_shape(loss, outputs, jax.ShapeDtypeStruct(y.shape, y.dtype))
        except Exception as e:
            raise ValueError(
                f"loss(outputs, y) raised {type(e).__name__} on outputs of shape "
                f"{outputs.shape} and y of shape {tuple(y.shape)}"
            ) from None
        if getattr(per, "shape", None) != (n,):
            raise ValueError(
                f"loss(outputs, y) must return one loss per example, shape ({n},); got "
                f"{getattr(per, 'shape', type(per).__name__)}"
            )
        return x, y
    spec = resolve_loss(loss)
    if spec.classes:
        return x, class_labels(y, n, outputs.shape[1], x.dtype, spec.name)
    y = as_float_array(y, x.dtype, "y")
    if y.shape == (n,) and outputs.shape == (n, 1):
        y = y[:, None]
    if y.shape != outputs.shape:
        raise ValueError(
            f"y must have the shape of model {model.name!r}'s outputs {outputs.shape} (a label "
            f"per example and output); got shape {tuple(y.shape)}"
        )
    check_labels(y, spec)
    return x, y


def check_model_params(model: Model, params):
    """``params`` for ``model``: a pytree of floating arrays of one dtype (as its init gives)."""
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves or not all(
        hasattr(p, "dtype") and jnp.issubdtype(p.dtype, jnp.floating) for p in leaves
    ):
        raise TypeError(
            f"params for model {model.name!r} must be a pytree of floating arrays (what its "
            f"init returns); got {jax.tree_util.tree_map(lambda p: type(p).__name__, params)}"
        )
    if len({np.dtype(p.dtype) for p in leaves}) > 1:
        raise TypeError(f"params for model {model.name!r} must have one floating dtype")
    return params
