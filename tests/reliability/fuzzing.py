"""Shared pieces of the fuzz tests: settings, byte mutations and hostile JSON-like values.

Every reader gets at least :data:`FUZZ_EXAMPLES` examples, derandomised so CI runs are
reproducible. ``SCALES_VIZ_FUZZ=deep`` runs ten times as many from a fresh random seed, for
hunting by hand (``SCALES_VIZ_FUZZ=deep pytest tests/reliability``).
"""

from __future__ import annotations

import math
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ_EXAMPLES = 1000
_DEEP = os.environ.get("SCALES_VIZ_FUZZ") == "deep"

FUZZ = settings(
    max_examples=FUZZ_EXAMPLES * (10 if _DEEP else 1),
    deadline=None,
    derandomize=not _DEEP,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` with a few random edits: truncation, flipped, inserted or removed bytes."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "splice" and data:
            start = draw(st.integers(0, len(data) - 1))
            data[at:at] = data[start : start + draw(st.integers(1, 64))]
    return bytes(data)


def bytes_like(original: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, or `original` mutated, or `original` intact (a control)."""
    return st.one_of(
        st.binary(max_size=512),
        mutated(original),
        st.just(original),
    )


#: Awkward scalars: huge and negative integers, NaN and infinities, odd strings.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 10**9, 2**31, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0]),
    st.text(max_size=20),
    st.sampled_from(["../../etc/passwd", "/etc/passwd", "a\x00b", "..", "x" * 300, "€", ""]),
)

#: Nested JSON-like values built from :data:`SCALARS`.
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


@st.composite
def edited_record(draw: st.DrawFn, record: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a nested `record` with one to three fields replaced, removed or added."""
    import copy

    out = copy.deepcopy(record)
    for _ in range(draw(st.integers(1, 3))):
        node: Any = out
        # Walk down a random path of tables.
        while isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)))
            if not isinstance(node[key], dict):
                break
            node = node[key]
        if not isinstance(node, dict):
            continue
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "add" or not node:
            node[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
            continue
        key = draw(st.sampled_from(sorted(node)))
        if action == "remove":
            del node[key]
        else:
            node[key] = draw(VALUES)
    return out


def toml_text(record: dict[str, Any]) -> str:
    """`record` as TOML (tables of tables become inline tables; None values are dropped)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            if math.isnan(v):
                return "nan"
            if math.isinf(v):
                return "inf" if v > 0 else "-inf"
            return repr(v)
        if isinstance(v, str):
            return '"' + "".join(_toml_char(c) for c in v) + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v if x is not None) + "]"
        if isinstance(v, dict):
            return (
                "{"
                + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items() if x is not None)
                + "}"
            )
        raise TypeError(type(v))

    def key(k: str) -> str:
        return '"' + "".join(_toml_char(c) for c in k) + '"'

    lines = [f"{key(k)} = {value(v)}" for k, v in record.items() if v is not None]
    return "\n".join(lines) + "\n"


def _toml_char(c: str) -> str:
    if c in '"\\':
        return "\\" + c
    if ord(c) < 0x20 or ord(c) == 0x7F:
        return f"\\u{ord(c):04x}"
    if 0xD800 <= ord(c) <= 0xDFFF:
        return "?"
    return c
