"""x86-64 instruction lengths, to check that a uprobe offset falls on an
instruction boundary.

A uprobe writes int3 over the first byte of the instruction at its offset;
put in the middle of an instruction it corrupts that instruction, and the
traced process computes garbage or crashes.  bpftrace checks the offset
with a disassembler (and refuses offsets when built without one, as
Debian's 0.17 is); this module only needs lengths, which follow from the
encoding's structure (Intel SDM vol. 2, chapter 2 and appendix A):
prefixes, REX/VEX/EVEX/XOP, the opcode map, ModRM/SIB/displacement and the
immediate each opcode takes.
"""

from __future__ import annotations

from typing import Iterator

MAX_INSN = 15  # the architectural limit (SDM 2.3.11)
_LEGACY_PREFIXES = frozenset((0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65, 0x66, 0x67))


def _bits(spec: str) -> frozenset[int]:
    """Opcodes from a compact list: "00-03 08 0c-0f"."""
    out: set[int] = set()
    for item in spec.split():
        lo, _, hi = item.partition("-")
        out.update(range(int(lo, 16), int(hi or lo, 16) + 1))
    return frozenset(out)


# One-byte map (64-bit mode).  Opcodes invalid in 64-bit mode are refused.
_INVALID1 = _bits("06 07 0e 16 17 1e 1f 27 2f 37 3f 60 61 82 9a c4 c5 ce d4 d5 d6 ea")
_MODRM1 = _bits("00-03 08-0b 10-13 18-1b 20-23 28-2b 30-33 38-3b 62 63 69 6b 80-8f"
                " c0 c1 c6 c7 d0-d3 d8-df f6 f7 fe ff")
_IMM8_1 = _bits("04 0c 14 1c 24 2c 34 3c 6a 6b 70-7f 80 83 a8 b0-b7 c0 c1 c6 cd d4 d5 e0-e7 eb")
_IMMZ_1 = _bits("05 0d 15 1d 25 2d 35 3d 68 69 81 a9 c7")  # imm16 with 66, else imm32
_REL32_1 = _bits("e8 e9")

# Two-byte map (0F xx).
_INVALID2 = _bits("04 0a 0c 24-27 36 39 3b-3f a6 a7")
_NO_MODRM2 = _bits("05-09 0b 0e 30-35 37 77 80-8f a0-a2 a8-aa c8-cf")
_IMM8_2 = _bits("0f 70-73 a4 ac ba c2 c4-c6")
# VEX/EVEX map 1 opcodes with an imm8 (shuffles, compares, inserts).
_IMM8_VEX1 = _bits("70-73 c2 c4-c6")


def _modrm_length(code: bytes, pos: int) -> int | None:
    """Bytes taken by the ModRM byte at ``pos`` with its SIB and
    displacement (64-bit addressing; the 0x67 prefix selects 32-bit
    addressing, which is encoded the same way)."""
    if pos >= len(code):
        return None
    m = code[pos]
    mod, rm = m >> 6, m & 7
    n = 1
    if mod == 3:
        return n
    if rm == 4:
        if pos + 1 >= len(code):
            return None
        n += 1
        if mod == 0 and code[pos + 1] & 7 == 5:
            n += 4  # SIB with no base: disp32
    elif mod == 0 and rm == 5:
        n += 4  # RIP-relative disp32
    if mod == 1:
        n += 1
    elif mod == 2:
        n += 4
    return n


def insn_length(code: bytes, pos: int = 0) -> int | None:
    """The length of the instruction at ``code[pos]``, or None when it is
    not a valid 64-bit mode encoding or runs past the end of ``code``."""
    i = pos
    opsize16 = addr32 = False
    rex_w = False
    while i < len(code) and i - pos < MAX_INSN:
        b = code[i]
        if b in _LEGACY_PREFIXES:
            opsize16 |= b == 0x66
            addr32 |= b == 0x67
            rex_w = False  # a REX prefix only counts right before the opcode
            i += 1
        elif 0x40 <= b <= 0x4F:
            rex_w = bool(b & 8)
            i += 1
        else:
            break
    if i >= len(code):
        return None
    op = code[i]
    i += 1
    if op in (0xC4, 0xC5, 0x62) or (op == 0x8F and i < len(code) and code[i] & 0x1F >= 8):
        n = _vex_length(code, i - 1)
        return None if n is None else _checked(code, pos, i - 1 - pos + n)
    if op == 0x0F:
        return _two_byte(code, pos, i, opsize16)
    if op in _INVALID1:
        return None
    n = i - pos
    if op in _MODRM1:
        m = _modrm_length(code, i)
        if m is None:
            return None
        if op in (0xF6, 0xF7) and (code[i] >> 3) & 7 in (0, 1):
            n += 1 if op == 0xF6 else (2 if opsize16 else 4)  # test r/m, imm
        n += m
    if op in _IMM8_1:
        n += 1
    elif op in _IMMZ_1:
        n += 2 if opsize16 else 4
    elif op in _REL32_1:
        n += 4  # call/jmp rel32 (64-bit mode ignores 0x66 here, as Intel does)
    elif 0xB8 <= op <= 0xBF:
        n += 8 if rex_w else (2 if opsize16 else 4)  # mov r, imm64 with REX.W
    elif 0xA0 <= op <= 0xA3:
        n += 4 if addr32 else 8  # mov al/eax, moffs
    elif op in (0xC2, 0xCA):
        n += 2
    elif op == 0xC8:
        n += 3  # enter imm16, imm8
    return _checked(code, pos, n)


def _two_byte(code: bytes, pos: int, i: int, opsize16: bool) -> int | None:
    """0F xx, 0F 38 xx and 0F 3A xx; ``i`` is the index after the 0F."""
    if i >= len(code):
        return None
    op = code[i]
    i += 1
    if op in (0x38, 0x3A):
        if i >= len(code):
            return None
        m = _modrm_length(code, i + 1)
        if m is None:
            return None
        return _checked(code, pos, i + 1 + m - pos + (1 if op == 0x3A else 0))
    if op in _INVALID2:
        return None
    n = i - pos
    if 0x80 <= op <= 0x8F:
        return _checked(code, pos, n + 4)  # jcc rel32
    if op not in _NO_MODRM2:
        m = _modrm_length(code, i)
        if m is None:
            return None
        n += m
    if op in _IMM8_2:
        n += 1
    return _checked(code, pos, n)


def _vex_length(code: bytes, pos: int) -> int | None:
    """A VEX (C4/C5), EVEX (62) or AMD XOP (8F) encoded instruction at
    ``pos``: its prefix, opcode, ModRM and immediate."""
    lead = code[pos]
    if lead == 0xC5:
        size, mmmmm = 2, 1
    elif lead == 0x62:
        if pos + 1 >= len(code):
            return None
        size, mmmmm = 4, code[pos + 1] & 7
    else:
        if pos + 1 >= len(code):
            return None
        size, mmmmm = 3, code[pos + 1] & 0x1F
    i = pos + size
    if i >= len(code):
        return None
    op = code[i]
    i += 1
    if lead == 0x8F:  # XOP maps 8, 9, 0Ah (AMD)
        if mmmmm not in (8, 9, 10):
            return None
        m = _modrm_length(code, i)
        return None if m is None else i + m - pos + {8: 1, 9: 0, 10: 4}[mmmmm]
    if lead != 0x62 and mmmmm not in (1, 2, 3):
        return None
    if mmmmm == 1 and op == 0x77 and lead != 0x62:
        return i - pos  # vzeroupper / vzeroall: no ModRM
    m = _modrm_length(code, i)
    if m is None:
        return None
    n = i + m - pos
    if mmmmm == 3 or (mmmmm == 1 and op in _IMM8_VEX1):
        n += 1
    return n


def _checked(code: bytes, pos: int, n: int) -> int | None:
    return n if n <= MAX_INSN and pos + n <= len(code) else None


def boundaries(code: bytes) -> Iterator[int]:
    """The offsets at which instructions start when ``code`` is decoded
    from its first byte; stops at the first byte that does not decode."""
    pos = 0
    while pos < len(code):
        yield pos
        n = insn_length(code, pos)
        if n is None:
            return
        pos += n


def on_boundary(code: bytes, offset: int) -> bool | None:
    """Whether an instruction starts at ``offset`` when ``code`` (a
    function from its entry) is decoded from the start; None when an
    instruction before it does not decode."""
    pos = 0
    while pos < offset:
        n = insn_length(code, pos)
        if n is None:
            return None
        pos += n
    return pos == offset
