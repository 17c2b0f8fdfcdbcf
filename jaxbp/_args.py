"""What the ``jaxbp`` command's subcommands share: argument types that refuse bad
values in one line, and the check and write of an ``--out`` file."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .util._files import write_atomic

__all__ = [
    "check_out",
    "credit",
    "int_at_least",
    "nonneg_int",
    "positive_float",
    "positive_int",
    "sizes",
    "write_text",
]


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def int_at_least(minimum: int):
    """An argparse type: an integer >= minimum."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return parse


def credit(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a credit from 0 to 1, got {text!r}") from None
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"expected a credit from 0 to 1, got {text!r}")
    return v


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def check_out(path: Path) -> None:
    """Refuse an --out path that cannot be written, before any work is done."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; expected a file path")
    if not parent.is_dir():
        raise ValueError(f"--out {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"--out {path}: the folder {parent} is not writable")


def write_text(path: Path, text: str) -> None:
    write_atomic(path, text)


def sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected layer widths such as 3,2,1; got {text!r}"
        ) from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected at least two positive widths such as 3,2,1; got {text!r}"
        )
    return sizes
