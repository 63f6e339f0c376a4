# audit: Security audit (JSON lines): exec, setuid/capset, ptrace, module/BPF loads, opens, connections, mounts, kills.
#
# Usage: pytrace tool audit [--text] [--paths P1,P2...] [--only exec,setid,...]
#
# Prints one JSON object per line for each audited action (or a readable line with --text), read by
# log pipelines; the schema is stable: every event of a type has every field listed below, in this
# order, null when unknown.  Every event starts with
#   type   the event type (below)          time  ISO 8601 UTC, from the kernel's timestamp (microseconds)
#   pid    process id (tgid)               tid   thread id
#   uid    real uid of the acting task     comm  its command name (16 bytes)
# and every event of a syscall ends with `ret` (the syscall's return value) and `error` (its errno
# name when ret < 0, else null).  Types (--only takes the category names in brackets):
#   exec [exec]       ppid, pcomm, euid, gid, egid, filename, argv (list), argv_truncated, cwd, cwd_name,
#                     ret, error.  A successful exec (rawtracepoint:sched_process_exec: filename is
#                     bprm->filename, the script for a #! script) reads argv from the new image
#                     (mm->arg_start, the first 450 bytes; argv_truncated: there was more, the last
#                     argument may be cut); a failed one (sys_exit_execve(at) < 0) reads the first 4
#                     arguments from the caller (argv_truncated: it had more).  ppid/pcomm: the real
#                     parent.  cwd_name is the last component of the working directory, read in the
#                     kernel; cwd the whole path, read from /proc/PID/cwd when the event is handled
#                     (null if the process is gone, or its cwd's name differs, by then).
#   setid [setid]     syscall (setuid, setgid, setreuid, setregid, setresuid, setresgid, setfsuid,
#                     setfsgid), args (the syscall's arguments, -1 = unchanged), old_uid, old_euid,
#                     old_gid, old_egid (before), new_uid, new_euid, new_gid, new_egid (after), ret,
#                     error.  setfsuid/setfsgid return the previous id, never an errno.
#   capset [capset]   target_pid, version, effective, permitted, inheritable (64-bit masks),
#                     effective_caps (names), ret, error.
#   ptrace [ptrace]   request, request_name, target_pid, addr, data, ret, error.  Only ATTACH, SEIZE,
#                     TRACEME and the POKE* (memory/register writes) requests are audited.
#   module_load [module]  syscall (init_module, finit_module), fd (finit_module) or -1, file (the
#                     name of the file fd refers to), length (init_module's image size) or null,
#                     params, flags, ret, error.  Seen through raw_syscalls:sys_enter/sys_exit by
#                     syscall number, so attempts are audited even on kernels built without module
#                     support (they fail with ENOSYS); x86_64 and aarch64 numbers.
#   bpf_prog_load [bpf]  prog_type, prog_type_name, prog_name, insn_cnt, license,
#                     expected_attach_type, prog_flags, ret (the program's fd), error.
#   open [open]       syscall (open, openat, openat2, creat), path (as passed), flags, flags_names,
#                     mode, ret (the fd), error.  Only paths starting with one of --paths (default
#                     /etc/shadow, /etc/gshadow, /etc/sudoers, /etc/sudoers.d/, /root/.ssh/,
#                     /etc/ssh/ssh_host_) are audited: a plain prefix match on the path string the
#                     program passed (a relative path or a symlink to the file is not matched).
#   connect [connect] family (inet, inet6), proto (tcp, udp), raddr, rport (the address passed to
#                     connect), laddr, lport (the socket's local end after the call), ret, error.
#   accept [accept]   family, proto, raddr, rport (the peer), laddr, lport, ret (the new fd), error.
#   mount [mount]     syscall (mount, move_mount), source, target, fstype, flags, ret, error.
#   umount [mount]    target, flags, ret, error.
#   kill [kill]       a signal sent by a process to another uid's process (the target's real uid
#                     differs from the sender's), as the kernel generates it (rawtracepoint
#                     signal_generate, which has the target task: both uids are compared in the
#                     kernel, no /proc race): sig, sig_name, target_pid, target_tid, target_uid,
#                     target_comm, code (SI_USER, SI_QUEUE, SI_TKILL), result (delivered, ignored,
#                     already_pending, overflow_fail, lose_info).  A kill/tkill/tgkill refused with
#                     EPERM (no signal generated) is a kill event too, with result "denied"; its
#                     target's uid and comm are read from /proc (the target lives on); target_pid is
#                     null for a process group (kill(0 or -PGID)).
#   lost [always]     {"type": "lost", "time": ..., "count": N} only: events of any type the kernel
#                     could not hand over (a full ring buffer) since the previous lost event; checked
#                     every second and at the end.  Events + lost counts = audited actions.
# --text prints "TIME TYPE pid=.. uid=.. comm=.. field=value ..." instead (null fields left out,
# strings with spaces quoted, ret followed by the errno name).  The tool ignores its own process.
# Kernel routes (no kprobes): syscalls:sys_{enter,exit}_* tracepoints (arguments kept at entry, the
# event printed at exit with the result), rawtracepoint:sched_process_exec, raw_syscalls for module
# loads, rawtracepoint:signal_generate for kills.
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, TextIO

from pytrace.sysinfo import errno_name, open_flags, signal_name


def _load_script_builder() -> ModuleType:
    """stdlib/tools/_audit_script.py, which writes the BPF script: pytrace loads a tool by its
    path (not as a package member), so the tool loads its helper the same way."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("pytrace_tool_audit_script",
                                                  Path(__file__).with_name("_audit_script.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_script = _load_script_builder()
build_script = _script.build_script
# What the records carry, as the script writes them.
STRLEN, FAILED_ARGV = _script.STRLEN, _script.FAILED_ARGV
ARGV_CHUNK, ARGV_CHUNKS = _script.ARGV_CHUNK, _script.ARGV_CHUNKS
SETID, OPENS, PTRACE_REQUESTS = _script.SETID, _script.OPENS, _script.PTRACE_REQUESTS

CATEGORIES = ("exec", "setid", "capset", "ptrace", "module", "bpf", "open", "connect", "accept", "mount", "kill")
DEFAULT_PATHS = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d/", "/root/.ssh/",
                 "/etc/ssh/ssh_host_")
MAX_PENDING = 4096    # tasks whose event's parts arrived and its head not yet (lost heads leave them)
# include/uapi/linux/bpf.h enum bpf_prog_type, in order.
PROG_TYPES = ("unspec", "socket_filter", "kprobe", "sched_cls", "sched_act", "tracepoint", "xdp", "perf_event",
              "cgroup_skb", "cgroup_sock", "lwt_in", "lwt_out", "lwt_xmit", "sock_ops", "sk_skb", "cgroup_device",
              "sk_msg", "raw_tracepoint", "cgroup_sock_addr", "lwt_seg6local", "lirc_mode2", "sk_reuseport",
              "flow_dissector", "cgroup_sysctl", "raw_tracepoint_writable", "cgroup_sockopt", "tracing",
              "struct_ops", "ext", "lsm", "sk_lookup", "syscall", "netfilter")
# include/uapi/linux/capability.h, by bit.
CAPS = ("chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable "
        "net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio sys_chroot "
        "sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time sys_tty_config mknod lease "
        "audit_write audit_control setfcap mac_override mac_admin syslog wake_alarm block_suspend audit_read "
        "perfmon bpf checkpoint_restore").split()
SIG_RESULTS = ("delivered", "ignored", "already_pending", "overflow_fail", "lose_info")
SI_CODES = {0: "SI_USER", -1: "SI_QUEUE", -6: "SI_TKILL"}
_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(32), 127)} | {10: "\\n", 9: "\\t", 13: "\\r"}
COMMON = ("type", "time", "pid", "tid", "uid", "comm")
# The fields of each type after the common ones: the stable schema.
SCHEMA: dict[str, tuple[str, ...]] = {
    "exec": ("ppid", "pcomm", "euid", "gid", "egid", "filename", "argv", "argv_truncated", "cwd", "cwd_name",
             "ret", "error"),
    "setid": ("syscall", "args", "old_uid", "old_euid", "old_gid", "old_egid", "new_uid", "new_euid", "new_gid",
              "new_egid", "ret", "error"),
    "capset": ("target_pid", "version", "effective", "permitted", "inheritable", "effective_caps", "ret", "error"),
    "ptrace": ("request", "request_name", "target_pid", "addr", "data", "ret", "error"),
    "module_load": ("syscall", "fd", "file", "length", "params", "flags", "ret", "error"),
    "bpf_prog_load": ("prog_type", "prog_type_name", "prog_name", "insn_cnt", "license", "expected_attach_type",
                      "prog_flags", "ret", "error"),
    "open": ("syscall", "path", "flags", "flags_names", "mode", "ret", "error"),
    "connect": ("family", "proto", "raddr", "rport", "laddr", "lport", "ret", "error"),
    "accept": ("family", "proto", "raddr", "rport", "laddr", "lport", "ret", "error"),
    "mount": ("syscall", "source", "target", "fstype", "flags", "ret", "error"),
    "umount": ("target", "flags", "ret", "error"),
    "kill": ("sig", "sig_name", "target_pid", "target_tid", "target_uid", "target_comm", "code", "result"),
    "lost": ("count",),
}
# The part each multi-record event sends first.
FIRST_PARTS = frozenset({"filename", "source", "license", "params"})
# ----------------------------------------------------------------------------- decoding
def _errname(ret: int) -> str | None:
    return errno_name(-ret) if ret < 0 else None


def _sid(v: int) -> int:
    """A uid/gid argument: (uid_t)-1 means 'unchanged'."""
    v &= 0xFFFFFFFF
    return -1 if v == 0xFFFFFFFF else v


def _s64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _caps(mask: int) -> list[str]:
    return [("cap_" + CAPS[i]) if i < len(CAPS) else f"cap_{i}" for i in range(64) if mask >> i & 1]


def _ip(family: int, v4: int, v6: tuple[int, ...]) -> str:
    import ipaddress
    if family == 2:  # AF_INET
        return str(ipaddress.IPv4Address(v4.to_bytes(4, "little")))
    return str(ipaddress.IPv6Address(b"".join(w.to_bytes(4, "little") for w in v6)))


def _sockproto(sk_type: int, protocol: int) -> str:
    return {6: "tcp", 17: "udp", 132: "sctp", 1: "icmp", 58: "icmpv6"}.get(protocol, f"type{sk_type}/proto{protocol}")


def _proc_status(task: int) -> dict[str, str]:
    """/proc/TASK/status as a dict (empty if the task is gone)."""
    try:
        with open(f"/proc/{task}/status", encoding="utf-8", errors="replace") as fh:
            return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)
    except OSError:
        return {}


def _cwd(pid: int, name: str) -> str | None:
    """The whole working directory, if the process still has the one the kernel named."""
    try:
        path = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    return path if os.path.basename(path) == name or (path == "/" and name == "/") else None


class Auditor:
    """Turns the script's records into events and writes them."""

    def __init__(self, out: TextIO, text: bool, tracer_lost: Callable[[], int], on_closed: Callable[[], None]) -> None:
        self.out = out
        self.text = text
        self.closed = False
        self.on_closed = on_closed
        self.lost_seen = 0
        self.tracer_lost = tracer_lost
        self.last_check = 0.0
        self.parts: dict[int, dict[str, Any]] = {}
        # The loss watcher writes from its own thread.
        self.lock = threading.RLock()
        # CLOCK_MONOTONIC (bpf_ktime_get_ns) to wall-clock time.
        self.offset_ns = time.time_ns() - time.monotonic_ns()
        self.handlers: dict[str, Callable[[tuple[Any, ...], dict[str, Any], int], dict[str, Any] | None]] = {
            "x": self._exec, "xe": self._exec_failed, "s": self._setid, "c": self._capset, "t": self._ptrace,
            "m": self._module, "b": self._bpf, "o": self._open, "n": self._connect, "a": self._accept,
            "mt": self._mount, "u": self._umount, "k": self._kill, "kd": self._kill_denied}

    # --------------------------------------------------------------- records
    def on_value(self, value: object) -> None:
        if not isinstance(value, tuple) or not value:
            return
        kind = value[0]
        if kind == "p":
            if value[2] in FIRST_PARTS:  # a new event of this task: drop parts whose head was lost
                self.parts.pop(value[1], None)
                if len(self.parts) >= MAX_PENDING:  # heads lost for many tasks: forget the oldest
                    del self.parts[next(iter(self.parts))]
            self.parts.setdefault(value[1], {})[value[2]] = value[3]
        elif kind == "xa":
            self.parts.setdefault(value[1], {}).setdefault("argv_chunks", []).append((_s64(value[2]), value[3].data))
        elif kind in self.handlers:
            nsecs, pid, tid, uid, comm = value[1:6]
            parts = self.parts.pop(tid, {})
            fields = self.handlers[kind](value[6:], parts, pid)
            if fields is not None:
                self.emit({"type": fields.pop("type"), "time": self._time(nsecs), "pid": pid, "tid": tid,
                           "uid": uid, "comm": comm, **fields})
        now = time.monotonic()
        if now - self.last_check > 0.25:
            self.last_check = now
            self.check_lost()

    def check_lost(self, final_count: int | None = None) -> None:
        """Report losses not reported yet (called with each record, every second, and at the end)."""
        with self.lock:
            total = self.tracer_lost() if final_count is None else final_count
            if total > self.lost_seen:
                self.emit({"type": "lost", "time": self._time(time.monotonic_ns()), "count": total - self.lost_seen})
                self.lost_seen = total

    def _time(self, nsecs: int) -> str:
        ns = nsecs + self.offset_ns
        t = datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000 // 1000:06d}Z"

    # --------------------------------------------------------------- output
    def emit(self, event: dict[str, Any]) -> None:
        typ = event["type"]
        order = ("type", "time", "count") if typ == "lost" else COMMON + SCHEMA[typ]
        event = {k: event.get(k) for k in order}
        line = (self._text(event) if self.text else json.dumps(event)) + "\n"
        with self.lock:
            if self.closed:
                return
            try:
                self.out.write(line)
                self.out.flush()
            except BrokenPipeError:
                # The reader went away (audit | head): stop tracing; main() lets the CLI end quietly.
                self.closed = True
                self.on_closed()

    @staticmethod
    def _text(event: dict[str, Any]) -> str:
        if event["type"] == "lost":
            return f"{event['time']} LOST {event['count']} events"
        head = f"{event['time']} {event['type'].upper():<13} pid={event['pid']} uid={event['uid']} comm={event['comm']}"
        rest = []
        for k, v in list(event.items())[len(COMMON):]:
            if v is None or k == "error":
                continue
            if k == "ret" and event.get("error"):
                v = f"{v} ({event['error']})"
            elif k == "argv":
                v = shlex.join(v)
            elif isinstance(v, bool):
                v = "true" if v else "false"
            elif isinstance(v, list):
                v = ",".join(str(x) for x in v) or "-"
            elif isinstance(v, str) and (not v or any(c.isspace() for c in v)):
                v = json.dumps(v)
            rest.append(f"{k}={v}")
        # One event, one line: control characters (a newline in an argument) are escaped.
        return (head + " " + " ".join(rest)).translate(_CONTROL_ESCAPES)

    # --------------------------------------------------------------- events
    def _exec(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        ppid, pcomm, euid, gid, egid, arglen, cwd_name = r
        # Each chunk: its offset from arg_start (negative: it was moved down to end at env_end).
        raw = bytearray(min(arglen, ARGV_CHUNK * ARGV_CHUNKS))
        for off, data in parts.get("argv_chunks", []):
            lo, hi = max(off, 0), min(off + len(data), len(raw))
            if lo < hi:
                raw[lo:hi] = data[lo - off:hi - off]
        argv = [a.decode("utf-8", "replace") for a in raw.split(b"\0")] if raw else []
        if raw.endswith(b"\0"):
            argv.pop()
        return {"type": "exec", "ppid": ppid, "pcomm": pcomm, "euid": euid, "gid": gid, "egid": egid,
                "filename": parts.get("filename"), "argv": argv, "argv_truncated": arglen > len(raw),
                "cwd": _cwd(pid, cwd_name), "cwd_name": cwd_name, "ret": 0, "error": None}

    def _exec_failed(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        ppid, pcomm, euid, gid, egid, ret, cwd_name = r
        argv = [parts[f"argv{i}"] for i in range(FAILED_ARGV) if f"argv{i}" in parts]
        return {"type": "exec", "ppid": ppid, "pcomm": pcomm, "euid": euid, "gid": gid, "egid": egid,
                "filename": parts.get("filename"), "argv": argv, "argv_truncated": "argv_more" in parts,
                "cwd": _cwd(pid, cwd_name), "cwd_name": cwd_name, "ret": ret, "error": _errname(ret)}

    def _setid(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        code, a0, a1, a2, old_u, old_g, uid, euid, gid, egid, ret = r
        name, argnames = SETID[code]
        return {"type": "setid", "syscall": name, "args": [_sid(a) for a in (a0, a1, a2)[:len(argnames)]],
                "old_uid": old_u >> 32, "old_euid": old_u & 0xFFFFFFFF, "old_gid": old_g >> 32,
                "old_egid": old_g & 0xFFFFFFFF, "new_uid": uid, "new_euid": euid, "new_gid": gid, "new_egid": egid,
                "ret": ret, "error": None if code in (7, 8) else _errname(ret)}

    def _capset(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        version, target, e0, p0, i0, e1, p1, i1, ret = r
        # _LINUX_CAPABILITY_VERSION_1 has one 32-bit set; versions 2 and 3 have two.
        wide = version != 0x19980330
        eff, perm, inh = ((lo | (hi << 32 if wide else 0)) for lo, hi in ((e0, e1), (p0, p1), (i0, i1)))
        return {"type": "capset", "target_pid": target, "version": version, "effective": eff, "permitted": perm,
                "inheritable": inh, "effective_caps": _caps(eff), "ret": ret, "error": _errname(ret)}

    def _ptrace(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        request, target, addr, data, ret = r
        request = _s64(request)
        return {"type": "ptrace", "request": request, "request_name": PTRACE_REQUESTS.get(request),
                "target_pid": _s64(target), "addr": addr, "data": data, "ret": ret, "error": _errname(ret)}

    def _module(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        finit, fd, a2, a3, ret, file = r
        return {"type": "module_load", "syscall": "finit_module" if finit else "init_module",
                "fd": _s64(fd) if finit else -1, "file": file if finit else None, "length": None if finit else a2,
                "params": parts.get("params"), "flags": a3 if finit else 0, "ret": ret, "error": _errname(ret)}

    def _bpf(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        prog_type, insns, attach, flags, ret, name = r
        return {"type": "bpf_prog_load", "prog_type": prog_type,
                "prog_type_name": PROG_TYPES[prog_type] if prog_type < len(PROG_TYPES) else None,
                "prog_name": name, "insn_cnt": insns, "license": parts.get("license"),
                "expected_attach_type": attach, "prog_flags": flags, "ret": ret, "error": _errname(ret)}

    def _open(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        code, flags, mode, ret, path = r
        return {"type": "open", "syscall": OPENS[code][0], "path": path, "flags": flags,
                "flags_names": open_flags(flags), "mode": mode & 0o7777, "ret": ret, "error": _errname(ret)}

    def _connect(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        return {"type": "connect", **self._ends(r)}

    def _accept(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        return {"type": "accept", **self._ends(r)}

    @staticmethod
    def _ends(r: tuple[Any, ...]) -> dict[str, Any]:
        """Both ends of a connection: ret, the remote end (family, port in network byte order, v4
        address, 4 v6 words), then the socket (type, protocol, local v4 address, port in host
        order, 4 v6 words)."""
        ret, family, rport, v4, v6, (sk_type, proto, lv4, lport), lv6 = (r[0], r[1], r[2], r[3], r[4:8], r[8:12],
                                                                          r[12:16])
        return {"family": "inet" if family == 2 else "inet6", "proto": _sockproto(sk_type, proto),
                "raddr": _ip(family, v4, v6), "rport": int.from_bytes(rport.to_bytes(2, "little"), "big"),
                "laddr": _ip(family, lv4, lv6), "lport": lport, "ret": ret, "error": _errname(ret)}

    def _mount(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        code, flags, ret, fstype = r
        return {"type": "mount", "syscall": "mount" if code == 80 else "move_mount", "source": parts.get("source"),
                "target": parts.get("target"), "fstype": fstype if code == 80 else None, "flags": flags,
                "ret": ret, "error": _errname(ret)}

    def _umount(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        flags, ret, target = r
        return {"type": "umount", "target": target, "flags": flags, "ret": ret, "error": _errname(ret)}

    def _kill_denied(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        code, tgid, target, sig = r
        tgid, target = _s64(tgid), _s64(target)
        # kill(2) takes a process, tkill(2) a thread (its process read from /proc), tgkill(2) both.
        # kill(0 or negative) names a group: no single target.
        status = _proc_status(target) if target > 0 else {}
        if code == 90:
            tgid = target
        elif code == 91:
            tgid = int(status.get("Tgid", 0))
        uid = status.get("Uid", "").split()
        return {"type": "kill", "sig": sig, "sig_name": signal_name(sig), "target_pid": tgid if tgid > 0 else None,
                "target_tid": target, "target_uid": int(uid[0]) if uid else None,
                "target_comm": status.get("Name"), "code": "SI_USER" if code == 90 else "SI_TKILL",
                "result": "denied"}

    def _kill(self, r: tuple[Any, ...], parts: dict[str, Any], pid: int) -> dict[str, Any]:
        sig, tpid, ttid, tuid, tcomm, code, result = r
        return {"type": "kill", "sig": sig, "sig_name": signal_name(sig), "target_pid": tpid, "target_tid": ttid,
                "target_uid": tuid, "target_comm": tcomm, "code": SI_CODES.get(code, code),
                "result": SIG_RESULTS[result] if 0 <= result < len(SIG_RESULTS) else result}


# ----------------------------------------------------------------------------- command line
class _Parser(argparse.ArgumentParser):
    def __init__(self, stderr: TextIO) -> None:
        super().__init__(prog="pytrace tool audit", description="Security auditing: one JSON object per event.")
        self._stderr = stderr

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(self._stderr)
        self._stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            self._stderr.write(message)
        raise SystemExit(status)


def _parse(argv: list[str], stdout: TextIO, stderr: TextIO) -> argparse.Namespace:
    parser = _Parser(stderr)
    parser.add_argument("--text", action="store_true", help="a readable line per event instead of JSON")
    parser.add_argument("--paths", default=",".join(DEFAULT_PATHS),
                        help="comma-separated path prefixes whose opens are audited (default: %(default)s)")
    parser.add_argument("--only", default=",".join(CATEGORIES),
                        help="comma-separated categories to audit (default: all: %(default)s)")
    if "-h" in argv or "--help" in argv:
        parser.print_help(stdout)
        raise SystemExit(0)
    opts = parser.parse_args(argv)
    cats = [c.strip() for c in opts.only.split(",") if c.strip()]
    bad = [c for c in cats if c not in CATEGORIES]
    if bad or not cats:
        parser.error(f"--only: unknown category {bad[0]!r} (choose from {', '.join(CATEGORIES)})" if bad
                     else "--only: no category given")
    opts.only = [c for c in CATEGORIES if c in cats]
    paths = [p for p in opts.paths.split(",") if p]
    for p in paths:
        if not p.startswith("/"):
            parser.error(f"--paths: {p!r} is not an absolute path (opens are matched on absolute paths)")
        if any(c in p for c in '"\\\n') or len(p.encode()) >= STRLEN:
            parser.error(f"--paths: {p!r} holds a quote, a backslash or a newline, or is {STRLEN} bytes or longer")
    if "open" in opts.only and not paths:
        parser.error("--paths: no path given")
    opts.paths = paths
    return opts


def main(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    try:
        opts = _parse(argv, stdout, stderr)
    except SystemExit as exc:
        return int(exc.code or 0)
    from pytrace.api import ScriptError, Tracer
    script = build_script(opts.only, opts.paths, os.getpid())
    holder: list[Tracer] = []
    auditor = Auditor(stdout, opts.text, lambda: holder[0].lost_events() if holder else 0,
                      lambda: holder[0].stop() if holder else None)
    try:
        tracer = Tracer(script, name="audit", on_value=auditor.on_value, out=stdout, err=stderr)
    except ScriptError as exc:
        stderr.write(f"pytrace tool audit: the audit script does not compile on this kernel:\n{exc}\n")
        return 1
    holder.append(tracer)
    # Losses are reported within a second even when no further event arrives to notice them.
    done = threading.Event()

    def watch() -> None:
        while not done.wait(1.0):
            auditor.check_lost()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        code = tracer.run()
    except ScriptError as exc:
        stderr.write(f"pytrace tool audit: the audit script does not load on this kernel:\n{exc}\n")
        return 1
    finally:
        done.set()
        watcher.join()
    auditor.check_lost(tracer.lost_events())
    if auditor.closed:
        raise BrokenPipeError  # the command line silences stdout and exits 0
    return code
