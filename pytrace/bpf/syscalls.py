"""Raw ``bpf(2)``, ``perf_event_open(2)`` and ``ioctl(2)`` through ctypes.

This module owns the kernel ABI: system-call numbers, the ``union bpf_attr``
variants and ``struct perf_event_attr`` as ctypes structures, the UAPI
constants (commands, program/map/attach types, flags, perf types and ioctls),
the error type every other ``pytrace.bpf`` module raises, and the CPU counts
read from sysfs.  It holds no state beyond the prototyped libc entry points,
which are created once at import and never changed.

Attr structures are declared only as far as pytrace uses them: the kernel
accepts a shorter attr and treats the missing tail as zero (bpf(2):
``bpf_check_uarg_tail_zero``; perf: ``attr.size`` versioning), so a prefix is
a valid call on every kernel that knows the fields we fill in.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
from enum import IntEnum

from ..errors import EnvironmentProblem

# --- system-call numbers ---------------------------------------------------

# (bpf, perf_event_open) per architecture, from the kernel's syscall tables.
_SYSCALL_NUMBERS: dict[str, tuple[int, int]] = {
    "x86_64": (321, 298),
    "aarch64": (280, 241),
    "riscv64": (280, 241),
    "ppc64le": (361, 319),
    "s390x": (351, 331),
}
# os.uname() rather than platform.machine(): importing platform costs ~4 ms of start-up.
NR_BPF, NR_PERF_EVENT_OPEN = _SYSCALL_NUMBERS.get(os.uname().machine, (321, 298))

PAGE_SIZE: int = os.sysconf("SC_PAGE_SIZE")

# --- constants ---------------------------------------------------------------


class BpfCmd(IntEnum):
    """``enum bpf_cmd`` (include/uapi/linux/bpf.h)."""

    MAP_CREATE = 0
    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    MAP_GET_NEXT_KEY = 4
    PROG_LOAD = 5
    OBJ_PIN = 6
    OBJ_GET = 7
    PROG_ATTACH = 8
    PROG_DETACH = 9
    PROG_TEST_RUN = 10
    PROG_GET_NEXT_ID = 11
    MAP_GET_NEXT_ID = 12
    PROG_GET_FD_BY_ID = 13
    MAP_GET_FD_BY_ID = 14
    OBJ_GET_INFO_BY_FD = 15
    PROG_QUERY = 16
    RAW_TRACEPOINT_OPEN = 17
    BTF_LOAD = 18
    BTF_GET_FD_BY_ID = 19
    TASK_FD_QUERY = 20
    MAP_LOOKUP_AND_DELETE_ELEM = 21
    MAP_FREEZE = 22
    BTF_GET_NEXT_ID = 23
    MAP_LOOKUP_BATCH = 24
    MAP_LOOKUP_AND_DELETE_BATCH = 25
    MAP_UPDATE_BATCH = 26
    MAP_DELETE_BATCH = 27
    LINK_CREATE = 28
    LINK_UPDATE = 29
    LINK_GET_FD_BY_ID = 30
    LINK_GET_NEXT_ID = 31
    ENABLE_STATS = 32
    ITER_CREATE = 33
    LINK_DETACH = 34
    PROG_BIND_MAP = 35


class ProgType(IntEnum):
    """``enum bpf_prog_type`` (the tracing-relevant part and its neighbours)."""

    UNSPEC = 0
    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    CGROUP_SKB = 8
    RAW_TRACEPOINT = 17
    RAW_TRACEPOINT_WRITABLE = 24
    TRACING = 26
    EXT = 28
    LSM = 29
    SYSCALL = 31


class MapType(IntEnum):
    """``enum bpf_map_type``."""

    UNSPEC = 0
    HASH = 1
    ARRAY = 2
    PROG_ARRAY = 3
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    STACK_TRACE = 7
    CGROUP_ARRAY = 8
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    LPM_TRIE = 11
    ARRAY_OF_MAPS = 12
    HASH_OF_MAPS = 13
    QUEUE = 22
    STACK = 23
    RINGBUF = 27
    TASK_STORAGE = 29
    BLOOM_FILTER = 30


PERCPU_MAP_TYPES = frozenset({MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH})
ARRAY_MAP_TYPES = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.PROG_ARRAY,
                             MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY})


class AttachType(IntEnum):
    """``enum bpf_attach_type`` (tracing part)."""

    NONE = 0
    TRACE_RAW_TP = 23
    TRACE_FENTRY = 24
    TRACE_FEXIT = 25
    MODIFY_RETURN = 26
    LSM_MAC = 27
    TRACE_ITER = 28
    PERF_EVENT = 41
    TRACE_KPROBE_MULTI = 42
    TRACE_UPROBE_MULTI = 48


# Map flags (BPF_F_* for MAP_CREATE).
BPF_F_NO_PREALLOC = 1 << 0
BPF_F_NUMA_NODE = 1 << 2
BPF_F_RDONLY = 1 << 3
BPF_F_WRONLY = 1 << 4
BPF_F_ZERO_SEED = 1 << 6
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_WRONLY_PROG = 1 << 8
BPF_F_MMAPABLE = 1 << 10

# Element flags for MAP_UPDATE_ELEM.
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_LOCK = 4

# Helper flags seen by programs.
BPF_F_USER_STACK = 1 << 8
BPF_RB_NO_WAKEUP = 1
BPF_RB_FORCE_WAKEUP = 2

# ld_imm64 src_reg values that the verifier resolves.
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_FUNC = 4  # ld_imm64 of a subprogram's address (a helper's callback), kernel 5.13

# Ring-buffer record header bits.
BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8

BPF_OBJ_NAME_LEN = 16  # includes the NUL: at most 15 visible characters


class PerfType(IntEnum):
    """``enum perf_type_id``; dynamic PMUs (uprobe) read theirs from sysfs."""

    HARDWARE = 0
    SOFTWARE = 1
    TRACEPOINT = 2
    HW_CACHE = 3
    RAW = 4
    BREAKPOINT = 5


class PerfSwConfig(IntEnum):
    """``enum perf_sw_ids``."""

    CPU_CLOCK = 0
    TASK_CLOCK = 1
    PAGE_FAULTS = 2
    CONTEXT_SWITCHES = 3
    CPU_MIGRATIONS = 4
    PAGE_FAULTS_MIN = 5
    PAGE_FAULTS_MAJ = 6
    ALIGNMENT_FAULTS = 7
    EMULATION_FAULTS = 8
    DUMMY = 9
    BPF_OUTPUT = 10


class PerfHwConfig(IntEnum):
    """``enum perf_hw_id``."""

    CPU_CYCLES = 0
    INSTRUCTIONS = 1
    CACHE_REFERENCES = 2
    CACHE_MISSES = 3
    BRANCH_INSTRUCTIONS = 4
    BRANCH_MISSES = 5
    BUS_CYCLES = 6
    STALLED_CYCLES_FRONTEND = 7
    STALLED_CYCLES_BACKEND = 8
    REF_CPU_CYCLES = 9


# perf_event_attr.flags bits (the C bitfield, LSB first on little-endian).
PERF_ATTR_FLAG_DISABLED = 1 << 0
PERF_ATTR_FLAG_INHERIT = 1 << 1
PERF_ATTR_FLAG_EXCLUDE_USER = 1 << 4
PERF_ATTR_FLAG_EXCLUDE_KERNEL = 1 << 5
PERF_ATTR_FLAG_FREQ = 1 << 10

PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_SAMPLE_RAW = 1 << 10

# hw_breakpoint bp_type values (include/uapi/linux/hw_breakpoint.h).
HW_BREAKPOINT_R = 1
HW_BREAKPOINT_W = 2
HW_BREAKPOINT_RW = 3
HW_BREAKPOINT_X = 4

# _IO('$', n) / _IOW('$', n, type) on the asm-generic ioctl layout.
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_RESET = 0x2403
PERF_EVENT_IOC_SET_BPF = 0x40042408

# --- attr layouts ------------------------------------------------------------

_u8, _u16, _u32, _u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64


class MapCreateAttr(ctypes.Structure):
    """The BPF_MAP_CREATE part of ``union bpf_attr`` (72 bytes)."""

    _fields_ = [
        ("map_type", _u32), ("key_size", _u32), ("value_size", _u32), ("max_entries", _u32),
        ("map_flags", _u32), ("inner_map_fd", _u32), ("numa_node", _u32),
        ("map_name", ctypes.c_char * BPF_OBJ_NAME_LEN), ("map_ifindex", _u32), ("btf_fd", _u32),
        ("btf_key_type_id", _u32), ("btf_value_type_id", _u32),
        ("btf_vmlinux_value_type_id", _u32), ("map_extra", _u64),
    ]


class MapElemAttr(ctypes.Structure):
    """MAP_{LOOKUP,UPDATE,DELETE}_ELEM, MAP_GET_NEXT_KEY and MAP_FREEZE (32 bytes)."""

    _fields_ = [("map_fd", _u32), ("_pad", _u32), ("key", _u64), ("value", _u64), ("flags", _u64)]


class MapBatchAttr(ctypes.Structure):
    """The MAP_*_BATCH commands (56 bytes)."""

    _fields_ = [
        ("in_batch", _u64), ("out_batch", _u64), ("keys", _u64), ("values", _u64),
        ("count", _u32), ("map_fd", _u32), ("elem_flags", _u64), ("flags", _u64),
    ]


class ProgLoadAttr(ctypes.Structure):
    """BPF_PROG_LOAD (144 bytes, up to ``log_true_size`` of Linux 6.4)."""

    _fields_ = [
        ("prog_type", _u32), ("insn_cnt", _u32), ("insns", _u64), ("license", _u64),
        ("log_level", _u32), ("log_size", _u32), ("log_buf", _u64), ("kern_version", _u32),
        ("prog_flags", _u32), ("prog_name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("prog_ifindex", _u32), ("expected_attach_type", _u32), ("prog_btf_fd", _u32),
        ("func_info_rec_size", _u32), ("func_info", _u64), ("func_info_cnt", _u32),
        ("line_info_rec_size", _u32), ("line_info", _u64), ("line_info_cnt", _u32),
        ("attach_btf_id", _u32), ("attach_prog_fd", _u32), ("core_relo_cnt", _u32),
        ("fd_array", _u64), ("core_relos", _u64), ("core_relo_rec_size", _u32),
        ("log_true_size", _u32),
    ]


class TestRunAttr(ctypes.Structure):
    """BPF_PROG_TEST_RUN (80 bytes)."""

    __test__ = False  # not a pytest class, whatever its name says
    _fields_ = [
        ("prog_fd", _u32), ("retval", _u32), ("data_size_in", _u32), ("data_size_out", _u32),
        ("data_in", _u64), ("data_out", _u64), ("repeat", _u32), ("duration", _u32),
        ("ctx_size_in", _u32), ("ctx_size_out", _u32), ("ctx_in", _u64), ("ctx_out", _u64),
        ("flags", _u32), ("cpu", _u32), ("batch_size", _u32), ("_pad", _u32),
    ]


class InfoAttr(ctypes.Structure):
    """BPF_OBJ_GET_INFO_BY_FD (16 bytes)."""

    _fields_ = [("bpf_fd", _u32), ("info_len", _u32), ("info", _u64)]


class RawTracepointAttr(ctypes.Structure):
    """BPF_RAW_TRACEPOINT_OPEN (16 bytes; the cookie of 6.10 is left out)."""

    _fields_ = [("name", _u64), ("prog_fd", _u32), ("_pad", _u32)]


class LinkCreateAttr(ctypes.Structure):
    """BPF_LINK_CREATE with the perf_event/tracing union members (32 bytes)."""

    _fields_ = [
        ("prog_fd", _u32), ("target_fd", _u32), ("attach_type", _u32), ("flags", _u32),
        ("target_btf_id_or_cookie", _u64), ("tracing_cookie", _u64),
    ]


class IterCreateAttr(ctypes.Structure):
    """BPF_ITER_CREATE (8 bytes): a new seq_file of an iterator link; each
    read(2) of it runs the link's program over the next objects."""

    _fields_ = [("link_fd", _u32), ("flags", _u32)]


class ObjPinAttr(ctypes.Structure):
    """BPF_OBJ_PIN (16 bytes; ``path_fd`` of 6.5 is left out)."""

    _fields_ = [("pathname", _u64), ("bpf_fd", _u32), ("file_flags", _u32)]


class BpfProgInfo(ctypes.Structure):
    """``struct bpf_prog_info`` up to ``attach_btf_id`` (232 bytes)."""

    _fields_ = [
        ("type", _u32), ("id", _u32), ("tag", _u8 * 8), ("jited_prog_len", _u32),
        ("xlated_prog_len", _u32), ("jited_prog_insns", _u64), ("xlated_prog_insns", _u64),
        ("load_time", _u64), ("created_by_uid", _u32), ("nr_map_ids", _u32), ("map_ids", _u64),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN), ("ifindex", _u32), ("gpl_compatible", _u32),
        ("netns_dev", _u64), ("netns_ino", _u64), ("nr_jited_ksyms", _u32),
        ("nr_jited_func_lens", _u32), ("jited_ksyms", _u64), ("jited_func_lens", _u64),
        ("btf_id", _u32), ("func_info_rec_size", _u32), ("func_info", _u64),
        ("nr_func_info", _u32), ("nr_line_info", _u32), ("line_info", _u64),
        ("jited_line_info", _u64), ("nr_jited_line_info", _u32), ("line_info_rec_size", _u32),
        ("jited_line_info_rec_size", _u32), ("nr_prog_tags", _u32), ("prog_tags", _u64),
        ("run_time_ns", _u64), ("run_cnt", _u64), ("recursion_misses", _u64),
        ("verified_insns", _u32), ("attach_btf_obj_id", _u32), ("attach_btf_id", _u32),
    ]


class BpfMapInfo(ctypes.Structure):
    """``struct bpf_map_info`` (88 bytes)."""

    _fields_ = [
        ("type", _u32), ("id", _u32), ("key_size", _u32), ("value_size", _u32),
        ("max_entries", _u32), ("map_flags", _u32), ("name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", _u32), ("btf_vmlinux_value_type_id", _u32), ("netns_dev", _u64),
        ("netns_ino", _u64), ("btf_id", _u32), ("btf_key_type_id", _u32),
        ("btf_value_type_id", _u32), ("btf_vmlinux_id", _u32), ("map_extra", _u64),
    ]


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` (PERF_ATTR_SIZE_VER8, 136 bytes).

    Unions are flattened to their first member's name: ``sample_period`` is
    also ``sample_freq``, ``config1`` is ``bp_addr``/``uprobe_path``,
    ``config2`` is ``bp_len``/``probe_offset``, ``wakeup_events`` is
    ``wakeup_watermark``.  ``flags`` is the C bitfield word.
    """

    _fields_ = [
        ("type", _u32), ("size", _u32), ("config", _u64), ("sample_period", _u64),
        ("sample_type", _u64), ("read_format", _u64), ("flags", _u64), ("wakeup_events", _u32),
        ("bp_type", _u32), ("config1", _u64), ("config2", _u64), ("branch_sample_type", _u64),
        ("sample_regs_user", _u64), ("sample_stack_user", _u32), ("clockid", ctypes.c_int32),
        ("sample_regs_intr", _u64), ("aux_watermark", _u32), ("sample_max_stack", _u16),
        ("_reserved_2", _u16), ("aux_sample_size", _u32), ("_reserved_3", _u32),
        ("sig_data", _u64), ("config3", _u64),
    ]


# --- errors --------------------------------------------------------------------


class BpfError(OSError):
    """A failed bpf/perf system call: ``errno``, the command's ``cmd`` name and
    a one-sentence ``message`` (plus an optional ``hint``) saying what failed."""

    def __init__(self, err: int, cmd: str, detail: str = "", hint: str | None = None) -> None:
        super().__init__(err, os.strerror(err))
        self.cmd: str = cmd
        self.detail: str = detail
        self.hint: str | None = hint
        name = _errno.errorcode.get(err, str(err))
        what = detail or f"{cmd} failed"
        self.message: str = f"{what} ({cmd}: {name}, {os.strerror(err)})"

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # OSError pickles from args; keep our fields across process boundaries.
        return (type(self), (self.errno, self.cmd, self.detail, self.hint))


class BpfPermissionError(BpfError, EnvironmentProblem):
    """EPERM/EACCES that no change to the script can fix: we are not root, or
    the kernel refuses the program kind outright (site policy, lockdown)."""


_PRIVILEGE_HINT = "tracing needs root (or CAP_BPF plus CAP_PERFMON): run pytrace with sudo"


def make_error(err: int, cmd: str, detail: str = "", hint: str | None = None) -> BpfError:
    """The right ``BpfError`` subclass for ``err``.  EPERM is always a
    privilege problem; EACCES is one only when we are not root (as root it
    is a verifier or PMU refusal and the caller says which)."""
    if err == _errno.EPERM or (err == _errno.EACCES and os.geteuid() != 0):
        return BpfPermissionError(err, cmd, detail, hint or _PRIVILEGE_HINT)
    return BpfError(err, cmd, detail, hint)


# --- system calls ----------------------------------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)
# Separate prototypes for the same variadic libc ``syscall``: on the ABIs we
# support, integer varargs are passed exactly like fixed arguments, and fixing
# the types keeps ctypes from truncating pointers to C int.
_bpf_syscall = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                                ctypes.c_ulong, use_errno=True)(("syscall", _LIBC))
# pid/cpu/group_fd go as long: syscall(2) reads every argument as a long,
# so a C int -1 would arrive zero-extended (the kernel happens to truncate
# it back, but nothing should rely on that).
_perf_syscall = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_long,
                                 ctypes.c_long, ctypes.c_long, ctypes.c_ulong,
                                 use_errno=True)(("syscall", _LIBC))
_ioctl = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
                          use_errno=True)(("ioctl", _LIBC))


def bpf_raw(cmd: int, attr: ctypes.Structure) -> tuple[int, int]:
    """``bpf(cmd, &attr, sizeof attr)`` as ``(result, errno)``; never raises.
    For callers that treat some errnos as answers (ENOENT from a lookup)."""
    while True:
        ret = _bpf_syscall(NR_BPF, cmd, ctypes.addressof(attr), ctypes.sizeof(attr))
        if ret >= 0:
            return ret, 0
        err = ctypes.get_errno()
        if err != _errno.EINTR:
            return ret, err


def bpf(cmd: BpfCmd, attr: ctypes.Structure, detail: str = "") -> int:
    """``bpf(2)``; raises ``BpfError`` naming ``cmd`` on failure."""
    ret, err = bpf_raw(cmd, attr)
    if ret < 0:
        raise make_error(err, f"BPF_{cmd.name}", detail)
    return ret


def perf_event_open(attr: PerfEventAttr, pid: int, cpu: int, group_fd: int = -1,
                    flags: int = PERF_FLAG_FD_CLOEXEC, detail: str = "") -> int:
    """``perf_event_open(2)``; fills in ``attr.size``; raises ``BpfError``."""
    attr.size = ctypes.sizeof(PerfEventAttr)
    while True:
        fd = _perf_syscall(NR_PERF_EVENT_OPEN, ctypes.addressof(attr), pid, cpu, group_fd, flags)
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err != _errno.EINTR:
            raise make_error(err, "perf_event_open", detail)


def ioctl(fd: int, request: int, arg: int = 0, name: str = "ioctl", detail: str = "") -> int:
    """``ioctl(fd, request, arg)`` with an integer argument; raises ``BpfError``."""
    while True:
        ret = _ioctl(fd, request, arg)
        if ret >= 0:
            return ret
        err = ctypes.get_errno()
        if err != _errno.EINTR:
            raise make_error(err, name, detail)


def close_fd(fd: int) -> None:
    """Close ``fd``, ignoring EBADF-style failures (close(2) frees the fd even
    when it reports EINTR or EIO, so retrying would close someone else's)."""
    try:
        os.close(fd)
    except OSError:
        pass


class FdOwner:
    """The lifecycle shared by every kernel object pytrace holds by file
    descriptor (maps, attachments): ``close()`` subclasses define, context
    manager use, and a ResourceWarning for one that was never closed."""

    fd: int

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, et: object, ev: object, tb: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "fd", -1) >= 0:
            import warnings
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2)
            self.close()


# --- names and CPUs ---------------------------------------------------------------


def sanitize_name(name: str) -> bytes:
    """``name`` as an object name the kernel accepts: at most 15 characters
    of ``[A-Za-z0-9_.]`` (kernel/bpf/syscall.c ``bpf_obj_name_cpy`` rejects
    anything else with EINVAL); other characters become ``_``."""
    out = "".join(c if (c.isascii() and c.isalnum()) or c in "_." else "_" for c in name)
    return out[: BPF_OBJ_NAME_LEN - 1].encode("ascii")


def parse_cpu_list(text: str) -> list[int]:
    """``"0-3,5,7-8"`` (the sysfs cpulist format) as ``[0, 1, 2, 3, 5, 7, 8]``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    return cpus


def _read_cpu_list(path: str) -> list[int]:
    try:
        with open(path, encoding="ascii") as fh:
            return parse_cpu_list(fh.read())
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read {path}: {exc.strerror}",
                                 "is /sys mounted?") from exc


def possible_cpus() -> int:
    """How many CPUs the kernel may ever bring up: the number of per-CPU
    slots in a per-CPU map value (``num_possible_cpus()``)."""
    return len(_read_cpu_list("/sys/devices/system/cpu/possible"))


def online_cpus() -> list[int]:
    """The CPUs online now: where per-CPU perf events must be opened."""
    return _read_cpu_list("/sys/devices/system/cpu/online")
