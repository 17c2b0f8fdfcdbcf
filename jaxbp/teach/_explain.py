"""Worked solutions: every step of a derivation with its formula and the numbers put in.

[`explain`][jaxbp.teach.explain] turns a network and a batch into an [`Explanation`][jaxbp.teach.Explanation], printable
as text (a terminal), Markdown with LaTeX (GitHub, Jupyter) or JSON (programs).
Step names and formulas come from the step model (``_steps``); the numbers are
exact (float64) and equal to [`jaxbp.manual_grad`][jaxbp.grads.manual_grad]'s.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping

import numpy as np

from ..nn._losses import resolve_loss
from ..nn._tree import Params
from ._steps import Problem, StepSpec, step_specs, unknown_step

__all__ = ["Explanation", "Step", "explain", "fmt_num"]

_MAX_TERMS = 8  # terms of a sum shown before "..."
_MAX_LINES = 12  # entries of a step shown before "... (n more entries)"


def fmt_num(v: float) -> str:
    """A number as a worked solution writes it: 8 significant digits, 0 as ``0``."""
    return "0" if v == 0 else f"{v:.8g}"


def _p(v: float) -> str:
    """A number as a factor: (1), (-2), (0.98201379)."""
    return f"({fmt_num(v)})"


def _ix(prob: Problem, b: int, j: int) -> str:
    return f"[{j}]" if prob.batch == 1 else f"[{b}, {j}]"


def _sum_of_products(pairs) -> str:
    pairs = list(pairs)
    shown = [f"{_p(a)}{_p(b)}" for a, b in pairs[:_MAX_TERMS]]
    return " + ".join(shown) + (" + ..." if len(pairs) > _MAX_TERMS else "")


# One function per kind of step: the formula with the numbers put in, a line per entry.


def _sub_affine(spec: StepSpec, prob: Problem, v) -> list[str]:
    l = spec.layer
    W, bias = prob.params[l - 1]["W"], prob.params[l - 1]["b"]
    a, val = prob.input_of(l, v), v[spec.name]
    return [
        f"{spec.name}{_ix(prob, bb, j)} = {fmt_num(bias[j])} + "
        f"{_sum_of_products((W[i, j], a[bb, i]) for i in range(W.shape[0]))} = {fmt_num(val[bb, j])}"
        for bb in range(prob.batch)
        for j in range(W.shape[1])
    ]


def _sub_activation(spec: StepSpec, prob: Problem, v) -> list[str]:
    src = v[spec.inputs[0]]
    f = "sigma" if spec.kind == "z" else prob.acts[spec.layer - 1].name
    return [
        f"{spec.name}{_ix(prob, bb, j)} = {f}({fmt_num(src[bb, j])}) = {fmt_num(val)}"
        for (bb, j), val in np.ndenumerate(v[spec.name])
    ]


def _softmax_sum(o_row) -> str:
    return " + ".join(f"e^({fmt_num(o)})" for o in o_row)


def _sub_softmax_loss(prob: Problem, v) -> list[str]:
    """-log z_y with z_y = e^(o_y) / sum_j e^(o_j), the numbers put in, per example."""
    o, B = v["o"], prob.batch
    terms = []
    for bb in range(B):
        k = int(np.argmax(prob.y[bb]))
        terms.append(f"-log(e^({fmt_num(o[bb, k])}) / ({_softmax_sum(o[bb])}))")
    body = " + ".join(terms[:_MAX_TERMS]) + (" + ..." if len(terms) > _MAX_TERMS else "")
    mean = f"(1/{B}) [{body}]" if B > 1 else body
    return [f"loss = {mean} = {fmt_num(float(v['loss']))}"]


def _sub_loss(spec: StepSpec, prob: Problem, v) -> list[str]:
    B, y = prob.batch, prob.y
    if resolve_loss(prob.loss).classes:
        return _sub_softmax_loss(prob, v)
    if prob.loss == "bce":
        z = v["z"]
        terms = [
            f"{fmt_num(y[bb, j])} log {fmt_num(z[bb, j])} + {fmt_num(1 - y[bb, j])} log {fmt_num(1 - z[bb, j])}"
            for bb in range(B)
            for j in range(z.shape[1])
        ]
    else:
        out = v["z"] if resolve_loss(prob.loss).uses_probability else v["o"]
        half = "1/2 " if resolve_loss(prob.loss).squared == 0.5 else ""
        terms = [
            f"{half}({fmt_num(out[bb, j])} - {fmt_num(y[bb, j])})^2"
            for bb in range(B)
            for j in range(out.shape[1])
        ]
    body = " + ".join(f"[{t}]" for t in terms[:_MAX_TERMS]) + (
        " + ..." if len(terms) > _MAX_TERMS else ""
    )
    sign = "-" if prob.loss == "bce" else ""
    mean = f"(1/{B}) " if B > 1 else ""
    return [f"loss = {sign}{mean}{body} = {fmt_num(float(v['loss']))}"]


def _two(prob: Problem) -> str:
    """The factor the square's derivative leaves: 2 for (out - y)^2, none for 1/2 (out - y)^2."""
    return "2 " if resolve_loss(prob.loss).squared == 1.0 else ""


def _sub_dz(spec: StepSpec, prob: Problem, v) -> list[str]:
    z, y = v["z"], prob.y
    bdiv = f" / {prob.batch}" if prob.batch > 1 else ""
    lines = []
    for (bb, j), val in np.ndenumerate(v[spec.name]):
        zz, yy = fmt_num(z[bb, j]), fmt_num(y[bb, j])
        if prob.loss == "bce":
            rhs = f"({zz} - {yy}) / ({zz} (1 - {zz}))"
        else:
            rhs = f"{_two(prob)}({zz} - {yy})"
        lines.append(f"dL/dz{_ix(prob, bb, j)} = {rhs}{bdiv} = {fmt_num(val)}")
    return lines


def _sub_do(spec: StepSpec, prob: Problem, v) -> list[str]:
    y = prob.y
    bdiv = f" / {prob.batch}" if prob.batch > 1 else ""
    lines = []
    for (bb, j), val in np.ndenumerate(v[spec.name]):
        if resolve_loss(prob.loss).classes:
            o = v["o"][bb]
            total = float(np.sum(np.exp(o)))
            z = float(np.exp(o[j]) / total)
            rhs = (
                f"e^({fmt_num(o[j])}) / ({_softmax_sum(o)}) - {fmt_num(y[bb, j])} = "
                f"{fmt_num(z)} - {fmt_num(y[bb, j])}{bdiv}"
            )
        elif prob.loss == "bce":
            rhs = f"({fmt_num(v['z'][bb, j])} - {fmt_num(y[bb, j])}){bdiv}"
        elif resolve_loss(prob.loss).uses_probability:
            z = v["z"][bb, j]
            rhs = f"{_p(v['dL/dz'][bb, j])} {_p(z)}(1 - {fmt_num(z)})"
        else:
            rhs = f"{_two(prob)}({fmt_num(v['o'][bb, j])} - {fmt_num(y[bb, j])}){bdiv}"
        lines.append(f"dL/do{_ix(prob, bb, j)} = {rhs} = {fmt_num(val)}")
    return lines


def _sub_dW(spec: StepSpec, prob: Problem, v) -> list[str]:
    a, d = prob.input_of(spec.layer, v), v[spec.inputs[-1]]
    lines = [
        f"{spec.name}[{i}, {j}] = "
        f"{_sum_of_products((a[bb, i], d[bb, j]) for bb in range(prob.batch))} = {fmt_num(val)}"
        for (i, j), val in np.ndenumerate(v[spec.name])
    ]
    return [*lines, "  (current value) x (backward gradient)"]


def _sub_db(spec: StepSpec, prob: Problem, v) -> list[str]:
    d, B = v[spec.inputs[0]], prob.batch
    lines = []
    for j, val in enumerate(v[spec.name]):
        terms = " + ".join(f"(1){_p(d[bb, j])}" for bb in range(min(B, _MAX_TERMS)))
        more = " + ..." if B > _MAX_TERMS else ""
        lines.append(f"{spec.name}[{j}] = {terms}{more} = {fmt_num(val)}")
    return lines


def _sub_da(spec: StepSpec, prob: Problem, v) -> list[str]:
    W, d = prob.params[spec.layer]["W"], v[spec.inputs[0]]
    return [
        f"{spec.name}{_ix(prob, bb, i)} = "
        f"{_sum_of_products((W[i, j], d[bb, j]) for j in range(W.shape[1]))} = {fmt_num(val)}"
        for (bb, i), val in np.ndenumerate(v[spec.name])
    ]


def _sub_local(spec: StepSpec, prob: Problem, v) -> list[str]:
    src = v[spec.inputs[0]]
    rule = prob.acts[spec.layer - 1].student
    return [
        f"{spec.name}{_ix(prob, bb, j)} = {rule.substituted(fmt_num(src[bb, j]))} = {fmt_num(val)}"
        for (bb, j), val in np.ndenumerate(v[spec.name])
    ]


def _sub_dh(spec: StepSpec, prob: Problem, v) -> list[str]:
    da, g = v[spec.inputs[0]], v[spec.inputs[1]]
    return [
        f"{spec.name}{_ix(prob, bb, j)} = {_p(da[bb, j])}{_p(g[bb, j])} = {fmt_num(val)}"
        for (bb, j), val in np.ndenumerate(v[spec.name])
    ]


_SUBSTITUTE = {
    "h": _sub_affine,
    "o": _sub_affine,
    "a": _sub_activation,
    "z": _sub_activation,
    "loss": _sub_loss,
    "dL/dz": _sub_dz,
    "dL/do": _sub_do,
    "dL/dW": _sub_dW,
    "dL/db": _sub_db,
    "dL/da": _sub_da,
    "da/dh": _sub_local,
    "dL/dh": _sub_dh,
}


def substitute(spec: StepSpec, prob: Problem, values: Mapping[str, np.ndarray]) -> list[str]:
    """The formula with the numbers put in, one line per entry (capped for big layers)."""
    lines = _SUBSTITUTE[spec.kind](spec, prob, values)
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

    ``str()`` (or ``to_text``) is for a terminal, ``to_markdown`` for GitHub
    or Jupyter (LaTeX), ``to_json`` for programs. ``values`` maps step names to
    exact (float64) values.
    """

    steps: tuple[Step, ...]
    sizes: tuple[int, ...]
    activation: tuple[str, ...]
    loss: str
    batch: int
    augmented: tuple[np.ndarray, ...] = ()  # the weights, one (n_in + 1, n_out) matrix per layer
    x: np.ndarray | None = None  # (batch, n_in)
    y: np.ndarray | None = None  # (batch, n_out)

    @property
    def values(self) -> dict[str, np.ndarray]:
        return {s.name: s.value for s in self.steps}

    def __getitem__(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(unknown_step(name, [s.name for s in self.steps]))

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
                # The network itself, as a network file holds it: the JSON grades as it is
                # (``jaxbp check solution.json``).
                **(
                    {
                        "augmented": [m.tolist() for m in self.augmented],
                        "x": self.x.tolist(),
                        "y": self.y.tolist(),
                    }
                    if self.x is not None
                    else {}
                ),
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


def explain(params: Params, x, y, *, activation="sigmoid", loss: str = "bce") -> Explanation:
    """The worked solution for a network and a batch: every step, its formula, the numbers put in.

    Values are exact (float64) and equal to [`manual_grad`][jaxbp.grads.manual_grad]'s. Step names follow
    the scheme of [`step_names`][jaxbp.teach.step_names] (``h1``, ``a1``, ``o``, ``z``, ``loss``,
    ``dL/do``, ``dL/dW2``, ...).

    Examples:
      >>> from jaxbp import seed_exercise
      >>> ex = seed_exercise()
      >>> sol = explain(ex.params, ex.x, ex.y)
      >>> print(sol["h1"].substituted[0])
      h1[0] = 1 + (1)(1) + (-2)(2) + (3)(2) = 4
      >>> print(sol["dL/dW2"].substituted[0])
      dL/dW2[0, 0] = (0.98201379)(-0.4747174) = -0.46617904
    """
    prob = Problem.build(params, x, y, activation, loss)
    values = prob.exact_values(activation)
    steps = tuple(
        Step(
            name=s.name,
            what=s.what,
            formula=s.formula,
            latex=s.latex,
            substituted=tuple(substitute(s, prob, values)),
            value=values[s.name],
            inputs=s.inputs,
            part=s.part,
        )
        for s in step_specs(prob)
    )
    return Explanation(
        steps=steps,
        sizes=prob.sizes,
        activation=tuple(a.name for a in prob.acts),
        loss=loss,
        batch=prob.batch,
        augmented=tuple(np.concatenate([p["b"][None, :], p["W"]]) for p in prob.params),
        x=prob.x,
        y=prob.y,
    )
