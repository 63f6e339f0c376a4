"""What this kernel lets pytrace do, found by trying it.

Two entry points:

* ``preflight()`` runs before anything is loaded: root, a working ``bpf()``
  (one tiny map is created and closed), the ring buffer map type and, when
  the script needs it, tracefs (mounted if it is not).  The first thing missing is raised as an
  ``EnvironmentProblem`` whose message is one sentence.
* ``probe_all()`` / ``format_report()`` are ``pytrace --info``: each program
  type is loaded (a two-instruction program), each map type created, each
  helper called from a throwaway program, tp_btf/fentry/iter loads tried
  against real BTF ids, a perf event opened, and the PMUs under
  /sys/bus/event_source/devices listed.  Nothing is attached to a live
  event, and every fd is closed before returning.

Reading files that describe features (kconfig, kernel version) is avoided
where trying is possible: a kernel can have the code and refuse to use it
(this project's test kernel refuses fentry with EPERM although its BTF has
every function), and only a try shows that.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import struct

from ..errors import EnvironmentProblem
from ..records import dataclass, field

PMU_DIR = "/sys/bus/event_source/devices"
BTF_VMLINUX = "/sys/kernel/btf/vmlinux"
LOCKDOWN = "/sys/kernel/security/lockdown"

# Helpers bpftrace's --info reports, plus the ones pytrace's code uses.
HELPERS: tuple[tuple[str, int], ...] = (
    ("probe_read", 4), ("probe_read_str", 45), ("probe_read_user", 112), ("probe_read_user_str", 114),
    ("probe_read_kernel", 113), ("probe_read_kernel_str", 115), ("get_current_cgroup_id", 80),
    ("send_signal", 109), ("override_return", 58), ("get_boot_ns", 125), ("dpath", 147),
    ("skboutput", 111), ("get_func_ip", 173), ("get_current_task_btf", 158), ("loop", 181),
    ("probe_write_user", 36), ("ringbuf_reserve", 131),
)

# What the verifier says when a helper does not exist or may not be used by
# the program type; any other refusal (bad arguments) means the helper exists.
_HELPER_MISSING = re.compile(r"invalid func|unknown func|not supported for program type|cannot use helper|"
                             r"helper call is not allowed|program of this type cannot use helper")


@dataclass
class Check:
    """One feature: ``ok`` and, when it is missing, why (an errno name or a sentence)."""

    name: str
    ok: bool
    detail: str = ""

    def render(self) -> str:
        if self.ok:
            return f"{self.name}: yes" + (f" ({self.detail})" if self.detail else "")
        return f"{self.name}: no" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Report:
    system: list[tuple[str, str]] = field(default_factory=list)
    build: list[tuple[str, str]] = field(default_factory=list)
    privileges: list[Check] = field(default_factory=list)
    helpers: list[Check] = field(default_factory=list)
    features: list[Check | tuple[str, str]] = field(default_factory=list)
    maps: list[Check] = field(default_factory=list)
    progs: list[Check] = field(default_factory=list)
    probes: list[Check] = field(default_factory=list)
    pmus: list[tuple[str, str]] = field(default_factory=list)

    def check(self, name: str) -> Check | None:
        for group in (self.privileges, self.helpers, self.maps, self.progs, self.probes):
            for c in group:
                if c.name == name:
                    return c
        for c in self.features:
            if isinstance(c, Check) and c.name == name:
                return c
        return None


# ------------------------------------------------------------------ preflight

def preflight(*, tracefs: bool = False) -> str | None:
    """Check, by trying, what every traced script needs; returns the tracefs
    root when ``tracefs`` is asked for.  Raises ``EnvironmentProblem`` (one
    sentence, no hint) for the first thing missing."""
    if os.geteuid() != 0:
        raise EnvironmentProblem("tracing needs root privileges to load BPF programs: run pytrace with sudo")
    err = _try_bpf()
    if err:
        raise EnvironmentProblem(_bpf_problem(err))
    from ..bpf.syscalls import MapType
    ok, why = try_map(MapType.RINGBUF, 0, 0, 4096)
    if not ok:
        raise EnvironmentProblem(f"this kernel has no BPF ring buffer ({why}), which pytrace's output needs "
                                 "(Linux 5.8 or newer)")
    if not tracefs:
        return None
    from .tracefs import TracefsUnavailable, tracefs_root
    try:
        root = tracefs_root()
    except TracefsUnavailable as exc:
        raise EnvironmentProblem(f"{exc.message}, so tracepoints cannot be used"
                                 + (f" ({exc.hint})" if exc.hint else "")) from None
    if not os.path.isdir(os.path.join(root, "events")):
        raise EnvironmentProblem(f"tracefs at {root} has no events directory, so tracepoints cannot be used")
    return root


def _try_bpf() -> int:
    """0 when BPF_MAP_CREATE of a one-entry array works, else the errno."""
    from ..bpf.syscalls import BpfCmd, MapCreateAttr, MapType, bpf_raw, close_fd
    attr = MapCreateAttr(map_type=MapType.ARRAY, key_size=4, value_size=4, max_entries=1)
    fd, err = bpf_raw(BpfCmd.MAP_CREATE, attr)
    if fd >= 0:
        close_fd(fd)
        return 0
    return err


def _bpf_problem(err: int) -> str:
    if err == errno.ENOSYS:
        return "this kernel has no bpf() system call (it was built without CONFIG_BPF_SYSCALL), so nothing can be traced"
    if err in (errno.EPERM, errno.EACCES):
        return ("the kernel refuses bpf() to this process even as root (a container, seccomp filter or "
                "security module blocks it), so nothing can be traced")
    return f"bpf() does not work here ({errno.errorcode.get(err, err)}: {os.strerror(err)}), so nothing can be traced"


# ------------------------------------------------------------------ --info

_TRIVIAL = None


def _trivial() -> bytes:
    global _TRIVIAL
    if _TRIVIAL is None:
        from ..bpf import insn as I
        _TRIVIAL = I.mov64_imm(I.R0, 0) + I.exit_insn()
    return _TRIVIAL


def try_load(prog_type: int, *, expected_attach_type: int = 0, attach_btf_id: int = 0,
             insns: bytes | None = None) -> tuple[bool, str]:
    """Load a program (default: ``r0 = 0; exit``) and close it: (ok, why not)."""
    from ..bpf.program import VerifierError, load_program
    from ..bpf.syscalls import BpfError, close_fd
    try:
        fd = load_program(prog_type, insns or _trivial(), name="pt_probe", log_level=1, log_size=1 << 16,
                          expected_attach_type=expected_attach_type, attach_btf_id=attach_btf_id)
    except VerifierError as exc:
        return False, exc.reason or errno.errorcode.get(exc.errno or 0, str(exc.errno))
    except BpfError as exc:
        return False, "refused with " + errno.errorcode.get(exc.errno or 0, str(exc.errno)) + " before verification"
    close_fd(fd)
    return True, ""


def try_helper(helper_id: int, prog_type: int) -> tuple[bool, str]:
    """Whether the verifier knows ``helper_id`` for ``prog_type``: calls it
    with zero arguments; a refusal about the arguments still means yes."""
    from ..bpf import insn as I
    code = b"".join(I.mov64_imm(r, 0) for r in (I.R1, I.R2, I.R3, I.R4, I.R5)) + I.call(helper_id) \
        + I.mov64_imm(I.R0, 0) + I.exit_insn()
    ok, why = try_load(prog_type, insns=code)
    if ok or not _HELPER_MISSING.search(why):
        return True, ""
    return False, why


def try_map(map_type: int, key_size: int = 4, value_size: int = 8, max_entries: int = 1) -> tuple[bool, str]:
    from ..bpf.syscalls import BpfCmd, MapCreateAttr, bpf_raw, close_fd
    attr = MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size, max_entries=max_entries)
    fd, err = bpf_raw(BpfCmd.MAP_CREATE, attr)
    if fd < 0:
        return False, errno.errorcode.get(err, str(err))
    close_fd(fd)
    return True, ""


def _try_map_batch() -> tuple[bool, str]:
    from ..bpf.syscalls import BpfCmd, MapBatchAttr, MapCreateAttr, MapType, bpf_raw, close_fd
    attr = MapCreateAttr(map_type=MapType.HASH, key_size=4, value_size=8, max_entries=4)
    fd, err = bpf_raw(BpfCmd.MAP_CREATE, attr)
    if fd < 0:
        return False, errno.errorcode.get(err, str(err))
    try:
        keys = ctypes.create_string_buffer(16)
        values = ctypes.create_string_buffer(32)
        out = ctypes.create_string_buffer(8)
        battr = MapBatchAttr(out_batch=ctypes.addressof(out), keys=ctypes.addressof(keys),
                             values=ctypes.addressof(values), count=4, map_fd=fd)
        ret, err = bpf_raw(BpfCmd.MAP_LOOKUP_BATCH, battr)
        # An empty map answers ENOENT: the command exists.
        if ret >= 0 or err == errno.ENOENT:
            return True, ""
        return False, errno.errorcode.get(err, str(err))
    finally:
        close_fd(fd)


def _try_perf_event() -> tuple[bool, str]:
    from ..bpf.syscalls import BpfError, PerfEventAttr, PerfSwConfig, PerfType, close_fd, perf_event_open
    attr = PerfEventAttr(type=PerfType.SOFTWARE, config=PerfSwConfig.CPU_CLOCK, sample_period=1_000_000,
                         flags=1)  # disabled: never fires
    try:
        fd = perf_event_open(attr, -1, 0)
    except BpfError as exc:
        return False, errno.errorcode.get(exc.errno or 0, str(exc.errno))
    close_fd(fd)
    return True, ""


def pmus() -> dict[str, int]:
    """PMU name -> perf type, from /sys/bus/event_source/devices."""
    out: dict[str, int] = {}
    try:
        names = sorted(os.listdir(PMU_DIR))
    except OSError:
        return out
    for name in names:
        try:
            with open(os.path.join(PMU_DIR, name, "type"), encoding="ascii") as fh:
                out[name] = int(fh.read())
        except (OSError, ValueError):
            continue
    return out


def _btf_ids() -> dict[str, int]:
    """BTF ids the tracing loads need (typedef btf_trace_sched_switch, func
    vfs_read/bpf_iter_task); empty without BTF."""
    try:
        from .btf import Btf
        btf = Btf.load()
    except Exception:  # no BTF, unreadable or unparsable: the loads are then skipped
        return {}
    ids = {}
    for key, kind, name in (("tp_btf", "typedef", "btf_trace_sched_switch"), ("fentry", "func", "vfs_read"),
                            ("iter", "func", "bpf_iter_task")):
        tid = btf.type_id(kind, name)
        if tid is not None:
            ids[key] = tid
    return ids


def fentry_works() -> tuple[bool, str]:
    """Whether the kernel loads an fentry program (on vfs_read): (ok, why not).
    Some kernels refuse BPF_PROG_TYPE_TRACING outright (EPERM before the
    verifier), whatever BTF says."""
    from ..bpf.syscalls import AttachType, ProgType
    tid = _btf_ids().get("fentry")
    if tid is None:
        return False, "the kernel has no BTF for its functions"
    return try_load(ProgType.TRACING, expected_attach_type=AttachType.TRACE_FENTRY, attach_btf_id=tid)


def comm_is_padded() -> bool:
    """Whether bpf_get_current_comm fills all 16 bytes (NUL-padded), found by
    running it: a raw tracepoint program fills a buffer with 0xff, calls the
    helper and returns the last byte (BPF_PROG_TEST_RUN, 5.10).  Linux 6.1
    copies with strscpy (no padding; code that keys maps on comm must zero
    the buffer first); later kernels pad.  When the probe cannot run (no
    root, no test run) the answer is True: nothing is loaded then anyway."""
    from ..bpf import insn as I
    from ..bpf.program import test_run
    from ..bpf.syscalls import BpfError, ProgType, close_fd
    comm = (_read("/proc/self/comm") or "").strip()
    if len(comm) >= 15:          # nothing after the NUL to look at
        return False
    code = (I.mov64_imm(I.R1, -1) + I.stx(8, I.R10, -16, I.R1) + I.stx(8, I.R10, -8, I.R1)
            + I.mov64_reg(I.R1, I.R10) + I.alu64_imm(I.ADD, I.R1, -16) + I.mov64_imm(I.R2, 16)
            + I.call(16) + I.ldx(1, I.R0, I.R10, -1) + I.exit_insn())
    from ..bpf.program import VerifierError, load_program
    try:
        fd = load_program(ProgType.RAW_TRACEPOINT, code, name="pt_probe")
    except (VerifierError, BpfError, OSError):
        return True
    try:
        return test_run(fd, b"\0" * 8) == 0
    except (BpfError, OSError):
        return True
    finally:
        close_fd(fd)


def _capabilities() -> str:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return line.split()[1]
    except OSError:
        pass
    return "?"


def _has_cap(mask: str, bit: int) -> bool:
    try:
        return bool(int(mask, 16) >> bit & 1)
    except ValueError:
        return False


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def probe_all() -> Report:
    """Every feature, tried.  Needs root for most of the answers to be yes."""
    import platform  # here, not at the top: ~4 ms that only --info needs

    from .. import __version__
    from ..bpf.syscalls import AttachType, MapType, ProgType
    r = Report()
    u = platform.uname()
    r.system = [("OS", f"{u.system} {u.release} {u.version}"), ("Arch", u.machine)]
    lock = _read(LOCKDOWN)
    if lock is not None:
        m = re.search(r"\[(\w+)\]", lock)
        r.system.append(("Lockdown", m.group(1) if m else lock))
    r.build = [("version", f"v{__version__}"), ("Python", platform.python_version())]
    try:
        import llvmlite
        import llvmlite.binding as llvm
        r.build.append(("LLVM", "%d.%d.%d" % llvm.llvm_version_info + f" (llvmlite {llvmlite.__version__})"))
    except Exception as exc:  # the code generator cannot work; say so and keep going
        r.build.append(("LLVM", f"unavailable ({exc})"))

    caps = _capabilities()
    root = os.geteuid() == 0
    r.privileges = [Check("root", root), Check("CAP_BPF", _has_cap(caps, 39)),
                    Check("CAP_PERFMON", _has_cap(caps, 38)), Check("CAP_SYS_ADMIN", _has_cap(caps, 21))]
    bpf_err = _try_bpf()
    r.privileges.append(Check("bpf() syscall", bpf_err == 0, "" if not bpf_err else _bpf_problem(bpf_err)))

    for name, hid in HELPERS:
        ok, why = try_helper(hid, ProgType.KPROBE if name not in ("ringbuf_reserve",) else ProgType.TRACEPOINT)
        r.helpers.append(Check(name, ok, "" if ok else why))

    # Bounded loops (5.3) and the 1M-instruction limit come together.
    from ..bpf import insn as I
    loop = I.Asm().emit(I.mov64_imm(I.R0, 0)).label("top").emit(I.alu64_imm(I.ADD, I.R0, 1)) \
        .jmp(I.JLT, I.R0, "top", imm=4).emit(I.mov64_imm(I.R0, 0), I.exit_insn()).assemble()
    loops, _ = try_load(ProgType.KPROBE, insns=loop)
    r.features.append(("Instruction limit", "1000000" if loops else "4096"))
    r.features.append(Check("Loop support", loops))
    r.features.append(Check("btf", os.path.exists(BTF_VMLINUX), "" if os.path.exists(BTF_VMLINUX)
                            else f"no {BTF_VMLINUX}"))
    ok, why = _try_map_batch()
    r.features.append(Check("map batch", ok, why))
    from .tracefs import TracefsUnavailable, tracefs_root
    try:
        r.features.append(Check("tracefs", True, tracefs_root()))
    except TracefsUnavailable as exc:
        r.features.append(Check("tracefs", False, exc.message))

    for name, mtype, ks, vs, n in (("hash", MapType.HASH, 4, 8, 1), ("percpu hash", MapType.PERCPU_HASH, 4, 8, 1),
                                   ("array", MapType.ARRAY, 4, 8, 1), ("percpu array", MapType.PERCPU_ARRAY, 4, 8, 1),
                                   ("lru hash", MapType.LRU_HASH, 4, 8, 16),
                                   ("stack_trace", MapType.STACK_TRACE, 4, 8 * 127, 1),
                                   ("perf_event_array", MapType.PERF_EVENT_ARRAY, 4, 4, 1),
                                   ("ringbuf", MapType.RINGBUF, 0, 0, 4096)):
        ok, why = try_map(mtype, ks, vs, n)
        r.maps.append(Check(name, ok, why))

    for name, ptype in (("kprobe", ProgType.KPROBE), ("tracepoint", ProgType.TRACEPOINT),
                        ("perf_event", ProgType.PERF_EVENT), ("raw_tracepoint", ProgType.RAW_TRACEPOINT)):
        ok, why = try_load(ptype)
        r.progs.append(Check(name, ok, why))
    ids = _btf_ids()
    for name, key, attach in (("tp_btf", "tp_btf", AttachType.TRACE_RAW_TP),
                              ("fentry", "fentry", AttachType.TRACE_FENTRY),
                              ("fexit", "fentry", AttachType.TRACE_FEXIT),
                              ("iter:task", "iter", AttachType.TRACE_ITER)):
        if key not in ids:
            r.progs.append(Check(name, False, "no BTF id to load against"))
            continue
        ok, why = try_load(ProgType.TRACING, expected_attach_type=attach, attach_btf_id=ids[key])
        r.progs.append(Check(name, ok, why))

    devices = pmus()
    r.pmus = [(n, str(t)) for n, t in devices.items()]
    prog = {c.name: c for c in r.progs}
    perf_ok, perf_why = _try_perf_event()
    tracefs_ok = bool(r.check("tracefs") and r.check("tracefs").ok)  # type: ignore[union-attr]
    r.probes = [
        Check("BEGIN/END", prog["raw_tracepoint"].ok, prog["raw_tracepoint"].detail),
        Check("tracepoint", prog["tracepoint"].ok and tracefs_ok and "tracepoint" in devices,
              "" if tracefs_ok else "no tracefs"),
        Check("rawtracepoint", prog["raw_tracepoint"].ok and prog["tp_btf"].ok,
              "" if prog["tp_btf"].ok else "raw_tp only, no BTF typing"),
        Check("kprobe", "kprobe" in devices and prog["kprobe"].ok,
              "" if "kprobe" in devices else "no kprobe PMU: the kernel is built without CONFIG_KPROBES"),
        Check("uprobe", "uprobe" in devices and prog["kprobe"].ok, "" if "uprobe" in devices else "no uprobe PMU"),
        Check("profile/interval", perf_ok and prog["perf_event"].ok, perf_why),
        Check("software", perf_ok and prog["perf_event"].ok, perf_why),
        Check("hardware", "cpu" in devices, "" if "cpu" in devices else "no 'cpu' PMU, common in virtual machines"),
        Check("watchpoint", "breakpoint" in devices, "" if "breakpoint" in devices else "no breakpoint PMU"),
        Check("kfunc/fentry", prog["fentry"].ok, prog["fentry"].detail),
        Check("iter", prog["iter:task"].ok, prog["iter:task"].detail),
    ]
    return r


def format_report(r: Report) -> str:
    lines: list[str] = ["System"]
    lines += [f"  {k}: {v}" for k, v in r.system]
    lines += ["", "Build"] + [f"  {k}: {v}" for k, v in r.build]
    lines += ["", "Privileges"] + [f"  {c.render()}" for c in r.privileges]
    lines += ["", "Kernel helpers"] + [f"  {c.render()}" for c in r.helpers]
    lines += ["", "Kernel features"]
    for c in r.features:
        lines.append(f"  {c.render()}" if isinstance(c, Check) else f"  {c[0]}: {c[1]}")
    lines += ["", "Map types"] + [f"  {c.render()}" for c in r.maps]
    lines += ["", "Program types"] + [f"  {c.render()}" for c in r.progs]
    lines += ["", "Probe types"] + [f"  {c.render()}" for c in r.probes]
    lines += ["", f"PMUs ({PMU_DIR})"] + [f"  {n}: {t}" for n, t in r.pmus]
    return "\n".join(lines) + "\n"


def btf_string_table(path: str = BTF_VMLINUX) -> bytes:
    """The string section of a BTF blob (for fast name scans without parsing types)."""
    with open(path, "rb") as fh:
        blob = fh.read()
    magic, _ver, _flags, hdr_len, _toff, _tlen, str_off, str_len = struct.unpack_from("<HBBIIIII", blob)
    if magic != 0xEB9F:
        raise ValueError(f"{path} is not BTF")
    start = hdr_len + str_off
    return blob[start:start + str_len]
