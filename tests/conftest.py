from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _run_store_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Every test's run store is a fresh temporary file unless the test sets its own."""
    from scales_viz.lso.store import STORE_ENV

    monkeypatch.setenv(STORE_ENV, str(tmp_path_factory.mktemp("store") / "runs.sqlite"))


#: Test files that are slow by nature: the app under AppTest, a real browser, fuzzing and
#: fault injection (``make test-fast`` leaves them out; ``make test`` and CI run them).
SLOW_FILES = ("test_app", "test_browser", "test_fuzz_", "test_faults", "test_bad_latents")
#: Tests measured at several seconds each on the 2-core machine (``pytest --durations``).
SLOW_TESTS = frozenset(
    {
        "test_an_interrupted_run_resumes_to_the_same_weights",
        "test_every_command_takes_any_model_spec",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` (by file, by name, or any test that drives the app with AppTest) and
    ``gpu`` (tests parametrised on a CUDA device)."""
    import inspect

    for item in items:
        name = Path(str(item.fspath)).name
        function = getattr(item, "function", None)
        try:
            source = inspect.getsource(function) if function is not None else ""
        except (OSError, TypeError):
            source = ""
        if (
            name.startswith(SLOW_FILES)
            or getattr(item, "originalname", item.name) in SLOW_TESTS
            or "new_app(" in source
            or "AppTest" in source
        ):
            item.add_marker(pytest.mark.slow)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "cuda" in str(callspec.params.get("device", "")):
            item.add_marker(pytest.mark.gpu)


@pytest.fixture(scope="session")
def ray_cluster():  # type: ignore[no-untyped-def]
    """One local Ray cluster for the whole test run."""
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        object_store_memory=100 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()
