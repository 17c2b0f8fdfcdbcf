"""The step model of a hand derivation: which steps there are, how each follows from earlier ones.

A derivation is an ordered list of named steps. For a network with layers
``l = 1..L`` (``a0`` is the input ``x``; entries are indexed from 0, as in NumPy;
with one example the batch index is left out):

====================  ===========================================================
``h{l}``              pre-activation of hidden layer l, ``a{l-1} W{l} + b{l}``
``a{l}``              activation of hidden layer l, ``f(h{l})``
``o``                 output logit, ``a{L-1} WL + bL``
``z``                 output probability ``sigma(o)`` (not for ``mse_linear``)
``loss``              the loss, a mean over the batch
``dL/dz``             (not for ``mse_linear``)
``dL/do``             the output delta
``dL/dW{l}``          ``a{l-1}^T dL/dh{l}``: (current value) x (backward gradient)
``dL/db{l}``          ``dL/dh{l}`` summed over the batch (the bias input is 1)
``dL/da{l}``          ``dL/dh{l+1} W{l+1}^T`` (``dL/dh{L}`` is ``dL/do``)
``da{l}/dh{l}``       the activation's local derivative, e.g. ``a(1 - a)``
``dL/dh{l}``          ``dL/da{l} * da{l}/dh{l}``
====================  ===========================================================

The seed exercise's names map onto these: H1, H2 = ``h1[0]``, ``h1[1]``;
G(H1), G(H2) = ``a1[0]``, ``a1[1]``; O = ``o``; Z = ``z``; w21 = ``dL/db2``;
w22, w23 = ``dL/dW2[0, 0]``, ``dL/dW2[1, 0]``; the entries of W11 are, row by row,
``dL/db1`` (row 0, the bias) then ``dL/dW1``; G(H)(1 - G(H)) = ``da1/dh1``.

Each ``StepSpec`` computes its step from the steps it names, the way a
student does on paper (``a(1 - a)``, ``(z - y) / (z (1 - z))``): the formulas come
from the activation's ``jaxbp.nn._activations.StudentRule`` and the loss's
``jaxbp.nn._losses.PaperStep``, where they sit beside the op. Exact values come
from the library's own forward trace and hand-written backward pass.

Rendering (``_explain``) and grading (``_grading``) build on this module.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..grads._manual import backward
from ..nn._activations import Activation, activation_key, resolve_activations
from ..nn._losses import resolve_loss
from ..nn._mlp import check_batch, check_sizes
from ..nn._tree import Params, check_params
from ..util._dtypes import float64_mode

__all__ = ["FORWARD_KINDS", "Problem", "StepSpec", "step_names", "step_specs"]

FORWARD_KINDS = ("h", "a", "o", "z", "loss")


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """How a step is computed from the steps before it (what a student would use)."""

    name: str
    kind: str
    layer: int
    inputs: tuple[str, ...]
    formula: str
    latex: str
    what: str
    # op(*inputs, *consts) -> value, written as a student would. ``op`` is a function of
    # the step's form alone and ``consts`` the network's numbers it uses (W, b, x, y), so
    # one compiled op serves every problem of the same shapes.
    op: Callable[..., jax.Array]
    consts: tuple[jax.Array, ...] = ()

    def fn(self, *inputs) -> jax.Array:
        """The step's value from the values of its inputs."""
        return self.op(*inputs, *self.consts)

    @property
    def part(self) -> str:
        return "forward" if self.kind in FORWARD_KINDS else "backward"


@dataclasses.dataclass(frozen=True)
class Problem:
    """A network and a batch, as exact float64 NumPy arrays: what a derivation is about."""

    params: tuple[dict[str, np.ndarray], ...]
    x: np.ndarray  # (batch, n_in)
    y: np.ndarray  # (batch, n_out)
    acts: tuple[Activation, ...]
    loss: str

    @property
    def n_layers(self) -> int:
        return len(self.params)

    @property
    def batch(self) -> int:
        return self.x.shape[0]

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.params[0]["W"].shape[0], *(p["W"].shape[1] for p in self.params))

    def input_of(self, layer: int, values) -> np.ndarray:
        """``a{layer - 1}``: the input ``x`` for layer 1, else that step's value."""
        return self.x if layer == 1 else values[f"a{layer - 1}"]

    @classmethod
    def build(cls, params: Params, x, y, activation, loss: str) -> Problem:
        """Check the network and batch and hold them in float64."""
        params = check_params(params)
        spec = resolve_loss(loss)
        with float64_mode():
            params = jax.tree_util.tree_map(
                lambda a: jnp.asarray(np.asarray(a), jnp.float64), params
            )
            x, y = check_batch(params, x, y, spec)
        return cls(
            params=tuple({k: np.asarray(v) for k, v in layer.items()} for layer in params),
            x=np.asarray(x),
            y=np.asarray(y),
            acts=resolve_activations(activation, len(params) - 1),
            loss=loss,
        )

    def exact_values(self, activation) -> dict[str, np.ndarray]:
        """Every step's exact value, from the forward trace and the hand-written backward pass."""
        key = activation_key(activation, self.n_layers - 1)
        with float64_mode():
            v = _exact_values(self.params, self.x, self.y, key, self.loss)
        return {k: np.asarray(a, np.float64) for k, a in v.items()}


@functools.partial(jax.jit, static_argnames=("activation", "loss"))
def _exact_values(params, x, y, activation, loss) -> dict[str, jax.Array]:
    b = backward(params, x, y, activation=activation, loss=loss)
    t, n_layers = b.trace, len(params)
    acts = resolve_activations(activation, n_layers - 1)
    v: dict[str, Any] = {}
    for l in range(1, n_layers):
        v[f"h{l}"], v[f"a{l}"] = t.h[l - 1], t.a[l - 1]
        v[f"da{l}/dh{l}"] = acts[l - 1].grad(t.h[l - 1])
        v[f"dL/da{l}"] = b.da[l - 1]
        v[f"dL/dh{l}"] = b.dh[l - 1]
    v["o"] = t.logits
    v["loss"] = b.loss
    v["dL/do"] = b.dh[-1]
    paper = resolve_loss(loss).paper
    if "dL/dz" in paper:
        v["z"] = t.probs
        # For display only: the probability form of dL/dz may divide by z(1 - z).
        v["dL/dz"] = paper["dL/dz"].fn(t.probs, y, x.shape[0])
    for l in range(1, n_layers + 1):
        v[f"dL/dW{l}"] = b.grads[l - 1]["W"]
        v[f"dL/db{l}"] = b.grads[l - 1]["b"]
    return v


# --------------------------------------------------------------------------- the specs
# The steps' ops: functions of their inputs and constants only, the same objects for
# every problem.


def _affine(a, W, b):
    return a @ W + b[None, :]


def _transposed_times(a, d):
    return a.T @ d


def _input_transposed_times(d, x):
    return x.T @ d


def _times_transposed(d, W):
    return d @ W.T


def _times(da, g):
    return da * g


def _batch_sum(d):
    return jnp.sum(d, axis=0)


@functools.cache
def _paper_op(fn):
    """A loss's paper step ``fn(*inputs, y, B)`` as an op of its inputs and ``y``."""
    return lambda *v: fn(*v[:-1], v[-1], v[-1].shape[0])


def _forward_specs(prob: Problem, layers, x) -> list[StepSpec]:
    L = prob.n_layers
    specs = []

    def affine(l):  # the op and its constants
        W, b = layers[l - 1]["W"], layers[l - 1]["b"]
        return (_affine, (x, W, b)) if l == 1 else (_affine, (W, b))

    def prev(l):
        return (f"a{l - 1}",) if l > 1 else ()

    for l in range(1, L):
        act = prob.acts[l - 1]
        specs.append(
            StepSpec(
                f"h{l}",
                "h",
                l,
                prev(l),
                f"h{l} = a{l - 1} W{l} + b{l}",
                rf"h^{{({l})}} = a^{{({l - 1})}} W^{{({l})}} + b^{{({l})}}",
                f"pre-activation of hidden layer {l}",
                *affine(l),
            )
        )
        specs.append(
            StepSpec(
                f"a{l}",
                "a",
                l,
                (f"h{l}",),
                f"a{l} = {act.name}(h{l})",
                rf"a^{{({l})}} = \mathrm{{{act.name}}}(h^{{({l})}})",
                f"activation of hidden layer {l}",
                act.fn,
            )
        )
    specs.append(
        StepSpec(
            "o",
            "o",
            L,
            prev(L),
            f"o = a{L - 1} W{L} + b{L}",
            rf"o = a^{{({L - 1})}} W^{{({L})}} + b^{{({L})}}",
            "output logit",
            *affine(L),
        )
    )
    return specs


def _output_specs(prob: Problem, y) -> list[StepSpec]:
    """``z`` (for losses of the probability), then the loss's own paper steps."""
    L = prob.n_layers
    paper = resolve_loss(prob.loss).paper
    specs = []
    if "dL/dz" in paper:
        specs.append(
            StepSpec(
                "z",
                "z",
                L,
                ("o",),
                "z = sigma(o)",
                r"z = \sigma(o) = \frac{1}{1 + e^{-o}}",
                "output probability",
                jax.nn.sigmoid,
            )
        )
    for name, step in paper.items():
        specs.append(
            StepSpec(
                name,
                name,
                L,
                step.inputs,
                step.formula,
                step.latex,
                step.what,
                _paper_op(step.fn),
                (y,),
            )
        )
    return specs


def _backward_specs(prob: Problem, layers, x) -> list[StepSpec]:
    specs = []
    for l in range(prob.n_layers, 0, -1):
        delta = "dL/do" if l == prob.n_layers else f"dL/dh{l}"
        dl = "o" if l == prob.n_layers else f"h^{{({l})}}"
        a, a_t = ("x", r"x^\top") if l == 1 else (f"a{l - 1}", rf"a^{{({l - 1})\top}}")
        specs.append(
            StepSpec(
                f"dL/dW{l}",
                "dL/dW",
                l,
                (delta,) if l == 1 else (a, delta),
                f"dL/dW{l} = {a}^T {delta}",
                rf"\frac{{\partial L}}{{\partial W^{{({l})}}}} = {a_t} \frac{{\partial L}}{{\partial {dl}}}",
                "(current value) x (backward gradient)",
                *((_input_transposed_times, (x,)) if l == 1 else (_transposed_times, ())),
            )
        )
        specs.append(
            StepSpec(
                f"dL/db{l}",
                "dL/db",
                l,
                (delta,),
                f"dL/db{l} = sum over the batch of {delta}",
                rf"\frac{{\partial L}}{{\partial b^{{({l})}}}} = \sum_b \frac{{\partial L}}{{\partial {dl}}}",
                "the bias input is 1",
                _batch_sum,
            )
        )
        if l > 1:
            specs += _hidden_backward_specs(prob, l - 1, delta, dl, layers[l - 1]["W"])
    return specs


def _hidden_backward_specs(prob: Problem, k: int, delta: str, dl: str, W) -> list[StepSpec]:
    """dL/da, da/dh and dL/dh of hidden layer ``k``, from the delta of layer ``k + 1``."""
    act = prob.acts[k - 1]
    rule = act.student
    return [
        StepSpec(
            f"dL/da{k}",
            "dL/da",
            k,
            (delta,),
            f"dL/da{k} = {delta} W{k + 1}^T",
            rf"\frac{{\partial L}}{{\partial a^{{({k})}}}} = \frac{{\partial L}}{{\partial {dl}}} W^{{({k + 1})\top}}",
            "back through the weights",
            _times_transposed,
            (W,),
        ),
        StepSpec(
            f"da{k}/dh{k}",
            "da/dh",
            k,
            (f"{rule.source}{k}",),
            f"da{k}/dh{k} = {rule.formula}",
            rf"\frac{{\partial a^{{({k})}}}}{{\partial h^{{({k})}}}} = {rule.latex}",
            f"derivative of {act.name}",
            rule.fn,
        ),
        StepSpec(
            f"dL/dh{k}",
            "dL/dh",
            k,
            (f"dL/da{k}", f"da{k}/dh{k}"),
            f"dL/dh{k} = dL/da{k} * da{k}/dh{k}",
            rf"\frac{{\partial L}}{{\partial h^{{({k})}}}} = \frac{{\partial L}}{{\partial a^{{({k})}}}} \odot \frac{{\partial a^{{({k})}}}}{{\partial h^{{({k})}}}}",
            "back through the activation",
            _times,
        ),
    ]


def step_specs(prob: Problem) -> list[StepSpec]:
    """Every step of the derivation, in the order a student works them."""
    with float64_mode():
        layers = [{k: jnp.asarray(v) for k, v in layer.items()} for layer in prob.params]
        x, y = jnp.asarray(prob.x), jnp.asarray(prob.y)
        return [
            *_forward_specs(prob, layers, x),
            *_output_specs(prob, y),
            *_backward_specs(prob, layers, x),
        ]


def _sizes_of(sizes_or_params) -> tuple[int, ...]:
    """Layer widths from widths (a sequence or 1-D integer array) or from a parameter tree."""
    if isinstance(sizes_or_params, np.ndarray) or (
        isinstance(sizes_or_params, Sequence)
        and sizes_or_params
        and not isinstance(sizes_or_params[0], dict)
    ):
        return check_sizes(
            sizes_or_params.tolist() if isinstance(sizes_or_params, np.ndarray) else sizes_or_params
        )
    params = check_params(sizes_or_params, argname="sizes_or_params")
    return (params[0]["W"].shape[0], *(p["W"].shape[1] for p in params))


def step_names(sizes_or_params, *, loss: str = "bce") -> tuple[str, ...]:
    """The step names of a derivation for a network, in order (see the module docstring).

    Args:
      sizes_or_params: layer widths such as ``(3, 2, 1)``, or a parameter tree.
      loss: the loss the derivation is for (``mse_linear`` has no ``z`` or ``dL/dz``).

    Examples:
      >>> step_names((3, 2, 1))[:6]
      ('h1', 'a1', 'o', 'z', 'loss', 'dL/dz')
    """
    sizes = _sizes_of(sizes_or_params)
    resolve_loss(loss)
    blank = tuple({"W": np.zeros((a, b)), "b": np.zeros(b)} for a, b in itertools.pairwise(sizes))
    prob = Problem(
        params=blank,
        x=np.zeros((1, sizes[0])),
        y=np.zeros((1, sizes[-1])),
        acts=resolve_activations("identity", len(sizes) - 2),
        loss=loss,
    )
    return tuple(s.name for s in step_specs(prob))


def unknown_step(name: str, valid) -> str:
    """The error text for a step name that does not exist, with the closest valid one."""
    valid = list(valid)
    same_case = [v for v in valid if v.lower() == str(name).lower()]
    lowered = {v.lower(): v for v in valid}
    close = same_case or [
        lowered[c]
        for c in difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.4)
    ]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown step {name!r}{hint} Valid steps: {', '.join(valid)}"
