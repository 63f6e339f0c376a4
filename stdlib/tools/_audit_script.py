"""The BPF script of ``pytrace tool audit`` (stdlib/tools/audit.py), generated for the categories
and paths the user chose.  Each record it prints is a tuple whose first element names its kind;
audit.py's Auditor turns them into events.  Kept apart from audit.py (which loads it by path,
as pytrace loads the tool itself) so that each file stays readable."""

from __future__ import annotations

import platform
from typing import Callable

STRLEN = 160          # config max_strlen: a path fits, and a record holds one such string (512-byte stack)
ARGV_CHUNK = 150      # bytes of mm->arg_start read per record; 3 records
ARGV_CHUNKS = 3
FAILED_ARGV = 4       # arguments read for a failed exec
MAX_INFLIGHT = 65536  # audited syscalls in flight at once (threads blocked in connect, mount...)

# The ids each setid syscall's record carries (its code), with its argument names.
SETID = {1: ("setuid", ("uid",)), 2: ("setgid", ("gid",)), 3: ("setreuid", ("ruid", "euid")),
         4: ("setregid", ("rgid", "egid")), 5: ("setresuid", ("ruid", "euid", "suid")),
         6: ("setresgid", ("rgid", "egid", "sgid")), 7: ("setfsuid", ("uid",)), 8: ("setfsgid", ("gid",))}
OPENS = {20: ("open", "filename", "args.flags", "args.mode"), 21: ("openat", "filename", "args.flags", "args.mode"),
         22: ("openat2", "filename", "*(uint64 *)uptr(args.how)", "*(uint64 *)uptr((uint64)args.how + 8)"),
         23: ("creat", "pathname", "577", "args.mode")}  # creat = O_CREAT|O_WRONLY|O_TRUNC
# linux/ptrace.h: the requests worth an audit record (taking control of a process or writing into it).
PTRACE_REQUESTS = {0: "PTRACE_TRACEME", 4: "PTRACE_POKETEXT", 5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSER",
                   13: "PTRACE_SETREGS", 16: "PTRACE_ATTACH", 0x4205: "PTRACE_SETREGSET", 0x4206: "PTRACE_SEIZE"}
MODULE_SYSCALLS = {"x86_64": (175, 313), "aarch64": (105, 273)}  # (init_module, finit_module)
# What every event record holds after its kind (Auditor.on_value decodes it).
HEAD = "nsecs, pid, tid, uid, comm"

# ----------------------------------------------------------------------------- the BPF script
# A record holds at most one STRLEN string: a tuple and the strings it is built from share the
# probe's 512-byte stack.  Longer events (exec, mount) send their strings first as "part" records
# ("p", tid, field, value) that the head record, printed last by the same task, collects.
# Syscall arguments are kept at sys_enter in maps keyed by tid (@k holds which syscall, @a0..@a3
# its arguments) and the event is printed once, at sys_exit, with the result: one record per
# action, so "events + lost" counts actions.

def _stash(code: int, *values: str) -> str:
    sets = " ".join(f"@a{i}[tid] = {v};" for i, v in enumerate(values))
    return f"@k[tid] = {code}; {sets}"


def _unstash(n: int) -> str:
    return " ".join(["delete(@k[tid]);", *(f"delete(@a{i}[tid]);" for i in range(n))])


def _exec_probes(own: str) -> str:
    # A chunk never reads past env_end: with a short argv and an empty environment the strings
    # end near the top of the stack mapping.  Below arg_start the stack is mapped (argv[], auxv).
    chunks = "\n".join(
        f"  if ($len > {i * ARGV_CHUNK}) {{\n"
        f"    $s = $mm->arg_start + {i * ARGV_CHUNK};\n"
        f"    if ($s + {ARGV_CHUNK} > $mm->env_end) {{ $s = $mm->env_end - {ARGV_CHUNK}; }}\n"
        f"    print((\"xa\", tid, $s - $mm->arg_start, buf(uptr($s), {ARGV_CHUNK})));\n  }}"
        for i in range(ARGV_CHUNKS))
    failed = "\n".join(
        f"  $p{i} = *(uint64 *)uptr(@a1[tid] + {8 * i}); "
        f"if ($p{i} != 0 && $more) {{ print((\"p\", tid, \"argv{i}\", str(uptr((uint8 *)$p{i})))); }}"
        f" else {{ $more = 0; }}"
        for i in range(FAILED_ARGV))
    more = (f"  $p{FAILED_ARGV} = *(uint64 *)uptr(@a1[tid] + {8 * FAILED_ARGV}); "
            f"if ($p{FAILED_ARGV} != 0 && $more) {{ print((\"p\", tid, \"argv_more\", \"\")); }}")
    return f"""
rawtracepoint:sched_process_exec /{own}/ {{ print(("p", tid, "filename", str(args.bprm->filename))); }}
rawtracepoint:sched_process_exec /{own}/ {{
  $mm = curtask->mm;
  $len = $mm->arg_end - $mm->arg_start;
{chunks}
}}
rawtracepoint:sched_process_exec /{own}/ {{
  $t = curtask;
  $mm = $t->mm;
  print(("x", {HEAD}, $t->real_parent->tgid, $t->real_parent->comm, $t->cred->euid.val, gid, $t->cred->egid.val,
         $mm->arg_end - $mm->arg_start, str($t->fs->pwd.dentry->d_name.name, 63)));
  if (@k[args.old_pid] == 100) {{ delete(@k[args.old_pid]); delete(@a0[args.old_pid]); delete(@a1[args.old_pid]); }}
}}
tracepoint:syscalls:sys_enter_execve /{own}/ {{ {_stash(100, "(uint64)args.filename", "(uint64)args.argv")} }}
tracepoint:syscalls:sys_enter_execveat /{own}/ {{ {_stash(100, "(uint64)args.filename", "(uint64)args.argv")} }}
tracepoint:syscalls:sys_exit_execve, tracepoint:syscalls:sys_exit_execveat /@k[tid] == 100 && args.ret < 0/ {{
  print(("p", tid, "filename", str(uptr((uint8 *)@a0[tid]))));
}}
tracepoint:syscalls:sys_exit_execve, tracepoint:syscalls:sys_exit_execveat /@k[tid] == 100 && args.ret < 0/ {{
  $more = 1;
{failed}
{more}
}}
tracepoint:syscalls:sys_exit_execve, tracepoint:syscalls:sys_exit_execveat /@k[tid] == 100/ {{
  if (args.ret < 0) {{
    $t = curtask;
    print(("xe", {HEAD}, $t->real_parent->tgid, $t->real_parent->comm, $t->cred->euid.val, gid, $t->cred->egid.val,
           args.ret, str($t->fs->pwd.dentry->d_name.name, 63)));
  }}
  {_unstash(2)}
}}
"""


def _setid_probes(own: str) -> str:
    out = []
    for code, (name, argnames) in SETID.items():
        values = [f"args.{a}" for a in argnames] + ["0"] * (3 - len(argnames))
        out.append(f"""
tracepoint:syscalls:sys_enter_{name} /{own}/ {{
  $c = curtask->cred;
  {_stash(code, *values)}
  @a3[tid] = ((uint64)$c->uid.val << 32) | $c->euid.val;
  @a4[tid] = ((uint64)$c->gid.val << 32) | $c->egid.val;
}}
tracepoint:syscalls:sys_exit_{name} /@k[tid] == {code}/ {{
  $c = curtask->cred;
  print(("s", {HEAD}, {code}, @a0[tid], @a1[tid], @a2[tid], @a3[tid], @a4[tid], $c->uid.val, $c->euid.val,
         $c->gid.val, $c->egid.val, args.ret));
  {_unstash(5)}
}}""")
    return "".join(out)


def _capset_probes(own: str) -> str:
    words = ", ".join(f"*(uint32 *)uptr(@a1[tid] + {4 * i})" for i in range(6))
    return f"""
tracepoint:syscalls:sys_enter_capset /{own}/ {{ {_stash(30, "(uint64)args.header", "(uint64)args.data")} }}
tracepoint:syscalls:sys_exit_capset /@k[tid] == 30/ {{
  print(("c", {HEAD}, *(uint32 *)uptr(@a0[tid]), *(int32 *)uptr(@a0[tid] + 4), {words}, args.ret));
  {_unstash(2)}
}}
"""


def _ptrace_probes(own: str) -> str:
    cond = " || ".join(f"args.request == {r}" for r in PTRACE_REQUESTS)
    return f"""
tracepoint:syscalls:sys_enter_ptrace /{own} && ({cond})/ {{
  {_stash(40, "args.request", "args.pid", "args.addr", "args.data")}
}}
tracepoint:syscalls:sys_exit_ptrace /@k[tid] == 40/ {{
  print(("t", {HEAD}, @a0[tid], @a1[tid], @a2[tid], @a3[tid], args.ret));
  {_unstash(4)}
}}
"""


def _module_probes(own: str) -> str:
    init_nr, finit_nr = MODULE_SYSCALLS.get(platform.machine(), MODULE_SYSCALLS["x86_64"])
    # Not the syscalls:*_module tracepoints: a kernel without CONFIG_MODULES has none, and still
    # sees (and refuses) the attempts, which an auditor wants to know about.
    return f"""
tracepoint:raw_syscalls:sys_enter /(args.id == {init_nr} || args.id == {finit_nr}) && {own}/ {{
  {_stash(50, "args.id", "args.args[0]", "args.args[1]", "args.args[2]")}
}}
tracepoint:raw_syscalls:sys_exit /@k[tid] == 50/ {{
  $fd = @a0[tid] == {finit_nr} ? @a1[tid] : (uint64)-1;
  $params = @a0[tid] == {finit_nr} ? @a2[tid] : @a3[tid];
  $f = (struct file *)0;
  if ($fd < 65536) {{ $f = (struct file *)*(uint64 *)((uint64)curtask->files->fdt->fd + $fd * 8); }}
  print(("p", tid, "params", str(uptr((uint8 *)$params), 128)));
  print(("m", {HEAD}, @a0[tid] == {finit_nr} ? 1 : 0, $fd, @a2[tid], @a3[tid], args.ret,
         $f != 0 ? str($f->f_path.dentry->d_name.name, 64) : ""));
  {_unstash(4)}
}}
"""


def _bpf_probes(own: str) -> str:
    # union bpf_attr, BPF_PROG_LOAD: prog_type @0, insn_cnt @4, license @16, prog_flags @44,
    # prog_name[16] @48, expected_attach_type @68.
    return f"""
tracepoint:syscalls:sys_enter_bpf /args.cmd == 5 && {own}/ {{ {_stash(60, "(uint64)args.uattr")} }}
tracepoint:syscalls:sys_exit_bpf /@k[tid] == 60/ {{
  $a = @a0[tid];
  print(("p", tid, "license", str(uptr((uint8 *)*(uint64 *)uptr($a + 16)), 64)));
  print(("b", {HEAD}, *(uint32 *)uptr($a), *(uint32 *)uptr($a + 4), *(uint32 *)uptr($a + 68),
         *(uint32 *)uptr($a + 44), args.ret, str(uptr((uint8 *)($a + 48)), 16)));
  {_unstash(1)}
}}
"""


def _prefix_match(ptr: str, paths: list[str]) -> str:
    """Statements setting $m to 1 when the user string at ``ptr`` starts with one of ``paths``.
    Not strncmp() against literals: it unrolls byte by byte (a long prefix overflows the 512-byte
    stack); the string is read as 8-byte words instead, the first word once for every prefix and
    the others only when some prefix's first word matched (most opens cost one read)."""
    def words(path: str) -> list[tuple[int, int]]:
        raw = path.encode()
        out = []
        for i in range(0, len(raw), 8):
            chunk = raw[i:i + 8]
            out.append((int.from_bytes(chunk.ljust(8, b"\0"), "little"), (1 << 8 * len(chunk)) - 1))
        return out

    def test(i: int, value: int, mask: int) -> str:
        # Halves: a literal stays below 2**32 whatever the bytes (no unsigned 64-bit literals).
        w = f"$w{i}"
        lo = f"({w} & {mask & 0xFFFFFFFF})" if mask & 0xFFFFFFFF != 0xFFFFFFFF else f"({w} & 0xffffffff)"
        hi = f"(({w} >> 32) & {mask >> 32})"
        return f"{lo} == {value & 0xFFFFFFFF} && {hi} == {value >> 32}"

    all_words = [words(p) for p in paths]
    longest = max(len(w) for w in all_words)
    first = " || ".join(f"({test(0, *w[0])})" for w in all_words)
    reads = " ".join(f"$w{i} = *(uint64 *)uptr({ptr} + {8 * i});" for i in range(1, longest))
    checks = "\n    ".join(
        f"if ({' && '.join(f'({test(i, *x)})' for i, x in enumerate(w))}) {{ $m = 1; }}" for w in all_words)
    return (f"$m = 0;\n  $w0 = *(uint64 *)uptr({ptr});\n"
            f"  if ({first}) {{\n    {reads}\n    {checks}\n  }}")


def _open_probes(own: str, paths: list[str]) -> str:
    out = []
    for code, (name, path_arg, flags, mode) in OPENS.items():
        out.append(f"""
tracepoint:syscalls:sys_enter_{name} /{own}/ {{
  {_prefix_match(f"(uint64)args.{path_arg}", paths)}
  if ($m) {{ {_stash(code, f"(uint64)args.{path_arg}", flags, mode)} }}
}}
tracepoint:syscalls:sys_exit_{name} /@k[tid] == {code}/ {{
  print(("o", {HEAD}, {code}, @a1[tid], @a2[tid], args.ret, str(uptr((uint8 *)@a0[tid]))));
  {_unstash(3)}
}}""")
    return "".join(out)


def _sock_fields(sk: str) -> str:
    """The local end of a socket: type, protocol, v4 address, port, v6 address words."""
    return (f"{sk}->sk_type, {sk}->sk_protocol, $c.skc_rcv_saddr, $c.skc_num, "
            + ", ".join(f"$c.skc_v6_rcv_saddr.in6_u.u6_addr32[{i}]" for i in range(4)))


def _file_sock(fd: str) -> str:
    return (f"$f = (struct file *)*(uint64 *)((uint64)curtask->files->fdt->fd + {fd} * 8);\n"
            f"  $sk = ((struct socket *)$f->private_data)->sk;\n  $c = $sk->__sk_common;")


def _connect_probes(own: str) -> str:
    # The remote end is the address the caller passed (sockaddr_in/_in6 in user memory, still there
    # at sys_exit); the local end is read from the socket (its port is chosen during connect).
    # ENOTSOCK/EBADF: the fd is no socket, nothing to read.
    v6 = ", ".join(f"*(uint32 *)uptr($sa + {8 + 4 * i})" for i in range(4))
    return f"""
tracepoint:syscalls:sys_enter_connect /{own}/ {{
  $fam = *(uint16 *)uptr(args.uservaddr);
  if ($fam == 2 || $fam == 10) {{ {_stash(70, "args.fd", "(uint64)args.uservaddr")} }}
}}
tracepoint:syscalls:sys_exit_connect /@k[tid] == 70/ {{
  if (args.ret != -9 && args.ret != -88) {{
    $sa = @a1[tid];
    {_file_sock("@a0[tid]")}
    print(("n", {HEAD}, args.ret, *(uint16 *)uptr($sa), *(uint16 *)uptr($sa + 2), *(uint32 *)uptr($sa + 4), {v6},
           {_sock_fields("$sk")}));
  }}
  {_unstash(2)}
}}
"""


def _accept_probes(own: str) -> str:
    v6 = ", ".join(f"$c.skc_v6_daddr.in6_u.u6_addr32[{i}]" for i in range(4))
    return f"""
tracepoint:syscalls:sys_exit_accept, tracepoint:syscalls:sys_exit_accept4 /args.ret >= 0 && {own}/ {{
  {_file_sock("args.ret")}
  if ($c.skc_family == 2 || $c.skc_family == 10) {{
    print(("a", {HEAD}, args.ret, $c.skc_family, $c.skc_dport, $c.skc_daddr, {v6}, {_sock_fields("$sk")}));
  }}
}}
"""


def _mount_probes(own: str) -> str:
    return f"""
tracepoint:syscalls:sys_enter_mount /{own}/ {{
  {_stash(80, "(uint64)args.dev_name", "(uint64)args.dir_name", "(uint64)args.type", "args.flags")}
}}
tracepoint:syscalls:sys_enter_move_mount /{own}/ {{
  {_stash(81, "(uint64)args.from_pathname", "(uint64)args.to_pathname", "0", "args.flags")}
}}
tracepoint:syscalls:sys_exit_mount, tracepoint:syscalls:sys_exit_move_mount /@k[tid] == 80 || @k[tid] == 81/ {{
  print(("p", tid, "source", str(uptr((uint8 *)@a0[tid]))));
  print(("p", tid, "target", str(uptr((uint8 *)@a1[tid]))));
}}
tracepoint:syscalls:sys_exit_mount, tracepoint:syscalls:sys_exit_move_mount /@k[tid] == 80 || @k[tid] == 81/ {{
  print(("mt", {HEAD}, @k[tid], @a3[tid], args.ret, @a2[tid] != 0 ? str(uptr((uint8 *)@a2[tid]), 32) : ""));
  {_unstash(4)}
}}
tracepoint:syscalls:sys_enter_umount /{own}/ {{ {_stash(82, "(uint64)args.name", "args.flags")} }}
tracepoint:syscalls:sys_exit_umount /@k[tid] == 82/ {{
  print(("u", {HEAD}, @a1[tid], args.ret, str(uptr((uint8 *)@a0[tid]))));
  {_unstash(2)}
}}
"""


def _kill_probes(own: str) -> str:
    # signal_generate runs in the sender's context with the target task at hand: compare the real
    # uids here.  info may be SEND_SIG_NOINFO (0) or SEND_SIG_PRIV (1) for kernel-sent signals;
    # si_code SI_USER (kill, pidfd_send_signal), SI_QUEUE (sigqueue), SI_TKILL (tkill/tgkill) are
    # the ones a process sends.
    return f"""
rawtracepoint:signal_generate /{own}/ {{
  $i = args.info;
  if ((uint64)$i > 4096) {{
    $code = $i->si_code;
    $target = args.task;
    if (($code == 0 || $code == -1 || $code == -6) && $target->real_cred->uid.val != curtask->real_cred->uid.val) {{
      print(("k", {HEAD}, args.sig, $target->tgid, $target->pid, $target->real_cred->uid.val, $target->comm,
             $code, args.result));
    }}
  }}
}}
tracepoint:syscalls:sys_enter_kill /{own}/ {{ {_stash(90, "args.pid", "args.pid", "args.sig")} }}
tracepoint:syscalls:sys_enter_tkill /{own}/ {{ {_stash(91, "0", "args.pid", "args.sig")} }}
tracepoint:syscalls:sys_enter_tgkill /{own}/ {{ {_stash(92, "args.tgid", "args.pid", "args.sig")} }}
tracepoint:syscalls:sys_exit_kill, tracepoint:syscalls:sys_exit_tkill, tracepoint:syscalls:sys_exit_tgkill
    /@k[tid] >= 90 && @k[tid] <= 92/ {{
  // Refused (EPERM: the target is another user's): no signal was generated, so signal_generate
  // did not see it; the target is alive, user space reads its uid.
  if (args.ret == -1) {{ print(("kd", {HEAD}, @k[tid], @a0[tid], @a1[tid], @a2[tid])); }}
  {_unstash(3)}
}}
"""


def build_script(categories: list[str], paths: list[str], own_pid: int) -> str:
    own = f"pid != {own_pid}"
    # The @k/@a* maps hold the syscalls in flight (keyed by tid): room for MAX_INFLIGHT of them.
    parts = [f"config = {{ max_strlen = {STRLEN}; max_map_keys = {MAX_INFLIGHT}; print_maps_on_exit = false }}\n"]
    builders: dict[str, Callable[[str], str]] = {
        "exec": _exec_probes, "setid": _setid_probes, "capset": _capset_probes, "ptrace": _ptrace_probes,
        "module": _module_probes, "bpf": _bpf_probes, "open": lambda o: _open_probes(o, paths),
        "connect": _connect_probes, "accept": _accept_probes, "mount": _mount_probes, "kill": _kill_probes}
    for cat in categories:
        parts.append(builders[cat](own))
    return "".join(parts)
