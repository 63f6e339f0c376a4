"""printf and friends: bpftrace 0.17 and pytrace on the same events.

Every conversion and flag 0.17 supports (see pytrace/semantic/formats.py):
``%d %u %x %X %o %p`` with ``hh h l ll j z t``, ``%c %s %r %rx %rh``,
``-`` and ``0`` flags, width and precision; integers wrap to the C type of
the length modifier (no modifier: int).
"""

from __future__ import annotations

import os

import pytest

from .difflib_pt import Devnull, compare, have_bpftrace, open_n

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]

PID = os.getpid()

BEGIN_CASES = {
    "length_modifiers": (
        'BEGIN { printf("%hhd %hd %d %ld %lld %jd %zd %td\\n", 300, 70000, 5000000000, 5000000000, -1, -2, -3, -4);'
        ' printf("%hhu %hu %u %lu %llu\\n", -1, -1, -1, -1, -1);'
        ' printf("%hhx %hx %x %lx %llX %o %lo\\n", -1, -1, -1, -1, -1, 511, -1); exit(); }',
        ["44 4464 705032704 5000000000 -1 -2 -3 -4", "255 65535 4294967295 18446744073709551615"]),
    "width_precision_flags": (
        'BEGIN { printf("[%10d][%-10d][%010d][%.3d][%8.3d][%-8.3d][%010x][%-10x][%10X]\\n", 42, 42, -42, 7, 7, 7,'
        ' 255, 255, 255); printf("[%s][%10s][%-10s][%.2s][%5.1s]\\n", "abc", "abc", "abc", "abc", "abc");'
        ' printf("[%c][%5c][%-5c]\\n", 66, 67, 68); printf("100%% done %d%%\\n", 5);'
        ' printf("[%5u][%-5lu][%05lx][%lo]\\n", 3, 4, 255, 8); exit(); }',
        ["[-000000042]", "[    a]", "100% done 5%%"]),
    "pointer_and_plain": (
        'BEGIN { printf("%p %p\\n", 0, 4096); printf("no args\\n"); printf("%d%d%d\\n", 1, 2, 3);'
        ' printf("tab\\there \\"quoted\\" back\\\\slash\\n"); printf("%s%s\\n", "a", "b"); exit(); }',
        ["no args", "123"]),
    "strings_and_variables": (
        'BEGIN { $s = "hello"; $t = $s; printf("%s %d %d\\n", $t, $s == "hello", $s != "hellp");'
        ' $e = 1 > 2 ? "yes" : "no"; printf("%s|%-6s|%6s|\\n", $e, $e, $s); @str = "map string";'
        ' printf("%s\\n", @str); printf("%s\\n", str($1)); exit(); }',
        ["hello 1 1", "no|no    |", "map string"]),
    "seven_arguments": (
        'BEGIN { printf("%d %s %x %c %u %ld %s\\n", -1, "two", 3, 52, 5, -6, "seven"); exit(); }',
        ["-1 two 3 4 5 -6 seven"]),
}


@pytest.mark.parametrize("name", sorted(BEGIN_CASES))
def test_begin(name: str) -> None:
    script, expect = BEGIN_CASES[name]
    params = ["param-one"] if "$1" in script else []
    compare(script, wait_exit=True, expect=expect, params=params)


def test_printf_lines_in_order_with_comm_and_filename() -> None:
    """Every event prints one line, in the order the events happened, with
    %s of comm and of str(args->filename), widths applied."""
    script = ('tracepoint:syscalls:sys_enter_openat /pid == $1/ {'
              ' printf("%s|%-28s|%30s|%d|%c\\n", comm, str(args->filename), str(args->filename), args->dfd,'
              ' 65 + @n); @n++; }')
    paths = [f"/tmp/pytrace-printf-{i}" for i in range(6)]

    def work() -> None:
        for p in paths:
            open_n(p, 1)
    out = compare(script, work, params=[PID])
    lines = [ln for ln in out.splitlines() if "|" in ln]
    assert [ln.split("|")[1].strip() for ln in lines] == paths
    assert [ln.split("|")[4] for ln in lines] == list("ABCDEF")


def test_printf_integer_fields_of_tracepoints() -> None:
    """Tracepoint integer fields (size_t count, int fd, off_t offset) under
    every integer conversion, including the int truncation of %d."""
    script = ('tracepoint:syscalls:sys_enter_write /pid == $1 && args->fd == $2/ {'
              ' printf("%d %u %x %lx %5d %-5d| %hhu %ld %lu\\n", args->count, args->count, args->count, args->count,'
              ' args->count, args->count, args->count, args->count * -1, args->count * 1000000000); }')
    with Devnull() as dn:
        out = compare(script, lambda: dn.write([0, 1, 255, 256, 70000]), params=[PID, dn.fd])
    assert "70000 70000 11170 11170 70000 70000| 112 -70000 70000000000000" in out


def test_printf_buffers() -> None:
    """%r %rx %rh of buf() with a run-time length, a constant length, and
    bytes that are not printable."""
    script = ('tracepoint:syscalls:sys_enter_write /pid == $1 && args->fd == $2/ {'
              ' printf("%r|%rx|%rh\\n", buf(args->buf, args->count), buf(args->buf, 3), buf(args->buf, 2)); }')
    with Devnull() as dn:
        def writes() -> None:
            os.write(dn.fd, b"hi\x01\xff\n")
            os.write(dn.fd, b"")
            os.write(dn.fd, b"0123456789" * 10)
        out = compare(script, writes, params=[PID, dn.fd])
    assert "hi\\x01\\xff\\x0a|\\x68\\x69\\x01|68 69" in out


def test_printf_json() -> None:
    """-f json: printf, print() of maps and values, hist and stats lines."""
    script = ('BEGIN { printf("a\\tb\\"q\\\\ %d\\n", 5); @m[1] = 1; @m[2] = 2; @h = hist(4); @h = hist(40);'
              ' @l = lhist(4, 0, 10, 5); print(@m, 1); print(@h); print(@l, 0, 2); @s = stats(3); print(@s);'
              ' print((1, "x")); print(7); print("str"); @k["a", 1] = count(); @a = avg(5); exit(); }')
    out = compare(script, tool_args=["-f", "json"], wait_exit=True, json=True)
    assert '{"type": "printf", "data": "a\\tb\\"q\\\\ 5\\n"}' in out


def test_printf_json_from_tracepoint() -> None:
    script = ('tracepoint:syscalls:sys_enter_openat /pid == $1/ { printf("%s %d\\n", str(args->filename), @n);'
              ' @n++; @f[str(args->filename)] = count(); @h = hist(@n); }')
    out = compare(script, lambda: open_n("/tmp/pytrace-json-\u00e9", 3), params=[PID], tool_args=["-f", "json"],
                  json=True)
    assert '"@n": 3' in out


def test_json_async_messages() -> None:
    """-f json: cat, time, join (no trailing newline) and system() (its
    output captured as a "syscall" message)."""
    import subprocess
    import time as _time
    script = ('BEGIN { cat("/proc/sys/kernel/ostype"); time("%Y-\\n"); }'
              ' tracepoint:syscalls:sys_enter_execve /str(args->filename) == "/bin/echo"/ { join(args->argv, ",");'
              ' system("echo sys %d", 7); }')
    compare(script, lambda: subprocess.run(["/bin/echo", "a", "b c"], stdout=subprocess.DEVNULL),
            tool_args=["-f", "json", "--unsafe"], json=True,
            expect=['{"type": "cat", "data": "Linux\\n"}', _time.strftime('{"type": "time", "data": "%Y-\\n"}'),
                    '{"type": "join", "data": "/bin/echo,a,b c"}', '{"type": "syscall", "data": "sys 7\\n"}'])
