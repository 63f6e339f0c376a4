"""Run-time configuration (config blocks and BPFTRACE_*/PYTRACE_* variables)
honoured by the runtime, and losses that are counted and reported, never
silent: a ring buffer too small for a printf flood, a map that is full."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from tests.kernel.test_teardown import REPO

pytestmark = pytest.mark.kernel

LONG = "0123456789" * 7


def pytrace(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, **(env or {}))
    for name in list(full_env):
        if name.startswith(("BPFTRACE_", "PYTRACE_")) and name not in (env or {}):
            del full_env[name]
    return subprocess.run([sys.executable, "-m", "pytrace", *args], capture_output=True, text=True, timeout=120,
                          cwd=str(REPO), env=full_env)


def test_lost_events_are_counted_and_reported() -> None:
    """A one-page ring and a child that makes ~200 000 syscalls, each printing
    a 70-byte line: most events cannot be stored.  Every event is either
    printed or counted as lost (@n counts them in the same probe)."""
    script = ("config = { perf_rb_pages = 1 } "
              "tracepoint:raw_syscalls:sys_enter /pid == cpid/ { @n = count(); printf(\"%s\\n\", \"" + LONG + "\"); }")
    r = pytrace("-c", "dd if=/dev/zero of=/dev/null bs=1 count=100000 status=none", "-e", script)
    assert r.returncode == 0, r.stderr
    printed = r.stdout.count(LONG + "\n")
    lost = re.search(r"^Lost (\d+) events$", r.stderr, re.MULTILINE)
    assert lost, f"no loss reported:\n{r.stderr}"
    total = int(re.search(r"^@n: (\d+)$", r.stdout, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert total >= 200_000
    assert printed + int(lost.group(1)) == total
    assert int(lost.group(1)) > 0 and printed > 0


def test_no_loss_reported_when_nothing_is_lost() -> None:
    r = pytrace("-c", "true", "-e", 'tracepoint:raw_syscalls:sys_enter /pid == cpid/ { @n = count(); printf("x\\n"); }')
    assert r.returncode == 0, r.stderr
    total = int(re.search(r"^@n: (\d+)$", r.stdout, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert r.stdout.count("x\n") == total
    assert "Lost" not in r.stderr


@pytest.mark.parametrize("how", ["config", "env-bpftrace", "env-pytrace"])
def test_perf_rb_pages_sets_the_ring_size(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    from pytrace import cli
    from pytrace.bpf.maps import BpfMap
    from pytrace.bpf.syscalls import MapType

    sizes: list[int] = []
    original = BpfMap.create.__func__  # type: ignore[attr-defined]

    def create(cls, map_type, key_size, value_size, max_entries, *a, **kw):  # type: ignore[no-untyped-def]
        if map_type == MapType.RINGBUF:
            sizes.append(max_entries)
        return original(cls, map_type, key_size, value_size, max_entries, *a, **kw)

    monkeypatch.setattr(BpfMap, "create", classmethod(create))
    script = 'BEGIN { printf("x\\n"); exit(); }'
    if how == "config":
        script = "config = { perf_rb_pages = 3 } " + script
    else:
        monkeypatch.setenv("BPFTRACE_PERF_RB_PAGES" if how == "env-bpftrace" else "PYTRACE_PERF_RB_PAGES", "3")
    assert cli.main(["-e", script], stdout=io.StringIO(), stderr=io.StringIO()) == 0
    assert sizes == [4 * 4096]  # 3 pages, rounded up to a power of two


def test_default_ring_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytrace.codegen.layout import RINGBUF_BYTES
    from pytrace.diagnostics import Diagnostics
    from pytrace.kernel.info import LiveKernel
    from pytrace.runtime.session import RunOptions, Session
    from pytrace.semantic.pipeline import CompileOptions, run
    from pytrace.source import SourceFile
    comp = run(SourceFile("stdin", "BEGIN { exit(); }"), CompileOptions(kernel=LiveKernel(), environ={}),
               Diagnostics())
    assert Session(comp, RunOptions(), io.StringIO(), io.StringIO()).ring_bytes() == RINGBUF_BYTES


def test_full_map_is_reported() -> None:
    r = pytrace("-e", "config = { max_map_keys = 4 } BEGIN { $i = 0; unroll(10) { @m[$i] = 1; $i++; } exit(); }")
    assert r.returncode == 0, r.stderr
    assert len(re.findall(r"^@m\[\d\]: 1$", r.stdout, re.MULTILINE)) == 4
    assert ("WARNING: map @m was full: 6 update(s) dropped (max_entries 4); raise it with "
            "BPFTRACE_MAX_MAP_KEYS or config = { max_map_keys = N }") in r.stderr


def test_max_map_keys_from_the_environment() -> None:
    r = pytrace("-e", "BEGIN { $i = 0; unroll(10) { @m[$i] = 1; $i++; } exit(); }",
                env={"BPFTRACE_MAX_MAP_KEYS": "8"})
    assert len(re.findall(r"^@m\[\d\]: 1$", r.stdout, re.MULTILINE)) == 8
    assert "2 update(s) dropped (max_entries 8)" in r.stderr


@pytest.mark.parametrize("how", ["config", "env"])
def test_max_strlen(how: str) -> None:
    probe = ('tracepoint:syscalls:sys_enter_openat /pid == cpid/ { printf("<%s>\\n", str(args->filename)); }')
    if how == "config":
        r = pytrace("-c", "cat /etc/hostname", "-e", "config = { max_strlen = 8 } " + probe)
    else:
        r = pytrace("-c", "cat /etc/hostname", "-e", probe, env={"BPFTRACE_MAX_STRLEN": "8"})
    assert r.returncode == 0, r.stderr
    assert "<etc/ho>" not in r.stdout and "</etc/ho>\n" in r.stdout  # 7 characters and the NUL


def test_print_maps_on_exit_false() -> None:
    r = pytrace("-e", 'config = { print_maps_on_exit = false } BEGIN { @a = 1; printf("done\\n"); exit(); }')
    assert r.returncode == 0, r.stderr
    assert "done\n" in r.stdout and "@a" not in r.stdout
    r = pytrace("-e", 'BEGIN { @a = 1; exit(); }', env={"BPFTRACE_PRINT_MAPS_ON_EXIT": "0"})
    assert "@a" not in r.stdout


def test_invalid_environment_value_is_one_error() -> None:
    r = pytrace("-e", "BEGIN { exit(); }", env={"BPFTRACE_MAX_STRLEN": "lots"})
    assert r.returncode == 1
    assert "BPFTRACE_MAX_STRLEN" in r.stderr and "Traceback" not in r.stderr


def test_lost_events_in_json() -> None:
    import json
    script = ("config = { perf_rb_pages = 1 } "
              "tracepoint:raw_syscalls:sys_enter /pid == cpid/ { @n = count(); printf(\"%s\\n\", \"" + LONG + "\"); }")
    r = pytrace("-f", "json", "-c", "dd if=/dev/zero of=/dev/null bs=1 count=50000 status=none", "-e", script)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    printed = sum(1 for rec in records if rec["type"] == "printf")
    lost = [rec["data"]["events"] for rec in records if rec["type"] == "lost_events"]
    total = next(rec["data"]["@n"] for rec in records if rec["type"] == "map")
    assert len(lost) == 1 and lost[0] > 0
    assert printed + lost[0] == total
