"""A minimal eBPF instruction encoder with labels.

This module owns the byte encoding of ``struct bpf_insn`` (opcode, dst/src
registers, 16-bit offset, 32-bit immediate; little-endian) and a tiny
two-pass assembler for the hand-written programs the runtime and its tests
need: feature probes, test fixtures, trampolines.  Generated programs come
from LLVM; nothing here tries to be a compiler.
"""

from __future__ import annotations

import struct

from ..records import dataclass, field
from .syscalls import BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE

_INSN = struct.Struct("<BBhi")
INSN_SIZE = 8

# Instruction classes, sizes, modes and ALU/JMP operations (uapi bpf_common.h, bpf.h).
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
IMM, MEM, ATOMIC = 0x00, 0x60, 0xC0
K, X = 0x00, 0x08
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR, MOV, ARSH = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0)
JA, JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE, CALL, EXIT, JLT, JLE, JSLT, JSLE = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0)
_SIZE_OF = {1: B, 2: H, 4: W, 8: DW}

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)


def encode(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One 8-byte instruction; ``imm`` may be given unsigned (wraps to i32)."""
    if imm >= 1 << 31:
        imm -= 1 << 32
    return _INSN.pack(code, (src << 4) | dst, off, imm)


def decode(insns: bytes, index: int) -> tuple[int, int, int, int, int]:
    """``(code, dst, src, off, imm)`` of instruction ``index``."""
    code, regs, off, imm = _INSN.unpack_from(insns, index * INSN_SIZE)
    return code, regs & 0xF, regs >> 4, off, imm


def mov64_imm(dst: int, imm: int) -> bytes:
    return encode(ALU64 | MOV | K, dst, imm=imm)


def mov64_reg(dst: int, src: int) -> bytes:
    return encode(ALU64 | MOV | X, dst, src)


def alu64_imm(op: int, dst: int, imm: int) -> bytes:
    return encode(ALU64 | op | K, dst, imm=imm)


def alu64_reg(op: int, dst: int, src: int) -> bytes:
    return encode(ALU64 | op | X, dst, src)


def ldx(size: int, dst: int, src: int, off: int) -> bytes:
    """``dst = *(u<size*8> *)(src + off)``."""
    return encode(LDX | MEM | _SIZE_OF[size], dst, src, off)


def stx(size: int, dst: int, off: int, src: int) -> bytes:
    """``*(u<size*8> *)(dst + off) = src``."""
    return encode(STX | MEM | _SIZE_OF[size], dst, src, off)


def st_imm(size: int, dst: int, off: int, imm: int) -> bytes:
    """``*(u<size*8> *)(dst + off) = imm``."""
    return encode(ST | MEM | _SIZE_OF[size], dst, off=off, imm=imm)


def atomic_add64(dst: int, off: int, src: int) -> bytes:
    """``lock *(u64 *)(dst + off) += src`` (no fetch: imm is BPF_ADD)."""
    return encode(STX | ATOMIC | DW, dst, src, off, ADD)


def ld_imm64(dst: int, imm: int, src: int = 0, imm2: int | None = None) -> bytes:
    """The 16-byte ``ld_imm64``; ``src`` selects a pseudo form (map fd/value)."""
    lo = imm & 0xFFFFFFFF if imm2 is None else imm
    hi = (imm >> 32) & 0xFFFFFFFF if imm2 is None else imm2
    return encode(LD | IMM | DW, dst, src, imm=lo) + encode(0, imm=hi)


def ld_map_fd(dst: int, fd: int) -> bytes:
    return ld_imm64(dst, fd, BPF_PSEUDO_MAP_FD, 0)


def ld_map_value(dst: int, fd: int, offset: int) -> bytes:
    return ld_imm64(dst, fd, BPF_PSEUDO_MAP_VALUE, offset)


def call(helper: int) -> bytes:
    return encode(JMP | CALL, imm=helper)


def exit_insn() -> bytes:
    return encode(JMP | EXIT)


@dataclass
class Asm:
    """Append instructions, mark labels, jump to labels; ``assemble()`` fixes
    the jump offsets (in instructions, relative to the next one)."""

    _chunks: list[bytes | tuple[int, int, int | None, int, str]] = field(default_factory=list)
    _labels: dict[str, int] = field(default_factory=dict)
    _pos: int = 0

    def emit(self, *insns: bytes) -> Asm:
        for raw in insns:
            self._chunks.append(raw)
            self._pos += len(raw) // INSN_SIZE
        return self

    def label(self, name: str) -> Asm:
        if name in self._labels:
            raise ValueError(f"label {name!r} defined twice")
        self._labels[name] = self._pos
        return self

    def jmp(self, op: int, dst: int, target: str, *, imm: int = 0, src: int | None = None,
            cls: int = JMP) -> Asm:
        """``if dst <op> (src or imm) goto target``; ``op=JA`` is unconditional."""
        self._chunks.append((cls | op | (X if src is not None else K), dst, src, imm, target))
        self._pos += 1
        return self

    def goto(self, target: str) -> Asm:
        return self.jmp(JA, 0, target)

    def assemble(self) -> bytes:
        out = bytearray()
        for chunk in self._chunks:
            if isinstance(chunk, bytes):
                out += chunk
                continue
            code, dst, src, imm, target = chunk
            if target not in self._labels:
                raise ValueError(f"undefined label {target!r}")
            here = len(out) // INSN_SIZE
            out += encode(code, dst, src or 0, self._labels[target] - here - 1, imm)
        return bytes(out)
