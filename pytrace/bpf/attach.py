"""Attaching loaded programs to events, and detaching them again.

This module owns the ways a program gets to run on this kernel family:
perf events carrying a program (tracepoints, software/hardware sampling,
uprobes, hardware breakpoints: ``perf_event_open`` + ``PERF_EVENT_IOC_SET_BPF``
+ ``ENABLE``), raw tracepoints (BPF_RAW_TRACEPOINT_OPEN, which also
attaches tp_btf programs) and iterators (BPF_LINK_CREATE, then one
BPF_ITER_CREATE file per run, or a pin in bpffs).  Each returns an ``Attachment`` that owns its fd;
closing it detaches.  A function that fails half-way closes what it opened.

Detaching a perf-event tracepoint blocks in close(2) for ~75 ms here
(35-550 ms under load): releasing the event waits for RCU grace periods.
``close_all`` closes those concurrently, which halves the total but cannot
do better: kernel/trace/trace_event_perf.c ``perf_trace_destroy`` calls
``tracepoint_synchronize_unregister`` with ``event_mutex`` held, so that
grace period is taken one event at a time whatever we do (measured: 20
syscall tracepoints, 1.5 s serial, 0.7-0.8 s concurrent).  raw_tp links
detach in well under a millisecond; prefer them for many events.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from .syscalls import (
    FdOwner,
    HW_BREAKPOINT_R,
    HW_BREAKPOINT_RW,
    HW_BREAKPOINT_W,
    HW_BREAKPOINT_X,
    PERF_ATTR_FLAG_FREQ,
    PERF_EVENT_IOC_ENABLE,
    PERF_EVENT_IOC_SET_BPF,
    AttachType,
    BpfCmd,
    BpfError,
    IterCreateAttr,
    LinkCreateAttr,
    ObjPinAttr,
    PerfEventAttr,
    PerfType,
    RawTracepointAttr,
    bpf,
    bpf_raw,
    close_fd,
    ioctl,
    make_error,
    perf_event_open,
)

_UPROBE_PMU = "/sys/bus/event_source/devices/uprobe"
_KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"
_FORMAT_BITS = re.compile(r"config:(\d+)(?:-(\d+))?")
# Most threads close_all uses: the part of each close outside event_mutex
# overlaps, the part inside does not, so more threads stop helping quickly.
_MAX_CLOSE_THREADS = 64


class Attachment(FdOwner):
    """An attached program: owns ``fd`` (a perf event or a BPF link); closing
    it detaches the program.  ``close()`` is idempotent and thread-safe."""

    kind = "attachment"
    slow_close = False  # whether close() waits for an RCU grace period

    def __init__(self, fd: int, target: str) -> None:
        self.fd: int = fd
        self.target: str = target
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            fd, self.fd = self.fd, -1
        if fd >= 0:
            close_fd(fd)

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fd={self.fd}, {self.kind} {self.target})"


class PerfEventAttachment(Attachment):
    """A perf event with a program attached (sampling, software, hardware,
    uprobe or breakpoint events)."""

    kind = "perf event"


class TracepointAttachment(PerfEventAttachment):
    """A ``PERF_TYPE_TRACEPOINT`` event; its close waits for RCU."""

    kind = "tracepoint"
    slow_close = True


class RawTracepointAttachment(Attachment):
    """A BPF link from BPF_RAW_TRACEPOINT_OPEN (raw_tp or tp_btf); detaches in
    well under a millisecond."""

    kind = "raw tracepoint"


def close_all(attachments: Iterable[Attachment]) -> None:
    """Close every attachment; the slow (tracepoint) ones concurrently in
    threads so their RCU grace periods overlap instead of adding up."""
    slow: list[Attachment] = []
    for a in attachments:
        if a.slow_close and not a.closed:
            slow.append(a)
        else:
            a.close()
    if len(slow) <= 1:
        for a in slow:
            a.close()
        return
    # os.close releases the GIL, so the threads really block in parallel.
    with ThreadPoolExecutor(max_workers=min(len(slow), _MAX_CLOSE_THREADS),
                            thread_name_prefix="pytrace-detach") as pool:
        list(pool.map(Attachment.close, slow))


# --- perf events -----------------------------------------------------------


def _open_and_attach(prog_fd: int, attr: PerfEventAttr, pid: int, cpu: int, what: str,
                     cls: type[PerfEventAttachment]) -> PerfEventAttachment:
    """perf_event_open + SET_BPF + ENABLE, closing the event on any failure."""
    try:
        fd = perf_event_open(attr, pid, cpu, detail=f"cannot open perf event for {what}")
    except BpfError as exc:
        raise _perf_open_error(exc, attr, what) from None
    try:
        try:
            ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd, "PERF_EVENT_IOC_SET_BPF",
                  f"cannot attach program fd {prog_fd} to {what}")
        except BpfError as exc:
            raise _set_bpf_error(exc, prog_fd, what) from None
        ioctl(fd, PERF_EVENT_IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE", f"cannot enable {what}")
    except BaseException:
        close_fd(fd)
        raise
    return cls(fd, what)


def _perf_open_error(exc: BpfError, attr: PerfEventAttr, what: str) -> BpfError:
    err = exc.errno
    if err == errno.ENOENT:
        if attr.type == PerfType.HARDWARE:
            detail = f"no hardware PMU counts {what} here (VMs often have none); use a software event"
        else:
            detail = f"the kernel has no event for {what}"
    elif err in (errno.EACCES, errno.EPERM):
        detail = f"not permitted to open a perf event for {what}"
    elif err == errno.EOPNOTSUPP:
        detail = f"{what} cannot sample (its PMU has no interrupt); use a software event"
    elif err == errno.EINVAL:
        detail = f"the kernel rejected the perf event attributes for {what}"
    elif err == errno.ENODEV:
        detail = f"no such PMU or CPU for {what}"
    elif err == errno.ESRCH:
        detail = f"no process to trace for {what}"
    elif err == errno.ENOSPC:
        detail = f"no free hardware slot for {what} (all debug registers in use?)"
    else:
        return exc
    return make_error(err, exc.cmd, detail)


def _set_bpf_error(exc: BpfError, prog_fd: int, what: str) -> BpfError:
    err = exc.errno
    if err == errno.EEXIST:
        detail = f"program fd {prog_fd} is already attached to {what}"
    elif err == errno.EINVAL:
        detail = f"program fd {prog_fd} has the wrong program type for {what}"
    elif err == errno.EBADF:
        detail = f"fd {prog_fd} is not a BPF program"
    elif err == errno.EPERM:
        detail = f"not permitted to attach a program to {what}"
    else:
        return exc
    return make_error(err, exc.cmd, detail)


def tracepoint_id(tracefs_root: str, category: str, event: str) -> int:
    """The perf id of ``category:event`` from tracefs."""
    if "/" in category + event or category in ("", ".", "..") or event in ("", ".", ".."):
        raise ValueError(f"not a tracepoint name: {category}:{event}")
    path = os.path.join(tracefs_root, "events", category, event, "id")
    try:
        with open(path, encoding="ascii") as fh:
            return int(fh.read())
    except (FileNotFoundError, NotADirectoryError):
        raise make_error(errno.ENOENT, "perf_event_open",
                         f"tracepoint {category}:{event} does not exist (no {path})") from None
    except PermissionError:
        raise make_error(errno.EACCES, "perf_event_open",
                         f"cannot read {path}: tracing needs root") from None


def attach_tracepoint(prog_fd: int, category: str, event: str,
                      tracefs_root: str | None = None) -> TracepointAttachment:
    """Attach a TRACEPOINT program to ``category:event``.  One event with
    ``pid=-1, cpu=0`` is enough: the program is attached to the tracepoint
    itself and runs on every CPU (kernel/trace/trace_event_perf.c)."""
    if tracefs_root is None:
        from ..kernel.tracefs import tracefs_root as find_tracefs

        tracefs_root = find_tracefs()
    tp_id = tracepoint_id(tracefs_root, category, event)
    attr = PerfEventAttr(type=PerfType.TRACEPOINT, config=tp_id, sample_period=1, wakeup_events=1)
    att = _open_and_attach(prog_fd, attr, -1, 0, f"tracepoint {category}:{event}", TracepointAttachment)
    assert isinstance(att, TracepointAttachment)
    return att


def attach_perf_event(prog_fd: int, *, type: int, config: int, sample_period: int = 0,
                      sample_freq: int = 0, cpu: int, pid: int = -1) -> PerfEventAttachment:
    """Attach a PERF_EVENT program to one sampling event on one CPU (the
    caller loops over ``online_cpus()``).  Give ``sample_period`` (events,
    or nanoseconds for the clock events) or ``sample_freq`` (Hz)."""
    if bool(sample_period) == bool(sample_freq):
        raise ValueError("give exactly one of sample_period and sample_freq")
    attr = PerfEventAttr(type=type, config=config, sample_period=sample_period or sample_freq,
                         flags=PERF_ATTR_FLAG_FREQ if sample_freq else 0, wakeup_events=1)
    rate = f"{sample_freq} Hz" if sample_freq else f"every {sample_period}"
    what = f"perf event type {type} config {config} ({rate}) on CPU {cpu}"
    return _open_and_attach(prog_fd, attr, pid, cpu, what, PerfEventAttachment)


def _pmu_type(pmu_dir: str, name: str) -> int:
    try:
        with open(os.path.join(pmu_dir, "type"), encoding="ascii") as fh:
            return int(fh.read())
    except FileNotFoundError:
        raise make_error(errno.ENOENT, "perf_event_open",
                         f"the kernel has no {name} PMU (no {pmu_dir}/type)") from None


def _format_shift(pmu_dir: str, field: str) -> int | None:
    """The first bit of ``format/<field>`` (``config:0`` or ``config:32-63``)."""
    try:
        with open(os.path.join(pmu_dir, "format", field), encoding="ascii") as fh:
            m = _FORMAT_BITS.fullmatch(fh.read().strip())
    except FileNotFoundError:
        return None
    return int(m.group(1)) if m else None


def attach_uprobe(prog_fd: int, path: str, offset: int, *, retprobe: bool = False, pid: int = -1,
                  ref_ctr_offset: int = 0) -> PerfEventAttachment:
    """Attach a KPROBE-type program to a uprobe (or uretprobe) at file offset
    ``offset`` of ``path``, through the uprobe PMU (Linux 4.17).  ``pid=-1``
    traces every process that maps the file."""
    pmu_type = _pmu_type(_UPROBE_PMU, "uprobe")
    config = 0
    if retprobe:
        bit = _format_shift(_UPROBE_PMU, "retprobe")
        if bit is None:
            raise make_error(errno.ENOENT, "perf_event_open",
                             f"the uprobe PMU has no retprobe format (no {_UPROBE_PMU}/format/retprobe)")
        config |= 1 << bit
    if ref_ctr_offset:
        shift = _format_shift(_UPROBE_PMU, "ref_ctr_offset")
        if shift is None:
            raise make_error(errno.ENOENT, "perf_event_open",
                             "this kernel's uprobe PMU has no ref_ctr_offset (USDT semaphores need 4.20)")
        config |= ref_ctr_offset << shift
    if not os.path.exists(path):
        raise make_error(errno.ENOENT, "perf_event_open", f"no such file for a uprobe: {path}")
    cpath = ctypes.create_string_buffer(os.fsencode(path))  # alive across the call
    attr = PerfEventAttr(type=pmu_type, config=config, config1=ctypes.addressof(cpath),
                         config2=offset, sample_period=1, wakeup_events=1)
    what = f"{'uretprobe' if retprobe else 'uprobe'} {path}:{offset:#x}"
    # A process-wide event takes cpu=-1; a system-wide one needs a CPU, and
    # cpu 0 suffices because the program runs from the probe handler on any CPU.
    return _open_and_attach(prog_fd, attr, pid, -1 if pid >= 0 else 0, what, PerfEventAttachment)


def attach_kprobe(prog_fd: int, func: str | None, offset: int = 0, *, retprobe: bool = False,
                  address: int | None = None) -> PerfEventAttachment:
    """Attach a KPROBE program to a kprobe (or kretprobe) on kernel function
    ``func`` + ``offset``, or at ``address``, through the kprobe PMU (Linux
    4.17): config1 points at the name (0 for an address), config2 holds the
    offset (or the address)."""
    pmu_type = _pmu_type(_KPROBE_PMU, "kprobe")
    config = 0
    if retprobe:
        bit = _format_shift(_KPROBE_PMU, "retprobe")
        if bit is None:
            raise make_error(errno.ENOENT, "perf_event_open",
                             f"the kprobe PMU has no retprobe format (no {_KPROBE_PMU}/format/retprobe)")
        config |= 1 << bit
    cname = ctypes.create_string_buffer(func.encode()) if func else None  # alive across the call
    attr = PerfEventAttr(type=pmu_type, config=config, config1=ctypes.addressof(cname) if cname else 0,
                         config2=address if address is not None else offset, sample_period=1, wakeup_events=1)
    where = f"{address:#x}" if address is not None else (func or "") + (f"+{offset}" if offset else "")
    what = f"{'kretprobe' if retprobe else 'kprobe'} {where}"
    return _open_and_attach(prog_fd, attr, -1, 0, what, PerfEventAttachment)


_BP_MODES = {"r": HW_BREAKPOINT_R, "w": HW_BREAKPOINT_W, "rw": HW_BREAKPOINT_RW,
             "wr": HW_BREAKPOINT_RW, "x": HW_BREAKPOINT_X}


def attach_breakpoint(prog_fd: int, addr: int, length: int, mode: str | int, pid: int = -1,
                      cpu: int = -1) -> PerfEventAttachment:
    """Attach a PERF_EVENT program to a hardware breakpoint (watchpoint) on
    ``length`` bytes at ``addr``; ``mode`` is "r", "w", "rw", "x" or an
    HW_BREAKPOINT_* value.  x86 cannot watch reads alone (use "rw")."""
    bp_type = _BP_MODES.get(mode.lower()) if isinstance(mode, str) else mode
    if bp_type is None:
        raise ValueError(f"breakpoint mode must be r, w, rw or x, not {mode!r}")
    if length not in (1, 2, 4, 8):
        raise ValueError(f"breakpoint length must be 1, 2, 4 or 8, not {length}")
    if pid < 0 and cpu < 0:
        raise ValueError("a breakpoint needs a pid, a cpu, or both")
    attr = PerfEventAttr(type=PerfType.BREAKPOINT, bp_type=bp_type, config1=addr,
                         config2=length, sample_period=1, wakeup_events=1)
    what = f"{length}-byte breakpoint at {addr:#x} (mode {mode})"
    return _open_and_attach(prog_fd, attr, pid, cpu, what, PerfEventAttachment)


# --- raw tracepoints ---------------------------------------------------------


def attach_raw_tracepoint(prog_fd: int, name: str | None) -> RawTracepointAttachment:
    """BPF_RAW_TRACEPOINT_OPEN: attach a RAW_TRACEPOINT program to ``name``
    (e.g. "sys_enter"), or a tp_btf program (``name=None``: the target was
    fixed at load time by ``attach_btf_id``)."""
    cname = ctypes.create_string_buffer(name.encode()) if name is not None else None
    attr = RawTracepointAttr(name=ctypes.addressof(cname) if cname is not None else 0,
                             prog_fd=prog_fd)
    what = f"raw tracepoint {name}" if name is not None else "its BTF tracepoint"
    try:
        fd = bpf(BpfCmd.RAW_TRACEPOINT_OPEN, attr, f"cannot attach program fd {prog_fd} to {what}")
    except BpfError as exc:
        if exc.errno == errno.ENOENT:
            raise make_error(exc.errno, exc.cmd, f"no raw tracepoint named {name!r}") from None
        if exc.errno == errno.EINVAL:
            raise make_error(exc.errno, exc.cmd,
                             f"program fd {prog_fd} cannot attach to {what} "
                             "(a raw_tp program needs a name, a tp_btf program none)") from None
        raise
    return RawTracepointAttachment(fd, name or "(tp_btf)")


# --- iterators -----------------------------------------------------------------


class IterLinkAttachment(Attachment):
    """A BPF_TRACE_ITER link (kernel 5.8): the program is bound to its
    iterator; nothing runs until an iterator file made from the link
    (``iter_create``) is read."""

    kind = "iterator link"

    def __init__(self, fd: int, target: str, pin: str | None = None) -> None:
        super().__init__(fd, target)
        self.pin: str | None = pin  # where to pin it instead of reading it


def attach_iter(prog_fd: int, iterator: str, target: str | None = None,
                pin: str | None = None) -> IterLinkAttachment:
    """BPF_LINK_CREATE for an iterator program (loaded with
    expected_attach_type BPF_TRACE_ITER and the BTF id of
    ``bpf_iter_<iterator>``).  No ``iter_info``: task iterators then walk
    every task of the caller's pid namespace, the others everything they
    cover; the map-element iterators need a map there and fail with EBADF."""
    attr = LinkCreateAttr(prog_fd=prog_fd, attach_type=AttachType.TRACE_ITER)
    try:
        fd = bpf(BpfCmd.LINK_CREATE, attr, f"cannot create the link of iterator {iterator}")
    except BpfError as exc:
        if exc.errno in (errno.EBADF, errno.EINVAL):
            raise make_error(exc.errno, exc.cmd, f"the kernel refuses a link to iterator {iterator} "
                             "without a target") from None
        raise
    return IterLinkAttachment(fd, target or f"iter:{iterator}", pin)


def iter_create(link_fd: int) -> int:
    """BPF_ITER_CREATE: a new, independent run of an iterator link, as a
    read-only file descriptor (O_CLOEXEC) the caller closes."""
    return bpf(BpfCmd.ITER_CREATE, IterCreateAttr(link_fd=link_fd), "cannot start the iterator")


def pin_object(fd: int, path: str) -> None:
    """BPF_OBJ_PIN: keep the object of ``fd`` alive at ``path`` in a BPF file
    system (it stays until the file is removed).  A failure says why in
    terms of the path."""
    cpath = ctypes.create_string_buffer(os.fsencode(path))  # alive across the call
    attr = ObjPinAttr(pathname=ctypes.addressof(cpath), bpf_fd=fd)
    ret, err = bpf_raw(BpfCmd.OBJ_PIN, attr)
    if ret >= 0:
        return
    parent = os.path.dirname(path) or "."
    if err == errno.EEXIST:
        detail = f"{path} already exists (remove it first)"
    elif not os.path.isdir(parent):
        detail = f"the directory {parent} does not exist"
    elif err in (errno.ENOENT, errno.EPERM, errno.EACCES):
        # kernel/bpf/inode.c pins only into a bpf file system's directories.
        detail = f"{parent} is not in a BPF file system (mount -t bpf bpf {parent})"
    else:
        detail = f"cannot pin at {path}"
    raise make_error(err, "BPF_OBJ_PIN", detail)
