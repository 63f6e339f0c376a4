"""pytrace.bpf.ringbuf on the live kernel: every record a program emits is
consumed exactly once, in order, alone or in a run; discarded records are
skipped; the ring wraps; poll's timeout is in seconds."""

from __future__ import annotations

import os
import threading
import time

import pytest

from pytrace.bpf import insn as I
from pytrace.bpf.maps import BpfMap
from pytrace.bpf.program import load_program, test_run
from pytrace.bpf.ringbuf import RingBuffer
from pytrace.bpf.syscalls import MapType, ProgType
from tests.kernel.test_bpf_syscalls import (  # noqa: F401 - bpf_clean is an autouse fixture
    HELPER_RINGBUF_DISCARD,
    HELPER_RINGBUF_OUTPUT,
    HELPER_RINGBUF_RESERVE,
    HELPER_RINGBUF_SUBMIT,
    TAG,
    bpf_clean,
)

pytestmark = pytest.mark.kernel


def output_prog(ring_fd: int, per_run: int = 1, size: int = 8) -> bytes:
    """ringbuf_output ``per_run`` records of ``size`` bytes: (args[0] + i) then zeros."""
    a = I.Asm().emit(I.ldx(8, I.R7, I.R1, 0), I.mov64_imm(I.R8, 0))
    for off in range(8, size, 8):
        a.emit(I.st_imm(8, I.R10, -size + off, 0))
    a.label("loop").emit(
        I.mov64_reg(I.R1, I.R7), I.alu64_reg(I.ADD, I.R1, I.R8), I.stx(8, I.R10, -size, I.R1),
        I.ld_map_fd(I.R1, ring_fd), I.mov64_reg(I.R2, I.R10), I.alu64_imm(I.ADD, I.R2, -size),
        I.mov64_imm(I.R3, size), I.mov64_imm(I.R4, 0), I.call(HELPER_RINGBUF_OUTPUT),
        I.alu64_imm(I.ADD, I.R8, 1))
    a.jmp(I.JLT, I.R8, "loop", imm=per_run)
    a.emit(I.mov64_imm(I.R0, 0), I.exit_insn())
    return a.assemble()


def tagged_prog(ring_fd: int, per_run: int) -> bytes:
    """ringbuf_output ``per_run`` 16-byte records: args[0] (a tag, as
    pytrace's event id), then args[1] + i."""
    a = I.Asm().emit(I.ldx(8, I.R7, I.R1, 0), I.ldx(8, I.R9, I.R1, 8), I.mov64_imm(I.R8, 0))
    a.label("loop").emit(
        I.stx(8, I.R10, -16, I.R7), I.mov64_reg(I.R1, I.R9), I.alu64_reg(I.ADD, I.R1, I.R8),
        I.stx(8, I.R10, -8, I.R1), I.ld_map_fd(I.R1, ring_fd), I.mov64_reg(I.R2, I.R10),
        I.alu64_imm(I.ADD, I.R2, -16), I.mov64_imm(I.R3, 16), I.mov64_imm(I.R4, 0),
        I.call(HELPER_RINGBUF_OUTPUT), I.alu64_imm(I.ADD, I.R8, 1))
    a.jmp(I.JLT, I.R8, "loop", imm=per_run)
    a.emit(I.mov64_imm(I.R0, 0), I.exit_insn())
    return a.assemble()


def reserve_prog(ring_fd: int) -> bytes:
    """reserve 16 bytes, write args[0] twice, submit if even else discard."""
    a = I.Asm().emit(I.ldx(8, I.R7, I.R1, 0), I.ld_map_fd(I.R1, ring_fd), I.mov64_imm(I.R2, 16),
                     I.mov64_imm(I.R3, 0), I.call(HELPER_RINGBUF_RESERVE))
    a.jmp(I.JEQ, I.R0, "out", imm=0)
    a.emit(I.stx(8, I.R0, 0, I.R7), I.stx(8, I.R0, 8, I.R7), I.mov64_reg(I.R1, I.R0),
           I.mov64_imm(I.R2, 0))
    a.jmp(I.JSET, I.R7, "odd", imm=1)
    a.emit(I.call(HELPER_RINGBUF_SUBMIT)).goto("out")
    a.label("odd").emit(I.call(HELPER_RINGBUF_DISCARD))
    a.label("out").emit(I.mov64_imm(I.R0, 0), I.exit_insn())
    return a.assemble()


def test_every_record_is_consumed_once_in_order() -> None:
    n = 3000
    with BpfMap.create(MapType.RINGBUF, 0, 0, 1 << 16, TAG + "rb") as ring:
        fd = load_program(ProgType.RAW_TRACEPOINT, output_prog(ring.fd), name=TAG + "rb")
        got: list[int] = []
        try:
            with RingBuffer(ring, lambda v: got.append(int.from_bytes(v, "little"))) as rb:
                # 3000 x 16 B = 48 KB in a 64 KB ring: drain as we go so it wraps.
                for i in range(n):
                    test_run(fd, i.to_bytes(8, "little"))
                    if i % 1000 == 999:
                        assert rb.poll(1.0) == 1000
                assert rb.drain() == 0
                for i in range(n, n + 3000):  # wraps the ring at least once more
                    test_run(fd, i.to_bytes(8, "little"))
                    if i % 500 == 0:
                        rb.drain()
                rb.drain()
                assert rb.pending_bytes() == 0
        finally:
            os.close(fd)
        assert got == list(range(n + 3000))


class RunCollector:
    """A callback that takes runs of tag-1 records whole."""

    def __init__(self) -> None:
        self.got: list[tuple[int, int]] = []
        self.runs: list[int] = []

    def __call__(self, v: memoryview) -> None:
        self.got.append((int.from_bytes(v[:8], "little"), int.from_bytes(v[8:16], "little")))

    def run_renderer(self, tag: int, length: int, stride: int) -> object:
        if tag != 1 or length != 16:
            return None

        def run(view: memoryview) -> None:
            self.runs.append(len(view) // stride)
            for at in range(8, len(view), stride):
                self.got.append((int.from_bytes(view[at:at + 8], "little"),
                                 int.from_bytes(view[at + 8:at + 16], "little")))
        return run


def test_runs_from_the_kernel_ring_arrive_whole_and_in_order() -> None:
    """Runs of tag-1 records between tag-2 ones, over many wraps of a 16 KB ring."""
    with BpfMap.create(MapType.RINGBUF, 0, 0, 1 << 14, TAG + "rr") as ring:
        fds = [load_program(ProgType.RAW_TRACEPOINT, tagged_prog(ring.fd, n), name=TAG + "rr") for n in (1, 50)]
        expected: list[tuple[int, int]] = []
        collector = RunCollector()
        try:
            with RingBuffer(ring, collector) as rb:
                serial = 0
                for i in range(400):
                    n = 50 if i % 3 else 1
                    tag = 1 if i % 3 else 2
                    test_run(fds[n == 50], tag.to_bytes(8, "little") + serial.to_bytes(8, "little"))
                    expected += [(tag, serial + j) for j in range(n)]
                    serial += n
                    if i % 7 == 6:  # 16 KB holds ~680 records: drain before it fills
                        rb.drain()
                rb.drain()
                assert rb.pending_bytes() == 0
        finally:
            for fd in fds:
                os.close(fd)
        assert collector.got == expected
        assert collector.runs and sum(collector.runs) == sum(1 for tag, _ in expected if tag == 1)
        assert max(collector.runs) >= 50


def test_discarded_records_are_skipped() -> None:
    with BpfMap.create(MapType.RINGBUF, 0, 0, 1 << 14, TAG + "rd") as ring:
        fd = load_program(ProgType.RAW_TRACEPOINT, reserve_prog(ring.fd), name=TAG + "rd")
        got: list[bytes] = []
        try:
            with RingBuffer(ring, lambda v: got.append(bytes(v))) as rb:
                for i in range(100):
                    test_run(fd, i.to_bytes(8, "little"))
                assert rb.drain() == 50
        finally:
            os.close(fd)
        assert got == [i.to_bytes(8, "little") * 2 for i in range(0, 100, 2)]


def test_poll_timeout_is_seconds_and_wakes_on_data() -> None:
    with BpfMap.create(MapType.RINGBUF, 0, 0, 1 << 14, TAG + "rp") as ring:
        fd = load_program(ProgType.RAW_TRACEPOINT, output_prog(ring.fd), name=TAG + "rp")
        try:
            with RingBuffer(ring, lambda v: None) as rb:
                t0 = time.monotonic()
                assert rb.poll(0.15) == 0
                assert 0.1 <= time.monotonic() - t0 < 1.0
                timer = threading.Timer(0.1, test_run, (fd, bytes(8)))
                timer.start()
                t0 = time.monotonic()
                assert rb.poll(5.0) == 1  # woken by the record, long before 5 s
                assert time.monotonic() - t0 < 2.0
                timer.join()
        finally:
            os.close(fd)


def test_callback_errors_do_not_redeliver() -> None:
    with BpfMap.create(MapType.RINGBUF, 0, 0, 1 << 14, TAG + "re") as ring:
        fd = load_program(ProgType.RAW_TRACEPOINT, output_prog(ring.fd, per_run=5), name=TAG + "re")
        seen: list[int] = []

        def cb(v: memoryview) -> None:
            seen.append(int.from_bytes(v, "little"))
            if len(seen) == 2:
                raise RuntimeError("boom")

        try:
            with RingBuffer(ring, cb) as rb:
                test_run(fd, bytes(8))
                with pytest.raises(RuntimeError):
                    rb.drain()
                rb.drain()
        finally:
            os.close(fd)
        assert seen == [0, 1, 2, 3, 4]


def test_consumer_throughput() -> None:
    """1 M 8-byte records backlogged, then drained; prints the rate (pytest -s).
    The bound is loose so a loaded CI machine passes; expect 1.5-2 M/s."""
    with BpfMap.create(MapType.RINGBUF, 0, 0, 32 << 20, TAG + "rt") as ring:
        fd = load_program(ProgType.RAW_TRACEPOINT, output_prog(ring.fd, per_run=1000), name=TAG + "rt")
        total = [0]

        def cb(v: memoryview, total: list[int] = total) -> None:
            total[0] += 1

        try:
            with RingBuffer(ring, cb) as rb:
                for _ in range(1000):
                    test_run(fd, bytes(8))
                t0 = time.perf_counter()
                n = rb.drain()
                dt = time.perf_counter() - t0
        finally:
            os.close(fd)
    assert n == total[0] == 1_000_000
    print(f"\nring buffer consumer: {n / dt / 1e6:.2f} M records/s")
    assert n / dt > 2e5


def test_rejects_other_maps() -> None:
    with BpfMap.create(MapType.ARRAY, 4, 8, 1, TAG + "na") as m:
        with pytest.raises(ValueError, match="not a ring buffer"):
            RingBuffer(m)
