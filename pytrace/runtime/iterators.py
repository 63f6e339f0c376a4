"""Running iterator probes: read each iterator once, or pin it.

An iterator program runs while its iterator file is read: each read(2) of a
file made from its link (BPF_ITER_CREATE) runs the program over the next
objects and returns what it wrote to the seq_file, which here is event
records in the ring buffer's format (codegen/llvm/iterprint.py), handed to
the session's event handler as they come.  The run of an iterator ends when
read(2) returns 0, at exit(), or at Ctrl-C.  Iterators run in the script's
order, after BEGIN and before END, as BEGIN does once; a script with
nothing else to trace then ends (bpftrace runs an iterator and exits).

A pinned iterator (``iter:task:PIN``) is not read: its link is pinned in
bpffs, where it outlives pytrace (``cat PIN`` runs it, ``rm PIN`` removes
it), and "Program pinned to PIN" is printed as bpftrace does.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Callable

from ..errors import EnvironmentProblem

if TYPE_CHECKING:
    from ..bpf.attach import IterLinkAttachment
    from .session import Session

# Bytes asked of each read(2).  bpf_seq_read fills its 8-page (32 KiB)
# buffer with whole objects' output until it holds at least this much; an
# object whose output does not fit is rolled back and its program runs
# again in the next read(2).  Asking for a quarter of the buffer keeps that
# from happening unless one object writes more than 24 KiB, so that the
# program's map updates run once per object.
READ_SIZE = 8192


def has_iterators(session: "Session") -> bool:
    return any(spec.kind == "iter" for spec in session.specs)


def only_iterators(session: "Session") -> bool:
    """Whether nothing but BEGIN, END and iterators runs: then the run ends
    when the iterators are done."""
    return all(spec.kind in ("begin", "end", "iter") for spec in session.specs)


def run(session: "Session", write: Callable[[str], None], flush: Callable[[], None]) -> None:
    """Run (or pin) every iterator of the session, in the script's order,
    writing through the session's ``write`` and ``flush``; stops early at
    exit() or a signal (``session.stopping``).  Stops the session afterwards
    when it has nothing else to trace."""
    if not has_iterators(session):
        return
    from ..bpf.attach import IterLinkAttachment
    for att in list(session.attachments):
        if session.stopping:
            break
        if isinstance(att, IterLinkAttachment) and not att.closed:
            if att.pin:
                _pin(att, att.pin, write, flush)
            else:
                _read(session, att, flush)
    if only_iterators(session):
        session.stopping = True


def _pin(att: "IterLinkAttachment", path: str, write: Callable[[str], None], flush: Callable[[], None]) -> None:
    from ..bpf.attach import pin_object
    from ..bpf.syscalls import BpfError
    try:
        pin_object(att.fd, path)
    except BpfError as exc:
        raise EnvironmentProblem(f"cannot pin {att.target}: {exc}",
                                 "a relative pin path is under /sys/fs/bpf; an absolute one must be in a bpf "
                                 "file system too") from None
    write(f"Program pinned to {path}\n")
    flush()


def _read(session: "Session", att: "IterLinkAttachment", flush: Callable[[], None]) -> None:
    """Read one run of the iterator to its end, decoding records as they
    arrive (a record may straddle two reads)."""
    from ..bpf.attach import iter_create
    from ..bpf.syscalls import BpfError
    assert session.layout is not None and session.handler is not None
    events = session.layout.events
    handler = session.handler
    try:
        fd = iter_create(att.fd)
    except BpfError as exc:
        raise EnvironmentProblem(f"cannot run {att.target}: {exc}") from None
    pending = b""
    try:
        while not session.stopping:
            try:
                chunk = os.read(fd, READ_SIZE)
            except BlockingIOError:
                # EAGAIN: a million objects went by without output (MAX_ITER_OBJECTS);
                # the next read goes on from there.
                continue
            except OSError as exc:
                raise EnvironmentProblem(_read_error(att, exc)) from None
            if not chunk:
                break
            data = pending + chunk if pending else chunk
            view = memoryview(data)
            pos = 0
            while len(data) - pos >= 8:
                eid = int.from_bytes(view[pos:pos + 8], "little")
                if eid >= len(events):
                    raise EnvironmentProblem(f"{att.target}: the iterator's output is not pytrace's "
                                             f"(event id {eid})")
                size = events[eid].total_size
                if len(data) - pos < size:
                    break
                handler(view[pos:pos + size])
                pos += size
                if session.stopping:
                    break
            pending = data[pos:]
            handler.flush()
            flush()
    finally:
        os.close(fd)
    handler.flush()


def _read_error(att: "IterLinkAttachment", exc: OSError) -> str:
    target = att.target
    if exc.errno == errno.E2BIG:
        return (f"{target}: the output for one object is larger than the iterator's 32 KiB buffer "
                "(bpf_seq_read gives up on it)")
    return f"{target}: reading the iterator failed ({errno.errorcode.get(exc.errno or 0, exc.errno)}, {exc.strerror})"
