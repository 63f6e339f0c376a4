"""Address-to-name resolution: kernel symbols from /proc/kallsyms, user
symbols from the ELF files mapped by a process (/proc/PID/maps).

Both are loaded lazily and cached on the resolver object (reading kallsyms
costs ~0.3 s here, so a script that never prints a kernel address never pays
for it).  Text follows bpftrace: ``name+offset`` for stack frames and
``name`` for ksym()/usym(), and the address in hex when nothing matches;
C++ user symbols demangled (``ns::f(int)+4``) as with bpftrace's default
``cpp_demangle``.
"""

from __future__ import annotations

import bisect
import os
from ..records import dataclass, field


@dataclass
class _Table:
    addrs: list[int]
    names: list[str]
    sizes: list[int] = field(default_factory=list)

    def lookup(self, addr: int) -> tuple[str, int] | None:
        i = bisect.bisect_right(self.addrs, addr) - 1
        if i < 0:
            return None
        if self.sizes and self.sizes[i] and addr >= self.addrs[i] + self.sizes[i]:
            return None
        return self.names[i], addr - self.addrs[i]


class KernelSymbols:
    def __init__(self, path: str = "/proc/kallsyms") -> None:
        self.path = path
        self._table: _Table | None = None

    def _load(self) -> _Table:
        if self._table is None:
            pairs: list[tuple[int, str]] = []
            try:
                with open(self.path) as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) < 3 or parts[1] not in "tTwW":
                            continue
                        addr = int(parts[0], 16)
                        if addr:
                            pairs.append((addr, parts[2]))
            except OSError:
                pass
            pairs.sort()
            self._table = _Table([a for a, _ in pairs], [n for _, n in pairs])
        return self._table

    def resolve(self, addr: int, offset: bool = False) -> str:
        hit = self._load().lookup(addr)
        if hit is None:
            return f"0x{addr:x}"
        name, off = hit
        return f"{name}+{off}" if offset else name

    def address(self, name: str) -> int | None:
        table = self._load()
        try:
            return table.addrs[table.names.index(name)]
        except ValueError:
            return None


@dataclass
class _Mapping:
    start: int
    end: int
    offset: int
    path: str


class UserSymbols:
    """Per-process user-space symbolisation through ELF symbol tables
    (``elfsyms``: headers and symbol sections only, cached per file).
    C++ names are demangled (``ns::f(int)+4``), as bpftrace does with its
    default ``cpp_demangle = 1``; ``demangle=False`` keeps them mangled."""

    def __init__(self, demangle: bool = True) -> None:
        from .elfsyms import ElfSymbols
        self._symbols = ElfSymbols()
        self.demangle = demangle
        self._tables: dict[str, object] = {}
        self._maps: dict[int, list[_Mapping]] = {}

    def _mappings(self, pid: int) -> list[_Mapping]:
        if not self._maps.get(pid):
            # Unknown, or unreadable last time (a process not yet exec'd).
            self._maps[pid] = self._read_maps(pid)
        return self._maps[pid]

    def snapshot(self, pid: int) -> None:
        """Read ``pid``'s mappings now, keeping the last readable ones: a
        process that exits right after its event (a short ``-c`` command)
        has no /proc/PID/maps by the time a user stack is symbolised, and
        the snapshot taken while it ran stands in for it."""
        fresh = self._read_maps(pid)
        if fresh:
            self._maps[pid] = fresh

    @staticmethod
    def _read_maps(pid: int) -> list[_Mapping]:
        out = []
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    parts = line.split(None, 5)
                    if len(parts) < 6 or "x" not in parts[1]:
                        continue
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    out.append(_Mapping(lo, hi, int(parts[2], 16), parts[5].strip()))
        except OSError:
            pass
        return out

    def _table(self, path: str):  # type: ignore[no-untyped-def]
        if path not in self._tables:
            try:
                self._tables[path] = self._symbols.load(path)
            except Exception:  # not an ELF file, unreadable: no symbols
                self._tables[path] = None
        return self._tables[path]

    def resolve(self, addr: int, pid: int, offset: bool = False) -> str:
        for m in self._mappings(pid):
            if m.start <= addr < m.end and m.path.startswith("/"):
                table = self._table(m.path)
                if table is None:
                    break
                # The file offset of the address, then its link-time address.
                file_off = addr - m.start + m.offset
                vaddr = file_off
                for seg in table.headers.segments:  # type: ignore[attr-defined]
                    if seg.type == 1 and seg.offset <= file_off < seg.offset + seg.filesz:
                        vaddr = file_off - seg.offset + seg.vaddr
                        break
                hit = table.symbolize(vaddr)  # type: ignore[attr-defined]
                if hit is None:
                    break
                name, off = hit
                if self.demangle:
                    name = table.demangled(name) or name  # type: ignore[attr-defined]
                return f"{name}+{off}" if offset else name
        return f"0x{addr:x}"


def username(uid: int) -> str:
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def proc_exists(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")
