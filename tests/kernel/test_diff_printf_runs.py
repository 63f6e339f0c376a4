"""Runs of printf records (consecutive events of one printf call, which
pytrace renders a chunk at a time) print what bpftrace 0.17 prints, and in
the same order relative to other events (print(), another printf)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from .difflib_pt import compare, getpid_n, have_bpftrace, syscall

pytestmark = [pytest.mark.kernel, pytest.mark.oracle,
              pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]

PID = os.getpid()
SYS_GETPPID = 110  # x86_64


@contextmanager
def one_cpu() -> Iterator[None]:
    """bpftrace reads one perf buffer per CPU, so events from two CPUs can
    come out in another order than they happened: keep the workload on one."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def bursts(rounds: int, per_round: int) -> None:
    # Both tools write into pipes nobody reads while this runs: keep each
    # test's output well under a pipe's 64 KiB, or the tools block and lose events.
    with one_cpu():
        for _ in range(rounds):
            getpid_n(per_round)
            syscall(SYS_GETPPID)


def test_long_runs_with_every_plain_conversion() -> None:
    script = ('tracepoint:syscalls:sys_enter_getpid /pid == $1/ {'
              ' printf("%d %5d|%-5d|%u %x %X %o|%08x|%hd %hhu|%c%3c|%-8s|%6s|%.3s|%% %ld\\n", @n, @n * 7, -@n,'
              ' @n * 4000000000, @n * 255, @n * 4097, @n, @n * 65599, @n * 1000, @n * 3, 65 + @n % 26, 97 + @n % 26,'
              ' comm, comm, comm, @n * -5000000000); @n++; }')
    out = compare(script, lambda: bursts(4, 100), params=[PID])
    lines = [ln for ln in out.splitlines() if "|" in ln]
    assert len(lines) == 400
    assert lines[0].startswith("0     0|0    |0 0 0 0|00000000|0 0|A  a|")


def test_runs_interleave_with_other_events_in_order() -> None:
    # print() reads the map when the event is handled: print one that does not change.
    script = ('BEGIN { @label = 42; }'
              ' tracepoint:syscalls:sys_enter_getpid /pid == $1/ { printf("get %d %s\\n", @n, comm); @n++; }'
              ' tracepoint:syscalls:sys_enter_getppid /pid == $1/ { print(@label);'
              ' printf("round %d after %d\\n", @n / 50, @n); }')
    out = compare(script, lambda: bursts(12, 50), params=[PID])
    lines = out.splitlines()
    rounds = [i for i, ln in enumerate(lines) if ln.startswith("round ")]
    assert len(rounds) == 12
    for k, i in enumerate(rounds):
        assert lines[i] == f"round {k + 1} after {50 * (k + 1)}"
        assert lines[i - 1] == "@label: 42" and lines[i - 2].startswith(f"get {50 * (k + 1) - 1} ")
