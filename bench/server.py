"""A fresh dashboard server for the bench scripts: started, answering, stopped.

``python -m scales_viz_app.ui.launch`` (as ``make run`` starts it: heavy imports and the
default model loaded first) on 127.0.0.1 with its own run store, or ``streamlit run APP`` for
another app (bench_projection's floor page).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Seconds a server may take to answer its health check.
START_TIMEOUT = 180.0


def free_port() -> int:
    """A port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    store: Path,
    *,
    port: int = 0,
    log: Path | None = None,
    cwd: Path = REPO,
    app: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m scales_viz_app.ui.launch`` (or ``streamlit run APP``) in `cwd` on
    127.0.0.1:`port` (0: a free one) with run store `store`, output to `log` (None: discarded);
    returns the process and its URL once its health endpoint answers."""
    port = port or free_port()
    command = [sys.executable, "-m", "scales_viz_app.ui.launch"]
    if app is not None:
        command = [sys.executable, "-m", "streamlit", "run", str(app)]
    command += ["--server.address", "127.0.0.1", "--server.port", str(port)]
    command += ["--server.headless", "true"]
    env = {**os.environ, "SCALES_VIZ_STORE": str(store)}
    # A log file, not a pipe: nobody reads a pipe while a benchmark runs, and a full one
    # would block the server.
    if log is None:
        out = subprocess.DEVNULL
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=out)
    else:
        with log.open("wb") as file:
            proc = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=file, stderr=subprocess.STDOUT
            )
    url = f"http://127.0.0.1:{port}"
    where = "" if log is None else f"; see {log}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}{where}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError(f"the server did not answer within {START_TIMEOUT:.0f} s{where}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server (kill it if it does not stop within 20 s)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)
