"""fentry and fexit (kfunc/kretfunc): BTF-typed kernel function probes.

``args`` holds the function's parameters by name and type from BTF; fexit
also has a typed ``retval``.  Syntax: ``fentry:func`` or ``fentry:module:func``.
"""

from __future__ import annotations

import fnmatch

from ..frontend.ast import AttachPoint
from ..kernel.info import has_wildcard
from ..semantic.types import Field, StructType, U64, VoidType
from .base import Provider, ResolveEnv, ResolvedAttach, not_found


class FentryProvider(Provider):
    name = "fentry"
    aliases = ("f", "kfunc")
    is_return = False

    def usage(self) -> str:
        return f"{self.name}:function or {self.name}:module:function"

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
