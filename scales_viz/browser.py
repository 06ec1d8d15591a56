"""The headless chromium that the browser tests and benchmarks drive.

Debian's ``chromium`` (installed with apt by ``make test``), never a downloaded browser, with
flags that keep it offline and quiet: no GPU, no QUIC, no first-run, background networking,
component updates or sync. Pass both to Playwright:
``playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)``.
"""

from __future__ import annotations

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
