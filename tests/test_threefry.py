"""The straight-line threefry lowering jaxbp compiles its programs with: JAX's bits, fewer loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp.util import _threefry
from jaxbp.util._threefry import unrolled_threefry

# Each draw of member m's key fold_in(key, m), as a fresh function on every call: JAX
# keeps a function's lowering once made, so each lowering below is made anew.
DRAWS = {
    "bits32": lambda: lambda k: jax.random.bits(k, (5, 3), jnp.uint32),
    "bits64": lambda: lambda k: jax.random.bits(k, (7,), jnp.uint64),
    "uniform32": lambda: lambda k: jax.random.uniform(k, (4, 3), jnp.float32, -1.0, 1.0),
    "normal64": lambda: lambda k: jax.random.normal(k, (11,), jnp.float64),
    "permutation": lambda: lambda k: jax.random.permutation(k, 9),
    "split": lambda: lambda k: jax.random.key_data(jax.random.split(k, 3)),
}
MEMBERS = jnp.arange(6)


def per_member(draw):
    return jax.jit(jax.vmap(lambda m: DRAWS[draw]()(jax.random.fold_in(jax.random.key(5), m))))


def hash_loops(draw) -> int:
    """The loops in a fresh lowering of ``draw`` (JAX's rolled hash is one per hash)."""
    return per_member(draw).lower(MEMBERS).as_text().count("stablehlo.while")


@pytest.mark.parametrize("draw", sorted(DRAWS))
def test_draws_are_bit_for_bit_those_of_the_rolled_lowering(draw):
    rolled, rolled_loops = np.asarray(per_member(draw)(MEMBERS)), hash_loops(draw)
    with unrolled_threefry():
        straight, straight_loops = np.asarray(per_member(draw)(MEMBERS)), hash_loops(draw)
    assert rolled.dtype == straight.dtype and rolled.shape == straight.shape
    np.testing.assert_array_equal(rolled, straight)
    if _threefry._ROLLED is not None:  # this JAX rolls the hash on CPU: the scope unrolls it
        # fold_in, then the draw's hashes (a permutation's sorts bring no loop of their own)
        assert straight_loops == 0 and rolled_loops >= 2, (rolled_loops, straight_loops)


def test_the_scope_nests_and_puts_the_rule_back():
    before = hash_loops("bits32")
    with unrolled_threefry():
        with unrolled_threefry():
            assert hash_loops("bits32") == 0
        assert hash_loops("bits32") == 0
    assert hash_loops("bits32") == before
