"""A verifier rejection, reported at the script line it comes from.

The kernel names the instruction it stopped at (``VerifierError.insn_index``,
counted in 8-byte slots from the program's start, an ``ld_imm64`` taking
two: exactly the offsets of the program's ELF section, which
``elf.link_program`` patches in place without moving anything).  To turn it
into a statement, the module is generated again with debug locations (see
codegen/llvm/debuginfo.py) and compiled; if the program's linked
instructions are byte for byte the ones the kernel refused (LLVM promises
that debug info does not change code generation; this checks it), the DWARF
line table of that object says which statement the instruction came from.

Only a rejection pays for this: generating and compiling again, in a fresh
LLVM child (0.1-0.2 s for a small script here, most of it the child importing
llvmlite; 0.85 s for 72 statements).  Always compiling with debug info would
cost ~1 ms (~10%) per start-up and put debug sections into every object.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TextIO

from ..bpf import elf
from ..bpf.insn import INSN_SIZE
from ..bpf.linetable import read_line_table
from ..bpf.program import VerifierError
from ..codegen.llvm import debuginfo
from ..codegen.llvm import module as M
from ..codegen.llvm.irgen import CodegenError
from ..frontend import ast

if TYPE_CHECKING:
    from ..codegen.layout import Layout
    from ..diagnostics import Diagnostics
    from ..semantic.pipeline import Compilation

# What to do about the verifier's most common complaints about scripts
# (messages of kernel/bpf/verifier.c as of Linux 6.x).
_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^infinite loop detected"),
     "the loop never ends: nothing in its body changes what its condition tests"),
    (re.compile(r"jumps is too complex|BPF program is too large"),
     "the verifier checks every iteration of a loop: give loops a small constant bound"),
    (re.compile(r"cannot use helper bpf_override_return"),
     "override() needs a kernel built with CONFIG_BPF_KPROBE_OVERRIDE, and works only on functions marked "
     "ALLOW_ERROR_INJECTION"),
    (re.compile(r"GPL-restricted function"),
     "this calls a kernel helper only GPL-compatible programs may use: config = { license = \"GPL\" }"),
)

# "infinite loop detected at insn 6": the part that names an instruction.
_AT_INSN = re.compile(r" at insn \d+$")


def locate(comp: "Compilation", layout: "Layout", specs: list[M.ProgramSpec], spec: M.ProgramSpec,
           map_fds: dict[str, int], data_fds: dict[str, int], options: dict[str, Any], insns: bytes,
           insn_index: int | None) -> ast.Node | None:
    """The node (a statement, the predicate or the probe) that instruction
    ``insn_index`` of ``spec``'s program (``insns``, as loaded) came from;
    None when that cannot be told: no index, code that is no statement's,
    or a recompiled program that differs from the one loaded."""
    if insn_index is None or not 0 <= insn_index < len(insns) // INSN_SIZE:
        return None
    # generate() appends the events and time formats it lowers to the
    # layout; the runtime's copies stay as they are.
    events, time_formats = list(layout.events), list(layout.time_formats)
    layout.events.clear()
    layout.time_formats.clear()
    try:
        gen = M.generate(comp, layout, specs, map_fds, dict(options, debug_info=True))
        obj = elf.ElfObject.from_bytes(M.emit_object_safely(gen))
        section = f"pytrace/{spec.name}"
        if elf.link_program(obj, section, map_fds, data_fds) != insns:
            return None
        row = read_line_table(obj).lookup(section, insn_index * INSN_SIZE)
    except (CodegenError, ValueError, KeyError, OSError):
        # Best effort: LLVM failing on the annotated module (CodegenError),
        # an object or line table this reader cannot follow (ElfError and
        # LinkError are ValueErrors, KeyError a missing section), no fork
        # (OSError): the rejection is still reported, at the probe.
        return None
    finally:
        layout.events[:] = events
        layout.time_formats[:] = time_formats
    if row is None:
        return None
    return debuginfo.located_node(spec.probe.probe, comp.source, row.line, row.column)


def report(diags: "Diagnostics", exc: VerifierError, spec: M.ProgramSpec, node: ast.Node | None, *,
           verbose: bool, err: TextIO) -> None:
    """One diagnostic at ``node`` (the probe when None) with the verifier's
    complaint; with ``verbose`` the whole log (and where it stopped) on
    ``err`` first."""
    probe = spec.probe.probe
    reason = exc.reason or str(exc)
    if node is not None:
        # The caret says where; the instruction number (in the -v output)
        # means nothing in the script.
        reason = _AT_INSN.sub("", reason)
    if isinstance(node, ast.Stmt):
        what, span = "this statement", node.span
    elif node is not None and node is probe.predicate:
        what, span = "this predicate", node.span
    else:
        what, span = "the program of this probe", probe.span
    hints = [hint for pattern, hint in _HINTS if pattern.search(reason)]
    if verbose:
        print(exc.log, file=err)
        if exc.truncated:
            print("(the log was too long: this is its end)", file=err)
        if exc.insn_index is not None:
            print(f"pytrace: the verifier stopped at instruction {exc.insn_index} of program {spec.name}",
                  file=err)
    else:
        hints.append("run with -v to see the verifier's log")
    diags.error(f"the kernel's verifier rejected {what}: {reason}", span, hints=hints)
