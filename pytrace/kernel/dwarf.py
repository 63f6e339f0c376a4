"""Function parameters from DWARF, for ``pytrace -lv 'uprobe:BIN:FUNC'``.

bpftrace 0.17 (src/dwarf_parser.cpp, libdw) prints one line per
DW_TAG_formal_parameter of the function's DIE, ``type name``, with the
type spelled by its own rules: base types and typedefs by name, ``T*``
for pointers (``void*`` without a pointee), ``struct/union/enum NAME``
(``<anonymous>`` without one), ``const T`` (``T const`` when T is a
pointer) and ``<unknown type>`` for everything else (volatile, restrict,
arrays, function types, C++ references and classes).  The DIE is found by
DW_AT_name equal to the symbol's name, so C++ functions, whose DIEs carry
the unmangled name, show nothing, exactly as in bpftrace.

The DWARF is the file's own .debug_info or that of its separate debug file
(build-id or .gnu_debuglink, as libdwfl's standard search).  pyelftools
reads it; its import (~50 ms) and the parse happen only for ``-lv``.  To
stay fast on a large library (libc's debug file has 27,000 functions) the
compilation unit holding the symbol's address is found through
.debug_aranges and only that unit is indexed; without aranges every unit
is searched in order, first match wins, as libdw's walk does.
"""

from __future__ import annotations

import mmap
from typing import TYPE_CHECKING, Any

from .elfsyms import ElfHeaders, find_debug_file

if TYPE_CHECKING:
    from elftools.dwarf.die import DIE
    from elftools.dwarf.dwarfinfo import DWARFInfo

UNKNOWN = "<unknown type>"
_PREFIX = {"DW_TAG_structure_type": "struct ", "DW_TAG_union_type": "union ",
           "DW_TAG_enumeration_type": "enum "}
# Attributes that make a DIE inherit another's attributes (dwarf_attr_integrate).
_INTEGRATE = ("DW_AT_abstract_origin", "DW_AT_specification")


def has_dwarf_sections(headers: ElfHeaders) -> bool:
    """Whether the file carries .debug_info with contents (a stripped
    binary may keep an empty or NOBITS one)."""
    sec = headers.section(".debug_info") or headers.section(".zdebug_info")
    return sec is not None and sec.type != 8 and sec.size > 0  # 8: SHT_NOBITS


def dwarf_file(path: str) -> str | None:
    """The file holding ``path``'s DWARF: itself or its separate debug
    file; None when neither has any."""
    try:
        headers = ElfHeaders.open(path)
        if has_dwarf_sections(headers):
            return path
        debug = find_debug_file(headers)
        if debug is not None and has_dwarf_sections(ElfHeaders.open(debug)):
            return debug
    except (OSError, ValueError):  # ValueError: ElfError, a file this reader refuses
        return None
    return None


class FunctionParams:
    """Parameter lists of the functions of one ELF file, from its DWARF."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.source = dwarf_file(path)
        self._stream: mmap.mmap | None = None
        self._dwarf: DWARFInfo | None = None
        self._aranges: Any = None
        self._units: dict[int, dict[str, list[tuple[int | None, DIE]]]] = {}
        self._all_indexed = False
        self.error: str | None = None

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def params(self, name: str, vaddr: int | None = None) -> list[str]:
        """``type name`` of each parameter of function ``name`` (whose code
        starts at link-time address ``vaddr``), in order; [] when the
        DWARF has no such function or cannot be read."""
        dwarf = self._open()
        if dwarf is None:
            return []
        try:
            die = self._find(dwarf, name, vaddr)
            if die is None:
                return []
            out = []
            for child in die.iter_children():
                if child.tag != "DW_TAG_formal_parameter":
                    continue
                tname = type_name(_type_of(child))
                pname = _name(child)
                out.append(f"{tname} {pname}" if pname is not None else tname)
            return out
        # pyelftools raises many kinds of errors on DWARF it does not
        # understand (ELFError, DWARFError, KeyError, struct/construct
        # errors): for a listing, that function simply shows no parameters.
        except Exception:  # noqa: BLE001
            return []

    # ------------------------------------------------------------------
    def _open(self) -> DWARFInfo | None:
        if self._dwarf is not None or self.source is None or self.error is not None:
            return self._dwarf
        try:
            from elftools.elf.elffile import ELFFile
            # A read-only mapping (pyelftools only seeks and reads): no file
            # descriptor stays open, and pages are read as DIEs are parsed.
            with open(self.source, "rb") as fh:
                self._stream = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            dwarf = ELFFile(self._stream).get_dwarf_info()
            self._aranges = dwarf.get_aranges()
        except Exception as exc:  # noqa: BLE001 - see params(): any pyelftools failure
            self.error = f"cannot read the DWARF of {self.source}: {exc}"
            self.close()
            return None
        self._dwarf = dwarf
        return dwarf

    def _find(self, dwarf: DWARFInfo, name: str, vaddr: int | None) -> DIE | None:
        if vaddr is not None and self._aranges is not None:
            try:
                offset = self._aranges.cu_offset_at_addr(vaddr)
            except Exception:  # noqa: BLE001 - an address outside every range
                offset = None
            if offset is not None:
                # The unit that holds the code: its DIE of that name, the
                # one at that address if the name is defined twice there.
                return _pick(self._unit(dwarf, offset).get(name, []), vaddr)
        for offset in self._unit_offsets(dwarf):
            found = self._unit(dwarf, offset).get(name)
            if found:
                return found[0][1]
        return None

    def _unit_offsets(self, dwarf: DWARFInfo) -> list[int]:
        if not self._all_indexed:
            for cu in dwarf.iter_CUs():
                self._unit(dwarf, cu.cu_offset, cu)
            self._all_indexed = True
        return list(self._units)

    def _unit(self, dwarf: DWARFInfo, offset: int, cu: Any = None) -> dict[str, list[tuple[int | None, DIE]]]:
        """Function name -> [(low_pc, DIE)] of one compilation unit, in DIE
        order; declarations (DW_AT_declaration) are left out, as bpftrace
        never shows their unnamed parameters."""
        index = self._units.get(offset)
        if index is not None:
            return index
        if cu is None:
            cu = dwarf.get_CU_at(offset)
        index = {}
        for die in cu.iter_DIEs():
            if die.tag != "DW_TAG_subprogram" or "DW_AT_declaration" in die.attributes:
                continue
            name = _name(die)
            if name is None:
                continue
            low = die.attributes.get("DW_AT_low_pc")
            index.setdefault(name, []).append((low.value if low is not None else None, die))
        self._units[offset] = index
        return index


def _pick(found: list[tuple[int | None, DIE]], vaddr: int) -> DIE | None:
    for low, die in found:
        if low == vaddr:
            return die
    return found[0][1] if found else None


def _integrated(die: DIE, attr: str) -> Any:
    """The attribute of ``die`` or of the DIE it is an instance or a
    definition of (dwarf_attr_integrate: a few levels at most)."""
    for _ in range(8):
        value = die.attributes.get(attr)
        if value is not None:
            return value
        for link in _INTEGRATE:
            if link in die.attributes:
                die = die.get_DIE_from_attribute(link)
                break
        else:
            return None
    return None


def _name(die: DIE) -> str | None:
    value = _integrated(die, "DW_AT_name")
    if value is None:
        return None
    raw = value.value
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _type_of(die: DIE) -> DIE | None:
    """The DIE named by ``die``'s DW_AT_type (integrated), or None."""
    holder = die
    for _ in range(8):
        if "DW_AT_type" in holder.attributes:
            return holder.get_DIE_from_attribute("DW_AT_type")
        for link in _INTEGRATE:
            if link in holder.attributes:
                holder = holder.get_DIE_from_attribute(link)
                break
        else:
            return None
    return None


def type_name(die: DIE | None, depth: int = 0) -> str:
    """A type DIE spelled as bpftrace 0.17 spells it (Dwarf::get_type_name)."""
    if die is None or depth > 32:
        return UNKNOWN
    tag = die.tag
    if tag in ("DW_TAG_base_type", "DW_TAG_typedef"):
        return _name(die) or ""
    if tag == "DW_TAG_pointer_type":
        if "DW_AT_type" not in die.attributes:
            return "void*"
        return type_name(die.get_DIE_from_attribute("DW_AT_type"), depth + 1) + "*"
    if tag in _PREFIX:
        raw = die.attributes.get("DW_AT_name")
        name = raw.value.decode("utf-8", "replace") if raw is not None else "<anonymous>"
        return _PREFIX[tag] + name
    if tag == "DW_TAG_const_type":
        inner = die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes else None
        if inner is not None and inner.tag == "DW_TAG_pointer_type":
            return type_name(inner, depth + 1) + " const"
        return "const " + type_name(inner, depth + 1)
    return UNKNOWN
