"""A small ELF64 little-endian reader and the BPF object linker.

This module owns reading what LLVM's BPF back end emits (sections, the
symbol table, SHT_REL/SHT_RELA relocations; program headers too, so the
same reader can turn a symbol of an executable into a uprobe file offset),
and turning one program section into loadable instructions: each
``ld_imm64`` carrying an R_BPF_64_64 relocation becomes a map fd reference
(BPF_PSEUDO_MAP_FD) or a map value reference into the array map standing in
for a global-data section (BPF_PSEUDO_MAP_VALUE).  It does not use
pyelftools, whose first use costs ~70 ms of imports; this costs ~100 µs.
"""

from __future__ import annotations

import struct

from ..records import dataclass
from .insn import INSN_SIZE
from .maps import BpfMap
from .syscalls import (BPF_F_RDONLY_PROG, BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, BPF_PSEUDO_MAP_FD,
                       BPF_PSEUDO_MAP_VALUE, MapType)

# The ELF format itself (constants, layouts, records) is shared with the
# reader of user binaries; these names stay importable from here.
from ..elfformat import (EHDR as _EHDR, PHDR as _PHDR, PT_LOAD, SHDR as _SHDR, SHF_ALLOC,  # noqa: F401
                         SHF_EXECINSTR, SHF_WRITE, SHN_ABS, SHN_UNDEF, SHN_XINDEX, SHT_DYNSYM, SHT_NOBITS,
                         SHT_NULL, SHT_PROGBITS, SHT_REL, SHT_RELA, SHT_STRTAB, SHT_SYMTAB, STB_GLOBAL,
                         STB_LOCAL, STB_WEAK, STT_FUNC, STT_NOTYPE, STT_OBJECT, STT_SECTION, SYM as _SYM,
                         ElfError, Section, Segment)

EM_BPF = 247

# BPF relocation types (llvm/BinaryFormat/ELFRelocs/BPF.def).
R_BPF_NONE, R_BPF_64_64, R_BPF_64_ABS64, R_BPF_64_ABS32, R_BPF_64_32 = 0, 1, 2, 3, 10

_REL = struct.Struct("<QQ")
_RELA = struct.Struct("<QQq")
_LD_IMM64 = 0x18  # BPF_LD | BPF_IMM | BPF_DW
_CALL = 0x85  # BPF_JMP | BPF_CALL
_IMM = struct.Struct("<i")

MAP_SECTIONS = ("maps", ".maps")
DATA_PREFIXES = (".rodata", ".data", ".bss")


class LinkError(ValueError):
    """A program section has a relocation the linker cannot resolve."""


@dataclass(frozen=True)
class Symbol:
    index: int
    name: str
    value: int
    size: int
    type: int
    bind: int
    shndx: int


@dataclass(frozen=True)
class Relocation:
    offset: int  # byte offset in the target section
    symbol: int  # index into the symbol table
    type: int
    addend: int | None  # None for SHT_REL: the addend sits in the instruction


@dataclass
class ElfObject:
    """A parsed ELF64 LE file: ``sections`` by index, ``symbols`` of .symtab,
    ``dynsyms`` of .dynsym, ``relocations`` keyed by the index of the
    section they patch, ``segments`` (program headers)."""

    machine: int
    sections: list[Section]
    symbols: list[Symbol]
    dynsyms: list[Symbol]
    relocations: dict[int, list[Relocation]]
    segments: list[Segment]

    @classmethod
    def from_path(cls, path: str) -> ElfObject:
        with open(path, "rb") as fh:
            return cls.from_bytes(fh.read())

    @classmethod
    def from_bytes(cls, raw: bytes) -> ElfObject:
        return _parse(raw)

    def section(self, name: str) -> Section:
        for s in self.sections:
            if s.name == name:
                return s
        raise KeyError(f"no section {name!r}")

    def section_names(self) -> list[str]:
        return [s.name for s in self.sections if s.index]

    def program_sections(self) -> list[Section]:
        """Sections holding code (SHF_EXECINSTR) with at least one instruction."""
        return [s for s in self.sections if s.flags & SHF_EXECINSTR and s.size]

    def data_sections(self) -> list[Section]:
        """Allocated, non-empty ``.rodata*``/``.data*``/``.bss*`` sections."""
        return [s for s in self.sections
                if s.name.startswith(DATA_PREFIXES) and s.flags & SHF_ALLOC and s.size
                and s.type in (SHT_PROGBITS, SHT_NOBITS)]

    def symbol(self, name: str, *, dynamic: bool = False) -> Symbol:
        for sym in self.dynsyms if dynamic else self.symbols:
            if sym.name == name:
                return sym
        raise KeyError(f"no symbol {name!r}")

    def file_offset(self, vaddr: int) -> int:
        """The file offset of virtual address ``vaddr`` (what a uprobe needs:
        ``vaddr - p_vaddr + p_offset`` of the PT_LOAD segment holding it)."""
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return vaddr - seg.vaddr + seg.offset
        raise KeyError(f"address {vaddr:#x} is in no loadable segment")


def _cstr(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset: end if end >= 0 else len(table)].decode("utf-8", "replace")


def _parse(raw: bytes) -> ElfObject:
    if len(raw) < _EHDR.size or raw[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    if raw[4] != 2 or raw[5] != 1:
        raise ElfError("only 64-bit little-endian ELF files are supported")
    (_, _, machine, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
     shstrndx) = _EHDR.unpack_from(raw)
    try:
        headers = []
        if shoff:
            first = _SHDR.unpack_from(raw, shoff)
            # Extended numbering (gABI): counts too big for the header live in section 0.
            shnum = shnum or first[5]
            if shstrndx == SHN_XINDEX:
                shstrndx = first[6]
            headers = [_SHDR.unpack_from(raw, shoff + i * shentsize) for i in range(shnum)]
        segments = [Segment(p[0], p[1], p[2], p[3], p[5], p[6])
                    for p in (_PHDR.unpack_from(raw, phoff + i * phentsize) for i in range(phnum))]
    except struct.error:
        raise ElfError("truncated ELF headers") from None
    names = b""
    if headers and shstrndx < len(headers):
        h = headers[shstrndx]
        names = raw[h[4]: h[4] + h[5]]
    sections = []
    for i, (nm, typ, flags, addr, off, size, link, info, _align, entsize) in enumerate(headers):
        data = b"" if typ in (SHT_NOBITS, SHT_NULL) else raw[off: off + size]
        if typ not in (SHT_NOBITS, SHT_NULL) and len(data) != size:
            raise ElfError(f"section {i} runs past the end of the file")
        sections.append(Section(i, _cstr(names, nm), typ, flags, addr, off, size, link, info,
                                entsize, data))
    symbols: list[Symbol] = []
    dynsyms: list[Symbol] = []
    relocations: dict[int, list[Relocation]] = {}
    for s in sections:
        if s.type in (SHT_SYMTAB, SHT_DYNSYM):
            strtab = sections[s.link].data if s.link < len(sections) else b""
            syms = [Symbol(i, _cstr(strtab, nm), value, size, info & 0xF, info >> 4, shndx)
                    for i, (nm, info, _other, shndx, value, size)
                    in enumerate(_SYM.iter_unpack(s.data[: len(s.data) // _SYM.size * _SYM.size]))]
            (symbols if s.type == SHT_SYMTAB else dynsyms).extend(syms)
        elif s.type == SHT_REL:
            relocations.setdefault(s.info, []).extend(
                Relocation(off, info >> 32, info & 0xFFFFFFFF, None)
                for off, info in _REL.iter_unpack(s.data[: len(s.data) // 16 * 16]))
        elif s.type == SHT_RELA:
            relocations.setdefault(s.info, []).extend(
                Relocation(off, info >> 32, info & 0xFFFFFFFF, addend)
                for off, info, addend in _RELA.iter_unpack(s.data[: len(s.data) // 24 * 24]))
    return ElfObject(machine, sections, symbols, dynsyms, relocations, segments)


@dataclass(frozen=True)
class Linked:
    """One program ready to load: its instructions and the subprograms
    appended after its own code, as (first instruction, function name) in
    instruction order (the kernel wants a BTF func_info record for each)."""

    insns: bytes
    subprogs: tuple[tuple[int, str], ...] = ()


def link_program(obj: ElfObject, section_name: str, map_fds: dict[str, int],
                 data_maps: dict[str, int]) -> bytes:
    """The instructions of ``section_name`` with every reference resolved
    (``link(...).insns``)."""
    return link(obj, section_name, map_fds, data_maps).insns


def link(obj: ElfObject, section_name: str, map_fds: dict[str, int], data_maps: dict[str, int]) -> Linked:
    """Program ``section_name`` with every map reference resolved.

    ``map_fds`` maps map symbol names (globals in section "maps"/".maps") to
    fds; ``data_maps`` maps global-data section names to the fds of their
    1-entry array maps (see ``create_data_maps``).  Each function of
    ``.text`` the program calls (a BPF-to-BPF call) or takes the address of
    (a callback of bpf_for_each_map_elem or bpf_loop), directly or through
    another such function, is appended after the program's own code, as
    libbpf does: only those, since the verifier refuses unreachable
    instructions.  The program's own instructions keep their offsets, so a
    verifier message's instruction index still points into the section.
    Raises ``LinkError`` for anything else: extern symbols, data in sections
    we do not map.
    """
    sec = obj.section(section_name)
    if not sec.flags & SHF_EXECINSTR:
        raise LinkError(f"section {section_name!r} holds no code")
    text = _text_section(obj)
    functions = _functions(obj, text) if text is not None else {}
    code = bytearray(sec.data)
    placed: dict[int, int] = {}          # function offset in .text -> its first instruction here
    pieces: list[tuple[Section, int, int, int]] = [(sec, 0, sec.size, 0)]  # (section, start, end, placed at)
    done = 0
    while done < len(pieces):
        psec, start, end, at = pieces[done]
        done += 1
        for target in _text_targets(obj, psec, start, end, code, at, text):
            if target in placed:
                continue
            if target not in functions:
                raise LinkError(f"{psec.name}: a reference into .text at byte {target} is not the start "
                                f"of a function")
            fname, size = functions[target]
            placed[target] = len(code) // INSN_SIZE
            assert text is not None
            pieces.append((text, target, target + size, len(code)))
            code += text.data[target: target + size]
    for psec, start, end, at in pieces:
        _relocate(obj, psec, start, end, at, code, map_fds, data_maps, text, placed)
    subprogs = tuple(sorted((idx, functions[off][0]) for off, idx in placed.items()))
    return Linked(bytes(code), subprogs)


def _text_section(obj: ElfObject) -> Section | None:
    for s in obj.sections:
        if s.name == ".text" and s.flags & SHF_EXECINSTR and s.size:
            return s
    return None


def _functions(obj: ElfObject, text: Section) -> dict[int, tuple[str, int]]:
    """The functions of ``.text``: byte offset -> (name, size in bytes)."""
    return {sym.value: (sym.name, sym.size) for sym in obj.symbols
            if sym.shndx == text.index and sym.type == STT_FUNC and sym.size}


def _rels_in(obj: ElfObject, sec: Section, start: int, end: int) -> list[Relocation]:
    return [r for r in obj.relocations.get(sec.index, []) if start <= r.offset < end]


def _text_targets(obj: ElfObject, sec: Section, start: int, end: int, code: bytearray, at: int,
                  text: Section | None) -> list[int]:
    """Byte offsets in ``.text`` of the functions that bytes [start, end) of
    ``sec`` (copied to ``code`` at byte ``at``) call or take the address of:
    through relocations, and (inside .text) calls without one, which LLVM
    leaves for a static function of the same section."""
    if text is None:
        return []
    out = []
    relocated = set()
    for rel in _rels_in(obj, sec, start, end):
        if rel.symbol >= len(obj.symbols) or obj.symbols[rel.symbol].shndx != text.index:
            continue
        relocated.add(rel.offset)
        sym = obj.symbols[rel.symbol]
        pos = at + rel.offset - start
        imm = _IMM.unpack_from(code, pos + 4)[0]
        if rel.type == R_BPF_64_32:
            out.append(sym.value + (imm + 1) * INSN_SIZE)
        elif rel.type == R_BPF_64_64:
            out.append((0 if sym.type == STT_SECTION else sym.value) + (rel.addend if rel.addend is not None
                                                                          else imm))
    if sec.index == text.index:
        for off in range(start, end, INSN_SIZE):
            pos = at + off - start
            if off not in relocated and code[pos] == _CALL and code[pos + 1] >> 4 == BPF_PSEUDO_CALL:
                out.append(off + (_IMM.unpack_from(code, pos + 4)[0] + 1) * INSN_SIZE)
    return out


def _relocate(obj: ElfObject, sec: Section, start: int, end: int, at: int, code: bytearray,
              map_fds: dict[str, int], data_maps: dict[str, int], text: Section | None,
              placed: dict[int, int]) -> None:
    """Resolve the relocations of bytes [start, end) of ``sec``, copied to
    ``code`` at byte ``at``; ``placed`` says where each appended function of
    ``.text`` starts (in instructions)."""
    section_name = sec.name
    for rel in _rels_in(obj, sec, start, end):
        if rel.type == R_BPF_NONE:
            continue
        if rel.symbol >= len(obj.symbols):
            raise LinkError(f"{section_name}+{rel.offset:#x}: relocation names symbol {rel.symbol}, "
                            f"which does not exist")
        sym = obj.symbols[rel.symbol]
        where = f"{section_name}+{rel.offset:#x} (insn {rel.offset // INSN_SIZE})"
        target = obj.sections[sym.shndx].name if 0 < sym.shndx < len(obj.sections) else ""
        label = sym.name or target
        pos = at + rel.offset - start
        idx = pos // INSN_SIZE
        if rel.offset % INSN_SIZE:
            raise LinkError(f"{where}: relocation is not on a whole instruction")
        if sym.shndx == SHN_UNDEF:
            raise LinkError(f"{where}: {label!r} is an undefined (extern) symbol")
        if rel.type == R_BPF_64_32:
            if text is None or sym.shndx != text.index or code[pos] != _CALL:
                raise LinkError(f"{where}: call to {label!r}, which is not a function in .text")
            # libbpf: the callee is sym_off / 8 + imm + 1 instructions into
            # .text (imm is -1 for a call to a global function).
            dest = placed[sym.value + (_IMM.unpack_from(code, pos + 4)[0] + 1) * INSN_SIZE]
            code[pos + 1] = (code[pos + 1] & 0x0F) | (BPF_PSEUDO_CALL << 4)
            _IMM.pack_into(code, pos + 4, dest - idx - 1)
            continue
        if rel.type != R_BPF_64_64:
            raise LinkError(f"{where}: unsupported relocation type {rel.type} against {label!r}")
        if pos + 2 * INSN_SIZE > at + end - start:
            raise LinkError(f"{where}: relocation is not on a whole ld_imm64 instruction")
        if code[pos] != _LD_IMM64:
            raise LinkError(f"{where}: relocation against {label!r} is on opcode "
                            f"{code[pos]:#04x}, not ld_imm64")
        # The implicit addend of SHT_REL is in the first half's imm field.
        addend = rel.addend if rel.addend is not None else _IMM.unpack_from(code, pos + 4)[0]
        if target in MAP_SECTIONS:
            if sym.type == STT_SECTION:
                raise LinkError(f"{where}: reference into {target!r} by section, not by map name")
            if sym.name not in map_fds:
                raise LinkError(f"{where}: no fd for map {sym.name!r}")
            _patch(code, pos, BPF_PSEUDO_MAP_FD, map_fds[sym.name], 0)
        elif target.startswith(DATA_PREFIXES):
            if target not in data_maps:
                raise LinkError(f"{where}: no array map for data section {target!r}")
            offset = (0 if sym.type == STT_SECTION else sym.value) + addend
            if not 0 <= offset < max(1, obj.sections[sym.shndx].size):
                raise LinkError(f"{where}: offset {offset} is outside section {target!r}")
            _patch(code, pos, BPF_PSEUDO_MAP_VALUE, data_maps[target], offset)
        elif text is not None and sym.shndx == text.index:
            # A function's address (a helper's callback): BPF_PSEUDO_FUNC,
            # its imm relative to the next instruction as for a call.
            dest = placed[(0 if sym.type == STT_SECTION else sym.value) + addend]
            _patch(code, pos, BPF_PSEUDO_FUNC, dest - idx - 1, 0)
        else:
            raise LinkError(f"{where}: cannot relocate against {label!r} in section "
                            f"{target or sym.shndx!r}: only maps, .rodata/.data/.bss and .text "
                            f"functions are supported")
    if text is not None and sec.index == text.index:
        # Calls between static functions of .text carry no relocation; their
        # callee moved with the selection of functions: re-aim them.
        relocated = {r.offset for r in _rels_in(obj, sec, start, end)}
        for off in range(start, end, INSN_SIZE):
            pos = at + off - start
            if off not in relocated and code[pos] == _CALL and code[pos + 1] >> 4 == BPF_PSEUDO_CALL:
                dest = placed[off + (_IMM.unpack_from(code, pos + 4)[0] + 1) * INSN_SIZE]
                _IMM.pack_into(code, pos + 4, dest - pos // INSN_SIZE - 1)


def _patch(code: bytearray, off: int, src: int, imm: int, imm2: int) -> None:
    code[off + 1] = (code[off + 1] & 0x0F) | (src << 4)  # keep dst_reg, set src_reg
    _IMM.pack_into(code, off + 4, imm)
    _IMM.pack_into(code, off + INSN_SIZE + 4, imm2)


def create_data_maps(obj: ElfObject) -> dict[str, BpfMap]:
    """One single-element ARRAY map per global-data section, holding its
    initial contents; ``.rodata*`` maps are BPF_F_RDONLY_PROG and frozen, so
    the verifier may treat their bytes as constants (and accepts them as
    printf formats).  On failure closes what it created."""
    out: dict[str, BpfMap] = {}
    try:
        for sec in obj.data_sections():
            rodata = sec.name.startswith(".rodata")
            m = BpfMap.create(MapType.ARRAY, 4, sec.size, 1, sec.name,
                              BPF_F_RDONLY_PROG if rodata else 0)
            out[sec.name] = m
            if sec.type != SHT_NOBITS:
                m.update(b"\0\0\0\0", sec.data)
            if rodata:
                m.freeze()
    except BaseException:
        for m in out.values():
            m.close()
        raise
    return out
