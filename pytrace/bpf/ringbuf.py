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
"""

from __future__ import annotations

import mmap
import select
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
_LEN_MASK = ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT) & 0xFFFFFFFF


class RingBuffer:
    """Consume records of one ring-buffer map.

    ``callback(view)`` gets a read-only memoryview of each record's payload.
    The view is only valid during the call: the kernel may reuse the space
    as soon as ``poll``/``drain`` returns, and a view kept alive past
    ``close()`` makes close fail.  Copy with ``bytes(view)`` to keep it.
    The map stays owned by the caller.
    """

    def __init__(self, ring: BpfMap, callback: Callback | None = None) -> None:
        if ring.map_type != MapType.RINGBUF:
            raise ValueError(f"map {ring.name!r} is not a ring buffer")
        size = ring.max_entries
        self.map: BpfMap = ring
        self.callback: Callback | None = callback
        self._mask = size - 1
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
        self._cons = memoryview(self._cons_mm).cast("Q")
        prod = memoryview(self._prod_mm)
        self._prod = prod[:8].cast("Q")
        self._data = prod[PAGE_SIZE:]
        self._hdr = self._data.cast("I")  # record headers are 8-aligned: index off >> 2
        prod.release()
        try:
            self._epoll = select.epoll()
            self._epoll.register(ring.fd, select.EPOLLIN)
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        """The map fd; readable (EPOLLIN) while records are pending, so it can
        join the caller's own epoll set."""
        return self.map.fd

    def pending_bytes(self) -> int:
        """Bytes produced and not yet consumed (0 after ``close``)."""
        if self._epoll is None:
            return 0
        return self._prod[0] - self._cons[0]

    def poll(self, timeout: float | None = None, limit: int | None = None) -> int:
        """Wait up to ``timeout`` SECONDS (None: forever; 0: not at all) for
        records, then consume all available; returns how many were passed to
        the callback.  (``epoll.poll`` takes seconds; milliseconds there
        would mean second-long stalls.)"""
        if self._epoll is None:
            raise ValueError("ring buffer is closed")
        if self._prod[0] == self._cons[0]:
            self._epoll.poll(-1 if timeout is None else timeout, 1)
        return self.drain(limit)

    def drain(self, limit: int | None = None) -> int:
        """Consume every committed record without waiting (at most ``limit``
        when given, so a caller facing a flood still gets control back to
        notice Ctrl-C or exit()); returns the count."""
        cb = self.callback
        if cb is None:
            raise ValueError("RingBuffer.callback is not set")
        if self._epoll is None:
            raise ValueError("ring buffer is closed")
        hdr, data, mask = self._hdr, self._data, self._mask
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
                    # Advance before the callback, as libbpf does: a record
                    # whose callback raised is consumed, not redelivered.
                    cons += (n + pad) & ~7
                    if not h & discard:
                        start = off + hdr_sz
                        count += 1
                        cb(data[start:start + n])
                cons_view[0] = cons  # release the space once per batch
                if prod < 0:
                    break
        finally:
            cons_view[0] = cons
        return count

    def close(self) -> None:
        """Unmap and stop polling; idempotent.  Leaves the map open."""
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        for name in ("_cons", "_prod", "_hdr", "_data"):
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
