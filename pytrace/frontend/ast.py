"""The abstract syntax tree: plain record classes (pytrace.records), one per construct.

Every node carries a ``span`` (where it came from) and expressions carry a
``ty`` slot that the type checker fills.  Neither takes part in equality, so
two parses of equivalent text compare equal (the printer's round-trip test
relies on this).  ``children()`` gives a uniform way to walk the tree.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..records import dataclass, field, fields
from ..source import Span
from ..semantic.types import Type


@dataclass(eq=True)
class Node:
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def children(self) -> Iterator["Node"]:
        for f in fields(self):
            if f.name in ("span", "ty", "depth"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, Node):
                yield value
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if isinstance(item, Node):
                        yield item

    def walk(self) -> Iterator["Node"]:
        """Pre-order traversal without recursion (deeply nested input must not
        exhaust Python's stack)."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(list(node.children())))


# ---------------------------------------------------------------- expressions

@dataclass(eq=True)
class Expr(Node):
    ty: Type | None = field(default=None, compare=False, repr=False, kw_only=True)
    depth: int = field(default=1, compare=False, repr=False, kw_only=True)


@dataclass(eq=True)
class Integer(Expr):
    value: int


@dataclass(eq=True)
class Bool(Expr):
    value: bool


@dataclass(eq=True)
class String(Expr):
    value: str


@dataclass(eq=True)
class Ident(Expr):
    """A bare name: a builtin (``pid``), an enum constant, a macro, ``args``..."""

    name: str


@dataclass(eq=True)
class Variable(Expr):
    """A scratch variable ``$name``."""

    name: str  # with the '$'


@dataclass(eq=True)
class Positional(Expr):
    """``$1``..``$N``."""

    index: int


@dataclass(eq=True)
class ParamCount(Expr):
    """``$#``."""


@dataclass(eq=True)
class Map(Expr):
    """``@name`` or ``@name[k1, k2]``; ``keys`` is None for a map used without a key."""

    name: str  # with the '@' ('@' alone for the anonymous map)
    keys: list[Expr] | None = None


@dataclass(eq=True)
class Call(Expr):
    name: str
    args: list[Expr]
    name_span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(eq=True)
class Unary(Expr):
    op: str  # '-', '+', '!', '~', '*' (deref), '&' (address of)
    operand: Expr


@dataclass(eq=True)
class IncDec(Expr):
    op: str  # '++' or '--'
    prefix: bool
    target: Expr


@dataclass(eq=True)
class Binary(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(eq=True)
class Ternary(Expr):
    cond: Expr
    then: Expr | None  # None for the short form 'a ?: b'
    orelse: Expr


@dataclass(eq=True)
class TypeSpec(Node):
    """A type as written in a cast, ``let`` or ``sizeof``: ``uint32``,
    ``struct task_struct *``, ``int8[4]``, ``string[16]``."""

    base: str           # 'uint32', 'struct task_struct', 'string', a typedef name
    pointer: int = 0    # number of '*'
    array: int | None = None


@dataclass(eq=True)
class Cast(Expr):
    type_spec: TypeSpec
    operand: Expr


@dataclass(eq=True)
class FieldAccess(Expr):
    operand: Expr
    name: str
    arrow: bool = False  # written '->' (same meaning as '.', kept for printing)
    name_span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(eq=True)
class TupleIndex(Expr):
    operand: Expr
    index: int


@dataclass(eq=True)
class Index(Expr):
    operand: Expr
    index: Expr


@dataclass(eq=True)
class Tuple(Expr):
    elements: list[Expr]


@dataclass(eq=True)
class Sizeof(Expr):
    target: TypeSpec | Expr


@dataclass(eq=True)
class Offsetof(Expr):
    target: TypeSpec | Expr
    path: list[str]
    offset: int | None = None  # bytes, found by the type checker


@dataclass(eq=True)
class MacroExpansion(Expr):
    """A macro call after expansion (semantic/macros.py): ``stmts`` run, then
    ``result`` is the call's value (None: the macro has no value)."""

    name: str
    stmts: list["Stmt"]
    result: Expr | None
    call_span: Span | None = field(default=None, compare=False, repr=False)


# ---------------------------------------------------------------- statements

@dataclass(eq=True)
class Stmt(Node):
    pass


@dataclass(eq=True)
class Block(Node):
    stmts: list[Stmt]
    # The value of a macro body: a final expression written without ';'.
    result: Expr | None = None
    depth: int = field(default=1, compare=False, repr=False, kw_only=True)


@dataclass(eq=True)
class ExprStmt(Stmt):
    expr: Expr


@dataclass(eq=True)
class Assign(Stmt):
    """``target op value`` where target is a Map or a Variable and op is '='
    or a compound operator such as '+='."""

    target: Expr
    op: str
    value: Expr


@dataclass(eq=True)
class Let(Stmt):
    var: Variable
    type_spec: TypeSpec | None
    value: Expr | None


@dataclass(eq=True)
class If(Stmt):
    cond: Expr
    then: Block
    orelse: Block | None = None


@dataclass(eq=True)
class Unroll(Stmt):
    count: Expr
    body: Block


@dataclass(eq=True)
class While(Stmt):
    cond: Expr
    body: Block


@dataclass(eq=True)
class ForMap(Stmt):
    var: Variable
    map: Map
    body: Block


@dataclass(eq=True)
class ForRange(Stmt):
    var: Variable
    start: Expr
    end: Expr
    body: Block


@dataclass(eq=True)
class Break(Stmt):
    pass


@dataclass(eq=True)
class Continue(Stmt):
    pass


@dataclass(eq=True)
class Return(Stmt):
    value: Expr | None = None


@dataclass(eq=True)
class BlockStmt(Stmt):
    block: Block


# ---------------------------------------------------------------- top level

@dataclass(eq=True)
class AttachPoint(Node):
    """One attach point exactly as written (``tracepoint:syscalls:sys_enter_*``);
    the provider module parses it during probe resolution."""

    raw: str


@dataclass(eq=True)
class Probe(Node):
    attach_points: list[AttachPoint]
    predicate: Expr | None
    body: Block


@dataclass(eq=True)
class ConfigEntry(Node):
    key: str
    value: Expr


@dataclass(eq=True)
class Config(Node):
    entries: list[ConfigEntry]


@dataclass(eq=True)
class Import(Node):
    path: str


@dataclass(eq=True)
class MacroParam(Node):
    kind: str   # '$' (scratch variable), '@' (map) or '' (expression)
    name: str   # as written, with its sigil


@dataclass(eq=True)
class MacroDef(Node):
    name: str
    params: list[MacroParam]
    body: Block


@dataclass(eq=True)
class MapDecl(Node):
    """``let @name = hash(N);`` (bpftrace 0.25 map declarations)."""

    name: str
    kind: str
    max_entries: Expr | None


@dataclass(eq=True)
class CItem(Node):
    """A C preprocessor line or a C type definition, kept verbatim."""

    kind: str  # 'directive' | 'definition'
    text: str


@dataclass(eq=True)
class Program(Node):
    c_items: list[CItem] = field(default_factory=list)
    config: list[Config] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    macros: list[MacroDef] = field(default_factory=list)
    map_decls: list[MapDecl] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)


def dump(node: Any, indent: int = 0) -> str:
    """A readable tree for ``--emit ast``: one node per line, with its location
    and (after type checking) its type."""
    lines: list[str] = []
    _dump(node, indent, lines, "")
    return "\n".join(lines)


def _dump(node: Any, indent: int, out: list[str], label: str) -> None:
    pad = "  " * indent
    prefix = f"{label}: " if label else ""
    if isinstance(node, Node):
        scalars = []
        nested: list[tuple[str, Any]] = []
        for f in fields(node):
            if f.name in ("span", "ty", "depth", "name_span"):
                continue
            v = getattr(node, f.name)
            if isinstance(v, Node) or (isinstance(v, list) and any(isinstance(i, Node) for i in v)):
                nested.append((f.name, v))
            elif isinstance(v, list) and not v:
                continue
            elif v is None:
                continue
            else:
                scalars.append(f"{f.name}={v!r}")
        loc = f" @{node.span.line}:{node.span.col}" if node.span is not None else ""
        ty = getattr(node, "ty", None)
        tys = f" : {ty}" if ty is not None else ""
        out.append(f"{pad}{prefix}{type(node).__name__}{loc}{tys}" + (f" {' '.join(scalars)}" if scalars else ""))
        for name, v in nested:
            if isinstance(v, list):
                for item in v:
                    _dump(item, indent + 1, out, name)
            else:
                _dump(v, indent + 1, out, name)
    else:
        out.append(f"{pad}{prefix}{node!r}")
