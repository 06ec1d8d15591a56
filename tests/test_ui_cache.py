"""The view cache computes each key once, even when several sessions ask at once."""

from __future__ import annotations

import threading
import time

import pytest

from scales_viz_app.ui.cache import cached, is_cached


def test_concurrent_misses_compute_once() -> None:
    calls: list[int] = []

    def compute(progress: object) -> int:
        calls.append(1)
        time.sleep(0.5)
        return 42

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(cached("t-once", "k", compute)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42] * 4
    assert len(calls) == 1
    assert is_cached("t-once", "k")


def test_a_failed_compute_lets_the_next_caller_try() -> None:
    def broken(progress: object) -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cached("t-fail", "k", broken)
    assert not is_cached("t-fail", "k")
    assert cached("t-fail", "k", lambda progress: 7) == 7
