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
    Linked,
    link,
    link_program,
)
from pytrace.bpf.maps import BpfMap
from pytrace.bpf.program import VerifierError, load_program, test_run
from pytrace.bpf.progbtf import ProgramBtf
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

# Two programs and three functions in .text.  raw_tp/call calls @triple
# (an R_BPF_64_32 relocation), which calls @plus1 (a call inside .text:
# no relocation); raw_tp/each passes @count_cb to bpf_for_each_map_elem
# (an R_BPF_64_64 against a function: BPF_PSEUDO_FUNC).  @unused is in
# .text too: a program that appended it would be refused ("unreachable insn").
IR_CALL = r"""
target datalayout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"
target triple = "bpfel"

@entries = global i64 0, section "maps", align 8

define internal i64 @unused(i64 %x) #1 section ".text" {
  %y = add i64 %x, 100
  ret i64 %y
}
define internal i64 @plus1(i64 %x) #1 section ".text" {
  %y = add i64 %x, 1
  ret i64 %y
}
define internal i64 @triple(i64 %x) #1 section ".text" {
  %y = mul i64 %x, 3
  %z = call i64 @plus1(i64 %y)
  ret i64 %z
}
define internal i64 @count_cb(i8* %map, i8* %key, i8* %value, i8* %ctx) #1 section ".text" {
  %p = bitcast i8* %ctx to i64*
  %v = load i64, i64* %p
  %n = add i64 %v, 1
  store i64 %n, i64* %p
  ret i64 0
}
define i64 @prog(i64* %ctx) #0 section "raw_tp/call" {
  %a = load volatile i64, i64* %ctx, align 8
  %r = call i64 @triple(i64 %a)
  ret i64 %r
}
define i64 @each(i64* %ctx) #0 section "raw_tp/each" {
  %n = alloca i64, align 8
  store i64 0, i64* %n
  %mp = bitcast i64* @entries to i8*
  %np = bitcast i64* %n to i8*
  %cb = bitcast i64 (i8*, i8*, i8*, i8*)* @count_cb to i8*
  %foreach = inttoptr i64 164 to i64 (i8*, i8*, i8*, i64)*
  %ret = call i64 %foreach(i8* %mp, i8* %cb, i8* %np, i64 0)
  %c = load i64, i64* %n
  ret i64 %c
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
    with pytest.raises(LinkError, match="no fd for map 'entries'"):
        link_program(called, "raw_tp/each", {}, {})


def _run_linked(linked: Linked, arg: int) -> int:
    btf = ProgramBtf.load("prog", list(linked.subprogs)) if linked.subprogs else None
    try:
        fd = load_program(ProgType.RAW_TRACEPOINT, linked.insns, name=TAG + "sub",
                          btf_fd=btf.fd if btf else 0, func_info=btf.records if btf else b"")
    finally:
        if btf is not None:
            btf.close()
    try:
        return test_run(fd, arg.to_bytes(8, "little"))
    finally:
        os.close(fd)


def test_link_subprogram_calls() -> None:
    """A BPF-to-BPF call chain: only the functions reached are appended
    (after the program's own instructions, which keep their offsets)."""
    called = ElfObject.from_bytes(compile_ir(IR_CALL))
    main = called.section("raw_tp/call")
    linked = link(called, "raw_tp/call", {}, {})
    assert [name for _, name in linked.subprogs] == ["triple", "plus1"]
    assert linked.subprogs[0][0] == main.size // 8
    assert linked.insns[:8] == main.data[:8]
    for arg in (0, 5, 14):
        assert _run_linked(linked, arg) == arg * 3 + 1


def test_link_callback_for_each_map_elem() -> None:
    """A helper's callback (BPF_PSEUDO_FUNC) with the func_info BTF the
    verifier demands: bpf_for_each_map_elem counts the map's entries."""
    called = ElfObject.from_bytes(compile_ir(IR_CALL))
    with BpfMap.create(MapType.HASH, 8, 8, 64, TAG + "entries") as entries:
        linked = link(called, "raw_tp/each", {"entries": entries.fd}, {})
        assert [name for _, name in linked.subprogs] == ["count_cb"]
        assert _run_linked(linked, 0) == 0
        for k in range(7):
            entries.update(k.to_bytes(8, "little"), bytes(8))
        assert _run_linked(linked, 0) == 7
        with pytest.raises(VerifierError, match="missing btf func_info"):
            fd = load_program(ProgType.RAW_TRACEPOINT, linked.insns, name=TAG + "nobtf")
            os.close(fd)


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
