"""save_params / load_params: exact round trips in every dtype, clear errors, no pickle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from tests.helpers import assert_tree_equal


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, jnp.bfloat16])
@pytest.mark.parametrize("sizes", [(3, 2, 1), (4, 1), (2, 5, 3, 2)])
def test_round_trip_is_exact(tmp_path, dtype, sizes):
    params = jaxbp.init_mlp(jax.random.key(1), sizes, dtype=dtype)
    path = tmp_path / "p.npz"
    jaxbp.save_params(path, params)
    back = jaxbp.load_params(path)
    assert_tree_equal(back, params)
    assert all(leaf.dtype == jnp.dtype(dtype) for leaf in jax.tree_util.tree_leaves(back))
    # Any .npz reader sees plain arrays, no pickle needed.
    with np.load(path, allow_pickle=False) as z:
        assert f"layers/{len(sizes) - 2}/W" in z.files


def test_files_of_the_wrong_kind_or_structure_are_refused(tmp_path):
    p = tmp_path / "other.npz"
    np.savez(p, W=np.ones((2, 2)))
    with pytest.raises(ValueError, match="not a jaxbp parameter file"):
        jaxbp.load_params(p)
    bad = tmp_path / "bad.npz"
    np.savez(
        bad,
        format=np.array("jaxbp.params/1 float32"),
        **{"layers/0/W": np.ones((3, 2), np.float32), "layers/0/b": np.ones(3, np.float32)},
    )
    with pytest.raises(ValueError, match=r"bad.npz\[0\]\['b'\] must have shape \(2,\)"):
        jaxbp.load_params(bad)
    text = tmp_path / "net.npz"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="not a parameter file"):
        jaxbp.load_params(text)
    with pytest.raises(ValueError, match="no such file"):
        jaxbp.load_params(tmp_path / "missing.npz")
