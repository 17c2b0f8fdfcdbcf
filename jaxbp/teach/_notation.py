"""Notation: which step each symbol a student writes names, and a page turned into a claim.

The default notation knows jaxbp's own step names and entries (``h1``, ``h1[0]``,
``dL/dW1[2,1]``) and, for a network of one hidden layer and one example, the
common textbook names of its units: ``h_j``/``H_j``/``net_{hj}`` for the
pre-activations, ``a_j``/``out_{hj}``/``G(H_j)``/``\\sigma(h_j)`` for the
activations, ``O``/``net_o`` for the logit, ``Z``/``\\hat y``/``out_o``/``G(O)`` for
the output, ``L``/``E``/``E_{total}`` for the loss, and the partial derivatives of
the loss with respect to each, written with ``\\partial`` or ``d`` (``j`` counts
from 1). With several hidden layers a unit names its layer: ``h^{(l)}_j``.

A notation file (TOML or JSON) adds to that or overrides it, in a table
``symbols``: each key is a symbol as students write it (LaTeX or plain: keys are
reduced as the page is, so ``"\\frac{\\partial L}{\\partial w_{21}}"`` and
``"dL/dw21"`` are one key), each value one of

- ``"h1[0]"`` or ``"dL/dW2"``: the step entry or whole step the value is;
- a list of those: the value is each of them (``["dL/db2", "dL/do"]``);
- ``""``: given data restated (the weights), not graded;
- a table ``{entries = [...], factors = [...]}`` for a vector or matrix written in
  its own order: ``entries`` names the target(s) of each entry, row by row;
  ``factors`` (optional) names, per entry, the step each factor of that entry's
  working is (the seed's ``(0.02)(-0.48)`` is ``da1/dh1[0]`` times ``dL/da1[0]``).

``default = false`` in the file starts from no symbols at all.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from ..util._files import load_table
from ._networks import NetworkSpec, read_network
from ._steps import Problem, step_specs, unknown_step
from ._textread import PageRead, factors, flat, number, read_page, symbol_key

__all__ = [
    "Notation",
    "PageClaim",
    "claim_from_page",
    "default_symbols",
    "read_derivation",
    "read_notation",
]

_TARGET = re.compile(r"^(?P<step>[^\[\]]+?)(?:\[(?P<index>[\d,\s]*)\])?$")


@dataclasses.dataclass(frozen=True)
class Notation:
    """Symbol keys to targets, and whether the default names are read too.

    ``symbols`` maps a key (see ``symbol_key``) to a tuple of target lists: one list
    for the whole value, or one per entry; ``factors`` maps a key to, per entry, the
    targets of each factor of its working.
    """

    symbols: dict
    factors: dict
    default: bool = True
    source: str = "the default notation"


def _targets(value, where: str) -> tuple[str, ...]:
    if value == "" or value is None:
        return ()
    if isinstance(value, str):
        return (value.strip(),)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise ValueError(
        f"{where} must be a step name, a list of step names or ''; got {value!r}"[:300]
    )


def read_notation(path: str | os.PathLike | None) -> Notation:
    """A notation file (TOML or JSON; see the module docstring), or the default for ``None``."""
    if path is None:
        return Notation({}, {})
    path = Path(path)
    doc = load_table(path)
    unknown = sorted(set(doc) - {"symbols", "default", "about"})
    if unknown:
        raise ValueError(
            f"{path}: unknown key(s) {unknown}; expected 'symbols' (and 'default', 'about')"
        )
    default = doc.get("default", True)
    if not isinstance(default, bool):
        raise ValueError(f"{path}: 'default' must be true or false; got {default!r}")
    table = doc.get("symbols", {})
    if not isinstance(table, dict):
        raise ValueError(f"{path}: 'symbols' must be a table of symbols to step names")
    symbols, facs = {}, {}
    for raw, value in table.items():
        key, where = symbol_key(str(raw)), f"{path}: symbols[{raw!r}]"
        if not key:
            raise ValueError(f"{where}: the symbol is empty")
        if isinstance(value, dict):
            extra = sorted(set(value) - {"entries", "factors"})
            if extra or "entries" not in value or not isinstance(value["entries"], list):
                raise ValueError(f"{where} must be a table with a list 'entries' (and 'factors')")
            symbols[key] = (
                "entries",
                tuple(_targets(v, f"{where}.entries") for v in value["entries"]),
            )
            fs = value.get("factors", [])
            if not isinstance(fs, list) or not all(isinstance(f, list) for f in fs):
                raise ValueError(
                    f"{where}.factors must be a list (per entry) of lists (per factor)"
                )
            facs[key] = tuple(tuple(_targets(t, f"{where}.factors") for t in f) for f in fs)
        else:
            symbols[key] = ("whole", _targets(value, where))
    return Notation(symbols, facs, default, str(path))


def _entry_keys(name: str, shape, batch_step: bool, batch: int) -> dict[str, tuple[int, ...]]:
    out = {}
    for idx in np.ndindex(shape):
        shown = idx[1:] if (batch_step and batch == 1) else idx
        out[f"{name}[{','.join(map(str, shown))}]"] = idx
    return out


def default_symbols(shapes: dict, batch_steps, batch: int) -> dict[str, tuple[str, ...]]:
    """Every key the default notation knows for a network, to the entries or steps it may
    name, in order of preference: ``a_1`` is the step ``a1`` when its value has as many
    entries, else unit 1 of layer 1 (``a1[0]``)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, shape in shapes.items():
        out[symbol_key(name)] = (name,)
        if int(np.prod(shape)) > 1:
            for key in _entry_keys(name, shape, name in batch_steps, batch):
                out[symbol_key(key)] = (key,)
    hidden = sorted({int(m[1]) for n in shapes if (m := re.fullmatch(r"h(\d+)", n))})
    if batch != 1:
        return out
    losses = ["L", "E", "Etotal", "J", "C", "loss"]
    names: dict[str, list[str]] = {}
    for l in hidden:
        for j in range(1, shapes[f"h{l}"][-1] + 1):
            h, a = f"h{l}[{j - 1}]", f"a{l}[{j - 1}]"
            # (activation, pre-activation) as textbooks pair them
            pairs = [(f"a^({l}){j}", f"h^({l}){j}"), (f"a{j}^({l})", f"h{j}^({l})")]
            pairs += [(f"out^({l}){j}", f"net^({l}){j}"), (f"a^({l}){j}", f"H^({l}){j}")]
            if len(hidden) == 1:
                pairs += [(f"a{j}", f"h{j}"), (f"A{j}", f"H{j}"), (f"out{j}", f"net{j}")]
                pairs += [(f"outh{j}", f"neth{j}")]
                pairs += [
                    (f"{g}({x})", x) for g in ("G", "g", "f", "sigma") for x in (f"h{j}", f"H{j}")
                ]
            hs = list(dict.fromkeys(x for _, x in pairs))
            a_s = list(dict.fromkeys(y for y, _ in pairs))
            names[h], names[a] = hs, a_s
            for x in hs:
                names.setdefault(f"dL/dh{l}[{j - 1}]", []).extend(f"d{L}/d{x}" for L in losses)
            for x in a_s:
                names.setdefault(f"dL/da{l}[{j - 1}]", []).extend(f"d{L}/d{x}" for L in losses)
            names[f"da{l}/dh{l}[{j - 1}]"] = [f"d{y}/d{x}" for y, x in pairs]
    if "o" in shapes and int(np.prod(shapes["o"])) == 1:
        os_ = ["o", "O", "neto", "neto1", "neto_1"]
        zs = ["z", "Z", "yhat", "ŷ", "outo", "outo1", "G(O)", "G(o)", "sigma(o)", "sigma(O)", "p"]
        names["o"], names["loss"] = os_, losses
        names["dL/do"] = [f"d{L}/d{x}" for L in losses for x in os_]
        if "z" in shapes:
            names["z"] = zs
            names["dL/dz"] = [f"d{L}/d{x}" for L in losses for x in zs]
    for target, keys in names.items():
        for k in keys:
            key = symbol_key(k)
            if target not in out.setdefault(key, (target,)):
                out[key] = (*out[key], target)
    return out


@dataclasses.dataclass
class PageClaim:
    """A page mapped onto a network's steps: what ``check_derivation`` grades.

    Attributes:
      claimed: step -> nested list of ``Decimal`` (``None`` where not written).
      workings: step -> nested list of the working as written (``None`` where none).
      sources: step -> nested list of ``"line N: ..."`` (what the student wrote).
      problems: lines that look like equations but could not be read or mapped, and why.
      not_graded: lines with no value (formulas, arrows) or given data, and why.
    """

    claimed: dict
    workings: dict
    sources: dict
    problems: list
    not_graded: list


def _parse_target(t: str, shapes, batch_steps, batch, where) -> tuple[str, tuple | None]:
    m = _TARGET.match(t)
    if not m or m["step"] not in shapes:
        raise ValueError(f"{where}: {unknown_step(m['step'] if m else t, shapes)}")
    step, shape = m["step"], shapes[m["step"]]
    if m["index"] is None:
        return step, None
    keys = _entry_keys(step, shape, step in batch_steps, batch)
    key = f"{step}[{','.join(s.strip() for s in m['index'].split(','))}]"
    if key not in keys:
        raise ValueError(f"{where}: {t!r} names no entry of {step} (shape {shape}, indices from 0)")
    return step, keys[key]


def _size(target: str, shapes) -> int:
    m = _TARGET.match(target)
    return 1 if m["index"] is not None else int(np.prod(shapes[m["step"]]))


def claim_from_page(
    page: PageRead, shapes: dict, batch_steps, batch: int, notation: Notation
) -> PageClaim:
    """Map a page's equations onto the steps of a network (``shapes``: step -> shape)."""
    # One function with ``put`` nested in it (over 80 lines): every equation's entries
    # land in the same grids and lists of problems, in the page's order, and ``put`` is
    # the one place that writes them (an entry written twice: the later one is graded).
    table: dict[str, tuple] = {}
    if notation.default:
        table = {k: ("either", v) for k, v in default_symbols(shapes, batch_steps, batch).items()}
    table.update(notation.symbols)
    folded = {k.casefold(): k for k in table}
    grids = {k: {} for k in ("claimed", "workings", "sources")}
    where_of: dict[tuple[str, tuple], tuple] = {}
    problems, not_graded = [], []

    def put(target: str, value, working, eq, why) -> None:
        step, idx = _parse_target(target, shapes, batch_steps, batch, f"{notation.source}: {why!r}")
        shape = shapes[step]
        size = int(np.prod(shape))
        values = flat(value)
        works = flat(working) if isinstance(working, list) else [working] * len(values)
        if len(works) != len(values):
            works = [None] * len(values)
        if idx is None and len(values) != size:
            problems.append(
                f"line {eq.line}: {eq.source!r}: {len(values)} entr{'y' if len(values) == 1 else 'ies'} "
                f"for {step}, which has {size} (shape {shape}); not graded"
            )
            return
        if idx is not None and len(values) != 1:
            problems.append(
                f"line {eq.line}: {eq.source!r}: {len(values)} entries for the one entry {target}; not graded"
            )
            return
        cells = list(np.ndindex(shape)) if idx is None else [idx]
        for cell, v, w in zip(cells, values, works):
            if v is None:
                continue
            before = where_of.get((step, cell))
            if before is not None and before[2] == v and w is None:
                continue  # the same value again (a factor restating a step): keep its working
            if before is not None and before[2] != v:
                not_graded.append(
                    (
                        before[0],
                        f"{before[1]!r}: {step} written again on line {eq.line} as {v}; that one is graded",
                    )
                )
            for name, item in (
                ("claimed", v),
                ("workings", w),
                ("sources", f"line {eq.line}: {eq.source}"),
            ):
                grids[name].setdefault(step, np.full(shape, None, object))[cell] = item
            where_of[(step, cell)] = (eq.line, eq.source, v)

    for eq in page.equations:
        found = [
            (lab, table.get(lab) or table.get(folded.get(lab.casefold(), ""))) for lab in eq.labels
        ]
        mapped = [(lab, t) for lab, t in found if t is not None]
        if not mapped:
            problems.append(
                f"line {eq.line}: {eq.source!r}: the symbol {eq.labels[0]!r} is not in "
                f"{notation.source}; not graded (a notation file maps it: --notation)"
            )
            continue
        for lab, (kind, spec) in mapped:
            if kind == "whole" and not spec:
                not_graded.append((eq.line, f"{eq.source!r}: given data ({lab}), not graded"))
                continue
            if kind == "whole":
                for t in spec:
                    put(t, eq.value, eq.working, eq, lab)
                continue
            if kind == "either":  # the first that the value fits, else the first
                n = len(eq.entries)
                fits = [t for t in spec if _size(t, shapes) == n]
                put((fits or spec)[0], eq.value, eq.working, eq, lab)
                continue
            entries, works = eq.entries, eq.workings
            if len(entries) != len(spec):
                problems.append(
                    f"line {eq.line}: {eq.source!r}: {lab} has {len(entries)} entries, the notation "
                    f"names {len(spec)}; not graded"
                )
                continue
            for e, w, targets in zip(entries, works, spec):
                for t in targets:
                    put(t, e, w, eq, lab)
            for w, per in zip(works, notation.factors.get(lab, ())):
                fs = factors(w)
                for k, targets in enumerate(per):
                    got = number(fs[k]) if k < len(fs) else None
                    if targets and got is None:
                        problems.append(
                            f"line {eq.line}: {eq.source!r}: factor {k + 1} of the working {w!r} "
                            f"is not a number; {', '.join(targets)} not read from it"
                        )
                        continue
                    for t in targets:
                        put(t, got, None, eq, lab)
    not_graded += [(line, f"{src!r}: {why}") for line, src, why in page.skipped]
    out = {name: {s: g.tolist() for s, g in grid.items()} for name, grid in grids.items()}
    return PageClaim(
        out["claimed"],
        out["workings"],
        out["sources"],
        problems,
        [f"line {line}: {text}" for line, text in sorted(not_graded, key=lambda t: t[0])],
    )


def read_derivation(
    page: str | os.PathLike | PageRead,
    network: NetworkSpec | str | os.PathLike | None = None,
    *,
    notation: Notation | str | os.PathLike | None = None,
) -> PageClaim:
    """A derivation written as text, read and mapped onto a network's steps.

    Args:
      page: a Markdown/LaTeX or plain-text file, or a page read by ``read_page``.
      network: the network it is about (a [`NetworkSpec`][jaxbp.teach.NetworkSpec] or a
        network file); default: the seed exercise.
      notation: a notation file or [`Notation`][jaxbp.teach.Notation]; default: jaxbp's names
        and the common textbook ones.

    Returns:
      [`PageClaim`][jaxbp.teach.PageClaim]: ``claimed``, ``workings`` and ``sources`` for
      [`check_derivation`][jaxbp.teach.check_derivation], and the lines not read or not graded.

    Examples:
      >>> read = read_derivation(read_page("H1 = 1 + 1*1 + (-2)*2 + 3*2 = 4"))
      >>> read.claimed["h1"], read.workings["h1"]
      ([[Decimal('4'), None]], [['1 + 1*1 + (-2)*2 + 3*2', None]])
    """
    if not isinstance(page, PageRead):
        path = Path(page)
        try:
            page = read_page(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: can't be read: {' '.join(str(e).split())}") from None
    spec = network if isinstance(network, NetworkSpec) else read_network(network)
    if not isinstance(notation, Notation):
        notation = read_notation(notation)
    prob = Problem.build(spec.params, spec.x, spec.y, spec.activation, spec.loss)
    specs = step_specs(prob)
    exact = prob.exact_values(spec.activation)
    shapes = {s.name: exact[s.name].shape for s in specs}
    batch_steps = frozenset(s.name for s in specs if s.kind not in ("dL/dW", "dL/db", "loss"))
    return claim_from_page(page, shapes, batch_steps, prob.batch, notation)
