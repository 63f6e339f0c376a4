"""``pytrace -l`` pattern handling over a fake tracefs and a fake BTF
string table (no kernel needed)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from pytrace import listing


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "tracing"
    (root / "events").mkdir(parents=True)
    events = ["sched:sched_switch", "sched:sched_wakeup", "syscalls:sys_enter_openat", "net9p:x",
              "net:net_dev_xmit"]
    (root / "available_events").write_text("\n".join(events) + "\n")
    btf = tmp_path / "btf"
    btf.mkdir()
    strings = b"\x00int\x00btf_trace_sched_switch\x00__bpf_trace_sched_switch\x00btf_trace_net_dev_xmit\x00"
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, len(strings))
    (btf / "vmlinux").write_bytes(header + strings)
    from pytrace.kernel import tracefs
    monkeypatch.setattr(tracefs, "tracefs_root", lambda *a, **kw: str(root))
    from pytrace.providers import rawtracepoint
    real = rawtracepoint.raw_tracepoints
    monkeypatch.setattr(rawtracepoint, "raw_tracepoints", lambda btf_dir=str(btf): real(btf_dir))
    return tmp_path


def lines(pattern: str | None, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    listing.list_probes(pattern, out, **kw)
    return out.getvalue().splitlines()


def test_everything_sorted_as_strings(fake: Path) -> None:
    got = lines(None)
    assert got == sorted(got)
    # "net9p:x" sorts before "net:..." as strings ('9' < ':'), as in bpftrace.
    tps = [g for g in got if g.startswith("tracepoint:")]
    assert tps == ["tracepoint:net9p:x", "tracepoint:net:net_dev_xmit", "tracepoint:sched:sched_switch",
                   "tracepoint:sched:sched_wakeup", "tracepoint:syscalls:sys_enter_openat"]
    assert [g for g in got if g.startswith("rawtracepoint:")] == ["rawtracepoint:net_dev_xmit",
                                                                  "rawtracepoint:sched_switch"]
    assert got[:2] == ["BEGIN", "END"] and "interval:s:" in got and "software:page-faults:" in got


def test_globs(fake: Path) -> None:
    assert lines("tracepoint:sched:*") == ["tracepoint:sched:sched_switch", "tracepoint:sched:sched_wakeup"]
    assert lines("t:*:*open*") == ["tracepoint:syscalls:sys_enter_openat"]
    assert lines("sched_switch") == ["rawtracepoint:sched_switch", "tracepoint:sched:sched_switch"]
    assert lines("*switch") == ["rawtracepoint:sched_switch", "tracepoint:sched:sched_switch"]
    assert lines("BEGIN") == ["BEGIN"]
    assert lines("*:sched:sched_w?keup") == ["tracepoint:sched:sched_wakeup"]
    assert lines("interval:*") == [f"interval:{u}:" for u in sorted(("hz", "s", "ms", "us", "ns"))]


def test_verbose_tracepoint_arguments(fake: Path) -> None:
    fmt = fake / "tracing" / "events" / "sched" / "sched_switch"
    fmt.mkdir(parents=True)
    (fmt / "format").write_text(
        "name: sched_switch\nID: 1\nformat:\n"
        "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n"
        "\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n"
        "\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n\nprint fmt: \"\"\n")
    assert lines("tracepoint:sched:sched_switch", verbose=True) == [
        "tracepoint:sched:sched_switch", "    char prev_comm[16]", "    pid_t prev_pid"]


def test_unknown_provider(fake: Path) -> None:
    from pytrace.errors import EnvironmentProblem
    with pytest.raises(EnvironmentProblem, match="unknown probe type 'nope'"):
        lines("nope:*")


def test_uprobe_needs_a_binary(fake: Path) -> None:
    warnings: list[str] = []
    assert lines("uprobe:*", warn=warnings.append) == []
    assert warnings and "name the binary" in warnings[0]


def test_function_symbols_of_a_non_elf_file(tmp_path: Path) -> None:
    f = tmp_path / "script.sh"
    f.write_text("#!/bin/sh\n")
    warnings: list[str] = []
    from pytrace.providers.uprobe import function_symbols
    assert function_symbols(str(f), warnings.append) == []
    assert warnings == [f"cannot list function symbols of {f}: not an ELF file"]
