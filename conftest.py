# Test-wide JAX settings (they also apply to the doctests in jaxbp/ and README.md).
# float64 must be available for the float64 bars; strict promotion and rank
# promotion errors catch silent dtype and broadcasting mistakes in the library.
import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")
