"""Debian's syscount.bt under bpftrace 0.17 and pytrace at once, around one
workload the test controls.  (Debian's other syscall tools run under both
tracers in tests/kernel/test_stdlib_tools_proc.py, next to the stdlib's
ports of them: the ``form`` fixture runs pytrace on each.)

The file runs as it is (``bpftrace /usr/sbin/syscount.bt``).  It counts the
whole machine over each tracer's own window: the workload's own count must
be the same, the rest is compared by its shape.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cprog import build_c

from .difflib_pt import have_bpftrace, pinned, tool_outputs as outputs

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]


# ---------------------------------------------------------------- counters


def test_syscount(tmp_path: Path) -> None:
    """A program making 200,000 getpid and 100,000 getppid calls: it tops
    both lists, with the same count in both tracers (every syscall of its
    life is inside both tracing windows).  The other entries are the rest of
    the machine, counted over each tracer's own window: their keys and
    values are masked."""
    exe = build_c(tmp_path, "#include <unistd.h>\n#include <sys/syscall.h>\n"
                            "int main(void) { for (int i = 0; i < 200000; i++) syscall(SYS_getpid);\n"
                            "for (int i = 0; i < 100000; i++) syscall(SYS_getppid); return 0; }\n",
                  name="ptsyscount")
    bt, pt = outputs("syscount", lambda: subprocess.run([str(exe)], check=True, preexec_fn=pinned()))

    def shape(body: str) -> list[str]:
        out: list[str] = []
        for ln in body.split("\n"):
            if ln.startswith("@process[ptsyscount]"):
                pass
            elif ln.startswith("@syscall[") and not ln.startswith(("@syscall[39]", "@syscall[110]")):
                ln = "@syscall[ID]: N"
            elif ln.startswith("@process["):
                ln = "@process[COMM]: N"
            elif ln.startswith(("@syscall[39]", "@syscall[110]")):
                n = int(ln.split(": ")[1])
                assert n >= (200000 if "[39]" in ln else 100000), ln
                ln = ln.split(":")[0] + ": N"
            if not (out and ln == out[-1] == "@process[COMM]: N"):
                out.append(ln)
        return out
    a, b = shape(bt), shape(pt)
    assert b == a, f"--- bpftrace ---\n{bt}\n--- pytrace ---\n{pt}"
    assert b[:4] == ["Counting syscalls... Hit Ctrl-C to end.", "", "Top 10 syscalls IDs:", "@syscall[ID]: N"]
    top = b.index("Top 10 processes:")
    assert b[top - 3:top] == ["@syscall[110]: N", "@syscall[39]: N", ""]
    assert b[3:top - 3] == ["@syscall[ID]: N"] * 8
    mine = [ln for ln in pt.split("\n") if ln.startswith("@process[ptsyscount]")]
    assert mine and int(mine[0].split(": ")[1]) > 300000
    assert [ln for ln in bt.split("\n") if ln.startswith("@process[ptsyscount]")] == mine
