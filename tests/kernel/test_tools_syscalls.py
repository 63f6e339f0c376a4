"""Debian's syscall and scheduler bpftrace tools, under bpftrace 0.17 and
pytrace at once, around one workload the test controls.

Each tool file runs as it is (``bpftrace /usr/sbin/X.bt``).  The tools see
every process on the machine, so after the lines the tool prints in BEGIN
only the workload's own lines are compared (those naming its pids or its
unique paths), with what varies by nature masked: wall-clock times,
elapsed-time columns and pids.  The workload runs in a child pinned to one
CPU, so both tracers receive its events in order.  syscount and pidpersec
count the whole machine over each tracer's own window: the workload's own
count must be the same, the rest is compared by its shape.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.cprog import build_c

from .difflib_pt import Forked, column, have_bpftrace, open_n, pick, pinned, same, tool_outputs as outputs

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]

_libc = ctypes.CDLL(None, use_errno=True)
COMM = Path("/proc/self/comm").read_text().strip()  # the forked workload children keep it


# ---------------------------------------------------------------- snoopers


def _execsnoop(argvs: list[list[str]], tag: str) -> list[str]:
    """execsnoop around exec(2) of each argv (pinned children); the lines
    naming ``tag``, after the header, compared and returned."""
    pids: list[int] = []

    def work() -> None:
        for argv in argvs:
            p = subprocess.Popen(argv, preexec_fn=pinned())
            p.wait()
            pids.append(p.pid)
    bt, pt = outputs("execsnoop", work)
    keep = lambda ln: tag in ln  # noqa: E731
    for body in (bt, pt):  # milliseconds since the tracer started: within the run
        ms = [int(ln.split()[0]) for ln in pick(body, 1, keep)[1:] if ln]
        assert ms == sorted(ms) and all(0 <= t < 30_000 for t in ms), ms
    # TIME(ms) is the tool's own elapsed time: each tracer started at its own moment.
    got = same(pick(bt, 1, keep), pick(pt, 1, keep), pids=pids, sort_ties=False,
               masks=[(r"(?m)^\d+ +(?=PID)", "MS ")])
    assert got[0] == "TIME(ms)   PID   ARGS"
    rows = [ln.split(None, 2) for ln in got if tag in ln]
    assert [r[:2] for r in rows] == [["MS", "PID"]] * len(argvs)
    return [r[2] for r in rows]


def test_execsnoop() -> None:
    """Three execs, then one with 21 arguments: join() prints the first 16."""
    tag = f"ptexec{os.getpid()}"
    many = ["/bin/true", tag] + [f"a{i}" for i in range(19)]
    args = _execsnoop([["/bin/true", tag, str(i), "two  words"] for i in range(3)] + [many], tag)
    assert args == [f"/bin/true {tag} {i} two  words" for i in range(3)] + [" ".join(many[:16])]


def test_execsnoop_long_arguments() -> None:
    tag = f"ptexec{os.getpid()}"
    long = ["/bin/true", tag, "L" * 100, "x" * 1100, "end"]
    assert _execsnoop([long], tag) == [" ".join(long[:3] + ["x" * 1023, "end"])]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A directory with a short name: the tools print paths as str(), cut
    at 63 bytes."""
    d = Path(tempfile.mkdtemp(prefix="pt", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_opensnoop(short_tmp: Path) -> None:
    """open(2)s that fail (ENOENT: 2) and succeed (an fd), and one of a path
    longer than str() keeps."""
    tmp_path = short_tmp
    there = tmp_path / f"ptopen{os.getpid()}"
    there.write_text("x")
    missing = tmp_path / f"ptopen{os.getpid()}-missing"
    deep = tmp_path / ("d" * 80)

    def work() -> None:
        open_n(str(missing), 2)
        open_n(str(there), 2)
        open_n(str(deep), 1)
    child = Forked(work)
    bt, pt = outputs("opensnoop", child)
    keep = lambda ln: str(tmp_path) in ln  # noqa: E731
    got = same(pick(bt, 2, keep), pick(pt, 2, keep), pids=[child.pid], sort_ties=False)
    assert got[:2] == ["Tracing open syscalls... Hit Ctrl-C to end.", "PID    COMM               FD ERR PATH"]
    rows = [ln.split() for ln in got if str(tmp_path) in ln]
    assert [r[2:] for r in rows] == ([["-1", "2", str(missing)]] * 2 + [[r[2], "0", str(there)] for r in rows[2:4]]
                                     + [["-1", "2", str(deep)[:63]]])
    assert len(rows) == 5 and all(r[:2] == ["PID", COMM[:15]] for r in rows)
    assert all(int(r[2]) >= 3 for r in rows[2:4])


def test_statsnoop(short_tmp: Path) -> None:
    """stat, lstat, statfs and statx (the syscalls the tool traces; glibc's
    stat() is newfstatat, so they are made directly)."""
    tmp_path = short_tmp
    there = str(tmp_path).encode()
    missing = there + f"/ptstat{os.getpid()}".encode()
    buf = ctypes.create_string_buffer(4096)

    def work() -> None:
        for path in (missing, there):
            _libc.syscall(4, path, buf)  # stat
            _libc.syscall(6, path, buf)  # lstat
            _libc.syscall(137, path, buf)  # statfs
            _libc.syscall(332, -100, path, 0, 0xFFF, buf)  # statx(AT_FDCWD, ...)
    child = Forked(work)
    bt, pt = outputs("statsnoop", child)
    keep = lambda ln: str(tmp_path) in ln  # noqa: E731
    got = same(pick(bt, 2, keep), pick(pt, 2, keep), pids=[child.pid], sort_ties=False)
    assert got[1] == "PID    COMM             ERR PATH"
    rows = [ln.split()[2:] for ln in got if str(tmp_path) in ln]
    assert rows == [["2", missing.decode()]] * 4 + [["0", there.decode()]] * 4


def test_killsnoop() -> None:
    """kill() of a live child with signal 0 and SIGCONT, of its process
    group (a negative pid), of a pid that does not exist (ESRCH: -3), then
    SIGKILL."""
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
    bt, pt = outputs("killsnoop", child)
    # The test's own SIGINTs to the tracers are seen by whichever tracer is still running.
    keep = lambda ln: column(ln, 1) == str(child.pid)  # noqa: E731
    got = same(pick(bt, 2, keep), pick(pt, 2, keep), pids=[child.pid, bogus], times=True, sort_ties=False)
    assert got[1] == "TIME      PID    COMM             SIG  TPID   RESULT"
    rows = [ln.split()[3:] for ln in got[2:] if ln]
    assert [(r[0], r[2]) for r in rows] == [("0", "0"), ("18", "0"), ("0", "0"), ("0", "-3"), ("9", "0")]
    victim = rows[0][1]
    assert [r[1] for r in rows] == [victim, victim, f"-{victim}", "PID", victim]


def test_setuids() -> None:
    """setuid, setresuid and setfsuid to this (root) process's own ids,
    then with -1 ("unchanged", a uid_t printed with %d) and 0xfffffffe, and
    a setuid(-1) the kernel refuses (EINVAL: -22)."""
    def work() -> None:
        os.setuid(0)
        os.setresuid(0, 0, 0)
        _libc.setfsuid(0)
        os.setresuid(-1, -1, -1)
        _libc.syscall(105, ctypes.c_long(-1))  # setuid
        _libc.syscall(122, ctypes.c_long(-1))  # setfsuid
        _libc.syscall(117, ctypes.c_long(-1), ctypes.c_long(0), ctypes.c_long(0xFFFFFFFE))  # setresuid
    child = Forked(work)
    bt, pt = outputs("setuids", child)
    keep = lambda ln: column(ln, 1) == str(child.pid)  # noqa: E731
    got = same(pick(bt, 2, keep), pick(pt, 2, keep), pids=[child.pid], times=True, sort_ties=False)
    assert [ln.split()[1:4] for ln in got[2:] if ln] == [["PID", COMM[:15], "0"]] * 7
    assert [ln.split(None, 4)[4] for ln in got[2:] if ln] == [
        "setuid    uid=0 (0)",
        "setresuid ruid=0 euid=0 suid=0 (0)",
        "setfsuid  uid=0 (prevuid=0)",
        "setresuid ruid=-1 euid=-1 suid=-1 (0)",
        "setuid    uid=-1 (-22)",
        "setfsuid  uid=-1 (prevuid=0)",
        "setresuid ruid=-1 euid=0 suid=-2 (0)"]


def test_syncsnoop(tmp_path: Path) -> None:
    """One of each sync syscall the tool traces."""
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
    bt, pt = outputs("syncsnoop", child)
    keep = lambda ln: column(ln, 1) == str(child.pid)  # noqa: E731
    got = same(pick(bt, 2, keep), pick(pt, 2, keep), pids=[child.pid], times=True, sort_ties=False)
    assert [column(ln, 3) for ln in got[2:] if ln] == [
        f"tracepoint:syscalls:sys_enter_{s}" for s in ("fsync", "fdatasync", "syncfs", "sync_file_range", "msync",
                                                        "sync")]


def test_naptime() -> None:
    """nanosleep(2) itself (glibc's nanosleep() is clock_nanosleep): the
    tool skips a zero request and prints seconds.milliseconds."""
    class Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    def work() -> None:
        for ns in (1_000_000, 12_000_000, 0, 1):
            ts = Timespec(0, ns)
            _libc.syscall(35, ctypes.byref(ts), None)
    child = Forked(work)
    bt, pt = outputs("naptime", child)
    keep = lambda ln: column(ln, 3) == str(child.pid)  # noqa: E731
    got = same(pick(bt, 2, keep), pick(pt, 2, keep), pids=[child.pid, os.getpid()], times=True,
               sort_ties=False)
    assert got[1] == "TIME     PPID   PCOMM            PID    COMM             SECONDS"
    assert [ln.split()[1:] for ln in got[2:] if ln] == [["PID", COMM[:15], "PID", COMM[:15], s]
                                                        for s in ("0.001", "0.012", "0.000")]


# ---------------------------------------------------------------- counters


def test_syscount(tmp_path: Path) -> None:
    """A program making 200,000 getpid and 100,000 getppid calls: it tops
    both lists, with the same count in both tracers (every syscall of its
    life is inside both tracing windows).  The other entries are the rest of
    the machine, counted over each tracer's own window: their keys and
    values are masked."""
    exe = build_c(tmp_path, "#include <unistd.h>\n#include <sys/syscall.h>\n"
                            "int main(void) { for (int i = 0; i < 200000; i++) syscall(SYS_getpid);\n"
                            "for (int i = 0; i < 100000; i++) syscall(SYS_getppid); return 0; }\n",
                  name="ptsyscount")
    bt, pt = outputs("syscount", lambda: subprocess.run([str(exe)], check=True, preexec_fn=pinned()))

    def shape(body: str) -> list[str]:
        out: list[str] = []
        for ln in body.split("\n"):
            if ln.startswith("@process[ptsyscount]"):
                pass
            elif ln.startswith("@syscall[") and not ln.startswith(("@syscall[39]", "@syscall[110]")):
                ln = "@syscall[ID]: N"
            elif ln.startswith("@process["):
                ln = "@process[COMM]: N"
            elif ln.startswith(("@syscall[39]", "@syscall[110]")):
                n = int(ln.split(": ")[1])
                assert n >= (200000 if "[39]" in ln else 100000), ln
                ln = ln.split(":")[0] + ": N"
            if not (out and ln == out[-1] == "@process[COMM]: N"):
                out.append(ln)
        return out
    a, b = shape(bt), shape(pt)
    assert b == a, f"--- bpftrace ---\n{bt}\n--- pytrace ---\n{pt}"
    assert b[:4] == ["Counting syscalls... Hit Ctrl-C to end.", "", "Top 10 syscalls IDs:", "@syscall[ID]: N"]
    top = b.index("Top 10 processes:")
    assert b[top - 3:top] == ["@syscall[110]: N", "@syscall[39]: N", ""]
    assert b[3:top - 3] == ["@syscall[ID]: N"] * 8
    mine = [ln for ln in pt.split("\n") if ln.startswith("@process[ptsyscount]")]
    assert mine and int(mine[0].split(": ")[1]) > 300000
    assert [ln for ln in bt.split("\n") if ln.startswith("@process[ptsyscount]")] == mine


def test_pidpersec() -> None:
    """30 forks, then more than a second so both tracers' interval fire
    after them.  Each tracer's one-second ticks fall at its own moments, so
    the counts are compared by their total (at least the 30 forks) and the
    lines by their shape."""
    def work() -> None:
        for _ in range(30):
            subprocess.run(["/bin/true"], check=True)
        time.sleep(1.3)
    bt, pt = outputs("pidpersec", work, settle=0.05)
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
