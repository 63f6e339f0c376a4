"""iter: BPF iterators (``iter:task``, ``iter:task_file``, ``iter:task:PIN``).

The program runs once per kernel object while user space reads the
iterator; ``ctx`` holds the object (e.g. ``ctx->task``).  The kernel must
have a ``bpf_iter_<name>`` BTF type for the iterator to exist.
"""

from __future__ import annotations

from ..frontend.ast import AttachPoint
from .base import Provider, ResolveEnv, ResolvedAttach, not_found, part_span

KNOWN_ITERATORS = ("task", "task_file", "task_vma", "tcp", "udp", "unix", "bpf_map", "bpf_prog",
                   "bpf_link", "bpf_map_elem", "ksym", "cgroup", "netlink", "ipv6_route", "bpf_sk_storage_map",
                   "sockmap")


class IterProvider(Provider):
    name = "iter"
    aliases = ("it",)

    def usage(self) -> str:
        return "iter:task, iter:task_file, iter:task_vma or iter:NAME:PIN_PATH"

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) not in (2, 3) or not parts[1]:
            return self.error_form(ap, env, "an iterator name is needed")
        name = parts[1]
        if name not in KNOWN_ITERATORS:
            return not_found(env, ap, "iterator", name, list(KNOWN_ITERATORS), span=part_span(ap, 1))
        pin = parts[2] if len(parts) == 3 else None
        return [ResolvedAttach(self.name, f"iter:{name}", ap.span, detail={"iterator": name, "pin": pin})]
