"""Checks of user input shared by every public function: one wording, one rule.

An integer argument accepts Python and NumPy integers (``np.int64(2)``), never
``bool``; the error names the argument, what was expected and what was given.
"""

from __future__ import annotations

import numbers

__all__ = ["ceil_div", "check_positive_int", "is_int"]


def is_int(value) -> bool:
    """True for Python and NumPy integers, False for ``bool`` (and for floats such as 2.0)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(value, name: str, *, what: str = "a positive integer") -> int:
    """``value`` as a Python ``int`` if it is an integer >= 1, else a ValueError naming ``name``.

    Examples:
      >>> check_positive_int(3, "steps")
      3
      >>> check_positive_int(0, "steps")
      Traceback (most recent call last):
      ...
      ValueError: steps must be a positive integer; got 0
    """
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be {what}; got {value!r}")
    return int(value)


def ceil_div(a: int, b: int) -> int:
    """``a / b`` rounded up, for non-negative integers: how many ``b``-sized pieces hold ``a``.

    Examples:
      >>> ceil_div(10, 4), ceil_div(8, 4), ceil_div(0, 4)
      (3, 2, 0)
    """
    return -(-a // b)
