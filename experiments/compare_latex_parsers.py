"""Which LaTeX parser reads more of what students write: latex2sympy2_extended or sympy's
``parse_latex`` (its lark backend; its ANTLR backend where ``antlr4`` 4.11 is installed).

Every working (the middle of ``lhs = working = value``) of the seed page and of the
synthetic class's OCR-style pages is given to each parser after jaxbp's mending
(spaces inside numbers, unicode minus, ``\\times``); a working counts as read when
the parser gives a number, and the numbers two parsers give for the same working
are compared (a disagreement is printed).

    python experiments/compare_latex_parsers.py     # needs lark for sympy's backend

prints one row per parser: workings read, of how many, and the seconds taken.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from jaxbp.internal import flat, mend
from jaxbp.teach import read_page

ROOT = Path(__file__).resolve().parent
PAGES = [ROOT.parent.parent / "shared" / "seed" / "000_acf6a7ab2366700c.txt"]
PAGES += sorted((ROOT / "data" / "class_week9" / "pages").glob("*.md"))


# Workings from the test pages (tests/test_textread.py) that the class's pages lack.
EXTRA = [
    r"\frac{1}{1 + e^{-0.1}}",
    r"\frac{0.52 - 1}{0.52(1 - 0.52)}",
    r"\left(0.98\right) \times \left(-0.48\right)",
    r"-1 + (-1) * 1 + 2 * 2 + (-2) * 2",
    "0.98(1 - 0.98)",
    r"e^{-4}",
    r"\sqrt{0.25} \cdot 2",
]


def workings() -> list[str]:
    out = list(EXTRA)
    for p in PAGES:
        if p.is_file():
            for eq in read_page(p.read_text()).equations:
                out += [w for w in flat(eq.working) if isinstance(w, str) and w.strip()]
    return list(dict.fromkeys(out))


def parsers():
    from latex2sympy2_extended import latex2sympy

    yield "latex2sympy2_extended", latex2sympy
    try:
        import lark  # noqa: F401  (sympy's lark backend needs it)
        from sympy.parsing.latex import parse_latex

        yield "sympy parse_latex (lark)", lambda s: parse_latex(s, backend="lark")
    except ImportError:
        print("sympy's lark backend: not installed (pip install lark)")
    try:
        import antlr4  # noqa: F401
        from sympy.parsing.latex import parse_latex

        yield "sympy parse_latex (antlr)", parse_latex
    except ImportError:
        print("sympy's ANTLR backend: not installed")


def main() -> None:
    items = workings()
    print(f"{len(items)} distinct workings from {sum(p.is_file() for p in PAGES)} pages")
    first = None
    for name, parse in parsers():
        read, start, values = 0, time.perf_counter(), {}
        for w in items:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    expr = parse(mend(w))
                if not getattr(expr, "free_symbols", {None}):
                    values[w] = float(expr.evalf())
                    read += 1
            except Exception:
                pass
        print(f"{name:28s} {read:4d} of {len(items)} read  {time.perf_counter() - start:6.2f} s")
        if first is None:
            first = values
        for w in sorted(set(values) & set(first)):
            if abs(values[w] - first[w]) > 1e-9 * max(1.0, abs(first[w])):
                print(f"  disagrees on {w!r}: {values[w]} against {first[w]}")


if __name__ == "__main__":
    main()
