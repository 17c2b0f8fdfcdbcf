# Settings for every test and doctest (jaxbp/, README.md): float64 must be
# available for the float64 bars. tests/conftest.py adds the strict checks.
import os
import shutil
import tempfile

# One persistent compilation cache for the whole run, in a temporary folder: the xdist
# workers and the processes the tests start reuse each other's compiled programs
# (jaxbp's programs are small and compile in well under a second, hence no minimum).
# It is made here, before xdist starts its workers, so that they inherit it, and it
# is removed when the run that made it ends.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="jaxbp-test-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

    def pytest_unconfigure(config):
        if not hasattr(config, "workerinput"):  # the controller, not an xdist worker
            shutil.rmtree(_cache, ignore_errors=True)


import jax

jax.config.update("jax_enable_x64", True)
# Start the CPU backend now, with one device. A test that calls the jaxbp command in
# this process (whose sweep calls use_cpu_cores) then finds it started and cannot
# change the device count or XLA_FLAGS for the tests that run after it in the same
# worker; tests of several devices start processes of their own.
jax.devices()
