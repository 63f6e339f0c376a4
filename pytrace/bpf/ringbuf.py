"""The user-space consumer of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8).

This module owns mapping a ring buffer and handing each committed record to
a callback.  The layout is kernel/bpf/ringbuf.c's: page 0 holds
``consumer_pos`` (mapped read-write: we publish how far we have read), page
1 holds ``producer_pos`` and is followed by the data area mapped *twice* in
a row (read-only), so a record that wraps the end of the ring is still
contiguous in our mapping.  Every record starts with an 8-byte header: a
u32 length whose bit 31 says "still being written" (BUSY) and bit 30 "thrown
away" (DISCARD), and a u32 page offset only the kernel uses.  Records are
8-byte aligned.

The hot loop is written for speed (~1-2 M small records/s in CPython):
headers are read by indexing a u32 view (no struct, no slicing), positions
are plain ints, and ``consumer_pos`` is stored once per batch, not once per
record.  x86 is TSO, so our plain loads/stores give the acquire/release
ordering the kernel's smp_load_acquire/smp_store_release pair expects.

Faster still, a consumer that can render many records at once (pytrace's
printf events) is handed whole *runs*: consecutive records with the same
header and the same first 8 bytes, found by comparing strided columns of
headers and ids in C, so a run costs a few Python calls whatever its
length.  ``over_memory`` runs the same consumer over plain buffers (tests).
"""

from __future__ import annotations

import mmap
import select
import time
from collections.abc import Callable
from types import TracebackType

from .maps import BpfMap
from .syscalls import (
    BPF_RINGBUF_BUSY_BIT,
    BPF_RINGBUF_DISCARD_BIT,
    BPF_RINGBUF_HDR_SZ,
    PAGE_SIZE,
    MapType,
)

Callback = Callable[[memoryview], object]
# run_renderer(first 8 bytes as a u64, record length, stride) -> a function
# taking a run of such records, or None (see RingBuffer).
RunFactory = Callable[[int, int, int], "Callable[[memoryview], object] | None"]
_LEN_MASK = ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT) & 0xFFFFFFFF
# poll(): after a wake-up that finds less than COALESCE_BYTES pending, wait
# this long before draining (RingBuffer.coalesce; 0: drain at once).  1 ms
# of latency is invisible on a terminal; at 500 k events/s it turns ~100
# wake-ups of a few records into one of ~500.
COALESCE_SECONDS = 0.001
COALESCE_BYTES = 1 << 16


class RingBuffer:
    """Consume records of one ring-buffer map.

    ``callback(view)`` gets a read-only memoryview of each record's payload.
    The view is only valid during the call: the kernel may reuse the space
    as soon as ``poll``/``drain`` returns, and a view kept alive past
    ``close()`` makes close fail.  Copy with ``bytes(view)`` to keep it.
    The map stays owned by the caller.

    A callback may also have a ``run_renderer(tag, length, stride)`` method
    (``RunFactory``): for a record of ``length`` bytes whose first 8 bytes
    read as the u64 ``tag``, when the next record is alike, it returns a
    function to call once with a view of the whole run instead of calling
    the callback per record (or None: per record, then).  The view holds
    ``len(view) // stride`` slots of ``stride`` bytes, each an 8-byte
    ring-buffer header followed by the record; the same lifetime rule holds.
    Runs and single records are delivered in ring order.
    """

    def __init__(self, ring: BpfMap, callback: Callback | None = None) -> None:
        if ring.map_type != MapType.RINGBUF:
            raise ValueError(f"map {ring.name!r} is not a ring buffer")
        size = ring.max_entries
        self.map: BpfMap | None = ring
        self.callback: Callback | None = callback
        self.coalesce: float = COALESCE_SECONDS
        self._open = False
        self._epoll: select.epoll | None = None
        self._cons_mm = mmap.mmap(ring.fd, PAGE_SIZE, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        try:
            # The kernel refuses a writable mapping of these pages (EPERM).
            self._prod_mm = mmap.mmap(ring.fd, PAGE_SIZE + 2 * size, mmap.MAP_SHARED,
                                      mmap.PROT_READ, offset=PAGE_SIZE)
        except BaseException:
            self._cons_mm.close()
            raise
        prod = memoryview(self._prod_mm)
        self._set_views(memoryview(self._cons_mm)[:8], prod[:8], prod[PAGE_SIZE:], size)
        prod.release()
        try:
            self._epoll = select.epoll()
            self._epoll.register(ring.fd, select.EPOLLIN)
        except BaseException:
            self.close()
            raise

    @classmethod
    def over_memory(cls, consumer: memoryview | bytearray, producer: memoryview | bytearray,
                    data: memoryview | bytearray, callback: Callback | None = None) -> RingBuffer:
        """The same consumer over plain memory laid out as the kernel's
        mapping (8-byte ``consumer_pos`` and ``producer_pos``, ``data``
        holding the ring twice), for tests and benchmarks: no map, and
        ``poll`` does not wait."""
        self = cls.__new__(cls)
        self.map = None
        self.callback = callback
        self.coalesce = 0.0
        self._open = False
        self._epoll = None
        self._set_views(memoryview(consumer)[:8], memoryview(producer)[:8], memoryview(data),
                        len(data) // 2)
        return self

    def _set_views(self, cons: memoryview, prod: memoryview, data: memoryview, size: int) -> None:
        if size & (size - 1) or len(data) != 2 * size:
            raise ValueError("a ring buffer's data area is a power of two, mapped twice")
        self._mask = size - 1
        self._cons = cons.cast("Q")
        self._prod = prod.cast("Q")
        self._data = data
        self._hdr = data.cast("I")  # record headers are 8-aligned: index off >> 2
        self._tags = data.cast("Q")  # a record's first 8 bytes (pytrace: the event id)
        for view in (cons, prod):
            view.release()
        self._open = True

    def fileno(self) -> int:
        """The map fd; readable (EPOLLIN) while records are pending, so it can
        join the caller's own epoll set."""
        if self.map is None:
            raise ValueError("this ring buffer has no map")
        return self.map.fd

    def pending_bytes(self) -> int:
        """Bytes produced and not yet consumed (0 after ``close``)."""
        if not self._open:
            return 0
        return self._prod[0] - self._cons[0]

    def poll(self, timeout: float | None = None, limit: int | None = None) -> int:
        """Wait up to ``timeout`` SECONDS (None: forever; 0: not at all) for
        records, then consume all available; returns how many were passed to
        the callback.  (``epoll.poll`` takes seconds; milliseconds there
        would mean second-long stalls.)  Woken with little pending, it waits
        ``coalesce`` seconds more so that records are drained in batches."""
        if not self._open:
            raise ValueError("ring buffer is closed")
        if self._prod[0] == self._cons[0] and self._epoll is not None:
            if self._epoll.poll(-1 if timeout is None else timeout, 1) and self.coalesce > 0 \
                    and self._prod[0] - self._cons[0] < COALESCE_BYTES:
                # The kernel wakes a consumer that has caught up on the very
                # next record (an irq_work on the producer's CPU, then our
                # wake-up): draining a handful of records per wake-up costs
                # both sides more than the records.  Let a batch gather.
                time.sleep(self.coalesce)
        return self.drain(limit)

    def drain(self, limit: int | None = None) -> int:
        """Consume every committed record without waiting (at most ``limit``
        when given, so a caller facing a flood still gets control back to
        notice Ctrl-C or exit()); returns the count."""
        cb = self.callback
        if cb is None:
            raise ValueError("RingBuffer.callback is not set")
        if not self._open:
            raise ValueError("ring buffer is closed")
        runs: RunFactory | None = getattr(cb, "run_renderer", None)
        hdr, tags, data, mask = self._hdr, self._tags, self._data, self._mask
        prod_view, cons_view = self._prod, self._cons
        busy, discard, len_mask = BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT, _LEN_MASK
        hdr_sz, pad = BPF_RINGBUF_HDR_SZ, BPF_RINGBUF_HDR_SZ + 7  # locals: no global lookups per record
        cons = cons_view[0]
        count = 0
        stop_at = -1 if limit is None else limit
        try:
            while count != stop_at:
                prod = prod_view[0]
                if cons >= prod:
                    break
                while cons < prod and count != stop_at:
                    off = cons & mask
                    h = hdr[off >> 2]
                    if h & busy:
                        # Reserved but not yet committed: stop here.  The
                        # commit wakes us because cons_pos will equal its position.
                        prod = -1
                        break
                    n = h & len_mask
                    stride = (n + pad) & ~7
                    if h & discard:
                        cons += stride
                        continue
                    # A run: the next record has the same header (so the
                    # same length, committed, not discarded) and the same
                    # first 8 bytes (the event id).  Reading the header
                    # before the payload gives the kernel's commit order.
                    if runs is not None and n >= 8 and cons + 2 * stride <= prod and stop_at - count != 1 \
                            and hdr[(off + stride) >> 2] == h and tags[(off + stride + hdr_sz) >> 3] == \
                            tags[(off + hdr_sz) >> 3]:
                        render = runs(tags[(off + hdr_sz) >> 3], n, stride)
                        if render is not None:
                            most = (prod - cons) // stride
                            if stop_at >= 0 and stop_at - count < most:
                                most = stop_at - count
                            k = self._run_length(off, h, stride, most)
                            # Consumed before the call, as single records are.
                            cons += k * stride
                            count += k
                            render(data[off:off + k * stride])
                            continue
                    # Advance before the callback, as libbpf does: a record
                    # whose callback raised is consumed, not redelivered.
                    cons += stride
                    start = off + hdr_sz
                    count += 1
                    cb(data[start:start + n])
                cons_view[0] = cons  # release the space once per batch
                if prod < 0:
                    break
        finally:
            cons_view[0] = cons
        return count

    def _run_length(self, off: int, h: int, stride: int, most: int) -> int:
        """How many records from the one at ``off`` (at most ``most``, the
        first two known alike) have header ``h`` and the first one's event
        id.  Strided views compare whole columns of headers and ids in C,
        galloping (16, 32, 64... records at a time) so that short runs cost
        little and long ones few calls."""
        hdr, tags = self._hdr, self._tags
        hw, tw = stride >> 2, stride >> 3
        h0, t0 = off >> 2, (off + BPF_RINGBUF_HDR_SZ) >> 3
        tag = tags[t0]
        hpat, tpat = h.to_bytes(4, "little"), tag.to_bytes(8, "little")
        k, step = 2, 16
        while k < most:
            end = min(k + step, most)
            heads = hdr[h0 + k * hw:h0 + end * hw:hw]
            ids = tags[t0 + k * tw:t0 + end * tw:tw]
            # Headers first: a committed header makes its record's bytes visible (x86 TSO).
            if heads.tobytes() == hpat * (end - k) and ids.tobytes() == tpat * (end - k):
                k = end
                step = min(step * 2, 1 << 16)
                continue
            for head, id_ in zip(heads.tolist(), ids.tolist()):
                if head != h or id_ != tag:
                    break
                k += 1
            break
        return k

    def close(self) -> None:
        """Unmap and stop polling; idempotent.  Leaves the map open."""
        self._open = False
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        for name in ("_cons", "_prod", "_hdr", "_tags", "_data"):
            view = self.__dict__.pop(name, None)
            if view is not None:
                view.release()
        for mm in (self.__dict__.pop("_cons_mm", None), self.__dict__.pop("_prod_mm", None)):
            if mm is not None:
                try:
                    mm.close()
                except BufferError:
                    raise BufferError("a record memoryview outlived its callback; "
                                      "copy records with bytes(view) to keep them") from None

    def __enter__(self) -> RingBuffer:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
