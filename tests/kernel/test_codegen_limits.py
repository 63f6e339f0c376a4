"""What the code generator promises the verifier and LLVM, checked on the
kernel: allocas only in the entry block, scratch stack reused between
statements (long probes fit in 512 bytes), clean errors instead of LLVM
aborts, and the verifier's own last line when it refuses a program."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .difflib_pt import getpid_n, pytrace_only

pytestmark = pytest.mark.kernel

PID = os.getpid()


def pytrace(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytrace", *args], capture_output=True, text=True, timeout=60)


LONG_PROBE = ("tracepoint:syscalls:sys_enter_openat /pid == $1/ { "
              + " ".join(f'@h{i % 4} = hist({i}); @s[str(args->filename), {i}] = count(); printf("%s {i}\\n", comm);'
                         for i in range(24))
              + " }")


def test_allocas_only_in_entry_block() -> None:
    """Every alloca of every program sits in its entry block (LLVM's BPF
    back end aborts on dynamic stack allocation otherwise)."""
    script = ('tracepoint:syscalls:sys_enter_openat { $s = str(args->filename); if ($s == "x") { @a[$s] = count();'
              ' $t = (1, "two"); print($t); } else { $i = 0; while ($i < 3) { $i++; @b[$i, comm] = sum($i); } }'
              ' @c = $s == "y" ? "yes" : "no"; @h = hist(strncmp($s, "/tmp", 4)); }')
    r = pytrace("--emit", "ir", "-e", script)
    assert r.returncode == 0, r.stderr
    functions = [chunk.split("\n}\n", 1)[0] for chunk in r.stdout.split("\ndefine ")[1:]]
    assert len(functions) == 1
    for fn in functions:
        blocks = re.split(r"\n(?=[\w.\"-]+:)", fn)
        assert blocks[1].startswith("entry:") and len(blocks) > 10
        assert "alloca" in blocks[1]
        for block in blocks[2:]:
            assert "alloca" not in block, block


def test_long_probe_reuses_stack() -> None:
    """72 statements with strings, tuples and hist() in one probe: each
    statement's scratch is reused by the next, so the frame stays small."""
    out = pytrace_only(LONG_PROBE, lambda: os.close(os.open("/dev/null", os.O_RDONLY)), params=[PID])
    assert out.count("\n") >= 24
    assert "@s[/dev/null, 23]: 1" in out
    assert re.search(r"@h3: \n(.*\n)*\[16, 32\)\s+2 ", out)


def test_stack_overflow_is_a_clean_error() -> None:
    """Live strings that cannot fit in 512 bytes: a diagnostic, not an LLVM
    abort of the process."""
    script = ("tracepoint:syscalls:sys_enter_openat { "
              + " ".join(f"$v{i} = str(args->filename);" for i in range(12))
              + ' printf("%s %s\\n", $v0, $v11); }')
    r = pytrace("-e", script)
    assert r.returncode == 1
    assert "bytes of BPF stack" in r.stderr
    assert "Traceback" not in r.stderr


def test_verifier_rejection_reports_its_last_line() -> None:
    """A loop bounded only by data: the verifier refuses the program and
    pytrace says so with the verifier's own words."""
    r = pytrace("-e", "tracepoint:syscalls:sys_enter_write { $i = 0; while ($i < args->count) { $i++; @x[$i] = 1; } }")
    assert r.returncode == 1
    assert "verifier rejected" in r.stderr
    assert re.search(r"too complex|too large|infinite loop|back-edge", r.stderr), r.stderr


def test_many_programs_and_maps() -> None:
    """Twelve probes, each with its own map and printf, all load and count."""
    script = " ".join(f"tracepoint:syscalls:sys_enter_getpid /pid == $1/ {{ @m{i} = count(); @k[{i}] = sum({i}); }}"
                      for i in range(12))
    out = pytrace_only(script, lambda: getpid_n(3), params=[PID])
    for i in range(12):
        assert f"@m{i}: 3\n" in out
    assert "@k[11]: 33\n" in out


def test_exit_stops_every_probe_at_once() -> None:
    """After exit() no probe body runs again, even in a tight loop of events
    that keeps going while user space detaches (a flag in .bss checked by
    every program)."""
    out = pytrace_only("tracepoint:syscalls:sys_enter_getpid /pid == $1/ { @b++; if (@b >= 3) { exit(); } }"
                       " tracepoint:syscalls:sys_enter_getppid /pid == $1/ { @other++; }",
                       lambda: (getpid_n(3000), [os.getppid() for _ in range(100)]), params=[PID], wait_exit=True)
    assert "@b: 3\n" in out
    assert "@other" not in out
