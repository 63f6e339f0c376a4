"""rawtracepoint: raw (BTF-typed) tracepoints (``rawtracepoint[:module]:event``).

``args`` is typed from the kernel's ``btf_trace_<event>`` prototype; the
arguments are also available as ``arg0..argN``.  The program is a
BPF_PROG_TYPE_RAW_TRACEPOINT one (the arguments are an array of u64, read
at ``8 * i`` whatever their type) attached with BPF_RAW_TRACEPOINT_OPEN:
it needs no BTF at load time, so the untyped ``argN`` form works on a
kernel without BTF too.
"""

from __future__ import annotations

import fnmatch
import os
import re

from ..frontend.ast import AttachPoint
from ..kernel.info import has_wildcard
from ..semantic.types import Field, StructType
from .base import (PROG_RAW_TRACEPOINT, AttachEnv, ListEnv, ProgramShape, Provider, ResolveEnv, ResolvedAttach,
                   not_found)

_RAWTP = re.compile(rb"\x00btf_trace_(\w+)(?=\x00)")


class RawTracepointProvider(Provider):
    name = "rawtracepoint"
    aliases = ("rt",)

    def usage(self) -> str:
        return "rawtracepoint:event or rawtracepoint:module:event (e.g. rawtracepoint:sched_switch)"

    def program(self, a: ResolvedAttach) -> ProgramShape:
        return ProgramShape("rawtp", "rawtp", PROG_RAW_TRACEPOINT)

    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list:  # type: ignore[type-arg]
        from ..bpf.attach import attach_raw_tracepoint
        return [attach_raw_tracepoint(prog_fd, a.detail["event"])]

    def list_probes(self, rest_glob: str, lister: ListEnv) -> list[str]:
        return [f"rawtracepoint:{name}" for name in raw_tracepoints()]

    def describe(self, line: str, lister: ListEnv) -> list[str]:
        try:
            from ..kernel.btf import Btf
            args = Btf.load().raw_tracepoint_signature(line.partition(":")[2])
        except Exception:  # no BTF, or one this reader cannot follow: nothing to add
            return []
        return [f"{t} {n}" for t, n in args or []]

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) not in (2, 3) or not parts[-1]:
            return self.error_form(ap, env, "a raw tracepoint needs an event name")
        event = parts[-1]
        btf = env.kernel.btf()
        if btf is None:
            # Without BTF only the untyped argN form is available.
            return [ResolvedAttach(self.name, f"rawtracepoint:{event}", ap.span, nargs=6,
                                   detail={"event": event})]
        if has_wildcard(event):
            # Raw tracepoints share their names with tracefs events; the BTF
            # prototype below confirms each one.
            names = sorted({ev for _cat, ev in env.kernel.tracepoints() if fnmatch.fnmatchcase(ev, event)})
            names = [n for n in names if btf.raw_tracepoint_args(n) is not None]
            if not names:
                env.diags.error(f"no raw tracepoints match '{event}'", ap.span)
                return []
        else:
            names = [event]
        out = []
        for name in names:
            args = btf.raw_tracepoint_args(name)
            if args is None:
                return not_found(env, ap, "raw tracepoint", name, [],
                                 [f"list them with: pytrace -l 'rawtracepoint:*{name[:4]}*'"])
            fields = tuple(Field(n or f"arg{i}", t, i * 8) for i, (n, t) in enumerate(args))
            struct = StructType("struct", f"_rawtracepoint_{name}", fields, 8 * len(fields), 8)
            out.append(ResolvedAttach(self.name, f"rawtracepoint:{name}", ap.span, args=struct,
                                      nargs=len(fields), detail={"event": name}))
        return out


def raw_tracepoints(btf_dir: str = "/sys/kernel/btf") -> list[str]:
    """Event names of every ``btf_trace_<event>`` typedef in the kernel's BTF
    (vmlinux and modules), sorted: found with one regular expression over
    each string table instead of parsing 100,000+ types.  Empty without BTF."""
    from ..kernel.features import btf_string_table
    names: set[str] = set()
    try:
        files = sorted(os.listdir(btf_dir))
    except OSError:
        return []
    for f in files:
        try:
            table = btf_string_table(os.path.join(btf_dir, f))
        except Exception:  # an unreadable or foreign file: skip it
            continue
        names.update(m.group(1).decode("ascii", "replace") for m in _RAWTP.finditer(table))
    return sorted(names)
