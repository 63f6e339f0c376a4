"""The stdlib's process and file tools (stdlib/tools/*.pt, group A), run as a
user runs them: ``pytrace tool NAME [PID]``.

Each test runs a workload it controls and asserts the workload's own lines
(the tools see the whole machine: lines are picked by pid or by a unique
path).  Where Debian's bpftrace 0.17 ships the same tool and it runs on this
kernel (``bpftrace /usr/sbin/NAME.bt``), both run around one workload and the
workload's lines must be the same (tests/kernel/test_tools_syscalls.py does
the same for Debian's files run by pytrace: its patterns are reused, e.g. a
forked child pinned to one CPU so that both tracers see its events in order).
The optional PID parameter is tested on a process started before the tool
(``Waiter``): it waits for a byte on stdin, then does its work.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.cprog import build_c

from .difflib_pt import Forked, column, have_bpftrace, open_n, pick, pinned, same
from .stdlib_tools_proc_run import Waiter, both, drive_bash, ours, picked

pytestmark = [pytest.mark.kernel]

_libc = ctypes.CDLL(None, use_errno=True)
COMM = Path("/proc/self/comm").read_text().strip()  # the forked workload children keep it
needs_bpftrace = pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")


@pytest.fixture
def waiters() -> Iterator[Callable[[str], Waiter]]:
    """Makes Waiters; kills the ones the test did not cue (it failed first)."""
    made: list[Waiter] = []

    def make(code: str) -> Waiter:
        made.append(Waiter(code))
        return made[-1]
    yield make
    for w in made:
        w.close()


@pytest.fixture(params=["stdlib", "debian"])
def form(request: pytest.FixtureRequest) -> str:
    """What pytrace runs next to bpftrace's Debian tool: the stdlib's port
    ("pytrace tool NAME") or Debian's file itself ("pytrace NAME.bt"); the
    tools this applies to keep Debian's output, so both must match bpftrace."""
    return str(request.param)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A directory with a short name: the tools print paths with str(), cut
    at 63 bytes."""
    d = Path(tempfile.mkdtemp(prefix="pt", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_every_tool_is_listed() -> None:
    out = subprocess.run([sys.executable, "-m", "pytrace", "tools"], capture_output=True, text=True, check=True)
    names = {ln.split()[0] for ln in out.stdout.splitlines() if ln.strip()}
    assert {"execsnoop", "opensnoop", "statsnoop", "syscount", "killsnoop", "setuids", "capable", "threadsnoop",
            "pidpersec", "naptime", "syncsnoop", "bashreadline", "gethostlatency", "loads"} <= names


# ---------------------------------------------------------------- execsnoop


@needs_bpftrace
def test_execsnoop(form: str) -> None:
    """Three execs, then one with 21 arguments: join() prints the first 16."""
    tag = f"ptexec{os.getpid()}"
    many = ["/bin/true", tag] + [f"a{i}" for i in range(19)]
    argvs = [["/bin/true", tag, str(i), "two  words"] for i in range(3)] + [many]
    pids: list[int] = []

    def work() -> None:
        pids.clear()
        for argv in argvs:
            p = subprocess.Popen(argv, preexec_fn=pinned())
            p.wait()
            pids.append(p.pid)
    bt, pt = both("execsnoop", work, want=tag, form=form)
    keep = lambda ln: tag in ln  # noqa: E731
    for body in (bt, pt):  # milliseconds since the tracer started: within the run
        ms = [int(ln.split()[0]) for ln in pick(body, 1, keep)[1:] if ln]
        assert len(ms) == 4 and ms == sorted(ms) and all(0 <= t < 30_000 for t in ms), ms
    got = same(picked(bt, 1, keep), picked(pt, 1, keep), pids=pids, sort_ties=False,
               masks=[(r"(?m)^\d+ +(?=PID)", "MS ")])
    assert got[0] == "TIME(ms)   PID   ARGS"
    rows = [ln.split(None, 2) for ln in got if tag in ln]
    assert [r[:2] for r in rows] == [["MS", "PID"]] * 4
    assert [r[2] for r in rows] == [f"/bin/true {tag} {i} two  words" for i in range(3)] + [" ".join(many[:16])]


def test_execsnoop_pid(waiters: Callable[[str], Waiter]) -> None:
    """execsnoop PID: the exec of the waiter is shown, another process's
    exec of the same program is not."""
    tag = f"ptexecpid{os.getpid()}"
    w = waiters(f"import os; os.execv('/bin/true', ['/bin/true', '{tag}', 'mine'])")

    def work() -> None:
        subprocess.run(["/bin/true", tag, "other"], check=True)
        w()
    out = ours("execsnoop", work, [str(w.pid)])
    lines = out.split("\n")
    assert lines[0] == "TIME(ms)   PID   ARGS"
    rows = [ln.split() for ln in lines[1:] if ln]
    assert [r[1:] for r in rows] == [[str(w.pid), "/bin/true", tag, "mine"]], out


# ---------------------------------------------------------------- opensnoop, statsnoop


@needs_bpftrace
def test_opensnoop(short_tmp: Path, form: str) -> None:
    """open(2)s that fail (ENOENT: 2) and succeed (an fd), and one of a path
    longer than str() keeps."""
    there = short_tmp / f"ptopen{os.getpid()}"
    there.write_text("x")
    missing = short_tmp / f"ptopen{os.getpid()}-missing"
    deep = short_tmp / ("d" * 80)

    def work() -> None:
        open_n(str(missing), 2)
        open_n(str(there), 2)
        open_n(str(deep), 1)
    child = Forked(work)
    bt, pt = both("opensnoop", child, want=str(there), form=form)
    keep = lambda ln: str(short_tmp) in ln  # noqa: E731
    got = same(picked(bt, 2, keep), picked(pt, 2, keep), pids=[child.pid], sort_ties=False)
    assert got[:2] == ["Tracing open syscalls... Hit Ctrl-C to end.", "PID    COMM               FD ERR PATH"]
    rows = [ln.split() for ln in got if str(short_tmp) in ln]
    assert len(rows) == 5 and all(r[:2] == ["PID", COMM[:15]] for r in rows)
    assert [r[2:] for r in rows] == ([["-1", "2", str(missing)]] * 2 + [[r[2], "0", str(there)] for r in rows[2:4]]
                                     + [["-1", "2", str(deep)[:63]]])
    assert all(int(r[2]) >= 3 for r in rows[2:4])


def test_opensnoop_pid(short_tmp: Path, waiters: Callable[[str], Waiter]) -> None:
    """opensnoop PID: only the waiter's opens, with its comm."""
    path = short_tmp / "ptopenpid"
    path.write_text("x")
    w = waiters(f"import os\nfor _ in range(3): os.close(os.open('{path}', os.O_RDONLY))\n"
                f"try: os.open('{path}-no', os.O_RDONLY)\nexcept FileNotFoundError: pass\n")

    def work() -> None:
        open_n(str(path), 2)  # this process: not shown
        w()
    out = ours("opensnoop", work, [str(w.pid)])
    rows = [ln.split() for ln in out.split("\n")[2:] if ln]
    # Python's own start-up opens nothing after the byte is read: every line is the code's.
    assert [r[:2] + r[3:] for r in rows] == [[str(w.pid), w.comm[:15], "0", str(path)]] * 3 + \
        [[str(w.pid), w.comm[:15], "2", f"{path}-no"]], out
    assert [r[2] for r in rows][3] == "-1" and all(int(r[2]) >= 3 for r in rows[:3])


@needs_bpftrace
def test_statsnoop(short_tmp: Path, form: str) -> None:
    """stat, lstat, statfs and statx, made directly (glibc's stat() is
    newfstatat)."""
    there = str(short_tmp).encode()
    missing = there + f"/ptstat{os.getpid()}".encode()
    buf = ctypes.create_string_buffer(4096)

    def work() -> None:
        for path in (missing, there):
            _libc.syscall(4, path, buf)  # stat
            _libc.syscall(6, path, buf)  # lstat
            _libc.syscall(137, path, buf)  # statfs
            _libc.syscall(332, -100, path, 0, 0xFFF, buf)  # statx(AT_FDCWD, ...)
    child = Forked(work)
    bt, pt = both("statsnoop", child, want=str(short_tmp), form=form)
    keep = lambda ln: str(short_tmp) in ln  # noqa: E731
    got = same(picked(bt, 2, keep), picked(pt, 2, keep), pids=[child.pid], sort_ties=False)
    assert got[:2] == ["Tracing stat syscalls... Hit Ctrl-C to end.", "PID    COMM             ERR PATH"]
    rows = [ln.split() for ln in got if str(short_tmp) in ln]
    assert rows == [["PID", COMM[:15], "2", missing.decode()]] * 4 + [["PID", COMM[:15], "0", there.decode()]] * 4


# ---------------------------------------------------------------- syscount

SYSCOUNT_C = r"""
#include <unistd.h>
#include <sys/syscall.h>
/* Waits for a byte on stdin (when given an argument), then 200,000 getpid
   and 100,000 getppid, and 7 getpid of the 32-bit ABI (int $0x80, ia32
   number 20, which is writev's number in the 64-bit table). */
int main(int argc, char **argv) {
    char c;
    long r;
    if (argc > 1 && read(0, &c, 1) != 1)
        return 1;
    for (int i = 0; i < 200000; i++) syscall(SYS_getpid);
    for (int i = 0; i < 100000; i++) syscall(SYS_getppid);
    for (int i = 0; i < 7; i++) {
        __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L) : "memory");
        if (r <= 0)  /* ENOSYS without ia32 emulation */
            return 2;
    }
    return 0;
}
"""


def _map(body: str, name: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(rf"(?m)^@{name}\[(.*)\]: (\d+)$", body)}


@needs_bpftrace
def test_syscount(tmp_path: Path) -> None:
    """Names instead of numbers: pytrace's @syscall[getpid] is bpftrace's
    @syscall[39] (and getppid 110), with the same count: every syscall of the
    program's life is inside both windows.  Both list the top 10 syscalls and
    processes."""
    exe = build_c(tmp_path, SYSCOUNT_C, name="ptsyscount")
    bt, pt = both("syscount", lambda: subprocess.run([str(exe)], check=True, preexec_fn=pinned()),
                  want="@process[ptsyscount]")
    lines = pt.split("\n")
    assert lines[:3] == ["Counting syscalls... Hit Ctrl-C to end.", "", "Top 10 syscalls:"], pt
    top = lines.index("Top 10 processes:")
    sys_lines, proc_lines = lines[3:top - 1], [ln for ln in lines[top + 1:] if ln]
    # The program alone makes more than 10 distinct syscalls (exec, mmap, ... exit_group).
    assert len(sys_lines) == 10 and 1 <= len(proc_lines) <= 10, pt
    assert all(re.fullmatch(r"@syscall\[[a-z_0-9]+\]: \d+", ln) for ln in sys_lines), sys_lines
    assert "Top 10 syscalls IDs:" in bt
    ids, names = _map(bt, "syscall"), _map(pt, "syscall")
    assert names["getpid"] >= 200000 and names["getppid"] >= 100000
    assert sys_lines[-2:] == [f"@syscall[getppid]: {names['getppid']}", f"@syscall[getpid]: {names['getpid']}"]
    assert ids["39"] >= 200000 and ids["110"] >= 100000  # the whole machine's: each tracer's own window
    mine = _map(pt, "process")["ptsyscount"]
    assert mine > 300000 and _map(bt, "process")["ptsyscount"] == mine


def test_syscount_pid(tmp_path: Path) -> None:
    """syscount PID: exactly the waiting program's syscalls after it was
    woken (its read() had entered before the tool attached), the 32-bit ones
    by their ia32 names."""
    exe = build_c(tmp_path, SYSCOUNT_C, name="ptsyscount")
    proc = subprocess.Popen([str(exe), "wait"], stdin=subprocess.PIPE)
    try:
        def work() -> None:
            assert proc.stdin is not None
            proc.stdin.write(b"x")
            proc.stdin.close()
            assert proc.wait(timeout=20) == 0
        out = ours("syscount", work, [str(proc.pid)])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.rstrip("\n").split("\n") == [
        "Counting syscalls... Hit Ctrl-C to end.", "", "Top 10 syscalls:", "@syscall[exit_group]: 1",
        "@syscall[ia32_getpid]: 7", "@syscall[getppid]: 100000", "@syscall[getpid]: 200000", "",
        "Top 10 processes:", "@process[ptsyscount]: 300008"], out


# ---------------------------------------------------------------- killsnoop, setuids, capable


@needs_bpftrace
def test_killsnoop(form: str) -> None:
    """kill() of a live child with signal 0 and SIGCONT, of its process
    group, of a pid that does not exist (ESRCH: -3), then SIGKILL."""
    bogus = next(p for p in range(4_000_000, 3_000_000, -1) if not os.path.exists(f"/proc/{p}"))

    def work() -> None:
        p = subprocess.Popen(["sleep", "10"], start_new_session=True)
        os.kill(p.pid, 0)
        os.kill(p.pid, signal.SIGCONT)
        os.killpg(p.pid, 0)
        try:
            os.kill(bogus, 0)
        except ProcessLookupError:
            pass
        p.kill()
        p.wait()
    child = Forked(work)
    bt, pt = both("killsnoop", child, want=f" {bogus} ", form=form)
    keep = lambda ln: column(ln, 1) == str(child.pid)  # noqa: E731
    got = same(picked(bt, 2, keep), picked(pt, 2, keep), pids=[child.pid, bogus], times=True, sort_ties=False)
    assert got[1] == "TIME      PID    COMM             SIG  TPID   RESULT"
    rows = [ln.split()[1:] for ln in got[2:] if ln]
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [("PID", COMM[:15], s, res) for s, res in
                                                        (("0", "0"), ("18", "0"), ("0", "0"), ("0", "-3"),
                                                         ("9", "0"))]
    victim = rows[0][3]
    assert [r[3] for r in rows] == [victim, victim, f"-{victim}", "PID", victim]


def test_killsnoop_pid(waiters: Callable[[str], Waiter]) -> None:
    """killsnoop PID: the waiter's kill() calls only (this process's are not)."""
    w = waiters("import os, signal\nos.kill(os.getpid(), 0)\nos.kill(os.getppid(), signal.SIGCONT)\n")

    def work() -> None:
        os.kill(os.getpid(), 0)
        w()
    out = ours("killsnoop", work, [str(w.pid)])
    rows = [ln.split()[1:] for ln in out.split("\n")[2:] if ln]
    assert rows == [[str(w.pid), w.comm[:15], "0", str(w.pid), "0"],
                    [str(w.pid), w.comm[:15], "18", str(os.getpid()), "0"]], out


@needs_bpftrace
def test_setuids(form: str) -> None:
    """setuid, setresuid and setfsuid to this (root) process's own ids, with
    -1 ("unchanged") and 0xfffffffe, and a setuid(-1) the kernel refuses
    (EINVAL: -22)."""
    def work() -> None:
        os.setuid(0)
        os.setresuid(0, 0, 0)
        _libc.setfsuid(0)
        os.setresuid(-1, -1, -1)
        _libc.syscall(105, ctypes.c_long(-1))  # setuid
        _libc.syscall(122, ctypes.c_long(-1))  # setfsuid
        _libc.syscall(117, ctypes.c_long(-1), ctypes.c_long(0), ctypes.c_long(0xFFFFFFFE))  # setresuid
    child = Forked(work)
    bt, pt = both("setuids", child, want="setresuid ruid=-1 euid=0 suid=-2", form=form)
    keep = lambda ln: column(ln, 1) == str(child.pid)  # noqa: E731
    got = same(picked(bt, 2, keep), picked(pt, 2, keep), pids=[child.pid], times=True, sort_ties=False)
    assert got[1] == "TIME     PID    COMM             UID    SYSCALL   ARGS (RET)"
    assert [ln.split()[1:4] for ln in got[2:] if ln] == [["PID", COMM[:15], "0"]] * 7
    assert [ln.split(None, 4)[4] for ln in got[2:] if ln] == [
        "setuid    uid=0 (0)",
        "setresuid ruid=0 euid=0 suid=0 (0)",
        "setfsuid  uid=0 (prevuid=0)",
        "setresuid ruid=-1 euid=-1 suid=-1 (0)",
        "setuid    uid=-1 (-22)",
        "setfsuid  uid=-1 (prevuid=0)",
        "setresuid ruid=-1 euid=0 suid=-2 (0)"]


def test_capable(short_tmp: Path, waiters: Callable[[str], Waiter]) -> None:
    """capable PID (bpftrace's needs a kprobe: pytrace alone).  As root the
    waiter chowns a file (CAP_CHOWN, granted), drops to uid 65534
    (CAP_SETUID, granted), then asks for a higher priority (CAP_SYS_NICE,
    refused: RET -1, UID 65534)."""
    path = short_tmp / "ptcap"
    path.write_text("x")
    w = waiters(f"import os\nos.chown('{path}', 1, -1)\nos.setresuid(65534, 65534, 65534)\n"
                "try: os.nice(-1)\nexcept PermissionError: pass\n")
    out = ours("capable", w, [str(w.pid)])
    lines = out.split("\n")
    assert lines[:2] == ["Tracing cap_capable syscalls... Hit Ctrl-C to end.",
                         "TIME      UID    PID    COMM             CAP  NAME                 RET"], out
    rows = [ln.split() for ln in lines[2:] if ln]
    assert rows and all(r[2:4] == [str(w.pid), w.comm[:15]] for r in rows), out
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", r[0]) for r in rows)
    # CAP_SYS_ADMIN checks happen all along (e.g. the memory limits of mmap):
    # the three this code asks for, in order.
    wanted = [(r[1], r[4], r[5], r[6]) for r in rows if r[5] != "CAP_SYS_ADMIN"]
    assert wanted == [("0", "0", "CAP_CHOWN", "0"), ("0", "7", "CAP_SETUID", "0"),
                      ("65534", "23", "CAP_SYS_NICE", "-1")], out


# ---------------------------------------------------------------- threadsnoop

THREADS_C = r"""
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) void *pt_worker_one(void *a) { return a; }
__attribute__((noinline)) void *pt_worker_two(void *a) { return a; }
int main(void) {
    pthread_t t1, t2;
    char c;
    pthread_create(&t1, NULL, pt_worker_one, NULL);
    pthread_join(t1, NULL);
    pthread_create(&t2, NULL, pt_worker_two, NULL);
    pthread_join(t2, NULL);
    printf("done\n");
    fflush(stdout);
    /* Alive until the test closes stdin: FUNC is resolved in this process. */
    return read(0, &c, 1) < 0;
}
"""


def test_threadsnoop(tmp_path: Path) -> None:
    """Two threads with known start routines: the uprobe on libc's
    pthread_create names them (bpftrace's version probes libpthread, empty
    since glibc 2.34: it prints nothing, so pytrace alone)."""
    exe = build_c(tmp_path, THREADS_C, name="ptthreads", flags=("-O1", "-pthread"))
    procs: list[subprocess.Popen[bytes]] = []

    def work() -> None:
        p = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        procs.append(p)
        assert p.stdout is not None and p.stdout.readline() == b"done\n"
    try:
        out = ours("threadsnoop", work)
    finally:
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
            assert p.wait(timeout=10) == 0
    lines = out.split("\n")
    assert lines[0] == "TIME(ms)   PID    COMM             FUNC"
    rows = [ln.split() for ln in lines[1:] if column(ln, 1) == str(procs[0].pid)]
    assert [r[1:] for r in rows] == [[str(procs[0].pid), "ptthreads", "pt_worker_one"],
                                     [str(procs[0].pid), "ptthreads", "pt_worker_two"]], out
    assert 0 <= int(rows[0][0]) <= int(rows[1][0]) < 30_000


# ---------------------------------------------------------------- pidpersec, naptime, syncsnoop


@needs_bpftrace
def test_pidpersec(form: str) -> None:
    """30 forks, then more than a second so that both tracers' interval fire
    after them: the counts are compared by their total (the ticks of each
    tracer fall at its own moments), the lines by their shape."""
    def work() -> None:
        for _ in range(30):
            subprocess.run(["/bin/true"], check=True)
        time.sleep(1.3)
    bt, pt = both("pidpersec", work, settle=0.05, form=form)
    tick = re.compile(r"^\d\d:\d\d:\d\d PIDs/sec: @: (\d+)$")

    def shape(body: str) -> tuple[list[str], int]:
        out: list[str] = []
        total = 0
        for ln in body.split("\n"):
            m = tick.match(ln)
            if m:
                total += int(m.group(1))
                ln = "HH:MM:SS PIDs/sec: @: N"
            if not (out and ln == out[-1]):
                out.append(ln)
        return out, total
    (a, na), (b, nb) = shape(bt), shape(pt)
    assert b == a, f"--- bpftrace ---\n{bt}\n--- pytrace ---\n{pt}"
    assert b == ["Tracing new processes... Hit Ctrl-C to end.", "HH:MM:SS PIDs/sec: @: N", "", "@: 0", ""]
    assert na >= 30 and nb >= 30


@needs_bpftrace
def test_naptime(form: str) -> None:
    """nanosleep(2) itself (glibc's nanosleep() is clock_nanosleep): a zero
    request is skipped; seconds.milliseconds; the parent is this process."""
    class Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    def work() -> None:
        for ns in (1_000_000, 12_000_000, 0, 1):
            ts = Timespec(0, ns)
            _libc.syscall(35, ctypes.byref(ts), None)
    child = Forked(work)
    bt, pt = both("naptime", child, want=" 0.012", form=form)
    keep = lambda ln: column(ln, 3) == str(child.pid)  # noqa: E731
    got = same(picked(bt, 2, keep), picked(pt, 2, keep), times=True, sort_ties=False)
    assert got[1] == "TIME     PPID   PCOMM            PID    COMM             SECONDS"
    me, kid = str(os.getpid()), str(child.pid)
    assert [ln.split()[1:] for ln in got[2:] if ln] == [[me, COMM[:15], kid, COMM[:15], s]
                                                        for s in ("0.001", "0.012", "0.000")]


@needs_bpftrace
def test_syncsnoop(tmp_path: Path, form: str) -> None:
    """One of each sync syscall the tool traces, in order."""
    import mmap
    path = tmp_path / "ptsync"

    def work() -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT)
        os.write(fd, b"x" * 4096)
        os.fsync(fd)
        os.fdatasync(fd)
        _libc.syncfs(fd)
        _libc.sync_file_range(fd, ctypes.c_long(0), ctypes.c_long(4096), 2)
        with mmap.mmap(fd, 4096) as m:
            m.flush()  # msync
        os.sync()
        os.close(fd)
    child = Forked(work)
    bt, pt = both("syncsnoop", child, want="sys_enter_msync", form=form)
    keep = lambda ln: column(ln, 1) == str(child.pid)  # noqa: E731
    got = same(picked(bt, 2, keep), picked(pt, 2, keep), pids=[child.pid], times=True, sort_ties=False)
    assert got[1] == "TIME      PID    COMM             EVENT"
    assert [ln.split()[1:] for ln in got[2:] if ln] == [
        ["PID", COMM[:15], f"tracepoint:syscalls:sys_enter_{s}"]
        for s in ("fsync", "fdatasync", "syncfs", "sync_file_range", "msync", "sync")]


# ---------------------------------------------------------------- bashreadline


@needs_bpftrace
def test_bashreadline(form: str) -> None:
    tag = f"ptrl{os.getpid()}"
    typed = [f"echo {tag}".encode(), f"true {tag}  two words".encode(), f"true {tag} {'w' * 80}".encode(), b"exit"]
    bash: list[int] = []
    bt, pt = both("bashreadline", lambda: (bash.clear(), bash.append(drive_bash(typed))), want=f"echo {tag}",
                  form=form)
    keep = lambda ln: column(ln, 1) == str(bash[0])  # noqa: E731
    got = same(picked(bt, 2, keep), picked(pt, 2, keep), pids=bash, times=True, sort_ties=False)
    assert got[:2] == ["Tracing bash commands... Hit Ctrl-C to end.", "TIME      PID    COMMAND"]
    assert [ln.split(None, 2)[1:] for ln in got[2:] if ln] == [["PID", t.decode()[:63]] for t in typed]


# ---------------------------------------------------------------- gethostlatency

GETHOST_C = r"""
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
/* Names that resolve without DNS: numeric addresses, and localhost from /etc/hosts. */
int main(int argc, char **argv) {
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_flags = AI_NUMERICHOST;
    for (int i = 1; i < argc; i++)
        if (getaddrinfo(argv[i], NULL, &hints, &res) == 0)
            freeaddrinfo(res);
    gethostbyname("localhost");
    gethostbyname2("localhost", AF_INET);
    return 0;
}
"""


@needs_bpftrace
def test_gethostlatency(tmp_path: Path, form: str) -> None:
    exe = build_c(tmp_path, GETHOST_C, name="ptgethost")
    pids: list[int] = []

    def work() -> None:
        pids.clear()
        # A name that is not numeric fails at once under AI_NUMERICHOST (no DNS).
        p = subprocess.Popen([str(exe), "127.0.0.1", "127.0.0.2", "h" * 80], preexec_fn=pinned())
        pids.append(p.pid)
        assert p.wait() == 0
    bt, pt = both("gethostlatency", work, want="ptgethost", form=form)
    keep = lambda ln: column(ln, 1) == str(pids[0])  # noqa: E731
    for body in (bt, pt):  # LATms: none of these lookups waits for anything
        assert all(0 <= int(column(ln, 3)) < 5_000 for ln in pick(body, 2, keep)[2:] if ln), body
    got = same(picked(bt, 2, keep), picked(pt, 2, keep), pids=pids, times=True, sort_ties=False,
               masks=[(r"(?m)^(HH:MM:SS  PID +ptgethost +) +\d+ ", r"\1LAT ")])
    assert got[1] == "TIME      PID    COMM              LATms HOST"
    assert [ln.split()[1:] for ln in got[2:] if ln] == [["PID", "ptgethost", "LAT", h] for h in
                                                        ("127.0.0.1", "127.0.0.2", "h" * 63, "localhost",
                                                         "localhost")]


# ---------------------------------------------------------------- loads


def test_loads() -> None:
    """Two one-second ticks.  Each prints /proc/loadavg as the kernel had it:
    its three averages are among what the test read from /proc/loadavg
    around the run (they change every 5 s), and its last pid is at least
    that of a process the test started before the tick."""
    reads: list[str] = []
    started: list[int] = []

    def work() -> None:
        subprocess.run(["/bin/true"], check=True)
        started.append(int(Path("/proc/loadavg").read_text().split()[4]))
        end = time.monotonic() + 2.3
        while time.monotonic() < end:
            reads.append(" ".join(Path("/proc/loadavg").read_text().split()[:3]))
            time.sleep(0.05)
    out = ours("loads", work, settle=0.0)
    lines = out.split("\n")
    assert lines[0] == "Reading load averages... Hit Ctrl-C to end."
    ticks = [ln for ln in lines[1:] if ln]
    assert len(ticks) >= 2, out
    pat = re.compile(r"\d\d:\d\d:\d\d load averages: (\d+\.\d\d \d+\.\d\d \d+\.\d\d) \d+/\d+ (\d+)")
    for ln in ticks:
        m = pat.fullmatch(ln)
        assert m, ln
        assert m.group(1) in reads, (ln, sorted(set(reads)))
    assert int(pat.fullmatch(ticks[-1]).group(2)) >= started[0]  # type: ignore[union-attr]


# ---------------------------------------------------------------- the PID parameter of the other tools

_NANOSLEEP = ("import ctypes\nts = (ctypes.c_long * 2)(0, 2_000_000)\n"
              "ctypes.CDLL(None).syscall(35, ctypes.byref(ts), None)\n")
# tool: (what the waiter and this process both do, the PID column, where the
# columns after COMM that the test knows begin, those columns)
PID_CASES = {
    "statsnoop": ("import ctypes\nctypes.CDLL(None).syscall(4, b'/proc/self', ctypes.create_string_buffer(256))\n",
                  0, 2, ["0", "/proc/self"]),
    "setuids": ("import os\nos.setuid(0)\n", 1, 3, ["0", "setuid", "uid=0", "(0)"]),
    "naptime": (_NANOSLEEP, 3, 5, ["0.002"]),
    "syncsnoop": ("import os\nos.sync()\n", 1, 3, ["tracepoint:syscalls:sys_enter_sync"]),
    "gethostlatency": ("import socket\nsocket.getaddrinfo('127.0.0.1', None)\n", 1, 4, ["127.0.0.1"]),  # after LATms
    # CPython's threads start in its pythread_wrapper (Python/thread_pthread.h);
    # FUNC is resolved in the live process: it lingers.
    "threadsnoop": ("import threading, time\nt = threading.Thread(target=len, args=('',))\nt.start()\nt.join()\n"
                    "time.sleep(0.5)\n", 1, 3, ["pythread_wrapper"]),
}


@pytest.mark.parametrize("name", sorted(PID_CASES))
def test_pid_parameter(name: str, waiters: Callable[[str], Waiter]) -> None:
    """NAME PID: the waiter's one event is printed, the same action by this
    process is not."""
    code, col, known, rest = PID_CASES[name]
    w = waiters(code)

    def work() -> None:
        exec(code, {})
        w()
    out = ours(name, work, [str(w.pid)])
    rows = [ln.split() for ln in out.split("\n") if ln[:1].isdigit()]  # not the header lines
    assert len(rows) == 1, out
    assert rows[0][col:col + 2] == [str(w.pid), w.comm[:15]] and rows[0][known:] == rest, out
