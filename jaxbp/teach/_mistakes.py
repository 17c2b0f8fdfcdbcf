"""Likely mistakes: what a wrong entry of a hand derivation most probably came from.

One function per kind of step computes the values that classic mistakes give
(the bias left out, h(1 - h) for a(1 - a), the input of a weight left out, ...),
from the student's values and from the exact ones; ``diagnose`` names the first
that gives what was written, else a flipped sign or a swapped index, else says
what the student's own values give. Used by ``_grading``.
"""

from __future__ import annotations

import math

import numpy as np

from ..nn._losses import resolve_loss
from ._claims import fmt_distinct, round_sig, slack
from ._steps import Problem, StepSpec

__all__ = ["alternatives", "diagnose", "named_mistake"]


# One function per kind of step: (description, value computed that mistaken way), from
# the student's values through ``get``; ``exact`` holds the exact values.


def _alt_affine(spec, prob, get, exact):
    a = prob.x if spec.layer == 1 else get(f"a{spec.layer - 1}")
    W = prob.params[spec.layer - 1]["W"]
    return [("the bias was left out (the bias input 1 was forgotten)", a @ W)]


def _alt_activation(spec, prob, get, exact):
    return [
        ("the activation was not applied (the pre-activation itself was used)", get(spec.inputs[0]))
    ]


def _alt_local(spec, prob, get, exact):
    src = get(spec.inputs[0])
    act = prob.acts[spec.layer - 1].name
    if act == "sigmoid":
        h = get(f"h{spec.layer}")
        return [
            (
                "h(1 - h) was used: the derivative a(1 - a) takes the activation a, not h",
                h * (1 - h),
            ),
            ("the activation a itself was used instead of its derivative a(1 - a)", src),
        ]
    if act == "tanh":
        return [("1 - a was used instead of 1 - a^2", 1 - src)]
    return []


def _other_convention(prob: Problem, exact, name):
    """For squared errors: the value in the other convention, by name (a factor 2)."""
    c = resolve_loss(prob.loss).squared
    if c is None:
        return []
    other = {"mse": "half_mse", "half_mse": "mse", "mse_linear": "half_mse_linear"}.get(
        prob.loss, "mse_linear"
    )
    what = "1/2 (out - y)^2" if c == 1.0 else "(out - y)^2 without the 1/2"
    return [
        (
            f"the other convention for the squared error, {what} (loss {other!r}): a factor 2",
            exact[name] * (0.5 if c == 1.0 else 2.0),
        )
    ]


def _alt_dz(spec, prob, get, exact):
    z, y, B = get("z"), prob.y, prob.batch
    if prob.loss != "bce":
        return _other_convention(prob, exact, "dL/dz")
    return [("the derivative was written without the minus sign", -(z - y) / (z * (1 - z)) / B)]


def _softmax_mistakes(o, y, B) -> list[tuple[str, np.ndarray]]:
    """What students write for dL/do of the softmax cross-entropy instead of z - onehot(y)."""
    e = np.exp(o - o.max(axis=1, keepdims=True))
    z = e / e.sum(axis=1, keepdims=True)
    others = e / (e.sum(axis=1, keepdims=True) - e)
    return [
        ("a sigmoid per output was used in place of the softmax", (1 / (1 + np.exp(-o)) - y) / B),
        ("the softmax's denominator left out the class's own term", (others - y) / B),
        ("the one-hot label was put at the wrong class", (z - np.roll(y, 1, axis=1)) / B),
        ("the sign is flipped (onehot(y) - z)", (y - z) / B),
    ]


def _alt_do(spec, prob, get, exact):
    y, B = prob.y, prob.batch
    if resolve_loss(prob.loss).classes:
        return _softmax_mistakes(np.asarray(get("o"), np.float64), y, B)
    out = _other_convention(prob, exact, "dL/do")
    if resolve_loss(prob.loss).uses_probability:
        z = get("z")
        out.append(("z was used where z - y belongs", z / B))
        if prob.loss == "bce":
            out.append(
                ("dL/dz was not multiplied by dz/do = z(1 - z)", (z - y) / (z * (1 - z)) / B)
            )
    if B > 1:
        out.append(
            (f"the mean over the batch was left out (no division by {B})", exact["dL/do"] * B)
        )
    return out


def _alt_dW(spec, prob, get, exact):
    l = spec.layer
    d = get(spec.inputs[-1])
    a = prob.x if l == 1 else get(f"a{l - 1}")
    shape = (a.shape[1], d.shape[1])
    out = [
        (
            "the current value (the input of the weight) was left out: this is the backward "
            "gradient alone",
            np.broadcast_to(np.sum(d, axis=0)[None, :], shape),
        ),
        (
            "the backward gradient was left out: this is the current value alone",
            np.broadcast_to(np.sum(a, axis=0)[:, None], shape),
        ),
    ]
    if l < prob.n_layers:
        out.append(
            (
                f"dL/da{l} was used where dL/dh{l} belongs (the activation derivative was left out)",
                a.T @ get(f"dL/da{l}"),
            )
        )
    return out


def _alt_db(spec, prob, get, exact):
    d = get(spec.inputs[-1])
    return [("the bias gradient was set to 0 (the bias input is 1, not 0)", np.zeros_like(d[0]))]


def _alt_da(spec, prob, get, exact):
    l = spec.layer + 1
    dW, d = get(f"dL/dW{l}"), get(spec.inputs[0])
    return [
        (
            f"a weight gradient (dL/dW{l}) was used in place of the weight times the backward "
            f"gradient (W{l} x {spec.inputs[0]})",
            np.broadcast_to(np.sum(dW, axis=1)[None, :], d.shape[:1] + dW.shape[:1]),
        ),
        (
            f"the weight W{l} was left out (the backward gradient alone)",
            np.broadcast_to(np.sum(d, axis=1)[:, None], (d.shape[0], dW.shape[0])),
        ),
    ]


def _alt_dh(spec, prob, get, exact):
    k = spec.layer
    da = get(f"dL/da{k}")
    return [
        (f"the activation derivative da{k}/dh{k} was left out", da),
        (f"the activation a{k} was used in place of its derivative", da * get(f"a{k}")),
    ]


def _alt_loss(spec, prob, get, exact):
    if prob.loss != "bce":
        return _other_convention(prob, exact, "loss")
    z, y, B = get("z"), prob.y, prob.batch
    bce = -np.sum(y * np.log(z) + (1 - y) * np.log(1 - z)) / B
    return [
        ("log base 10 was used instead of the natural log", bce / math.log(10)),
        ("the minus sign was left out", -bce),
    ]


_ALTERNATIVES = {
    "h": _alt_affine,
    "o": _alt_affine,
    "a": _alt_activation,
    "z": _alt_activation,
    "da/dh": _alt_local,
    "dL/dz": _alt_dz,
    "dL/do": _alt_do,
    "dL/dW": _alt_dW,
    "dL/db": _alt_db,
    "dL/da": _alt_da,
    "dL/dh": _alt_dh,
    "loss": _alt_loss,
}


def alternatives(spec: StepSpec, prob: Problem, written, exact):
    """Likely mistakes for a step, each computed from the student's written values and
    from the exact ones."""
    out: list[tuple[str, np.ndarray]] = []
    # Also from the written values as carried to 3 figures: a student may write 7 and carry 3.
    carried3 = {n: round_sig(v, 3) for n, v in written.items()}
    for v in (written, exact, carried3):
        out += _ALTERNATIVES[spec.kind](spec, prob, lambda n, v=v: v[n], exact)
    return out


def named_mistake(idx, c, tol, own, alternatives) -> str | None:
    """The first named mistake that gives what was written, within ``tol``."""
    for text, alt in alternatives:
        alt = np.asarray(alt, np.float64)
        if alt.shape == own.shape and abs(alt[idx] - c) <= tol:
            return f"likely: {text} (that gives {fmt_distinct(alt[idx], c)})"
    return None


def diagnose(spec, idx, c, hu, exact, own, alternatives) -> str:
    # A likely mistake needs to match to about 3 significant figures, not to every digit
    # written: a student who writes 7 figures may carry 3.
    tol = max(hu * (1 + 1e-9), 5e-4 * abs(c)) + slack(c)
    named = named_mistake(idx, c, tol, own, alternatives)
    if named:
        return named
    if abs(-own[idx] - c) <= tol and own[idx] != 0:
        return f"likely: the sign is flipped (your values give {fmt_distinct(own[idx], c)})"
    for other, val in np.ndenumerate(own):
        if other != idx and abs(val - c) <= tol and val != own[idx]:
            return (
                f"likely: a swapped or transposed index: that is entry {list(other)}'s value "
                f"({fmt_distinct(val, c)})"
            )
    inputs = ", ".join(f"{n}" for n in spec.inputs) or "the network's inputs"
    E = exact[spec.name][idx]
    return (
        f"does not follow from your values ({inputs}): they give {fmt_distinct(own[idx], c, E)}; "
        f"exact {fmt_distinct(E, c, own[idx])}"
    )
