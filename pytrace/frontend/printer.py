"""Prints an AST back as source text (canonical layout).

Used by ``--emit source``, the REPL's ``.save`` and the round-trip test
(parse → print → parse gives an equal AST).  Sub-expressions are
parenthesised whenever precedence could otherwise change their meaning.
"""

from __future__ import annotations

from . import ast
from .build import BINARY_PRECEDENCE

_PREC = BINARY_PRECEDENCE  # one table for parser and printer
_UNARY_PREC = 11
_POSTFIX_PREC = 12
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", '"': '\\"'}


def quote(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def type_text(t: ast.TypeSpec) -> str:
    s = t.base + (" " + "*" * t.pointer if t.pointer else "")
    if t.array is not None:
        s += f"[{t.array}]"
    return s


def expr(e: ast.Expr) -> str:
    return _expr(e, 0)


def _prec(e: ast.Expr) -> int:
    if isinstance(e, ast.Binary):
        return _PREC[e.op]
    if isinstance(e, ast.Ternary):
        return 0
    if isinstance(e, (ast.Unary, ast.Cast)) or (isinstance(e, ast.IncDec) and e.prefix):
        return _UNARY_PREC
    if isinstance(e, ast.Integer) and e.value < 0:
        return _UNARY_PREC
    return _POSTFIX_PREC


def _wrap(e: ast.Expr, min_prec: int) -> str:
    text = _expr(e, min_prec)
    return f"({text})" if _prec(e) < min_prec else text


def _expr(e: ast.Expr, ctx: int) -> str:
    if isinstance(e, ast.Integer):
        return str(e.value)
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.String):
        return quote(e.value)
    if isinstance(e, (ast.Ident, ast.Variable)):
        return e.name
    if isinstance(e, ast.Positional):
        return f"${e.index}"
    if isinstance(e, ast.ParamCount):
        return "$#"
    if isinstance(e, ast.Map):
        if e.keys is None:
            return e.name
        return f"{e.name}[" + ", ".join(_expr(k, 0) for k in e.keys) + "]"
    if isinstance(e, ast.Call):
        return f"{e.name}(" + ", ".join(_expr(a, 0) for a in e.args) + ")"
    if isinstance(e, ast.Binary):
        p = _PREC[e.op]
        # Left-associative: the right operand needs parentheses at equal precedence.
        return f"{_wrap(e.left, p)} {e.op} {_wrap(e.right, p + 1)}"
    if isinstance(e, ast.Ternary):
        cond = _wrap(e.cond, 1)
        if e.then is None:
            return f"{cond} ?: {_wrap(e.orelse, 0)}"
        return f"{cond} ? {_expr(e.then, 0)} : {_wrap(e.orelse, 0)}"
    if isinstance(e, ast.Unary):
        inner = _wrap(e.operand, _UNARY_PREC)
        if inner[:1] in "-+*&!~" or (isinstance(e.operand, ast.Integer) and e.operand.value < 0):
            inner = f"({inner})"
        return f"{e.op}{inner}"
    if isinstance(e, ast.IncDec):
        if e.prefix:
            inner = _wrap(e.target, _UNARY_PREC)
            if inner[:1] in "-+":
                inner = f"({inner})"
            return f"{e.op}{inner}"
        return f"{_wrap(e.target, _POSTFIX_PREC)}{e.op}"
    if isinstance(e, ast.Cast):
        return f"({type_text(e.type_spec)}){_wrap(e.operand, _UNARY_PREC)}"
    if isinstance(e, ast.FieldAccess):
        return f"{_wrap(e.operand, _POSTFIX_PREC)}{'->' if e.arrow else '.'}{e.name}"
    if isinstance(e, ast.TupleIndex):
        return f"{_wrap(e.operand, _POSTFIX_PREC)}.{e.index}"
    if isinstance(e, ast.Index):
        return f"{_wrap(e.operand, _POSTFIX_PREC)}[{_expr(e.index, 0)}]"
    if isinstance(e, ast.Tuple):
        if len(e.elements) == 1:
            return f"({_expr(e.elements[0], 0)},)"
        return "(" + ", ".join(_expr(x, 0) for x in e.elements) + ")"
    if isinstance(e, ast.Sizeof):
        t = e.target
        return f"sizeof({type_text(t) if isinstance(t, ast.TypeSpec) else _expr(t, 0)})"
    if isinstance(e, ast.Offsetof):
        t = e.target
        head = type_text(t) if isinstance(t, ast.TypeSpec) else _expr(t, 0)
        return f"offsetof({head}, {'.'.join(e.path)})"
    raise TypeError(f"cannot print {type(e).__name__}")


class _Printer:
    def __init__(self, indent: str = "  ") -> None:
        self.lines: list[str] = []
        self.unit = indent

    def emit(self, depth: int, text: str) -> None:
        self.lines.append(self.unit * depth + text)

    def block(self, b: ast.Block, depth: int, head: str) -> None:
        self.emit(depth, head + "{")
        for s in b.stmts:
            self.stmt(s, depth + 1)
        if b.result is not None:
            self.emit(depth + 1, expr(b.result))
        self.emit(depth, "}")

    def stmt(self, s: ast.Stmt, depth: int) -> None:
        if isinstance(s, ast.ExprStmt):
            self.emit(depth, expr(s.expr) + ";")
        elif isinstance(s, ast.Assign):
            self.emit(depth, f"{expr(s.target)} {s.op} {expr(s.value)};")
        elif isinstance(s, ast.Let):
            text = f"let {s.var.name}"
            if s.type_spec is not None:
                text += f": {type_text(s.type_spec)}"
            if s.value is not None:
                text += f" = {expr(s.value)}"
            self.emit(depth, text + ";")
        elif isinstance(s, ast.If):
            self._if(s, depth, "")
        elif isinstance(s, ast.Unroll):
            self.block(s.body, depth, f"unroll ({expr(s.count)}) ")
        elif isinstance(s, ast.While):
            self.block(s.body, depth, f"while ({expr(s.cond)}) ")
        elif isinstance(s, ast.ForMap):
            self.block(s.body, depth, f"for ({s.var.name} : {s.map.name}) ")
        elif isinstance(s, ast.ForRange):
            self.block(s.body, depth, f"for ({s.var.name} : {expr(s.start)}..{expr(s.end)}) ")
        elif isinstance(s, ast.Break):
            self.emit(depth, "break;")
        elif isinstance(s, ast.Continue):
            self.emit(depth, "continue;")
        elif isinstance(s, ast.Return):
            self.emit(depth, "return;" if s.value is None else f"return {expr(s.value)};")
        elif isinstance(s, ast.BlockStmt):
            self.block(s.block, depth, "")
        else:
            raise TypeError(f"cannot print {type(s).__name__}")

    def _if(self, s: ast.If, depth: int, lead: str) -> None:
        self.emit(depth, f"{lead}if ({expr(s.cond)}) {{")
        for x in s.then.stmts:
            self.stmt(x, depth + 1)
        if s.orelse is None:
            self.emit(depth, "}")
        elif len(s.orelse.stmts) == 1 and isinstance(s.orelse.stmts[0], ast.If):
            self._if(s.orelse.stmts[0], depth, "} else ")
        else:
            self.emit(depth, "} else {")
            for x in s.orelse.stmts:
                self.stmt(x, depth + 1)
            self.emit(depth, "}")


def program(p: ast.Program) -> str:
    pr = _Printer()
    for item in p.c_items:
        pr.lines.append(item.text)
    for cfg in p.config:
        pr.emit(0, "config = {")
        for e in cfg.entries:
            pr.emit(1, f"{e.key} = {expr(e.value)};")
        pr.emit(0, "}")
    for imp in p.imports:
        pr.emit(0, f"import {quote(imp.path)};")
    for decl in p.map_decls:
        size = "" if decl.max_entries is None else expr(decl.max_entries)
        pr.emit(0, f"let {decl.name} = {decl.kind}({size});")
    for m in p.macros:
        params = ", ".join(x.name for x in m.params)
        pr.block(m.body, 0, f"macro {m.name}({params}) ")
    for probe in p.probes:
        head = ",\n".join(ap.raw for ap in probe.attach_points)
        if probe.predicate is not None:
            head += f" /{expr(probe.predicate)}/"
        pr.block(probe.body, 0, head + " ")
    return "\n".join(pr.lines) + "\n"
