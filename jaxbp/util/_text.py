"""Plain-text tables for terminals: the one layout every printed report uses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["table"]


def table(
    header: Sequence, rows: Iterable[Sequence], *, right: Iterable[int] = (), ragged_last=False
) -> list[str]:
    """A header, a rule of dashes and the rows, columns two spaces apart.

    Args:
      header: the column titles.
      rows: the cells, one sequence per row (anything ``str`` can print).
      right: the indices of columns aligned right (numbers); the others align left.
      ragged_last: the last column (long notes) is neither padded nor ruled.

    Examples:
      >>> print("\\n".join(table(["step", "value"], [["h1", 4], ["a1", 0.98]], right=[1])))
      step  value
      ----  -----
      h1        4
      a1     0.98
    """
    header = [str(h) for h in header]
    rows = [[str(v) for v in row] for row in rows]
    right = frozenset(right)
    widths = [
        max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - bool(ragged_last))
    ]

    def fmt(row):
        cells = [row[i].rjust(w) if i in right else row[i].ljust(w) for i, w in enumerate(widths)]
        if ragged_last and row[-1]:
            cells.append(row[-1])
        return "  ".join(cells).rstrip()

    return [fmt(header), "  ".join("-" * w for w in widths), *map(fmt, rows)]
