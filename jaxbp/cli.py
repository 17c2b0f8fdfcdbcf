"""The ``jaxbp`` command.

``jaxbp demo`` works the seed exercise end to end. Errors in what the user gave
are printed as one line and exit with status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _check_out(path: Path) -> None:
    """Refuse an --out path that cannot be written, before any work is done."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; expected a file path")
    if not parent.is_dir():
        raise ValueError(f"--out {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"--out {path}: the folder {parent} is not writable")


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file beside it, then a rename."""
    fd, tmp = tempfile.mkstemp(
        dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}."
    )
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxbp",
        description="Backpropagation three ways, and many small networks at once, in JAX.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="work the seed exercise (Week 9 Q2) end to end")
    demo.add_argument("--lr", type=_positive_float, default=0.5, help="learning rate (default 0.5)")
    demo.add_argument("--steps", type=_positive_int, default=50, help="training steps (default 50)")
    demo.add_argument("--float32", action="store_true", help="work in float32 instead of float64")
    demo.add_argument("--out", type=Path, metavar="FILE", help="also write the text to FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    import jax

    # The command line works in float64 unless asked otherwise, so that worked
    # values match a hand calculation to every printed digit.
    jax.config.update("jax_enable_x64", True)
    try:
        if args.command == "demo":
            from ._demo import seed_demo

            if args.out is not None:
                _check_out(args.out)
            text = seed_demo(
                learning_rate=args.lr,
                steps=args.steps,
                dtype="float32" if args.float32 else "float64",
            )
            print(text)
            if args.out is not None:
                _write_text(args.out, text + "\n")
    except (ValueError, TypeError, OSError) as e:
        print(f"jaxbp {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
