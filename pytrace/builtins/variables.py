"""Builtin variables: pid, comm, nsecs, args, arg0..argN, retval, kstack...

Each entry's check returns the builtin's type and reports uses where the
probe's provider does not define it (``retval`` outside return probes,
``args`` where the provider has none).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..frontend import ast
from ..semantic import types as T
from .registry import Builtin, Kind

if TYPE_CHECKING:
    from ..semantic.typecheck import Checker

_ARGN = re.compile(r"^arg([0-9]+)$")


def _const(t: T.Type):  # type: ignore[no-untyped-def]
    def check(e: ast.Expr, ck: "Checker") -> T.Type:
        return t
    return check


def _comm(e: ast.Expr, ck: "Checker") -> T.Type:
    return T.StringType(16)


def _no_args_hint(a) -> str:  # type: ignore[no-untyped-def]
    if a.retval is not None:
        return "a return probe has no arguments; 'retval' is the return value"
    return "this probe type has no arguments"


def _args(e: ast.Expr, ck: "Checker") -> T.Type:
    structs = []
    for a in ck.scope.attaches:
        if a.args is None:
            hint = "use arg0, arg1, ... instead" if a.nargs else _no_args_hint(a)
            ck.error(f"'args' is not available in {a.provider} probes", e.span, hints=[hint])
            return T.I64
        structs.append(a.args)
    if not structs:
        return T.I64
    first = structs[0]
    if all(s is first or s.fields == first.fields for s in structs):
        return first
    # Several attach points with different formats: the fields all of them
    # share with the same type (each program still gets its own offsets).
    common = []
    for f in first.fields or ():
        if all((o := s.field(f.name)) is not None and o.type == f.type for s in structs[1:]):
            common.append(f)
    return T.StructType("struct", "_args_common", tuple(common), first.byte_size, first.byte_align)


def _retval(e: ast.Expr, ck: "Checker") -> T.Type:
    types = []
    for a in ck.scope.attaches:
        if a.retval is None:
            hints = []
            if a.args is not None and a.args.field("ret") is not None:
                hints = ["this tracepoint has the return value in args.ret"]
            ck.error(f"'retval' is only available in return probes (kretprobe, uretprobe, fexit), "
                     f"not in {a.provider} probes", e.span, hints=hints)
            return T.U64
        types.append(a.retval)
    return types[0] if types else T.U64


def _func(e: ast.Expr, ck: "Checker") -> T.Type:
    for a in ck.scope.attaches:
        if not a.has_func:
            ck.error(f"'func' is not available in {a.provider} probes", e.span,
                     hints=["use 'probe' for the probe's full name"])
            break
    kind = T.SymbolKind.FUNC
    return T.SymbolType(kind)


def _ctx(e: ast.Expr, ck: "Checker") -> T.Type:
    """The probe's context: for iter probes the iterated object
    (``struct bpf_iter__task *``, from BTF), elsewhere the raw context."""
    for a in ck.scope.attaches:
        if a.provider == "iter":
            tag = f"bpf_iter__{a.detail.get('iterator', '')}"
            full = ck.env.struct("struct", tag)
            return T.PointerType(full or T.StructType("struct", tag, None), T.AddrSpace.KERNEL)
    return T.PointerType(T.VOID, T.AddrSpace.KERNEL)


def _cpid(e: ast.Expr, ck: "Checker") -> T.Type:
    if not ck.options.has_cpid:
        ck.error("'cpid' needs a child command: run with -c 'CMD'", e.span)
    return T.U32


def _stack(user: bool):  # type: ignore[no-untyped-def]
    def check(e: ast.Expr, ck: "Checker") -> T.Type:
        mode, limit = T.StackMode(ck.options.stack_mode), 127
        args = e.args if isinstance(e, ast.Call) else []
        if len(args) > 2:
            ck.error(f"{'ustack' if user else 'kstack'}() takes at most 2 arguments (mode, limit)", e.span)
            return T.StackType(user, limit, mode)
        for a in args:
            if isinstance(a, ast.Ident) and a.name in ("bpftrace", "perf", "raw"):
                mode = T.StackMode(a.name)
                a.ty = T.VOID
                continue
            n = ck.const_int(a)
            if n is None:
                ck.error("a stack mode (bpftrace, perf, raw) or a constant limit is expected", a.span)
                continue
            a.ty = T.I64
            if not 1 <= n <= 1024:
                ck.error(f"stack limit must be between 1 and 1024, not {n}", a.span)
                continue
            limit = n
        return T.StackType(user, limit, mode)
    return check


def argn_entry(name: str) -> Builtin | None:
    """arg0..argN are generated on demand (any N up to 255, as USDT allows)."""
    m = _ARGN.match(name)
    if not m:
        return None
    n = int(m.group(1))

    def check(e: ast.Expr, ck: "Checker") -> T.Type:
        for a in ck.scope.attaches:
            why = a.detail.get("arg_error")
            if why and n >= a.nargs:
                # A USDT argument the note's operand could not be decoded for.
                ck.error(f"'{name}' of {a.target} cannot be read: {why}", e.span)
                return T.U64
            if a.nargs == 0:
                hint = "use args.NAME" if a.args is not None else _no_args_hint(a)
                ck.error(f"'{name}' is not available in {a.provider} probes", e.span, hints=[hint])
                return T.U64
            if n >= a.nargs:
                ck.error(f"'{name}' is out of range: {a.provider} probes have arg0..arg{a.nargs - 1}", e.span)
                return T.U64
        return T.U64

    return Builtin(name, Kind.VARIABLE, check, name, f"argument {n} of the probed function")


ENTRIES: list[Builtin] = [
    Builtin("pid", Kind.VARIABLE, _const(T.U32), "pid", "process id (thread group id) of the current task"),
    Builtin("tid", Kind.VARIABLE, _const(T.U32), "tid", "thread id of the current task"),
    Builtin("uid", Kind.VARIABLE, _const(T.U64), "uid", "user id of the current task"),
    Builtin("gid", Kind.VARIABLE, _const(T.U64), "gid", "group id of the current task"),
    Builtin("nsecs", Kind.VARIABLE, _const(T.U64), "nsecs", "nanoseconds since boot (monotonic)"),
    Builtin("elapsed", Kind.VARIABLE, _const(T.U64), "elapsed", "nanoseconds since pytrace started"),
    Builtin("cpu", Kind.VARIABLE, _const(T.U32), "cpu", "the CPU running the probe"),
    Builtin("ncpus", Kind.VARIABLE, _const(T.U64), "ncpus", "the number of CPUs"),
    Builtin("numaid", Kind.VARIABLE, _const(T.U32), "numaid", "NUMA node of the CPU"),
    Builtin("comm", Kind.VARIABLE, _comm, "comm", "name of the current task (16 bytes)"),
    Builtin("username", Kind.VARIABLE, _const(T.SymbolType(T.SymbolKind.USERNAME)), "username",
            "name of the current user"),
    Builtin("cgroup", Kind.VARIABLE, _const(T.U64), "cgroup", "cgroup v2 id of the current task"),
    Builtin("curtask", Kind.VARIABLE, _const(T.PointerType(T.StructType("struct", "task_struct"),
                                                           T.AddrSpace.KERNEL)),
            "curtask", "the current task_struct"),
    Builtin("rand", Kind.VARIABLE, _const(T.U32), "rand", "a random 32-bit number"),
    Builtin("jiffies", Kind.VARIABLE, _const(T.U64), "jiffies", "the kernel's jiffies counter"),
    Builtin("usermode", Kind.VARIABLE, _const(T.U8), "usermode", "1 when the probe interrupted user mode"),
    Builtin("cpid", Kind.VARIABLE, _cpid, "cpid", "pid of the child started with -c"),
    Builtin("probe", Kind.VARIABLE, _const(T.SymbolType(T.SymbolKind.PROBE)), "probe",
            "full name of the probe that fired"),
    Builtin("func", Kind.VARIABLE, _func, "func", "name of the probed function"),
    Builtin("ctx", Kind.VARIABLE, _ctx, "ctx", "the probe's context (the iterated object in iter probes)"),
    Builtin("args", Kind.VARIABLE, _args, "args", "the probe's arguments by name (args.filename)"),
    Builtin("retval", Kind.VARIABLE, _retval, "retval", "return value, in return probes"),
    Builtin("kstack", Kind.VARIABLE, _stack(False), "kstack([mode,] [limit])", "kernel stack trace",
            max_args=2, bare_ok=True),
    Builtin("ustack", Kind.VARIABLE, _stack(True), "ustack([mode,] [limit])", "user stack trace",
            max_args=2, bare_ok=True),
]
