"""watchpoint and asyncwatchpoint: hardware breakpoints (the breakpoint PMU)
on a global of a program the test compiles (non-PIE, so its address is the
link-time one), traced with -c and with -p, against bpftrace 0.17."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.cprog import build_c

from .difflib_pt import compare, have_bpftrace, pytrace_only

pytestmark = pytest.mark.kernel

SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
volatile long counter;
volatile long other;
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 5;
    int wait = argc > 2;
    if (wait) { char line[8]; if (!fgets(line, sizeof line, stdin)) return 2; }
    else usleep(300000);
    for (int i = 0; i < n; i++) { counter = counter + 1; other = i; }
    long x = 0;
    for (int i = 0; i < 3; i++) x += counter;
    return (int)(x & 1);
}
"""


@pytest.fixture(scope="module")
def prog(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    exe = build_c(tmp_path_factory.mktemp("wp"), SOURCE, "wp")
    nm = subprocess.run(["nm", str(exe)], capture_output=True, text=True, check=True).stdout
    addr = next(int(line.split()[0], 16) for line in nm.splitlines() if line.endswith(" counter"))
    return str(exe), addr


def _writes(exe: str, addr: int, n: int) -> str:
    return pytrace_only(f"watchpoint:{addr:#x}:8:w {{ @w = count(); }}", tool_args=["-c", f"{exe} {n}"],
                        wait_exit=True)


def test_write_watchpoint_counts_each_write(prog: tuple[str, int]) -> None:
    """Writes to the watched word: the loop's n stores plus a fixed number
    made while the program starts (the loader clearing .bss): the count
    grows by exactly one per store."""
    exe, addr = prog
    counts = [int(_writes(exe, addr, n).split("@w: ")[1].split()[0]) for n in (3, 10)]
    assert counts[1] - counts[0] == 7


def test_read_write_watchpoint_and_asyncwatchpoint(prog: tuple[str, int]) -> None:
    exe, addr = prog
    out = pytrace_only(f"watchpoint:{addr:#x}:8:rw {{ @rw = count(); }} asyncwatchpoint:{addr:#x}:8:w {{ @aw = count(); }}",
                       tool_args=["-c", f"{exe} 7"], wait_exit=True)
    w = int(_writes(exe, addr, 7).split("@w: ")[1].split()[0])
    rw = int(out.split("@rw: ")[1].split()[0])
    aw = int(out.split("@aw: ")[1].split()[0])
    # 7 loads in the loop and 3 after it: every access traps once.
    assert aw == w and rw == w + 10


def test_watchpoint_on_a_running_process_with_p(prog: tuple[str, int]) -> None:
    exe, addr = prog
    child = subprocess.Popen([exe, "4", "wait"], stdin=subprocess.PIPE)
    try:
        time.sleep(0.2)

        def go() -> None:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.flush()
            child.wait(timeout=20)
        out = pytrace_only(f"watchpoint:{addr:#x}:8:w {{ @w[pid] = count(); }}", go,
                           tool_args=["-p", str(child.pid)])
        assert f"@w[{child.pid}]: 4\n" in out
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


@pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")
def test_watchpoint_against_bpftrace(prog: tuple[str, int]) -> None:
    exe, addr = prog
    compare(f"watchpoint:{addr:#x}:8:w {{ @w = count(); printf(\"hit\\n\"); }}", tool_args=["-c", f"{exe} 6"],
            wait_exit=True)
