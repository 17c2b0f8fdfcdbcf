"""Files the library writes and reads: atomic writes, JSON/TOML tables.

Everything the library writes goes through ``write_atomic``: a file is either
whole or absent. ``load_table`` reads a JSON or TOML file that a person wrote,
floats kept as written (``Decimal``), so that their digits can set a precision.
No pickle.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["load_table", "write_atomic"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, data: str | bytes | Callable[[Any], None]) -> None:
    """Write ``data`` (text, bytes, or a function writing to a binary file) to ``path``
    through a temporary file beside it, synced, then renamed: whole or absent.

    The file gets the mode a plain ``open(path, "w")`` would (0644 under umask 022).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_table(path: Path) -> dict[str, Any]:
    """A JSON or TOML file's top-level table (floats kept as written, as ``Decimal``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            doc = tomllib.loads(text, parse_float=Decimal)
        else:
            doc = json.loads(text, parse_float=Decimal)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise ValueError(f"{path}: not valid {kind}: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError(
            f"{path}: expected a table (a JSON object) at the top level; got {type(doc).__name__}"
        )
    return doc
