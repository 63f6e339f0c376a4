"""The stdlib's scheduler, block-I/O and memory tools (stdlib/tools/*.pt),
run as a user runs them (``pytrace tool NAME [args]``) around workloads the
tests control: busy loops pinned to one CPU, a loop device each test creates
(O_DIRECT reads of known sizes, an ext4 file system on it, a swap area on
it), and a memory cgroup whose one process runs out of memory.

Where bpftrace 0.17 runs Debian's tool of the same name on this kernel
(cpuwalk, bitesize, writeback), both run at once and the workload's lines
are compared; where it runs the stdlib's own script (runqlat, runqlen,
oomkill, swapin: tracepoints, profile, BTF and enum names that bpftrace
0.17 knows), bpftrace runs that file beside ``pytrace tool`` and the two
agree.  biolatency, biosnoop and mdflush read raw tracepoints' typed
arguments, which bpftrace 0.17 lacks: pytrace alone.  Every device, mount,
swap area and cgroup a test creates is removed again, also when the test
fails.  The str($N) tests cover the fix the DISK and NAME parameters needed.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

from .difflib_pt import (BPFTRACE, Forked, _finish, _ready, column, compare, have_bpftrace, interrupt, pick,
                         pytrace_only, same, tool_script)
from .harness import READY, Result

pytestmark = pytest.mark.kernel

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NAME = 15
ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "stdlib" / "tools"


# ---------------------------------------------------------------- running tools


def run_tool(name: str, args: list[str], workload: Callable[[], None], *, bpftrace: bool | Path = False,
             settle: float = 0.3, timeout: float = 30) -> dict[str, Result]:
    """``pytrace tool NAME ARGS`` and, with ``bpftrace``, bpftrace 0.17 on
    Debian's /usr/sbin/NAME.bt (True) or on the given script with ARGS,
    started at once (difflib_pt.run_both's protocol); once every tracer has
    attached, ``workload`` runs once; then each gets SIGINT."""
    cmds = {"pytrace": [sys.executable, "-m", "pytrace", "tool", name, *args]}
    if bpftrace:
        cmds["bpftrace"] = [BPFTRACE, str(tool_script(name) if bpftrace is True else bpftrace),
                            *([] if bpftrace is True else args)]
    env = dict(os.environ, __BPFTRACE_NOTIFY_PROBES_ATTACHED=READY)
    env.pop("BPFTRACE_STRLEN", None)
    procs = {t: subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
             for t, c in cmds.items()}
    outs = {t: b"" for t in procs}
    errs = {t: b"" for t in procs}
    deadline = time.monotonic() + timeout
    waiting = set(procs)
    while waiting and time.monotonic() < deadline:
        fds = {getattr(procs[t], f).fileno(): (t, f) for t in waiting for f in ("stdout", "stderr")}
        for fd in select.select(list(fds), [], [], 0.1)[0]:
            t, f = fds[fd]
            chunk = os.read(fd, 65536)
            (errs if f == "stderr" else outs)[t] += chunk
            if not chunk or _ready(outs[t], errs[t]):
                waiting.discard(t)
        waiting -= {t for t in waiting if procs[t].poll() is not None}
    try:
        if all(_ready(outs[t], errs[t]) for t in procs):
            workload()
    finally:
        time.sleep(settle)
        interrupt(procs)
    results = {}
    for t, p in procs.items():
        rest, err = _finish(t, p, deadline, resend=True)
        results[t] = Result(p.returncode, (outs[t] + rest).decode("utf-8", "replace"),
                            (errs[t] + err).decode("utf-8", "replace"))
        assert _ready(outs[t] + rest, errs[t] + err), f"{t} did not start:\n{results[t].stdout}\n{results[t].stderr}"
        assert p.returncode == 0, f"{t} exited {p.returncode}:\n{results[t].stdout}\n{results[t].stderr}"
    return results


def tool(name: str, args: list[str], workload: Callable[[], None], **kw: object) -> str:
    """pytrace's output of ``pytrace tool NAME ARGS`` around ``workload``."""
    return run_tool(name, args, workload, **kw)["pytrace"].body  # type: ignore[arg-type]


def hist_rows(body: str, head: str) -> list[tuple[str, int]]:
    """The (bucket, count) rows of the histogram printed under ``head``."""
    lines = body.split("\n")
    assert head in lines, body
    rows = []
    for ln in lines[lines.index(head) + 1:]:
        m = re.match(r"^(\[[^)]*\)|\[[^\]]*\]) +(\d+) \|[@ ]*\|$", ln)
        if not m:
            break
        rows.append((m.group(1), int(m.group(2))))
    return rows


def _block(lines: list[str], head: str) -> list[str]:
    start = lines.index(head)
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


# ---------------------------------------------------------------- devices, cgroups


@contextmanager
def loop_device(size_mb: int = 64) -> Iterator[str]:
    """A loop device over a file in /dev/shm (so its I/O reaches no other
    block device); its name (loopN).  Detached and removed afterwards."""
    fd, backing = tempfile.mkstemp(prefix="ptloop", dir="/dev/shm")
    os.close(fd)
    os.truncate(backing, size_mb << 20)
    dev = ""
    try:
        dev = subprocess.run(["losetup", "--find", "--show", backing], check=True, capture_output=True,
                             text=True).stdout.strip()
        if shutil.which("udevadm"):  # where udev runs, its probe of the new disk is over before the test's I/O
            subprocess.run(["udevadm", "settle"], check=False)
        yield os.path.basename(dev)
    finally:
        if dev:
            subprocess.run(["losetup", "-d", dev], check=False)
        os.unlink(backing)


@contextmanager
def ext4_mount(name: str) -> Iterator[Path]:
    """An ext4 file system made on /dev/NAME, mounted on a new directory."""
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                    f"/dev/{name}"], check=True, capture_output=True)
    mnt = Path(tempfile.mkdtemp(prefix="ptmnt"))
    mounted = False
    try:
        subprocess.run(["mount", f"/dev/{name}", str(mnt)], check=True)
        mounted = True
        yield mnt
    finally:
        if mounted:
            subprocess.run(["umount", str(mnt)], check=False)
        mnt.rmdir()


class MemCgroup:
    """A memory cgroup of its own: cgroup v2's memory.max where the memory
    controller is on the unified hierarchy, else v1's limit_in_bytes."""

    def __init__(self, path: Path, v2: bool) -> None:
        self.path = path
        self.v2 = v2

    def limit(self, nbytes: int) -> None:
        if self.v2:
            (self.path / "memory.max").write_text(str(nbytes))
        else:
            (self.path / "memory.limit_in_bytes").write_text(str(nbytes))

    def no_swap(self) -> None:
        """Swap nothing out of this group (so its OOM comes at once)."""
        if self.v2:
            (self.path / "memory.swap.max").write_text("0")
        elif (self.path / "memory.memsw.limit_in_bytes").exists():
            (self.path / "memory.memsw.limit_in_bytes").write_text((self.path / "memory.limit_in_bytes").read_text())

    def swapped_pages(self) -> int:
        if self.v2:
            return int((self.path / "memory.swap.current").read_text()) // mmap.PAGESIZE
        stat = dict(ln.split() for ln in (self.path / "memory.stat").read_text().splitlines())
        return int(stat["swap"]) // mmap.PAGESIZE

    def enter(self) -> None:
        """Move the calling process in (a preexec_fn)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))


@contextmanager
def mem_cgroup() -> Iterator[MemCgroup]:
    v1 = Path("/sys/fs/cgroup/memory")
    v2 = Path("/sys/fs/cgroup")
    name = f"pytrace-test-{os.getpid()}"
    if (v1 / "cgroup.procs").exists():
        cg = MemCgroup(v1 / name, v2=False)
    else:
        if not (v2 / "cgroup.controllers").exists() or "memory" not in (v2 / "cgroup.controllers").read_text():
            pytest.fail("no memory cgroup controller (v1 or v2) is mounted under /sys/fs/cgroup")
        if "memory" not in (v2 / "cgroup.subtree_control").read_text():
            (v2 / "cgroup.subtree_control").write_text("+memory")
        cg = MemCgroup(v2 / name, v2=True)
    cg.path.mkdir()
    try:
        yield cg
    finally:
        for _ in range(50):  # its processes are gone once reaped; the group may still be busy a moment
            try:
                for pid in (cg.path / "cgroup.procs").read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
                cg.path.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def _odirect_reads(dev: str, comm: bytes, sizes: list[int]) -> Callable[[], None]:
    """A child's work: O_DIRECT reads of /dev/DEV of the given sizes, each at
    its own 1 MiB-aligned offset, under the process name ``comm``."""
    def work() -> None:
        _libc.prctl(PR_SET_NAME, comm, 0, 0, 0)
        fd = os.open(f"/dev/{dev}", os.O_RDONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, 1 << 20)  # page aligned, as O_DIRECT needs
        try:
            for i, n in enumerate(sizes):
                assert os.preadv(fd, [memoryview(buf)[:n]], i << 20) == n
        finally:
            os.close(fd)
    return work


# ---------------------------------------------------------------- str($N)

STR_PARAMS = 'BEGIN { printf("[%s] [%s] [%s]\\n", str($1), str($2), str($1, 1)); @[str($1)] = 1; exit(); }'


@pytest.mark.parametrize("params", [["12", "ab"], ["0x10", "x"], []])
def test_str_of_a_numeric_parameter(params: list[str]) -> None:
    """str($N) is the parameter's own text even when it reads as a number
    (the tools' DISK and NAME parameters: a disk named 7, or "0"), and ""
    when it is not set; it was a read at the number's address."""
    want = {"12": "[12] [ab] [1]\n\n\n@[12]: 1", "0x10": "[0x10] [x] [0]\n\n\n@[0x10]: 1"}.get(
        params[0] if params else "", "[] [] []\n\n\n@[]: 1")
    if have_bpftrace():
        assert compare(STR_PARAMS, params=params, wait_exit=True) == want + "\n"
    else:
        assert pytrace_only(STR_PARAMS, params=params, wait_exit=True) == want + "\n"


# ---------------------------------------------------------------- scheduler


SPIN = "import sys, time\nsys.stdin.read(1)\nt = time.monotonic() + {secs}\nwhile time.monotonic() < t: pass\n"


def _hogs(n: int, secs: float, cpu: int = 0) -> list[subprocess.Popen]:
    """n busy loops pinned to ``cpu``, each waiting for a byte on stdin to start."""
    return [subprocess.Popen([sys.executable, "-c", SPIN.format(secs=secs)], stdin=subprocess.PIPE,
                             preexec_fn=lambda: os.sched_setaffinity(0, {cpu})) for _ in range(n)]


def _release(hogs: list[subprocess.Popen]) -> None:
    for h in hogs:
        h.stdin.write(b"x")  # type: ignore[union-attr]
        h.stdin.close()  # type: ignore[union-attr]
    for h in hogs:
        assert h.wait() == 0


def _oracle(name: str) -> bool | Path:
    """bpftrace 0.17 on the stdlib's own script, where it is installed."""
    return TOOLS / f"{name}.pt" if have_bpftrace() else False


def _us(bucket: str) -> int:
    """The lower bound of a hist() bucket: [256, 512) -> 256, [1K, 2K) -> 1024."""
    lo = bucket[1:].split(",")[0].rstrip("]")
    mult = {"K": 1 << 10, "M": 1 << 20}.get(lo[-1:], 1)
    return int(lo.rstrip("KM")) * mult


def test_runqlat_one_thread() -> None:
    """Three busy loops sharing one CPU for 0.4 s: the one named by TID waits
    for the CPU again and again, each time for at least part of a scheduler
    slice; no other thread is counted.  bpftrace, running the same file,
    counts the same waits (their lengths are each tracer's own clock reads)."""
    hogs = _hogs(3, 0.4)
    try:
        res = run_tool("runqlat", [str(hogs[0].pid)], lambda: _release(hogs), bpftrace=_oracle("runqlat"))
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    totals = []
    for t, r in res.items():
        out = r.body
        assert out.startswith("Tracing CPU scheduler... Hit Ctrl-C to end.\n"), (t, out)
        rows = hist_rows(out, "@usecs: ")
        # 0.4 s shared three ways: it is switched out and back in dozens of times
        assert sum(n for b, n in rows if _us(b) >= 256) >= 10, (t, out)
        # one wakeup (the byte on stdin) and its preemptions: nothing like the whole machine's count
        assert sum(n for _, n in rows) < 2000, (t, out)
        totals.append(sum(n for _, n in rows))
    assert len(set(totals)) == 1, res


def test_runqlen() -> None:
    """Four busy loops on CPU 0 for 0.6 s: samples of CPU 0 see three others
    waiting in their run queue (their cgroup's, the root one here)."""
    hogs = _hogs(4, 0.6)
    try:
        res = run_tool("runqlen", [], lambda: _release(hogs), bpftrace=_oracle("runqlen"))
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    for t, r in res.items():  # bpftrace on the same file samples at its own moments
        out = r.body
        assert out.startswith("Sampling run queue length at 99 Hertz... Hit Ctrl-C to end.\n"), (t, out)
        rows = dict(hist_rows(out, "@runqlen: "))
        # ~59 samples of CPU 0 while all four run: three of them or more (the machine's other
        # runnable tasks on CPU 0 too) wait
        assert sum(n for b, n in rows.items() if _us(b) >= 3) >= 10, (t, out)
        assert all(b == f"[{_us(b)}, {_us(b) + 1})" for b in rows), (t, out)  # lhist(0, 100, 1)


@pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")
def test_cpuwalk_vs_bpftrace() -> None:
    """A busy loop pinned to each CPU for half a second: every CPU has
    samples in both tracers (their counts are each tracer's own sampling)."""
    cpus = sorted(os.sched_getaffinity(0))

    def work() -> None:
        hogs = [h for c in cpus for h in _hogs(1, 0.5, c)]
        _release(hogs)
    res = run_tool("cpuwalk", [], work, bpftrace=True)
    bt, pt = res["bpftrace"].body, res["pytrace"].body
    for body in (bt, pt):
        counts = [n for _, n in hist_rows(body, "@cpu: ")]
        assert len(counts) >= len(cpus) and all(counts[c - cpus[0]] >= 10 for c in cpus), body
    mask = [(r"(?m)^(\[\d+, \d+\)) +\d+ \|[@ ]*\|$", r"\1 N |BAR|")]
    got = same(bt.split("\n"), pt.split("\n"), masks=mask, sort_ties=False)
    assert got[0] == "Sampling CPU at 99hz... Hit Ctrl-C to end."
    assert _block(got, "@cpu: ")[1:] == [f"[{c}, {c + 1}) N |BAR|" for c in range(cpus[0], cpus[-1] + 1)]


# ---------------------------------------------------------------- block I/O


@pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")
def test_bitesize_vs_bpftrace() -> None:
    """O_DIRECT reads of known sizes of a loop device, by a process named
    ptbites: one request each, in both tracers' histograms."""
    with loop_device() as dev:
        res = run_tool("bitesize", [], Forked(_odirect_reads(dev, b"ptbites", [4096, 4096, 8192, 65536, 16384])),
                       bpftrace=True)
    bt, pt = res["bpftrace"].body, res["pytrace"].body
    a, b = _block(bt.split("\n"), "@[ptbites]: "), _block(pt.split("\n"), "@[ptbites]: ")
    assert b == a, f"--- bpftrace ---\n{bt}\n--- pytrace ---\n{pt}"
    assert pt.startswith("Tracing block device I/O... Hit Ctrl-C to end.\n\n"
                         "I/O size (bytes) histograms by process name:")
    assert b == ["@[ptbites]: ",
                 "[4K, 8K)               2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|",
                 "[8K, 16K)              1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |",
                 "[16K, 32K)             1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |",
                 "[32K, 64K)             0 |                                                    |",
                 "[64K, 128K)            1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |"]


def test_biolatency_one_disk() -> None:
    """Ten O_DIRECT reads of a loop device nothing else uses: the histogram
    for that disk counts exactly ten requests (the machine's other disks'
    requests are not counted), each taking microseconds to milliseconds."""
    with loop_device() as dev:
        out = tool("biolatency", [dev], Forked(_odirect_reads(dev, b"ptbiolat", [4096] * 8 + [65536, 131072])))
    assert out.startswith("Tracing block device I/O... Hit Ctrl-C to end.\n")
    rows = hist_rows(out, "@usecs: ")
    assert sum(n for _, n in rows) == 10, out
    assert all(_us(b) < 1_000_000 for b, n in rows if n), out  # each well under a second


def test_biosnoop_one_disk() -> None:
    """Three O_DIRECT reads of a loop device: one line each, naming the
    disk, the reading process and its pid; times in milliseconds."""
    with loop_device() as dev:
        child = Forked(_odirect_reads(dev, b"ptbiosnoop", [4096, 8192, 4096]))
        out = tool("biosnoop", [dev], child)
    lines = out.split("\n")
    assert lines[0] == "TIME(ms)     DISK    COMM             PID    LAT(ms)"
    rows = [ln for ln in lines[1:] if ln]
    assert len(rows) == 3, out
    for ln in rows:
        m = re.match(rf"^(\d+) +{dev} +ptbiosnoop +{child.pid} +(\d+)$", ln)
        assert m, ln
        assert int(m.group(1)) < 30_000 and int(m.group(2)) < 1000, ln
        assert ln[:13].rstrip() == m.group(1) and ln[13:21] == f"{dev:<7} "  # %-12u %-7s


def test_biosnoop_every_disk() -> None:
    """With no DISK, requests to any disk are shown: the loop device's too."""
    with loop_device() as dev:
        child = Forked(_odirect_reads(dev, b"ptbiosnoop", [4096]))
        out = tool("biosnoop", [], child)
    assert len([ln for ln in out.split("\n") if re.match(rf"^\d+ +{dev} +ptbiosnoop +{child.pid} +\d+$", ln)]) == 1


@pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")
def test_writeback_vs_bpftrace() -> None:
    """syncfs() of a dirty file on an ext4 file system on a loop device:
    writeback of that device (named MAJ:MIN) with reason "sync", in both
    tracers; the ms column is each tracer's own timing."""
    with loop_device() as dev, ext4_mount(dev) as mnt:
        rdev = os.stat(f"/dev/{dev}").st_rdev
        device = f"{os.major(rdev)}:{os.minor(rdev)}"

        def work() -> None:
            fd = os.open(mnt / "ptwb.dat", os.O_RDWR | os.O_CREAT | os.O_TRUNC)
            try:
                os.write(fd, b"z" * (1 << 16))
                assert _libc.syncfs(fd) == 0
            finally:
                os.close(fd)
        res = run_tool("writeback", [], work, bpftrace=True)
    bt, pt = res["bpftrace"].body, res["pytrace"].body
    keep = lambda ln: column(ln, 1) == device  # noqa: E731
    for body in (bt, pt):
        assert all(0 <= float(column(ln, 4)) < 10_000 for ln in pick(body, 2, keep)[2:] if ln), body
    got = same(pick(bt, 2, keep), pick(pt, 2, keep), times=True, sort_ties=False,
               masks=[(r"(?m)^(HH:MM:SS .* +)\d+\.\d{3}$", r"\1MS")])
    assert got[:2] == ["Tracing writeback... Hit Ctrl-C to end.", "TIME      DEVICE   PAGES    REASON           ms"]
    rows = [ln for ln in got[2:] if ln]
    # the syncfs() (and what else the new file system's device wrote back meanwhile)
    assert all(re.match(rf"^HH:MM:SS  {device:<8} \d+ +(sync|periodic|background) +MS$", ln) for ln in rows), rows
    assert any(ln[19:45] == f"{column(ln, 2):<8} sync             " for ln in rows), rows  # %-8d %-16s


def _fsync_new_file(mnt: Path, comm: bytes) -> Callable[[], None]:
    def work() -> None:
        _libc.prctl(PR_SET_NAME, comm, 0, 0, 0)
        fd = os.open(mnt / "ptflush.dat", os.O_RDWR | os.O_CREAT)
        try:
            os.write(fd, b"f" * 8192)
            os.fsync(fd)
        finally:
            os.close(fd)
    return work


def _mdflush(args: Callable[[str], list[str]]) -> tuple[str, str, list[str]]:
    """mdflush with ``args(device name)`` around the fsync() of a new file
    on ext4 on a new loop device (which has a write cache: its flushes are
    not dropped); the device's name, the output, and the lines after the
    header."""
    with loop_device() as dev, ext4_mount(dev) as mnt:
        out = tool("mdflush", args(dev), Forked(_fsync_new_file(mnt, b"ptmdflush")))
    lines = out.split("\n")
    assert lines[:2] == ["Tracing md flush events... Hit Ctrl-C to end.", "TIME     PID    COMM             DEVICE"]
    return dev, out, [ln for ln in lines[2:] if ln]


def test_mdflush_name_prefix() -> None:
    """NAME "loop": the flushes sent to the test's loop device (by the
    journal commit, jbd2/loopN-8, or the fsync itself) are reported; no
    disk whose name does not start with "loop" is."""
    dev, out, rows = _mdflush(lambda dev: ["loop"])
    for ln in rows:
        assert re.match(r"^\d\d:\d\d:\d\d \d+ +\S.* loop\d+$", ln), ln
        assert ln[9:16].rstrip().isdigit() and ln[16:33].rstrip() != ""  # %-6d %-16s
    mine = [ln for ln in rows if ln.endswith(f" {dev}")]
    assert any(f"jbd2/{dev}" in ln or "ptmdflush" in ln for ln in mine), out


def test_mdflush_name_is_a_prefix() -> None:
    """NAME "oopN" is in the loop device's name but does not start it."""
    _, out, rows = _mdflush(lambda dev: [dev[1:]])
    assert rows == [], out


def test_mdflush_default_is_md_only() -> None:
    """Without NAME only md devices are reported: the loop device's flush is not."""
    _, out, rows = _mdflush(lambda dev: [])
    assert [ln for ln in rows if not re.search(r" md\w*$", ln)] == [], out


# ---------------------------------------------------------------- memory


HOG = r"""
import ctypes, sys
ctypes.CDLL(None).prctl(15, b"{comm}", 0, 0, 0)
{body}
"""


def test_oomkill() -> None:
    """A process alone in a memory cgroup limited to 32 MiB (no swap)
    allocates 256 MiB: the OOM killer kills it (and nothing else), and the
    tool names it as both the trigger and the victim."""
    with mem_cgroup() as cg:
        cg.limit(32 << 20)
        cg.no_swap()
        body = "b = bytearray(256 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
        victim: list[subprocess.Popen] = []

        def work() -> None:
            p = subprocess.Popen([sys.executable, "-c", HOG.format(comm="ptoomhog", body=body)], preexec_fn=cg.enter,
                                 stderr=subprocess.DEVNULL)
            victim.append(p)
            p.wait(timeout=20)
        res = run_tool("oomkill", [], work, bpftrace=_oracle("oomkill"))
    assert victim[0].returncode == -signal.SIGKILL
    pid = victim[0].pid
    out = res["pytrace"].body
    lines = out.split("\n")
    assert lines[0] == "Tracing oom_kill_process()... Hit Ctrl-C to end."
    mine = [ln for ln in lines if f"OOM kill of PID {pid} " in ln]
    assert len(mine) == 1, out
    if "bpftrace" in res:  # the same line, but for the load average each tracer read
        bt = res["bpftrace"].body.split("\n")
        same(bt[:1] + [ln for ln in bt if f"OOM kill of PID {pid} " in ln], lines[:1] + mine,
             masks=[(r"loadavg: .*", "loadavg: L")], sort_ties=False)
    m = re.match(rf'^\d\d:\d\d:\d\d Triggered by PID {pid} \("ptoomhog"\), OOM kill of PID {pid} \("ptoomhog"\), '
                 r"(\d+) pages, loadavg: \d+\.\d\d \d+\.\d\d \d+\.\d\d \d+/\d+ \d+$", mine[0])
    assert m, mine[0]
    # resident pages: its anonymous memory is most of the 32 MiB limit (8192 pages); the file pages
    # it maps (python, its libraries) are resident too, charged to whoever read them first
    assert 4096 <= int(m.group(1)) < 65536, mine[0]


def _vmstat() -> dict[str, int]:
    return {k: int(v) for k, v in (ln.split() for ln in Path("/proc/vmstat").read_text().splitlines())}


@contextmanager
def zswap(enabled: bool) -> Iterator[None]:
    """zswap (the compressed cache in front of swap devices) on or off for
    the test, as it was afterwards."""
    param = Path("/sys/module/zswap/parameters/enabled")
    if not param.exists():
        if enabled:
            pytest.fail("this kernel has no zswap (/sys/module/zswap)")
        yield
        return
    was = param.read_text().strip()
    param.write_text("Y" if enabled else "N")
    try:
        yield
    finally:
        param.write_text(was)


@pytest.mark.parametrize("compressed", [False, True], ids=["device", "zswap"])
def test_swapin(compressed: bool) -> None:
    """A process in a memory cgroup touches 32 MiB, the cgroup's limit drops
    to 8 MiB (the kernel writes the rest to a swap area on a loop device made
    for the test, or with zswap on, to zswap's compressed pool in front of
    it), the limit is lifted and the process reads its memory back: every
    page the cgroup had in swap is read back by that process."""
    body = ("m = bytearray(32 << 20)\nfor i in range(0, len(m), 4096): m[i] = 1\n"
            "print('touched', flush=True)\nsys.stdin.readline()\n"
            "s = sum(m[i] for i in range(0, len(m), 4096))\nassert s == 8192, s\n")
    with zswap(compressed), loop_device(64) as dev, mem_cgroup() as cg:
        if cg.v2 and (cg.path / "memory.zswap.max").exists():
            (cg.path / "memory.zswap.max").write_text("max" if compressed else "0")
        subprocess.run(["mkswap", f"/dev/{dev}"], check=True, capture_output=True)
        subprocess.run(["swapon", f"/dev/{dev}"], check=True)
        try:
            p = subprocess.Popen([sys.executable, "-c", HOG.format(comm="ptswapper", body=body)], preexec_fn=cg.enter,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            try:
                assert p.stdout.readline() == b"touched\n"  # type: ignore[union-attr]
                cg.limit(8 << 20)  # reclaims what is over it, to swap
                swapped = cg.swapped_pages()
                cg.limit(1 << 30)

                before = _vmstat()

                def work() -> None:
                    p.stdin.write(b"go\n")  # type: ignore[union-attr]
                    p.stdin.flush()  # type: ignore[union-attr]
                    assert p.wait(timeout=20) == 0
                    time.sleep(1.2)  # a one-second interval ends meanwhile
                res = run_tool("swapin", [], work, settle=0.1, bpftrace=_oracle("swapin"))
                after = _vmstat()
            finally:
                p.kill()
                p.wait()
        finally:
            subprocess.run(["swapoff", f"/dev/{dev}"], check=True)
    assert swapped >= 6144, swapped  # 24 MiB of it over the limit
    # the pages came back by the route the test chose (the machine's counters)
    route = "zswpin" if compressed else "pswpin"
    assert after.get(route, 0) - before.get(route, 0) >= 6144, (route, before, after)
    sums = []
    for t, r in res.items():
        out = r.body
        counts = [int(m.group(1)) for m in re.finditer(rf"(?m)^@\[ptswapper, {p.pid}\]: (\d+)$", out)]
        # Every page of the 32 MiB it reads back, i.e. all it had in swap but a few of the interpreter's
        # own (pages of its heap it does not touch again); never more than it had there.
        assert counts and swapped - 512 <= sum(counts) <= swapped, (t, swapped, out)
        if t == "pytrace":  # time() each second (bpftrace 0.17's first tick comes late at times)
            assert re.search(r"(?m)^\d\d:\d\d:\d\d$", out), (t, out)
        sums.append(sum(counts))
    assert len(set(sums)) == 1, res  # each tracer splits them into its own seconds
