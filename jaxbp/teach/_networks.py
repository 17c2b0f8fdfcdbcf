"""Files users write by hand: network descriptions and claimed derivations (JSON or TOML).

A network file holds ``x`` (one example as a list, or a batch as a list of lists),
``y`` (a number or a list), optionally ``activation`` (a name or a list, one per
hidden layer; default ``"sigmoid"``) and ``loss`` (default ``"bce"``), and the
weights either as ``augmented`` (one matrix per layer, row 0 the bias, as in
hand-worked exercises) or as ``layers`` (a list of ``{W, b}`` tables).

A claimed-derivation file is JSON or TOML with a table ``claimed`` mapping step
names to numbers or nested lists, and optionally a table ``network`` as above;
a file that is only the mapping is read as ``claimed``. Numbers keep the digits
they were written with (they set the precision the checker allows).

Every error names the file, the key and what was expected. No pickle: only JSON
and TOML are read. Everything the library writes goes through ``write_atomic``:
a file is either whole or absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..nn._tree import Params, check_params, from_augmented, to_augmented
from ..util._files import load_table
from ._exercises import seed_exercise

__all__ = [
    "NetworkSpec",
    "dumps_network",
    "network_to_dict",
    "read_claimed",
    "read_network",
]


class NetworkSpec(NamedTuple):
    """A network file as read: the parameters, one batch, and how it is to be worked.

    Attributes:
      params: the parameter tree.
      x: the batch's inputs, ``(batch, n_in)``.
      y: its labels, ``(batch, n_out)``.
      activation: the hidden activation name(s).
      loss: the loss name.
    """

    params: Params
    x: np.ndarray
    y: np.ndarray
    activation: str | tuple[str, ...]
    loss: str


def _numbers(value, where: str, *, ndim) -> np.ndarray:
    """``value`` as a float64 array of ``ndim`` dimensions (one of), rectangular and finite;
    the error names ``where`` (the file and key) and what was wrong, in one line."""
    shape = " or ".join(f"{n}-D" for n in ndim)
    if isinstance(value, (str, bool, dict)) or (
        isinstance(value, list) and any(isinstance(v, (str, bool, dict)) for v in _flat(value))
    ):
        raise ValueError(f"{where} must hold numbers ({shape}); got {value!r}"[:300])
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where} must be a {shape} array of numbers with rows of equal length; got {value!r}"[
                :300
            ]
        ) from None
    if a.ndim not in ndim:
        raise ValueError(f"{where} must be {shape}; got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(f"{where} must be finite numbers; entry {list(bad)} is {a[bad]}")
    return a


def _flat(value):
    for v in value:
        if isinstance(v, list):
            yield from _flat(v)
        else:
            yield v


def _array(doc, key, where, *, ndim) -> np.ndarray:
    if key not in doc:
        raise ValueError(f"{where}: missing key {key!r}")
    return _numbers(doc[key], f"{where}: key {key!r}", ndim=ndim)


def network_from_dict(doc: dict[str, Any], where: str) -> NetworkSpec:
    """Build a network (and its batch) from a parsed network table; ``where`` names it in errors."""
    known = {"x", "y", "activation", "loss", "augmented", "layers", "sizes", "batch"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    if ("augmented" in doc) == ("layers" in doc):
        raise ValueError(
            f"{where}: give the weights as exactly one of 'augmented' (bias in row 0) or 'layers' ({{W, b}} tables)"
        )
    try:
        if "augmented" in doc:
            mats = doc["augmented"]
            if not isinstance(mats, list) or not mats:
                raise ValueError("key 'augmented' must be a list of matrices, one per layer")
            params = from_augmented(
                [
                    _numbers(m, f"key 'augmented' matrix {i}", ndim=(1, 2))
                    for i, m in enumerate(mats)
                ],
                dtype="float64",
            )
        else:
            layers = doc["layers"]
            if (
                not isinstance(layers, list)
                or not layers
                or not all(isinstance(t, dict) for t in layers)
            ):
                raise ValueError("key 'layers' must be a list of tables with keys W and b")

            params = check_params(
                tuple(
                    {
                        "W": jnp.asarray(_array(t, "W", f"layers[{i}]", ndim=(2,))),
                        "b": jnp.asarray(_array(t, "b", f"layers[{i}]", ndim=(1,))),
                    }
                    for i, t in enumerate(layers)
                )
            )
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    x = _array(doc, "x", where, ndim=(1, 2))
    x = x[None, :] if x.ndim == 1 else x
    y = _array(doc, "y", where, ndim=(0, 1, 2))
    y = y.reshape(-1) if y.ndim == 0 else y
    n_out = params[-1]["W"].shape[1]
    if y.ndim == 1 and x.shape[0] == 1 and n_out > 1 and y.shape[0] == n_out:
        y = y[None, :]  # one example's labels, one per output unit, like a 1-D x
    if "batch" in doc and doc["batch"] != x.shape[0]:
        raise ValueError(f"{where}: key 'batch' says {doc['batch']} but x has {x.shape[0]} rows")
    activation = doc.get("activation", "sigmoid")
    if isinstance(activation, list):
        activation = tuple(activation)
    loss = doc.get("loss", "bce")
    if "sizes" in doc:
        sizes = (params[0]["W"].shape[0], *(p["W"].shape[1] for p in params))
        if list(doc["sizes"]) != list(sizes):
            raise ValueError(
                f"{where}: key 'sizes' says {doc['sizes']} but the weights give {list(sizes)}"
            )
    return NetworkSpec(params, x, y, activation, loss)


def read_network(path: Path | None) -> NetworkSpec:
    """A network file, or the seed exercise when ``path`` is None."""
    if path is None:
        ex = seed_exercise(dtype="float64" if jax.config.read("jax_enable_x64") else "float32")
        return NetworkSpec(ex.params, np.asarray(ex.x), np.asarray(ex.y), ex.activation, ex.loss)
    return network_from_dict(load_table(path), str(path))


def read_claimed(path: Path) -> tuple[dict[str, Any], NetworkSpec | None]:
    """(claimed steps, the network embedded in the file or None).

    Also reads a worked solution written by ``jaxbp explain --format json`` (or
    ``jaxbp exercise``): its steps are the claim and its network is embedded.
    """
    doc = load_table(path)
    if isinstance(doc.get("steps"), list):
        steps = doc["steps"]
        if not all(isinstance(s, dict) and "name" in s and "value" in s for s in steps):
            raise ValueError(
                f"{path}: key 'steps' must be a list of tables with 'name' and 'value'"
            )
        net = doc.get("network")
        if not isinstance(net, dict):
            raise ValueError(f"{path}: a worked solution needs its 'network' table")
        return {s["name"]: s["value"] for s in steps}, network_from_dict(net, f"{path} [network]")
    if "claimed" in doc:
        claimed = doc["claimed"]
        if not isinstance(claimed, dict):
            raise ValueError(f"{path}: key 'claimed' must be a table of step names to values")
        net = doc.get("network")
        if net is not None and not isinstance(net, dict):
            raise ValueError(f"{path}: key 'network' must be a table")
        return claimed, (network_from_dict(net, f"{path} [network]") if net is not None else None)
    return {k: v for k, v in doc.items() if k not in ("about", "mapping")}, None


def network_to_dict(spec: NetworkSpec) -> dict[str, Any]:
    """The inverse of ``network_from_dict``, in the augmented layout."""

    def tidy(a):
        a = np.asarray(a, np.float64)
        return np.where(a == np.round(a), np.round(a), a).tolist() if a.size else a.tolist()

    mats = [tidy(m) for m in to_augmented(spec.params)]
    ints = lambda v: [[int(e) if float(e).is_integer() else e for e in row] for row in v]
    return {
        "sizes": [int(spec.params[0]["W"].shape[0]), *(int(p["W"].shape[1]) for p in spec.params)],
        "activation": spec.activation
        if isinstance(spec.activation, str)
        else list(spec.activation),
        "loss": spec.loss,
        "augmented": [ints(m) for m in mats],
        "x": ints(tidy(spec.x)),
        "y": [int(v) if float(v).is_integer() else v for v in tidy(np.asarray(spec.y).reshape(-1))],
    }


def dumps_network(doc: dict[str, Any]) -> str:
    """JSON for a network table with one matrix row per line (readable, and still plain JSON)."""
    lines = ["{"]
    items = list(doc.items())
    for i, (k, v) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if k == "augmented":
            mats = []
            for m in v:
                rows = ",\n      ".join(json.dumps(r) for r in m)
                mats.append(f"    [\n      {rows}\n    ]")
            lines.append('  "augmented": [\n' + ",\n".join(mats) + f"\n  ]{comma}")
        else:
            lines.append(f"  {json.dumps(k)}: {json.dumps(v)}{comma}")
    return "\n".join([*lines, "}"])
