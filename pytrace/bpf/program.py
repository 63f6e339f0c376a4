"""Loading BPF programs, running them on test input, and asking about them.

This module owns BPF_PROG_LOAD (with the verifier log and its retry rules),
BPF_PROG_TEST_RUN and BPF_OBJ_GET_INFO_BY_FD for programs.  A load failure
becomes a ``VerifierError`` carrying the log and, when the log names one, the
index of the instruction the verifier stopped at, so the compiler can map it
back to the script.
"""

from __future__ import annotations

import ctypes
import errno
import re

from ..records import dataclass
from .syscalls import (
    BpfCmd,
    BpfError,
    BpfPermissionError,
    BpfProgInfo,
    InfoAttr,
    ProgLoadAttr,
    ProgType,
    TestRunAttr,
    bpf,
    bpf_raw,
    sanitize_name,
)

INSN_SIZE = 8
# BPF_COMPLEXITY_LIMIT_INSNS: the most instructions a privileged program may have.
MAX_INSNS = 1_000_000
# The kernel caps log_size at UINT_MAX >> 2 (kernel/bpf/log.c); we stop
# growing the buffer well before that: past this size only the tail matters.
_MAX_LOG_SIZE = 16 << 20
# libbpf retries PROG_LOAD on EAGAIN (the verifier can be interrupted by a
# signal and asks to be called again); so do we, a bounded number of times.
_EAGAIN_RETRIES = 5
_TEST_RUN_ON_CPU = 1  # BPF_F_TEST_RUN_ON_CPU

# "12: (85) call bpf_map_lookup_elem#1": an instruction the verifier printed.
_INSN_LINE = re.compile(r"^(\d+): \([0-9a-f]{2}\)", re.MULTILINE)
# Errors that name the instruction they are about, which is not always the
# last one printed: an infinite loop is detected when the walk comes back
# to the loop's head (kernel/bpf/verifier.c, is_state_visited); the CFG
# check runs before any instruction is printed (check_cfg, push_insn).
_ERROR_INSN = re.compile(r"^(?:infinite loop detected at insn|back-edge from insn|"
                         r"jump out of range from insn|unreachable insn) (\d+)")
# Lines that follow the error and are not the error: statistics, and the
# two states compared when an infinite loop is detected.
_TRAILER = ("processed ", "verification time", "stack depth", "max_states_per_insn",
            "peak_states", "mark_read", "Func#", "func#", "cur state:", "old state:")


class VerifierError(BpfError):
    """BPF_PROG_LOAD failed.  ``log`` is the verifier's text (possibly only
    its tail, see ``truncated``), ``insn_index`` the instruction it stopped
    at (None if the log does not say) and ``reason`` the error line."""

    def __init__(self, err: int, log: str, name: str = "", *, truncated: bool = False) -> None:
        self.log: str = log
        self.truncated: bool = truncated
        self.insn_index: int | None = parse_insn_index(log)
        self.reason: str = error_line(log)
        what = f"program {name!r}" if name else "program"
        if self.reason:
            at = f" at insn {self.insn_index}" if self.insn_index is not None else ""
            detail = f"the verifier rejected {what}{at}: {self.reason}"
        else:
            detail = f"the kernel refused to load {what}"
        super().__init__(err, "BPF_PROG_LOAD", detail)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild_verifier_error, (self.errno, self.log, self.truncated, self.message))


def _rebuild_verifier_error(err: int, log: str, truncated: bool, message: str) -> VerifierError:
    e = VerifierError(err, log, truncated=truncated)
    e.message = message
    return e


def parse_insn_index(log: str) -> int | None:
    """The index of the instruction the verifier rejected: the one its
    error names, else the last one it printed (``N: (op)``), which it was
    checking when it gave up."""
    named = _ERROR_INSN.match(error_line(log))
    if named:
        return int(named.group(1))
    last = None
    for last in _INSN_LINE.finditer(log):
        pass
    return int(last.group(1)) if last else None


def error_line(log: str) -> str:
    """The verifier's complaint: the last line that is not a statistic."""
    for line in reversed(log.strip().splitlines()):
        line = line.strip()
        if line and not line.startswith(_TRAILER):
            return line
    return ""


def load_program(prog_type: int, insns: bytes, *, license: str = "GPL", name: str = "",
                 expected_attach_type: int = 0, attach_btf_id: int = 0, log_level: int = 1,
                 log_size: int = 1 << 20, kern_version: int = 0, prog_flags: int = 0,
                 btf_fd: int = 0, func_info: bytes = b"") -> int:
    """BPF_PROG_LOAD; returns the program fd.

    The first attempt runs without a log, like libbpf: a level-1 log costs
    ~10x the verification time of a big program (138 ms vs 12 ms for 30k
    insns here), and a successful load has no use for it.  Only when that
    fails is the program loaded again with ``log_level`` (0: never) and a
    ``log_size`` buffer, grown as needed, to explain the failure.

    Raises ``VerifierError`` (with the log) when the kernel refuses the
    program, or ``BpfPermissionError`` for EPERM with an empty log: the
    refusal came before verification (no privileges, or a program kind the
    kernel forbids, like fentry on this project's test kernel).

    ``btf_fd`` and ``func_info`` (8-byte ``bpf_func_info`` records, see
    progbtf.py) describe the program's functions; a program with a callback
    subprogram needs them.
    """
    if len(insns) % INSN_SIZE or not insns:
        raise ValueError(f"instructions must be a non-empty multiple of 8 bytes, not {len(insns)}")
    if len(insns) // INSN_SIZE > MAX_INSNS:
        raise ValueError(f"{len(insns) // INSN_SIZE} instructions exceed the kernel's {MAX_INSNS}")
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    finfo = ctypes.create_string_buffer(func_info, len(func_info)) if func_info else None

    def attempt(level: int, size: int) -> tuple[int, int, str, int]:
        log = ctypes.create_string_buffer(size) if level and size else None
        attr = ProgLoadAttr(
            prog_type=prog_type, insn_cnt=len(insns) // INSN_SIZE, insns=ctypes.addressof(code),
            license=ctypes.addressof(lic), log_level=level if log is not None else 0,
            log_size=size if log is not None else 0,
            log_buf=ctypes.addressof(log) if log is not None else 0,
            kern_version=kern_version, prog_flags=prog_flags, prog_name=sanitize_name(name),
            expected_attach_type=expected_attach_type, attach_btf_id=attach_btf_id,
            prog_btf_fd=btf_fd if finfo is not None else 0,
            func_info_rec_size=8 if finfo is not None else 0,
            func_info=ctypes.addressof(finfo) if finfo is not None else 0,
            func_info_cnt=len(func_info) // 8,
        )
        for _ in range(_EAGAIN_RETRIES):
            fd, err = bpf_raw(BpfCmd.PROG_LOAD, attr)
            if err != errno.EAGAIN:
                break
        text = log.value.decode(errors="replace") if log is not None else ""
        return fd, err, text, attr.log_true_size

    fd, err, text, _ = attempt(0, 0)
    if fd >= 0:
        return fd
    truncated = False
    size = log_size
    while log_level and size:
        fd, log_err, text, true_size = attempt(log_level, size)
        if fd >= 0:
            return fd  # the first failure was transient
        if log_err != errno.ENOSPC:
            break
        # Since Linux 6.4 a truncated log fails the load with ENOSPC in place
        # of the real verdict (kernel/bpf/log.c, bpf_vlog_finalize); that is
        # why the errno we report is the log-less attempt's.  log_true_size
        # says how big the log had to be; older kernels leave it 0.
        need = true_size or size * 4
        if need <= size or need > _MAX_LOG_SIZE:
            # Too big to keep: the rotating log holds its tail, which has the error.
            truncated = True
            break
        size = need
    if err == errno.EPERM and not text:
        raise BpfPermissionError(
            err, "BPF_PROG_LOAD",
            f"the kernel refused {prog_type_name(prog_type)} program {name!r} before verifying it",
            "run as root; some kernels forbid program kinds (fentry, LSM) outright")
    raise VerifierError(err, text, name, truncated=truncated)


def prog_type_name(prog_type: int) -> str:
    try:
        return ProgType(prog_type).name.lower()
    except ValueError:
        return f"type-{prog_type}"


def test_run(prog_fd: int, ctx: bytes = b"", data: bytes = b"", *, repeat: int = 0,
             cpu: int | None = None) -> int:
    """BPF_PROG_TEST_RUN; returns the program's return value.  Raw-tracepoint
    programs take ``ctx`` (the u64 args) and need ``repeat=0`` and no
    ``data`` (net/bpf/test_run.c, bpf_prog_test_run_raw_tp: else EINVAL);
    they alone may run on a chosen ``cpu`` (BPF_F_TEST_RUN_ON_CPU, 5.10)."""
    cbuf = ctypes.create_string_buffer(ctx, len(ctx)) if ctx else None
    dbuf = ctypes.create_string_buffer(data, len(data)) if data else None
    attr = TestRunAttr(prog_fd=prog_fd, repeat=repeat,
                       ctx_size_in=len(ctx), ctx_in=ctypes.addressof(cbuf) if cbuf is not None else 0,
                       data_size_in=len(data),
                       data_in=ctypes.addressof(dbuf) if dbuf is not None else 0,
                       flags=_TEST_RUN_ON_CPU if cpu is not None else 0, cpu=cpu or 0)
    bpf(BpfCmd.PROG_TEST_RUN, attr, f"test run of program fd {prog_fd} failed")
    return int(attr.retval)


test_run.__test__ = False  # type: ignore[attr-defined]  # a library function, not a pytest test


@dataclass(frozen=True)
class ProgInfo:
    """What BPF_OBJ_GET_INFO_BY_FD says about a program.  ``run_time_ns`` and
    ``run_cnt`` stay 0 unless BPF stats are enabled (sysctl
    kernel.bpf_stats_enabled or BPF_ENABLE_STATS)."""

    id: int
    type: int
    name: str
    tag: str
    xlated_len: int
    jited_len: int
    run_time_ns: int
    run_cnt: int
    verified_insns: int
    map_ids: tuple[int, ...]


def prog_info(fd: int) -> ProgInfo:
    """BPF_OBJ_GET_INFO_BY_FD for a program fd (twice when it uses maps: the
    first call says how many map ids to make room for)."""
    info = BpfProgInfo()
    attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(BpfCmd.OBJ_GET_INFO_BY_FD, attr, f"fd {fd} is not a BPF program")
    map_ids: tuple[int, ...] = ()
    if info.nr_map_ids:
        ids = (ctypes.c_uint32 * info.nr_map_ids)()
        again = BpfProgInfo(nr_map_ids=info.nr_map_ids, map_ids=ctypes.addressof(ids))
        attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(again), info=ctypes.addressof(again))
        bpf(BpfCmd.OBJ_GET_INFO_BY_FD, attr, f"fd {fd} is not a BPF program")
        map_ids = tuple(ids[: min(again.nr_map_ids, len(ids))])
    return ProgInfo(
        id=info.id, type=info.type, name=info.name.decode(errors="replace"),
        tag=bytes(info.tag).hex(), xlated_len=info.xlated_prog_len, jited_len=info.jited_prog_len,
        run_time_ns=info.run_time_ns, run_cnt=info.run_cnt, verified_insns=info.verified_insns,
        map_ids=map_ids,
    )


def xlated_insn_count(fd: int) -> int:
    """Instructions after the verifier's rewrites (what ``bpftool prog`` counts)."""
    return prog_info(fd).xlated_len // INSN_SIZE
