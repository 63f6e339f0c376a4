"""RingBuffer's run delivery over a fake ring: every committed record is
delivered exactly once and in ring order whether it comes alone or in a
run; runs hold only alike records; BUSY stops, DISCARD skips, the ring
wraps, ``limit`` holds, and a failing run is consumed like a failing record."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import pytest

from pytrace.bpf.syscalls import BPF_RINGBUF_HDR_SZ
from tests.unit.fake_ring import FakeRing

Delivered = list[tuple[str, bytes]]


class Collector:
    """A callback that accepts runs of the tags in ``run_tags``."""

    def __init__(self, run_tags: set[int]) -> None:
        self.run_tags = run_tags
        self.got: Delivered = []
        self.runs: list[int] = []
        self.asked: list[tuple[int, int, int]] = []

    def __call__(self, view: memoryview) -> None:
        self.got.append(("one", bytes(view)))

    def run_renderer(self, tag: int, length: int, stride: int) -> Callable[[memoryview], None] | None:
        self.asked.append((tag, length, stride))
        if tag not in self.run_tags:
            return None

        def run(view: memoryview) -> None:
            assert len(view) % stride == 0 and len(view) // stride >= 2
            self.runs.append(len(view) // stride)
            for at in range(0, len(view), stride):
                head = struct.unpack_from("<I", view, at)[0]
                assert head == length  # committed, not discarded, this length
                rec = bytes(view[at + BPF_RINGBUF_HDR_SZ:at + BPF_RINGBUF_HDR_SZ + length])
                assert struct.unpack_from("<Q", rec)[0] == tag
                self.got.append(("run", rec))
        return run


def payload(tag: int, length: int, serial: int) -> bytes:
    body = struct.pack("<QQ", tag, serial)[:length]
    return body + bytes(length - len(body))


def stream(seed: int, n: int) -> list[tuple[bytes, bool]]:
    """Records with runs of varied lengths, other ids, other lengths, discards."""
    rng = random.Random(seed)
    out: list[tuple[bytes, bool]] = []
    serial = 0
    while len(out) < n:
        tag = rng.choice([1, 1, 1, 2, 3, 7])
        length = rng.choice([16, 16, 16, 24, 40, 8, 12])
        for _ in range(rng.choice([1, 1, 2, 3, 5, 17, 40, 100])):
            serial += 1
            out.append((payload(tag, length, serial), rng.random() < 0.03))
    return out[:n]


def consume(records: list[tuple[bytes, bool]], cb: object, size: int, start: int,
            limit: int | None = None) -> None:
    """Produce ``records`` into a fresh fake ring, draining whenever it fills."""
    ring = FakeRing(size, start)
    rb = ring.consumer_of(cb)
    for rec, discard in records:
        while True:
            try:
                ring.put(rec, discard)
                break
            except OverflowError:
                rb.drain(limit)
    while rb.drain(limit):
        pass
    assert ring.cons == ring.prod


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("start", [0, (1 << 12) - 40, (1 << 32) - 200])
def test_runs_deliver_what_single_records_deliver(seed: int, start: int) -> None:
    records = stream(seed, 3000)
    plain: Delivered = []
    consume(records, lambda v: plain.append(("one", bytes(v))), 1 << 12, start)
    assert [r for _, r in plain] == [rec for rec, discard in records if not discard]
    batched = Collector({1, 2})
    consume(records, batched, 1 << 12, start)
    assert [r for _, r in batched.got] == [r for _, r in plain]
    assert batched.runs and max(batched.runs) >= 17
    # Tag 3 and 7 records were offered as runs and declined: delivered one by one.
    assert all(struct.unpack_from("<Q", r)[0] in (1, 2) for how, r in batched.got if how == "run")
    assert any(how == "one" and struct.unpack_from("<Q", r)[0] == 3 for how, r in batched.got)


@pytest.mark.parametrize("limit", [1, 2, 7, 64])
def test_limit_is_exact_and_resumes(limit: int) -> None:
    records = stream(42, 1500)
    plain: Delivered = []
    consume(records, lambda v: plain.append(("one", bytes(v))), 1 << 13, 0)
    ring = FakeRing(1 << 16)
    for rec, discard in records:
        ring.put(rec, discard)
    batched = Collector({1, 2, 3, 7})
    rb = ring.consumer_of(batched)
    counts = []
    while True:
        got = rb.drain(limit)
        if not got:
            break
        counts.append(got)
    assert all(c == limit for c in counts[:-1]) and 0 < counts[-1] <= limit
    assert [r for _, r in batched.got] == [r for _, r in plain]


def test_a_busy_record_ends_the_run_until_committed() -> None:
    ring = FakeRing(1 << 12)
    batched = Collector({1})
    rb = ring.consumer_of(batched)
    for i in range(5):
        ring.put(payload(1, 16, i))
    held = ring.reserve(payload(1, 16, 5))
    for i in range(6, 10):
        ring.put(payload(1, 16, i))
    assert rb.drain() == 5
    assert batched.runs == [5]
    ring.commit(held)
    assert rb.drain() == 5
    assert batched.runs == [5, 5]
    assert [struct.unpack_from("<Q", r, 8)[0] for _, r in batched.got] == list(range(10))
    assert ring.cons == ring.prod


def test_discarded_records_split_runs() -> None:
    ring = FakeRing(1 << 12)
    batched = Collector({1})
    rb = ring.consumer_of(batched)
    for i in range(12):
        ring.put(payload(1, 16, i), discard=i in (3, 4, 9))
    assert rb.drain() == 9
    assert [struct.unpack_from("<Q", r, 8)[0] for _, r in batched.got] == [0, 1, 2, 5, 6, 7, 8, 10, 11]
    assert batched.runs == [3, 4, 2]


def test_a_long_run_across_the_wrap_is_one_contiguous_view() -> None:
    ring = FakeRing(1 << 12, start=(1 << 12) - 5 * 24)
    batched = Collector({1})
    rb = ring.consumer_of(batched)
    for i in range(150):
        ring.put(payload(1, 16, i))
    assert rb.drain() == 150
    assert batched.runs == [150]
    assert [struct.unpack_from("<Q", r, 8)[0] for _, r in batched.got] == list(range(150))


def test_a_failing_run_is_consumed_not_redelivered() -> None:
    ring = FakeRing(1 << 12)
    seen: list[int] = []

    class Failing:
        def __call__(self, view: memoryview) -> None:
            seen.append(struct.unpack_from("<Q", view, 8)[0])

        def run_renderer(self, tag: int, length: int, stride: int) -> Callable[[memoryview], None]:
            def run(view: memoryview) -> None:
                raise RuntimeError("boom")
            return run

    rb = ring.consumer_of(Failing())
    for i in range(4):
        ring.put(payload(1, 16, i))
    ring.put(payload(2, 24, 4))
    with pytest.raises(RuntimeError):
        rb.drain()
    assert rb.drain() == 1
    assert seen == [4] and ring.cons == ring.prod


def test_closed_and_misshapen_rings() -> None:
    ring = FakeRing(1 << 12)
    rb = ring.consumer_of(lambda v: None)
    rb.close()
    with pytest.raises(ValueError, match="closed"):
        rb.drain()
    assert rb.pending_bytes() == 0
    with pytest.raises(ValueError, match="power of two"):
        FakeRing(3000).consumer_of(lambda v: None)
