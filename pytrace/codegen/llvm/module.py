"""Turns a checked program into one LLVM module and a BPF ELF object.

Probes are grouped into programs by how they attach: BEGIN/END each run once,
a perf-event tracepoint or uprobe gets its own program (its context layout
is its own), and a probe over many syscall tracepoints becomes ONE program on
the raw ``sys_enter``/``sys_exit`` tracepoint that filters by syscall number
through a small array map (which also yields the right ``probe`` name):
attaching ~360 perf-event tracepoints takes bpftrace 30 s, and each one costs
tens to hundreds of milliseconds to detach.
"""

from __future__ import annotations

import re
from ...records import dataclass, field
from functools import lru_cache
from typing import Any

from llvmlite import ir

from ...providers.base import ResolvedAttach
from ...semantic import types as T
from ...semantic.pipeline import CheckedProbe, Compilation
from ..layout import MAP_ARRAY, Layout, counter_slots, hits_slot, map_layout
from .context import PROG_RAW_TRACEPOINT, ProbeContext
from . import debuginfo
from .irgen import CodegenError, ProgramGen
from . import worker
from .lower import Lowerer

# From this many syscall tracepoints on, one raw sys_enter/sys_exit program
# with a filter is used instead of one perf event per tracepoint.
SYSCALL_GROUP_MIN = 4
SYSCALL_TABLE_SIZE = 1024


@dataclass
class ProgramSpec:
    """One BPF program: its function/section, its type and what it attaches to."""

    name: str
    prog_type: int
    kind: str                          # begin | end | tracepoint | syscall | perf | uprobe | kprobe | rawtp | watchpoint
    probe: CheckedProbe
    attaches: list[ResolvedAttach]
    ctx: ProbeContext
    filter_map: str | None = None      # syscall groups: syscall nr -> probe index + 1
    filter_entries: dict[int, int] = field(default_factory=dict)
    expected_attach_type: int = 0
    btf_type: tuple[str, str] | None = None   # (kind, name) of the BTF type whose id is attach_btf_id


@dataclass
class Generated:
    layout: Layout
    programs: list[ProgramSpec]
    module: ir.Module

    @property
    def ir_text(self) -> str:
        return str(self.module)


@lru_cache(maxsize=1)
def syscall_numbers() -> dict[str, int]:
    """x86_64 syscall numbers by name (pytrace/sysinfo.py says where they come from)."""
    from ...sysinfo import syscall_names
    return {name: nr for nr, name in syscall_names().items()}


def syscall_nr(event: str) -> int | None:
    """The number of the syscall a ``sys_enter_X``/``sys_exit_X`` tracepoint traces."""
    from ...sysinfo import tracepoint_syscall
    return syscall_numbers().get(tracepoint_syscall(event))


def build_layout(comp: Compilation) -> Layout:
    strlen = int(comp.config.get("max_strlen", 64))
    max_keys = int(comp.config.get("max_map_keys", 4096))
    layout = Layout(strlen=strlen)
    used: set[str] = set()
    for name, info in comp.maps.items():
        if info.value is None:
            continue
        layout.maps[name] = map_layout(name, info.key, info.value, max_keys, used)
    return layout


def _spec_for(comp: Compilation, name: str, cp: CheckedProbe, a: ResolvedAttach) -> ProgramSpec:
    """The program of one attach point, shaped by its provider."""
    provider = comp.providers.lookup(a.provider)
    try:
        if provider is None:
            raise NotImplementedError(f"{a.provider} probes are not supported by the code generator yet")
        shape = provider.program(a)
    except NotImplementedError as exc:
        raise CodegenError(str(exc), a.span) from None
    ctx = ProbeContext(shape.context, shape.prog_type, fmt=a.detail.get("format"), user=shape.user,
                       args=a.args, arg_locations=a.detail.get("arg_locations"),
                       link_pc=int(a.detail.get("link_pc") or 0))
    return ProgramSpec(name, shape.prog_type, shape.kind, cp, [a], ctx,
                       expected_attach_type=shape.expected_attach_type, btf_type=shape.btf_type)


def plan_programs(comp: Compilation, layout: Layout) -> list[ProgramSpec]:
    specs: list[ProgramSpec] = []
    for pi, cp in enumerate(comp.probes):
        syscall_groups: dict[bool, list[ResolvedAttach]] = {True: [], False: []}
        others: list[ResolvedAttach] = []
        for a in cp.attaches:
            ev = a.detail.get("event", "")
            if a.provider == "tracepoint" and a.detail.get("category") == "syscalls" and \
                    ev.startswith(("sys_enter_", "sys_exit_")) and syscall_nr(ev) is not None:
                syscall_groups[ev.startswith("sys_exit_")].append(a)
            else:
                others.append(a)
        for is_exit, group in syscall_groups.items():
            if len(group) >= SYSCALL_GROUP_MIN:
                slots: dict[str, int] = {}
                fmt = group[0].detail["format"]
                for f in fmt.fields:
                    if f.name != "__syscall_nr":
                        slots[f.name] = (f.offset - 16) // 8
                entries = {}
                for a in group:
                    nr = syscall_nr(a.detail["event"])
                    assert nr is not None
                    entries[nr] = layout.probe_index(a.target) + 1
                name = f"pt{pi}_sys_{'exit' if is_exit else 'enter'}"
                ctx = ProbeContext("syscall", PROG_RAW_TRACEPOINT, fmt=fmt, exit=is_exit, arg_slots=slots)
                specs.append(ProgramSpec(name, PROG_RAW_TRACEPOINT, "syscall", cp, group, ctx,
                                         filter_map=f"pt_sc{pi}{'x' if is_exit else 'e'}", filter_entries=entries))
            else:
                others.extend(group)
        for ai, a in enumerate(others):
            specs.append(_spec_for(comp, f"pt{pi}_{ai}_{re.sub(r'[^A-Za-z0-9_]', '_', a.target)[:40]}", cp, a))
    return specs


def generate(comp: Compilation, layout: Layout, specs: list[ProgramSpec], map_fds: dict[str, int],
             options: dict[str, Any]) -> Generated:
    module = ir.Module(name="pytrace")
    module.triple = "bpfel"
    module.data_layout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"
    events: dict[int, object] = {}
    constants = dict(comp.macros)
    for name, (value, _t) in comp.enum_values.items():
        constants[name] = value
    assert comp.program is not None
    exiting = _exit_flag(module, comp)
    # The runtime reads the loss counters from the .bss section when it says
    # so; otherwise from its per-CPU count maps (see layout.COUNTERS_SECTION).
    counters = counter_slots(layout)
    # Source locations, to map a verifier rejection back to the script.
    dbg = debuginfo.DebugInfo(module, comp.source) if options.get("debug_info") else None
    for spec in specs:
        g = ProgramGen(module, spec.name, f"pytrace/{spec.name}", map_fds, counters)
        if dbg is not None:
            dbg.function(g, spec.probe.probe.span)
        if exiting is not None and spec.kind not in ("begin", "end"):
            # After exit() no probe body runs again, even before user space
            # has detached the probes (which takes a while).
            with g.b.if_then(g.truth(g.b.load(exiting))):
                g.b.ret(g.const(0))
        probe_index: Any
        if spec.filter_map is not None:
            # Syscall group: the program's first act is the filter.  The raw
            # tracepoint also sees 32-bit (ia32 emulation) syscalls, whose
            # numbers differ and which syscalls:* tracepoints ignore: only a
            # 64-bit user code segment (__USER_CS = 0x33) passes.  On
            # sys_exit args[1] is the return value, so the number comes from
            # the saved regs->orig_ax.
            regs = g.b.inttoptr(g.load_int(g.ctx, 0), g.ctx.type)
            saved = g.alloca(24)
            g.probe_read(saved, 24, g.gep(regs, 120))   # orig_ax, ip, cs (zeroed if the read fails)
            with g.b.if_then(g.b.icmp_unsigned("!=", g.load_int(saved, 16), g.const(0x33))):
                g.b.ret(g.const(0))
            nr = g.load_int(saved, 0) if spec.ctx.exit else g.load_int(g.ctx, 8)
            key = g.alloca(8)
            g.store_int(key, 0, nr, 4)
            in_range = g.b.icmp_unsigned("<", nr, g.const(SYSCALL_TABLE_SIZE))
            slot_v = g.alloca_i64("pidx")
            g.b.store(g.const(0), slot_v)
            with g.b.if_then(in_range):
                slot = g.map_lookup(spec.filter_map, key)
                with g.b.if_then(g.truth(slot)):
                    g.b.store(g.load_int(slot, 0), slot_v)
            pidx = g.b.load(slot_v)
            with g.b.if_then(g.b.icmp_unsigned("==", pidx, g.const(0))):
                g.b.ret(g.const(0))
            probe_index = g.b.sub(pidx, g.const(1))
        else:
            probe_index = layout.probe_index(spec.attaches[0].target)
        lw = Lowerer(g, spec.ctx, layout, comp.registry, probe_index, constants, comp.env, options, events)
        lw.binaries = tuple(dict.fromkeys(a.detail["path"] for a in spec.attaches if a.detail.get("path")))
        probe = spec.probe.probe
        lw.size_variables(probe)
        if probe.predicate is not None:
            with debuginfo.at(g, probe.predicate.span):
                cond = lw.predicate(probe.predicate)
            with g.b.if_then(g.b.not_(cond)):
                g.b.ret(g.const(0))
        if options.get("count_hits") and spec.kind not in ("begin", "end"):
            g.count(hits_slot(layout))  # runs that passed the predicate
        lw.block(probe.body)
        g.finish()
    return Generated(layout, specs, module)


EXIT_FLAG = "pt_exiting"


def _exit_flag(module: ir.Module, comp: Compilation) -> ir.GlobalVariable | None:
    """A global set by exit() (a .bss word: the loader turns it into an
    array map) when the program calls exit() anywhere."""
    from ...frontend import ast
    assert comp.program is not None
    if not any(isinstance(n, ast.Call) and n.name == "exit" for n in comp.program.walk()):
        return None
    flag = ir.GlobalVariable(module, ir.IntType(64), name=EXIT_FLAG)
    flag.initializer = ir.Constant(ir.IntType(64), 0)
    flag.section = ".bss"
    flag.align = 8
    return flag


def emit_object(gen: Generated) -> bytes:
    """The BPF ELF object, compiled in this process (--emit obj; tests)."""
    return worker.emit_object(gen.ir_text)


def emit_object_safely(gen: Generated, compiler: worker.CompilerProcess | None = None) -> bytes:
    """The BPF ELF object, compiled in a forked child (``compiler``, started
    early by the command line, or one forked now) so that an abort inside
    LLVM becomes a diagnostic instead of killing pytrace (see worker.py)."""
    proc = compiler if compiler is not None else worker.CompilerProcess.start()
    try:
        return proc.compile(gen.ir_text)
    except worker.CompileFailed:
        raise CodegenError("LLVM's BPF back end could not compile this program (usually a BPF stack frame "
                           "over 512 bytes)", None,
                           ["split large probes, use fewer or shorter strings (config = { max_strlen = 32 }); "
                            "--emit ir shows the generated code"]) from None
    finally:
        proc.close()


def emit_assembly(gen: Generated) -> str:
    return worker.emit_assembly(gen.ir_text)


def filter_maps(specs: list[ProgramSpec]) -> list[tuple[str, int, dict[int, int]]]:
    """(name, map type, contents) of the syscall filter maps."""
    return [(s.filter_map, MAP_ARRAY, s.filter_entries) for s in specs if s.filter_map]


def value_types(layout: Layout) -> dict[str, T.Type]:
    return {name: ml.value_type for name, ml in layout.maps.items()}
