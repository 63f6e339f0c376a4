"""A user-space producer for ``RingBuffer.over_memory``: records laid out
as kernel/bpf/ringbuf.c lays them out (8-byte header: u32 length with the
BUSY and DISCARD bits, u32 page offset; 8-byte alignment; the data area
seen twice in a row), so the consumer's walking, run detection and
wrapping can be tested without a kernel."""

from __future__ import annotations

import struct

from pytrace.bpf.ringbuf import RingBuffer
from pytrace.bpf.syscalls import BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT, BPF_RINGBUF_HDR_SZ


class FakeRing:
    """``size`` bytes of ring (a power of two); ``start`` puts both
    positions there, e.g. near the end so that records wrap."""

    def __init__(self, size: int = 1 << 12, start: int = 0) -> None:
        self.size = size
        self.consumer = bytearray(struct.pack("<Q", start))
        self.producer = bytearray(struct.pack("<Q", start))
        self.data = bytearray(2 * size)

    @property
    def cons(self) -> int:
        return int(struct.unpack("<Q", self.consumer)[0])

    @property
    def prod(self) -> int:
        return int(struct.unpack("<Q", self.producer)[0])

    def free(self) -> int:
        return self.size - (self.prod - self.cons)

    def _write(self, pos: int, blob: bytes) -> None:
        # Byte by byte modulo the size, mirrored: as the kernel's double mapping shows it.
        for i, b in enumerate(blob):
            at = (pos + i) & (self.size - 1)
            self.data[at] = b
            self.data[at + self.size] = b

    def reserve(self, payload: bytes) -> int:
        """Reserve a record holding ``payload``, still BUSY; returns its position."""
        stride = (len(payload) + BPF_RINGBUF_HDR_SZ + 7) & ~7
        if stride > self.free():
            raise OverflowError("ring full")
        pos = self.prod
        self._write(pos, struct.pack("<II", len(payload) | BPF_RINGBUF_BUSY_BIT, 0) + payload
                    + bytes(stride - BPF_RINGBUF_HDR_SZ - len(payload)))
        self.producer[:] = struct.pack("<Q", pos + stride)
        return pos

    def commit(self, pos: int, discard: bool = False) -> None:
        length = struct.unpack_from("<I", self.data, pos & (self.size - 1))[0] & ~BPF_RINGBUF_BUSY_BIT
        self._write(pos, struct.pack("<I", length | (BPF_RINGBUF_DISCARD_BIT if discard else 0)))

    def put(self, payload: bytes, discard: bool = False) -> None:
        self.commit(self.reserve(payload), discard)

    def consumer_of(self, callback: object) -> RingBuffer:
        return RingBuffer.over_memory(self.consumer, self.producer, self.data, callback)  # type: ignore[arg-type]
