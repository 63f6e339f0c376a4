"""Debian's kprobe-based bpftrace tools on a kernel without kprobes.

Each of /usr/sbin/*.bt that needs kprobes or kretprobes must stop before
tracing anything, exit non-zero and say in one sentence that the kernel has
no kprobes, naming the tracepoint (or perf event) that sees the same events
where one exists (pytrace/providers/kprobe.py kprobe_alternative).  The
suggestions are also checked against a made-up tracefs, so the table behind
them is exercised for kernels that lack the newest tracepoints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytrace.providers.kprobe import KPROBE_PMU, kprobe_alternative

# The live checks need this project's reference kernel (no kprobes); the
# made-up tracefs ones run on any kernel.
live = pytest.mark.skipif(os.path.exists(KPROBE_PMU), reason="this kernel has kprobes")
pytestmark = pytest.mark.kernel

NO_KPROBES = "this kernel has no kprobes (CONFIG_KPROBES is off), so trace"
GENERIC = "a tracepoint instead (list them with: pytrace -l 'tracepoint:*')"

# tool -> (the first attach point that fails, what to trace instead)
EXPECTED: dict[str, tuple[str, str]] = {
    "biolatency": ("kprobe:blk_account_io_start", "tracepoint:block:block_io_start instead"),
    "biosnoop": ("kprobe:blk_account_io_start", "tracepoint:block:block_io_start instead"),
    "biostacks": ("kprobe:blk_account_io_start", "tracepoint:block:block_io_start instead"),
    "capable": ("kprobe:cap_capable", "tracepoint:capability:cap_capable instead"),
    "dcsnoop": ("kprobe:lookup_fast", GENERIC),
    "mdflush": ("kprobe:md_flush_request",
                "tracepoint:block:block_bio_queue instead (flushes have F in args->rwbs)"),
    "oomkill": ("kprobe:oom_kill_process", "tracepoint:oom:mark_victim instead"),
    "swapin": ("kprobe:swap_readpage", "software:major-faults:1 instead (a swap-in is a major page fault)"),
    "tcpaccept": ("kretprobe:inet_csk_accept", "tracepoint:sock:inet_sock_set_state instead (an accepted "
                                               "connection is its SYN_RECV -> ESTABLISHED transition)"),
    "tcpconnect": ("kprobe:tcp_connect", "tracepoint:sock:inet_sock_set_state instead (a connect is its "
                                         "CLOSE -> SYN_SENT transition)"),
    "tcplife": ("kprobe:tcp_set_state", "tracepoint:sock:inet_sock_set_state instead"),
    "tcpretrans": ("kprobe:tcp_retransmit_skb", "tracepoint:tcp:tcp_retransmit_skb instead"),
    "tcpsynbl": ("kprobe:tcp_v4_syn_recv_sock", "tracepoint:sock:inet_sock_set_state instead (a connection "
                                                "from the SYN backlog is born in SYN_RECV)"),
    "undump": ("kprobe:unix_stream_read_actor", "tracepoint:sock:sock_recv_length instead"),
    "vfscount": ("kprobe:vfs_*", "tracepoint:syscalls:sys_enter_* instead"),
    "vfsstat": ("kprobe:vfs_read*", "tracepoint:syscalls:sys_enter_read instead"),
    "xfsdist": ("kprobe:xfs_file_read_iter", "tracepoint:xfs:xfs_file_buffered_read instead"),
}

# Tools that never reach the attach step, with the bug that stops them (none now).
BLOCKED: dict[str, str] = {}


@pytest.fixture(scope="module")
def runs() -> dict[str, subprocess.CompletedProcess[str]]:
    """Every tool under pytrace, as many at once as there are CPUs (each
    compiles, then fails to attach: half a second of CPU apiece)."""
    from concurrent.futures import ThreadPoolExecutor

    def run(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytrace", f"/usr/sbin/{name}.bt"], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=60)
    with ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0))) as pool:
        return dict(zip(EXPECTED, pool.map(run, EXPECTED)))


@live
def test_every_kprobe_tool_is_listed() -> None:
    """EXPECTED covers exactly the Debian tools that use kprobes."""
    tools = {p.stem for p in Path("/usr/sbin").glob("*.bt")
             if any(ln.lstrip().startswith(("kprobe:", "kretprobe:")) for ln in p.read_text().splitlines())}
    assert tools == set(EXPECTED)


@live
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=BLOCKED[n]))
                                  if n in BLOCKED else n for n in sorted(EXPECTED)])
def test_kprobe_tool_fails_in_one_sentence(name: str, runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    r = runs[name]
    target, instead = EXPECTED[name]
    assert r.returncode == 1, r.stderr
    assert r.stdout == "", "nothing may be traced or printed before the failure"
    assert r.stderr == f"pytrace: cannot attach {target}: {NO_KPROBES} {instead}\n"


# ---------------------------------------------------------------- on a made-up tracefs

def _tracefs(tmp_path: Path, events: list[str]) -> str:
    for ev in events:
        cat, name = ev.split(":")
        (tmp_path / "events" / cat / name).mkdir(parents=True)
    return str(tmp_path)


def test_alternative_prefers_the_newest_tracepoint(tmp_path: Path) -> None:
    """block_io_start (6.5+) where the kernel has it, block_rq_issue before."""
    new = _tracefs(tmp_path / "new", ["block:block_io_start", "block:block_io_done", "block:block_rq_issue",
                                      "block:block_rq_complete"])
    old = _tracefs(tmp_path / "old", ["block:block_rq_issue", "block:block_rq_complete"])
    assert kprobe_alternative("__blk_account_io_start", lambda: new) == "tracepoint:block:block_io_start instead"
    assert kprobe_alternative("blk_account_io_start", lambda: old) == "tracepoint:block:block_rq_issue instead"
    assert kprobe_alternative("blk_account_io_done", lambda: new) == "tracepoint:block:block_io_done instead"
    assert kprobe_alternative("__blk_account_io_done", lambda: old) == \
        "tracepoint:block:block_rq_complete instead"
    assert kprobe_alternative("blk_mq_start_request", lambda: old) == "tracepoint:block:block_rq_issue instead"


def test_alternative_names_only_what_the_kernel_has(tmp_path: Path) -> None:
    """A table entry whose tracepoint is missing gives the generic advice;
    an exact-name tracepoint wins over the table."""
    root = _tracefs(tmp_path, ["syscalls:sys_enter_read", "syscalls:sys_exit_read", "capability:cap_capable"])
    assert kprobe_alternative("oom_kill_process", lambda: root) == GENERIC
    assert kprobe_alternative("cap_capable", lambda: root) == "tracepoint:capability:cap_capable instead"
    assert kprobe_alternative("vfs_write", lambda: root) == GENERIC
    assert kprobe_alternative("lookup_fast", lambda: root) == GENERIC


def test_alternative_side_follows_the_probe(tmp_path: Path) -> None:
    """kretprobe on a VFS entry point: the syscall's sys_exit_ tracepoint;
    wildcards are matched by their stem (vfs_read* -> vfs_read)."""
    root = _tracefs(tmp_path, ["syscalls:sys_enter_read", "syscalls:sys_exit_read", "syscalls:sys_enter_fsync",
                               "syscalls:sys_exit_fsync", "syscalls:sys_enter_openat"])
    assert kprobe_alternative("vfs_read*", lambda: root) == "tracepoint:syscalls:sys_enter_read instead"
    assert kprobe_alternative("vfs_read", lambda: root, exit=True) == "tracepoint:syscalls:sys_exit_read instead"
    assert kprobe_alternative("vfs_fsync", lambda: root, exit=True) == "tracepoint:syscalls:sys_exit_fsync instead"
    assert kprobe_alternative("vfs_open", lambda: root) == "tracepoint:syscalls:sys_enter_openat instead"
    assert kprobe_alternative("vfs_open", lambda: root, exit=True) == GENERIC
    assert kprobe_alternative("vfs_*", lambda: root) == "tracepoint:syscalls:sys_enter_* instead"
    assert kprobe_alternative("vfs_*", lambda: root, exit=True) == "tracepoint:syscalls:sys_exit_* instead"


def test_alternative_without_tracefs(tmp_path: Path) -> None:
    """No tracefs at all: still one sentence; a perf software event needs none."""
    def missing() -> str:
        raise OSError("no tracefs")
    assert kprobe_alternative("oom_kill_process", missing) == GENERIC
    assert kprobe_alternative("swap_read_folio", missing) == \
        "software:major-faults:1 instead (a swap-in is a major page fault)"
