"""iter: BPF iterators (``iter:task``, ``iter:task_file``, ``iter:NAME:PIN``).

An iterator program runs once per kernel object (task, open file, memory
mapping, socket, BPF map...) while user space reads the iterator's file;
``ctx`` is the kernel's ``struct bpf_iter__<name>`` (``ctx->task``,
``ctx->fd``, ``ctx->file``...).  The iterators are the kernel's own: every
``bpf_iter_<name>`` function of its BTF (DEFINE_BPF_ITER_FUNC) is one, so a
new kernel brings new ones without a change here.

``iter:NAME:PIN`` pins the iterator's link in bpffs (a relative path is
under /sys/fs/bpf) instead of reading it: ``cat PIN`` then runs it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..frontend.ast import AttachPoint
from ..kernel.info import has_wildcard
from .base import (ATTACH_TRACE_ITER, PROG_TRACING, AttachEnv, ListEnv, ProgramShape, Provider, ResolveEnv,
                   ResolvedAttach, not_found, part_span)

if TYPE_CHECKING:
    from ..kernel.btf import Btf

# bpftrace's documented iterators (0.12 task and task_file, 0.18 task_vma):
# only named when the kernel's BTF cannot be read, where no iterator can
# load anyway, to keep the diagnostics of --dry-run on such a machine useful.
DOCUMENTED_ITERATORS = ("task", "task_file", "task_vma")
BPFFS = "/sys/fs/bpf"


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

    def describe(self, line: str, lister: ListEnv) -> list[str]:
        """The iterated objects (``ctx``'s fields but ``meta``), as bpftrace -lv."""
        try:
            from ..kernel.btf import Btf
            sig = Btf.load().func_signature(f"bpf_iter_{line.partition(':')[2]}")
        except Exception:  # no BTF, or one this reader cannot follow: nothing to add
            return []
        return [f"{t} {n}" for t, n in (sig[0] if sig else []) if n != "meta"]

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        if len(parts) not in (2, 3) or not parts[1]:
            return self.error_form(ap, env, "an iterator name is needed")
        name = parts[1]
        pin = parts[2] if len(parts) == 3 else None
        for i, wild in ((1, has_wildcard(name)), (2, pin is not None and "*" in pin)):
            if wild:
                # One iterator is one program read once: as bpftrace, no wildcards.
                env.diags.error("iter probes do not support wildcards", part_span(ap, i),
                                hints=["list the iterators with: pytrace -l 'iter:*'"])
                return []
        if pin is not None and not pin:
            return self.error_form(ap, env, "the pin path is empty", part_span(ap, 2))
        btf = env.kernel.btf()
        if btf is not None:
            exists = btf.type_id("func", f"bpf_iter_{name}") is not None and btf.struct(f"bpf_iter__{name}") is not None
        else:
            exists = name in DOCUMENTED_ITERATORS
        if not exists:
            known = iterators_of(btf) if btf is not None else list(DOCUMENTED_ITERATORS)
            return not_found(env, ap, "iterator", name, known, span=part_span(ap, 1))
        # A pinned iterator's name keeps its pin as written (the code
        # generator makes its output text for cat(1): see calls.py).
        target = f"iter:{name}" if pin is None else f"iter:{name}:{pin}"
        detail: dict[str, object] = {"iterator": name, "pin": pin_path(pin) if pin is not None else None}
        return [ResolvedAttach(self.name, target, ap.span, detail=detail)]

    def load_refused(self, a: ResolvedAttach, reason: str) -> str | None:
        return f"cannot load {a.target}: this kernel refuses programs for the {a.detail['iterator']} iterator ({reason})"

    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list:  # type: ignore[type-arg]
        """Create the iterator's link (BPF_LINK_CREATE, BPF_TRACE_ITER); the
        runtime reads it (runtime/iterators.py) or pins it."""
        from ..bpf.attach import attach_iter
        from ..bpf.syscalls import BpfError
        from ..errors import EnvironmentProblem
        try:
            return [attach_iter(prog_fd, a.detail["iterator"], a.target, a.detail.get("pin"))]
        except BpfError as exc:
            raise EnvironmentProblem(f"cannot attach {a.target}: {exc}", _link_hint(a.detail["iterator"])) from None


def _link_hint(name: str) -> str | None:
    if name in ("bpf_map_elem", "bpf_sk_storage_map", "sockmap"):
        return "this iterator walks the elements of one map, which pytrace cannot name"
    return None


def pin_path(pin: str) -> str:
    """Where ``iter:NAME:PIN`` pins: absolute as written, relative under
    /sys/fs/bpf (bpftrace's rule)."""
    return pin if pin.startswith("/") else f"{BPFFS}/{pin}"


def iterators_of(btf: "Btf") -> list[str]:
    """The kernel's iterators from its BTF: each has a context struct
    ``bpf_iter__<name>`` and a ``bpf_iter_<name>`` function (the BTF id a
    program names at load time)."""
    names = []
    for struct in btf.struct_names():
        if struct.startswith("bpf_iter__") and "__" not in struct[len("bpf_iter__"):]:
            name = struct[len("bpf_iter__"):]
            if btf.type_id("func", f"bpf_iter_{name}") is not None:
                names.append(name)
    return sorted(names)


_CTX_STRUCT = re.compile(rb"\x00bpf_iter__([a-z0-9_]+?)(?=\x00)")


def kernel_iterators(btf_path: str = "/sys/kernel/btf/vmlinux") -> list[str]:
    """The iterators this kernel has (for ``-l``): each defines its context
    struct ``struct bpf_iter__<name>`` (DEFINE_BPF_ITER_FUNC), found in the
    BTF string table without parsing the types.  Empty without BTF."""
    from ..kernel.features import btf_string_table
    try:
        table = btf_string_table(btf_path)
    except Exception:  # no BTF, or a file this reader cannot follow
        return []
    names = {m.group(1).decode("ascii") for m in _CTX_STRUCT.finditer(table)}
    return sorted(n for n in names if "__" not in n)
