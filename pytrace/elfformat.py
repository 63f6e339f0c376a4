"""The ELF64 little-endian format as pytrace reads it: gABI constants, the
header layouts, the Section and Segment records and ElfError.

Shared by the BPF object linker (``pytrace.bpf.elf``) and the reader of user
binaries (``pytrace.kernel.elfsyms``: uprobe symbols, USDT notes, DWARF).
It imports nothing of pytrace's, so ``pytrace -l`` reading libc does not pull
in the bpf(2) layer.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# Section types, symbol types/bindings and special indices (ELF gABI).
SHT_NULL, SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA = 0, 1, 2, 3, 4
SHT_NOTE, SHT_NOBITS, SHT_REL, SHT_DYNSYM = 7, 8, 9, 11
SHT_GNU_VERSYM = 0x6FFFFFFF
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION = 0, 1, 2, 3
STT_GNU_IFUNC = 10
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STB_GNU_UNIQUE = 10
SHN_UNDEF, SHN_ABS, SHN_XINDEX = 0, 0xFFF1, 0xFFFF
PT_LOAD = 1

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
SHDR = struct.Struct("<IIQQQQIIQQ")
PHDR = struct.Struct("<IIQQQQQQ")
SYM = struct.Struct("<IBBHQQ")


class ElfError(ValueError):
    """The file is not an ELF object this reader understands."""


class Section(NamedTuple):
    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int
    # The bytes (bpf.elf reads them all; empty for SHT_NOBITS: use size).
    # kernel.elfsyms leaves it empty and reads a section on demand.
    data: bytes = b""


class Segment(NamedTuple):
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
