"""Worked solutions, and the checker for a hand derivation of backprop.

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

:func:`check_derivation` reads what a student wrote (rounded, partial) and gives
each entry a verdict: ``correct`` (equal to the exact value within the precision
written), ``rounding`` (not exact, but it follows from the student's own values),
``wrong`` (it does not follow: a root error, with the likely mistake), ``inherited``
(it follows from a wrong value upstream, whose step is named), or ``missing``.

"Follows from the student's own values" means: for upstream values anywhere
between what the student wrote and the exact value (a student may carry more
digits than they write), the step's formula gives a value that rounds to what
they wrote. A wrong upstream value is taken as written, give or take its last digit.

This module knows nothing of training, files, plots or the command line.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._activations import Activation, resolve_activations
from ._losses import resolve_loss
from ._manual import backward
from ._mlp import check_batch
from ._tree import Params, check_params

__all__ = ["DerivationReport", "Explanation", "Step", "check_derivation", "explain", "step_names"]

VERDICTS = ("correct", "rounding", "missing", "inherited", "wrong")  # mildest first


# --------------------------------------------------------------------------- steps


@dataclasses.dataclass(frozen=True)
class _Spec:
    """How a step is computed from the steps before it (what a student would use)."""

    name: str
    kind: str
    layer: int
    inputs: tuple[str, ...]
    formula: str
    latex: str
    what: str
    fn: Callable[..., jax.Array]  # fn(*inputs) -> value, written as a student would


@dataclasses.dataclass(frozen=True)
class _Net:
    params: tuple[dict[str, np.ndarray], ...]
    x: np.ndarray
    y: np.ndarray
    acts: tuple[Activation, ...]
    loss: str

    @property
    def n_layers(self) -> int:
        return len(self.params)

    @property
    def batch(self) -> int:
        return self.x.shape[0]


def _local_derivative(act: Activation) -> tuple[str, str, str, Callable]:
    """(input kind, formula, latex, fn): the derivative as students write it."""
    if act.name == "sigmoid":
        return "a", "a(1 - a)", r"a(1 - a)", lambda a: a * (1 - a)
    if act.name == "tanh":
        return "a", "1 - a^2", r"1 - a^2", lambda a: 1 - a * a
    if act.name == "relu":
        return "h", "1 if h > 0 else 0", r"\mathbb{1}[h > 0]", lambda h: (h > 0).astype(h.dtype)
    return "h", "1", "1", jnp.ones_like


def _specs(net: _Net) -> list[_Spec]:
    L, B = net.n_layers, net.batch
    P = [{k: jnp.asarray(v) for k, v in layer.items()} for layer in net.params]
    y = jnp.asarray(net.y)
    x = jnp.asarray(net.x)
    specs: list[_Spec] = []

    def prev(l):  # the name of a_{l-1}, or None for the input x
        return f"a{l - 1}" if l > 1 else None

    def affine(l):
        W, b = P[l - 1]["W"], P[l - 1]["b"]
        if l == 1:
            return lambda: x @ W + b[None, :]
        return lambda a: a @ W + b[None, :]

    for l in range(1, L):
        act = net.acts[l - 1]
        specs.append(
            _Spec(
                f"h{l}",
                "h",
                l,
                tuple(n for n in [prev(l)] if n),
                f"h{l} = a{l - 1} W{l} + b{l}",
                rf"h^{{({l})}} = a^{{({l - 1})}} W^{{({l})}} + b^{{({l})}}",
                f"pre-activation of hidden layer {l}",
                affine(l),
            )
        )
        specs.append(
            _Spec(
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
        _Spec(
            "o",
            "o",
            L,
            tuple(n for n in [prev(L)] if n),
            f"o = a{L - 1} W{L} + b{L}",
            rf"o = a^{{({L - 1})}} W^{{({L})}} + b^{{({L})}}",
            "output logit",
            affine(L),
        )
    )
    has_z = net.loss != "mse_linear"
    if has_z:
        specs.append(
            _Spec(
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
    if net.loss == "bce":
        specs.append(
            _Spec(
                "loss",
                "loss",
                L,
                ("z",),
                "L = -mean[y log z + (1 - y) log(1 - z)]",
                r"L = -\frac{1}{B}\sum_b \left[y \log z + (1 - y)\log(1 - z)\right]",
                "binary cross-entropy, mean over the batch",
                lambda z: -jnp.sum(y * jnp.log(z) + (1 - y) * jnp.log(1 - z)) / B,
            )
        )
        specs.append(
            _Spec(
                "dL/dz",
                "dL/dz",
                L,
                ("z",),
                "dL/dz = -[y/z - (1 - y)/(1 - z)] / B = (z - y) / (z (1 - z) B)",
                r"\frac{\partial L}{\partial z} = -\frac{1}{B}\left[\frac{y}{z} - \frac{1-y}{1-z}\right] = \frac{z - y}{B\,z(1 - z)}",
                "derivative of the loss with respect to the output probability",
                lambda z: (z - y) / (z * (1 - z)) / B,
            )
        )
        specs.append(
            _Spec(
                "dL/do",
                "dL/do",
                L,
                ("z",),
                "dL/do = dL/dz * z(1 - z) = (z - y) / B",
                r"\frac{\partial L}{\partial o} = \frac{\partial L}{\partial z}\, z(1 - z) = \frac{z - y}{B}",
                "output delta (the division by z(1 - z) cancels on paper)",
                lambda z: (z - y) / B,
            )
        )
    elif net.loss == "mse":
        specs.append(
            _Spec(
                "loss",
                "loss",
                L,
                ("z",),
                "L = mean[(z - y)^2]",
                r"L = \frac{1}{B}\sum_b (z - y)^2",
                "squared error of the output probability, mean over the batch",
                lambda z: jnp.sum((z - y) ** 2) / B,
            )
        )
        specs.append(
            _Spec(
                "dL/dz",
                "dL/dz",
                L,
                ("z",),
                "dL/dz = 2 (z - y) / B",
                r"\frac{\partial L}{\partial z} = \frac{2 (z - y)}{B}",
                "derivative of the loss with respect to the output probability",
                lambda z: 2 * (z - y) / B,
            )
        )
        specs.append(
            _Spec(
                "dL/do",
                "dL/do",
                L,
                ("dL/dz", "z"),
                "dL/do = dL/dz * z(1 - z)",
                r"\frac{\partial L}{\partial o} = \frac{\partial L}{\partial z}\, z(1 - z)",
                "output delta",
                lambda dz, z: dz * z * (1 - z),
            )
        )
    else:
        specs.append(
            _Spec(
                "loss",
                "loss",
                L,
                ("o",),
                "L = mean[(o - y)^2]",
                r"L = \frac{1}{B}\sum_b (o - y)^2",
                "squared error of the logit, mean over the batch",
                lambda o: jnp.sum((o - y) ** 2) / B,
            )
        )
        specs.append(
            _Spec(
                "dL/do",
                "dL/do",
                L,
                ("o",),
                "dL/do = 2 (o - y) / B",
                r"\frac{\partial L}{\partial o} = \frac{2 (o - y)}{B}",
                "output delta",
                lambda o: 2 * (o - y) / B,
            )
        )

    for l in range(L, 0, -1):
        delta = "dL/do" if l == L else f"dL/dh{l}"
        dl = "o" if l == L else f"h^{{({l})}}"
        if l == 1:
            specs.append(
                _Spec(
                    f"dL/dW{l}",
                    "dL/dW",
                    l,
                    (delta,),
                    f"dL/dW{l} = x^T {delta}",
                    rf"\frac{{\partial L}}{{\partial W^{{({l})}}}} = x^\top \frac{{\partial L}}{{\partial {dl}}}",
                    "(current value) x (backward gradient)",
                    lambda d: x.T @ d,
                )
            )
        else:
            specs.append(
                _Spec(
                    f"dL/dW{l}",
                    "dL/dW",
                    l,
                    (f"a{l - 1}", delta),
                    f"dL/dW{l} = a{l - 1}^T {delta}",
                    rf"\frac{{\partial L}}{{\partial W^{{({l})}}}} = a^{{({l - 1})\top}} \frac{{\partial L}}{{\partial {dl}}}",
                    "(current value) x (backward gradient)",
                    lambda a, d: a.T @ d,
                )
            )
        specs.append(
            _Spec(
                f"dL/db{l}",
                "dL/db",
                l,
                (delta,),
                f"dL/db{l} = sum over the batch of {delta}",
                rf"\frac{{\partial L}}{{\partial b^{{({l})}}}} = \sum_b \frac{{\partial L}}{{\partial {dl}}}",
                "the bias input is 1",
                lambda d: jnp.sum(d, axis=0),
            )
        )
        if l > 1:
            k = l - 1
            W = P[l - 1]["W"]
            specs.append(
                _Spec(
                    f"dL/da{k}",
                    "dL/da",
                    k,
                    (delta,),
                    f"dL/da{k} = {delta} W{l}^T",
                    rf"\frac{{\partial L}}{{\partial a^{{({k})}}}} = \frac{{\partial L}}{{\partial {dl}}} W^{{({l})\top}}",
                    "back through the weights",
                    lambda d, W=W: d @ W.T,
                )
            )
            src, formula, latex, fn = _local_derivative(net.acts[k - 1])
            specs.append(
                _Spec(
                    f"da{k}/dh{k}",
                    "da/dh",
                    k,
                    (f"{src}{k}",),
                    f"da{k}/dh{k} = {formula}",
                    rf"\frac{{\partial a^{{({k})}}}}{{\partial h^{{({k})}}}} = {latex}",
                    f"derivative of {net.acts[k - 1].name}",
                    fn,
                )
            )
            specs.append(
                _Spec(
                    f"dL/dh{k}",
                    "dL/dh",
                    k,
                    (f"dL/da{k}", f"da{k}/dh{k}"),
                    f"dL/dh{k} = dL/da{k} * da{k}/dh{k}",
                    rf"\frac{{\partial L}}{{\partial h^{{({k})}}}} = \frac{{\partial L}}{{\partial a^{{({k})}}}} \odot \frac{{\partial a^{{({k})}}}}{{\partial h^{{({k})}}}}",
                    "back through the activation",
                    lambda da, g: da * g,
                )
            )
    return specs


def _exact_values(net: _Net, params: Params, x, y, activation, loss) -> dict[str, np.ndarray]:
    """Every step's value, from the library's forward trace and hand-written backward pass."""
    with jax.enable_x64(True):
        b = backward(params, x, y, activation=activation, loss=loss)
        t = b.trace
        L = net.n_layers
        v: dict[str, Any] = {}
        for l in range(1, L):
            v[f"h{l}"], v[f"a{l}"] = t.h[l - 1], t.a[l - 1]
            act = net.acts[l - 1]
            v[f"da{l}/dh{l}"] = act.grad(t.h[l - 1])
            v[f"dL/da{l}"] = b.da[l - 1]
            v[f"dL/dh{l}"] = b.dh[l - 1]
        v["o"] = t.logits
        v["loss"] = b.loss
        v["dL/do"] = b.dh[-1]
        if loss != "mse_linear":
            v["z"] = t.probs
            z, yy = t.probs, y
            # For display only: the probability form of dL/dz divides by z(1 - z).
            v["dL/dz"] = (
                (z - yy) / (z * (1 - z)) / net.batch if loss == "bce" else 2 * (z - yy) / net.batch
            )
        for l in range(1, L + 1):
            v[f"dL/dW{l}"] = b.grads[l - 1]["W"]
            v[f"dL/db{l}"] = b.grads[l - 1]["b"]
        return {k: np.asarray(a, np.float64) for k, a in v.items()}


def _net(params, x, y, activation, loss) -> tuple[_Net, Params, Any, Any]:
    params = check_params(params)
    spec = resolve_loss(loss)
    with jax.enable_x64(True):
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), params)
        x, y = check_batch(params, x, y, spec)
    acts = resolve_activations(activation, len(params) - 1)
    net = _Net(
        params=tuple({k: np.asarray(v) for k, v in layer.items()} for layer in params),
        x=np.asarray(x),
        y=np.asarray(y),
        acts=acts,
        loss=loss,
    )
    return net, params, x, y


def step_names(sizes_or_params, *, loss: str = "bce") -> tuple[str, ...]:
    """The step names of a derivation for a network, in order (see the module docstring)."""
    L = (
        len(sizes_or_params) - 1
        if all(isinstance(s, int) for s in sizes_or_params)
        else len(sizes_or_params)
    )
    names = []
    for l in range(1, L):
        names += [f"h{l}", f"a{l}"]
    names += ["o"] + (["z"] if loss != "mse_linear" else []) + ["loss"]
    names += ["dL/dz"] if loss != "mse_linear" else []
    names += ["dL/do"]
    for l in range(L, 0, -1):
        names += [f"dL/dW{l}", f"dL/db{l}"]
        if l > 1:
            names += [f"dL/da{l - 1}", f"da{l - 1}/dh{l - 1}", f"dL/dh{l - 1}"]
    return tuple(names)


# --------------------------------------------------------------------------- explain


def _num(v: float) -> str:
    if v == 0:
        return "0"
    s = f"{v:.8g}"
    return s


def _p(v: float) -> str:
    """A number as a factor: (1), (-2), (0.98201379)."""
    return f"({_num(v)})"


def _ix(net: _Net, b: int, j: int) -> str:
    return f"[{j}]" if net.batch == 1 else f"[{b}, {j}]"


_MAX_TERMS = 8
_MAX_LINES = 12


def _substitute(spec: _Spec, net: _Net, v: Mapping[str, np.ndarray]) -> list[str]:
    """The formula with the numbers put in, one line per entry (capped for big layers)."""
    lines: list[str] = []
    B = net.batch
    y = net.y

    def sum_of_products(pairs):
        pairs = list(pairs)
        shown = [f"{_p(a)}{_p(b)}" for a, b in pairs[:_MAX_TERMS]]
        return " + ".join(shown) + (" + ..." if len(pairs) > _MAX_TERMS else "")

    if spec.kind in ("h", "o"):
        l = spec.layer
        W, bias = net.params[l - 1]["W"], net.params[l - 1]["b"]
        a = net.x if l == 1 else v[f"a{l - 1}"]
        val = v[spec.name]
        for bb in range(B):
            for j in range(W.shape[1]):
                terms = sum_of_products((W[i, j], a[bb, i]) for i in range(W.shape[0]))
                lines.append(
                    f"{spec.name}{_ix(net, bb, j)} = {_num(bias[j])} + {terms} = {_num(val[bb, j])}"
                )
    elif spec.kind in ("a", "z"):
        src = v[spec.inputs[0]]
        f = "sigma" if spec.kind == "z" else net.acts[spec.layer - 1].name
        for (bb, j), val in np.ndenumerate(v[spec.name]):
            lines.append(f"{spec.name}{_ix(net, bb, j)} = {f}({_num(src[bb, j])}) = {_num(val)}")
    elif spec.kind == "loss":
        if net.loss == "bce":
            z = v["z"]
            terms = [
                f"{_num(y[bb, j])} log {_num(z[bb, j])} + {_num(1 - y[bb, j])} log {_num(1 - z[bb, j])}"
                for bb in range(B)
                for j in range(z.shape[1])
            ]
        else:
            out = v["z"] if net.loss == "mse" else v["o"]
            terms = [
                f"({_num(out[bb, j])} - {_num(y[bb, j])})^2"
                for bb in range(B)
                for j in range(out.shape[1])
            ]
        body = " + ".join(f"[{t}]" for t in terms[:_MAX_TERMS]) + (
            " + ..." if len(terms) > _MAX_TERMS else ""
        )
        sign = "-" if net.loss == "bce" else ""
        mean = f"(1/{B}) " if B > 1 else ""
        lines.append(f"loss = {sign}{mean}{body} = {_num(float(v['loss']))}")
    elif spec.kind == "dL/dz":
        z = v["z"]
        for (bb, j), val in np.ndenumerate(v[spec.name]):
            bdiv = f" / {B}" if B > 1 else ""
            if net.loss == "bce":
                lines.append(
                    f"dL/dz{_ix(net, bb, j)} = ({_num(z[bb, j])} - {_num(y[bb, j])}) / "
                    f"({_num(z[bb, j])} (1 - {_num(z[bb, j])})){bdiv} = {_num(val)}"
                )
            else:
                lines.append(
                    f"dL/dz{_ix(net, bb, j)} = 2 ({_num(z[bb, j])} - {_num(y[bb, j])}){bdiv} = {_num(val)}"
                )
    elif spec.kind == "dL/do":
        bdiv = f" / {B}" if B > 1 else ""
        for (bb, j), val in np.ndenumerate(v[spec.name]):
            if net.loss == "bce":
                z = v["z"][bb, j]
                rhs = f"({_num(z)} - {_num(y[bb, j])}){bdiv}"
            elif net.loss == "mse":
                z = v["z"][bb, j]
                rhs = f"{_p(v['dL/dz'][bb, j])} {_p(z)}(1 - {_num(z)})"
            else:
                rhs = f"2 ({_num(v['o'][bb, j])} - {_num(y[bb, j])}){bdiv}"
            lines.append(f"dL/do{_ix(net, bb, j)} = {rhs} = {_num(val)}")
    elif spec.kind == "dL/dW":
        l = spec.layer
        a = net.x if l == 1 else v[f"a{l - 1}"]
        d = v[spec.inputs[-1]]
        for (i, j), val in np.ndenumerate(v[spec.name]):
            terms = sum_of_products((a[bb, i], d[bb, j]) for bb in range(B))
            lines.append(f"{spec.name}[{i}, {j}] = {terms} = {_num(val)}")
        lines.append("  (current value) x (backward gradient)")
    elif spec.kind == "dL/db":
        d = v[spec.inputs[0]]
        for j, val in enumerate(v[spec.name]):
            terms = " + ".join(f"(1){_p(d[bb, j])}" for bb in range(min(B, _MAX_TERMS)))
            lines.append(
                f"{spec.name}[{j}] = {terms}{' + ...' if B > _MAX_TERMS else ''} = {_num(val)}"
            )
    elif spec.kind == "dL/da":
        W = net.params[spec.layer]["W"]
        d = v[spec.inputs[0]]
        for (bb, i), val in np.ndenumerate(v[spec.name]):
            terms = sum_of_products((W[i, j], d[bb, j]) for j in range(W.shape[1]))
            lines.append(f"{spec.name}{_ix(net, bb, i)} = {terms} = {_num(val)}")
    elif spec.kind == "da/dh":
        src = v[spec.inputs[0]]
        act = net.acts[spec.layer - 1].name
        for (bb, j), val in np.ndenumerate(v[spec.name]):
            s = _num(src[bb, j])
            rhs = {
                "sigmoid": f"{s}(1 - {s})",
                "tanh": f"1 - ({s})^2",
                "relu": f"[{s} > 0]",
                "identity": "1",
            }[act]
            lines.append(f"{spec.name}{_ix(net, bb, j)} = {rhs} = {_num(val)}")
    elif spec.kind == "dL/dh":
        da, g = v[spec.inputs[0]], v[spec.inputs[1]]
        for (bb, j), val in np.ndenumerate(v[spec.name]):
            lines.append(
                f"{spec.name}{_ix(net, bb, j)} = {_p(da[bb, j])}{_p(g[bb, j])} = {_num(val)}"
            )
    if len(lines) > _MAX_LINES:
        lines = [*lines[: _MAX_LINES - 1], f"... ({len(lines) - _MAX_LINES + 1} more entries)"]
    return lines


def _latexify(line: str) -> str:
    """A substituted line in LaTeX: dL/dW2[0, 0] -> \\frac{\\partial L}{\\partial W^{(2)}_{0,0}}, etc."""

    def sub(idx):
        return f"_{{{idx.replace(' ', '')}}}" if idx else ""

    out = re.sub(
        r"da(\d+)/dh(\d+)(?:\[([^\]]*)\])?",
        lambda m: rf"\frac{{\partial a^{{({m[1]})}}}}{{\partial h^{{({m[2]})}}}}{sub(m[3])}",
        line,
    )
    out = re.sub(
        r"dL/d([A-Za-z])(\d*)(?:\[([^\]]*)\])?",
        lambda m: (
            rf"\frac{{\partial L}}{{\partial {m[1]}{f'^{{({m[2]})}}' if m[2] else ''}{sub(m[3])}}}"
        ),
        out,
    )
    out = re.sub(
        r"(?<![\\\w])([haWb])(\d+)\[([^\]]*)\]", lambda m: f"{m[1]}^{{({m[2]})}}{sub(m[3])}", out
    )
    out = re.sub(r"(?<![\\\w])([oz])\[([^\]]*)\]", lambda m: f"{m[1]}{sub(m[2])}", out)
    for word, tex in (
        ("sigmoid", r"\sigma"),
        ("sigma", r"\sigma"),
        ("tanh", r"\tanh"),
        ("log", r"\log"),
        ("relu", r"\mathrm{relu}"),
        ("identity", r"\mathrm{id}"),
    ):
        out = re.sub(rf"(?<!\\)\b{word}\b", lambda m, tex=tex: tex, out)
    out = re.sub(r"^loss\b", "L", out)
    return out.replace("...", r"\dots").replace(" x ", r" \times ").replace("^T", r"^\top")


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of a worked solution."""

    name: str
    what: str
    formula: str
    latex: str
    substituted: tuple[str, ...]
    value: np.ndarray
    inputs: tuple[str, ...]
    part: str  # "forward" or "backward"


@dataclasses.dataclass(frozen=True)
class Explanation:
    """A worked solution: the forward and backward pass, step by step.

    ``str()`` (or :meth:`to_text`) is for a terminal, :meth:`to_markdown` for GitHub
    or Jupyter (LaTeX), :meth:`to_json` for programs. ``values`` maps step names to
    exact (float64) values.
    """

    steps: tuple[Step, ...]
    sizes: tuple[int, ...]
    activation: tuple[str, ...]
    loss: str
    batch: int

    @property
    def values(self) -> dict[str, np.ndarray]:
        return {s.name: s.value for s in self.steps}

    def __getitem__(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(_unknown_step(name, [s.name for s in self.steps]))

    def _header(self) -> str:
        acts = ", ".join(self.activation) if self.activation else "none"
        return (
            f"network {'-'.join(map(str, self.sizes))}, hidden activation(s): {acts}, loss: {self.loss}, "
            f"batch of {self.batch}" + (" (the loss is the batch mean)" if self.batch > 1 else "")
        )

    def to_text(self) -> str:
        out = ["Worked solution: " + self._header(), ""]
        for part in ("forward", "backward"):
            out += [f"{part.capitalize()} pass", "-" * (len(part) + 5)]
            for s in (s for s in self.steps if s.part == part):
                out.append(f"{s.name}: {s.what}")
                out.append(f"    {s.formula}")
                out += [f"    {line}" for line in s.substituted]
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    __str__ = to_text

    def to_markdown(self) -> str:
        out = ["# Worked solution", "", self._header(), ""]
        for part in ("forward", "backward"):
            out += [f"## {part.capitalize()} pass", ""]
            for s in (s for s in self.steps if s.part == part):
                out += [f"**`{s.name}`**: {s.what}", "", f"$$ {s.latex} $$", ""]
                out += [
                    f"- ${_latexify(line.strip())}$"
                    if not line.startswith("  (")
                    else f"- {line.strip()}"
                    for line in s.substituted
                ]
                out.append("")
        return "\n".join(out)

    def to_json(self, indent: int | None = 2) -> str:
        doc = {
            "network": {
                "sizes": list(self.sizes),
                "activation": list(self.activation),
                "loss": self.loss,
                "batch": self.batch,
            },
            "steps": [
                {
                    "name": s.name,
                    "what": s.what,
                    "formula": s.formula,
                    "latex": s.latex,
                    "substituted": list(s.substituted),
                    "inputs": list(s.inputs),
                    "shape": list(s.value.shape),
                    "value": s.value.tolist(),
                }
                for s in self.steps
            ],
        }
        return json.dumps(doc, indent=indent)


_FORWARD_KINDS = ("h", "a", "o", "z", "loss")


def explain(params: Params, x, y, *, activation="sigmoid", loss: str = "bce") -> Explanation:
    """The worked solution for a network and a batch: every step, its formula, the numbers put in.

    Values are exact (float64) and equal to :func:`manual_grad`'s. Step names follow
    the scheme in the module docstring (``h1``, ``a1``, ``o``, ``z``, ``loss``,
    ``dL/do``, ``dL/dW2``, ...).

    >>> from jaxbp import seed_exercise
    >>> ex = seed_exercise()
    >>> sol = explain(ex.params, ex.x, ex.y)
    >>> print(sol["h1"].substituted[0])
    h1[0] = 1 + (1)(1) + (-2)(2) + (3)(2) = 4
    >>> print(sol["dL/dW2"].substituted[0])
    dL/dW2[0, 0] = (0.98201379)(-0.4747174) = -0.46617904
    """
    net, params, x, y = _net(params, x, y, activation, loss)
    values = _exact_values(net, params, x, y, activation, loss)
    with jax.enable_x64(True):
        specs = _specs(net)
    steps = tuple(
        Step(
            name=s.name,
            what=s.what,
            formula=s.formula,
            latex=s.latex,
            substituted=tuple(_substitute(s, net, values)),
            value=values[s.name],
            inputs=s.inputs,
            part="forward" if s.kind in _FORWARD_KINDS else "backward",
        )
        for s in specs
    )
    sizes = (net.params[0]["W"].shape[0], *(p["W"].shape[1] for p in net.params))
    return Explanation(
        steps=steps,
        sizes=sizes,
        activation=tuple(a.name for a in net.acts),
        loss=loss,
        batch=net.batch,
    )


# --------------------------------------------------------------------------- check


def _unknown_step(name: str, valid) -> str:
    valid = list(valid)
    same_case = [v for v in valid if v.lower() == str(name).lower()]
    lowered = {v.lower(): v for v in valid}
    close = same_case or [
        lowered[c]
        for c in difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.4)
    ]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown step {name!r}{hint} Valid steps: {', '.join(valid)}"


def _half_ulp(d: Decimal) -> float:
    """Half a unit in the last written place: 0.1 -> 0.05, -0.0094 -> 0.00005, 4 -> 0.5."""
    return 0.5 * 10.0 ** d.as_tuple().exponent


def _as_decimal(v, where: str) -> Decimal | None:
    if v is None:
        return None
    if isinstance(v, bool):
        raise TypeError(f"{where} must be a number; got {v!r}")
    if isinstance(v, Decimal):
        d = v
    elif isinstance(v, (int, np.integer)):
        d = Decimal(int(v))
    elif isinstance(v, (float, np.floating)):
        # repr gives the shortest digits that round-trip: what the student wrote.
        d = Decimal(repr(float(v)))
    elif isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            raise TypeError(f"{where} must be a number; got the string {v!r}") from None
    else:
        raise TypeError(f"{where} must be a number; got {type(v).__name__} {v!r}"[:200])
    if not d.is_finite():
        raise ValueError(f"{where} must be finite; got {v!r}")
    return d


def _flatten_claim(value, where: str) -> list:
    if isinstance(value, np.ndarray):
        return [*value.reshape(-1).tolist()] if value.dtype != object else list(value.reshape(-1))
    if isinstance(value, (list, tuple)):
        out = []
        for i, v in enumerate(value):
            out += _flatten_claim(v, f"{where}[{i}]")
        return out
    return [value]


def _read_claim(name: str, value, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(values, half-ulps) in the step's shape; NaN where an entry is None (not written)."""
    flat = _flatten_claim(value, f"claimed[{name!r}]")
    size = int(np.prod(shape)) if shape else 1
    if len(flat) != size:
        raise ValueError(
            f"claimed[{name!r}] must have {size} entr{'y' if size == 1 else 'ies'} (shape {shape}, read row by "
            f"row); got {len(flat)}"
        )
    vals, hus = np.full(size, np.nan), np.full(size, np.nan)
    for i, v in enumerate(flat):
        d = _as_decimal(v, f"claimed[{name!r}]" + (f" entry {i}" if size > 1 else ""))
        if d is not None:
            vals[i], hus[i] = float(d), _half_ulp(d)
    return vals.reshape(shape), hus.reshape(shape)


@dataclasses.dataclass(frozen=True)
class DerivationReport:
    """What :func:`check_derivation` found, step by step and entry by entry.

    Attributes:
      verdicts: step name -> the worst verdict of its entries (``missing`` if not claimed).
      entry_verdicts: step name -> array of per-entry verdicts, in the step's shape.
      expected: step name -> the exact value.
      claimed: step name -> what was claimed (NaN where not written).
      own: step name -> the value the student's own upstream values give.
      diagnoses: step name -> array of per-entry explanations ("" where none is needed).
      roots: step name -> array of the root step names of inherited errors.
    """

    names: tuple[str, ...]
    batch_steps: frozenset[str]  # steps with a leading batch axis
    batch: int
    verdicts: dict[str, str]
    entry_verdicts: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    claimed: dict[str, np.ndarray]
    own: dict[str, np.ndarray]
    diagnoses: dict[str, np.ndarray]
    roots: dict[str, np.ndarray]

    @property
    def ok(self) -> bool:
        """True when no step is wrong or inherits an error."""
        return not any(v in ("wrong", "inherited") for v in self.verdicts.values())

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if self.verdicts[n] == "missing")

    @property
    def wrong(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if self.verdicts[n] == "wrong")

    def counts(self) -> dict[str, int]:
        return {v: sum(1 for n in self.names if self.verdicts[n] == v) for v in VERDICTS}

    def rows(self) -> list[dict[str, Any]]:
        """One row per claimed entry (and one per missing step), for tables and JSON."""
        out = []
        for n in self.names:
            if self.verdicts[n] == "missing" and np.all(np.isnan(self.claimed[n])):
                out.append(
                    {
                        "step": n,
                        "entry": "",
                        "verdict": "missing",
                        "claimed": None,
                        "expected": _fmt_value(self.expected[n]),
                        "from_your_values": None,
                        "note": "",
                    }
                )
                continue
            for idx, verdict in np.ndenumerate(self.entry_verdicts[n]):
                shown = idx[1:] if (n in self.batch_steps and self.batch == 1) else idx
                entry = "" if self.entry_verdicts[n].size == 1 else str(list(shown))
                c = self.claimed[n][idx]
                out.append(
                    {
                        "step": n,
                        "entry": entry,
                        "verdict": str(verdict),
                        "claimed": None if np.isnan(c) else float(c),
                        "expected": float(self.expected[n][idx]),
                        "from_your_values": float(self.own[n][idx]),
                        "note": str(self.diagnoses[n][idx]),
                    }
                )
        return out

    def __str__(self) -> str:
        rows = self.rows()
        header = ["step", "entry", "verdict", "claimed", "exact", "from your values", "note"]
        table = [
            [
                r["step"],
                r["entry"],
                r["verdict"],
                "" if r["claimed"] is None else f"{r['claimed']:.6g}",
                r["expected"] if isinstance(r["expected"], str) else f"{r['expected']:.6g}",
                "" if r["from_your_values"] is None else f"{r['from_your_values']:.6g}",
                r["note"],
            ]
            for r in rows
        ]
        widths = [max(len(str(x[i])) for x in [header, *table]) for i in range(len(header) - 1)]
        fmt = lambda row: (
            "  ".join(str(v).ljust(w) for v, w in zip(row[:-1], widths))
            + ("  " + row[-1] if row[-1] else "")
        )
        counts = self.counts()
        summary = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
        lines = [
            fmt(header).rstrip(),
            "  ".join("-" * w for w in widths),
            *(fmt(r).rstrip() for r in table),
            "",
            f"steps: {summary}. "
            + ("No errors." if self.ok else f"Root errors: {', '.join(self.wrong) or 'none'}."),
        ]
        return "\n".join(lines)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(
            {"ok": self.ok, "verdicts": self.verdicts, "rows": self.rows()}, indent=indent
        )


def _fmt_value(v: np.ndarray) -> str:
    return np.array2string(np.asarray(v), precision=6, separator=", ").replace("\n", "")


def _slack(*vals) -> float:
    """Room for float64 rounding when comparing decimals with computed values."""
    return 1e-12 * max([1.0] + [float(np.max(np.abs(v))) for v in vals if np.size(v)])


def _propagate(fn, mids, rads):
    """Value at the midpoints and a first-order bound on its spread over the boxes."""
    with jax.enable_x64(True):
        mids = [jnp.asarray(m, jnp.float64) for m in mids]
        center = np.asarray(fn(*mids), np.float64)
        if not mids:
            return center, np.zeros_like(center), []
        jac = jax.jacfwd(fn, argnums=tuple(range(len(mids))))(*mids)
    rad = np.zeros_like(center)
    deps = []
    for J, r in zip(jac, rads):
        J = np.abs(np.asarray(J, np.float64)).reshape(center.size, -1)
        rad = rad + (J @ np.asarray(r).reshape(-1)).reshape(center.shape)
        deps.append(J > 0)
    return center, rad, deps


def _alternatives(
    spec: _Spec, net: _Net, written: Mapping[str, np.ndarray], exact: Mapping[str, np.ndarray]
):
    """Likely mistakes for a step: (description, value computed that mistaken way).

    Each is computed from the student's written values and from the exact ones.
    """
    B = net.batch
    y = net.y
    out: list[tuple[str, np.ndarray]] = []
    for v in (written, exact):

        def get(n, v=v):
            return net.x if n == "x" else v[n]

        if spec.kind in ("h", "o"):
            l = spec.layer
            a = net.x if l == 1 else get(f"a{l - 1}")
            out.append(
                (
                    "the bias was left out (the bias input 1 was forgotten)",
                    a @ net.params[l - 1]["W"],
                )
            )
        elif spec.kind in ("a", "z"):
            out.append(
                (
                    "the activation was not applied (the pre-activation itself was used)",
                    get(spec.inputs[0]),
                )
            )
        elif spec.kind == "da/dh":
            src = get(spec.inputs[0])
            act = net.acts[spec.layer - 1].name
            if act == "sigmoid":
                h = get(f"h{spec.layer}")
                out.append(
                    (
                        "h(1 - h) was used: the derivative a(1 - a) takes the activation a, not h",
                        h * (1 - h),
                    )
                )
                out.append(
                    ("the activation a itself was used instead of its derivative a(1 - a)", src)
                )
            if act == "tanh":
                out.append(("1 - a was used instead of 1 - a^2", 1 - src))
        elif spec.kind == "dL/dz":
            z = get("z")
            out.append(
                ("the derivative was written without the minus sign", -(z - y) / (z * (1 - z)) / B)
            )
        elif spec.kind == "dL/do":
            z = get("z") if net.loss != "mse_linear" else None
            if z is not None:
                out.append(("z was used where z - y belongs", z / B))
            if net.loss == "bce":
                out.append(
                    ("dL/dz was not multiplied by dz/do = z(1 - z)", (z - y) / (z * (1 - z)) / B)
                )
            if B > 1:
                out.append(
                    (
                        f"the mean over the batch was left out (no division by {B})",
                        exact["dL/do"] * B,
                    )
                )
        elif spec.kind in ("dL/dW", "dL/db"):
            d = get(spec.inputs[-1])
            if spec.kind == "dL/dW":
                l = spec.layer
                a = net.x if l == 1 else get(f"a{l - 1}")
                out.append(
                    (
                        "the current value (the input of the weight) was left out: this is the backward "
                        "gradient alone",
                        np.broadcast_to(np.sum(d, axis=0)[None, :], (a.shape[1], d.shape[1])),
                    )
                )
                out.append(
                    (
                        "the backward gradient was left out: this is the current value alone",
                        np.broadcast_to(np.sum(a, axis=0)[:, None], (a.shape[1], d.shape[1])),
                    )
                )
                if l < net.n_layers:
                    da = get(f"dL/da{l}")
                    out.append(
                        (
                            f"dL/da{l} was used where dL/dh{l} belongs (the activation derivative was left out)",
                            a.T @ da,
                        )
                    )
            else:
                out.append(
                    (
                        "the bias gradient was set to 0 (the bias input is 1, not 0)",
                        np.zeros_like(d[0]),
                    )
                )
        elif spec.kind == "dL/da":
            l = spec.layer + 1
            dW = get(f"dL/dW{l}")
            d = get(spec.inputs[0])
            out.append(
                (
                    f"a weight gradient (dL/dW{l}) was used in place of the weight times the backward "
                    f"gradient (W{l} x {spec.inputs[0]})",
                    np.broadcast_to(np.sum(dW, axis=1)[None, :], d.shape[:1] + dW.shape[:1]),
                )
            )
            out.append(
                (
                    f"the weight W{l} was left out (the backward gradient alone)",
                    np.broadcast_to(np.sum(d, axis=1)[:, None], (d.shape[0], dW.shape[0])),
                )
            )
        elif spec.kind == "dL/dh":
            k = spec.layer
            da = get(f"dL/da{k}")
            out.append((f"the activation derivative da{k}/dh{k} was left out", da))
            out.append(
                (f"the activation a{k} was used in place of its derivative", da * get(f"a{k}"))
            )
        elif spec.kind == "loss" and net.loss == "bce":
            z = get("z")
            bce = -np.sum(y * np.log(z) + (1 - y) * np.log(1 - z)) / B
            out.append(("log base 10 was used instead of the natural log", bce / math.log(10)))
            out.append(("the minus sign was left out", -bce))
    return out


def _diagnose(spec, idx, c, hu, exact, own, alternatives) -> str:
    tol = hu * (1 + 1e-9) + _slack(c)
    for text, alt in alternatives:
        alt = np.asarray(alt, np.float64)
        if alt.shape == own.shape and abs(alt[idx] - c) <= tol:
            return f"likely: {text} (that gives {alt[idx]:.6g})"
    if abs(-own[idx] - c) <= tol and own[idx] != 0:
        return f"likely: the sign is flipped (your values give {own[idx]:.6g})"
    for other, val in np.ndenumerate(own):
        if other != idx and abs(val - c) <= tol and val != own[idx]:
            return f"likely: a swapped or transposed index: that is entry {list(other)}'s value ({val:.6g})"
    inputs = ", ".join(f"{n}" for n in spec.inputs) or "the network's inputs"
    return f"does not follow from your values ({inputs}): they give {own[idx]:.6g}; exact {exact[spec.name][idx]:.6g}"


def check_derivation(
    params: Params, x, y, claimed: Mapping[str, Any], *, activation="sigmoid", loss: str = "bce"
) -> DerivationReport:
    """Grade a hand derivation, step by step and entry by entry.

    Args:
      params, x, y, activation, loss: the network and batch the derivation is about.
      claimed: step name -> number or nested list, as the student wrote it
        (see :func:`step_names`; ``None`` for an entry not written). Precision is
        read from the digits written: ``0.52`` is taken as ``0.52 +- 0.005``. Use
        strings or ``decimal.Decimal`` to keep trailing zeros (``"0.50"``).

    Returns:
      :class:`DerivationReport` (``.verdicts``, ``.entry_verdicts``, ``.ok``; ``print`` it).

    >>> from jaxbp import seed_exercise
    >>> ex = seed_exercise()
    >>> report = check_derivation(ex.params, ex.x, ex.y, {"h1": [4, -2], "a1": [0.98, 0.12], "z": 0.52})
    >>> report.verdicts["a1"], report.verdicts["z"], report.verdicts["o"]
    ('correct', 'rounding', 'missing')
    """
    if not isinstance(claimed, Mapping):
        raise TypeError(
            f"claimed must be a mapping of step names to values; got {type(claimed).__name__}"
        )
    net, params, x, y = _net(params, x, y, activation, loss)
    with jax.enable_x64(True):
        specs = _specs(net)
    names = tuple(s.name for s in specs)
    for name in claimed:
        if name not in names:
            raise ValueError(_unknown_step(name, names))
    exact = _exact_values(net, params, x, y, activation, loss)

    mid: dict[str, np.ndarray] = {}  # the box of values the student may carry: mid +- rad
    rad: dict[str, np.ndarray] = {}
    written: dict[str, np.ndarray] = {}  # what was written, or computed from what was written
    root: dict[str, np.ndarray] = {}  # per entry: frozenset of root step names
    out = {k: {} for k in ("verdicts", "entry_verdicts", "claimed", "own", "diagnoses", "roots")}
    for spec in specs:
        E = exact[spec.name]
        center, own_rad, deps = _propagate(
            spec.fn, [mid[n] for n in spec.inputs], [rad[n] for n in spec.inputs]
        )
        own, _, _ = _propagate(spec.fn, [written[n] for n in spec.inputs], [])
        # The roots of wrong values upstream that each entry depends on.
        up_roots = np.empty(E.shape, object)
        for idx in np.ndindex(E.shape):
            found = frozenset()
            for n, dep in zip(spec.inputs, deps):
                row = dep[np.ravel_multi_index(idx, E.shape) if E.shape else 0]
                for k in np.flatnonzero(row):
                    found |= root[n].reshape(-1)[k]
            up_roots[idx] = found
        if spec.name in claimed:
            C, HU = _read_claim(spec.name, claimed[spec.name], E.shape)
        else:
            C, HU = np.full(E.shape, np.nan), np.full(E.shape, np.nan)
        verdicts = np.empty(E.shape, object)
        notes = np.full(E.shape, "", object)
        roots = np.empty(E.shape, object)
        m, r = np.array(center, np.float64), np.array(own_rad, np.float64)
        alternatives = None
        for idx in np.ndindex(E.shape):
            c, hu = C[idx], HU[idx]
            if np.isnan(c):
                verdicts[idx], roots[idx] = "missing", up_roots[idx]
                continue
            tol = hu * (1 + 1e-9) + _slack(c, E[idx], own[idx])
            # Within the box of values the student may carry, or exactly what the written values give.
            follows = (
                max(abs(c - center[idx]) - own_rad[idx], 0.0) <= tol or abs(c - own[idx]) <= tol
            )
            if abs(c - E[idx]) <= tol:
                verdicts[idx], roots[idx] = "correct", frozenset()
            elif follows and up_roots[idx]:
                verdicts[idx], roots[idx] = "inherited", up_roots[idx]
                notes[idx] = (
                    f"follows from the error in {', '.join(sorted(up_roots[idx], key=names.index))}"
                )
            elif follows:
                verdicts[idx], roots[idx] = "rounding", frozenset()
                notes[idx] = f"follows from your rounded values (exact {E[idx]:.6g})"
            else:
                verdicts[idx], roots[idx] = "wrong", frozenset([spec.name])
                if alternatives is None:
                    alternatives = _alternatives(spec, net, written, exact)
                notes[idx] = _diagnose(spec, idx, c, hu, exact, own, alternatives)
            # What the student carries forward: for right-ish values, anywhere between what
            # was written and the exact value; for wrong ones, what was written.
            if verdicts[idx] in ("correct", "rounding"):
                m[idx], r[idx] = (c + E[idx]) / 2, abs(c - E[idx]) / 2
            else:
                m[idx], r[idx] = c, hu
        mid[spec.name], rad[spec.name], root[spec.name] = m, r, roots
        written[spec.name] = np.where(np.isnan(C), own, C)
        claimed_any = not np.all(np.isnan(C))
        present = [v for v in verdicts.reshape(-1) if v != "missing"] or ["missing"]
        out["verdicts"][spec.name] = max(present, key=VERDICTS.index) if claimed_any else "missing"
        out["entry_verdicts"][spec.name] = verdicts.astype(str)
        out["claimed"][spec.name] = C
        out["own"][spec.name] = own
        out["diagnoses"][spec.name] = notes.astype(str)
        out["roots"][spec.name] = np.vectorize(lambda s: ", ".join(sorted(s)), otypes=[object])(
            roots
        ).astype(str)
    batch_steps = frozenset(s.name for s in specs if s.kind not in ("dL/dW", "dL/db", "loss"))
    return DerivationReport(
        names=names, batch_steps=batch_steps, batch=net.batch, expected=exact, **out
    )
