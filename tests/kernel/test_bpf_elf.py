"""pytrace.bpf.elf: reading LLVM's BPF objects and linking a program section
against real maps, end to end through the verifier and a test run."""

from __future__ import annotations

import os

import pytest

from pytrace.bpf.elf import (
    R_BPF_64_64,
    SHT_NOBITS,
    ElfError,
    ElfObject,
    LinkError,
    create_data_maps,
    link_program,
)
from pytrace.bpf.maps import BpfMap
from pytrace.bpf.program import load_program, test_run
from pytrace.bpf.syscalls import BPF_F_RDONLY_PROG, BpfError, MapType, ProgType
from tests.kernel.test_bpf_syscalls import TAG, bpf_clean  # noqa: F401

pytestmark = pytest.mark.kernel

# A raw_tp program reading a string constant (.rodata.str1.1, by section
# symbol plus an addend for msg[5]), a constant table (.rodata), a counter
# (.bss) and a named global (.data, by its own symbol at offset 8), writing
# what it read into the 5 u64 of the map ``counts`` (section "maps").
IR = r"""
target datalayout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"
target triple = "bpfel"

@counts = global i64 0, section "maps", align 8
@msg = private unnamed_addr constant [8 x i8] c"pytrace\00", align 1
@table = internal constant [4 x i64] [i64 10, i64 20, i64 30, i64 40], align 8
@hits = internal global i64 0, align 8
@gcount = global i64 5, align 8
@gcount2 = global i64 9, align 8
@_license = global [4 x i8] c"GPL\00", section "license", align 1

define i64 @prog(i64* %ctx) #0 section "raw_tp/test" {
entry:
  %key = alloca i32, align 4
  store i32 0, i32* %key, align 4
  %mp = bitcast i64* @counts to i8*
  %kp = bitcast i32* %key to i8*
  %lookup = inttoptr i64 1 to i8* (i8*, i8*)*
  %v = call i8* %lookup(i8* %mp, i8* %kp)
  %isnull = icmp eq i8* %v, null
  br i1 %isnull, label %out, label %body
body:
  %vals = bitcast i8* %v to i64*
  %arg = load volatile i64, i64* %ctx, align 8
  %idx = and i64 %arg, 3
  %cp = getelementptr [8 x i8], [8 x i8]* @msg, i64 0, i64 %idx
  %c = load volatile i8, i8* %cp, align 1
  %cz = zext i8 %c to i64
  store i64 %cz, i64* %vals, align 8
  %tp = getelementptr [4 x i64], [4 x i64]* @table, i64 0, i64 %idx
  %t = load volatile i64, i64* %tp, align 8
  %v1 = getelementptr i64, i64* %vals, i64 1
  store i64 %t, i64* %v1, align 8
  %old = atomicrmw add i64* @hits, i64 1 monotonic
  %h = load volatile i64, i64* @hits, align 8
  %v2 = getelementptr i64, i64* %vals, i64 2
  store i64 %h, i64* %v2, align 8
  %c5p = getelementptr [8 x i8], [8 x i8]* @msg, i64 0, i64 5
  %c5 = load volatile i8, i8* %c5p, align 1
  %c5z = zext i8 %c5 to i64
  %v3 = getelementptr i64, i64* %vals, i64 3
  store i64 %c5z, i64* %v3, align 8
  %g = load volatile i64, i64* @gcount2, align 8
  %v4 = getelementptr i64, i64* %vals, i64 4
  store i64 %g, i64* %v4, align 8
  br label %out
out:
  ret i64 0
}
attributes #0 = { nounwind }
"""

# A program calling a non-inlined function in .text: an R_BPF_64_32 relocation.
IR_CALL = r"""
target datalayout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"
target triple = "bpfel"

define internal i64 @helper(i64 %x) #1 {
  %y = mul i64 %x, 3
  ret i64 %y
}
define i64 @prog(i64* %ctx) #0 section "raw_tp/call" {
  %a = load volatile i64, i64* %ctx, align 8
  %r = call i64 @helper(i64 %a)
  ret i64 %r
}
attributes #0 = { nounwind }
attributes #1 = { nounwind noinline }
"""


def compile_ir(text: str) -> bytes:
    import llvmlite.binding as llvm  # a project dependency: never skipped
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    mod = llvm.parse_assembly(text)
    mod.verify()
    tm = llvm.Target.from_triple("bpfel").create_target_machine(cpu="v3", opt=2, reloc="static",
                                                                 codemodel="small")
    return bytes(tm.emit_object(mod))


@pytest.fixture(scope="module")
def obj() -> ElfObject:
    return ElfObject.from_bytes(compile_ir(IR))


def test_reader_sees_sections_symbols_relocations(obj: ElfObject) -> None:
    assert [s.name for s in obj.program_sections()] == ["raw_tp/test"]
    data = {s.name: s for s in obj.data_sections()}
    assert set(data) == {".rodata.str1.1", ".rodata", ".bss", ".data"}
    assert data[".rodata.str1.1"].data == b"pytrace\0"
    assert data[".bss"].type == SHT_NOBITS and data[".bss"].size == 8 and data[".bss"].data == b""
    assert obj.section("license").data == b"GPL\0"
    assert obj.symbol("counts").value == 0 and obj.sections[obj.symbol("counts").shndx].name == "maps"
    assert obj.symbol("gcount2").value == 8
    relocs = obj.relocations[obj.section("raw_tp/test").index]
    assert {r.type for r in relocs} == {R_BPF_64_64} and len(relocs) == 6
    assert all(r.addend is None for r in relocs)  # SHT_REL


def test_link_load_and_run(obj: ElfObject) -> None:
    data_maps = create_data_maps(obj)
    try:
        assert set(data_maps) == {".rodata.str1.1", ".rodata", ".bss", ".data"}
        assert data_maps[".rodata"].flags & BPF_F_RDONLY_PROG
        with pytest.raises(BpfError, match="frozen"):
            data_maps[".rodata"].update(bytes(4), bytes(32))
        assert data_maps[".data"].lookup(bytes(4)) == (5).to_bytes(8, "little") + (9).to_bytes(8, "little")
        with BpfMap.create(MapType.ARRAY, 4, 40, 1, TAG + "counts") as counts:
            code = link_program(obj, "raw_tp/test", {"counts": counts.fd},
                                {name: m.fd for name, m in data_maps.items()})
            fd = load_program(ProgType.RAW_TRACEPOINT, code, name=TAG + "elf")
            try:
                seen = []
                for arg in (1, 2):
                    assert test_run(fd, arg.to_bytes(8, "little")) == 0
                    seen.append(list(memoryview(counts.lookup(bytes(4)) or b"").cast("Q")))
            finally:
                os.close(fd)
        # msg[arg], table[arg], ++hits, msg[5] (an addend), gcount2 (a symbol's value)
        assert seen == [[ord("y"), 20, 1, ord("c"), 9], [ord("t"), 30, 2, ord("c"), 9]]
        assert data_maps[".bss"].lookup(bytes(4)) == (2).to_bytes(8, "little")
    finally:
        for m in data_maps.values():
            m.close()


def test_link_errors(obj: ElfObject) -> None:
    with pytest.raises(LinkError, match="no fd for map 'counts'"):
        link_program(obj, "raw_tp/test", {}, {".rodata": 1, ".rodata.str1.1": 1, ".bss": 1, ".data": 1})
    with pytest.raises(LinkError, match="no array map for data section"):
        link_program(obj, "raw_tp/test", {"counts": 1}, {})
    with pytest.raises(LinkError, match="holds no code"):
        link_program(obj, "license", {}, {})
    with pytest.raises(KeyError):
        link_program(obj, "nope", {}, {})
    called = ElfObject.from_bytes(compile_ir(IR_CALL))
    with pytest.raises(LinkError, match="BPF-to-BPF call"):
        link_program(called, "raw_tp/call", {}, {})


def test_reader_rejects_non_elf() -> None:
    with pytest.raises(ElfError):
        ElfObject.from_bytes(b"not an elf file at all, clearly not one" * 2)
    with pytest.raises(ElfError):
        ElfObject.from_bytes(b"\x7fELF\x01\x01" + bytes(58))  # 32-bit


def test_reader_reads_an_executable() -> None:
    exe = ElfObject.from_path("/bin/true")
    assert exe.segments and exe.dynsyms
    text = exe.section(".text")
    assert exe.file_offset(text.addr) == text.offset
