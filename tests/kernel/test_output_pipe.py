"""Ctrl-C while the reader of pytrace's output lags: nothing is lost.

The output goes into a pipe nobody reads while the workload runs, so pytrace
blocks in write() on a full pipe when SIGINT arrives.  Python 3.11's
buffered writer used to drop the rest of such a large write (a torn line and
every line after it, without a word); every event must still be printed,
in order, followed by the maps.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from .difflib_pt import getpid_n
from .harness import READY, command

SCRIPT = ('tracepoint:syscalls:sys_enter_getpid /pid == $1/ { printf("%d %5d|%-8s|%% %ld\\n", @n, @n * 7, "x", '
          '@n * -5000000000); @n++; }')
LINE = re.compile(r"(\d+) +(\d+)\|x       \|% (-?\d+)")


def test_sigint_while_blocked_on_a_full_pipe_loses_nothing() -> None:
    events = 6000  # ~250 KiB of lines: several times a pipe's 64 KiB
    env = dict(os.environ, __BPFTRACE_NOTIFY_PROBES_ATTACHED=READY)
    proc = subprocess.Popen(command("pytrace") + ["-e", SCRIPT, str(os.getpid())], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    head = b""
    deadline = time.monotonic() + 60
    while READY.encode() not in head and time.monotonic() < deadline:
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        head += chunk
    assert READY.encode() in head, proc.stderr.read().decode() if proc.stderr else ""
    getpid_n(events)          # nobody reads: pytrace fills the pipe and blocks
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    text = (head + out).decode()
    lines = [m for m in (LINE.fullmatch(ln) for ln in text.splitlines() if "|" in ln)]
    assert all(lines), [ln for ln in text.splitlines() if "|" in ln and not LINE.fullmatch(ln)][:3]
    assert [int(m.group(1)) for m in lines if m] == list(range(events))
    assert all(int(m.group(2)) == 7 * int(m.group(1)) for m in lines if m)
    assert text.endswith(f"\n\n\n@n: {events}\n"), text[-200:]
    assert proc.returncode == 0 and err.decode() == ""


def test_a_large_write_to_a_file_is_whole(tmp_path: Path) -> None:
    """The direct write path keeps -o files byte-identical to the buffered one."""
    out = tmp_path / "o.txt"
    script = 'BEGIN { $i = 0; while ($i < 3000) { printf("%d é\\n", $i); $i++; } exit(); }'
    r = subprocess.run(command("pytrace") + ["-o", str(out), "-e", script], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    lines = "".join(f"{i} é\n" for i in range(3000))
    assert out.read_text(encoding="utf-8") == f"Attaching 1 probe...\n{lines}\n\n"
