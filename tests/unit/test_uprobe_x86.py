"""x86-64 instruction lengths (pytrace.kernel.x86insn), which decide whether
a uprobe offset is on an instruction boundary, checked against binutils:
instructions assembled with ``as`` and libc's hand-written SIMD string
functions, each split into instructions by ``objdump``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pytrace.kernel.elfsyms import load_symbol_table, resolve_library
from pytrace.kernel.x86insn import boundaries, insn_length, on_boundary

pytestmark = pytest.mark.skipif(not (shutil.which("as") and shutil.which("objdump")), reason="needs binutils")

# Every encoding family: legacy prefixes, REX.W imm64, moffs, RIP/SIB/disp8,
# 0x66/0x67 operand and address sizes, immediates of every size (test imm
# by /reg, enter, ret imm16), rel8/rel32, 0F/0F38/0F3A maps with and without
# imm8, VEX (vzeroupper has no ModRM), EVEX (masking, disp8*N, imm8), VSIB,
# AMD XOP maps 8 and 9, x87.
ASM = r"""
.text
.globl f
f:
  endbr64; push %rbp; mov %rsp,%rbp
  movabs $0x1122334455667788,%rax; movabs 0x1122334455667788,%eax
  mov 0x1234(%rip),%rax; mov 0x10(,%rcx,8),%rdx; mov (%rsp),%r12; mov 0x7f(%rbp),%r13d
  addr32 mov (%eax),%ebx; mov %fs:0x28,%rax; movw $0x1234,(%rdi); movl $0x12345678,0x100(%rdi,%rsi,4)
  testb $1,(%rax); testw $0x100,%ax; testl $0x10000,(%rdx); notl (%rax); negb 4(%rdx)
  lock cmpxchg %rcx,(%rdx); rep stosq; imul $1000,%eax,%ecx; imul $10,%eax,%ecx
  enter $16,$0; ret $8; jmp 1f; je 1f
1:
  jne f; call f; xbegin 2f
2:
  rdrand %eax; crc32q %rax,%rbx; movbe (%rdi),%eax; popcnt %rax,%rbx; tzcnt %rax,%rbx
  pshufb %xmm1,%xmm0; palignr $4,%xmm1,%xmm0; pclmulqdq $0x11,%xmm1,%xmm0; aesenc %xmm1,%xmm0
  sha256rnds2 %xmm0,%xmm1,%xmm2; pshufd $0x1b,%xmm1,%xmm0; psrldq $4,%xmm0; cmpps $1,%xmm1,%xmm0
  shufps $0x44,%xmm1,%xmm0; pinsrw $2,%eax,%xmm0; pextrw $1,%xmm0,%eax
  vzeroupper; vpaddd %ymm1,%ymm2,%ymm3; vpshufd $0x1b,%ymm1,%ymm0; vcmpps $1,%ymm1,%ymm2,%ymm3
  vperm2i128 $0x21,%ymm1,%ymm2,%ymm3; andn %rax,%rbx,%rcx; rorx $5,%rax,%rbx; pdep %rax,%rbx,%rcx
  vfmadd231ps %ymm1,%ymm2,%ymm3; vpgatherdd %ymm1,(%rax,%ymm2,4),%ymm3; kmovw %k1,%eax; kmovq %k2,%k3
  vpaddd %zmm1,%zmm2,%zmm3; vpaddd 0x40(%rax),%zmm2,%zmm3{%k1}{z}; vpternlogd $0xff,%zmm1,%zmm2,%zmm3
  vpcmpud $2,%zmm1,%zmm2,%k1; vmovdqu64 0x1000(%rip),%zmm0; vpbroadcastd %eax,%zmm1
  vpshufd $0x1b,%zmm1,%zmm0; vextracti32x4 $1,%zmm1,%xmm2; vcvtph2ps %xmm1,%ymm2
  vprotb $3,%xmm1,%xmm2; vpcmov %xmm1,%xmm2,%xmm3,%xmm4; vfrczps %xmm1,%xmm2
  fld1; fnstsw %ax; fldt 0x10(%rsp)
  nopw 0x0(%rax,%rax,1); nopl 0x0(%rax); .byte 0x66,0x2e,0x0f,0x1f,0x84,0,0,0,0,0; xchg %ax,%ax
  syscall; cpuid; bswap %eax; bt $3,%eax; shld $4,%eax,%ebx; cmovne %rax,%rbx; sete %al
  movzbl (%rdi),%eax; movsbq %al,%rdx; movslq %eax,%rdx; push $0x12345678; push $5
  int $0x80; in $0x60,%al; out %al,$0x60; loop f; jrcxz f; pop 0x10(%rsp); leave; ret
"""


def objdump_starts(path: Path | str, start: int | None = None, stop: int | None = None) -> list[int]:
    """Addresses at which objdump starts an instruction."""
    args = ["objdump", "-d", "--no-show-raw-insn", str(path)]
    if start is not None:
        args[2:2] = [f"--start-address={start:#x}", f"--stop-address={stop:#x}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [int(m.group(1), 16) for m in re.finditer(r"^\s*([0-9a-f]+):\t(?!\(bad\))", out, re.MULTILINE)]


def test_assembled_encodings_match_objdump(tmp_path: Path) -> None:
    (tmp_path / "t.s").write_text(ASM)
    subprocess.run(["as", "-o", str(tmp_path / "t.o"), str(tmp_path / "t.s")], check=True)
    subprocess.run(["objcopy", "-O", "binary", "--only-section=.text", str(tmp_path / "t.o"),
                    str(tmp_path / "t.bin")], check=True)
    code = (tmp_path / "t.bin").read_bytes()
    expected = objdump_starts(tmp_path / "t.o")
    assert len(expected) > 90
    assert list(boundaries(code)) == expected


def test_libc_functions_match_objdump() -> None:
    """glibc's AVX2/EVEX string functions (dense VEX/EVEX code written in
    assembly; local symbols, named when libc6-dbg is installed) and a spread
    of its other functions: twenty in all, to stay fast."""
    libc = resolve_library("libc.so.6")
    assert libc is not None
    table = load_symbol_table(libc)
    sized = [n for n in table.functions() if (sym := table.lookup(n)) is not None and sym.size > 16]
    simd = [n for n in sized if re.match(r"__(strlen|memcpy|memset|strchr|memcmp)_(avx2|evex)", n)][:8]
    spread = sized[:: max(1, len(sized) // 12)][:12]
    data = Path(libc).read_bytes()
    for name in simd + spread:
        sym = table.lookup(name)
        assert sym is not None and sym.file_offset is not None
        code = data[sym.file_offset: sym.file_offset + sym.size]
        expected = [a - sym.vaddr for a in objdump_starts(libc, sym.vaddr, sym.vaddr + sym.size)]
        ours = list(boundaries(code))
        # objdump merges fwait (9B) with the x87 instruction after it: there
        # both are boundaries, a finer split than objdump's.
        merged = {i + 1 for i in ours if code[i] == 0x9B} - set(expected)
        assert [i for i in ours if i not in merged] == expected, name


def test_on_boundary_and_bad_bytes() -> None:
    code = bytes.fromhex("4883ec08" "b8ffffffff" "c3")  # sub $8,%rsp; mov $-1,%eax; ret
    assert [on_boundary(code, i) for i in range(len(code) + 1)] == \
        [True, False, False, False, True, False, False, False, False, True, True]
    assert insn_length(bytes.fromhex("06")) is None      # push %es: invalid in 64-bit mode
    assert insn_length(bytes.fromhex("48b8")) is None    # movabs cut short
    assert insn_length(b"\x66" * 15 + b"\x90") is None   # longer than 15 bytes
    assert on_boundary(bytes.fromhex("06c3"), 1) is None
