"""A process-wide result cache that shows a progress bar only when it computes.

``st.cache_data`` replays elements drawn inside the cached function, so a progress bar drawn
there would reappear on every hit. Here the cache is a bounded dict held by
``st.cache_resource`` (shared by sessions, as ``st.cache_data`` is), and the progress bar
lives outside it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")
#: Results kept per cache (oldest dropped first).
MAX_ENTRIES = 64
#: Seconds between checks while another session computes the same key.
GATE_POLL_S = 0.25

Progress = Callable[[int, int], None]


class _Store:
    def __init__(self) -> None:
        self.items: OrderedDict[Hashable, Any] = OrderedDict()
        self.lock = threading.Lock()
        # One gate per key being computed: the first session computes, the others wait.
        self.gates: dict[Hashable, threading.Lock] = {}


@st.cache_resource
def _store(name: str) -> _Store:
    return _Store()


def cached(
    name: str, key: Hashable, compute: Callable[[Progress], T], label: str = "Computing"
) -> T:
    """`compute(progress)` once per `key` in cache `name`; a progress bar while it runs.

    Sessions that ask for a key another session is computing wait for that result instead
    of computing it again (ten users opening the same view pay for it once). A waiting
    session polls, so Streamlit can still stop it on a rerun.
    """
    store = _store(name)
    with store.lock:
        if key in store.items:
            store.items.move_to_end(key)
            value: T = store.items[key]
            return value
        gate = store.gates.setdefault(key, threading.Lock())
    bar = st.progress(0.0, text=label)
    try:
        while not gate.acquire(timeout=GATE_POLL_S):
            bar.progress(0.0, text=f"{label} (another session is computing it)")
        try:
            with store.lock:
                if key in store.items:  # computed while this session waited
                    store.items.move_to_end(key)
                    found: T = store.items[key]
                    return found

            def progress(done: int, total: int) -> None:
                fraction = 0.0 if total <= 0 else min(1.0, done / total)
                bar.progress(fraction, text=f"{label}: {done} of {total}")

            result = compute(progress)
            with store.lock:
                store.items[key] = result
                while len(store.items) > MAX_ENTRIES:
                    store.items.popitem(last=False)
                store.gates.pop(key, None)
            return result
        finally:
            gate.release()
    finally:
        bar.empty()


def is_cached(name: str, key: Hashable) -> bool:
    """Whether `key` is already in cache `name`."""
    store = _store(name)
    with store.lock:
        return key in store.items
