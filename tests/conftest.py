# Strict checks for the test suite (not for the documentation snippets, which run
# as users run them): promotion errors catch silent dtype and broadcasting mistakes
# in the library. Tests marked `standard_promotion` (those that drive optax's own
# optimizers, which mix int32 step counts with floats) run with JAX's defaults.
import jax
import pytest
from hypothesis import settings

# Fixed examples: CI sees the same cases on every run.
settings.register_profile("jaxbp", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("jaxbp")


def pytest_configure(config):
    config.addinivalue_line("markers", "standard_promotion: run with JAX's default dtype promotion")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    dtype_rule = "standard" if item.get_closest_marker("standard_promotion") else "strict"
    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion(dtype_rule):
        return (yield)
