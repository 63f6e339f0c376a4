"""Lowering of builtin variables and functions.

Synchronous builtins become helper calls; asynchronous ones (printf, exit,
print, time, clear...) become ring-buffer records that the runtime turns into
output.  A record that cannot be reserved is counted (ProgramGen.count) and
reported as lost, never dropped silently.  Values resolved in user space
(ksym, usym, username, ntop, strftime, probe) travel as their raw inputs.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from llvmlite import ir

from ...frontend import ast
from ...kernel.addresses import default_resolve
from ...semantic import types as T
from ..layout import LOST_SLOT, SCRATCH_MAP, EventLayout, type_size
from . import iterprint, strings
from .irgen import (BPF_F_USER_STACK, H_GET_CURRENT_CGROUP_ID, H_GET_CURRENT_PID_TGID,
                    H_GET_CURRENT_TASK, H_GET_CURRENT_UID_GID, H_GET_NUMA_NODE_ID,
                    H_GET_PRANDOM_U32, H_GET_SMP_PROCESSOR_ID, H_GET_STACK, H_GET_STACKID, H_JIFFIES64, H_KTIME_GET_NS,
                    H_RINGBUF_RESERVE, H_RINGBUF_SUBMIT, H_SEND_SIGNAL, I1, I8P, I32, I64, CodegenError,
                    Val)

if TYPE_CHECKING:
    from .lower import Lowerer

RINGBUF_MAP = "pt_events"
JOIN_ARGNUM, JOIN_ARGSIZE = 16, 1024  # bpftrace 0.17's join() limits
H_OVERRIDE_RETURN = 58


def _u32(g, v: ir.Value) -> ir.Value:  # type: ignore[no-untyped-def]
    return g.b.and_(v, g.const(0xFFFFFFFF))


def builtin_variable(lw: "Lowerer", e: ast.Expr) -> Val:
    g = lw.g
    name = e.name if isinstance(e, (ast.Ident, ast.Call)) else ""
    t = e.ty or T.I64
    simple: dict[str, Callable[[], ir.Value]] = {
        "pid": lambda: g.b.lshr(g.helper(H_GET_CURRENT_PID_TGID, []), g.const(32)),
        "tid": lambda: _u32(g, g.helper(H_GET_CURRENT_PID_TGID, [])),
        "uid": lambda: _u32(g, g.helper(H_GET_CURRENT_UID_GID, [])),
        "gid": lambda: g.b.lshr(g.helper(H_GET_CURRENT_UID_GID, []), g.const(32)),
        "nsecs": lambda: g.helper(H_KTIME_GET_NS, []),
        "elapsed": lambda: g.b.sub(g.helper(H_KTIME_GET_NS, []), g.const(int(lw.options.get("start_ns", 0)))),
        "cpu": lambda: g.helper(H_GET_SMP_PROCESSOR_ID, []),
        "rand": lambda: _u32(g, g.helper(H_GET_PRANDOM_U32, [])),
        "cgroup": lambda: g.helper(H_GET_CURRENT_CGROUP_ID, []),
        "curtask": lambda: g.helper(H_GET_CURRENT_TASK, []),
        "jiffies": lambda: g.helper(H_JIFFIES64, []),
        "numaid": lambda: g.helper(H_GET_NUMA_NODE_ID, []),
        "username": lambda: _u32(g, g.helper(H_GET_CURRENT_UID_GID, [])),
        "probe": lambda: lw.probe_index if isinstance(lw.probe_index, ir.Value) else g.const(lw.probe_index),
        "ncpus": lambda: g.const(int(lw.options.get("ncpus", 1))),
        "cpid": lambda: g.const(int(lw.options.get("cpid", 0))),
    }
    if name in simple:
        return Val(t, reg=simple[name]())
    if name == "usermode":
        return Val(t, reg=lw.pctx.usermode(g))
    if name == "comm":
        buf = g.alloca(16)
        lw.comm_into(buf)
        return Val(T.StringType(16), ptr=buf)
    if name.startswith("arg") and name[3:].isdigit():
        return Val(t, reg=lw.pctx.arg(g, int(name[3:])))
    if name == "retval":
        return Val(t, reg=lw.pctx.retval(g))
    if name == "func":
        # The probed function is known per attach point: send the probe index
        # and let user space name it (no get_func_ip, which uprobes lack on
        # older kernels).
        return Val(t, reg=lw.probe_index if isinstance(lw.probe_index, ir.Value) else g.const(lw.probe_index))
    if name in ("kstack", "ustack"):
        return stack(lw, e, name == "ustack")
    if name == "ctx" and lw.pctx.kind == "iter":
        return Val(t, reg=lw.pctx.iter_ctx(g))
    if name == "ctx":
        # The program's context pointer as a value (bpftrace: 'ctx' is a
        # pointer to pt_regs in kprobes/uprobes, to the record in
        # tracepoints); reading through it goes through probe_read.
        return Val(t, reg=g.b.ptrtoint(g.ctx, I64))
    raise CodegenError(f"'{name}' is not supported by the code generator yet", e.span)


def stack(lw: "Lowerer", e: ast.Expr, user: bool) -> Val:
    """A stack as (stack id, pid): the frames are stored in a stack-trace map
    and symbolised in user space (user stacks need the pid's mappings)."""
    g = lw.g
    t = e.ty if isinstance(e.ty, T.StackType) else T.StackType(user)
    mapname = lw.layout_stack_map(t)
    flags = BPF_F_USER_STACK if user else 0
    sid = g.helper(H_GET_STACKID, [g.ctx, g.map_ptr(mapname), g.const(flags)])
    buf = g.alloca(16)
    g.store_int(buf, 0, sid)
    pid = g.b.lshr(g.helper(H_GET_CURRENT_PID_TGID, []), g.const(32)) if user else g.const(0)
    g.store_int(buf, 8, pid)
    return Val(t, ptr=buf)


def _stack_len(lw: "Lowerer", e: ast.Expr) -> ir.Value:
    """len(kstack), len(ustack): how many frames the stack has (at most its
    limit).  bpf_get_stack (kernel 4.18) copies them to the per-CPU scratch
    buffer, as 127 frames do not fit the 512-byte stack, and says how many
    bytes it wrote."""
    g = lw.g
    t = e.ty
    if not isinstance(t, T.StackType) or not isinstance(e, (ast.Ident, ast.Call)):
        raise CodegenError("len() needs a map or kstack/ustack", e.span)
    size = 8 * t.limit
    lw.layout.scratch_size = max(lw.layout.scratch_size, size)
    out = g.alloca_i64("frames")
    g.b.store(g.const(0), out)
    buf = g.map_lookup(SCRATCH_MAP, g.zeros(4))
    with g.b.if_then(g.truth(buf)):
        n = g.helper(H_GET_STACK, [g.ctx, buf, g.const(size), g.const(BPF_F_USER_STACK if t.user else 0)])
        with g.b.if_then(g.b.icmp_signed(">", n, g.const(0))):
            g.b.store(g.b.lshr(n, g.const(3)), out)
    return g.b.load(out)


# ---------------------------------------------------------------- events

def _direct(e: ast.Expr) -> bool:
    """Arguments written straight into the reserved record instead of a stack
    temporary: 'comm' (no side effects, so evaluating it after the reserve
    is the same; saves a copy and 16 bytes of stack)."""
    return isinstance(e, ast.Ident) and e.name == "comm"


def _record(lw: "Lowerer", size: int) -> ir.Value:
    """Memory for an event record of ``size`` bytes, or NULL."""
    if lw.pctx.kind == "iter":
        return iterprint.record(lw, size)
    g = lw.g
    return g.mark_aligned(g.helper(H_RINGBUF_RESERVE, [g.map_ptr(RINGBUF_MAP), g.const(size), g.const(0)], ret=I8P))


def _send(lw: "Lowerer", rec: ir.Value, size: int) -> None:
    """Hand a record filled in ``_record``'s memory over to user space."""
    if lw.pctx.kind == "iter":
        iterprint.send(lw, rec, size)
    else:
        lw.g.helper(H_RINGBUF_SUBMIT, [rec, lw.g.const(0)], ret=ir.VoidType())


def emit_event(lw: "Lowerer", ev: EventLayout, values: list[Val | ast.Expr]) -> None:
    g = lw.g
    size = ev.total_size
    rec = _record(lw, size)
    ok = g.truth(rec)
    with g.b.if_else(ok) as (then, other):
        with then:
            g.store_int(rec, 0, g.const(ev.id))
            for arg, v in zip(ev.args, values):
                if isinstance(v, ast.Expr):
                    lw.store_expr_at(rec, arg.offset, arg.type, v)
                else:
                    lw.store_at(rec, arg.offset, arg.type, v)
            _send(lw, rec, size)
        with other:
            g.count(LOST_SLOT)


def _event_for(lw: "Lowerer", call: ast.Call, kind: str, **kw: object) -> EventLayout:
    """Each call site gets its own event id; the layout is created once per
    call node (a probe with several attach groups lowers its body again)."""
    key = id(call)
    cache = lw.layout_events
    if key not in cache:
        ev = lw.layout.event(kind, **kw)
        cache[key] = ev
        lw.new_event = True
    return cache[key]


def _fmt_call(lw: "Lowerer", call: ast.Call, kind: str) -> None:
    fmt = call.args[0]
    assert isinstance(fmt, ast.String)
    if lw.iter_pinned and kind == "printf":
        iterprint.seq_printf(lw, call)
        return
    values: list[Val | ast.Expr] = [a if _direct(a) else lw.expr(a) for a in call.args[1:]]
    ev = _event_for(lw, call, kind, format=fmt.value)
    if len(ev.args) != len(values):
        ev.args.clear()
        ev.size = 8
        for v in values:
            ev.add(v.ty or T.StringType(16))
    emit_event(lw, ev, values)


def call(lw: "Lowerer", e: ast.Call) -> Val:
    from . import mapops
    g = lw.g
    name = e.name
    t = e.ty or T.VOID
    b = lw.registry.get(name)
    if b is not None and b.kind.value == "variable":
        return builtin_variable(lw, e)
    if lw.iter_pinned:
        iterprint.refuse_in_pinned(name, e)
    if name in ("printf", "system", "cat"):
        _fmt_call(lw, e, name)
        return Val(T.VOID, reg=g.const(0))
    if name == "time":
        fmt = e.args[0].value if e.args and isinstance(e.args[0], ast.String) else "%H:%M:%S\n"
        ev = _event_for(lw, e, "time", format=fmt)
        emit_event(lw, ev, [])
        return Val(T.VOID, reg=g.const(0))
    if name == "exit":
        code = [lw.expr(e.args[0])] if e.args else [Val(T.I64, reg=g.const(0))]
        ev = _event_for(lw, e, "exit")
        if not ev.args:
            ev.add(T.I64)
        emit_event(lw, ev, code)
        try:
            flag = g.module.get_global("pt_exiting")
        except KeyError:
            flag = None
        if flag is not None:
            g.b.store(g.const(1), flag)
        # As bpftrace: exit() also ends this run of the probe (nothing after
        # it runs); code that follows lands in a block LLVM drops.
        g.b.ret(g.const(0))
        g.b.position_at_end(g.fn.append_basic_block("after.exit"))
        return Val(T.VOID, reg=g.const(0))
    if name in ("clear", "zero") or (name == "print" and isinstance(e.args[0], ast.Map) and e.args[0].keys is None):
        m = e.args[0]
        assert isinstance(m, ast.Map)
        extra = {}
        if name == "print":
            extra = {"top": lw.const_of(e.args[1]) if len(e.args) > 1 else 0,
                     "div": lw.const_of(e.args[2]) if len(e.args) > 2 else 1}
        ev = _event_for(lw, e, name, map_name=m.name, extra=extra)
        emit_event(lw, ev, [])
        return Val(T.VOID, reg=g.const(0))
    if name == "print":
        v = lw.expr(e.args[0])
        ev = _event_for(lw, e, "print_value")
        if not ev.args:
            ev.add(v.ty)
        emit_event(lw, ev, [v])
        return Val(T.VOID, reg=g.const(0))
    if name == "join":
        return _join(lw, e)
    if name == "path" and lw.pctx.kind == "iter":
        return iterprint.path(lw, e)
    if name == "str":
        return strings.string_of(lw, e)
    if name == "buf":
        return strings.buffer_of(lw, e)
    if name in ("ksym", "usym"):
        addr = lw.value(e.args[0])
        if name == "ksym":
            return Val(t, reg=addr)
        buf = g.alloca(16)
        g.store_int(buf, 0, addr)
        g.store_int(buf, 8, g.b.lshr(g.helper(H_GET_CURRENT_PID_TGID, []), g.const(32)))
        return Val(t, ptr=buf)
    if name == "uaddr":
        return _uaddr(lw, e, t)
    if name in ("kaddr", "cgroupid"):
        arg = e.args[0]
        assert isinstance(arg, ast.String)
        resolve = lw.options.get("resolve_symbol")
        value = resolve(name, arg.value) if callable(resolve) else default_resolve(name, arg.value)
        if value is None:
            raise CodegenError(f"{name}(): '{arg.value}' not found", arg.span)
        return Val(t, reg=g.const(int(value)))
    if name == "ntop":
        return _ntop(lw, e)
    if name == "pton":
        return _pton(lw, e)
    if name == "macaddr":
        return _macaddr(lw, e)
    if name == "debugf":
        return _debugf(lw, e)
    if name == "reg":
        arg = e.args[0]
        assert isinstance(arg, ast.String)
        return Val(t, reg=lw.pctx.reg(g, arg.value))
    if name == "strncmp":
        n = lw.const_of(e.args[2])
        eq = strings.string_equal(lw, lw.expr(e.args[0]), lw.expr(e.args[1]), n)
        # bpftrace's strncmp returns 0 when equal.
        return Val(t, reg=g.b.zext(g.b.xor(eq, ir.Constant(I1, 1)), I64))
    if name == "strcontains":
        needle = e.args[1]
        if isinstance(needle, ast.String):
            found = strings.contains_literal(lw, lw.expr(e.args[0]), needle.value.encode("utf-8", "surrogateescape"))
        else:
            found = strings.contains(lw, lw.expr(e.args[0]), lw.expr(needle))
        return Val(t, reg=g.b.zext(found, I64))
    if name == "override":
        # bpf_override_return (helper 58): the probed kernel function returns
        # rc without running; only kprobes on functions marked
        # ALLOW_ERROR_INJECTION, with CONFIG_BPF_KPROBE_OVERRIDE.
        g.helper(H_OVERRIDE_RETURN, [g.ctx, lw.value(e.args[0])])
        return Val(T.VOID, reg=g.const(0))
    if name == "signal":
        arg = e.args[0]
        if isinstance(arg, ast.String):
            import signal as signals
            sig_name = arg.value.upper()
            sig = int(getattr(signals.Signals, sig_name if sig_name.startswith("SIG") else "SIG" + sig_name))
            sigv = g.const(sig)
        else:
            sigv = lw.value(arg)
        g.helper(H_SEND_SIGNAL, [g.b.trunc(sigv, I32)])
        return Val(T.VOID, reg=g.const(0))
    if name == "delete":
        if len(e.args) == 1:
            m = e.args[0]
            assert isinstance(m, ast.Map)
            mapops.delete(lw, m, m.keys or [])   # delete(@scalar): its one zero key
        else:
            m = e.args[0]
            assert isinstance(m, ast.Map)
            mapops.delete(lw, m, [e.args[1]])
        return Val(T.VOID, reg=g.const(0))
    if name == "len" and isinstance(e.args[0], ast.Map) and e.args[0].keys is None:
        return Val(t, reg=mapops.length(lw, e.args[0]))
    if name == "len":
        return Val(t, reg=_stack_len(lw, e.args[0]))
    if name == "has_key":
        m = e.args[0]
        assert isinstance(m, ast.Map)
        return Val(t, reg=mapops.has_key(lw, m, list(e.args[1:])))
    if name == "bswap":
        v = lw.value(e.args[0])
        at = e.args[0].ty
        bits = at.bits if isinstance(at, T.IntType) else 64
        ity = ir.IntType(bits)
        fn = g.module.declare_intrinsic("llvm.bswap", [ity])
        small = g.b.trunc(v, ity) if bits < 64 else v
        return Val(t, reg=g.b.zext(g.b.call(fn, [small]), I64) if bits < 64 else g.b.call(fn, [small]))
    if name in ("kptr", "uptr"):
        return Val(t, reg=lw.value(e.args[0]))
    if name == "strerror":
        return Val(t, reg=lw.value(e.args[0]))
    if name == "strftime":
        fmt = e.args[0]
        assert isinstance(fmt, ast.String)
        buf = g.alloca(16)
        g.store_int(buf, 0, lw.value(e.args[1]))
        g.store_int(buf, 8, g.const(lw.layout.time_format(fmt.value)))
        return Val(t, ptr=buf)
    raise CodegenError(f"{name}() is not supported by the code generator yet", e.span)


def _uaddr(lw: "Lowerer", e: ast.Call, t: T.Type) -> Val:
    """uaddr("sym"): a constant, the symbol's address in the probe's binary.
    Each uprobe/usdt attach is a program of its own (plan_programs), so each
    binary gets its own address (bpftrace 0.17 uses the first one's for all)."""
    arg = e.args[0]
    assert isinstance(arg, ast.String)
    if not lw.binaries:
        raise CodegenError("uaddr() needs a uprobe or usdt probe: it looks the symbol up in the probe's binary",
                           arg.span)
    resolve = lw.options.get("resolve_symbol")
    values = []
    for path in lw.binaries:
        value = resolve("uaddr", arg.value, path) if callable(resolve) else default_resolve("uaddr", arg.value, path)
        if value is None:
            raise CodegenError(f"uaddr(): no symbol '{arg.value}' in {path}", arg.span)
        values.append(int(value))
    if len(set(values)) > 1:  # one constant must not serve binaries that disagree
        raise CodegenError(f"uaddr(): '{arg.value}' has different addresses in {', '.join(lw.binaries)}", arg.span)
    return Val(t, reg=lw.g.const(values[0]))


def _join(lw: "Lowerer", e: ast.Call) -> Val:
    """join(argv): up to 16 strings of up to 1023 bytes read from a user
    array of pointers, sent as one event: bpftrace 0.17's join_argnum and
    join_argsize (1024, whatever max_strlen says).  The record is read
    straight into the ring buffer, so its 16 KiB never touch the stack."""
    g = lw.g
    sep = e.args[1].value if len(e.args) > 1 and isinstance(e.args[1], ast.String) else " "
    n_args, arg_len = JOIN_ARGNUM, JOIN_ARGSIZE
    ev = _event_for(lw, e, "join", extra={"sep": sep, "count": n_args, "len": arg_len})
    if not ev.args:
        ev.size = 8 + n_args * arg_len
    arr = lw.value(e.args[0])
    rec = _record(lw, ev.total_size)
    with g.b.if_then(g.truth(rec)):
        g.store_int(rec, 0, g.const(ev.id))
        ptr = g.alloca(8)
        for i in range(n_args):
            dst = g.gep(rec, 8 + i * arg_len)
            g.store_int(dst, 0, g.const(0), 1)
            g.probe_read(ptr, 8, g.b.add(arr, g.const(8 * i)), user=True)
            p = g.load_int(ptr, 0)
            with g.b.if_then(g.truth(p)):
                g.probe_read_str(dst, arg_len, p, user=True)
        _send(lw, rec, ev.total_size)
    return Val(T.VOID, reg=g.const(0))


def _ntop(lw: "Lowerer", e: ast.Call) -> Val:
    g = lw.g
    buf = g.alloca(24)
    g.memset(buf, 24)
    addr = lw.expr(e.args[-1])
    if addr.ptr is not None:
        size = type_size(addr.ty)
        g.store_int(buf, 0, g.const(10 if size == 16 else 2))
        g.memcpy(g.gep(buf, 8), addr.ptr, min(16, size))
    else:
        family = lw.value(e.args[0]) if len(e.args) == 2 else g.const(2)
        g.store_int(buf, 0, family)
        g.store_int(buf, 8, addr.reg, 4)
    return Val(e.ty or T.SymbolType(T.SymbolKind.INET, 24), ptr=buf)


def _pton(lw: "Lowerer", e: ast.Call) -> Val:
    """pton("literal"): the address bytes, known at compile time."""
    import ipaddress
    arg = e.args[0]
    assert isinstance(arg, ast.String)
    raw = ipaddress.ip_address(arg.value).packed
    g = lw.g
    buf = g.alloca(len(raw))
    g.memset(buf, len(raw))
    for i in range(0, len(raw), 4):
        g.store_int(buf, i, g.const(int.from_bytes(raw[i:i + 4], "little")), 4)
    return Val(e.ty or T.ArrayType(T.U8, len(raw)), ptr=buf)


def _macaddr(lw: "Lowerer", e: ast.Call) -> Val:
    """macaddr(p): six bytes, formatted in user space."""
    g = lw.g
    buf = g.alloca(8)
    g.memset(buf, 8)
    src = lw.expr(e.args[0])
    if src.ptr is not None:
        g.memcpy(buf, src.ptr, min(6, type_size(src.ty)))
    else:
        assert src.reg is not None
        g.probe_read(buf, 6, src.reg, user=lw._user_space(e.args[0].ty))
    return Val(e.ty or T.SymbolType(T.SymbolKind.MACADDR, 6), ptr=buf)


H_TRACE_PRINTK = 6


def _debugf(lw: "Lowerer", e: ast.Call) -> Val:
    """debugf(fmt, ...): bpf_trace_printk to the kernel's trace_pipe (at
    most three integer arguments; the format goes on the stack)."""
    g = lw.g
    fmt = e.args[0]
    assert isinstance(fmt, ast.String)
    if len(e.args) > 4:
        raise CodegenError("debugf() takes at most 3 arguments after the format (bpf_trace_printk)", e.span)
    text = lw.string_literal(fmt.value, T.StringType(len(fmt.value.encode()) + 1))
    assert text.ptr is not None
    size = len(fmt.value.encode("utf-8", "surrogateescape")) + 1
    args = []
    for a in e.args[1:]:
        v = lw.expr(a)
        if v.reg is None:
            raise CodegenError("debugf() arguments must be integers", a.span)
        args.append(v.reg)
    g.helper(H_TRACE_PRINTK, [text.ptr, ir.Constant(I32, size)] + args)
    return Val(T.VOID, reg=g.const(0))


def start_ns() -> int:
    """CLOCK_MONOTONIC now: what bpf_ktime_get_ns() counts, for 'elapsed'."""
    return time.monotonic_ns()
