"""iter: BPF iterators (``iter:task``, ``iter:task_file``, ``iter:task:PIN``).

The program runs once per kernel object while user space reads the
iterator; ``ctx`` holds the object (e.g. ``ctx->task``).  The kernel must
have a ``bpf_iter_<name>`` BTF type for the iterator to exist.
"""

from __future__ import annotations

import re

from ..frontend.ast import AttachPoint
from .base import (ATTACH_TRACE_ITER, PROG_TRACING, ListEnv, ProgramShape, Provider, ResolveEnv, ResolvedAttach,
                   not_found, part_span)

KNOWN_ITERATORS = ("task", "task_file", "task_vma", "tcp", "udp", "unix", "bpf_map", "bpf_prog",
                   "bpf_link", "bpf_map_elem", "ksym", "cgroup", "netlink", "ipv6_route", "bpf_sk_storage_map",
                   "sockmap")


class IterProvider(Provider):
    name = "iter"
    aliases = ("it",)

    def usage(self) -> str:
        return "iter:task, iter:task_file, iter:task_vma or iter:NAME:PIN_PATH"

    def program(self, a: ResolvedAttach) -> ProgramShape:
        return ProgramShape("iter", "iter", PROG_TRACING, ATTACH_TRACE_ITER,
                            btf_type=("func", f"bpf_iter_{a.detail['iterator']}"))

    def list_probes(self, rest_glob: str, lister: ListEnv) -> list[str]:
        return [f"iter:{name}" for name in kernel_iterators()]

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) not in (2, 3) or not parts[1]:
            return self.error_form(ap, env, "an iterator name is needed")
        name = parts[1]
        if name not in KNOWN_ITERATORS:
            return not_found(env, ap, "iterator", name, list(KNOWN_ITERATORS), span=part_span(ap, 1))
        pin = parts[2] if len(parts) == 3 else None
        return [ResolvedAttach(self.name, f"iter:{name}", ap.span, detail={"iterator": name, "pin": pin})]


_CTX_STRUCT = re.compile(rb"\x00bpf_iter__([a-z0-9_]+?)(?=\x00)")


def kernel_iterators(btf_path: str = "/sys/kernel/btf/vmlinux") -> list[str]:
    """The iterators this kernel has: each defines its context struct
    ``struct bpf_iter__<name>`` (DEFINE_BPF_ITER_FUNC), found in the BTF
    string table without parsing the types.  Empty without BTF."""
    from ..kernel.features import btf_string_table
    try:
        table = btf_string_table(btf_path)
    except Exception:  # no BTF, or a file this reader cannot follow
        return []
    names = {m.group(1).decode("ascii") for m in _CTX_STRUCT.finditer(table)}
    return sorted(n for n in names if "__" not in n)
