"""Derivations as students write them: Markdown with LaTeX math, or plain text.

A page is read as equation chains, ``lhs = working = ... = value``: the symbol on the
left, the working in the middle and the value written last (a number, or a
``bmatrix``/``pmatrix``/``\\left[\\begin{array}...\\right]`` matrix of numbers).
Math is taken from ``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]`` and LaTeX's
``equation``/``align``/``gather`` environments (a ``.tex`` file); a line with
no math delimiters but an ``=`` is read as plain text (``H1 = 1 + 1*1 = 2``,
``dL/dw22 = 0.98 * -0.48 = -0.47``). Symbols after the value are other names for
the same quantity (``G(O) = 0.52 = Z``); ``\\text{...}`` and everything after an
arrow (``\\leftarrow``) is commentary.

The symbol on the left is matched by its notation, never parsed as math (no LaTeX
math parser reads ``\\frac{\\partial L}{\\partial w_{22}}``): it is reduced to a key
such as ``dL/dw22`` (``_notation`` maps keys to steps). The working is evaluated
by ``latex2sympy2_extended`` (it reads more of the OCR'd seed page and of the
varied test pages than sympy's own ``parse_latex``), after spaces inside numbers
and unicode minus signs are mended; its factors are also kept as written, so a
notation can say which step each factor is.

Nothing here knows a network: a page is read once and mapped to the steps of
whichever network it is graded against.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import warnings
from decimal import Decimal, InvalidOperation

__all__ = [
    "Equation",
    "PageRead",
    "evaluate",
    "factors",
    "flat",
    "mend",
    "number",
    "read_page",
    "symbol_key",
]

_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00b7": "*", "\u00d7": "*"})
_MATRIX = re.compile(
    r"\\left\s*[\[(]\s*\\begin\{array\}\{[^}]*\}(?P<a>.*?)\\end\{array\}\s*\\right\s*[\])]"
    r"|\\begin\{(?P<env>[bpBvV]?matrix)\}(?P<m>.*?)\\end\{(?P=env)\}",
    re.S,
)
_MATH = re.compile(
    r"\$\$(.+?)\$\$|\\\[(.+?)\\\]"
    r"|\\begin\{(?:equation|align|gather|eqnarray|multline)\*?\}(.+?)\\end\{(?:equation|align|gather|eqnarray|multline)\*?\}"
    r"|\\\((.+?)\\\)|\$(.+?)\$",
    re.S,
)
_SEPARATORS = re.compile(
    r"\\\\|\\q?quad\b|\\Rightarrow|\\implies|\\to\b|\\rightarrow|[;\u21d2\u2192]"
)
_COMMENT = re.compile(r"(\\leftarrow|\\longleftarrow|\u2190).*", re.S)
_TEXT = re.compile(r"\\(?:text|textbf|textit|mbox)\s*\{[^{}]*\}")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_PLACEHOLDER = re.compile(r"@M(\d+)@")


@dataclasses.dataclass(frozen=True)
class Equation:
    """One chain read from a page.

    Attributes:
      line: the line it starts on (from 1).
      source: the chain as written (one line).
      labels: the symbol keys it names (the left side, and names after the value).
      value: the value written last: a ``Decimal`` or a list (rows) of them; ``None``
        for an entry that is not a number.
      working: the working just before the value, as written (a string, or a list like
        ``value``), or ``None``.
    """

    line: int
    source: str
    labels: tuple[str, ...]
    value: object
    working: object = None

    @property
    def entries(self) -> list:
        """The value's entries row by row (one for a number)."""
        return flat(self.value)

    @property
    def workings(self) -> list:
        """The working of each entry, row by row (``None`` where there is none)."""
        n = len(self.entries)
        if self.working is None:
            return [None] * n
        w = flat(self.working)
        return w if len(w) == n else ([self.working] if n == 1 else [None] * n)


@dataclasses.dataclass(frozen=True)
class PageRead:
    """What a page holds: its equations, and each line that was not graded and why.

    ``skipped`` holds ``(line, source, why)``: equations with no value (formulas,
    arrows) and chains that could not be read; none of them stops the rest.
    """

    equations: tuple[Equation, ...]
    skipped: tuple[tuple[int, str, str], ...]


def flat(v) -> list:
    """A value's entries, row by row (one for a number)."""
    if isinstance(v, list):
        return [e for row in v for e in flat(row)]
    return [v]


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _one_line(s: str) -> str:
    return " ".join(s.split())


def read_page(text: str) -> PageRead:
    """Every equation chain of a Markdown/LaTeX or plain-text page, in the order written."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string; got {type(text).__name__}")
    equations: list[Equation] = []
    skipped: list[tuple[int, str, str]] = []
    spans = []
    for m in _MATH.finditer(text):
        display = any(m.group(i) is not None for i in (1, 2, 3))
        body = next(g for g in m.groups() if g is not None)
        spans.append((m.start(), m.end()))
        _read_math(body, _line_of(text, m.start()), display, equations, skipped)
    # Plain text: what lies outside the math, line by line.
    outside, last = [], 0
    for start, end in spans:
        outside.append((last, text[last:start]))
        last = end
    outside.append((last, text[last:]))
    for offset, chunk in outside:
        for i, line in enumerate(chunk.split("\n")):
            if "=" in line and not line.lstrip().startswith(("#", ">", "|", "```")):
                first = _line_of(text, offset) + i
                for part in re.split(r";|,\s+(?=[^=,]+=)", line):
                    if "=" in part:
                        _read_chain(part, part, first, {}, equations, skipped, plain=True)
    equations.sort(key=lambda e: e.line)
    skipped.sort(key=lambda s: s[0])
    return PageRead(tuple(equations), tuple(skipped))


def _read_math(body, line, display, equations, skipped) -> None:
    body = body.translate(_MINUS)
    body = re.sub(
        r"\\begin\{(?:aligned|align\*?|gathered|split)\}|\\end\{(?:aligned|align\*?|gathered|split)\}",
        " ",
        body,
    )
    matrices: dict[int, str] = {}

    def protect(m):
        matrices[len(matrices)] = m.group("a") if m.group("a") is not None else m.group("m")
        return f"@M{len(matrices) - 1}@"

    protected = _MATRIX.sub(protect, body)
    statements = [s for s in _SEPARATORS.split(protected) if s.strip()]
    if not any("=" in s for s in statements):
        if display and protected.strip():
            skipped.append((line, _one_line(body), "no equation: not graded"))
        return
    for s in statements:
        if "=" not in s:
            continue
        shown = _PLACEHOLDER.sub(lambda m: _matrix_source(matrices[int(m.group(1))]), s)
        _read_chain(s, shown, line, matrices, equations, skipped, plain=False)


def _matrix_source(body: str) -> str:
    rows = [", ".join(_one_line(c) for c in r.split("&")) for r in body.split("\\\\") if r.strip()]
    return "[" + "; ".join(rows) + "]"


def _top_level_split(s: str, sep: re.Pattern) -> list[str]:
    """``s`` split on ``sep`` where it is outside every bracket."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif depth == 0:
            m = sep.match(s, i)
            if m and m.end() > i:
                out.append(s[start:i])
                start = i = m.end()
                continue
        i += 1
    out.append(s[start:])
    return out


_EQUALS = re.compile(r"\\approx|\\simeq|\u2248|=")
_COMMA = re.compile(r",")


def _read_chain(s, shown, line, matrices, equations, skipped, *, plain) -> None:
    source = _one_line(_COMMENT.sub("", shown).replace("&", " "))
    s = _COMMENT.sub("", s)
    s = _TEXT.sub(" ", s).replace("&", " ")
    # Within a part, what follows a top-level comma is the part ("= \frac{z-y}{z(1-z)}, Z(1-Z) = ...").
    parts = [_top_level_split(p, _COMMA)[-1].strip() for p in _top_level_split(s, _EQUALS)]
    if len(parts) < 2 or not all(parts):
        skipped.append((line, source, "not an equation chain (an '=' with nothing on one side)"))
        return
    kinds = [_classify(p, matrices) for p in parts]
    valued = [i for i, (kind, _) in enumerate(kinds) if kind == "value"]
    if not valued:
        skipped.append((line, source, "no value written (a formula): not graded"))
        return
    at = valued[-1]
    if at == 0:
        skipped.append((line, source, "no symbol on the left of the value: not graded"))
        return
    labels = [symbol_key(parts[0], plain=plain)]
    labels += [
        symbol_key(p, plain=plain)
        for (kind, _), p in zip(kinds[at + 1 :], parts[at + 1 :])
        if kind == "symbol"
    ]
    if not labels[0] or re.fullmatch(r"d\w*/d|d/d\w*", labels[0]):
        skipped.append((line, source, "its left side names no quantity: not graded"))
        return
    working = None
    if at >= 2 and kinds[at - 1][0] in ("value", "working"):
        working = (
            kinds[at - 1][1] if kinds[at - 1][0] == "working" else _as_text(parts[at - 1], matrices)
        )
    equations.append(Equation(line, source, tuple(dict.fromkeys(labels)), kinds[at][1], working))


def _as_text(part: str, matrices) -> object:
    m = _PLACEHOLDER.fullmatch(part.strip())
    return _matrix_cells(matrices[int(m.group(1))]) if m else part.strip()


def _matrix_cells(body: str) -> list:
    rows = [r for r in body.split("\\\\") if r.strip()]
    cells = [[c.strip() for c in r.split("&")] for r in rows]
    return [row[0] for row in cells] if all(len(r) == 1 for r in cells) else cells


def _classify(part: str, matrices) -> tuple[str, object]:
    """("value", Decimal | rows), ("working", text | rows), ("symbol", text) or ("formula", text)."""
    m = _PLACEHOLDER.fullmatch(part.strip())
    if m:
        cells = _matrix_cells(matrices[int(m.group(1))])
        entries = flat(cells)
        numbers = [number(c) for c in entries]
        if all(n is not None for n in numbers):
            it = iter(numbers)
            return "value", [[next(it) for _ in row] for row in cells] if isinstance(
                cells[0], list
            ) else list(numbers)
        if all(evaluate(c) is not None for c in entries):
            return "working", cells
        return "formula", part
    if _PLACEHOLDER.search(part):
        return "formula", part
    listed = _plain_list(part)
    if listed is not None:
        return "value", listed
    n = number(part)
    if n is not None:
        return "value", n
    if evaluate(part) is not None:
        return "working", part.strip()
    return ("symbol" if re.search(r"[A-Za-z]", part) else "formula"), part


def _plain_list(part: str) -> list | None:
    """A list written in plain text: ``[0.1, 0.2]`` (a vector), ``[[1, 2], [3, 4]]`` or
    ``[1, 2; 3, 4]`` (rows); None unless every entry is a number."""
    t = part.strip()
    if not (t.startswith("[") and t.endswith("]")):
        return None
    inner = re.findall(r"\[([^\[\]]*)\]", t[1:-1]) if t.startswith("[[") else t[1:-1].split(";")
    rows = [[number(c) for c in r.split(",") if c.strip()] for r in inner]
    if not rows or not all(rows) or any(n is None for r in rows for n in r):
        return None
    return rows[0] if len(rows) == 1 and not t.startswith("[[") else rows


def number(text: str) -> Decimal | None:
    """A plain number as written (its digits kept), or None: ``-0.48``, ``(-0.48)``,
    ``\\left(-0.48\\right)``, ``- 0.4 8`` (spaces inside numbers), ``1\\,000``."""
    t = text.translate(_MINUS)
    t = re.sub(r"\\left|\\right|\\[,;!: ]|~|[{}\s]", "", t)
    while len(t) > 2 and t[0] == "(" and t[-1] == ")":
        t = t[1:-1]
    if t.startswith("+"):
        t = t[1:]
    if not _NUMBER.fullmatch(t):
        return None
    try:
        return Decimal(t)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        return None


def mend(text: str) -> str:
    """Arithmetic as a LaTeX parser reads it: unicode signs, ``\\times``, spaces in numbers."""
    t = text.translate(_MINUS)
    t = re.sub(r"\\left\s*|\\right\s*", "", t)
    t = re.sub(r"\\(?:times|ast)\b", r"\\cdot ", t).replace("*", r"\cdot ")
    t = re.sub(
        r"(?<=\d)\s*\\[,;!]\s*(?=\d)|(?<=\d)\s*\.\s*(?=\d)",
        lambda m: "." if "." in m.group() else "",
        t,
    )
    t = re.sub(r"(?<=\.\d)\s+(?=\d)|(?<=\.\d\d)\s+(?=\d)|(?<=\.\d\d\d)\s+(?=\d)", "", t)
    return t.replace("[", "(").replace("]", ")")


def evaluate(text) -> float | None:
    """The number a working comes to (``0.98 \\cdot (-0.48)`` -> -0.4704), or None when it
    is not arithmetic on numbers alone (it names a symbol, or no parser reads it)."""
    if not isinstance(text, str) or not re.search(r"\d", text):
        return None
    return _arithmetic(mend(text))


@functools.lru_cache(maxsize=4096)
def _arithmetic(mended: str) -> float | None:
    """``evaluate`` of a mended working. Remembered: a class working one exercise
    writes the same few workings many times, and a parse costs tens of milliseconds."""
    if re.search(r"\\(?!cdot|frac|dfrac|tfrac|sqrt|exp|ln|log|left|right)[A-Za-z]+", mended):
        return None
    # Imported here, on the first working read: with sympy it is a third of the time
    # `import jaxbp` would take, which every command and process would pay.
    from latex2sympy2_extended import latex2sympy

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expr = latex2sympy(mended)
        if getattr(expr, "free_symbols", {None}):
            return None
        value = float(expr.evalf())
    except Exception:
        return None
    return value if value == value and abs(value) != float("inf") else None


def factors(text) -> list[str]:
    """The factors of a working that is one product, as written: ``(0.02)(-0.48)`` ->
    ``["0.02", "-0.48"]``, ``0.98 \\cdot (-0.48)`` -> ``["0.98", "(-0.48)"]``; ``[]`` when
    the working is not a product."""
    if not isinstance(text, str):
        return []
    t = re.sub(r"\\left\s*|\\right\s*", "", text.translate(_MINUS)).strip()
    t = re.sub(r"\)\s*\(", r") \\cdot (", t)
    t = re.sub(r"(?<=[\d.])\s*\(", r" \\cdot (", t)
    t = re.sub(r"\)\s*(?=[\d.])", r") \\cdot ", t)
    parts = _top_level_split(t, re.compile(r"\\cdot|\\times|\*"))
    if len(parts) < 2:
        return []
    body = [p.strip() for p in parts]
    if any(not p or re.search(r"[\d.)]\s*[+-]", _outside_brackets(p)) for p in body):
        return []  # a sum, not one product
    return body


def _outside_brackets(s: str) -> str:
    """``s`` with every bracketed group emptied: ``0.98(1-0.98)`` -> ``0.98()``."""
    while True:
        t = re.sub(r"\([^()]*\)|\{[^{}]*\}|\[[^\[\]]*\]", "", s)
        if t == s:
            return t
        s = t


# --------------------------------------------------------------------------- symbol keys


def _brace(s: str, i: int) -> int:
    """The index just past the brace group that opens at ``s[i] == "{"``."""
    depth = 0
    for j in range(i, len(s)):
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        if depth == 0:
            return j + 1
    return len(s)


def _unfrac(s: str) -> str:
    while True:
        m = re.search(r"\\[dt]?frac\s*\{", s)
        if not m:
            return s
        a0 = m.end() - 1
        a1 = _brace(s, a0)
        b0 = a1
        while b0 < len(s) and s[b0].isspace():
            b0 += 1
        if b0 >= len(s) or s[b0] != "{":
            return s
        b1 = _brace(s, b0)
        num, den = s[a0 + 1 : a1 - 1].strip(), s[b0 + 1 : b1 - 1].strip()
        derivative = all(re.match(r"\\partial|d|\u2202", t) for t in (num, den))
        frac = f"{num}/{den}" if derivative else f"({num})/({den})"
        s = f"{s[: m.start()]}{frac}{s[b1:]}"


def symbol_key(latex: str, *, plain: bool = False) -> str:
    """The key a symbol is looked up by: ``\\frac{\\partial L}{\\partial w_{22}}`` ->
    ``dL/dw22``, ``G(H_1)`` -> ``G(H1)``, ``\\hat{y}`` -> ``yhat``, ``E_{total}`` -> ``Etotal``;
    jaxbp's own names stay (``dL/dW1[2,1]``, ``h1[0]``)."""
    s = latex.translate(_MINUS).strip()
    if plain and re.search(r"[A-Za-z]{3,}\s+\S", s):
        s = s.split()[-1]  # "so H1" -> "H1": the words before a plain-text symbol
    s = re.sub(r"\\(?:mathrm|mathit|mathbf|operatorname|boldsymbol)\s*", "", s)
    s = re.sub(r"\\hat\s*\{?\s*([A-Za-z])\s*\}?", r"\1hat", s)
    s = re.sub(r"\\(?:left|right|displaystyle)|\\[,;!: ]|~", "", s)
    s = _unfrac(s)
    s = re.sub(r"\\partial\b|\u2202", "d", s)
    s = re.sub(r"\\(sigma|delta|theta|alpha|eta|ell)\b", r"\1", s)
    s = re.sub(
        r"\^\s*\{\s*\(([^)]*)\)\s*\}|\^\s*\(([^)]*)\)",
        lambda m: f"^({m.group(1) or m.group(2)})",
        s,
    )
    s = re.sub(r"[_{}\s]", "", s)
    # (dL)/(dw22) -> dL/dw22 where both sides are single symbols
    s = re.sub(r"\(([^()/]*)\)/\(([^()/]*)\)", r"\1/\2", s)
    return s
