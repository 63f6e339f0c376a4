"""Differential runs: the same script under bpftrace 0.17 and pytrace.

Both tracers are started side by side (see tests/kernel/harness.py for the
``__BPFTRACE_NOTIFY_PROBES_ATTACHED`` protocol); once both have printed the
ready marker the workload runs ONCE, in the test process, so both tracers see
exactly the same events.  Then both are stopped with SIGINT (or left to exit
on their own) and their stdout is normalised and compared.

Normalisation masks only what varies by nature: addresses, pids/tids the
caller names, timestamps the caller names, and the order of tied lines of
value-sorted maps (bpftrace prints ties in hash order).
"""

from __future__ import annotations

import ctypes
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable, Union

from .harness import READY, Result, command, normalise

BPFTRACE = "/usr/bin/bpftrace"
NOTIFY = "__BPFTRACE_NOTIFY_PROBES_ATTACHED"
TOOLS = ("bpftrace", "pytrace")


Script = Union[str, Path]


def _spawn(tool: str, script: Script, tool_args: list[str], params: list[str],
           env: dict[str, str] | None) -> subprocess.Popen:
    # A Path is a script file (positional, as `bpftrace tool.bt` is run):
    # its diagnostics name the file, and its shebang line is the file's own.
    source = [str(script)] if isinstance(script, Path) else ["-e", script]
    cmd = command(tool) + tool_args + source + params
    full_env = dict(os.environ, __BPFTRACE_NOTIFY_PROBES_ATTACHED=READY, **(env or {}))
    full_env.pop("BPFTRACE_STRLEN", None)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)


def run_both(script: Script, workload: Callable[[], None] | None = None, *, params: Iterable[object] = (),
             tool_args: list[str] | None = None, wait_exit: bool = False, timeout: float = 30,
             settle: float = 0.3, env: dict[str, str] | None = None,
             tools: tuple[str, ...] = TOOLS) -> dict[str, Result]:
    """Run ``script`` (program text, or a Path to a script file) under every
    tool at once around one run of ``workload``."""
    ps = [str(p) for p in params]
    procs = {t: _spawn(t, script, list(tool_args or []), ps, env) for t in tools}
    outs = {t: b"" for t in tools}
    errs = {t: b"" for t in tools}
    waiting = set(tools)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        fds: dict[int, tuple[str, bool]] = {}
        for t in waiting:
            fds[procs[t].stdout.fileno()] = (t, False)  # type: ignore[union-attr]
            fds[procs[t].stderr.fileno()] = (t, True)  # type: ignore[union-attr]
        r, _, _ = select.select(list(fds), [], [], 0.1)
        for fd in r:
            t, is_err = fds[fd]
            chunk = os.read(fd, 65536)
            if not chunk:
                waiting.discard(t)
                continue
            if is_err:
                errs[t] += chunk
            else:
                outs[t] += chunk
            if _ready(outs[t], errs[t]):
                waiting.discard(t)
        for t in list(waiting):
            if procs[t].poll() is not None:
                waiting.discard(t)
    all_ready = all(_ready(outs[t], errs[t]) for t in tools)
    if all_ready and workload is not None:
        workload()
    if not wait_exit:
        time.sleep(settle)
        interrupt(procs)
    results = {}
    for t, p in procs.items():
        rest, err = _finish(t, p, deadline, resend=not wait_exit)
        results[t] = Result(p.returncode, (outs[t] + rest).decode("utf-8", "replace"),
                            (errs[t] + err).decode("utf-8", "replace"))
    return results


def interrupt(procs: dict[str, subprocess.Popen]) -> None:  # type: ignore[type-arg]
    """SIGINT every tracer still running (as Ctrl-C would)."""
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGINT)


def _finish(tool: str, p: subprocess.Popen, deadline: float, resend: bool) -> tuple[bytes, bytes]:
    """Collect a tracer's output.  bpftrace 0.17 sometimes misses the
    SIGINT that should stop it (it keeps polling; about one run in three
    here): it gets another one every second."""
    rest, err = b"", b""
    while True:
        step = 1.0 if tool == "bpftrace" and resend else max(1.0, deadline - time.monotonic())
        try:
            r, e = p.communicate(timeout=step)
            return rest + (r or b""), err + (e or b"")
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                p.kill()
                r, e = p.communicate()
                return rest + (r or b""), err + (e or b"")
            if tool == "bpftrace" and resend:
                p.send_signal(signal.SIGINT)


def _ready(out: bytes, err: bytes) -> bool:
    """pytrace prints the variable's value on stdout; bpftrace 0.17 prints
    the variable's *name* on stderr."""
    return READY.encode() in out or NOTIFY.encode() in err


def ready(r: Result) -> bool:
    return READY in r.stdout or NOTIFY in r.stderr


# ---------------------------------------------------------------- normalising

_TIME = re.compile(r"\b\d\d:\d\d:\d\d\b")


def norm(text: str, *, pids: Iterable[int] = (), times: bool = False, sort_ties: bool = True,
         masks: Iterable[tuple[str, str]] = ()) -> str:
    """Mask addresses (harness.normalise), the given pids, wall-clock times,
    and sort runs of tied value-sorted map lines."""
    text = normalise(text)
    for pid in pids:
        text = re.sub(rf"\b{pid}\b", "PID", text)
    if times:
        text = _TIME.sub("HH:MM:SS", text)
    for pat, rep in masks:
        text = re.sub(pat, rep, text)
    if sort_ties:
        text = sort_tied_map_lines(text)
    return text


_MAPLINE = re.compile(r"^(@[A-Za-z0-9_]*)(\[.*\])?: (-?\d+)$")


def sort_tied_map_lines(text: str) -> str:
    """Within a run of consecutive ``@m[key]: N`` lines of one map, lines
    with the same N are printed in hash order by bpftrace: sort them."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _MAPLINE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        j = i
        group: list[str] = []
        while j < len(lines):
            mj = _MAPLINE.match(lines[j])
            if not mj or mj.group(1) != m.group(1) or mj.group(3) != m.group(3):
                break
            group.append(lines[j])
            j += 1
        out.extend(sorted(group))
        i = j
    return "\n".join(out)


def sort_json_ties(text: str) -> str:
    """JSON output of value-sorted maps: sort each line's object keys is not
    possible (order is the point), so normalise by re-sorting entries with
    tied values."""
    import json
    out = []
    for line in text.split("\n"):
        try:
            obj = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        if isinstance(obj, dict) and obj.get("type") == "map":
            data = obj.get("data", {})
            for name, val in list(data.items()):
                if isinstance(val, dict) and all(isinstance(v, int) for v in val.values()):
                    items = list(val.items())
                    # stable: group by value, sort keys within a group
                    groups: list[list[tuple[str, int]]] = []
                    for k, v in items:
                        if groups and groups[-1][0][1] == v:
                            groups[-1].append((k, v))
                        else:
                            groups.append([(k, v)])
                    data[name] = dict(kv for g in groups for kv in sorted(g))
            out.append(json.dumps(obj))
        else:
            out.append(line)
    return "\n".join(out)


def body(r: Result) -> str:
    return r.body


def compare(script: Script, workload: Callable[[], None] | None = None, *, params: Iterable[object] = (),
            tool_args: list[str] | None = None, wait_exit: bool = False, pids: Iterable[int] = (),
            times: bool = False, masks: Iterable[tuple[str, str]] = (), json: bool = False,
            expect: Iterable[str] = (), timeout: float = 30, settle: float = 0.3, retries: int = 0) -> str:
    """Run both tools, assert equal normalised output; return pytrace's.
    ``retries``: run both again this many times when the outputs differ
    (for the few scripts where bpftrace 0.17 itself is racy, e.g. losing
    uprobe events right after attaching on a loaded machine)."""
    for _ in range(retries):
        try:
            return compare(script, workload, params=params, tool_args=tool_args, wait_exit=wait_exit, pids=pids,
                           times=times, masks=masks, json=json, expect=expect, timeout=timeout, settle=settle)
        except AssertionError:
            continue
    res = run_both(script, workload, params=params, tool_args=tool_args, wait_exit=wait_exit, timeout=timeout,
                   settle=settle)
    bt, pt = res["bpftrace"], res["pytrace"]
    assert ready(bt), f"bpftrace did not start:\n{bt.stdout}\n{bt.stderr}"
    assert ready(pt), f"pytrace did not start:\n{pt.stdout}\n{pt.stderr}"
    a = norm(bt.body, pids=pids, times=times, masks=masks)
    b = norm(pt.body, pids=pids, times=times, masks=masks)
    if json:
        a, b = sort_json_ties(a), sort_json_ties(b)
    assert b == a, (f"outputs differ for:\n{script}\n--- bpftrace ---\n{a}\n--- pytrace ---\n{b}\n"
                    f"--- pytrace stderr ---\n{pt.stderr}")
    for e in expect:
        assert e in b, f"expected {e!r} in output:\n{b}"
    assert pt.rc == bt.rc, f"exit codes differ: bpftrace {bt.rc}, pytrace {pt.rc}\n{pt.stderr}"
    return b


# ---------------------------------------------------------------- workloads

_libc = ctypes.CDLL(None, use_errno=True)


def open_n(path: str, n: int) -> None:
    """n openat() calls of ``path`` (which need not exist)."""
    for _ in range(n):
        try:
            os.close(os.open(path, os.O_RDONLY))
        except OSError:
            pass


def getpid_n(n: int) -> None:
    """n real getpid() syscalls (glibc does not cache getpid any more, but go
    through syscall() to be sure)."""
    for _ in range(n):
        _libc.syscall(39)


def syscall(nr: int, *args: int) -> int:
    return _libc.syscall(nr, *[ctypes.c_long(a) for a in args])


def write_devnull(sizes: Iterable[int]) -> None:
    fd = os.open("/dev/null", os.O_WRONLY)
    try:
        for n in sizes:
            os.write(fd, b"x" * n)
    finally:
        os.close(fd)


def nanosleep(n: int, ns: int = 1000) -> None:
    """n sleeps: clock_nanosleep(2) calls (time.sleep does not use nanosleep)."""
    for _ in range(n):
        time.sleep(ns / 1e9)


class Devnull:
    """An fd on /dev/null opened before the tracers start, so scripts can
    filter on ``args->fd == $2`` and see only the workload's writes."""

    def __enter__(self) -> "Devnull":
        self.fd = os.open("/dev/null", os.O_WRONLY)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def write(self, sizes: Iterable[int]) -> None:
        for n in sizes:
            os.write(self.fd, b"x" * n)


def forked(fn: Callable[[], None], cpu: int = 0) -> int:
    """Run ``fn`` in a forked child pinned to ``cpu`` and wait for it;
    return the child's pid.  Pinned, its events reach both tracers' per-CPU
    buffers in the order they happened (bpftrace prints each CPU's buffer
    in turn)."""
    pid = os.fork()
    if pid == 0:  # the child never returns into the test runner
        code = 1
        try:
            os.sched_setaffinity(0, {cpu})
            fn()
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"workload child {pid} failed"
    return pid


PR_SET_NAME = 15


def fork_named(comm: str, fn: Callable[[], None]) -> int:
    """Run ``fn`` in a child called ``comm`` (scripts filter on it); its pid
    (reap it with ``reap``)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _libc.prctl(PR_SET_NAME, comm.encode(), 0, 0, 0)
            fn()
            code = 0
        finally:
            os._exit(code)
    return pid


def reap(pid: int) -> None:
    """Wait for a workload child; it must have succeeded."""
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"workload child {pid} failed"


def pinned(cpu: int = 0) -> Callable[[], None]:
    """A subprocess preexec_fn that pins the child to one CPU (see forked)."""
    return lambda: os.sched_setaffinity(0, {cpu})


def tool_script(name: str) -> Path:
    """One of Debian's bpftrace tools, run as a file (``bpftrace tool.bt``)."""
    return Path(f"/usr/sbin/{name}.bt")


class Forked:
    """A workload that runs ``fn`` in a pinned forked child (``forked``)
    when called; ``.pid`` is the child's pid afterwards, to pick its lines."""

    def __init__(self, fn: Callable[[], None], cpu: int = 0) -> None:
        self.fn = fn
        self.cpu = cpu
        self.pid = -1

    def __call__(self) -> None:
        self.pid = forked(self.fn, self.cpu)


# ---------------------------------------------------------------- whole tool scripts

def tool_outputs(name: str, workload: Callable[[], None] | None, **kw: object) -> tuple[str, str]:
    """bpftrace's and pytrace's stdout (without the Attaching line) for one
    run of the Debian tool ``name`` around ``workload``; both must start
    and exit 0.  ``kw`` goes to run_both."""
    res = run_both(tool_script(name), workload, **kw)  # type: ignore[arg-type]
    bt, pt = res["bpftrace"], res["pytrace"]
    assert ready(bt), f"bpftrace did not start:\n{bt.stdout}\n{bt.stderr}"
    assert ready(pt), f"pytrace did not start:\n{pt.stdout}\n{pt.stderr}"
    assert (bt.rc, pt.rc) == (0, 0), f"exit codes: bpftrace {bt.rc}, pytrace {pt.rc}\n{pt.stderr}"
    return bt.body, pt.body


def pick(body: str, head: int, keep: Callable[[str], bool]) -> list[str]:
    """The ``head`` lines a tool printed first (its BEGIN), then the lines
    ``keep`` accepts (the workload's: the tool sees the whole machine), then
    the empty lines that end the output (what the exit prints for emptied
    maps).  Other empty lines are other processes' (an argv with newlines)."""
    lines = body.split("\n")
    end = len(lines)
    while end > head and lines[end - 1] == "":
        end -= 1
    return lines[:head] + [ln for ln in lines[head:end] if ln and keep(ln)] + lines[end:]


def same(bt: list[str], pt: list[str], **masks: object) -> list[str]:
    """Assert both tools printed the same lines after ``norm(**masks)``;
    return pytrace's."""
    a = norm("\n".join(bt), **masks).split("\n")  # type: ignore[arg-type]
    b = norm("\n".join(pt), **masks).split("\n")  # type: ignore[arg-type]
    assert b == a, "outputs differ\n--- bpftrace ---\n" + "\n".join(a) + "\n--- pytrace ---\n" + "\n".join(b)
    return b


def column(line: str, index: int) -> str:
    """The ``index``th whitespace-separated field of ``line`` ('' past the end)."""
    parts = line.split()
    return parts[index] if len(parts) > index else ""


def have_bpftrace() -> bool:
    return os.path.exists(BPFTRACE)


# ---------------------------------------------------------------- a C program to probe

C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

__attribute__((noinline)) int pt_add(int a, int b) { return a + b; }
__attribute__((noinline)) long pt_six(long a, long b, long c, long d, long e, long f)
{ return a * 100000 + b * 10000 + c * 1000 + d * 100 + e * 10 + f; }
__attribute__((noinline)) int pt_len(const char *s) { return (int)strlen(s); }
__attribute__((noinline)) int pt_neg(int x) { return -x; }
__attribute__((noinline)) unsigned long pt_big(unsigned long x) { return x << 33; }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Busy in user mode, then busy in the kernel (profile samples). */
__attribute__((noinline)) long pt_spin(double secs) {
    volatile long x = 0;
    double end = now() + secs;
    while (now() < end)
        for (int i = 0; i < 100000; i++)
            x += i;
    return x;
}

__attribute__((noinline)) long pt_sys_spin(double secs) {
    long n = 0;
    double end = now() + secs;
    while (now() < end) {
        syscall(SYS_getppid);
        n++;
    }
    return n;
}

/* ptprog N [linger_ms] [delay_ms] [spin_ms] */
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    char word[32];
    volatile long acc = 0;
    if (argc > 3)
        usleep(atoi(argv[3]) * 1000);   /* wait for the tracers (-p) */
    for (int i = 0; i < n; i++) {
        snprintf(word, sizeof word, "word-%d", i);
        acc += pt_add(i, 10);
        acc += pt_six(i, 1, 2, 3, 4, 5);
        acc += pt_len(word);
        acc += pt_neg(i);
        acc += (long)pt_big((unsigned long)i);
    }
    if (argc > 4) {
        acc += pt_spin(atoi(argv[4]) / 1000.0);
        acc += pt_sys_spin(atoi(argv[4]) / 1000.0);
    }
    /* nothing on stdout: under -c it would race with the tracer's lines */
    if (argc > 2)
        usleep(atoi(argv[2]) * 1000);   /* stay alive while symbols are resolved */
    return 0;
}
"""


def build_cprog(directory) -> str:  # type: ignore[no-untyped-def]
    """Compile C_PROGRAM (frame pointers on, so user stacks walk) into
    ``directory``; skips the test without gcc."""
    import shutil

    import pytest
    if not shutil.which("gcc"):
        pytest.skip("needs gcc")
    src = os.path.join(str(directory), "ptprog.c")
    exe = os.path.join(str(directory), "ptprog")
    with open(src, "w") as f:
        f.write(C_PROGRAM)
    subprocess.run(["gcc", "-O1", "-g", "-fno-omit-frame-pointer", "-o", exe, src], check=True)
    return exe


def run_prog(exe: str, n: int, linger_ms: int = 0, delay_ms: int = 0, spin_ms: int = 0) -> None:
    args = [exe, str(n), str(linger_ms), str(delay_ms)] + ([str(spin_ms)] if spin_ms else [])
    subprocess.run(args, stdout=subprocess.DEVNULL, check=True)


def pytrace_only(script: Script, workload: Callable[[], None] | None = None, *, params: Iterable[object] = (),
                 tool_args: list[str] | None = None, wait_exit: bool = False, timeout: float = 30,
                 rc: int | None = 0, settle: float = 0.3) -> str:
    """Run ``script`` under pytrace alone; return its output (without the
    'Attaching' line), after checking it started and exited cleanly."""
    r = run_both(script, workload, params=params, tool_args=tool_args, wait_exit=wait_exit, timeout=timeout,
                 settle=settle, tools=("pytrace",))["pytrace"]
    assert ready(r), f"pytrace did not start:\n{r.stdout}\n{r.stderr}"
    if rc is not None:
        assert r.rc == rc, f"pytrace exited {r.rc}:\n{r.stdout}\n{r.stderr}"
    return r.body
