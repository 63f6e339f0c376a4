"""Block I/O in the guest, pytrace against bpftrace 0.17: Debian's
biolatency, biosnoop and biostacks on the guest's scratch disk (/dev/vda,
a virtio disk tests/kernels/qemu.py gives every run), with O_DIRECT reads
of known sizes made by the workload child: one request each.

Nothing else in the guest does block I/O (its file systems are 9p, overlay
and tmpfs), so every request a tool sees is the workload's; the test checks
that against the device's own counter (/sys/block/vda/stat).

On Debian's 6.1 the tools as shipped trace nothing, under bpftrace 0.17 as
under pytrace: ``blk_account_io_start`` is inlined (not in kallsyms),
``__blk_account_io_start``/``__blk_account_io_done`` do not exist, and the
kernel refuses a kprobe on the static ``blk_account_io_done`` (EINVAL).
Each probe lists two functions, so both tracers skip what fails with a
warning and run on, and the start probes never fire.  The tests assert
exactly that, then run the same tools with 6.1's functions for the request
start and end (``blk_mq_start_request``, ``blk_mq_end_request``: both take
the ``struct request *``) and compare what they print about the workload.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.kernel.difflib_pt import compare, have_bpftrace, pick, ready, run_both, same, tool_script
from tests.kernel.harness import Result
from tests.kernels.qemu import GUEST_DISK

from .workload import COMM, END_PROBE, direct_reads, in_child, reads_completed

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17 (/usr/bin/bpftrace)")]

# (size, offset) of each O_DIRECT read: 4 KiB x3, 16 KiB x2, 64 KiB x1.
READS = [(4096, 0), (4096, 1 << 20), (4096, 2 << 20), (16384, 3 << 20), (16384, 4 << 20), (65536, 5 << 20)]
START_61 = "kprobe:blk_mq_start_request"
DONE_61 = "kprobe:blk_mq_end_request"
# What each shipped tool names for the request's start and end, and what
# Debian's 6.1 lets a kprobe attach to.
TOOL_START = r"kprobe:blk_account_io_start,\s*kprobe:__blk_account_io_start"
TOOL_DONE = r"kprobe:blk_account_io_done,\s*kprobe:__blk_account_io_done"
STACKS_DONE = r"kprobe:blk_start_request,\s*kprobe:blk_mq_start_request"
SKIPPED = re.compile(r"could not attach probe kprobe:(\w+), skipping")
HIST_LINE = re.compile(r"^\[[^\]\n]*[\])] +(\d+) \|", re.M)


@pytest.fixture(scope="module", autouse=True)
def disk() -> Iterator[str]:
    """The guest's scratch disk, without an I/O scheduler: with 6.1's
    default (mq-deadline) a request is dispatched later by a kblockd worker,
    so ``comm`` at ``blk_mq_start_request`` is ``kworker/...``; with
    ``none`` a synchronous O_DIRECT read is issued from the reader's own
    context, as the tools expect."""
    # The harness attaches the disk to every run: its absence is a failure.
    assert Path(GUEST_DISK).is_block_device(), f"{GUEST_DISK} is missing: tests/kernels/qemu.py gives every run one"
    sched = Path(f"/sys/block/{Path(GUEST_DISK).name}/queue/scheduler")
    before = re.search(r"\[(\S+)\]", sched.read_text())
    sched.write_text("none")
    yield GUEST_DISK
    if before:
        sched.write_text(before.group(1))


def workload() -> Callable[[], None]:
    """The O_DIRECT reads in the ``ptwork`` child; asserts the device
    completed exactly that many read requests meanwhile."""
    def run() -> None:
        before = reads_completed(GUEST_DISK)
        in_child(direct_reads(GUEST_DISK, READS))
        assert reads_completed(GUEST_DISK) - before == len(READS), "the reads were not one request each"
    return run


def script(name: str, tmp_path: Path, *subs: tuple[str, str]) -> Path:
    """Debian's tool with each (pattern, replacement) applied once, plus END_PROBE."""
    text = tool_script(name).read_text()
    for pat, rep in subs:
        text, n = re.subn(pat, rep, text)
        assert n == 1, (name, pat)
    path = tmp_path / f"{name}.bt"
    path.write_text(f"{text}\n{END_PROBE}\n")
    return path


def both(path: Path) -> tuple[Result, Result]:
    res = run_both(path, workload(), wait_exit=True, timeout=240)
    bt, pt = res["bpftrace"], res["pytrace"]
    assert ready(bt) and ready(pt), (bt.stderr, pt.stderr)
    assert (bt.rc, pt.rc) == (0, 0), pt.stderr
    return bt, pt


def hist_total(text: str) -> int:
    return sum(int(n) for n in HIST_LINE.findall(text))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["biolatency", "biosnoop", "biostacks"])
def test_shipped_tool_traces_nothing_on_61(name: str, tmp_path: Path) -> None:
    """As shipped: the same probes skipped with a warning by both, and
    nothing but the header printed although the workload made six requests."""
    bt, pt = both(script(name, tmp_path))
    skipped = {tool: set(SKIPPED.findall(r.stderr)) for tool, r in (("bpftrace", bt), ("pytrace", pt))}
    assert skipped["pytrace"] == skipped["bpftrace"], (bt.stderr, pt.stderr)
    assert {"blk_account_io_start", "__blk_account_io_start"} <= skipped["bpftrace"], bt.stderr
    lines = same(bt.body.split("\n"), pt.body.split("\n"))
    assert len([ln for ln in lines if ln]) == 1, lines      # the BEGIN header only


def test_request_bytes_hist(tmp_path: Path) -> None:
    """``struct request`` from BTF at 6.1's request start: a histogram of
    each request's length, exact in both."""
    out = compare(f'{START_61} /comm == "{COMM}"/ {{ @bytes = hist(((struct request *)arg0)->__data_len); '
                  f"@disk[((struct request *)arg0)->q->disk->disk_name] = count(); }}\n{END_PROBE}",
                  workload(), wait_exit=True, timeout=180)
    assert "@disk[vda]: 6" in out.split("\n"), out
    rows = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\[(\S+), \S+\) +(\d+) \|", out, re.M)}
    assert {k: v for k, v in rows.items() if v} == {"4K": 3, "16K": 2, "64K": 1}, out


@pytest.mark.slow
def test_biolatency_61(tmp_path: Path) -> None:
    """biolatency with 6.1's functions: each tracer times the requests
    itself, so the buckets may differ by one across a boundary; the six
    requests are in both histograms."""
    bt, pt = both(script("biolatency", tmp_path, (TOOL_START, START_61), (TOOL_DONE, DONE_61)))
    for r in (bt, pt):
        assert r.body.startswith("Tracing block device I/O... Hit Ctrl-C to end.\n"), r.body
        assert "@usecs: \n" in r.body, r.body
        assert hist_total(r.body) == len(READS), r.body


def test_biosnoop_61(tmp_path: Path) -> None:
    """biosnoop with 6.1's functions: one line per request of the workload
    (disk, comm, pid) in both; the time since start and the latency are
    each tracer's own measurements."""
    bt, pt = both(script("biosnoop", tmp_path, (TOOL_START, START_61), (TOOL_DONE, DONE_61)))

    def mine(ln: str) -> bool:
        return f" {COMM} " in ln
    lines = same(pick(bt.body, 1, mine), pick(pt.body, 1, mine), masks=((r"(?m)^\d+ +", "MS "), (r"(?m) +\d+$", " LAT")))
    events = [ln for ln in lines[1:] if ln]
    assert len(events) == len(READS), lines
    assert all(ln.split()[1:3] == ["vda", COMM] for ln in events), events


@pytest.mark.slow
def test_biostacks_61(tmp_path: Path) -> None:
    """biostacks from 6.1's request start to its end: the same kernel stacks
    in both, with the six requests between them (nanosecond histograms are
    each tracer's own timing)."""
    bt, pt = both(script("biostacks", tmp_path, (TOOL_START, START_61), (STACKS_DONE, DONE_61)))

    def per_stack(body: str) -> dict[str, int]:
        # "@usecs[\n<frames>\n]: \n<histogram>" for each stack
        blocks = re.findall(r"^@usecs\[\n(.*?)\n\]: \n(.*?)(?=^@usecs\[|\Z)", body, re.M | re.S)
        return {stack: hist_total(hist) for stack, hist in blocks}
    stacks = {tool: per_stack(r.body) for tool, r in (("bpftrace", bt), ("pytrace", pt))}
    assert stacks["pytrace"] == stacks["bpftrace"], (bt.body, pt.body)
    assert sum(stacks["bpftrace"].values()) == len(READS), bt.body
    assert all("blk_mq_start_request+" in s for s in stacks["bpftrace"]), bt.body


@pytest.mark.slow
def test_refused_kprobe_alone_is_an_error() -> None:
    """The other half of bpftrace 0.17's rule: a refused kprobe that is its
    probe's one function ends the run in both, before anything is traced."""
    res = run_both("kprobe:blk_account_io_start { @ = count(); }", timeout=180)
    bt, pt = res["bpftrace"], res["pytrace"]
    assert not ready(bt) and not ready(pt), (bt.stdout, pt.stdout)
    assert bt.rc != 0 and pt.rc == 1, (bt.rc, bt.stderr, pt.rc, pt.stderr)
    assert "Error attaching probe: 'kprobe:blk_account_io_start'" in bt.stderr, bt.stderr
    assert pt.stdout == "" and pt.stderr.startswith("pytrace: cannot attach kprobe:blk_account_io_start: "), pt.stderr
    assert "skipping" not in pt.stderr, pt.stderr
