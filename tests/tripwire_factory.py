"""A model factory the page must never reach: importing this module is the failure.

``tests/reliability/test_security.py`` forces ``python:tripwire_factory:boom`` into a
session's model name and checks that this module was never imported.
"""

from __future__ import annotations


def boom() -> None:
    raise AssertionError("a code-executing loader was reached from the page")
