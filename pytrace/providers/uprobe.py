"""uprobe and uretprobe: dynamic probes on user-space functions.

Syntax: ``uprobe:/path/bin:func``, ``uprobe:/path:func+off``,
``uprobe:/path:0xaddr``, ``uprobe:lib:func`` (a library by short name,
found where the dynamic loader looks), ``uprobe:bin:func`` (an executable
found on PATH).  Symbol lookup in the ELF file happens at attach time.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Callable

from ..frontend.ast import AttachPoint
from ..semantic.types import U64
from .base import (PROG_KPROBE, AttachEnv, ListEnv, ProgramShape, Provider, ResolveEnv, ResolvedAttach, parse_int,
                   part_span)

# Where glibc's loader looks on Debian x86_64 (ld.so.conf.d/x86_64-linux-gnu.conf).
LIBRARY_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/local/lib",
                "/lib64", "/usr/lib64", "/lib", "/usr/lib")
_SYMBOL = re.compile(r"^[A-Za-z_.*?\[\]$@~][A-Za-z0-9_.*?\[\]$@:<>~,() ]*$")


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def resolve_binary(name: str, pid: int | None = None) -> str | None:
    """The file a uprobe target names: a path, a library short name
    ('libc', 'libc.so.6', 'libssl') or an executable on PATH."""
    if "/" in name:
        if pid is not None and not os.path.exists(name):
            rooted = f"/proc/{pid}/root{name}"
            if os.path.exists(rooted):
                return rooted
        return name if os.path.exists(name) else None
    base = name if name.startswith("lib") else f"lib{name}"
    for d in LIBRARY_DIRS:
        for pattern in (f"{name}", f"{base}.so", f"{base}.so.*", f"{base}-*.so*"):
            hits = sorted(glob.glob(os.path.join(d, pattern)))
            # libc.so is a linker script, not the library: keep ELF files only.
            files = [h for h in hits if os.path.isfile(h) and _is_elf(h)]
            if files:
                return os.path.realpath(files[0])
    for d in os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(":"):
        cand = os.path.join(d, name)
        if d and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


class UprobeProvider(Provider):
    listed_by_default = False
    name = "uprobe"
    aliases = ("u",)
    is_return = False
    max_parts = 4  # uprobe:bin:cpp:Name::func

    def usage(self) -> str:
        return f"{self.name}:/path/to/binary:function (or a library name: {self.name}:libc:malloc)"

    def program(self, a: ResolvedAttach) -> ProgramShape:
        return ProgramShape("uprobe", "regs", PROG_KPROBE, user=True)

    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list:  # type: ignore[type-arg]
        """A uprobe at the symbol's file offset (plus the offset given), in
        every process that maps the file, or only in ``env.pid``."""
        from ..bpf.attach import attach_uprobe
        from ..errors import EnvironmentProblem
        from ..kernel.symbols import symbol_offset
        d = a.detail
        path = d["path"]
        if d.get("address") is not None:
            offset = int(d["address"])
        elif d.get("file_offset") is not None:
            offset = int(d["file_offset"])
        else:
            hit = symbol_offset(path, d["symbol"])
            if hit is None:
                raise EnvironmentProblem(f"cannot attach {a.target}: symbol '{d['symbol']}' not found in {path}",
                                         f"list the functions with: pytrace -l '{self.name}:{path}:*'")
            offset = hit[0]
        offset += int(d.get("offset") or 0)
        return [attach_uprobe(prog_fd, path, offset, retprobe=self.is_return, pid=env.pid if env.pid else -1)]

    def list_probes(self, rest_glob: str, lister: ListEnv) -> list[str]:
        """The functions of the binary named in ``rest_glob`` (a path glob is
        allowed: ``uprobe:/usr/bin/*:main``); uprobes need a binary."""
        import glob as globmod
        from ..errors import EnvironmentProblem
        target, sep, _func = rest_glob.partition(":")
        if not sep or not target:
            lister.warn(f"name the binary to list {self.name}s of, e.g. pytrace -l '{self.name}:/bin/bash:*'")
            return []
        if any(c in target for c in "*?["):
            paths = sorted(p for p in globmod.glob(target) if os.path.isfile(p))
        else:
            found = resolve_binary(target, lister.pid)
            if found is None:
                raise EnvironmentProblem(f"cannot list {self.name}s: no such binary or library: {target}")
            paths = [found]
        return [f"{self.name}:{path}:{name}" for path in paths for name in function_symbols(path, lister.warn)]

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        # Index of the function part in the attach point as written.
        last = len(parts) - 1
        if len(parts) == 2 and env.pid is not None:
            parts = [parts[0], f"/proc/{env.pid}/exe", parts[1]]
        if len(parts) == 4:
            if parts[2] != "cpp":  # uprobe:bin:cpp:Name::func
                return self.error_form(ap, env, f"too many parts for a {self.name} probe",
                                       part_span(ap, 3, to_end=True, with_colon=True))
            parts = [parts[0], parts[1], parts[3]]
        if len(parts) != 3 or not parts[1] or not parts[2]:
            return self.error_form(ap, env, "a binary and a function are needed")
        binary, sym = parts[1], parts[2]
        path = resolve_binary(binary, env.pid)
        if path is None:
            env.diags.error(f"binary or library not found: {binary}", part_span(ap, 1) if last >= 2 else ap.span,
                            hints=[f"give the full path, e.g. {self.name}:/usr/bin/bash:readline"])
            return []
        offset, address = 0, None
        if "+" in sym and not sym.startswith("0x"):
            plus = sym.rindex("+")
            if self.is_return:
                return self.error_form(ap, env, f"a {self.name} cannot have an offset",
                                       part_span(ap, last, skip=plus))
            sym, off = sym.rsplit("+", 1)
            value = parse_int(off) if off else None
            if value is None:
                return self.error_form(ap, env, f"invalid offset '{off}'", part_span(ap, last, skip=plus + 1))
            offset = value
        if sym[:1].isdigit():
            address = parse_int(sym)
            if address is None:
                return self.error_form(ap, env, f"invalid address '{sym}'", part_span(ap, last))
        elif not _SYMBOL.match(sym):
            return self.error_form(ap, env, f"invalid function name '{sym}'", part_span(ap, last))
        target = f"{self.name}:{path}:{sym}" + (f"+{offset}" if offset else "")
        return [ResolvedAttach(self.name, target, ap.span, nargs=0 if self.is_return else 6,
                               retval=U64 if self.is_return else None, has_func=True,
                               detail={"path": path, "symbol": sym, "offset": offset, "address": address})]


class UretprobeProvider(UprobeProvider):
    name = "uretprobe"
    aliases = ("ur",)
    is_return = True


_FUNC_TYPES = (2, 10)  # STT_FUNC, STT_GNU_IFUNC


def function_symbols(path: str, warn: "Callable[[str], None]") -> list[str]:
    """Defined function names of an ELF file (.symtab and .dynsym), sorted and unique."""
    from ..bpf.elf import ElfError, ElfObject
    try:
        obj = ElfObject.from_path(path)
    except (OSError, ElfError) as exc:
        warn(f"cannot list function symbols of {path}: {getattr(exc, 'strerror', None) or exc}")
        return []
    names = {s.name for s in (*obj.symbols, *obj.dynsyms)
             if s.type in _FUNC_TYPES and s.name and s.shndx != 0}
    return sorted(names)
