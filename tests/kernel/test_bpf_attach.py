"""pytrace.bpf.attach on the live kernel: programs fire exactly as often as
their events happen, failures are precise and leave nothing open."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytrace.bpf.attach import (
    Attachment,
    attach_breakpoint,
    attach_perf_event,
    attach_raw_tracepoint,
    attach_tracepoint,
    attach_uprobe,
    close_all,
)
from pytrace.bpf.elf import ElfObject
from pytrace.bpf.maps import BpfMap
from pytrace.bpf.program import load_program
from pytrace.bpf.syscalls import AttachType, BpfError, MapType, PerfSwConfig, PerfType, ProgType, online_cpus
from pytrace.kernel.btf import VMLINUX_PATH, Btf
from pytrace.kernel.tracefs import tracefs_root
from tests.kernel.test_bpf_syscalls import (  # noqa: F401 - bpf_clean is an autouse fixture
    SYS_GETPID,
    TAG,
    bpf_clean,
    counter_prog,
    raw_getpid,
    u64_at,
)

pytestmark = pytest.mark.kernel

PT_REGS_DI, PT_REGS_AX = 112, 80  # x86_64 struct pt_regs offsets


@pytest.fixture
def counts() -> Iterator[BpfMap]:
    with BpfMap.create(MapType.ARRAY, 4, 8, 2, TAG + "cnt") as m:
        yield m


def _load(prog_type: ProgType, code: bytes, name: str) -> int:
    return load_program(prog_type, code, name=TAG + name)


def test_raw_tracepoint_counts_exact_getpids(counts: BpfMap) -> None:
    fd = _load(ProgType.RAW_TRACEPOINT, counter_prog(counts.fd, pid=os.getpid(), syscall_nr=SYS_GETPID), "rtp")
    try:
        with attach_raw_tracepoint(fd, "sys_enter") as att:
            for _ in range(1000):
                raw_getpid()
            for _ in range(500):
                os.getpid()  # glibc >= 2.25 does not cache getpid: a syscall each time
        assert att.closed
        raw_getpid()  # detached: no longer counted
    finally:
        os.close(fd)
    assert u64_at(counts, 0) == 1500


def test_tp_btf_counts_exact_getpids(counts: BpfMap) -> None:
    """A tp_btf program (TRACING + TRACE_RAW_TP, target fixed by the BTF id
    of typedef btf_trace_sys_enter) attaches with no name."""
    btf_id = Btf.from_bytes(Path(VMLINUX_PATH).read_bytes()).type_id("typedef", "btf_trace_sys_enter")
    assert btf_id
    code = counter_prog(counts.fd, pid=os.getpid(), syscall_nr=SYS_GETPID)
    fd = load_program(ProgType.TRACING, code, name=TAG + "btf",
                      expected_attach_type=AttachType.TRACE_RAW_TP, attach_btf_id=btf_id)
    try:
        with attach_raw_tracepoint(fd, None):
            for _ in range(300):
                raw_getpid()
    finally:
        os.close(fd)
    assert u64_at(counts, 0) == 300


def test_tracepoint_counts_exact_getpids(counts: BpfMap) -> None:
    fd = _load(ProgType.TRACEPOINT, counter_prog(counts.fd, pid=os.getpid()), "tp")
    try:
        att = attach_tracepoint(fd, "syscalls", "sys_enter_getpid", tracefs_root())
        try:
            for _ in range(777):
                raw_getpid()
        finally:
            att.close()
            att.close()
        raw_getpid()
    finally:
        os.close(fd)
    assert u64_at(counts, 0) == 777


def test_tracepoint_errors_leave_nothing_open(counts: BpfMap) -> None:
    root = tracefs_root()
    with pytest.raises(BpfError) as info:
        attach_tracepoint(0, "syscalls", "sys_enter_nonexistent", root)
    assert info.value.errno == errno.ENOENT
    assert "tracepoint syscalls:sys_enter_nonexistent does not exist" in str(info.value)
    raw_fd = _load(ProgType.RAW_TRACEPOINT, counter_prog(counts.fd), "wrong")
    tp_fd = _load(ProgType.TRACEPOINT, counter_prog(counts.fd), "tp2")
    try:
        with pytest.raises(BpfError) as info:  # SET_BPF fails after the perf fd is open
            attach_tracepoint(raw_fd, "syscalls", "sys_enter_getpid", root)
        assert info.value.errno == errno.EINVAL and "wrong program type" in str(info.value)
        with attach_tracepoint(tp_fd, "syscalls", "sys_enter_getpid", root):
            with pytest.raises(BpfError) as info:
                attach_tracepoint(tp_fd, "syscalls", "sys_enter_getpid", root)
            assert info.value.errno == errno.EEXIST and "already attached" in str(info.value)
        with pytest.raises(BpfError) as info:
            attach_raw_tracepoint(raw_fd, "no_such_raw_tracepoint")
        assert info.value.errno == errno.ENOENT and "no raw tracepoint" in str(info.value)
    finally:
        os.close(raw_fd)
        os.close(tp_fd)


def test_perf_event_cpu_clock_fires(counts: BpfMap) -> None:
    fd = _load(ProgType.PERF_EVENT, counter_prog(counts.fd), "clk")
    atts: list[Attachment] = []
    try:
        for cpu in online_cpus():
            atts.append(attach_perf_event(fd, type=PerfType.SOFTWARE, config=PerfSwConfig.CPU_CLOCK,
                                          sample_freq=1000, cpu=cpu))
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            pass
    finally:
        close_all(atts)
        os.close(fd)
    assert u64_at(counts, 0) > 50  # ~300 per CPU expected; the VM may lose some


def test_perf_event_errors(counts: BpfMap) -> None:
    fd = _load(ProgType.PERF_EVENT, counter_prog(counts.fd), "hw")
    try:
        with pytest.raises(BpfError) as info:
            attach_perf_event(fd, type=PerfType.HARDWARE, config=0, sample_period=100000, cpu=0)
        assert info.value.errno == errno.ENOENT and "no hardware PMU" in str(info.value)
        with pytest.raises(ValueError):
            attach_perf_event(fd, type=PerfType.SOFTWARE, config=0, cpu=0)
    finally:
        os.close(fd)


C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) long target(long x) { __asm__ volatile(""); return x * 2; }
int main(int argc, char **argv) {
    char line[16];
    long n = atol(argv[1]), sum = 0;
    if (!fgets(line, sizeof line, stdin)) return 1;  /* wait until probes are attached */
    for (long i = 1; i <= n; i++) sum += target(i);
    printf("%ld\n", sum);
    return 0;
}
"""


def test_uprobe_and_uretprobe_count_exact_calls(tmp_path: Path) -> None:
    src, exe = tmp_path / "t.c", tmp_path / "t"
    src.write_text(C_PROGRAM)
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(src)], check=True)
    elf = ElfObject.from_path(str(exe))
    offset = elf.file_offset(elf.symbol("target").value)
    n = 2500
    with BpfMap.create(MapType.ARRAY, 4, 8, 2, TAG + "up") as entry, \
            BpfMap.create(MapType.ARRAY, 4, 8, 2, TAG + "ret") as ret:
        efd = _load(ProgType.KPROBE, counter_prog(entry.fd, sum_ctx_off=PT_REGS_DI), "up")
        rfd = _load(ProgType.KPROBE, counter_prog(ret.fd, sum_ctx_off=PT_REGS_AX), "ret")
        try:
            atts = [attach_uprobe(efd, str(exe), offset),
                    attach_uprobe(rfd, str(exe), offset, retprobe=True)]
            try:
                out = subprocess.run([str(exe), str(n)], input="go\n", capture_output=True,
                                     text=True, check=True)
            finally:
                close_all(atts)
        finally:
            os.close(efd)
            os.close(rfd)
        assert int(out.stdout) == n * (n + 1)
        assert (u64_at(entry, 0), u64_at(entry, 1)) == (n, n * (n + 1) // 2)  # calls, sum of x
        assert (u64_at(ret, 0), u64_at(ret, 1)) == (n, n * (n + 1))  # returns, sum of 2x


def test_uprobe_errors() -> None:
    with pytest.raises(BpfError) as info:
        attach_uprobe(0, "/nonexistent/binary", 0)
    assert info.value.errno == errno.ENOENT and "/nonexistent/binary" in str(info.value)


def test_breakpoint_counts_writes(counts: BpfMap) -> None:
    var = ctypes.c_uint64(0)
    fd = _load(ProgType.PERF_EVENT, counter_prog(counts.fd), "bp")
    try:
        # A per-thread watchpoint on this (the main, pytest) thread.
        with attach_breakpoint(fd, ctypes.addressof(var), 8, "w", pid=os.getpid()):
            for i in range(10):
                var.value = i
        var.value = 99
    finally:
        os.close(fd)
    assert u64_at(counts, 0) == 10


def test_close_all_is_concurrent_for_tracepoints(counts: BpfMap) -> None:
    """Closing perf-event tracepoints waits for RCU; close_all overlaps the
    waits.  Prints serial vs concurrent timings of 20 (pytest -s)."""
    root = tracefs_root()
    events = sorted(e for e in os.listdir(os.path.join(root, "events", "syscalls"))
                    if e.startswith("sys_enter_"))[:20]
    fd = _load(ProgType.TRACEPOINT, counter_prog(counts.fd, pid=os.getpid()), "many")
    try:
        timings = []
        for concurrent in (False, True):
            atts = [attach_tracepoint(fd, "syscalls", e, root) for e in events]
            t0 = time.perf_counter()
            if concurrent:
                close_all(atts)
            else:
                for a in atts:
                    a.close()
            timings.append(time.perf_counter() - t0)
            assert all(a.closed for a in atts)
    finally:
        os.close(fd)
    print(f"\nclosing 20 tracepoints: serial {timings[0]:.2f} s, close_all {timings[1]:.2f} s")
    assert timings[1] < timings[0]
