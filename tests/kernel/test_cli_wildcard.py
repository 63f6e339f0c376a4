"""``tracepoint:syscalls:sys_enter_*``: ~360 probes that start and stop fast
(one raw sys_enter program and a filter map), with the right ``probe`` for
every syscall, and the perf-event fallback (small groups) closed concurrently."""

from __future__ import annotations

import io
import os
import re
import threading
import time

import pytest

from pytrace.codegen.llvm.module import syscall_numbers
from pytrace.sysinfo import TRACEPOINT_ALIASES as SYSCALL_ALIASES
from tests.kernel.test_teardown import run_pytrace

pytestmark = pytest.mark.kernel


def _names_by_nr() -> dict[int, str]:
    by_nr: dict[int, str] = {}
    aliases = {v: k for k, v in SYSCALL_ALIASES.items()}
    events = set(os.listdir("/sys/kernel/tracing/events/syscalls"))
    for name, nr in syscall_numbers().items():
        tp = aliases.get(name, name)
        if f"sys_enter_{tp}" in events:
            by_nr[nr] = tp
    return by_nr


@pytest.mark.parametrize("side", ["enter", "exit"])
def test_probe_names_match_the_syscall_numbers(side: str) -> None:
    """Every syscall a child makes, counted by the wildcard under its
    ``probe`` name and by raw_syscalls under its number: the same counts."""
    script = (f"tracepoint:syscalls:sys_{side}_* /pid == cpid/ {{ @by_probe[probe] = count(); }} "
              f"tracepoint:raw_syscalls:sys_{side} /pid == cpid/ {{ @by_id[args->id] = count(); }}")
    r = run_pytrace(["-c", "/bin/sh -c 'ls / > /dev/null; cat /etc/hostname > /dev/null; uname > /dev/null'",
                     "-e", script], stop=None)
    assert r.rc == 0, r.stderr
    by_probe = {k: int(v) for k, v in re.findall(r"^@by_probe\[tracepoint:syscalls:sys_\w+?_(\w+)\]: (\d+)$",
                                                r.stdout, re.MULTILINE)}
    by_id = {int(k): int(v) for k, v in re.findall(r"^@by_id\[(\d+)\]: (\d+)$", r.stdout, re.MULTILINE)}
    names = _names_by_nr()
    expected = {names[nr]: n for nr, n in by_id.items() if nr in names}
    assert len(expected) >= 10, r.stdout
    assert by_probe == expected


def test_probe_names_in_the_perf_event_fallback() -> None:
    """Fewer than four syscall tracepoints get a perf event each."""
    r = run_pytrace(["-c", "cat /etc/hostname /etc/os-release", "-e",
                     "tracepoint:syscalls:sys_enter_read, tracepoint:syscalls:sys_enter_close, "
                     "tracepoint:syscalls:sys_enter_openat /pid == cpid/ { @[probe] = count(); }"], stop=None)
    assert r.rc == 0, r.stderr
    names = set(re.findall(r"^@\[tracepoint:syscalls:sys_enter_(\w+)\]: \d+$", r.stdout, re.MULTILINE))
    assert names == {"read", "close", "openat"}


def _timed_session(monkeypatch: pytest.MonkeyPatch, script: str) -> dict[str, object]:
    """Run ``script`` in-process; time attaching and detaching, and record
    when each tracepoint perf event's close started and ended (and in which thread)."""
    import signal
    from pytrace import cli
    from pytrace.bpf import attach as A
    from pytrace.runtime import session as S

    marks: dict[str, object] = {"closes": []}
    attach, close_all, base_close = S.Session.attach, A.close_all, A.Attachment.close

    def timed_attach(self):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        n = attach(self)
        marks["attach"] = time.perf_counter() - t
        marks["attachments"] = len(self.attachments)
        marks["links"] = sum(isinstance(a, A.RawTracepointAttachment) for a in self.attachments)
        threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        return n

    def timed_close_all(atts):  # type: ignore[no-untyped-def]
        atts = list(atts)
        t = time.perf_counter()
        close_all(atts)
        if atts:
            marks["detach"] = time.perf_counter() - t

    def recorded_close(self):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        base_close(self)
        if isinstance(self, A.TracepointAttachment):
            marks["closes"].append((threading.current_thread().name, start,  # type: ignore[union-attr]
                                    time.perf_counter()))

    monkeypatch.setattr(S.Session, "attach", timed_attach)
    monkeypatch.setattr(S.A, "close_all", timed_close_all)
    monkeypatch.setattr(A.Attachment, "close", recorded_close)
    out = io.StringIO()
    t = time.perf_counter()
    assert cli.main(["-e", script], stdout=out, stderr=io.StringIO()) == 0
    marks["total"] = time.perf_counter() - t
    marks["output"] = out.getvalue()
    return marks


def test_wildcard_attaches_and_detaches_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _timed_session(monkeypatch, "tracepoint:syscalls:sys_enter_* { @[probe] = count(); }")
    assert str(m["output"]).startswith("Attaching 360 probes...") or "probes..." in str(m["output"])
    n = int(re.match(r"Attaching (\d+) probes", str(m["output"])).group(1))  # type: ignore[union-attr]
    assert n == len([e for e in os.listdir("/sys/kernel/tracing/events/syscalls") if e.startswith("sys_enter_")])
    # One raw tracepoint link for the whole wildcard, no perf events.
    assert m["attachments"] == m["links"] == 1
    assert float(m["attach"]) < 0.2  # measured ~1 ms
    assert float(m["detach"]) < 0.2  # measured < 1 ms
    assert not m["closes"]


def test_fallback_perf_events_close_concurrently(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _timed_session(monkeypatch, "tracepoint:syscalls:sys_enter_pread* { @[probe] = count(); }")
    closes = m["closes"]
    assert isinstance(closes, list) and len(closes) == 3
    assert all(name.startswith("pytrace-detach") for name, _, _ in closes)
    # The closes overlap in time: each started before the first one ended.
    first_end = min(end for _, _, end in closes)
    assert all(start < first_end for _, start, _ in closes)


def test_wildcard_start_to_ready_and_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    r = run_pytrace(["-e", "tracepoint:syscalls:sys_enter_* { @[probe] = count(); } "
                           "tracepoint:syscalls:sys_exit_* { @x[probe] = count(); }"], after_ready=0.2)
    assert r.rc == 0, r.stderr
    assert r.ready_after is not None and r.ready_after < 5.0  # Python start-up included; ~0.8 s here
    assert "@[tracepoint:syscalls:sys_enter_" in r.stdout and "@x[tracepoint:syscalls:sys_exit_" in r.stdout
