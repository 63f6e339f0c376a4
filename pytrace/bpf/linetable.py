"""The DWARF line table of a BPF object: which source line each instruction
came from.

LLVM writes ``.debug_line`` when the IR carries debug locations (see
codegen/llvm/debuginfo.py).  In a relocatable object every program section
starts at address 0, so a row's address alone does not say which program it
belongs to: each sequence opens with ``DW_LNE_set_address`` whose operand
carries an R_BPF_64_ABS64 relocation against the program's section symbol
(in ``.rel.debug_line``); that relocation names the section, and the operand
itself (SHT_REL: the addend is in place) the byte offset in it.

Only what mapping an instruction back to a line needs is read: the header's
fixed fields (DWARF 2 to 5; the directory and file tables are skipped with
``header_length``) and the line-number program.  pyelftools could parse the
program, but it does not say where in the section a ``set_address`` operand
sits, which is what ties a sequence to its program.
"""

from __future__ import annotations

import bisect
import struct

from ..records import dataclass
from .elf import ElfError, ElfObject, Relocation

SHF_COMPRESSED = 0x800
# Standard opcodes (DWARF 5, 6.2.5.2) and extended ones (6.2.5.3).
DW_LNS_copy, DW_LNS_advance_pc, DW_LNS_advance_line, DW_LNS_set_file = 1, 2, 3, 4
DW_LNS_set_column, DW_LNS_negate_stmt, DW_LNS_set_basic_block, DW_LNS_const_add_pc = 5, 6, 7, 8
DW_LNS_fixed_advance_pc = 9
DW_LNE_end_sequence, DW_LNE_set_address = 1, 2


@dataclass(frozen=True)
class Row:
    """One row of the line table: from ``offset`` (bytes from the start of
    the program's section) on, code comes from ``line``:``column``.  Line 0
    means no source line: code the compiler made up or merged from several
    lines (DWARF 5, 6.2.5.1)."""

    offset: int
    line: int
    column: int


class LineTable:
    """Rows by program section, each list sorted by offset."""

    def __init__(self, rows: dict[str, list[Row]]) -> None:
        self.rows = rows

    def lookup(self, section: str, offset: int) -> Row | None:
        """The row covering byte ``offset`` of ``section`` (None if no row does)."""
        rows = self.rows.get(section)
        if not rows:
            return None
        i = bisect.bisect_right([r.offset for r in rows], offset) - 1
        return rows[i] if i >= 0 else None


def read_line_table(obj: ElfObject) -> LineTable:
    """The line table of ``obj``; empty when it has no ``.debug_line``.
    Raises ``ElfError`` for a table this reader cannot follow."""
    try:
        sec = obj.section(".debug_line")
    except KeyError:
        return LineTable({})
    if sec.flags & SHF_COMPRESSED:
        raise ElfError(".debug_line is compressed")
    relocs = {r.offset: r for r in obj.relocations.get(sec.index, [])}
    out: dict[str, list[Row]] = {}
    data = sec.data
    pos = 0
    try:
        while pos < len(data):
            pos = _unit(obj, data, pos, relocs, out)
    except (struct.error, IndexError):
        raise ElfError(".debug_line is truncated") from None
    for rows in out.values():
        rows.sort(key=lambda r: r.offset)
    return LineTable(out)


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _sleb(data: bytes, pos: int) -> tuple[int, int]:
    start = pos
    value, pos = _uleb(data, pos)
    if data[pos - 1] & 0x40:  # the sign bit of the last byte
        value -= 1 << (7 * (pos - start))
    return value, pos


def _unit(obj: ElfObject, data: bytes, pos: int, relocs: dict[int, Relocation],
          out: dict[str, list[Row]]) -> int:
    """Reads the line-number program of the unit at ``pos`` into ``out``;
    returns the offset of the next unit."""
    (length,) = struct.unpack_from("<I", data, pos)
    pos += 4
    if length == 0xFFFFFFFF:
        raise ElfError(".debug_line uses the 64-bit DWARF format")
    end = pos + length
    (version,) = struct.unpack_from("<H", data, pos)
    pos += 2
    if not 2 <= version <= 5:
        raise ElfError(f".debug_line version {version} is not supported")
    if version >= 5:
        pos += 2  # address_size, segment_selector_size
    (header_length,) = struct.unpack_from("<I", data, pos)
    pos += 4
    program = pos + header_length
    min_inst = data[pos]
    pos += 2 if version >= 4 else 1  # maximum_operations_per_instruction (VLIW only)
    pos += 1  # default_is_stmt
    line_base = struct.unpack_from("<b", data, pos)[0]
    line_range, opcode_base = data[pos + 1], data[pos + 2]
    lengths = data[pos + 3: pos + 3 + opcode_base - 1]
    if not line_range:
        raise ElfError(".debug_line has a line_range of 0")

    section: str | None = None
    address, line, column = 0, 1, 0
    pos = program
    while pos < end:
        op = data[pos]
        pos += 1
        emit = False
        if op >= opcode_base:  # special opcode: advance both, then a row
            adjusted = op - opcode_base
            address += (adjusted // line_range) * min_inst
            line += line_base + adjusted % line_range
            emit = True
        elif op == 0:  # extended opcode
            size, pos = _uleb(data, pos)
            sub, body = data[pos], pos + 1
            pos += size
            if sub == DW_LNE_end_sequence:
                section, address, line, column = None, 0, 1, 0
            elif sub == DW_LNE_set_address:
                section, address = _relocated_address(obj, data, body, size - 1, relocs)
        elif op == DW_LNS_copy:
            emit = True
        elif op == DW_LNS_advance_pc:
            step, pos = _uleb(data, pos)
            address += step * min_inst
        elif op == DW_LNS_advance_line:
            step, pos = _sleb(data, pos)
            line += step
        elif op == DW_LNS_set_column:
            column, pos = _uleb(data, pos)
        elif op == DW_LNS_const_add_pc:
            address += ((255 - opcode_base) // line_range) * min_inst
        elif op == DW_LNS_fixed_advance_pc:
            address += struct.unpack_from("<H", data, pos)[0]
            pos += 2
        elif op in (DW_LNS_negate_stmt, DW_LNS_set_basic_block):
            pass
        else:  # set_file, prologue_end, epilogue_begin, set_isa, or unknown: skip its operands
            for _ in range(lengths[op - 1]):
                _, pos = _uleb(data, pos)
        if emit and section is not None:
            out.setdefault(section, []).append(Row(address, line, column))
    return end


def _relocated_address(obj: ElfObject, data: bytes, pos: int, size: int,
                       relocs: dict[int, Relocation]) -> tuple[str | None, int]:
    """The (section, offset) a ``DW_LNE_set_address`` operand refers to:
    its relocation's symbol says which section; the address is the
    symbol's value plus the addend (in place for SHT_REL, as LLVM's BPF
    back end writes it)."""
    raw = int.from_bytes(data[pos: pos + size], "little")
    rel = relocs.get(pos)
    if rel is None or rel.symbol >= len(obj.symbols):
        return None, raw  # an unrelocated address cannot be tied to a program
    sym = obj.symbols[rel.symbol]
    if not 0 < sym.shndx < len(obj.sections):
        return None, raw
    addend = rel.addend if rel.addend is not None else raw
    return obj.sections[sym.shndx].name, sym.value + addend

