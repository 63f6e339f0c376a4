"""Builtin functions: printf, print, str, ksym, delete, exit...

Each check types the arguments, enforces what must be a literal (format
strings, kaddr's symbol name), and returns the call's type (``VOID`` for
functions used for their effect).
"""

from __future__ import annotations

import signal as _signals
from typing import TYPE_CHECKING

from ..frontend import ast
from ..semantic import types as T
from .registry import Builtin, Kind

if TYPE_CHECKING:
    from ..semantic.typecheck import Checker

VOID = T.VOID
# x86_64 pt_regs members that reg() accepts.
REGISTERS = ("r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di",
             "orig_ax", "ip", "cs", "flags", "sp", "ss")


def _literal(e: ast.Call, ck: "Checker", i: int, what: str) -> str | None:
    a = e.args[i]
    a.ty = ck.expr(a) if not isinstance(a, ast.String) else T.StringType(len(a.value) + 1)
    if not isinstance(a, ast.String):
        ck.error(f"{e.name}(): {what} must be a string literal", a.span)
        return None
    return a.value


def _bare_map(e: ast.Call, ck: "Checker", i: int) -> ast.Map | None:
    a = e.args[i]
    if not isinstance(a, ast.Map) or a.keys is not None:
        ck.expr(a)
        ck.error(f"{e.name}() expects a map without a key, such as @name", a.span)
        return None
    ck.expr(a, allow_bare_map=True)
    return a


def _format(e: ast.Expr, ck: "Checker") -> T.Type:
    """printf, system, cat, debugf: a literal format and matching arguments."""
    assert isinstance(e, ast.Call)
    from ..semantic.formatcheck import check_call
    fmt_node = e.args[0]
    arg_types = [ck.expr(a) for a in e.args[1:]]
    if not isinstance(fmt_node, ast.String):
        ck.expr(fmt_node)
        hints = []
        if isinstance(fmt_node, ast.Positional):
            hints = [f'print a parameter with a format: {e.name}("%s", str(${fmt_node.index}))']
        ck.error(f"{e.name}(): the format must be a string literal", fmt_node.span, hints=hints)
        return VOID
    fmt_node.ty = T.StringType(len(fmt_node.value) + 1)
    for a, t in zip(e.args[1:], arg_types):
        if isinstance(t, (T.VoidType,)):
            ck.error(f"{e.name}(): this argument has no value", a.span)
    check_call(e, fmt_node, arg_types, ck)
    return VOID


def _print(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    first = e.args[0]
    if isinstance(first, ast.Map) and first.keys is None:
        ck.expr(first, allow_bare_map=True)
        for a in e.args[1:]:
            ck.expr(a)
            if ck.const_int(a) is None:
                ck.error("print(): top and div must be constant integers", a.span)
        return VOID
    if len(e.args) > 1:
        ck.error("print() of a value takes one argument; top and div apply to maps", e.args[1].span)
    t = ck.expr(first)
    if isinstance(t, T.VoidType):
        ck.error("print(): this expression has no value", first.span)
    return VOID


def _time(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    if e.args:
        fmt = _literal(e, ck, 0, "the format")
        if fmt is not None:
            from ..semantic.formatcheck import check_time_format_call
            check_time_format_call(e, e.args[0], ck)
    return VOID


def _strftime(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    fmt = _literal(e, ck, 0, "the format")
    if fmt is not None:
        from ..semantic.formatcheck import check_time_format_call
        check_time_format_call(e, e.args[0], ck)
    t = ck.expr(e.args[1])
    if not t.is_integer():
        ck.error(f"strftime(): the time must be an integer (nanoseconds), not {t}", e.args[1].span)
    return T.SymbolType(T.SymbolKind.TIMESTAMP, 16)


def _join(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    t = ck.expr(e.args[0])
    if not (t.is_integer() or isinstance(t, T.PointerType)):
        ck.error(f"join() needs a pointer to an array of strings (such as args.argv), not {t}", e.args[0].span)
    if len(e.args) == 2:
        _literal(e, ck, 1, "the separator")
    return VOID


def _str(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    arg = e.args[0]
    if isinstance(arg, ast.Positional) and arg.index >= 1:
        # bpftrace: str($N) is the parameter's own text, digits included
        # (str($1) of "12" is "12", not a read at address 12), "" when unset.
        # Typed as a string, the lowerer emits it as a literal.
        params = ck.options.params
        text = params[arg.index - 1] if arg.index <= len(params) else ""
        t: T.Type = T.StringType(len(text.encode()) + 1)
        arg.ty = t
    else:
        t = ck.expr(arg)
    size = ck.options.strlen
    if not (t.is_integer() or isinstance(t, (T.PointerType, T.StringType, T.ArrayType))):
        ck.error(f"str() needs a pointer or an integer address, not {t}", e.args[0].span)
    if isinstance(t, T.StringType):
        size = t.length
    if len(e.args) == 2:
        lt = ck.expr(e.args[1])
        if not lt.is_integer():
            ck.error(f"str(): the length must be an integer, not {lt}", e.args[1].span)
        n = ck.const_int(e.args[1])
        if n is not None:
            if n <= 0:
                ck.error("str(): the length must be positive", e.args[1].span)
            else:
                # One more byte for the terminating NUL, capped by the string size.
                size = min(n + 1, ck.options.strlen) if n < ck.options.strlen else ck.options.strlen
    return T.StringType(size)


def _buf(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    t = ck.expr(e.args[0])
    size = None
    if isinstance(t, T.ArrayType):
        size = t.size
    elif isinstance(t, T.StringType):
        size = t.length
    elif not (t.is_integer() or isinstance(t, T.PointerType)):
        ck.error(f"buf() needs a pointer or an array, not {t}", e.args[0].span)
    if len(e.args) == 2:
        ck.expr(e.args[1])
        n = ck.const_int(e.args[1])
        size = n if n is not None else ck.options.strlen
        if n is not None and n <= 0:
            ck.error("buf(): the length must be positive", e.args[1].span)
    if size is None:
        ck.error("buf() of a pointer needs a length: buf(ptr, length)", e.span)
        size = ck.options.strlen
    return T.BufferType(min(size, ck.options.strlen))


def _addr_arg(e: ast.Call, ck: "Checker", i: int = 0) -> None:
    t = ck.expr(e.args[i])
    if not (t.is_integer() or isinstance(t, T.PointerType)):
        ck.error(f"{e.name}() needs an address (an integer or a pointer), not {t}", e.args[i].span)


def _ksym(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    _addr_arg(e, ck)
    return T.SymbolType(T.SymbolKind.KSYM)


def _usym(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    _addr_arg(e, ck)
    return T.SymbolType(T.SymbolKind.USYM, 16)


def _kaddr(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    _literal(e, ck, 0, "the symbol name")
    return T.U64


def _uaddr(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    _literal(e, ck, 0, "the symbol name")
    return T.PointerType(T.U64, T.AddrSpace.USER)


def _ntop(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    addr = e.args[-1]
    if len(e.args) == 2:
        ft = ck.expr(e.args[0])
        if not ft.is_integer():
            ck.error(f"ntop(): the address family must be an integer, not {ft}", e.args[0].span)
    t = ck.expr(addr)
    ok = t.is_integer() or isinstance(t, T.PointerType) or (
        isinstance(t, (T.ArrayType, T.StringType)) and t.size in (4, 16))
    if not ok:
        ck.error(f"ntop() needs an IPv4 address (integer) or a 4- or 16-byte array, not {t}", addr.span)
    return T.SymbolType(T.SymbolKind.INET, 24)


def _reg(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    name = _literal(e, ck, 0, "the register name")
    if name is not None and name not in REGISTERS:
        from ..diagnostics import suggest
        ck.error(f"reg(): unknown register '{name}'", e.args[0].span, hints=suggest(name, list(REGISTERS)))
    return T.U64


def _cgroupid(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    _literal(e, ck, 0, "the cgroup path")
    return T.U64


def _macaddr(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    t = ck.expr(e.args[0])
    # A tracepoint's 'unsigned char addr[6]' is a char array, typed as a
    # string here: its bytes are the address (bpftrace 0.17 accepts it).
    if not (t.is_integer() or isinstance(t, (T.PointerType, T.ArrayType))
            or (isinstance(t, T.StringType) and t.length >= 6)):
        ck.error(f"macaddr() needs a pointer or a 6-byte array, not {t}", e.args[0].span)
    return T.SymbolType(T.SymbolKind.MACADDR, 6)


def _path(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    _addr_arg(e, ck)
    return T.StringType(ck.options.strlen)


def _strncmp(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    for a in e.args[:2]:
        t = ck.expr(a)
        if not isinstance(t, T.StringType):
            ck.error(f"strncmp() compares strings, not {t}", a.span, hints=["use str() to read a char pointer"])
    ck.expr(e.args[2])
    n = ck.const_int(e.args[2])
    if n is None or n < 0:
        ck.error("strncmp(): the length must be a non-negative constant", e.args[2].span)
    return T.I64


def _strcontains(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    for a in e.args:
        t = ck.expr(a)
        if not isinstance(t, T.StringType):
            ck.error(f"strcontains() searches strings, not {t}", a.span)
    return T.BOOL


def _signal(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    a = e.args[0]
    if isinstance(a, ast.String):
        a.ty = T.StringType(len(a.value) + 1)
        name = a.value.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if not hasattr(_signals.Signals, name) or name in ("SIG_DFL", "SIG_IGN"):
            ck.error(f"signal(): unknown signal '{a.value}'", a.span)
        return VOID
    t = ck.expr(a)
    if not t.is_integer():
        ck.error(f"signal() needs a signal number or name, not {t}", a.span)
    n = ck.const_int(a)
    if n is not None and not 1 <= n <= 64:
        ck.error(f"signal(): {n} is not a valid signal number", a.span)
    return VOID


def _override(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    t = ck.expr(e.args[0])
    if not t.is_integer():
        ck.error(f"override() needs an integer return value, not {t}", e.args[0].span)
    return VOID


def _exit(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    if e.args:
        t = ck.expr(e.args[0])
        if not t.is_integer():
            ck.error(f"exit(): the exit code must be an integer, not {t}", e.args[0].span)
    if ck.scope.loop_depth:
        ck.error("exit() cannot be used inside a loop", e.span, hints=["set a flag and exit after the loop"])
    return VOID


def _map_only(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    _bare_map(e, ck, 0)
    return VOID


def _delete(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    if len(e.args) == 1:
        a = e.args[0]
        if isinstance(a, ast.Map) and a.keys is None:
            # delete(@x) of a map without keys resets it (bpftrace allows it).
            ck.expr(a, allow_bare_map=True)
            info = ck.maps.get(a.name)
            if info is not None and info.key is not None:
                ck.error(f"delete() of an element of {a.name} needs its key", a.span,
                         hints=[f"write delete({a.name}[key]) or delete({a.name}, key); "
                                f"clear({a.name}) deletes every element"])
            return VOID
        if not isinstance(a, ast.Map):
            ck.expr(a, allow_bare_map=True)
            ck.error("delete() expects a map element such as @m[key], or delete(@m, key)", a.span)
            return VOID
        ck.expr(a)
        return VOID
    m = _bare_map(e, ck, 0)
    if m is not None:
        key = ast.Map(m.name, [e.args[1]], span=e.args[1].span)
        ck.expr(key)
    return VOID


def _has_key(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    m = _bare_map(e, ck, 0)
    if m is not None:
        ck.expr(ast.Map(m.name, e.args[1:], span=e.span))
    return T.BOOL


def _len(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    a = e.args[0]
    if isinstance(a, ast.Map) and a.keys is None:
        ck.expr(a, allow_bare_map=True)
        return T.I64
    t = ck.expr(a)
    if not isinstance(t, T.StackType):
        ck.error(f"len() needs a map or a stack, not {t}", a.span)
    return T.I64


def _bswap(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    t = ck.expr(e.args[0])
    if not t.is_integer():
        ck.error(f"bswap() needs an integer, not {t}", e.args[0].span)
        return T.U64
    return t if isinstance(t, T.IntType) else T.U64


def _kptr(space: T.AddrSpace):  # type: ignore[no-untyped-def]
    def check(e: ast.Expr, ck: "Checker") -> T.Type:
        assert isinstance(e, ast.Call)
        t = ck.expr(e.args[0])
        if isinstance(t, T.PointerType):
            return T.PointerType(t.pointee, space)
        if not t.is_integer():
            ck.error(f"{e.name}() needs a pointer or an integer, not {t}", e.args[0].span)
        return t
    return check


def _strerror(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    t = ck.expr(e.args[0])
    if not t.is_integer():
        ck.error(f"strerror() needs an error number, not {t}", e.args[0].span)
    return T.SymbolType(T.SymbolKind.STRERROR)


def _pton(e: ast.Expr, ck: "Checker") -> T.Type:
    assert isinstance(e, ast.Call)
    text = _literal(e, ck, 0, "the address")
    import ipaddress
    if text is None:
        return T.ArrayType(T.U8, 4)
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        ck.error(f"pton(): '{text}' is not an IPv4 or IPv6 address", e.args[0].span)
        return T.ArrayType(T.U8, 4)
    return T.ArrayType(T.U8, 4 if addr.version == 4 else 16)


def _fn(name: str, check, sig: str, doc: str, lo: int, hi: int | None, **kw) -> Builtin:  # type: ignore[no-untyped-def]
    return Builtin(name, Kind.FUNCTION, check, sig, doc, min_args=lo, max_args=hi, **kw)


ENTRIES: list[Builtin] = [
    _fn("printf", _format, 'printf(fmt, ...)', "print formatted text", 1, None, is_async=True),
    _fn("system", _format, 'system(fmt, ...)', "run a shell command", 1, None, unsafe=True, is_async=True,
        unsafe_reason="runs a shell command"),
    _fn("cat", _format, 'cat(fmt, ...)', "print a file's contents", 1, None, is_async=True),
    _fn("debugf", _format, 'debugf(fmt, ...)', "write to the kernel trace pipe", 1, None),
    _fn("print", _print, "print(@map[, top[, div]]) or print(value)", "print a map or a value", 1, 3,
        is_async=True),
    _fn("time", _time, 'time([fmt])', "print the current time", 0, 1, is_async=True),
    _fn("strftime", _strftime, 'strftime(fmt, nsecs)', "format a timestamp", 2, 2),
    _fn("join", _join, 'join(argv[, sep])', "print an array of strings", 1, 2, is_async=True),
    _fn("str", _str, "str(ptr[, length])", "read a NUL-terminated string", 1, 2),
    _fn("buf", _buf, "buf(ptr[, length])", "read a buffer of bytes (print with %r)", 1, 2),
    _fn("ksym", _ksym, "ksym(addr)", "kernel symbol of an address", 1, 1),
    _fn("usym", _usym, "usym(addr)", "user symbol of an address", 1, 1),
    _fn("kaddr", _kaddr, 'kaddr("symbol")', "address of a kernel symbol", 1, 1),
    _fn("uaddr", _uaddr, 'uaddr("symbol")', "address of a user symbol", 1, 1,
        providers=frozenset({"uprobe", "uretprobe", "usdt"})),
    _fn("ntop", _ntop, "ntop([af,] addr)", "format an IP address", 1, 2),
    _fn("reg", _reg, 'reg("name")', "value of a register", 1, 1,
        providers=frozenset({"kprobe", "kretprobe", "uprobe", "uretprobe", "usdt", "profile", "interval",
                             "software", "hardware", "watchpoint", "asyncwatchpoint"})),
    _fn("cgroupid", _cgroupid, 'cgroupid("path")', "id of a cgroup", 1, 1),
    _fn("macaddr", _macaddr, "macaddr(ptr)", "format a MAC address", 1, 1),
    _fn("path", _path, "path(struct path *)", "full path of a struct path", 1, 1,
        providers=frozenset({"fentry", "fexit", "iter"})),
    _fn("strncmp", _strncmp, "strncmp(a, b, n)", "compare the first n bytes of two strings", 3, 3),
    _fn("strcontains", _strcontains, "strcontains(haystack, needle)", "whether a string contains another",
        2, 2),
    _fn("signal", _signal, 'signal(sig)', "send a signal to the current task", 1, 1, unsafe=True,
        unsafe_reason="sends a signal to the traced process",
        providers=frozenset({"kprobe", "kretprobe", "uprobe", "uretprobe", "usdt", "tracepoint", "rawtracepoint",
                             "fentry", "fexit", "profile", "interval", "software", "hardware", "watchpoint",
                             "asyncwatchpoint"})),
    _fn("override", _override, "override(rc)", "override a kernel function's return value", 1, 1,
        unsafe=True, unsafe_reason="changes the return value of a kernel function",
        providers=frozenset({"kprobe"})),
    _fn("exit", _exit, "exit([code])", "stop tracing", 0, 1, is_async=True),
    _fn("clear", _map_only, "clear(@map)", "delete every element of a map", 1, 1, is_async=True),
    _fn("zero", _map_only, "zero(@map)", "set every element of a map to zero", 1, 1, is_async=True),
    _fn("delete", _delete, "delete(@map[key]) or delete(@map, key)", "delete a map element", 1, 2),
    _fn("has_key", _has_key, "has_key(@map, key)", "whether a map has a key", 2, 2),
    _fn("len", _len, "len(@map) or len(stack)", "number of elements", 1, 1),
    _fn("bswap", _bswap, "bswap(n)", "reverse the byte order of an integer", 1, 1),
    _fn("kptr", _kptr(T.AddrSpace.KERNEL), "kptr(p)", "mark a pointer as a kernel address", 1, 1),
    _fn("uptr", _kptr(T.AddrSpace.USER), "uptr(p)", "mark a pointer as a user address", 1, 1),
    _fn("strerror", _strerror, "strerror(errno)", "the text of an error number", 1, 1),
    _fn("pton", _pton, 'pton("addr")', "an IP address as bytes", 1, 1),
]
