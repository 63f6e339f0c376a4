"""Size of the loaded programs, and the loss counters in .bss.

The verifier's view of a program (``bpftool prog dump xlated``) is what the
kernel runs: a few one-liners must stay at or below the instruction counts
measured when the code generator was last tuned (bpftrace 0.17's own count
alongside: the target is to be no larger).  Counts are bpftool's, an
ld_imm64 counting once.  The loss counters live in the object's .bss section.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from typing import Any, Iterator

import pytest

from pytrace.bpf import elf
from pytrace.bpf.program import prog_info
from pytrace.codegen.layout import COUNTERS_SECTION, LOST_SLOT, counter_symbol, read_counters
from pytrace.diagnostics import Diagnostics
from pytrace.kernel.info import LiveKernel
from pytrace.runtime.session import RunOptions, Session
from pytrace.semantic.pipeline import CompileOptions, run
from pytrace.source import SourceFile

pytestmark = pytest.mark.skipif(shutil.which("bpftool") is None, reason="needs bpftool")

# (script, at most this many instructions, bpftrace 0.17's count)
LIMITS = [
    ("tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }", 26, 29),
    ("tracepoint:syscalls:sys_enter_openat { @[pid] = count(); }", 25, 25),
    ("tracepoint:syscalls:sys_exit_read { @ = sum(args->ret); }", 19, 25),
    ("tracepoint:syscalls:sys_exit_read { @ = hist(args->ret); }", 55, 56),
    ("tracepoint:syscalls:sys_exit_read { @ = lhist(args->ret, 0, 1000, 100); }", 32, 32),
    ("tracepoint:syscalls:sys_exit_read { @ = avg(args->ret); }", 27, 47),
    ('tracepoint:syscalls:sys_enter_openat { printf("%d %s\\n", pid, comm); }', 25, 25),
    ("tracepoint:syscalls:sys_enter_openat { @[str(args->filename)] = count(); }", 36, 36),
    ("tracepoint:syscalls:sys_exit_read /args->ret > 0/ { @[comm] = count(); }", 29, 32),
    ("tracepoint:syscalls:sys_exit_read { @ = max(args->ret); }", 23, 26),
]


def _compile(script: str) -> Any:
    diags = Diagnostics()
    comp = run(SourceFile("stdin", script), CompileOptions(kernel=LiveKernel(), environ={}), diags)
    assert not diags.has_errors(), diags.render()
    return comp


def _loaded(script: str) -> Iterator[Session]:
    with Session(_compile(script), RunOptions(), io.StringIO(), io.StringIO()) as s:
        diags = Diagnostics()
        assert s.load(diags), diags.render()
        yield s


def _xlated_insns(fd: int) -> int:
    """Instructions as bpftool lists them (an ld_imm64 once)."""
    out = subprocess.run(["bpftool", "-j", "prog", "dump", "xlated", "id", str(prog_info(fd).id)],
                         capture_output=True, text=True, check=True).stdout
    return len(json.loads(out))


@pytest.mark.parametrize("script,limit,bpftrace", LIMITS, ids=[s for s, _, _ in LIMITS])
def test_xlated_size(script: str, limit: int, bpftrace: int) -> None:
    for s in _loaded(script):
        got = sum(_xlated_insns(fd) for fd in s.prog_fds.values())
        assert got <= limit, f"{got} xlated instructions (was {limit}; bpftrace 0.17: {bpftrace})"


def test_counters_in_bss(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full map's dropped updates are counted in the .bss counter of
    that map, at the offset its symbol gives, and nothing else is."""
    objects: list[elf.ElfObject] = []
    parse = elf.ElfObject.from_bytes

    def keep(raw: bytes) -> elf.ElfObject:
        objects.append(parse(raw))
        return objects[-1]

    monkeypatch.setattr(elf.ElfObject, "from_bytes", staticmethod(keep))
    script = ("config = { max_map_keys = 4 } "
              "BEGIN { $i = 0; unroll(10) { @c[$i] = count(); @s[$i] = sum(2); @v[$i] = 1; @x[$i] = max($i); "
              "@h[$i] = hist($i); $i++; } exit(); }")
    for s in _loaded(script):
        assert s.run() == 0
        assert s.layout is not None
        obj = objects[-1]
        section = obj.section(COUNTERS_SECTION)
        offsets = {sym.name: sym.value for sym in obj.symbols if sym.shndx == section.index}
        assert counter_symbol(LOST_SLOT) in offsets
        raw = s.data_maps[COUNTERS_SECTION].lookup(bytes(4))
        assert raw is not None
        lost, full = read_counters(s.layout, raw, offsets)
        # hist() of 0..9 fills buckets 1..5 (0, 1, 2-3, 4-7, 8-15): under 4 * 16.
        assert (lost, full) == (0, {"@c": 6, "@s": 6, "@v": 6, "@x": 6, "@h": 0})
