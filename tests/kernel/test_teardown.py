"""Nothing pytrace loads outlives it: programs, maps, links and perf events
are gone after a normal exit, exit(), Ctrl-C (SIGINT), SIGTERM, a failure
half-way through attaching and a Python exception inside the runtime.

Other sessions may run pytrace on this machine at the same time, so objects
are identified by the pytrace process that owns them: while it runs, a
thread reads /proc/PID/fdinfo every few milliseconds and collects the ids of
every BPF program, map and link it holds (and counts its perf-event fds);
once it has exited, ``bpftool`` must list none of those ids and ``bpftool
perf show`` nothing for its pid.  The kernel frees programs and maps after
an RCU grace period, so the check waits up to a few seconds.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

READY = "__BPFTRACE_NOTIFY_PROBES_ATTACHED"  # the line both tools print
NOTIFY = "__BPFTRACE_NOTIFY_PROBES_ATTACHED"
REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- object tracking

@dataclass
class Owned:
    """BPF objects (and perf events) seen in one process's fd table."""

    progs: set[int] = field(default_factory=set)
    maps: set[int] = field(default_factory=set)
    links: set[int] = field(default_factory=set)
    perf_events: int = 0  # most perf-event fds seen at once

    def update(self, other: "Owned") -> None:
        self.progs |= other.progs
        self.maps |= other.maps
        self.links |= other.links
        self.perf_events = max(self.perf_events, other.perf_events)


_ID = re.compile(r"^(prog_id|map_id|link_id):\s*(\d+)$", re.MULTILINE)


def fd_objects(pid: int) -> Owned:
    """The BPF objects process ``pid`` holds an fd of, right now."""
    owned = Owned()
    base = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(base)
    except OSError:
        return owned
    for fd in fds:
        try:
            target = os.readlink(f"{base}/{fd}")
        except OSError:
            continue
        if target == "anon_inode:[perf_event]":
            owned.perf_events += 1
            continue
        if not target.startswith("anon_inode:bpf"):
            continue
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as fh:
                info = fh.read()
        except OSError:
            continue
        for kind, num in _ID.findall(info):
            {"prog_id": owned.progs, "map_id": owned.maps, "link_id": owned.links}[kind].add(int(num))
    return owned


class Watcher:
    """Polls a process's fd table from a thread until stopped."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid = pid
        self.seen = Owned()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(interval,), daemon=True)
        self._thread.start()

    def _loop(self, interval: float) -> None:
        while not self._stop.is_set():
            self.seen.update(fd_objects(self.pid))
            if not os.path.exists(f"/proc/{self.pid}"):
                break
            time.sleep(interval)

    def stop(self) -> Owned:
        self._stop.set()
        self._thread.join()
        return self.seen


def _bpftool(*args: str) -> list[dict]:
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True)
    try:
        return json.loads(out.stdout or "[]") or []
    except json.JSONDecodeError:
        return []


def live_ids() -> Owned:
    return Owned({p["id"] for p in _bpftool("prog", "show")}, {m["id"] for m in _bpftool("map", "show")},
                 {lk["id"] for lk in _bpftool("link", "show")})


def assert_all_gone(seen: Owned, pid: int, *, timeout: float = 5.0) -> None:
    """None of ``seen``'s objects exist any more, and no perf event with a
    program is left for ``pid``."""
    deadline = time.monotonic() + timeout
    while True:
        live = live_ids()
        left = Owned(seen.progs & live.progs, seen.maps & live.maps, seen.links & live.links)
        perf = [e for e in _bpftool("perf", "show") if e.get("pid") == pid]
        if not (left.progs or left.maps or left.links or perf) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left.progs, f"programs left behind: {sorted(left.progs)}"
    assert not left.maps, f"maps left behind: {sorted(left.maps)}"
    assert not left.links, f"links left behind: {sorted(left.links)}"
    assert not perf, f"perf events with programs left behind: {perf}"


# ---------------------------------------------------------------- running pytrace

@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    seen: Owned
    pid: int
    ready_after: float | None  # seconds from start to the ready marker


def run_pytrace(args: list[str], *, stop: int | None = signal.SIGINT, after_ready: float = 0.3,
                workload=None, timeout: float = 60, env: dict[str, str] | None = None,  # type: ignore[no-untyped-def]
                stdin: bytes | None = None, cwd: str | None = None) -> Run:
    """Run ``python -m pytrace ARGS``; once the ready marker is printed, run
    ``workload``, wait ``after_ready`` seconds and send ``stop`` (None: let
    the script end by itself)."""
    full_env = dict(os.environ, **{NOTIFY: READY}, **(env or {}))
    full_env.pop("BPFTRACE_STRLEN", None)
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pytrace", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, env=full_env,
                            cwd=cwd or str(REPO))
    watcher = Watcher(proc.pid)
    assert proc.stdout is not None and proc.stderr is not None
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
    out = b""
    ready_after = None
    deadline = start + timeout
    while ready_after is None and time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.05)
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
            if READY.encode() in out:
                ready_after = time.monotonic() - start
        elif proc.poll() is not None:
            break
    if ready_after is not None:
        if workload is not None:
            workload()
        if stop is not None:
            time.sleep(after_ready)
            if proc.poll() is None:
                proc.send_signal(stop)
    try:
        rest, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, err = proc.communicate()
    seen = watcher.stop()
    text = (out + rest).decode("utf-8", "replace").replace(READY + "\n", "")
    return Run(proc.returncode, text, err.decode("utf-8", "replace"), seen, proc.pid, ready_after)


def _busy() -> None:
    """Some syscalls, opens and a child process."""
    for _ in range(20):
        with open("/etc/hostname"):
            pass
    subprocess.run(["/bin/true"], check=True)


# Many kinds of attachment at once: a perf-event tracepoint, the raw sys_enter
# link of a syscall wildcard, a few fallback perf-event tracepoints, a timer
# perf event per CPU, a uprobe, BEGIN and END.
EVERYTHING = r"""
BEGIN { printf("begin\n"); }
tracepoint:syscalls:sys_enter_openat { @opens = count(); }
tracepoint:syscalls:sys_enter_* { @sys = count(); }
tracepoint:syscalls:sys_enter_read, tracepoint:syscalls:sys_enter_write { @rw = count(); }
profile:hz:99 { @samples = count(); }
interval:ms:50 { @ticks = count(); }
uprobe:/bin/bash:readline { @lines = count(); }
END { printf("end\n"); }
"""


def _check_clean_exit(r: Run) -> None:
    assert r.ready_after is not None, f"pytrace did not start:\n{r.stdout}\n{r.stderr}"
    assert r.rc == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert r.seen.progs and r.seen.maps, "the watcher saw no BPF objects: it cannot check anything"
    assert r.seen.perf_events > 0
    assert_all_gone(r.seen, r.pid)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_trace_tears_everything_down(sig: int) -> None:
    r = run_pytrace(["-e", EVERYTHING], stop=sig, workload=_busy)
    _check_clean_exit(r)
    assert r.stdout.startswith("Attaching 368 probes...\nbegin\n"), r.stdout[:200]
    # END ran and the maps were printed: the signal stopped tracing, it did not kill pytrace.
    assert "end\n" in r.stdout
    assert re.search(r"^@opens: [1-9]\d*$", r.stdout, re.MULTILINE), r.stdout
    assert re.search(r"^@ticks: [1-9]\d*$", r.stdout, re.MULTILINE), r.stdout
    assert r.seen.links, "the syscall wildcard's raw tracepoint link was not seen"


def test_exit_from_the_script_tears_everything_down() -> None:
    r = run_pytrace(["-e", EVERYTHING.replace('interval:ms:50 { @ticks = count(); }',
                                              'interval:ms:50 { @ticks = count(); if (@ticks == 6) { exit(); } }')],
                    stop=None, workload=_busy)
    _check_clean_exit(r)
    # exit() is asynchronous (as in bpftrace): a tick or two may follow it.
    ticks = int(re.search(r"^@ticks: (\d+)$", r.stdout, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert 6 <= ticks <= 12 and "end\n" in r.stdout


def test_exit_code_of_exit_n_and_teardown() -> None:
    r = run_pytrace(["-e", "tracepoint:syscalls:sys_enter_openat { @ = count(); } "
                           "interval:ms:300 { exit(7); }"], stop=None)
    assert r.rc == 7, r.stderr
    assert r.seen.progs
    assert_all_gone(r.seen, r.pid)


def test_normal_end_of_traced_command_tears_everything_down() -> None:
    r = run_pytrace(["-c", "sleep 0.5", "-e",
                     "tracepoint:syscalls:sys_enter_clock_nanosleep /pid == cpid/ { @sleeps = count(); } "
                     "profile:hz:49 { @p = count(); }"], stop=None)
    _check_clean_exit(r)
    assert "@sleeps: 1\n" in r.stdout


def test_sigterm_while_loading_leaves_nothing() -> None:
    """SIGTERM at an arbitrary moment of start-up (compiling, loading or
    attaching): pytrace ends (with status 130, or 0 when it was already
    tracing) and whatever it had loaded is gone."""
    for delay in (0.35, 0.5, 0.65):
        full_env = dict(os.environ, **{NOTIFY: READY})
        proc = subprocess.Popen([sys.executable, "-m", "pytrace", "-e", EVERYTHING], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=full_env, cwd=str(REPO))
        watcher = Watcher(proc.pid, interval=0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        seen = watcher.stop()
        assert proc.returncode in (0, 130, -signal.SIGTERM), err
        assert b"Traceback" not in err
        assert_all_gone(seen, proc.pid)


# Five hardware breakpoints on x86_64, which has four debug registers: the
# last attach fails with ENOSPC after everything before it was attached.
TOO_MANY_WATCHPOINTS = ",".join(f"watchpoint:{0x1000 * i:#x}:8:w" for i in range(1, 6)) + " { @c = count(); }"


def test_failure_half_way_through_attaching_leaves_nothing() -> None:
    """Tracepoints attach, then a hardware breakpoint finds no free debug
    register: one sentence, exit 1, and everything attached is detached."""
    script = ("tracepoint:syscalls:sys_enter_openat { @a = count(); } "
              "tracepoint:syscalls:sys_enter_* { @b = count(); } " + TOO_MANY_WATCHPOINTS)
    r = run_pytrace(["-e", script], stop=None)
    assert r.rc == 1
    assert r.stderr.splitlines()[0].startswith("pytrace: no free hardware slot for 8-byte breakpoint at ")
    assert "Traceback" not in r.stderr
    assert "Attaching" not in r.stdout
    assert_all_gone(r.seen, r.pid)


def test_kprobe_fails_at_attach_with_one_sentence() -> None:
    r = run_pytrace(["-e", "tracepoint:syscalls:sys_enter_openat { @a = count(); } "
                           "kprobe:tcp_retransmit_skb { @b = count(); }"], stop=None)
    assert r.rc == 1
    assert r.stderr == ("pytrace: cannot attach kprobe:tcp_retransmit_skb: this kernel has no kprobes "
                        "(CONFIG_KPROBES is off), so trace tracepoint:tcp:tcp_retransmit_skb instead\n")
    assert_all_gone(r.seen, r.pid)


def test_kretprobe_suggests_the_syscall_exit_tracepoint() -> None:
    r = run_pytrace(["-e", "kretprobe:ksys_read { @b = count(); }"], stop=None)
    assert r.rc == 1
    assert r.stderr == ("pytrace: cannot attach kretprobe:ksys_read: this kernel has no kprobes "
                        "(CONFIG_KPROBES is off), so trace tracepoint:syscalls:sys_exit_read instead\n")


# ---------------------------------------------------------------- in-process failures

def _own_objects() -> Owned:
    return fd_objects(os.getpid())


def test_python_exception_inside_the_runtime_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception while events are handled (a bug, simulated) ends the run
    with one 'internal error' line, exit 1, and every object is closed."""
    from pytrace import cli
    from pytrace.runtime import events

    before = _own_objects()
    seen = Owned()
    calls = {"n": 0}
    original = events.EventHandler.__call__

    def broken(self, rec):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        seen.update(_own_objects())
        if calls["n"] >= 3:
            raise RuntimeError("simulated bug in the event handler")
        return original(self, rec)

    monkeypatch.setattr(events.EventHandler, "__call__", broken)
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(["-e", 'tracepoint:syscalls:sys_enter_* { printf("%s\\n", probe); } '
                         'interval:ms:20 { printf("tick\\n"); }'], stdout=out, stderr=err)
    assert rc == 1
    assert err.getvalue() == ("pytrace: internal error: RuntimeError: simulated bug in the event handler "
                              "(set PYTRACE_DEBUG=1 for the traceback and please report it)\n")
    new = Owned(seen.progs - before.progs, seen.maps - before.maps, seen.links - before.links)
    assert new.progs and new.maps and new.links
    after = _own_objects()
    assert not (after.progs - before.progs) and not (after.maps - before.maps) and not (after.links - before.links)
    assert after.perf_events <= before.perf_events
    assert_all_gone(new, -1)
    assert not [e for e in _bpftool("perf", "show") if e.get("pid") == os.getpid()]


def test_failure_after_some_attachments_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The breakpoint failure again, watched from inside: the attachments made
    before it are closed before pytrace returns."""
    from pytrace import cli
    from pytrace.runtime import session

    before = _own_objects()
    seen = Owned()
    original = session.attach_program

    def watching(*args, **kw):  # type: ignore[no-untyped-def]
        seen.update(_own_objects())
        result = original(*args, **kw)
        seen.update(_own_objects())
        return result

    monkeypatch.setattr(session, "attach_program", watching)
    err = io.StringIO()
    rc = cli.main(["-e", "tracepoint:syscalls:sys_enter_openat { @a = count(); } "
                         "profile:hz:99 { @p = count(); } " + TOO_MANY_WATCHPOINTS],
                  stdout=io.StringIO(), stderr=err)
    assert rc == 1
    assert "no free hardware slot for 8-byte breakpoint" in err.getvalue()
    assert seen.perf_events > before.perf_events, "the tracepoint and profile events were never attached"
    after = _own_objects()
    assert after.perf_events == before.perf_events
    assert not (after.progs - before.progs) and not (after.maps - before.maps)
    assert_all_gone(Owned(seen.progs - before.progs, seen.maps - before.maps), -1)
