"""The shape of the generated code where it is kept small (no root needed):
constants in .rodata, loss counters in .bss, one lookup per atomic add,
key bytes zeroed only where nothing writes them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pytrace.bpf.elf import ElfObject
from pytrace.codegen.layout import COUNTERS_SECTION, LOST_SLOT, counter_symbol, read_counters
from pytrace.codegen.llvm import module as M
from pytrace.diagnostics import Diagnostics
from pytrace.kernel.info import FakeKernel
from pytrace.semantic.pipeline import CompileOptions, run
from pytrace.source import SourceFile

FAKE = str(Path(__file__).parents[1] / "data" / "tracefs")


def _generate(script: str) -> tuple[Any, M.Generated]:
    diags = Diagnostics()
    comp = run(SourceFile("stdin", script), CompileOptions(kernel=FakeKernel(FAKE), cache_dir=None), diags)
    assert not diags.has_errors(), diags.render()
    layout = M.build_layout(comp)
    specs = M.plan_programs(comp, layout)
    return comp, M.generate(comp, layout, specs, {}, {})


def _asm(script: str) -> str:
    return M.emit_assembly(_generate(script)[1])


def _calls(asm: str, helper: int) -> int:
    return len(re.findall(rf"^\s*call {helper}$", asm, re.MULTILINE))


def test_count_has_one_lookup_and_one_update() -> None:
    asm = _asm("tracepoint:syscalls:sys_enter_openat { @[pid] = count(); }")
    assert _calls(asm, 1) == 1 and _calls(asm, 2) == 1   # the retry loops back to the one lookup
    assert "lock *(u64 *)" in asm
    # The zero inserted first comes from .rodata; the full map's counter is in .bss.
    assert re.search(r"r3 = pt_ro_0+ ll", asm)
    assert f"{counter_symbol(1)} ll" in asm


def test_scalar_key_is_read_from_rodata() -> None:
    asm = _asm("tracepoint:syscalls:sys_exit_read { @ = sum(args->ret); }")
    assert re.search(r"r2 = pt_ro_0+ ll", asm)
    assert "r10" not in asm          # nothing on the stack at all
    # A map whose one key is fixed cannot be full: no counter.
    assert "pt_counter" not in asm.split(".section")[1]


def test_comm_key_is_not_zeroed_first() -> None:
    asm = _asm("tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }")
    body = asm[: asm.index("call 16")]
    assert not re.search(r"\*\(u64 \*\)\(r10 - \d+\) = ", body)   # bpf_get_current_comm pads with NULs


def test_str_key_is_read_in_place() -> None:
    asm = _asm("tracepoint:syscalls:sys_enter_openat { @[str(args->filename)] = count(); }")
    stores = re.findall(r"\*\(u64 \*\)\(r10 - (\d+)\) = r\d", asm)
    assert len(stores) == 8            # the 64-byte key zeroed once, then the read helper
    assert "memcpy" not in asm and len(set(stores)) == 8


def test_keyless_hist_key_is_the_bucket() -> None:
    comp, gen = _generate("tracepoint:syscalls:sys_exit_read { @ = hist(args->ret); }")
    ml = gen.layout.maps["@"]
    assert (ml.user_key_size, ml.key_size) == (0, 8)
    keyed = _generate("tracepoint:syscalls:sys_exit_read { @[pid] = hist(args->ret); }")[1].layout.maps["@"]
    assert (keyed.user_key_size, keyed.key_size) == (8, 16)


def test_counters_are_globals_in_their_section() -> None:
    script = 'tracepoint:syscalls:sys_enter_openat { @a[pid] = count(); @b[tid] = 1; printf("x\\n"); }'
    _, gen = _generate(script)
    obj = ElfObject.from_bytes(M.emit_object(gen))
    section = obj.section(COUNTERS_SECTION)
    offsets = {s.name: s.value for s in obj.symbols if s.shndx == section.index}
    assert set(offsets) == {counter_symbol(i) for i in range(4)}  # lost, @a, @b, probe hits
    raw = bytearray(section.size)
    raw[offsets[counter_symbol(2)]] = 5       # @b's counter
    raw[offsets[counter_symbol(LOST_SLOT)]] = 1
    assert read_counters(gen.layout, bytes(raw), offsets) == (1, {"@a": 0, "@b": 5})


def test_lost_events_are_counted() -> None:
    asm = _asm('tracepoint:syscalls:sys_enter_openat { printf("%d\\n", pid); }')
    # An atomic add on the .bss counter, no map lookup for it.
    assert f"{counter_symbol(LOST_SLOT)} ll" in asm and _calls(asm, 1) == 0
