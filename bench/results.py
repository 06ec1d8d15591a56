"""Shared helpers of the bench scripts: machine description and RESULTS.md sections."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    """One line: OS, CPU, cores, torch version and threads."""
    cpu = platform.processor() or platform.machine()
    cores = os.cpu_count()
    return (
        f"{platform.system()} {platform.machine()} ({cpu}), {cores} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


def write_section(title: str, body: str) -> None:
    """Replace (or append) the section of RESULTS.md between this title's markers."""
    begin, end = f"<!-- begin {title} -->", f"<!-- end {title} -->"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
