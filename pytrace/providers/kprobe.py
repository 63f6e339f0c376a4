"""kprobe and kretprobe: dynamic probes on kernel functions.

Syntax: ``kprobe:func``, ``kprobe:func+offset``, ``kprobe:module:func``,
``kprobe:0xaddr``; ``kretprobe:func``.  Whether the kernel offers kprobes is
decided at attach time (this project's reference VM has none), so resolution
checks the syntax and, where the kernel has kprobes, expands wildcards
(``kprobe:vfs_rea*``, ``kprobe:overlay:ovl_*``) against the functions it can
probe: one attach point per function, as bpftrace 0.17 does without
kprobe_multi.
"""

from __future__ import annotations

import os
import re

from ..errors import EnvironmentProblem
from ..frontend.ast import AttachPoint
from ..kernel.info import has_wildcard
from ..semantic.types import U64
from typing import Callable

from .base import (PROG_KPROBE, AttachEnv, ListEnv, ProgramShape, Provider, ResolveEnv, ResolvedAttach, parse_int,
                   part_span)

KPROBE_PMU = "/sys/bus/event_source/devices/kprobe/type"

_FUNC = re.compile(r"^[A-Za-z_.*?\[\]][A-Za-z0-9_.*?\[\]]*$")


class KprobeAttachFailed(EnvironmentProblem):
    """The kernel refused one kprobe (the function is inlined, missing or
    cannot be probed).  The runtime skips it with a warning when its probe
    names more than one function, as bpftrace 0.17 does: Debian's biolatency
    lists ``blk_account_io_start`` and ``__blk_account_io_start``, and 6.1
    has neither (the first is inlined)."""


class KprobeProvider(Provider):
    name = "kprobe"
    aliases = ("k",)
    is_return = False

    def usage(self) -> str:
        return f"{self.name}:function, {self.name}:function+offset or {self.name}:module:function"

    def program(self, a: ResolvedAttach) -> ProgramShape:
        # BPF_PROG_TYPE_KPROBE loads even where CONFIG_KPROBES is off (the
        # uprobes' program type): only attaching needs the kprobe PMU.
        return ProgramShape("kprobe", "regs", PROG_KPROBE)

    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list:  # type: ignore[type-arg]
        d = a.detail
        if not os.path.exists(KPROBE_PMU):
            # One sentence, no separate hint: what is missing and what to use instead.
            instead = kprobe_alternative(str(d.get("func") or ""), env.tracefs_root, exit=self.is_return)
            raise EnvironmentProblem(f"cannot attach {a.target}: this kernel has no kprobes "
                                     f"(CONFIG_KPROBES is off), so trace {instead}")
        from ..bpf.attach import attach_kprobe
        from ..bpf.syscalls import BpfError
        func = None
        if d.get("address") is None:
            # "module:function" is resolved by the kernel itself
            # (module_kallsyms_lookup_name splits at the colon).
            func = f"{d['module']}:{d['func']}" if d.get("module") else str(d["func"])
        try:
            return [attach_kprobe(prog_fd, func, int(d.get("offset") or 0), retprobe=self.is_return,
                                  address=d.get("address"))]
        except BpfError as exc:
            raise KprobeAttachFailed(f"cannot attach {a.target}: {exc.message}",
                                     "the function may be inlined, static or marked notrace; "
                                     "list what can be probed with: pytrace -l 'kprobe:*'") from None

    def list_probes(self, rest_glob: str, lister: ListEnv) -> list[str]:
        """Traceable functions as the kernel lists them (bpftrace reads
        available_filter_functions too)."""
        if not os.path.exists(KPROBE_PMU):
            lister.warn(f"this kernel has no kprobes (CONFIG_KPROBES is off), so there are no {self.name}s to "
                        "list: try 'tracepoint:*' or 'rawtracepoint:*'")
            return []
        from ..errors import EnvironmentProblem
        from ..kernel import tracefs
        from ..kernel.info import read_kernel_functions
        try:
            funcs = read_kernel_functions(tracefs.tracefs_root())
        except EnvironmentProblem as exc:  # no tracefs
            lister.warn(f"cannot list {self.name}s: {exc}")
            return []
        if not funcs:
            lister.warn(f"cannot list {self.name}s: available_filter_functions is missing or empty")
            return []
        # The same functions a wildcard expands to (resolve_parts).
        names = {f for f, _mod in funcs}
        return [f"{self.name}:{n}" for n in sorted(names)]

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) not in (2, 3) or not parts[-1]:
            return self.error_form(ap, env, "a kernel function is needed")
        module = parts[1] if len(parts) == 3 else None
        func, offset = parts[-1], 0
        last = len(parts) - 1
        if "+" in func:
            plus = func.index("+")
            if self.is_return:
                return self.error_form(ap, env, f"a {self.name} cannot have an offset",
                                       part_span(ap, last, skip=plus))
            func, off = func.split("+", 1)
            value = parse_int(off) if off else None
            if value is None:
                return self.error_form(ap, env, f"invalid offset '{off}'", part_span(ap, last, skip=plus + 1))
            offset = value
        address = parse_int(func) if func[:1].isdigit() else None
        if address is None and not _FUNC.match(func):
            return self.error_form(ap, env, f"invalid function name '{func}'", part_span(ap, last))
        funcs: list[str] | list[tuple[str, str | None]] = [func]
        if address is None and (has_wildcard(func) or (module and has_wildcard(module))):
            matched = self._expand(func, module, env)
            if matched is not None:
                if not matched:
                    # A warning, as bpftrace 0.17 skips such a probe: dcsnoop
                    # asks for lookup_fast.constprop.*, which 6.1 lacks.
                    env.diags.warning(f"no kernel functions match '{':'.join(parts[1:])}': this probe is skipped",
                                      ap.span, hints=["list what can be probed with: pytrace -l 'kprobe:*'"])
                    return []
                if offset:
                    return self.error_form(ap, env, "an offset needs a single function, not a wildcard",
                                           part_span(ap, last))
                funcs = matched
        out = []
        for fm in funcs:
            f, mod = fm if isinstance(fm, tuple) else (fm, module)
            target = f"{self.name}:" + (f"{mod}:" if mod else "") + f + (f"+{offset}" if offset else "")
            out.append(ResolvedAttach(self.name, target, ap.span, nargs=0 if self.is_return else 6,
                                      retval=U64 if self.is_return else None, has_func=True,
                                      detail={"module": mod, "func": f, "offset": offset, "address": address}))
        return out

    @staticmethod
    def _expand(func: str, module: str | None, env: ResolveEnv) -> list[tuple[str, str | None]] | None:
        """(function, module) pairs a wildcard matches, as bpftrace expands
        them (against available_filter_functions); the module is the one
        written unless it is itself a wildcard.  None where the kernel has no
        kprobes, so that attaching reports what to trace instead."""
        funcs = env.kernel.kernel_functions()
        if funcs is None:
            return None
        import fnmatch
        if module is None:
            return sorted({(f, None) for f, _mod in funcs if fnmatch.fnmatchcase(f, func)},
                          key=lambda fm: fm[0])
        return sorted({(f, module if not has_wildcard(module) else mod) for f, mod in funcs
                       if mod is not None and fnmatch.fnmatchcase(f, func) and fnmatch.fnmatchcase(mod, module)},
                      key=lambda fm: (fm[0], fm[1] or ""))


class KretprobeProvider(KprobeProvider):
    name = "kretprobe"
    aliases = ("kr",)
    is_return = True


# Kernel functions that kprobe tools (Debian's /usr/sbin/*.bt among them)
# trace, with what sees the same events without kprobes, best first: the
# first one this kernel offers is named.  ``{side}`` is "enter" for a kprobe
# and "exit" for a kretprobe; a note says how the events relate when the
# substitute is not the function's own tracepoint.
_INSTEAD: tuple[tuple[str, tuple[str, ...], str], ...] = (
    # block_io_start/done replaced blk_account_io_* in 6.5; older kernels
    # have only the request tracepoints.
    (r"_*blk_account_io_start", ("tracepoint:block:block_io_start", "tracepoint:block:block_rq_issue"), ""),
    (r"_*blk_account_io_(?:done|completion)",
     ("tracepoint:block:block_io_done", "tracepoint:block:block_rq_complete"), ""),
    # blk_mq_start_request() is where block_rq_issue fires.
    (r"blk_(?:mq_)?start_request", ("tracepoint:block:block_rq_issue",), ""),
    (r"md_flush_request", ("tracepoint:block:block_bio_queue",), "flushes have F in args->rwbs"),
    # oom_kill_process() marks its victim (mark_oom_victim) before killing it.
    (r"oom_kill_process|__oom_kill_process|out_of_memory", ("tracepoint:oom:mark_victim",), ""),
    (r"swap_readpage|swap_read_folio|swapin_readahead|do_swap_page", ("software:major-faults:1",),
     "a swap-in is a major page fault"),
    # tcp_set_state() is where inet_sock_set_state fires; connect, accept and
    # the SYN backlog are transitions of it.
    (r"tcp_set_state|inet_sk_state_store", ("tracepoint:sock:inet_sock_set_state",), ""),
    (r"tcp_connect|tcp_v[46]_connect", ("tracepoint:sock:inet_sock_set_state",),
     "a connect is its CLOSE -> SYN_SENT transition"),
    (r"inet_csk_accept", ("tracepoint:sock:inet_sock_set_state",),
     "an accepted connection is its SYN_RECV -> ESTABLISHED transition"),
    (r"tcp_v[46]_syn_recv_sock|tcp_conn_request", ("tracepoint:sock:inet_sock_set_state",),
     "a connection from the SYN backlog is born in SYN_RECV"),
    (r"tcp_drop|tcp_drop_reason|kfree_skb_reason|sk_skb_reason_drop", ("tracepoint:skb:kfree_skb",), ""),
    (r"unix_stream_read_actor|unix_stream_recvmsg|unix_dgram_recvmsg|sock_recvmsg",
     ("tracepoint:sock:sock_recv_length",), ""),
    (r"xfs_file_read_iter", ("tracepoint:xfs:xfs_file_buffered_read",), ""),
    (r"xfs_file_write_iter", ("tracepoint:xfs:xfs_file_buffered_write",), ""),
    (r"ext4_file_read_iter", ("tracepoint:syscalls:sys_{side}_read",), ""),
    (r"ext4_file_write_iter", ("tracepoint:syscalls:sys_{side}_write",), ""),
    # The VFS entry points behind the file syscalls (vfs_* as a whole: every
    # syscall).
    (r"vfs_(?:read|readv|iter_read)", ("tracepoint:syscalls:sys_{side}_read",), ""),
    (r"vfs_(?:write|writev|iter_write)", ("tracepoint:syscalls:sys_{side}_write",), ""),
    (r"vfs_fsync(?:_range)?", ("tracepoint:syscalls:sys_{side}_fsync",), ""),
    (r"vfs_open|do_filp_open|vfs_create", ("tracepoint:syscalls:sys_{side}_openat",), ""),
    (r"vfs_(?:statx|getattr|fstatat)", ("tracepoint:syscalls:sys_{side}_statx",), ""),
    (r"vfs_unlink", ("tracepoint:syscalls:sys_{side}_unlinkat",), ""),
    (r"vfs_rename", ("tracepoint:syscalls:sys_{side}_renameat2",), ""),
    (r"vfs_mkdir", ("tracepoint:syscalls:sys_{side}_mkdirat",), ""),
    (r"vfs_", ("tracepoint:syscalls:sys_{side}_*",), ""),
)

_SYSCALL_ENTRY = re.compile(r"^(?:__x64_sys_|__ia32_sys_|__se_sys_|__do_sys_|do_sys_|ksys_|sys_)(\w+?)(?:2)?$")


def kprobe_alternative(func: str, tracefs_root: "Callable[[], str] | None" = None, *, exit: bool = False) -> str:
    """What to trace instead of a kprobe on ``func``, ending with "instead":
    a tracepoint of the same name if one exists (``tcp_retransmit_skb``),
    the tracepoint known to see the same events (``oom_kill_process``:
    oom:mark_victim; the table above), the syscall's tracepoint for a
    syscall entry point (``__x64_sys_openat``, ``do_sys_openat2``; its
    sys_exit_ one for a kretprobe), else a pointer to the list of
    tracepoints.  ``func`` may hold wildcards as written (``vfs_read*``)."""
    events = _tracepoints(tracefs_root)
    names = {ev: cat for cat, ev in events}
    side = "exit" if exit else "enter"
    if func in names:
        return f"tracepoint:{names[func]}:{func} instead"
    # A wildcard's literal stem names the functions it means (vfs_read* ->
    # vfs_read, vfs_* -> vfs_).
    stem = re.split(r"[*?\[]", func, maxsplit=1)[0]
    for pattern, candidates, note in _INSTEAD:
        if not re.fullmatch(pattern, stem):
            continue
        for cand in candidates:
            probe = cand.format(side=side)
            if _offered(probe, events):
                return f"{probe} instead" + (f" ({note})" if note else "")
    m = _SYSCALL_ENTRY.match(func)
    if m:
        for cand in (m.group(1), func.split("sys_", 1)[1]):
            if f"sys_{side}_{cand}" in names:
                return f"tracepoint:syscalls:sys_{side}_{cand} instead"
    return "a tracepoint instead (list them with: pytrace -l 'tracepoint:*')"


def _tracepoints(tracefs_root: "Callable[[], str] | None") -> list[tuple[str, str]]:
    """(category, event) of every tracepoint; none without tracefs (then
    only the generic advice is given)."""
    from ..kernel import tracefs
    try:
        root = tracefs_root() if tracefs_root is not None else tracefs.tracefs_root()
        return tracefs.list_tracepoints(root)
    except Exception:  # no tracefs, or not readable: an error path already
        return []


def _offered(probe: str, events: list[tuple[str, str]]) -> bool:
    """Whether this kernel has ``probe``: a tracepoint (a wildcard event
    matches any), or a perf software event (always there)."""
    import fnmatch
    kind, _, rest = probe.partition(":")
    if kind == "software":
        return True
    cat, _, ev = rest.partition(":")
    if any(c in ev for c in "*?["):
        return any(c == cat and fnmatch.fnmatchcase(e, ev) for c, e in events)
    return (cat, ev) in events
