# strace: Trace the system calls of a process or a command, with decoded arguments.
#
# Usage: pytrace tool strace [-f] [-s] [-e NAME,...] (-p PID | -c 'CMD')
#
# One line per system call, as strace -T writes it: the call's name, its
# arguments decoded (paths and data as strings, open/mmap/AT_* flags,
# access modes and signals by name, file modes in octal, fds as numbers,
# pointers in hex), the return value or "-1 ENOENT (No such file or
# directory)", and the time spent in the call in seconds, <0.000012>.
# Calls still running when tracing stops end with "<unfinished ...>";
# exit_group(N) is "= ?" followed by "+++ exited with N +++".  Lines go to
# standard output; with -c the tool exits with the command's status.
#
#   -p PID    trace the process PID until it exits or Ctrl-C
#   -c CMD    run CMD (found on PATH) and trace it until it exits
#   -f        also trace the children the traced processes fork (tracing
#             still ends when the first process exits, with -p and -c alike)
#   -s        print only a summary at the end, like strace -c: per syscall the
#             share of time, seconds, usecs/call, calls and errors, sorted by
#             time (wall-clock time in the call, like strace -c -w), counted
#             in the kernel
#   -e NAMES  only these syscalls (comma-separated names, e.g. openat,close)
#
# All threads of a traced process are traced; the lines of any thread or
# process but the first start with "[pid TID] ", as strace -f writes them.
#
# Kernel route: tracepoint:raw_syscalls:sys_enter/sys_exit, filtered in the
# kernel by pid (with -f by a map of followed pids that
# sched:sched_process_fork fills), give every call's number, arguments,
# return value and times.  Strings are read in the kernel at the call's
# exit, as strace reads them (a page the kernel faults in during the call
# cannot be read at entry; read(2) fills its buffer only then), except
# execve's path (read at entry: a successful exec replaces the memory).
# Which arguments are strings, and every argument's name and C type, come
# from this kernel's syscalls:sys_enter_X format files; numbers and names
# from pytrace/sysinfo.py.  Unlike strace it needs no ptrace: the traced
# process is never stopped, so a syscall storm can outrun the reader of the
# per-call events (pytrace then reports "Lost N events" on stderr); -s sums
# in BPF maps instead and loses nothing.  Not decoded: structures and
# arrays (shown as pointers: execve's argv, stat buffers), ioctl, fcntl,
# futex and clone commands and flags (shown as numbers).

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, NamedTuple, TextIO

from pytrace.sysinfo import Param

STRING_MAX = 32         # strace's default -s: bytes of a data buffer shown
PATH_MAX_SHOWN = 200    # bytes of a path read in the kernel (max_strlen; 2 copies must fit the BPF stack)
ADDRESS_RETURNS = frozenset({"mmap", "brk", "mremap", "shmat"})
# Arguments typed char * that are buffers, not NUL-terminated input strings.
NOT_STRINGS = frozenset({"buf", "ubuf", "list", "optval", "vec", "shmaddr", "u_msg_ptr"})
# Data buffers shown (their first bytes): syscall -> index of the buffer; the
# byte count is the next argument (writes) or the return value (reads).
BUFFER_CALLS = {"write": 1, "pwrite64": 1, "read": 1, "pread64": 1}
READ_CALLS = frozenset({"read", "pread64"})
# Their strings are read at entry: a successful exec replaces the memory.
ENTRY_STRING_CALLS = frozenset({"execve", "execveat"})
OPEN_CALLS = frozenset({"open", "openat", "creat"})
MODE_CALLS = frozenset({"open", "openat", "creat", "mkdir", "mkdirat", "chmod", "fchmod", "fchmodat", "fchmodat2"})
ACCESS_CALLS = frozenset({"access", "faccessat", "faccessat2"})
AT_FLAG_CALLS = frozenset({"newfstatat", "unlinkat", "fchownat", "linkat", "utimensat", "faccessat2", "statx",
                           "execveat", "fchmodat2", "name_to_handle_at", "open_tree"})
SIGNAL_CALLS = frozenset({"kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal",
                          "rt_sigaction"})
ADDRESS_NAMES = frozenset({"addr", "start", "brk", "new_addr", "old_addr", "shmaddr"})
FD_NAMES = frozenset({"fd", "fildes", "oldfd", "newfd", "fd_in", "fd_out", "out_fd", "in_fd", "epfd", "pidfd"})
DIRFD_NAMES = frozenset({"dfd", "olddfd", "newdfd", "from_dfd", "to_dfd"})
INT32_TYPES = frozenset({"int", "unsigned int", "pid_t", "uid_t", "gid_t", "clockid_t", "key_serial_t", "mqd_t",
                         "timer_t", "umode_t", "qid_t", "rwf_t", "u32", "__u32", "unsigned"})
SIGNED_TYPES = frozenset({"int", "long", "pid_t", "clockid_t", "key_serial_t", "mqd_t", "timer_t", "off_t",
                          "loff_t", "rwf_t", "__kernel_old_time_t"})
NO_RETURN = frozenset({"exit", "exit_group"})
MAX_ERRNO = 4095        # -4095..-1 are errors (include/linux/err.h)


class Syscall(NamedTuple):
    name: str
    known: bool                 # this kernel has a tracepoint for it (so params are its arguments)
    params: list[Param]
    strings: frozenset[int]     # indexes of its NUL-terminated string arguments
    buffer: int | None          # index of its data buffer (BUFFER_CALLS)

    @property
    def expected(self) -> frozenset[int]:
        """The string/buffer events a call of it brings besides entry and exit."""
        return self.strings | ({self.buffer} if self.buffer is not None else set())


class Call:
    """A syscall from its entry until its line is written."""

    def __init__(self, pid: int, tid: int, nr: int, start: int, args: tuple[int, ...]) -> None:
        self.pid, self.tid, self.nr, self.start, self.args = pid, tid, nr, start, args
        self.strings: dict[int, str | bytes] = {}
        self.ret: int | None = None     # set by the exit event
        self.end = 0


def kernel_syscalls() -> dict[int, Syscall]:
    """Every syscall of the table with its arguments from this kernel's tracepoints."""
    from pytrace import sysinfo
    from pytrace.kernel.tracefs import tracefs_root
    root = tracefs_root()
    have = sysinfo.tracepoint_syscalls(root)
    out: dict[int, Syscall] = {}
    for nr, name in sysinfo.syscall_names().items():
        params: list[Param] | None = None
        if name in have:
            try:
                with open(os.path.join(root, "events", "syscalls", have[name], "format"), encoding="utf-8") as fh:
                    params = sysinfo.parse_syscall_format(fh.read())
            except OSError:
                params = None
        strings = frozenset(i for i, p in enumerate((params or [])[:6])
                            if p.type in ("const char *", "char *") and p.name not in NOT_STRINGS)
        out[nr] = Syscall(name, params is not None, params or [], strings,
                          BUFFER_CALLS.get(name) if params else None)
    return out


def _id_test(ids: list[int], var: str = "$id") -> str:
    return " || ".join(f"{var} == {i}" for i in sorted(ids))


def _selection(table: dict[int, Syscall], *, pid: int | None, follow: bool,
               only: set[int] | None) -> tuple[list[str], str, set[int] | None]:
    """The probes that follow the traced pids, the predicate that picks
    their syscalls, and the syscall numbers to trace (None: all)."""
    root = str(pid) if pid is not None else "cpid"
    lines = []
    if follow:
        lines.append(f"BEGIN {{ @follow[{root}] = 1; }}")
        lines.append("tracepoint:sched:sched_process_fork /@follow[pid]/ { @follow[args.child_pid] = 1; }")
        # The fork tracepoint fires for new threads too (their tid is added):
        # forget every task that ends, or the map fills up (max_map_keys).
        lines.append("tracepoint:sched:sched_process_exit /@follow[tid]/ { delete(@follow[tid]); }")
        cond = "@follow[pid]"
    else:
        cond = f"pid == {root}"
    if only is not None:
        # exit and exit_group always: the "+++ exited" line and the exit status.
        only = only | {nr for nr, sc in table.items() if sc.name in NO_RETURN}
        cond = f"({cond}) && ({_id_test(sorted(only), 'args.id')})"
    if pid is not None:
        # The run also ends when the process is gone (the session polls for
        # it); this ends it at once, with every event of the process delivered.
        lines.append(f"tracepoint:sched:sched_process_exit /pid == {pid} && tid == {pid}/ {{ exit(); }}")
    return lines, cond, only


def build_summary_script(table: dict[int, Syscall], *, pid: int | None, follow: bool,
                         only: set[int] | None) -> str:
    """-s: counts, errors and nanoseconds per syscall number, summed in the
    kernel (no event per call, so a syscall storm loses nothing); the maps
    print at exit and ``read_summary`` parses them."""
    lines, cond, only = _selection(table, pid=pid, follow=follow, only=only)
    no_return = sorted(nr for nr, sc in table.items() if sc.name in NO_RETURN)
    lines += [
        "tracepoint:raw_syscalls:sys_enter /" + cond + "/ {",
        "  @start[tid] = nsecs;",
        # exit and exit_group have no sys_exit: count them here.
        f"  if ({_id_test(no_return, 'args.id')}) {{ @calls[args.id] = count(); delete(@start[tid]); }}",
        "}",
        "tracepoint:raw_syscalls:sys_exit /@start[tid]/ {",
        "  @calls[args.id] = count();",
        "  @ns[args.id] = sum(nsecs - @start[tid]);",
        f"  if (args.ret < 0 && args.ret >= -{MAX_ERRNO}) {{ @errors[args.id] = count(); }}",
        "  delete(@start[tid]);",
        "}",
        "END { clear(@start); }",
    ]
    if follow:
        lines.append("END { clear(@follow); }")
    return "\n".join(lines) + "\n"


def read_summary(text: str, table: dict[int, Syscall], summary: Summary) -> None:
    """Fills ``summary`` from the maps build_summary_script printed."""
    from pytrace import sysinfo
    import re
    values: dict[str, dict[int, int]] = {"calls": {}, "errors": {}, "ns": {}}
    for m in re.finditer(r"^@(calls|errors|ns)\[(\d+)\]: (\d+)$", text, re.M):
        values[m.group(1)][int(m.group(2))] = int(m.group(3))
    for nr, calls in values["calls"].items():
        name = table[nr].name if nr in table else sysinfo.syscall_name(nr)
        summary.add_row(name, calls, values["errors"].get(nr, 0), values["ns"].get(nr, 0))


def build_script(table: dict[int, Syscall], *, pid: int | None, follow: bool, only: set[int] | None) -> str:
    """The pytrace script: entry, exit, string and buffer events of the
    traced pids' syscalls.

    Strings and buffers are read at the syscall's exit, as strace reads
    them: at entry a page the kernel has not yet faulted in (a string
    literal's first use) cannot be read from BPF, and a read(2) buffer is
    only filled at exit.  The entry program keeps each pointer in a map by
    tid.  Each str() runs in a program of its own, since two max_strlen
    buffers overflow the 512-byte BPF stack: slot k is the k-th string
    argument of each syscall (rename: slot 0 oldname, slot 1 newname).  The
    programs attached to one tracepoint run in an order that is not ours;
    the Printer collects a call's events by tid until it has them all."""
    lines, cond, only = _selection(table, pid=pid, follow=follow, only=only)
    # Maps hold only bookkeeping (pointers by tid, followed pids): never print them.
    lines.insert(0, f"config = {{ max_strlen = {PATH_MAX_SHOWN}; print_maps_on_exit = false }}")
    chosen = {nr: sc for nr, sc in sorted(table.items()) if only is None or nr in only}
    slots: list[dict[int, list[int]]] = []
    entry_strings: dict[int, list[int]] = {}
    bufs: dict[int, list[int]] = {}
    for nr, sc in chosen.items():
        if sc.name in ENTRY_STRING_CALLS:
            for i in sc.strings:
                entry_strings.setdefault(i, []).append(nr)
            continue
        for k, i in enumerate(sorted(sc.strings)):
            while len(slots) <= k:
                slots.append({})
            slots[k].setdefault(i, []).append(nr)
        if sc.buffer is not None:
            bufs.setdefault(sc.buffer, []).append(nr)
    enter = ["tracepoint:raw_syscalls:sys_enter /" + cond + "/ {",
             "  print((0, tid, pid, nsecs, args.id, args.args[0], args.args[1], args.args[2], args.args[3],"
             " args.args[4], args.args[5]));",
             "  $id = args.id;"]
    for k, by_index in enumerate(slots):
        for i, ids in sorted(by_index.items()):
            # index + 1: a map reads 0 for a missing key.
            enter.append(f"  if ({_id_test(ids)}) {{ @s{k}i[tid] = {i + 1}; @s{k}p[tid] = args.args[{i}]; }}")
    for i, ids in sorted(bufs.items()):
        enter.append(f"  if ({_id_test(ids)}) {{ @bi[tid] = {i + 1}; @bp[tid] = args.args[{i}];"
                     f" @bn[tid] = args.args[{i + 1}]; }}")
    enter.append("}")
    lines.extend(enter)
    if entry_strings:
        body = ["tracepoint:raw_syscalls:sys_enter /" + cond + "/ {", "  $id = args.id; $i = -1; $p = (uint64)0;"]
        for i, ids in sorted(entry_strings.items()):
            body.append(f"  if ({_id_test(ids)}) {{ $i = {i}; $p = (uint64)args.args[{i}]; }}")
        body += ["  if ($i >= 0) { print((2, tid, $i, $id, str($p))); }", "}"]
        lines.extend(body)
    for k in range(len(slots)):
        lines.append(f"tracepoint:raw_syscalls:sys_exit /@s{k}i[tid]/ {{\n"
                     f"  print((2, tid, @s{k}i[tid] - 1, args.id, str(@s{k}p[tid])));\n"
                     f"  delete(@s{k}i[tid]); delete(@s{k}p[tid]);\n}}")
    if bufs:
        reads = [nr for nr, sc in chosen.items() if sc.name in READ_CALLS]
        lines.append("tracepoint:raw_syscalls:sys_exit /@bi[tid]/ {\n"
                     "  $n = (int64)@bn[tid];\n"
                     + (f"  if ({_id_test(reads, 'args.id')}) {{ $n = args.ret; }}\n" if reads else "")
                     # One byte more than shown, to know that the data goes on.
                     + f"  $n = $n < 1 ? 1 : ($n > {STRING_MAX + 1} ? {STRING_MAX + 1} : $n);\n"
                     "  print((3, tid, @bi[tid] - 1, args.id, buf(@bp[tid], $n)));\n"
                     "  delete(@bi[tid]); delete(@bp[tid]); delete(@bn[tid]);\n}")
    lines.append("tracepoint:raw_syscalls:sys_exit /" + cond + "/ { print((1, tid, pid, nsecs, args.id, args.ret)); }")
    return "\n".join(lines) + "\n"


def quote(s: str | bytes, limit: int | None = None) -> str:
    """A C string literal as strace writes it (octal escapes for other
    bytes); ``limit`` cuts it with ``...``."""
    data = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else s
    cut = limit is not None and len(data) > limit
    if cut:
        data = data[:limit]
    out = []
    named = {ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r", ord("\v"): "\\v", ord("\f"): "\\f",
             ord('"'): '\\"', ord("\\"): "\\\\"}
    for j, b in enumerate(data):
        if b in named:
            out.append(named[b])
        elif 32 <= b < 127:
            out.append(chr(b))
        else:
            # The shortest octal form, unless a digit follows (strace does the same).
            follows_digit = j + 1 < len(data) and 48 <= data[j + 1] <= 55
            out.append(f"\\{b:03o}" if follows_digit else f"\\{b:o}")
    return '"' + "".join(out) + '"' + ("..." if cut else "")


def _integer(raw: int, ctype: str) -> int:
    if ctype in INT32_TYPES:
        raw &= 0xFFFFFFFF
        if ctype in SIGNED_TYPES and raw & 0x80000000:
            raw -= 1 << 32
    elif ctype in SIGNED_TYPES and raw & (1 << 63):
        raw -= 1 << 64
    return raw


def decode_arg(sc: Syscall, i: int, call: Call) -> str:
    """Argument ``i`` of ``call`` as strace shows it."""
    from pytrace import sysinfo
    raw = call.args[i]
    name, ctype = sc.params[i].name, sc.params[i].type
    if i in call.strings:
        text = call.strings[i]
        if i == sc.buffer:
            # A read shows what it returned (nothing of a failed one), a write what it was given.
            count = call.ret if sc.name in READ_CALLS else call.args[i + 1]
            if count is None or count < 0 or not isinstance(text, bytes):
                return "NULL" if raw == 0 else f"0x{raw:x}"
            return quote(text[:count], STRING_MAX) if count > STRING_MAX else quote(text[:count])
        size = len(text.encode("utf-8", "surrogateescape")) if isinstance(text, str) else len(text)
        return quote(text) + ("..." if size >= PATH_MAX_SHOWN - 1 else "")  # str() kept max_strlen - 1 bytes
    if name in DIRFD_NAMES:
        return sysinfo.at_fd(raw)
    if name == "flags" and sc.name in OPEN_CALLS:
        return sysinfo.open_flags(raw)
    if name == "mode" and sc.name in MODE_CALLS:
        return sysinfo.file_mode(raw)
    if name == "mode" and sc.name in ("mknod", "mknodat"):
        return sysinfo.stat_mode(raw)
    if name == "mode" and sc.name in ACCESS_CALLS:
        return sysinfo.access_mode(raw)
    if name in ("flag", "flags") and sc.name in AT_FLAG_CALLS:
        return sysinfo.at_flags(raw)
    if name == "prot" and sc.name in ("mmap", "mprotect", "pkey_mprotect"):
        return sysinfo.mmap_prot(raw)
    if name == "flags" and sc.name == "mmap":
        return sysinfo.mmap_flags(raw)
    if name == "sig" and sc.name in SIGNAL_CALLS:
        return sysinfo.signal_name(raw & 0xFFFFFFFF)
    if "*" in ctype or name in ADDRESS_NAMES:
        return "NULL" if raw == 0 else f"0x{raw:x}"
    if name in FD_NAMES:
        ctype = "int"  # mmap declares its fd unsigned long; the kernel uses it as an int
    value = _integer(raw, ctype)
    return str(value) if -4096 < value < 1 << 32 else hex(raw)


def render(table: dict[int, Syscall], call: Call) -> str:
    """``name(args`` without the closing parenthesis."""
    from pytrace import sysinfo
    sc = table.get(call.nr) or Syscall(sysinfo.syscall_name(call.nr), False, [], frozenset(), None)
    if sc.known:
        n = min(len(sc.params), 6)
        if sc.name in OPEN_CALLS and sc.name != "creat" and n >= 2 and not call.args[n - 2] & 0o20000100:
            n -= 1  # the mode means something only with O_CREAT or O_TMPFILE: strace leaves it out
        args = [decode_arg(sc, i, call) for i in range(n)]
    else:
        args = [hex(a) for a in call.args]
    return f"{sc.name}({', '.join(args)}"


class Summary:
    """strace -c's table: per syscall calls, errors and time."""

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = {}   # name -> [calls, errors, nanoseconds]

    def add_row(self, name: str, calls: int, errors: int, ns: int) -> None:
        row = self.rows.setdefault(name, [0, 0, 0])
        row[0] += calls
        row[1] += errors
        row[2] += ns

    def write(self, out: TextIO) -> None:
        total_ns = sum(r[2] for r in self.rows.values())
        calls = sum(r[0] for r in self.rows.values())
        errors = sum(r[1] for r in self.rows.values())
        sep = "------ ----------- ----------- --------- --------- ----------------"
        out.write("% time     seconds  usecs/call     calls    errors syscall\n" + sep + "\n")
        for name, (n, err, ns) in sorted(self.rows.items(), key=lambda kv: (-kv[1][2], -kv[1][0], kv[0])):
            share = 100.0 * ns / total_ns if total_ns else 0.0
            errs = str(err) if err else ""
            out.write(f"{share:6.2f} {ns / 1e9:11.6f} {ns // 1000 // n:11d} {n:9d} {errs:>9} {name}\n")
        errs = str(errors) if errors else ""
        avg = total_ns // 1000 // calls if calls else 0
        out.write(sep + "\n")
        out.write(f"{100.0 if calls else 0.0:6.2f} {total_ns / 1e9:11.6f} {avg:11d} {calls:9d} {errs:>9} total\n")


class Printer:
    """Collects each call's events (entry, strings, exit) by tid and writes
    its line once it has them all."""

    def __init__(self, table: dict[int, Syscall], out: TextIO, *, root: int | None,
                 only: set[int] | None = None) -> None:
        self.table, self.out, self.root, self.only = table, out, root, only
        self.pending: dict[int, Call] = {}
        # Strings read by a program that ran before the entry's, by tid.
        self.early: dict[int, tuple[int, dict[int, str | bytes]]] = {}
        self.exit_code: int | None = None
        self.closed = False
        self.on_closed: Callable[[], None] | None = None

    def _emit(self, who: int, text: str) -> None:
        """Write a line of thread or process ``who``; other threads than the
        first one traced have their lines start with "[pid TID] ", as strace -f."""
        if self.closed:
            return
        prefix = f"[pid {who}] " if self.root is not None and who != self.root else ""
        try:
            self.out.write(prefix + text + "\n")
            self.out.flush()
        except BrokenPipeError:
            # The reader went away (| head): stop tracing, quietly.
            self.closed = True
            if self.on_closed is not None:
                self.on_closed()

    def _syscall(self, nr: int) -> Syscall:
        from pytrace import sysinfo
        return self.table.get(nr) or Syscall(sysinfo.syscall_name(nr), False, [], frozenset(), None)

    def on_value(self, value: object) -> None:
        if not isinstance(value, tuple) or not value:
            return
        kind, tid = value[0], value[1]
        if kind == 0:
            _, _, pid, ts, nr, *args = value
            self._enter(tid, Call(pid, tid, nr, ts, tuple(a & 0xFFFFFFFFFFFFFFFF for a in args)))
        elif kind in (2, 3):
            _, _, index, nr, text = value
            text = getattr(text, "data", text)   # buf() arrives as a Buffer
            call = self.pending.get(tid)
            if call is not None and call.nr == nr and index not in call.strings:
                call.strings[index] = text
                self._complete(tid, call)
            else:
                self.early[tid] = (nr, {**self.early.get(tid, (nr, {}))[1], index: text})
        elif kind == 1:
            _, _, pid, ts, nr, ret = value
            call = self.pending.get(tid)
            if call is None or call.nr != nr or call.ret is not None:
                return  # entered before tracing began
            call.ret, call.end = ret, ts
            self._complete(tid, call)

    def _enter(self, tid: int, call: Call) -> None:
        if self.root is None:
            self.root = call.pid
        stale = self.pending.pop(tid, None)
        if stale is not None and stale.ret is not None:
            self._write(stale)   # a string never came: show what there is
        self.pending[tid] = call
        early = self.early.pop(tid, None)
        if early is not None and early[0] == call.nr:
            call.strings.update(early[1])
        sc = self._syscall(call.nr)
        if sc.name in NO_RETURN:
            # exit and exit_group never return: there is no sys_exit event.
            del self.pending[tid]
            if self.only is None or call.nr in self.only:
                self._emit(call.tid, f"{render(self.table, call)}) = ?")
            if sc.name == "exit_group":
                code = call.args[0] & 0xFF
                if call.pid == self.root:
                    self.exit_code = code
                self._emit(call.pid, f"+++ exited with {code} +++")

    def _complete(self, tid: int, call: Call) -> None:
        if call.ret is None:
            return
        sc = self._syscall(call.nr)
        if sc.name not in ENTRY_STRING_CALLS and not sc.expected <= call.strings.keys():
            return
        del self.pending[tid]
        self._write(call)

    def _write(self, call: Call) -> None:
        from pytrace import sysinfo
        assert call.ret is not None
        if self.only is not None and call.nr not in self.only:
            return
        name = self._syscall(call.nr).name
        ns = max(0, call.end - call.start)
        result = sysinfo.format_return(call.ret, hex_value=name in ADDRESS_RETURNS)
        self._emit(call.tid, f"{render(self.table, call)}) = {result} <{ns / 1e9:.6f}>")

    def finish(self) -> None:
        for call in list(self.pending.values()):
            if call.ret is not None:
                self._write(call)
            elif self.only is None or call.nr in self.only:
                self._emit(call.tid, f"{render(self.table, call)} <unfinished ...>")
        self.pending.clear()


def resolve_command(command: str) -> str | None:
    """``command`` with its program found on PATH now, so that the child's
    exec is one execve (not one failed execve per PATH entry, which the
    trace would show), as strace does; None if it cannot be run."""
    import shlex
    import shutil
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if not argv:
        return None
    path = shutil.which(argv[0])
    if path is None:
        return None
    return shlex.join([path, *argv[1:]])


def _parser(stderr: TextIO) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pytrace tool strace",
                                description="Trace the system calls of a process or a command.")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("-p", dest="pid", type=int, metavar="PID", help="trace the process PID")
    who.add_argument("-c", dest="command", metavar="CMD", help="run CMD and trace it until it exits")
    p.add_argument("-f", dest="follow", action="store_true", help="also trace forked children")
    p.add_argument("-s", dest="summary", action="store_true", help="print a summary like strace -c instead")
    p.add_argument("-e", dest="only", metavar="NAME,...", help="only these syscalls (comma-separated)")
    return p


def main(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    parser = _parser(stderr)
    try:
        saved = sys.stderr
        sys.stderr = stderr  # argparse writes its usage messages to sys.stderr
        try:
            opts = parser.parse_args(argv)
        finally:
            sys.stderr = saved
    except SystemExit as exc:
        return int(exc.code or 0)
    from pytrace import sysinfo
    only: set[int] | None = None
    if opts.only:
        only = set()
        for name in opts.only.split(","):
            nr = sysinfo.syscall_number(name.strip())
            if nr is None:
                stderr.write(f"pytrace tool strace: error: -e: unknown syscall '{name.strip()}'\n")
                return 2
            only.add(nr)
    if opts.pid is not None and (opts.pid <= 0 or not os.path.exists(f"/proc/{opts.pid}")):
        stderr.write(f"pytrace tool strace: error: -p: no process {opts.pid}\n")
        return 2
    command = opts.command
    if command is not None:
        command = resolve_command(command)
        if command is None:
            stderr.write(f"pytrace tool strace: error: -c: cannot run {opts.command!r}\n")
            return 2
    from pytrace.api import ScriptError, Tracer
    from pytrace.errors import EnvironmentProblem
    try:
        table = kernel_syscalls()
        if opts.summary:
            return _summary(table, opts.pid, opts.follow, only, command, stdout, stderr)
        script = build_script(table, pid=opts.pid, follow=opts.follow, only=only)
        printer = Printer(table, stdout, root=opts.pid, only=only)
        tracer = Tracer(script, name="strace", pid=opts.pid, command=command, on_value=printer.on_value,
                        out=stdout, err=stderr)
        printer.on_closed = tracer.stop
        rc = tracer.run()
    except (ScriptError, EnvironmentProblem) as exc:
        stderr.write(f"{exc}\n")
        return 1
    if printer.closed:
        return rc
    try:
        printer.finish()  # lost events, if any, the session has reported on stderr
    except BrokenPipeError:
        return rc
    if command is not None and printer.exit_code is not None:
        return printer.exit_code
    return rc


def _summary(table: dict[int, Syscall], pid: int | None, follow: bool, only: set[int] | None,
             command: str | None, stdout: TextIO, stderr: TextIO) -> int:
    """-s: run the counting script, then write strace -c's table."""
    import io
    from pytrace.api import Tracer
    maps = io.StringIO()
    # exit_group's status: the only per-call event of this mode.
    status: list[int] = []
    script = build_summary_script(table, pid=pid, follow=follow, only=only)
    if command is not None:
        script += ("tracepoint:raw_syscalls:sys_enter /pid == cpid && args.id == "
                   f"{next(nr for nr, sc in table.items() if sc.name == 'exit_group')}/ {{ print(args.args[0]); }}\n")
    tracer = Tracer(script, name="strace", pid=pid, command=command, out=maps, err=stderr,
                    on_value=lambda v: status.append(int(v) & 0xFF) if isinstance(v, int) else None)
    rc = tracer.run()
    summary = Summary()
    read_summary(maps.getvalue(), table, summary)
    if only is not None:
        names = {table[nr].name for nr in only if nr in table}
        summary.rows = {k: v for k, v in summary.rows.items() if k in names}
    try:
        summary.write(stdout)
        stdout.flush()
    except BrokenPipeError:
        pass
    return status[-1] if command is not None and status else rc
