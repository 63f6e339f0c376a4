"""stdlib/tools/strace.py without the kernel: how it pairs the events of a
call whatever order its BPF programs ran in, and how it decodes and
quotes (the kernel test, tests/kernel/test_stdlib_tool_strace.py, runs it
for real)."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from types import ModuleType

import pytest

from pytrace.sysinfo import Param

TOOL = Path(__file__).resolve().parents[2] / "stdlib" / "tools" / "strace.py"


@pytest.fixture(scope="module")
def st() -> ModuleType:
    spec = importlib.util.spec_from_file_location("strace_tool_under_test", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(st: ModuleType) -> dict[int, object]:
    S = st.Syscall
    return {
        0: S("read", True, [Param("unsigned int", "fd"), Param("char *", "buf"), Param("size_t", "count")],
             frozenset(), 1),
        1: S("write", True, [Param("unsigned int", "fd"), Param("const char *", "buf"), Param("size_t", "count")],
             frozenset(), 1),
        39: S("getpid", True, [], frozenset(), None),
        82: S("rename", True, [Param("const char *", "oldname"), Param("const char *", "newname")],
              frozenset({0, 1}), None),
        231: S("exit_group", True, [Param("int", "error_code")], frozenset(), None),
        257: S("openat", True, [Param("int", "dfd"), Param("const char *", "filename"), Param("int", "flags"),
                                Param("umode_t", "mode")], frozenset({1}), None),
    }


def entry(tid: int, nr: int, *args: int, ts: int = 1000, pid: int = 100) -> tuple[int, ...]:
    return (0, tid, pid, ts, nr, *args, *[0] * (6 - len(args)))


def run(st: ModuleType, events: list[tuple[object, ...]], **kw: object) -> str:
    out = io.StringIO()
    p = st.Printer(table(st), out, root=None, **kw)
    for e in events:
        p.on_value(e)
    p.finish()
    return out.getvalue()


def test_events_in_any_order(st: ModuleType) -> None:
    path = (2, 100, 1, 257, "/etc/passwd")
    enter = entry(100, 257, 0xFFFFFF9C, 0x1000, 0o2000000)
    leave = (1, 100, 100, 13_000, 257, 3)
    line = 'openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3 <0.000012>\n'
    assert run(st, [enter, path, leave]) == line
    assert run(st, [enter, leave, path]) == line     # the string program ran after the exit's
    assert run(st, [path, enter, leave]) == line     # ... or before the entry's (execve)


def test_two_strings_and_errors(st: ModuleType) -> None:
    out = run(st, [entry(7, 82, 1, 2, pid=7), (1, 7, 7, 2000, 82, -13),
                   (2, 7, 1, 82, "b"), (2, 7, 0, 82, "a")])
    assert out == 'rename("a", "b") = -1 EACCES (Permission denied) <0.000001>\n'


def test_buffers(st: ModuleType) -> None:
    data = b"0123456789abcdefghijklmnopqrstuvwxyz"
    out = run(st, [entry(1, 1, 1, 0x10, 40, pid=1), (3, 1, 1, 1, data[:33]), (1, 1, 1, 1000, 1, 40),
                   entry(1, 0, 3, 0x20, 4096, pid=1), (3, 1, 1, 0, b"\x7fELF\x02\x01\x00\x001"), (1, 1, 1, 1000, 0, 9),
                   entry(1, 0, 3, 0x20, 4096, pid=1), (3, 1, 1, 0, b"\x00"), (1, 1, 1, 1000, 0, -9)])
    assert out.splitlines() == [
        'write(1, "0123456789abcdefghijklmnopqrstuv"..., 40) = 40 <0.000000>',
        'read(3, "\\177ELF\\2\\1\\0\\0001", 4096) = 9 <0.000000>',   # \000 before a digit
        "read(3, 0x20, 4096) = -1 EBADF (Bad file descriptor) <0.000000>",
    ]


def test_exit_group_unfinished_and_threads(st: ModuleType) -> None:
    out = run(st, [entry(100, 39), (1, 100, 100, 1500, 39, 100),
                   entry(101, 0, 0, 0x30, 10), (3, 101, 1, 0, b""),     # blocked: no exit yet
                   entry(100, 231, 2)])
    assert out.splitlines() == [
        "getpid() = 100 <0.000000>",
        "exit_group(2) = ?",
        "+++ exited with 2 +++",
        "[pid 101] read(0, 0x30, 10 <unfinished ...>",
    ]


def test_only(st: ModuleType) -> None:
    events = [entry(5, 39, pid=5), (1, 5, 5, 3000, 39, 5),
              entry(5, 257, 0xFFFFFF9C, 1, 0), (2, 5, 1, 257, "x"), (1, 5, 5, 5000, 257, -2),
              entry(5, 231, 0, pid=5)]
    assert run(st, events, only={257}).splitlines() == [
        'openat(AT_FDCWD, "x", O_RDONLY) = -1 ENOENT (No such file or directory) <0.000004>',
        "+++ exited with 0 +++"]


def test_summary_from_the_maps(st: ModuleType) -> None:
    maps = ("Attaching 3 probes...\n\n@calls[231]: 1\n@calls[39]: 1\n@calls[257]: 4\n\n"
            "@errors[257]: 3\n\n@ns[39]: 2000\n@ns[257]: 4000\n\n")
    summary = st.Summary()
    st.read_summary(maps, table(st), summary)
    out = io.StringIO()
    summary.write(out)
    assert out.getvalue().splitlines() == [
        "% time     seconds  usecs/call     calls    errors syscall",
        "------ ----------- ----------- --------- --------- ----------------",
        " 66.67    0.000004           1         4         3 openat",
        " 33.33    0.000002           2         1           getpid",
        "  0.00    0.000000           0         1           exit_group",
        "------ ----------- ----------- --------- --------- ----------------",
        "100.00    0.000006           1         6         3 total",
    ]


def test_quote(st: ModuleType) -> None:
    assert st.quote('a"b\\c\n\t') == '"a\\"b\\\\c\\n\\t"'
    assert st.quote(b"\x00\x01x\x1b7") == '"\\0\\1x\\0337"'
    assert st.quote("abcdef", 3) == '"abc"...'
    assert st.quote("abc", 3) == '"abc"'


def test_bad_usage_never_raises(st: ModuleType) -> None:
    for argv in ([], ["-p"], ["-p", "abc"], ["-x"], ["-e", "bogus", "-p", "1"]):
        err = io.StringIO()
        assert st.main(argv, io.StringIO(), err) == 2
        assert "Traceback" not in err.getvalue() and "error" in err.getvalue()
