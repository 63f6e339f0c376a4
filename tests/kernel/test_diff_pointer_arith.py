"""Pointer arithmetic, bpftrace 0.17 against pytrace: ``$p + n`` moves a
pointer by n elements (n * sizeof(*p) bytes), as C does, for +, -, +=
and ++; an int plus a pointer too.  (pytrace used to add bytes.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .difflib_pt import compare, have_bpftrace

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]

SCRIPT = (
    'BEGIN { $a = (uint32 *)8; $b = (uint64 *)8; $c = (uint8 *)8; $d = (struct task_struct *)8; $e = (int16 *)8;'
    ' printf("a+1 %lu\\n", (uint64)($a + 1)); printf("b+2 %lu\\n", (uint64)($b + 2));'
    ' printf("c+3 %lu\\n", (uint64)($c + 3)); printf("d+1 %lu\\n", (uint64)($d + 1));'
    ' printf("a-1 %lu\\n", (uint64)($a - 1)); printf("1+e %lu\\n", (uint64)(1 + $e));'
    ' $a += 1; printf("a+=1 %lu\\n", (uint64)$a); $a++; printf("a++ %lu\\n", (uint64)$a);'
    ' $b--; printf("b-- %lu\\n", (uint64)$b); exit(); }')


def test_pointer_arithmetic_scales_by_the_pointee() -> None:
    out = compare(SCRIPT, wait_exit=True)
    assert "a+1 12\n" in out and "b+2 24\n" in out and "c+3 11\n" in out and "a++ 16\n" in out
    assert "b-- 0\n" in out


def test_reading_the_next_element(tmp_path: Path) -> None:
    # args.argv + 1 is argv[1]'s slot: 8 bytes on, not 1.
    script = ('tracepoint:syscalls:sys_enter_execve /comm == "ptarith_sh"/ '
              '{ printf("%s %s\\n", str(*args->argv), str(*(args->argv + 1))); exit(); }')
    sh = tmp_path / "ptarith_sh"
    shutil.copy("/bin/sh", sh)
    out = compare(script, lambda: subprocess.run([str(sh), "-c", "/bin/true second"], check=True), wait_exit=True)
    assert [ln for ln in out.splitlines() if ln] == ["/bin/true second"]
