# Settings for every test and doctest (jaxbp/, README.md): float64 must be
# available for the float64 bars. tests/conftest.py adds the strict checks.
import jax

jax.config.update("jax_enable_x64", True)
