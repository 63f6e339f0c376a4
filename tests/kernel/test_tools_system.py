"""Debian's block-I/O, writeback and CPU-sampling bpftrace tools, under
bpftrace 0.17 and pytrace at once around one workload the test controls:
direct I/O of known sizes (bitesize), a syncfs() of a dirty file
(writeback), busy loops on every CPU (cpuwalk).

Only the workload's part of each tool's output is compared (its process
name, its device and reason); what varies by nature is masked: times,
writeback latencies, and the sample counts of the sampling tool.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .difflib_pt import Forked, column, have_bpftrace, pick, same, tool_outputs

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NAME = 15


def _block_backed(path: Path) -> None:
    """Skip unless ``path`` lives on a block device (tmpfs, overlay... issue
    no block requests)."""
    dev = os.stat(path).st_dev
    if not os.path.exists(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"):
        pytest.skip(f"{path} is not on a block device")


def _block(lines: list[str], head: str) -> list[str]:
    """The lines of one map entry: ``head`` and its histogram rows."""
    if head not in lines:
        return []
    start = lines.index(head)
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


def test_bitesize(tmp_path: Path) -> None:
    """O_DIRECT reads and writes of known sizes from a process named
    ptbites, on a file already allocated and written (so each one is one
    block request issued by the process itself, with no metadata I/O)."""
    _block_backed(tmp_path)
    path = tmp_path / "ptbites.dat"
    with open(path, "wb") as f:
        f.write(b"y" * (1 << 20))
        f.flush()
        os.fsync(f.fileno())

    def work() -> None:
        _libc.prctl(PR_SET_NAME, b"ptbites", 0, 0, 0)
        fd = os.open(path, os.O_RDWR | os.O_DIRECT)
        buf = mmap.mmap(-1, 1 << 20)  # page aligned, as O_DIRECT needs
        try:
            for i, n in enumerate((4096, 4096, 8192, 65536, 131072)):
                assert os.preadv(fd, [memoryview(buf)[:n]], i << 17) == n
            for i, n in enumerate((4096, 16384)):
                assert os.pwritev(fd, [memoryview(buf)[:n]], i << 17) == n
        finally:
            os.close(fd)
    bt, pt = tool_outputs("bitesize", Forked(work))
    a, b = _block(bt.split("\n"), "@[ptbites]: "), _block(pt.split("\n"), "@[ptbites]: ")
    assert b == a, f"--- bpftrace ---\n{bt}\n--- pytrace ---\n{pt}"
    assert pt.startswith("Tracing block device I/O... Hit Ctrl-C to end.\n\n"
                         "I/O size (bytes) histograms by process name:")
    assert b == ["@[ptbites]: ",
                 "[4K, 8K)               3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|",
                 "[8K, 16K)              1 |@@@@@@@@@@@@@@@@@                                   |",
                 "[16K, 32K)             1 |@@@@@@@@@@@@@@@@@                                   |",
                 "[32K, 64K)             0 |                                                    |",
                 "[64K, 128K)            1 |@@@@@@@@@@@@@@@@@                                   |",
                 "[128K, 256K)           1 |@@@@@@@@@@@@@@@@@                                   |"]


def test_writeback(tmp_path: Path) -> None:
    """syncfs() of a file with dirty pages: writeback of its device with
    reason "sync" (other writeback on the machine has other reasons, or
    other devices).  The ms column is each tracer's own timing."""
    _block_backed(tmp_path)
    dev = os.stat(tmp_path).st_dev
    device = f"{os.major(dev)}:{os.minor(dev)}"

    def work() -> None:
        fd = os.open(tmp_path / "ptwb.dat", os.O_RDWR | os.O_CREAT | os.O_TRUNC)
        try:
            os.write(fd, b"z" * (1 << 16))
            assert _libc.syncfs(fd) == 0
        finally:
            os.close(fd)
    bt, pt = tool_outputs("writeback", work)
    keep = lambda ln: column(ln, 1) == device and column(ln, 3) == "sync"  # noqa: E731
    for body in (bt, pt):  # ms.us of each writeback: a plausible duration
        assert all(0 <= float(column(ln, 4)) < 10_000 for ln in pick(body, 2, keep)[2:] if ln), body
    got = same(pick(bt, 2, keep), pick(pt, 2, keep), times=True, sort_ties=False,
               masks=[(r"(?m)^(HH:MM:SS .* sync +)\d+\.\d{3}$", r"\1MS")])
    assert got[:2] == ["Tracing writeback... Hit Ctrl-C to end.", "TIME      DEVICE   PAGES    REASON           ms"]
    rows = [ln for ln in got[2:] if ln]
    assert rows and all(ln.startswith(f"HH:MM:SS  {device:<8} ") and ln.endswith(" sync             MS")
                        for ln in rows), rows


def test_cpuwalk() -> None:
    """A busy loop pinned to each CPU for half a second: every CPU has
    samples in both tracers; the counts (and so the bars) are each
    tracer's own sampling."""
    cpus = sorted(os.sched_getaffinity(0))
    spin = "import time\nt = time.monotonic() + 0.5\nwhile time.monotonic() < t: pass\n"

    def work() -> None:
        procs = [subprocess.Popen([sys.executable, "-c", spin], preexec_fn=lambda c=c: os.sched_setaffinity(0, {c}))
                 for c in cpus]
        for p in procs:
            assert p.wait() == 0
    bt, pt = tool_outputs("cpuwalk", work)
    for body in (bt, pt):  # half a second at 99 Hz on each CPU: dozens of samples
        counts = [int(ln.split(")")[1].split("|")[0]) for ln in _block(body.split("\n"), "@cpu: ")[1:]]
        assert len(counts) >= len(cpus) and all(counts[c - cpus[0]] >= 10 for c in cpus), body
    mask = [(r"(?m)^(\[\d+, \d+\)) +\d+ \|[@ ]*\|$", r"\1 N |BAR|")]
    got = same(bt.split("\n"), pt.split("\n"), masks=mask, sort_ties=False)
    assert got[0] == "Sampling CPU at 99hz... Hit Ctrl-C to end."
    rows = _block(got, "@cpu: ")
    assert rows[1:] == [f"[{c}, {c + 1}) N |BAR|" for c in range(cpus[0], cpus[-1] + 1)]
