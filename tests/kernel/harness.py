"""Runs pytrace or bpftrace on a script around a workload the test controls.

Both tools print the name in ``__BPFTRACE_NOTIFY_PROBES_ATTACHED`` once every
probe is attached (bpftrace's own test protocol); the harness waits for it,
runs the workload, then stops the tracer with SIGINT (or lets the script
exit) and returns what it printed.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

READY = "__BPFTRACE_NOTIFY_PROBES_ATTACHED"  # the line both tools print


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def body(self) -> str:
        """stdout without the 'Attaching N probes...' line and the ready marker."""
        lines = [ln for ln in self.stdout.split("\n") if ln != READY and not ln.startswith("Attaching ")]
        return "\n".join(lines)


def command(tool: str) -> list[str]:
    if tool == "pytrace":
        return [sys.executable, "-m", "pytrace"]
    return ["bpftrace"]


def run(tool: str, script: str, workload: Callable[[], None] | None = None, *, args: list[str] | None = None,
        timeout: float = 60, wait_exit: bool = False, env: dict[str, str] | None = None) -> Result:
    cmd = command(tool) + (args or []) + ["-e", script]
    full_env = dict(os.environ, __BPFTRACE_NOTIFY_PROBES_ATTACHED=READY, **(env or {}))
    full_env.pop("BPFTRACE_STRLEN", None)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
    assert proc.stdout is not None and proc.stderr is not None
    out = b""
    early_err = b""
    deadline = time.monotonic() + timeout
    ready = False
    # pytrace prints the marker's value on stdout; bpftrace 0.17 prints the
    # variable's name on stderr: wait for either.
    while not ready and time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout, proc.stderr], [], [], 0.1)
        if proc.stdout in r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
        if proc.stderr in r:
            early_err += os.read(proc.stderr.fileno(), 65536)
        ready = READY.encode() in out or b"__BPFTRACE_NOTIFY_PROBES_ATTACHED" in early_err
        if not r and proc.poll() is not None:
            break
    if ready and workload is not None:
        workload()
    if ready and not wait_exit:
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
    try:
        rest, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, err = proc.communicate()
    return Result(proc.returncode, (out + rest).decode("utf-8", "replace"),
                  (early_err + err).decode("utf-8", "replace"))


def normalise(text: str) -> str:
    """Mask what varies by nature between runs and tools: addresses."""
    return re.sub(r"0x[0-9a-f]{6,}", "0xADDR", text)
