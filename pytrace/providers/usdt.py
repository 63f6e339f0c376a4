"""usdt: user-space statically defined tracepoints (``.note.stapsdt``).

Syntax: ``usdt:/path:probe``, ``usdt:/path:provider:probe`` (globs allowed);
with ``-p PID`` the path may be left out.  Arguments are ``arg0..argN``,
decoded from the note's operand specs at attach time.
"""

from __future__ import annotations

from ..frontend.ast import AttachPoint
from .base import PROG_KPROBE, ProgramShape, Provider, ResolveEnv, ResolvedAttach, part_span
from .uprobe import resolve_binary


class UsdtProvider(Provider):
    listed_by_default = False
    name = "usdt"
    aliases = ("U",)
    max_parts = 4

    def usage(self) -> str:
        return "usdt:/path/to/binary:provider:probe or usdt:/path/to/binary:probe"

    def program(self, a: ResolvedAttach) -> ProgramShape:
        return ProgramShape("uprobe", "regs", PROG_KPROBE, user=True)

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        with_path = True
        if env.pid is not None and len(parts) in (2, 3) and not parts[1].startswith("/"):
            parts = [parts[0], f"/proc/{env.pid}/exe", *parts[1:]]
            with_path = False
        if len(parts) not in (3, 4) or not all(parts[1:]):
            return self.error_form(ap, env, "a binary and a probe name are needed")
        path = resolve_binary(parts[1], env.pid)
        if path is None:
            env.diags.error(f"binary or library not found: {parts[1]}", part_span(ap, 1) if with_path else ap.span,
                            hints=["give the full path, e.g. usdt:/usr/bin/python3:python:function__entry"])
            return []
        provider = parts[2] if len(parts) == 4 else None
        probe = parts[-1]
        target = f"usdt:{path}:" + (f"{provider}:" if provider else "") + probe
        return [ResolvedAttach(self.name, target, ap.span, nargs=12,
                               detail={"path": path, "provider": provider, "probe": probe})]
