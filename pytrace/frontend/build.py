"""Lark parse callbacks that build the AST directly (no intermediate tree).

The parser runs with ``keep_all_tokens=True`` so that every callback sees the
punctuation tokens too: a node's span runs from its first token to its last,
parentheses and braces included.  Callbacks never raise (Lark would wrap the
exception); problems with a literal's value go to the ``Diagnostics``.
"""

from __future__ import annotations

from typing import Any, Sequence

from lark import Token, Transformer

from ..diagnostics import Diagnostics
from ..source import SourceFile, Span
from . import ast

# Past these nesting depths the AST is rejected: later passes walk it
# recursively and a deeper tree would exhaust Python's stack.
MAX_DEPTH = 400
MAX_BLOCK_DEPTH = 100

# C precedence of the binary operators (higher binds tighter).
BINARY_PRECEDENCE = {
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, ">": 7, "<=": 7, ">=": 7,
    "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}
_DURATION = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
             "h": 3600 * 10**9, "d": 86400 * 10**9}
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'",
                   "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b"}
U64_MAX = 2**64 - 1


def _bounds(item: Any) -> tuple[int, int] | None:
    if isinstance(item, Token):
        if item.start_pos is None:
            return None
        return item.start_pos, item.end_pos
    if isinstance(item, list):
        if not item:
            return None
        first, last = _bounds(item[0]), _bounds(item[-1])
        return (first[0], last[1]) if first and last else None
    span = getattr(item, "span", None)
    if span is not None:
        return span.start, span.end
    return None


class AstBuilder(Transformer):
    """Turns Lark's reductions into ``ast`` nodes."""

    def __init__(self, source: SourceFile, diags: Diagnostics) -> None:
        super().__init__(visit_tokens=False)
        self.reset(source, diags)

    def reset(self, source: SourceFile, diags: Diagnostics) -> None:
        """Point the builder at the next source to parse."""
        self.source = source
        self.diags = diags
        self.too_deep = False

    # -------------------------------------------------------------- helpers
    def _span(self, children: Sequence[Any]) -> Span | None:
        start = end = None
        for c in children:
            b = _bounds(c)
            if b is not None:
                start = b[0]
                break
        for c in reversed(children):
            b = _bounds(c)
            if b is not None:
                end = b[1]
                break
        if start is None or end is None:
            return None
        return Span(self.source, start, end)

    def _tok_span(self, tok: Token) -> Span:
        return Span(self.source, tok.start_pos, tok.end_pos)

    @staticmethod
    def _nodes(children: Sequence[Any]) -> list[Any]:
        return [c for c in children if not isinstance(c, Token)]

    def _expr(self, node: ast.Expr, children: Sequence[Any], *subs: ast.Expr | None) -> ast.Expr:
        node.span = self._span(children)
        node.depth = 1 + max((s.depth for s in subs if s is not None), default=0)
        if node.depth > MAX_DEPTH and not self.too_deep:
            self.too_deep = True
            self.diags.error(f"expression nested too deeply (more than {MAX_DEPTH} levels)", node.span,
                             hints=["split it with scratch variables: $a = ...; $b = $a + ..."])
        return node

    # -------------------------------------------------------------- top level
    def start(self, c: list[Any]) -> ast.Program:
        prog = ast.Program(span=Span(self.source, 0, len(self.source.text)))
        for item in c:
            if isinstance(item, ast.CItem):
                prog.c_items.append(item)
            elif isinstance(item, ast.Config):
                prog.config.append(item)
            elif isinstance(item, ast.Import):
                prog.imports.append(item)
            elif isinstance(item, ast.MacroDef):
                prog.macros.append(item)
            elif isinstance(item, ast.MapDecl):
                prog.map_decls.append(item)
            elif isinstance(item, ast.Probe):
                prog.probes.append(item)
        return prog

    def c_directive(self, c: list[Token]) -> ast.CItem:
        return ast.CItem("directive", str(c[0]), span=self._tok_span(c[0]))

    def c_definition(self, c: list[Token]) -> ast.CItem:
        return ast.CItem("definition", str(c[0]), span=self._tok_span(c[0]))

    def probe(self, c: list[Any]) -> ast.Probe:
        aps: list[ast.AttachPoint] = c[0]
        pred = None
        body = c[-1]
        if len(c) == 3:
            pred = c[1]
        return ast.Probe(aps, pred, body, span=self._span(c))

    def attach_list(self, c: list[Token]) -> list[ast.AttachPoint]:
        return [ast.AttachPoint(str(t), span=self._tok_span(t)) for t in c if t.type in ("ATTACH_POINT", "NAME")]

    def predicate(self, c: list[Any]) -> ast.Expr:
        return c[1]

    def config(self, c: list[Any]) -> ast.Config:
        return ast.Config([e for e in c if isinstance(e, ast.ConfigEntry)], span=self._span(c))

    def config_entry(self, c: list[Any]) -> ast.ConfigEntry:
        return ast.ConfigEntry(str(c[0]), c[2], span=self._span(c))

    def import_stmt(self, c: list[Any]) -> ast.Import:
        return ast.Import(self._unescape(c[1]), span=self._span(c))

    def macro_def(self, c: list[Any]) -> ast.MacroDef:
        params = [p for p in c if isinstance(p, ast.MacroParam)]
        body: ast.Block = c[-1]
        # A macro's value is its final expression written without ';'.
        if body.stmts and isinstance(body.stmts[-1], ast.ExprStmt) and body.span is not None:
            last = body.stmts[-1]
            tail = self.source.text[last.span.end:body.span.end] if last.span else ""
            if ";" not in tail:
                body.stmts.pop()
                body.result = last.expr
        return ast.MacroDef(str(c[1]), params, body, span=self._span(c))

    def macro_param(self, c: list[Token]) -> ast.MacroParam:
        t = c[0]
        kind = {"VAR": "$", "MAP": "@"}.get(t.type, "")
        return ast.MacroParam(kind, str(t), span=self._tok_span(t))

    def map_decl(self, c: list[Any]) -> ast.MapDecl:
        size = next((x for x in c[4:] if isinstance(x, ast.Expr)), None)
        return ast.MapDecl(str(c[1]), str(c[3]), size, span=self._span(c))

    # -------------------------------------------------------------- statements
    def block(self, c: list[Any]) -> ast.Block:
        return self._block(c)

    def angle_block(self, c: list[Any]) -> ast.Block:
        return self._block(c)

    def _block(self, c: list[Any]) -> ast.Block:
        stmts = self._nodes(c)
        block = ast.Block(stmts, span=self._span(c))
        inner = 0
        for s in stmts:
            for child in s.children():
                if isinstance(child, ast.Block):
                    inner = max(inner, child.depth)
        block.depth = inner + 1
        if block.depth > MAX_BLOCK_DEPTH and not self.too_deep:
            self.too_deep = True
            self.diags.error(f"blocks nested too deeply (more than {MAX_BLOCK_DEPTH} levels)", block.span)
        return block

    def block_stmt(self, c: list[Any]) -> ast.BlockStmt:
        return ast.BlockStmt(c[0], span=c[0].span)

    def expr_stmt(self, c: list[Any]) -> ast.ExprStmt:
        return ast.ExprStmt(c[0], span=c[0].span)

    def assign(self, c: list[Any]) -> ast.Assign:
        target = c[0]
        if isinstance(target, Token):
            target = ast.Variable(str(target), span=self._tok_span(target))
        return ast.Assign(target, c[1], c[2], span=self._span(c))

    def assign_op(self, c: list[Token]) -> str:
        return str(c[0])

    def let_stmt(self, c: list[Any]) -> ast.Let:
        var = ast.Variable(str(c[1]), span=self._tok_span(c[1]))
        spec = next((x for x in c if isinstance(x, ast.TypeSpec)), None)
        value = None
        for i, x in enumerate(c):
            if isinstance(x, Token) and x == "=" and i + 1 < len(c):
                value = c[i + 1]
        return ast.Let(var, spec, value, span=self._span(c))

    def break_stmt(self, c: list[Any]) -> ast.Break:
        return ast.Break(span=self._span(c))

    def continue_stmt(self, c: list[Any]) -> ast.Continue:
        return ast.Continue(span=self._span(c))

    def return_stmt(self, c: list[Any]) -> ast.Return:
        return ast.Return(c[1] if len(c) > 1 else None, span=self._span(c))

    def if_stmt(self, c: list[Any]) -> ast.If:
        cond, then = c[1], c[2]
        orelse = None
        if len(c) > 3:
            other = c[4]
            if isinstance(other, ast.Block):
                orelse = other
            else:
                orelse = ast.Block([other], span=other.span)
                orelse.depth = 1 + max((b.depth for b in other.children() if isinstance(b, ast.Block)), default=0)
        return ast.If(cond, then, orelse, span=self._span(c))

    def unroll_stmt(self, c: list[Any]) -> ast.Unroll:
        return ast.Unroll(c[2], c[4], span=self._span(c))

    def while_stmt(self, c: list[Any]) -> ast.While:
        return ast.While(c[2], c[4], span=self._span(c))

    def for_map(self, c: list[Any]) -> ast.ForMap:
        var = ast.Variable(str(c[2]), span=self._tok_span(c[2]))
        m = ast.Map(str(c[4]), None, span=self._tok_span(c[4]))
        return ast.ForMap(var, m, c[6], span=self._span(c))

    def for_range(self, c: list[Any]) -> ast.ForRange:
        var = ast.Variable(str(c[2]), span=self._tok_span(c[2]))
        return ast.ForRange(var, c[4], c[6], c[8], span=self._span(c))

    # -------------------------------------------------------------- expressions
    def ternary(self, c: list[Any]) -> ast.Expr:
        return self._expr(ast.Ternary(c[0], c[2], c[4]), c, c[0], c[2], c[4])

    def elvis(self, c: list[Any]) -> ast.Expr:
        return self._expr(ast.Ternary(c[0], None, c[3]), c, c[0], c[3])

    def binchain(self, c: list[Any]) -> ast.Expr:
        """'a op b op c ...' to a tree by C precedence (all binary operators
        are left-associative), by precedence climbing over the flat list."""
        operands: list[ast.Expr] = c[0::2]
        ops: list[Token] = c[1::2]
        pos = 0

        def climb(min_prec: int) -> ast.Expr:
            nonlocal pos
            left = operands[pos]
            while pos < len(ops) and BINARY_PRECEDENCE[ops[pos]] >= min_prec:
                op = ops[pos]
                prec = BINARY_PRECEDENCE[op]
                pos += 1
                right = climb(prec + 1)
                node = ast.Binary(str(op), left, right)
                left = self._expr(node, [left, right], left, right)
            return left

        return climb(0)

    def unop(self, c: list[Any]) -> ast.Expr:
        op, operand = str(c[0]), c[1]
        # Fold '-<literal>' so that negative constants are literals (as in bpftrace).
        if op == "-" and isinstance(operand, ast.Integer) and operand.value > 0:
            return self._expr(ast.Integer(-operand.value), c)
        return self._expr(ast.Unary(op, operand), c, operand)

    def pre_incdec(self, c: list[Any]) -> ast.Expr:
        return self._expr(ast.IncDec(str(c[0]), True, c[1]), c, c[1])

    def post_incdec(self, c: list[Any]) -> ast.Expr:
        return self._expr(ast.IncDec(str(c[1]), False, c[0]), c, c[0])

    def cast(self, c: list[Any]) -> ast.Expr:
        return self._expr(ast.Cast(c[1], c[3]), c, c[3])

    def field(self, c: list[Any]) -> ast.Expr:
        node = ast.FieldAccess(c[0], str(c[2]), False, name_span=self._tok_span(c[2]))
        return self._expr(node, c, c[0])

    def arrow(self, c: list[Any]) -> ast.Expr:
        node = ast.FieldAccess(c[0], str(c[2]), True, name_span=self._tok_span(c[2]))
        return self._expr(node, c, c[0])

    def tuple_index(self, c: list[Any]) -> ast.Expr:
        text = str(c[2]).replace("_", "")
        if not text.isdigit():
            self.diags.error(f"invalid tuple index '{c[2]}'", self._tok_span(c[2]),
                             hints=["tuple elements are numbered 0, 1, 2, ..."])
            text = "0"
        return self._expr(ast.TupleIndex(c[0], int(text, 10)), c, c[0])

    def index(self, c: list[Any]) -> ast.Expr:
        return self._expr(ast.Index(c[0], c[2]), c, c[0], c[2])

    def integer(self, c: list[Token]) -> ast.Expr:
        return self._expr(ast.Integer(self._int_value(c[0])), c)

    def string(self, c: list[Token]) -> ast.Expr:
        return self._expr(ast.String(self._unescape(c[0])), c)

    def true(self, c: list[Token]) -> ast.Expr:
        return self._expr(ast.Bool(True), c)

    def false(self, c: list[Token]) -> ast.Expr:
        return self._expr(ast.Bool(False), c)

    def var(self, c: list[Token]) -> ast.Expr:
        return self._expr(ast.Variable(str(c[0])), c)

    def positional(self, c: list[Token]) -> ast.Expr:
        return self._expr(ast.Positional(int(str(c[0])[1:])), c)

    def param_count(self, c: list[Token]) -> ast.Expr:
        return self._expr(ast.ParamCount(), c)

    def ident(self, c: list[Token]) -> ast.Expr:
        return self._expr(ast.Ident(str(c[0])), c)

    def map_bare(self, c: list[Token]) -> ast.Expr:
        return self._expr(ast.Map(str(c[0]), None), c)

    def map_keyed(self, c: list[Any]) -> ast.Expr:
        name = str(c[0])[:-1]
        keys = self._nodes(c)
        return self._expr(ast.Map(name, keys), c, *keys)

    def call(self, c: list[Any]) -> ast.Expr:
        args = self._nodes(c)
        node = ast.Call(str(c[0]), args, name_span=self._tok_span(c[0]))
        return self._expr(node, c, *args)

    def paren(self, c: list[Any]) -> ast.Expr:
        inner: ast.Expr = c[1]
        return inner

    def tuple(self, c: list[Any]) -> ast.Expr:
        elems = self._nodes(c)
        return self._expr(ast.Tuple(elems), c, *elems)

    def empty_tuple(self, c: list[Any]) -> ast.Expr:
        return self._expr(ast.Tuple([]), c)

    def sizeof(self, c: list[Any]) -> ast.Expr:
        target = c[2]
        return self._expr(ast.Sizeof(target), c, target if isinstance(target, ast.Expr) else None)

    def offsetof(self, c: list[Any]) -> ast.Expr:
        target = c[2]
        path = [str(t) for t in c[4:] if isinstance(t, Token) and t.type == "NAME"]
        return self._expr(ast.Offsetof(target, path), c, target if isinstance(target, ast.Expr) else None)

    # -------------------------------------------------------------- types
    def type_spec(self, c: list[Any]) -> ast.TypeSpec:
        return self._type(c)

    def let_type(self, c: list[Any]) -> ast.TypeSpec:
        return self._type(c)

    def _type(self, c: list[Any]) -> ast.TypeSpec:
        base = str(c[0])
        stars = sum(1 for t in c if isinstance(t, Token) and t.type == "STAR")
        array = None
        for t in c:
            if isinstance(t, Token) and t.type == "INTEGER":
                array = self._int_value(t)
        return ast.TypeSpec(base, stars, array, span=self._span(c))

    def int_type(self, c: list[Token]) -> Token:
        return c[0]

    def struct_type(self, c: list[Token]) -> Token:
        # One token spanning 'struct name', so the type spec gets a span.
        return Token("TYPE", f"{c[0]} {c[1]}", c[0].start_pos, c[0].line, c[0].column,
                     c[1].end_line, c[1].end_column, c[1].end_pos)

    # -------------------------------------------------------------- literals
    def _int_value(self, tok: Token) -> int:
        text = str(tok).replace("_", "")
        lower = text.lower()
        mult = 1
        try:
            if lower.startswith("0x"):
                value = int(lower.rstrip("ul"), 16)
            else:
                for suffix in ("ns", "us", "ms", "s", "m", "h", "d"):
                    if lower.endswith(suffix):
                        mult = _DURATION[suffix]
                        lower = lower[: -len(suffix)]
                        break
                lower = lower.rstrip("ul")
                if "e" in lower:
                    mant, exp = lower.split("e")
                    value = int(mant) * 10 ** int(exp)
                elif len(lower) > 1 and lower.startswith("0"):
                    value = int(lower, 8)
                else:
                    value = int(lower)
        except ValueError:
            self.diags.error(f"invalid integer literal '{tok}'", self._tok_span(tok),
                             hints=["octal literals use only the digits 0-7"] if lower.startswith("0") else [])
            return 0
        value *= mult
        if value > U64_MAX:
            self.diags.error(f"integer literal '{tok}' does not fit in 64 bits", self._tok_span(tok))
            return 0
        return value

    def _unescape(self, tok: Token) -> str:
        raw = str(tok)[1:-1]
        if "\\" not in raw:
            return raw
        out: list[str] = []
        i, n = 0, len(raw)
        while i < n:
            ch = raw[i]
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            nxt = raw[i + 1] if i + 1 < n else ""
            if nxt in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[nxt])
                i += 2
            elif nxt in ("x", "X"):
                j = i + 2
                while j < n and j < i + 4 and raw[j] in "0123456789abcdefABCDEF":
                    j += 1
                if j == i + 2:
                    self._bad_escape(tok, i, "\\x needs hex digits")
                    i += 2
                else:
                    out.append(chr(int(raw[i + 2:j], 16)))
                    i = j
            elif nxt.isdigit() and nxt in "01234567":
                j = i + 1
                while j < n and j < i + 4 and raw[j] in "01234567":
                    j += 1
                out.append(chr(int(raw[i + 1:j], 8) & 0xFF))
                i = j
            else:
                self._bad_escape(tok, i, f"invalid escape sequence '\\{nxt}'")
                i += 2
        return "".join(out)

    def _bad_escape(self, tok: Token, index: int, message: str) -> None:
        start = tok.start_pos + 1 + index
        self.diags.error(message, Span(self.source, start, start + 2),
                         hints=["valid escapes: \\n \\t \\r \\\\ \\\" \\xNN \\NNN (octal)"])
