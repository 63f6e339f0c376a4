"""Function symbols of user-space ELF files, for uprobes and user stacks.

``ElfSymbols`` is a cache of per-file ``SymbolTable``s, keyed by path and
revalidated by (device, inode, mtime) so a rebuilt binary is re-read; one
instance lives as long as the compilation or session that owns it (there
is no module-level cache).  A table holds the STT_FUNC/STT_GNU_IFUNC
symbols of .symtab and .dynsym, plus the .symtab of a separate debug file
found by build-id or .gnu_debuglink, as bcc (and so bpftrace) does: that is
where Debian's -dbg packages put the static functions of a stripped
library.

Reading goes through ``ElfHeaders``, which parses the headers with the same
layouts as ``pytrace.bpf.elf`` but reads only the sections asked for:
``ElfObject`` decodes every symbol and relocation into dataclasses (12 ms
for libc, ~30 ms for libstdc++ here) and copies every section, which a
debug file of hundreds of MB makes prohibitive.

``resolve_library`` (kernel/libraries.py, re-exported here) finds a file
the way the dynamic loader would: a path, a library's short name through
/etc/ld.so.cache, or an executable on PATH.

The ELF format (constants, layouts, Section/Segment, ElfError) comes from
``pytrace.elfformat``, shared with the BPF object linker without pulling
the bpf(2) layer into ``pytrace -l``, which never loads a program.
"""

from __future__ import annotations

import bisect
import fnmatch
import os
import re
import struct
import zlib
from types import MappingProxyType
from typing import NamedTuple

from ..records import dataclass, field
from .demangle import Demangler, default_demangler, strip_parameters
from .libraries import (LD_SO_CACHE, LibraryResolver, parse_ld_so_cache, proc_root, read_ld_so_cache,
                        resolve_library)

__all__ = ["ElfHeaders", "ElfSymbols", "Symbol", "SymbolTable", "find_debug_file", "find_symbol",
           "load_symbol_table", "parse_notes", "LD_SO_CACHE", "parse_ld_so_cache", "read_ld_so_cache",
           "resolve_library"]

from ..elfformat import (EHDR as _EHDR, PHDR as _PHDR, PT_LOAD, SHDR as _SHDR, SHN_UNDEF,  # noqa: F401
                         SHN_XINDEX, SHT_DYNSYM, SHT_GNU_VERSYM, SHT_NOBITS, SHT_NOTE, SHT_NULL, SHT_SYMTAB,
                         STB_GLOBAL, STB_GNU_UNIQUE, STB_LOCAL, STB_WEAK, STT_FUNC, STT_GNU_IFUNC, STT_OBJECT,
                         SYM as _SYM, ElfError, Section, Segment)

VERSYM_HIDDEN = 0x8000  # a non-default version (name@VER, not name@@VER)
NT_GNU_BUILD_ID = 3
DEBUG_ROOT = "/usr/lib/debug"
_NOTE = struct.Struct("<III")


@dataclass(frozen=True)
class ElfHeaders:
    """The section and program headers of an ELF64 LE file; section contents
    are read on demand with ``read``."""

    path: str
    type: int  # e_type: ET_EXEC 2, ET_DYN 3
    machine: int
    sections: list[Section] = field(repr=False)  # Section.data is always b"": use read()
    segments: list[Segment] = field(repr=False)

    @classmethod
    def open(cls, path: str) -> ElfHeaders:
        with open(path, "rb") as fh:
            head = fh.read(_EHDR.size)
            if len(head) < _EHDR.size or head[:4] != b"\x7fELF":
                raise ElfError(f"{path}: not an ELF file")
            if head[4] != 2 or head[5] != 1:
                raise ElfError(f"{path}: only 64-bit little-endian ELF files are supported")
            (_, etype, machine, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
             shstrndx) = _EHDR.unpack(head)
            try:
                shdrs = []
                if shoff and shentsize >= _SHDR.size:
                    fh.seek(shoff)
                    first = _SHDR.unpack(fh.read(_SHDR.size))
                    # Extended numbering (gABI): big counts live in section 0.
                    shnum = shnum or first[5]
                    if shstrndx == SHN_XINDEX:
                        shstrndx = first[6]
                    fh.seek(shoff)
                    table = fh.read(shnum * shentsize)
                    shdrs = [_SHDR.unpack_from(table, i * shentsize) for i in range(shnum)]
                fh.seek(phoff)
                table = fh.read(phnum * phentsize)
                segments = [Segment(p[0], p[1], p[2], p[3], p[5], p[6])
                            for p in (_PHDR.unpack_from(table, i * phentsize) for i in range(phnum))]
                names = b""
                if shstrndx < len(shdrs):
                    fh.seek(shdrs[shstrndx][4])
                    names = fh.read(shdrs[shstrndx][5])
            except struct.error:
                raise ElfError(f"{path}: truncated ELF headers") from None
        sections = [Section(i, _cstr(names, nm), typ, flags, addr, off, size, link, info, entsize, b"")
                    for i, (nm, typ, flags, addr, off, size, link, info, _al, entsize) in enumerate(shdrs)]
        return cls(path, etype, machine, sections, segments)

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def read(self, section: Section) -> bytes:
        """The contents of ``section`` (b"" for SHT_NOBITS, as in a debug file)."""
        if section.type in (SHT_NOBITS, SHT_NULL) or not section.size:
            return b""
        with open(self.path, "rb") as fh:
            fh.seek(section.offset)
            data = fh.read(section.size)
        if len(data) != section.size:
            raise ElfError(f"{self.path}: section {section.name!r} runs past the end of the file")
        return data

    def file_offset(self, vaddr: int) -> int | None:
        """``vaddr - p_vaddr + p_offset`` of the PT_LOAD segment holding
        ``vaddr`` (what uprobe_register wants), or None."""
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return vaddr - seg.vaddr + seg.offset
        return None

    def notes(self, section: Section) -> list[tuple[str, int, bytes]]:
        """(owner, type, descriptor) of each note in a SHT_NOTE section."""
        return parse_notes(self.read(section))

    def build_id(self) -> str | None:
        for s in self.sections:
            if s.type == SHT_NOTE and s.name == ".note.gnu.build-id":
                for owner, ntype, desc in self.notes(s):
                    if owner == "GNU" and ntype == NT_GNU_BUILD_ID and desc:
                        return desc.hex()
        return None


def parse_notes(data: bytes) -> list[tuple[str, int, bytes]]:
    """Split SHT_NOTE contents into (owner, type, descriptor): name and
    descriptor are each padded to 4 bytes (what GNU tools emit on x86_64,
    for .note.stapsdt and .note.gnu.build-id alike)."""
    out = []
    pos = 0
    while pos + _NOTE.size <= len(data):
        namesz, descsz, ntype = _NOTE.unpack_from(data, pos)
        pos += _NOTE.size
        name = data[pos: pos + namesz].rstrip(b"\0").decode("ascii", "replace")
        pos += (namesz + 3) & ~3
        desc = data[pos: pos + descsz]
        pos += (descsz + 3) & ~3
        if len(desc) != descsz:
            break  # truncated: keep what was complete
        out.append((name, ntype, desc))
    return out


def _cstr(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset: end if end >= 0 else len(table)].decode("utf-8", "replace")


class Symbol(NamedTuple):
    name: str
    vaddr: int
    size: int
    file_offset: int | None  # None when the address is in no PT_LOAD segment


# Which definition of a name lookup() returns, and which alias at one
# address symbolize() names: lower wins.  Default-version over hidden
# versions (memcpy@@GLIBC_2.14 over memcpy@GLIBC_2.2.5: the one new links
# bind to), then global/unique over weak over local.
_BIND_RANK = MappingProxyType({STB_GLOBAL: 0, STB_GNU_UNIQUE: 0, STB_WEAK: 1, STB_LOCAL: 2})
_FUNC_TYPES = frozenset((STT_FUNC, STT_GNU_IFUNC))


class SymbolTable:
    """The function symbols of one ELF file."""

    def __init__(self, headers: ElfHeaders, entries: list[tuple[str, int, int, int]],
                 demangler: Demangler | None = None) -> None:
        # entries: (name, vaddr, size, rank) in table order.
        self.headers = headers
        self.path = headers.path
        self._demangler = demangler
        best: dict[str, tuple[int, int, int]] = {}
        for name, vaddr, size, rank in entries:
            old = best.get(name)
            if old is None or rank < old[2]:
                best[name] = (vaddr, size, rank)
        self._by_name = best
        self._entries = entries
        self._addrs: list[int] | None = None
        self._at_addr: list[tuple[str, int]] = []
        self._demangled: dict[str, str | None] = {}

    def __len__(self) -> int:
        return len(self._by_name)

    def functions(self) -> list[str]:
        """Every function name, sorted (what ``-l 'uprobe:bin:*'`` lists)."""
        return sorted(self._by_name)

    def lookup(self, name: str) -> Symbol | None:
        hit = self._by_name.get(name)
        if hit is None:
            return None
        return Symbol(name, hit[0], hit[1], self.headers.file_offset(hit[0]))

    def demangled(self, name: str) -> str | None:
        """``name`` demangled (None for C names), memoised per table."""
        if not name.startswith("_Z"):
            return None
        if name not in self._demangled:
            # libstdc++ is loaded on the first C++ name, not with the table.
            demangler = self._demangler or default_demangler()
            self._demangled[name] = demangler(name)
        return self._demangled[name]

    def match(self, pattern: str) -> list[Symbol]:
        """Functions matching the fnmatch ``pattern`` (case-sensitive), sorted
        by name, with bpftrace's rules: a mangled C++ name also matches by
        its demangled form, without the parameter list unless ``pattern``
        has a '(' (``ns::f*`` matches ``_ZN2ns1fEi``, ``ns::f(int)`` too);
        GCC's ``.part.N`` fragments only match by their exact name."""
        if not any(c in pattern for c in "*?["):
            # The common case, an exact name: no scan, no demangling.
            exact = self.lookup(pattern)
            if exact is not None:
                return [exact]
        test = re.compile(fnmatch.translate(pattern)).match
        with_params = "(" in pattern
        out = []
        for name in sorted(self._by_name):
            # bpftrace's matcher drops these (as untraceable kprobe
            # variants) for every probe type: same listings as bpftrace.
            if ".part." in name:
                continue
            if not test(name):
                full = self.demangled(name)
                if full is None or not test(full if with_params else strip_parameters(full)):
                    continue
            sym = self.lookup(name)
            assert sym is not None
            out.append(sym)
        return out

    def symbolize(self, vaddr: int) -> tuple[str, int] | None:
        """(name, offset into it) of the function holding link-time address
        ``vaddr``, or None when it is past the end of the nearest one."""
        if self._addrs is None:
            self._index()
        assert self._addrs is not None
        i = bisect.bisect_right(self._addrs, vaddr) - 1
        if i < 0:
            return None
        name, size = self._at_addr[i]
        start = self._addrs[i]
        # A size of 0 (hand-written assembly) says nothing: accept the hit.
        if size and vaddr >= start + size:
            return None
        return name, vaddr - start

    def containing(self, vaddr: int) -> Symbol | None:
        """The function holding link-time address ``vaddr``, named as
        symbolize() names it; a function of unknown size (0) holds only its
        first byte, since where it ends nobody knows."""
        hit = self.symbolize(vaddr)
        if hit is None:
            return None
        name, off = hit
        i = bisect.bisect_right(self._addrs or [], vaddr) - 1
        size = self._at_addr[i][1]
        if off and not size:
            return None
        start = vaddr - off
        return Symbol(name, start, size, self.headers.file_offset(start))

    def _index(self) -> None:
        # Built on first use only: listing and attaching never need it.
        best: dict[int, tuple[tuple[int, bool, int], str, int]] = {}
        for name, vaddr, size, rank in self._entries:
            # Among aliases of one address prefer the public spelling:
            # "malloc" over "__libc_malloc" at equal rank.
            key = (rank, name.startswith("_"), len(name))
            old = best.get(vaddr)
            if old is None or key < old[0]:
                best[vaddr] = (key, name, size)
        addrs = sorted(best)
        self._at_addr = [(best[a][1], best[a][2]) for a in addrs]
        self._addrs = addrs


def _function_entries(headers: ElfHeaders, sections: list[Section],
                      entries: list[tuple[str, int, int, int]]) -> None:
    """Append (name, vaddr, size, rank) for each defined function symbol of
    the symbol table ``sections`` (of ``headers``' file) to ``entries``."""
    for sec in sections:
        if sec.link >= len(headers.sections):
            continue
        data = headers.read(sec)
        strtab = headers.read(headers.sections[sec.link])
        # One latin-1 decode of the whole string table (byte offsets stay
        # character offsets) beats a bytes slice and decode per symbol; the
        # rare non-ASCII name is re-decoded as UTF-8 below.
        names = strtab.decode("latin-1") + "\0"
        find = names.find
        hidden: memoryview | bytes = b""
        if sec.type == SHT_DYNSYM:
            # .gnu.version parallels .dynsym: one u16 per symbol.
            for s in headers.sections:
                if s.type == SHT_GNU_VERSYM and s.link == sec.index:
                    raw = headers.read(s)
                    hidden = memoryview(raw[: len(raw) // 2 * 2]).cast("H")
        nhidden = len(hidden)
        for i, (nm, info, _other, shndx, value, size) in enumerate(
                _SYM.iter_unpack(data[: len(data) // _SYM.size * _SYM.size])):
            # Cheapest tests first: this loop runs ~10^4 times per library.
            # A non-zero value with SHN_UNDEF is the PLT stub standing in for
            # an imported function whose address the file takes (pointer
            # equality): bpftrace (bcc's symbol walk) lists it and attaches
            # there, so it is kept, below every definition of the name.
            if not value or (info & 0xF) not in _FUNC_TYPES:
                continue
            name = names[nm: find("\0", nm)]
            if not name:
                continue
            if not name.isascii():
                name = name.encode("latin-1").decode("utf-8", "replace")
            rank = _BIND_RANK.get(info >> 4, 2)
            if i < nhidden and hidden[i] & VERSYM_HIDDEN:
                rank += 3
            if shndx == SHN_UNDEF:
                rank += 6
            entries.append((name, value, size, rank))


def _symbol_sections(headers: ElfHeaders) -> list[Section]:
    # .symtab first: when it exists it is the complete table and its
    # entries win ties over .dynsym's copies.
    return sorted((s for s in headers.sections if s.type in (SHT_SYMTAB, SHT_DYNSYM)),
                  key=lambda s: s.type != SHT_SYMTAB)


def find_symbol(path: str, name: str, types: frozenset[int] = frozenset((STT_OBJECT,)), *,
                debuginfo: bool = True) -> Symbol | None:
    """The first defined ``name`` of a type in ``types`` (default: data
    objects, all bpftrace 0.17's uaddr() accepts) in ``path``'s .symtab,
    .dynsym, then its debug file's .symtab.  The address is st_value, not
    adjusted for a PIE's load base (as 0.17).  Raises OSError or ElfError."""
    headers = ElfHeaders.open(path)
    found = _find_in(headers, _symbol_sections(headers), name, types)
    if found is None and debuginfo:
        debug = find_debug_file(headers)
        if debug is not None:
            try:
                dh = ElfHeaders.open(debug)
                found = _find_in(dh, [s for s in dh.sections if s.type == SHT_SYMTAB], name, types)
            except (OSError, ValueError):  # ValueError: ElfError
                pass  # a broken debug file must not hide a symbol the binary has not
    if found is None:
        return None
    # File offset from the binary's own segments (a debug file's are NOBITS).
    return Symbol(name, found[0], found[1], headers.file_offset(found[0]))


def _find_in(headers: ElfHeaders, sections: list[Section], name: str,
             types: frozenset[int]) -> tuple[int, int] | None:
    """(value, size) of the first defined ``name`` of a type in ``types``."""
    want = name.encode("utf-8") + b"\0"
    for sec in sections:
        if sec.link >= len(headers.sections):
            continue
        data = headers.read(sec)
        strtab = headers.read(headers.sections[sec.link])
        for nm, info, _other, shndx, value, size in _SYM.iter_unpack(
                data[: len(data) // _SYM.size * _SYM.size]):
            # An undefined (imported) symbol, or one at address 0, names
            # nothing in this file: bpftrace reports both as unresolved.
            if not value or shndx == SHN_UNDEF or (info & 0xF) not in types:
                continue
            if strtab.startswith(want, nm):
                return value, size
    return None


def find_debug_file(headers: ElfHeaders) -> str | None:
    """The separate debug file of ``headers``' file: by build-id under
    /usr/lib/debug/.build-id, else by .gnu_debuglink next to the file, in
    its .debug/ or under /usr/lib/debug (GDB's order), with the CRC checked."""
    root = proc_root(headers.path)
    build_id = headers.build_id()
    if build_id and len(build_id) > 2:
        cand = f"{root}{DEBUG_ROOT}/.build-id/{build_id[:2]}/{build_id[2:]}.debug"
        if os.path.isfile(cand):
            return cand
    link = headers.section(".gnu_debuglink")
    if link is None:
        return None
    data = headers.read(link)
    name_end = data.find(b"\0")
    if name_end <= 0 or len(data) < 4:
        return None
    name = data[:name_end].decode("utf-8", "replace")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    real = os.path.realpath(headers.path)
    here = os.path.dirname(real)
    inside = here[len(root):] if root and here.startswith(root) else here
    for cand in (os.path.join(here, name), os.path.join(here, ".debug", name),
                 f"{root}{DEBUG_ROOT}{inside}/{name}"):
        if cand != real and os.path.isfile(cand) and _crc32(cand) == crc:
            return cand
    return None


def _crc32(path: str) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def load_symbol_table(path: str, *, debuginfo: bool = True,
                      demangler: Demangler | None = None) -> SymbolTable:
    """Read ``path``'s function symbols (uncached; see ElfSymbols).
    ``demangler`` defaults to the process-wide libstdc++ one."""
    headers = ElfHeaders.open(path)
    entries: list[tuple[str, int, int, int]] = []
    _function_entries(headers, _symbol_sections(headers), entries)
    if debuginfo:
        debug = find_debug_file(headers)
        if debug is not None:
            try:
                dh = ElfHeaders.open(debug)
                _function_entries(dh, [s for s in dh.sections if s.type == SHT_SYMTAB], entries)
            except (OSError, ValueError):  # ValueError: ElfError
                pass  # a broken debug file must not hide the binary's own symbols
    return SymbolTable(headers, entries, demangler)


class ElfSymbols:
    """A cache of symbol tables, one entry per path, re-read when the file's
    (device, inode, mtime) changes.  ``debuginfo``: also read separate debug
    files; ``demangler``: for C++ matching (default: libstdc++'s)."""

    def __init__(self, *, debuginfo: bool = True, demangler: Demangler | None = None) -> None:
        self.debuginfo = debuginfo
        self._demangler = demangler
        self._tables: dict[str, tuple[tuple[int, int, int], SymbolTable]] = {}
        self._libraries = LibraryResolver()

    def load(self, path: str) -> SymbolTable:
        """The symbol table of ``path``; raises OSError or ElfError."""
        st = os.stat(path)
        key = (st.st_dev, st.st_ino, st.st_mtime_ns)
        hit = self._tables.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        table = load_symbol_table(path, debuginfo=self.debuginfo, demangler=self._demangler)
        self._tables[path] = (key, table)
        return table

    def resolve_library(self, name: str, pid: int | None = None) -> str | None:
        """``resolve_library`` with the parsed ld.so.cache kept between calls."""
        return self._libraries.resolve(name, pid)
