"""fentry and fexit (kfunc/kretfunc): BTF-typed kernel function probes.

``args`` holds the function's parameters by name and type from BTF; fexit
also has a typed ``retval``.  Syntax: ``fentry:func`` or ``fentry:module:func``.
"""

from __future__ import annotations

import fnmatch

from ..frontend.ast import AttachPoint
from ..kernel.info import has_wildcard
from ..semantic.types import Field, StructType, U64, VoidType
from .base import (ATTACH_TRACE_FENTRY, ATTACH_TRACE_FEXIT, PROG_TRACING, AttachEnv, ListEnv, ProgramShape,
                   Provider, ResolveEnv, ResolvedAttach, not_found)


class FentryProvider(Provider):
    name = "fentry"
    aliases = ("f", "kfunc")
    is_return = False

    def usage(self) -> str:
        return f"{self.name}:function or {self.name}:module:function"

    def program(self, a: ResolvedAttach) -> ProgramShape:
        # BPF_PROG_TYPE_TRACING at the function's BTF id: the arguments are
        # u64 slots, typed by BTF (context 'btf'); fexit has the return value
        # in the slot after the last argument.
        return ProgramShape("fentry", "btf", PROG_TRACING,
                            ATTACH_TRACE_FEXIT if self.is_return else ATTACH_TRACE_FENTRY,
                            btf_type=("func", str(a.detail["func"])))

    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list:  # type: ignore[type-arg]
        from ..bpf.attach import attach_raw_tracepoint
        return [attach_raw_tracepoint(prog_fd, None)]  # the trampoline: target fixed at load time

    def load_refused(self, a: ResolvedAttach, reason: str) -> str | None:
        from .kprobe import kprobe_alternative
        instead = kprobe_alternative(str(a.detail["func"]), exit=self.is_return)
        return (f"cannot load {a.target}: this kernel refuses {self.name} programs ({reason}), "
                f"so trace {instead}")

    def list_probes(self, rest_glob: str, lister: ListEnv) -> list[str]:
        """Every kernel function BTF describes (what fentry can attach to).
        Where the kernel does not load fentry programs they are listed only
        when asked for by name (``-l 'fentry:vfs_*'``, for ``-lv``'s
        prototypes), with a warning; never in the full list."""
        from ..kernel.features import fentry_works
        ok, why = fentry_works()
        if not ok:
            if not lister.explicit:
                return []
            lister.warn(f"this kernel does not load {self.name} programs ({why}): these functions cannot be "
                        "probed here; try 'rawtracepoint:*' or 'tracepoint:*'")
        try:
            from ..kernel.btf import Btf
            return [f"{self.name}:{n}" for n in sorted(set(Btf.load().func_names()))]
        except Exception as exc:  # no BTF
            lister.warn(f"cannot list {self.name} probes: no kernel BTF ({exc})")
            return []

    def describe(self, line: str, lister: ListEnv) -> list[str]:
        try:
            from ..kernel.btf import Btf
            sig = Btf.load().func_signature(line.rpartition(":")[2])
        except Exception:  # no BTF
            return []
        if sig is None:
            return []
        params, ret = sig
        out = [f"{t} {n}" for t, n in params]
        if self.is_return:
            out.append(f"{ret} retval")
        return out

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) not in (2, 3) or not parts[-1]:
            return self.error_form(ap, env, "a kernel function is needed")
        func = parts[-1]
        btf = env.kernel.btf()
        if btf is None:
            env.diags.error(f"{self.name} probes need kernel BTF, and this kernel has none", ap.span,
                            hints=["BTF comes from /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF=y)"])
            return []
        names = [func]
        if has_wildcard(func):
            names = sorted(n for n in btf.func_names() if fnmatch.fnmatchcase(n, func))
            if not names:
                env.diags.error(f"no kernel functions match '{func}'", ap.span)
                return []
        out = []
        for name in names:
            proto = btf.func(name)
            if proto is None:
                return not_found(env, ap, "kernel function", name, [])
            params, ret = proto
            fields = tuple(Field(n or f"arg{i}", t, i * 8) for i, (n, t) in enumerate(params))
            struct = StructType("struct", f"_fentry_{name}", fields, 8 * len(fields), 8)
            retval = None
            if self.is_return:
                retval = U64 if isinstance(ret, VoidType) else ret
            out.append(ResolvedAttach(self.name, f"{self.name}:{name}", ap.span, args=struct,
                                      retval=retval, has_func=True, detail={"func": name}))
        return out


class FexitProvider(FentryProvider):
    name = "fexit"
    aliases = ("fr", "kretfunc")
    is_return = True
