"""Debug locations without root: a module generated with debug info compiles
to the same instructions as without, its DWARF line table ties each
program's instructions to the statements they came from, and a normal
compile carries none of it.  Also the verifier-log parsing that names the
rejected instruction."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytrace.bpf import elf
from pytrace.bpf.insn import INSN_SIZE
from pytrace.bpf.linetable import LineTable, Row, read_line_table
from pytrace.bpf.program import error_line, parse_insn_index
from pytrace.codegen.llvm import debuginfo
from pytrace.codegen.llvm import module as M
from pytrace.diagnostics import Diagnostics
from pytrace.frontend import ast
from pytrace.kernel.info import FakeKernel
from pytrace.semantic.pipeline import CompileOptions, Compilation, run
from pytrace.source import SourceFile

FAKE = str(Path(__file__).parents[1] / "data" / "tracefs")
CALL = 0x85  # BPF_JMP | BPF_CALL

MULTI_LINE = """\
tracepoint:syscalls:sys_enter_openat
/pid > 1/
{
  @c[comm] = count();
  if (uid == 0) {
    printf("%s\\n", str(args->filename));
  }
}
BEGIN { $i = 0; while ($i < 3) { $i++; @loop[$i] = 1; } }
"""

SCRIPTS = [
    MULTI_LINE,
    'tracepoint:syscalls:sys_enter_openat { @[comm] = count(); } BEGIN { printf("hi %d\\n", 1); exit(); }',
    # A syscall group: one raw-tracepoint program with a filter preamble.
    "tracepoint:syscalls:sys_enter_open, tracepoint:syscalls:sys_enter_openat, "
    "tracepoint:syscalls:sys_enter_newstat, tracepoint:syscalls:sys_enter_newlstat "
    '{ @[probe] = count(); $s = str(args->filename); if ($s == "/x") { @h = hist(pid); } }',
    "tracepoint:sched:sched_switch { @q = lhist(args->prev_pid % 100, 0, 100, 10); "
    "$t = (1, \"two\", args->prev_comm); print($t); unroll(3) { @u = @u + 1; } }",
]


def _compile(text: str) -> tuple[Compilation, M.Layout, list[M.ProgramSpec]]:
    diags = Diagnostics()
    comp = run(SourceFile("script.bt", text), CompileOptions(kernel=FakeKernel(FAKE), cache_dir=None), diags)
    assert not diags.has_errors(), diags.render()
    layout = M.build_layout(comp)
    return comp, layout, M.plan_programs(comp, layout)


def _object(comp: Compilation, layout: M.Layout, specs: list[M.ProgramSpec], debug: bool) -> elf.ElfObject:
    layout.events.clear()
    layout.time_formats.clear()
    gen = M.generate(comp, layout, specs, {}, {"params": [], "debug_info": debug})
    assert ("!dbg" in gen.ir_text) == debug
    return elf.ElfObject.from_bytes(M.emit_object(gen))


def _linked(obj: elf.ElfObject, section: str) -> bytes:
    data = {s.name: 100 + s.index for s in obj.data_sections()}
    return elf.link_program(obj, section, {}, data)


@pytest.mark.parametrize("text", SCRIPTS, ids=["multi-line", "printf-exit", "syscall-group", "tuples-unroll"])
def test_debug_info_changes_no_instruction(text: str) -> None:
    comp, layout, specs = _compile(text)
    plain = _object(comp, layout, specs, debug=False)
    located = _object(comp, layout, specs, debug=True)
    assert ".debug_line" not in plain.section_names() and ".BTF" not in plain.section_names()
    assert ".debug_line" in located.section_names()
    table = read_line_table(located)
    for spec in specs:
        section = f"pytrace/{spec.name}"
        assert _linked(located, section) == _linked(plain, section), spec.name
        rows = table.rows[section]
        assert rows[0].offset == 0 and rows[-1].offset < located.section(section).size


def _calls(obj: elf.ElfObject, section: str, helper: int) -> list[int]:
    code = obj.section(section).data
    return [i for i in range(len(code) // INSN_SIZE)
            if code[i * INSN_SIZE] == CALL and int.from_bytes(code[i * INSN_SIZE + 4: i * INSN_SIZE + 8],
                                                               "little") == helper]


def _node_at(comp: Compilation, spec: M.ProgramSpec, table: LineTable, insn: int) -> ast.Node | None:
    row = table.lookup(f"pytrace/{spec.name}", insn * INSN_SIZE)
    assert row is not None
    return debuginfo.located_node(spec.probe.probe, comp.source, row.line, row.column)


def test_helper_calls_map_back_to_their_statements() -> None:
    comp, layout, specs = _compile(MULTI_LINE)
    obj = _object(comp, layout, specs, debug=True)
    table = read_line_table(obj)
    spec = specs[0]
    section = f"pytrace/{spec.name}"
    comm = _calls(obj, section, 16)           # bpf_get_current_comm: @c[comm]
    read_str = _calls(obj, section, 114)      # bpf_probe_read_user_str: str(args->filename)
    uid_pid = _calls(obj, section, 14) + _calls(obj, section, 15)  # pid, uid
    assert comm and read_str and uid_pid
    texts = {_node_at(comp, spec, table, i).span.text for i in comm}  # type: ignore[union-attr]
    assert texts == {"@c[comm] = count()"}
    node = _node_at(comp, spec, table, read_str[0])
    assert isinstance(node, ast.ExprStmt) and (node.span.line, node.span.col) == (6, 5)
    # The predicate's pid (line 2) and the if's uid (line 5) are both located.
    lines = {_node_at(comp, spec, table, i).span.line for i in uid_pid}  # type: ignore[union-attr]
    assert lines == {2, 5}
    assert _node_at(comp, spec, table, _calls(obj, section, 14)[0]) is spec.probe.probe.predicate


def test_loop_body_maps_to_the_loop_statement() -> None:
    comp, layout, specs = _compile(MULTI_LINE)
    obj = _object(comp, layout, specs, debug=True)
    table = read_line_table(obj)
    spec = specs[1]
    updates = _calls(obj, f"pytrace/{spec.name}", 2)  # bpf_map_update_elem of @loop[$i] = 1
    assert updates
    assert {_node_at(comp, spec, table, i).span.text for i in updates} == {"@loop[$i] = 1"}  # type: ignore[union-attr]


def test_located_node_needs_an_exact_start() -> None:
    comp, _, specs = _compile(MULTI_LINE)
    probe = specs[0].probe.probe
    assert debuginfo.located_node(probe, comp.source, 1, 1) is probe
    assert debuginfo.located_node(probe, comp.source, 2, 2) is probe.predicate
    assert isinstance(debuginfo.located_node(probe, comp.source, 5, 3), ast.If)
    # Line 0 / column 0: code LLVM made up or merged; inside a statement; past the end.
    for line, col in ((0, 3), (4, 0), (4, 4), (99, 1)):
        assert debuginfo.located_node(probe, comp.source, line, col) is None
    # The predicate's expression 'pid' starts where the predicate does; an
    # expression nested deeper is never a located node.
    assert debuginfo.located_node(probe, comp.source, 6, 12) is None


def test_line_table_lookup_and_objects_without_one() -> None:
    table = LineTable({"s": [Row(0, 3, 1), Row(16, 0, 0), Row(40, 4, 5)]})
    assert table.lookup("s", 8) == Row(0, 3, 1)
    assert table.lookup("s", 16) == Row(16, 0, 0)
    assert table.lookup("s", 1000) == Row(40, 4, 5)
    assert table.lookup("other", 0) is None
    comp, layout, specs = _compile(SCRIPTS[1])
    assert read_line_table(_object(comp, layout, specs, debug=False)).rows == {}


INFINITE = """\
0: (b7) r1 = 0                        ; R1=0
1: (07) r1 += 1                       ; R1=1
5: (05) goto pc-5
infinite loop detected at insn 1
cur state: R1=1 R10=fp0
old state: R1=1 R10=fp0
processed 9 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0
"""


def test_the_rejected_insn_is_the_one_the_error_names() -> None:
    assert error_line(INFINITE) == "infinite loop detected at insn 1"
    assert parse_insn_index(INFINITE) == 1
    # Otherwise the last instruction printed.
    assert parse_insn_index("0: (b7) r0 = 0\n1: (79) r1 = *(u64 *)(r2 +0)\nR2 !read_ok\n") == 1
    assert parse_insn_index("back-edge from insn 7 to 2\nprocessed 0 insns") == 7
