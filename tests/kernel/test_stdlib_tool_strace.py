"""``pytrace tool strace`` (stdlib/tools/strace.py) in the kernel: a C
program the test controls makes known syscalls (through syscall(2), so no
libc version changes them) and the tool must print exactly the decoded
lines, the -s summary counts, follow a fork with -f, attach to a running
process with -p, and check its own syscall table against the numbers the
kernel puts in its syscall tracepoints' records."""

from __future__ import annotations

import os
import re
import select
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytrace import sysinfo
from tests.cprog import build_c

READY = "__BPFTRACE_NOTIFY_PROBES_ATTACHED"
TOOL = [sys.executable, "-m", "pytrace", "tool", "strace"]
ROOT = Path(__file__).resolve().parents[2]

WORKLOAD = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* argv[1] a missing path, argv[2] a file to create, argv[3] its new name;
   a 4th argument: wait for a line on stdin first (-p attaches meanwhile);
   "fork" as 1st argument: a child opens argv[2] (missing), the parent waits;
   "thread": a thread does (and prints its tid first). */
static void *in_thread(void *path) {
    char line[32];
    int n = snprintf(line, sizeof line, "%ld\n", (long)syscall(SYS_gettid));
    syscall(SYS_write, 1, line, n);
    syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
    return 0;
}

int main(int argc, char **argv) {
    char go[8];
    if (argv[1][0] == 's') {   /* "storm N": N getppid calls, as fast as they go */
        for (long i = atol(argv[2]); i > 0; i--)
            syscall(SYS_getppid);
        syscall(SYS_exit_group, 0);
    }
    if (argv[1][0] == 't') {
        pthread_t t;
        pthread_create(&t, 0, in_thread, argv[2]);
        pthread_join(t, 0);
        syscall(SYS_exit_group, 0);
    }
    if (argv[1][0] == 'f') {
        long child = syscall(SYS_fork);
        if (child == 0) {
            syscall(SYS_openat, AT_FDCWD, argv[2], O_RDONLY | O_CLOEXEC);
            syscall(SYS_exit_group, 4);
        }
        syscall(SYS_wait4, child, 0, 0, 0);
        syscall(SYS_exit_group, 0);
    }
    if (argc > 4)
        syscall(SYS_read, 0, go, sizeof go);
    syscall(SYS_openat, AT_FDCWD, argv[1], O_RDONLY);
    long fd = syscall(SYS_openat, AT_FDCWD, argv[2], O_CREAT | O_WRONLY | O_TRUNC, 0640);
    syscall(SYS_write, fd, "hello strace\n", 13);
    syscall(SYS_write, fd, "0123456789abcdefghijklmnopqrstuvwxyzABCD", 40);
    syscall(SYS_close, fd);
    syscall(SYS_rename, argv[2], argv[3]);
    syscall(SYS_unlink, argv[3]);
    long p = syscall(SYS_mmap, 0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    syscall(SYS_munmap, p, 8192);
    syscall(SYS_kill, syscall(SYS_getpid), SIGCHLD);
    for (int i = 0; i < 5; i++)
        syscall(SYS_dup, -1);
    for (int i = 0; i < 7; i++)
        syscall(SYS_getppid);
    struct timespec ts = {0, 20000000};
    syscall(SYS_nanosleep, &ts, 0);
    syscall(SYS_exit_group, 3);
}
"""

DURATION = r" <(\d+\.\d{6})>"
ENOENT = "-1 ENOENT (No such file or directory)"


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c(tmp_path_factory.mktemp("strace"), WORKLOAD, "strace_workload", ("-O1", "-pthread"))


def paths(tmp_path: Path) -> tuple[str, str, str]:
    return (str(tmp_path / f"missing-{os.getpid()}"), str(tmp_path / "created"), str(tmp_path / "renamed"))


def expected(missing: str, created: str, renamed: str) -> list[str]:
    """The workload's lines from its first openat, as regexes: FD is the fd
    the second openat returns, PID the process, ADDR the mapping."""
    e = re.escape
    lines = [
        e(f'openat(AT_FDCWD, "{missing}", O_RDONLY) = {ENOENT}') + DURATION,
        e(f'openat(AT_FDCWD, "{created}", O_WRONLY|O_CREAT|O_TRUNC, 0640) = ') + r"(?P<fd>\d+)" + DURATION,
        r"write\((?P=fd), " + e(r'"hello strace\n", 13) = 13') + DURATION,
        r"write\((?P=fd), " + e('"0123456789abcdefghijklmnopqrstuv"..., 40) = 40') + DURATION,
        r"close\((?P=fd)\) = 0" + DURATION,
        e(f'rename("{created}", "{renamed}") = 0') + DURATION,
        e(f'unlink("{renamed}") = 0') + DURATION,
        e("mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = ")
        + r"(?P<addr>0x[0-9a-f]+)" + DURATION,
        r"munmap\((?P=addr), 8192\) = 0" + DURATION,
        r"getpid\(\) = (?P<pid>\d+)" + DURATION,
        r"kill\((?P=pid), SIGCHLD\) = 0" + DURATION,
        *[e("dup(-1) = -1 EBADF (Bad file descriptor)") + DURATION] * 5,
        *[r"getppid\(\) = \d+" + DURATION] * 7,
        r"nanosleep\(0x[0-9a-f]+, NULL\) = 0" + DURATION,
        e("exit_group(3) = ?"),
        e("+++ exited with 3 +++"),
    ]
    return lines


def match_block(out: str, missing: str, created: str, renamed: str) -> dict[str, str]:
    """Finds the workload's block in the tool's output and matches it line
    by line; returns the named groups and the nanosleep duration."""
    lines = out.splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.startswith(f'openat(AT_FDCWD, "{missing}"')]
    assert len(starts) == 1, out
    block = lines[starts[0]:starts[0] + len(expected(missing, created, renamed))]
    pattern = "\n".join(expected(missing, created, renamed))
    m = re.fullmatch(pattern, "\n".join(block))
    assert m is not None, "\n".join(block)
    groups = dict(m.groupdict())
    sleep = [ln for ln in block if ln.startswith("nanosleep(")][0]
    groups["sleep"] = re.search(DURATION + "$", sleep).group(1)  # type: ignore[union-attr]
    return groups


def test_command(workload: Path, tmp_path: Path) -> None:
    missing, created, renamed = paths(tmp_path)
    cmd = shlex.join([str(workload), missing, created, renamed])
    r = subprocess.run([*TOOL, "-c", cmd], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 3, r.stderr   # the command's exit status, as strace returns it
    assert "Traceback" not in r.stderr
    groups = match_block(r.stdout, missing, created, renamed)
    assert float(groups["sleep"]) >= 0.020
    assert not os.path.exists(created) and not os.path.exists(renamed)
    # The trace begins with the exec of the command (one execve: the tool finds
    # the program on PATH first); no line belongs to another process.
    assert re.match(r'execve\("' + re.escape(str(workload)) + r'", 0x[0-9a-f]+, 0x[0-9a-f]+\) = 0 <', r.stdout), \
        r.stdout
    assert "[pid " not in r.stdout


def summary_rows(out: str) -> dict[str, tuple[float, int, int]]:
    """name -> (seconds, calls, errors) of a -s table."""
    rows: dict[str, tuple[float, int, int]] = {}
    for ln in out.splitlines():
        m = re.fullmatch(r"\s*(\d+\.\d\d) +(\d+\.\d{6}) +(\d+) +(\d+) +(\d*) (\w+)", ln)
        if m:
            rows[m.group(6)] = (float(m.group(2)), int(m.group(4)), int(m.group(5) or 0))
    return rows


def test_summary(workload: Path, tmp_path: Path) -> None:
    missing, created, renamed = paths(tmp_path)
    cmd = shlex.join([str(workload), missing, created, renamed])
    r = subprocess.run([*TOOL, "-s", "-c", cmd], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 3, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "% time     seconds  usecs/call     calls    errors syscall"
    assert lines[1] == lines[-2] == "------ ----------- ----------- --------- --------- ----------------"
    assert not any(ln.startswith("openat(") for ln in lines)  # the summary only
    rows = summary_rows(r.stdout)
    assert rows["dup"][1:] == (5, 5)
    assert rows["getppid"][1:] == (7, 0)
    assert rows["write"][1:] == (2, 0)
    for name in ("rename", "unlink", "kill", "getpid", "nanosleep", "exit_group"):
        assert rows[name][1:] == (1, 0), name
    assert rows["nanosleep"][0] >= 0.020
    assert rows["openat"][1] >= 2 and rows["openat"][2] >= 1   # ours, plus the dynamic loader's
    assert rows["munmap"][1] >= 1
    total = rows.pop("total")
    assert total[1] == sum(v[1] for v in rows.values()) and total[2] == sum(v[2] for v in rows.values())
    # Sorted by time, the largest first: the 20 ms sleep leads.
    assert lines[2].endswith(" nanosleep"), r.stdout


def test_summary_of_a_storm_is_exact(workload: Path) -> None:
    """-s counts in the kernel: 200,000 calls in a tight loop, none lost."""
    r = subprocess.run([*TOOL, "-s", "-e", "getppid", "-c", f"{workload} storm 200000"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    rows = summary_rows(r.stdout)
    assert rows["getppid"][1:] == (200000, 0) and rows["total"][1:] == (200000, 0), r.stdout
    assert "Lost" not in r.stderr


def test_follow_fork(workload: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / f"child-missing-{os.getpid()}")
    cmd = shlex.join([str(workload), "fork", missing])
    r = subprocess.run([*TOOL, "-f", "-c", cmd], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    m = re.search(r"^fork\(\) = (\d+) <", r.stdout, re.M)
    assert m is not None, r.stdout
    child = m.group(1)
    lines = r.stdout.splitlines()
    mine = [ln for ln in lines if ln.startswith(f"[pid {child}] ")]
    assert re.fullmatch(re.escape(f'[pid {child}] openat(AT_FDCWD, "{missing}", O_RDONLY|O_CLOEXEC) = {ENOENT}')
                        + DURATION, mine[0]), r.stdout
    assert mine[-2:] == [f"[pid {child}] exit_group(4) = ?", f"[pid {child}] +++ exited with 4 +++"]
    assert re.search(rf"^wait4\({child}, NULL, 0, NULL\) = {child} <", r.stdout, re.M), r.stdout
    assert lines[-2:] == ["exit_group(0) = ?", "+++ exited with 0 +++"]
    # Without -f the child's calls are not traced.
    r = subprocess.run([*TOOL, "-c", cmd], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert missing not in r.stdout and "[pid " not in r.stdout


def test_threads(workload: Path, tmp_path: Path) -> None:
    """Every thread of the traced process is traced, its lines marked."""
    missing = str(tmp_path / f"thread-missing-{os.getpid()}")
    r = subprocess.run([*TOOL, "-c", shlex.join([str(workload), "thread", missing])], capture_output=True,
                       text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    # The thread writes its tid to the same pipe as the tool: anywhere among its lines.
    tids = [ln for ln in r.stdout.splitlines() if ln.isdigit()]
    assert len(tids) == 1, r.stdout
    tid = tids[0]
    lines = [ln for ln in r.stdout.splitlines() if ln != tid]
    mine = [ln for ln in lines if ln.startswith(f"[pid {tid}] ")]
    mine = mine[[i for i, ln in enumerate(mine) if ln.startswith(f"[pid {tid}] gettid() = {tid} <")][0] + 1:]
    assert re.fullmatch(re.escape(f'[pid {tid}] write(1, "{tid}\\n", {len(tid) + 1}) = {len(tid) + 1}') + DURATION,
                        mine[0]), r.stdout
    assert re.fullmatch(re.escape(f'[pid {tid}] openat(AT_FDCWD, "{missing}", O_RDONLY) = {ENOENT}') + DURATION,
                        mine[1]), r.stdout
    assert re.search(r"^clone3\(0x[0-9a-f]+, 88\) = " + tid + " <", r.stdout, re.M), r.stdout
    assert lines[-2:] == ["exit_group(0) = ?", "+++ exited with 0 +++"]


def test_attach_to_pid(workload: Path, tmp_path: Path) -> None:
    missing, created, renamed = paths(tmp_path)
    prog = subprocess.Popen([str(workload), missing, created, renamed, "wait"], stdin=subprocess.PIPE)
    assert prog.stdin is not None
    tool = subprocess.Popen([*TOOL, "-p", str(prog.pid)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT, env=dict(os.environ, __BPFTRACE_NOTIFY_PROBES_ATTACHED=READY))
    assert tool.stdout is not None
    try:
        out = b""
        deadline = time.monotonic() + 30
        while READY.encode() not in out and time.monotonic() < deadline and tool.poll() is None:
            if select.select([tool.stdout], [], [], 0.1)[0]:
                out += os.read(tool.stdout.fileno(), 65536)
        assert READY.encode() in out, tool.stderr.read() if tool.stderr else ""
        prog.stdin.write(b"go\n")
        prog.stdin.close()
        assert prog.wait(timeout=10) == 3
        rest, err = tool.communicate(timeout=30)   # it ends by itself when the process is gone
    finally:
        for p in (prog, tool):
            if p.poll() is None:
                p.kill()
                p.wait()
    text = (out + rest).decode()
    assert tool.returncode == 0, err.decode()
    groups = match_block(text, missing, created, renamed)
    assert groups["pid"] == str(prog.pid)
    # The read the process was blocked in began before tracing: no line, no traceback.
    assert "read(0," not in text and b"Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    ([], "one of the arguments -p -c is required"),
    (["-p", "x"], "invalid int value"),
    (["-p", "1", "-c", "true"], "not allowed with argument"),
    (["-p", "999999999"], "no process 999999999"),
    (["-e", "openat,nosuchcall", "-c", "true"], "unknown syscall 'nosuchcall'"),
    (["-c", "/nonexistent/program"], "cannot run '/nonexistent/program'"),
])
def test_bad_usage(argv: list[str], message: str) -> None:
    r = subprocess.run([*TOOL, *argv], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_filter_by_name(workload: Path, tmp_path: Path) -> None:
    missing, created, renamed = paths(tmp_path)
    cmd = shlex.join([str(workload), missing, created, renamed])
    r = subprocess.run([*TOOL, "-e", "rename,dup", "-c", cmd], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 3, r.stderr
    names = [ln.split("(")[0] for ln in r.stdout.splitlines()]
    assert names == ["rename"] + ["dup"] * 5 + ["+++ exited with 3 +++"], r.stdout


NEW_SYSCALLS = r"""
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>
/* The table's newest numbers, called with arguments that fail harmlessly
   (bad fds, NULL pointers, empty ranges). */
int main(void) {
    static const long nrs[] = {424, 436, 449, 451, 452, 454, 455, 456, 457, 458, 459, 460, 461, 462, 463,
                               464, 465, 466, 467, 468, 469};
    for (unsigned i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
        if (nrs[i] == 436)   /* close_range: a range with no open fd */
            syscall(436, 100000, 100001, 0);
        else
            syscall(nrs[i], -1L, 0L, 0L, 0L, 0L, 0L);
    }
    return 0;
}
"""


def syscall_records(tool: str, prog: Path, probes: str) -> dict[str, int]:
    script = probes + ' /pid == cpid/ { printf("%s %d\\n", probe, args->__syscall_nr); }'
    cmd = [sys.executable, "-m", "pytrace"] if tool == "pytrace" else ["bpftrace"]
    r = subprocess.run([*cmd, "-c", str(prog), "-e", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    seen = {}
    for ln in r.stdout.splitlines():
        m = re.fullmatch(r"tracepoint:syscalls:sys_enter_(\w+) (\d+)", ln)
        if m:
            seen[sysinfo.tracepoint_syscall(m.group(1))] = int(m.group(2))
    return seen


def test_table_matches_the_kernels_records(tmp_path: Path) -> None:
    """The number the kernel writes into each syscall tracepoint's record
    (__syscall_nr; bpftrace attaches those tracepoints one by one) is the
    table's number for that tracepoint's syscall.  pytrace, which runs
    many syscall tracepoints as one raw_syscalls program, must print the
    same (args->__syscall_nr used to be refused there)."""
    prog = build_c(tmp_path, NEW_SYSCALLS, "newcalls", ("-O1",))
    have = sysinfo.tracepoint_syscalls("/sys/kernel/tracing")
    table = sysinfo.syscall_names()
    wanted = [table[nr] for nr in (424, 436, 449, 451, 452, 454, 455, 456, 457, 458, 459, 460, 461, 462, 463,
                                   464, 465, 466, 467, 468, 469) if table[nr] in have]
    assert len(wanted) >= 10
    probes = ",".join(f"tracepoint:syscalls:{have[n]}" for n in [*wanted, "getppid", "exit_group"])
    seen = syscall_records("bpftrace", prog, probes)
    assert set(seen) == {*wanted, "exit_group"}, seen   # the program itself calls no getppid
    for name, nr in seen.items():
        assert sysinfo.syscall_number(name) == nr, (name, nr)
    assert syscall_records("pytrace", prog, probes) == seen


def test_every_tracepoint_of_this_kernel_has_a_number() -> None:
    have = sysinfo.tracepoint_syscalls("/sys/kernel/tracing")
    assert len(have) > 300
    assert [n for n in have if sysinfo.syscall_number(n) is None] == []
