"""Source locations in the generated IR, and back from a line to the script.

When the kernel's verifier rejects a program it names an instruction; to
point the user at the statement that instruction came from, the module is
generated a second time with debug locations (``generate(..., options
{"debug_info": True})``): a compile unit for the script, a subprogram per
BPF program, and on every instruction the builder creates the location of
the statement (or predicate) being lowered.  LLVM then writes a DWARF line
table (``.debug_line``, read by bpf/linetable.py) next to the code.

Locations are the real line and column of the statement's first character
(what ``llvm-objdump -l`` or ``llvm-dwarfdump --debug-line`` of such an
object show), and the way back is exact: a (line, column) is an offset in
the script, and the statement starting there is the one that was located.

Nothing here runs on the normal path: without debug info the function has
no subprogram and ``at()`` returns a no-op context at the cost of one dict
lookup per statement.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, ContextManager

from llvmlite import ir

from ...frontend import ast

if TYPE_CHECKING:
    from ...source import SourceFile, Span
    from .irgen import ProgramGen

# The line-table format bpf/linetable.py reads; version 4 keeps the header
# simple (LLVM's default, 5, would work too: the reader skips the file table).
DWARF_VERSION = 4
# The version of the debug-info metadata format LLVM expects
# (llvm::DEBUG_METADATA_VERSION, 3 since LLVM 3.6).
DEBUG_METADATA_VERSION = 3
# llvm.module.flags behaviour 2: "Warning" when modules with different values are linked.
_FLAG_WARNING = 2


class DebugInfo:
    """The compile unit of one module: the script is its one file."""

    def __init__(self, module: ir.Module, source: "SourceFile") -> None:
        self.module = module
        i32 = ir.IntType(32)
        module.add_named_metadata("llvm.module.flags",
                                  [ir.Constant(i32, _FLAG_WARNING), "Dwarf Version", ir.Constant(i32, DWARF_VERSION)])
        module.add_named_metadata("llvm.module.flags",
                                  [ir.Constant(i32, _FLAG_WARNING), "Debug Info Version",
                                   ir.Constant(i32, DEBUG_METADATA_VERSION)])
        self.file = module.add_debug_info("DIFile", {"filename": source.name, "directory": ""})
        # Line tables only: no variables or types, which BPF has no use for
        # and which would cost compile time.
        self.unit = module.add_debug_info("DICompileUnit", {
            "language": ir.DIToken("DW_LANG_C99"), "file": self.file, "producer": "pytrace",
            "isOptimized": True, "runtimeVersion": 0, "emissionKind": ir.DIToken("LineTablesOnly"),
        }, is_distinct=True)
        module.add_named_metadata("llvm.dbg.cu", self.unit)
        # BTF (which the BPF back end writes whenever there is debug info)
        # needs a type for every subprogram; the types list is empty, as a
        # line-tables-only unit's are.
        self.subroutine_type = module.add_debug_info("DISubroutineType", {"types": module.add_metadata([])})

    def function(self, g: "ProgramGen", span: "Span | None") -> None:
        """Give ``g``'s function a subprogram at ``span`` (the probe) and make
        that the location of what is built until a statement says otherwise
        (the exit-flag check, the syscall filter)."""
        line = span.line if span is not None else 0
        sp = self.module.add_debug_info("DISubprogram", {
            "name": g.fn.name, "file": self.file, "line": line, "scopeLine": line,
            "type": self.subroutine_type, "unit": self.unit,
            "spFlags": ir.DIToken("DISPFlagDefinition | DISPFlagOptimized"),
        }, is_distinct=True)
        g.fn.set_metadata("dbg", sp)
        if span is not None:
            g.b.debug_metadata = _location(self.module, sp, span)


class _Located:
    """Sets a builder's debug location for the duration of a ``with``."""

    __slots__ = ("builder", "location", "saved")

    def __init__(self, builder: ir.IRBuilder, location: ir.DIValue) -> None:
        self.builder = builder
        self.location = location
        self.saved: ir.DIValue | None = None

    def __enter__(self) -> None:
        self.saved = self.builder.debug_metadata
        self.builder.debug_metadata = self.location

    def __exit__(self, *exc: object) -> None:
        self.builder.debug_metadata = self.saved


def at(g: "ProgramGen", span: "Span | None") -> ContextManager[None]:
    """``with at(g, span):`` the instructions built inside come from
    ``span`` (a no-op unless the module is generated with debug info)."""
    scope = g.fn.metadata.get("dbg")
    if scope is None or span is None or span.file.name != _file_name(scope):
        # Code from another file (a macro or an import, once expanded)
        # keeps the location of the script's statement that brought it in.
        return contextlib.nullcontext()
    return _Located(g.b, _location(g.module, scope, span))


def _file_name(subprogram: ir.DIValue) -> str | None:
    """The name of the file a subprogram's DIFile names."""
    operands = dict(subprogram.operands)
    file = operands.get("file")
    return dict(file.operands).get("filename") if isinstance(file, ir.DIValue) else None


def _location(module: ir.Module, scope: ir.DIValue, span: "Span") -> ir.DIValue:
    line, col = span.file.line_col(span.start)
    return module.add_debug_info("DILocation", {"line": line, "column": col, "scope": scope})


def located_node(probe: ast.Probe, source: "SourceFile", line: int, column: int) -> ast.Node | None:
    """The node of ``probe`` that ``at()`` located at ``line``:``column``: a
    statement, the predicate, or the probe itself (its preamble).  Line 0 or
    column 0 (code LLVM made up or merged from several statements) is no
    node.  Nodes starting at the same place (a statement the parser
    desugared into several): the innermost."""
    if line < 1 or column < 1:
        return None
    starts = source.line_starts()
    if line > len(starts):
        return None
    offset = starts[line - 1] + column - 1
    found: ast.Node | None = None
    for node in probe.walk():
        span = node.span
        if span is None or span.start != offset or span.file is not source:
            continue
        if isinstance(node, (ast.Stmt, ast.Probe)) or node is probe.predicate:
            found = node
    return found
