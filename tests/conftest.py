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
    config.addinivalue_line(
        "markers", "slow: the long ones (processes of their own, whole sweeps and studies)"
    )


# The long tests (a sweep killed and resumed, the studies, multi-process JAX jobs): `make test` runs them; `pytest -m "not slow"` leaves them out.
SLOW_FILES = ("test_shards.py", "test_studies.py")
SLOW_TESTS = (
    "test_sigkill_then_resume_equals_an_uninterrupted_run",
    "test_ctrl_c_leaves_a_resumable_folder",
    "test_load_run_gives_back_what_train_many_returns",
    "test_files_written_atomically_get_the_mode_of_a_plain_write",
    "test_resume_with_another_file_size_keeps_the_finished_chunks",
    "test_run_members_as_a_dataframe",
    "test_the_time_estimate_bounds_the_real_run",
    "test_chunk_size_does_not_change_any_bit",
    "test_two_processes_gather_the_single_process_result",
    "test_devices_do_not_change_any_bit",
    "test_ten_thousand_members_share_one_copy_of_the_data",
    "test_devices_and_processes_change_no_bit",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_FILES or getattr(item, "originalname", None) in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def torch():
    """PyTorch, for the tests that compare with it; they skip where it is not installed
    (the lowest-versions run). Imported when such a test first runs, not at collection."""
    return pytest.importorskip("torch")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    dtype_rule = "standard" if item.get_closest_marker("standard_promotion") else "strict"
    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion(dtype_rule):
        return (yield)
