"""Parameters saved to and loaded from ``.npz`` files: portable, exact, no pickle.

A file holds one array per leaf, named ``layers/<i>/W`` and ``layers/<i>/b``, and a
``format`` entry (``jaxbp.params/1``) with the dtype's name, so that a tree of any
floating dtype comes back bit for bit (bfloat16, which NumPy cannot name, is
stored as its 16 bits and viewed back). NumPy reads it with ``allow_pickle=False``;
any tool that reads ``.npz`` can read it.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from ..util._dtypes import resolve_dtype
from ..util._files import write_atomic
from ._tree import Params, check_params

__all__ = ["load_params", "save_params"]

FORMAT = "jaxbp.params/1"
_KEY = re.compile(r"layers/(\d+)/(W|b)")


def save_params(path: str | os.PathLike, params: Params) -> None:
    """Write ``params`` to ``path`` (an ``.npz`` file), atomically.

    Examples:
      >>> import jax, tempfile, os
      >>> from jaxbp import init_mlp
      >>> p = init_mlp(jax.random.key(0), (3, 2, 1), dtype="float32")
      >>> f = os.path.join(tempfile.mkdtemp(), "net.npz")
      >>> save_params(f, p)
      >>> q = load_params(f)
      >>> bool((q[0]["W"] == p[0]["W"]).all()), q[0]["W"].dtype
      (True, dtype('float32'))
    """
    params = check_params(params)
    dtype = np.dtype(params[0]["W"].dtype)
    arrays = {"format": np.array(f"{FORMAT} {dtype.name}")}
    for i, layer in enumerate(params):
        for k, a in layer.items():
            a = np.asarray(a)
            arrays[f"layers/{i}/{k}"] = a.view(np.uint16) if dtype.name == "bfloat16" else a
    write_atomic(path, lambda f: np.savez(f, **arrays))


def load_params(path: str | os.PathLike) -> Params:
    """The parameter tree saved by [`save_params`][jaxbp.nn.save_params], in the dtype it was saved in.

    Raises ``ValueError`` naming the file and what is wrong when it is not such a file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a parameter file (.npz): {e}") from None
    head = str(arrays.pop("format", "")).split()
    if len(head) != 2 or head[0] != FORMAT:
        raise ValueError(f"{path}: not a jaxbp parameter file (no {FORMAT!r} entry)")
    dtype = jnp.dtype(head[1])
    resolve_dtype(dtype, argname=f"{path}: the saved dtype")
    layers: dict[int, dict[str, np.ndarray]] = {}
    for key, a in arrays.items():
        m = _KEY.fullmatch(key)
        if m is None:
            raise ValueError(f"{path}: unexpected entry {key!r}; expected layers/<i>/W and /b")
        layers.setdefault(int(m[1]), {})[m[2]] = a.view(dtype) if dtype.name == "bfloat16" else a
    if sorted(layers) != list(range(len(layers))):
        raise ValueError(f"{path}: layers {sorted(layers)} are not numbered 0, 1, ...")
    try:
        return check_params(
            tuple(
                {k: jnp.asarray(v, dtype) for k, v in layers[i].items()} for i in range(len(layers))
            ),
            argname=str(path),
        )
    except (TypeError, ValueError) as e:
        raise ValueError(str(e)) from None
