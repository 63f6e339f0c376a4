"""Macro expansion: ``macro name($v, @m, e) { ...; value }`` and its calls.

Macros are expanded on the AST before probes are resolved, as bpftrace 0.25
defines them:

* a ``$v`` parameter takes a scratch variable of the caller, by reference
  (the macro may assign it); a ``@m`` parameter takes a map; a bare ``e``
  parameter takes any expression, substituted where the body names it;
* the body's own scratch variables are hygienic: every expansion renames
  them (``$tmp`` becomes ``$tmp.name.N``), so they neither leak into nor
  capture the caller's;
* the body's final expression written without ``;`` is the call's value;
  a macro without one can only be called as a statement;
* a macro without parameters may be named without parentheses (``pcomm``);
* recursion is reported (expansion would never end), as are a wrong number
  of arguments and an argument of the wrong kind for a ``$``/``@`` param.

A call whose body has statements becomes an ``ast.MacroExpansion`` (its
statements run, then its value is computed); a body that is a single
expression is substituted as that expression, so constant folding and
aggregation checks see through it.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from ..diagnostics import Diagnostics, Note
from ..frontend import ast
from ..records import fields, replace

N = TypeVar("N", bound=ast.Node)
Hook = Callable[[ast.Node], "ast.Node | None"]

# Fields that are annotations, not children.
_SKIP = frozenset({"span", "ty", "depth", "name_span", "call_span"})


def rewrite(node: N, hook: Hook) -> N:
    """A copy of ``node`` where ``hook`` replaces the nodes it returns a
    value for (their children are not visited); spans are shared, nodes
    never are."""
    out = hook(node)
    if out is not None:
        return out  # type: ignore[return-value]
    changes: dict[str, object] = {}
    for f in fields(node):
        if f.name in _SKIP:
            continue
        value = getattr(node, f.name)
        if isinstance(value, ast.Node):
            changes[f.name] = rewrite(value, hook)
        elif isinstance(value, list):
            changes[f.name] = [rewrite(v, hook) if isinstance(v, ast.Node) else v for v in value]
        elif isinstance(value, tuple):
            changes[f.name] = tuple(rewrite(v, hook) if isinstance(v, ast.Node) else v for v in value)
    # Leaves are copied too: the checker writes each node's type on it, and
    # one macro expanded in two probes (say `args` of two tracepoints) must
    # not share a node whose type differs between them.
    return replace(node, **changes)


class Expander:
    """Expands every macro call of a program, in place."""

    def __init__(self, macros: dict[str, ast.MacroDef], diags: Diagnostics) -> None:
        self.macros = macros
        self.diags = diags
        self.count = 0  # expansions so far: numbers the hygienic renames

    def program(self, program: ast.Program) -> None:
        for m in program.macros:
            self._check_body(m)
        for probe in program.probes:
            if probe.predicate is not None:
                probe.predicate = self._expand_in(probe.predicate, ())
            probe.body = self._expand_in(probe.body, ())

    # ------------------------------------------------------------------ checks
    def _check_body(self, m: ast.MacroDef) -> None:
        """``return`` cannot leave a macro, nor ``break``/``continue`` a loop
        outside it: the expansion sits inside the caller's code."""
        def visit(node: ast.Node, loops: int) -> None:
            if isinstance(node, ast.Return):
                self.diags.error(f"'return' is not allowed in macro '{m.name}'", node.span,
                                 hints=["end the body with the value, without ';'"])
            elif isinstance(node, (ast.Break, ast.Continue)) and loops == 0:
                word = "break" if isinstance(node, ast.Break) else "continue"
                self.diags.error(f"'{word}' outside of a loop in macro '{m.name}'", node.span)
            inner = loops + isinstance(node, (ast.While, ast.ForMap, ast.ForRange))
            for child in node.children():
                visit(child, inner)
        visit(m.body, 0)
        names = [p.name for p in m.params]
        for i, p in enumerate(m.params):
            if p.name in names[:i]:
                self.diags.error(f"macro '{m.name}' has two parameters named {p.name}", p.span)

    # ------------------------------------------------------------------ expansion
    def _expand_in(self, node: N, stack: tuple[str, ...]) -> N:
        def hook(n: ast.Node) -> ast.Node | None:
            if isinstance(n, ast.Call) and n.name in self.macros:
                return self._expand(self.macros[n.name], n.args, n, stack)
            if isinstance(n, ast.Ident) and n.name in self.macros:
                return self._expand(self.macros[n.name], None, n, stack)
            return None
        return rewrite(node, hook)

    def _expand(self, m: ast.MacroDef, args: list[ast.Expr] | None, call: ast.Expr,
                stack: tuple[str, ...]) -> ast.Expr:
        where = call.name_span if isinstance(call, ast.Call) and call.name_span else call.span
        defined = [Note(f"macro '{m.name}' is defined here", m.span)]
        if m.name in stack:
            chain = " -> ".join(stack + (m.name,))
            self.diags.error(f"macro '{m.name}' expands to itself ({chain})", where, notes=defined)
            return call
        given = args if args is not None else []
        if args is None and m.params:
            self.diags.error(f"macro '{m.name}' takes {_count(len(m.params), 'argument')}; call it as "
                             f"{m.name}({', '.join(p.name for p in m.params)})", where, notes=defined)
            return call
        if len(given) != len(m.params):
            self.diags.error(f"macro '{m.name}' takes {_count(len(m.params), 'argument')}, "
                             f"but {_count(len(given), 'was', 'were', plain=True)} given", where, notes=defined)
            return call
        # The arguments are expanded in the caller's context first.
        given = [self._expand_in(a, stack) for a in given]
        variables: dict[str, str] = {}
        maps: dict[str, str] = {}
        exprs: dict[str, ast.Expr] = {}
        ok = True
        for i, (p, a) in enumerate(zip(m.params, given), 1):
            if p.kind == "$":
                if isinstance(a, ast.Variable):
                    variables[p.name] = a.name
                    continue
                self.diags.error(f"argument {i} of macro '{m.name}' must be a scratch variable "
                                 f"(the parameter is {p.name})", a.span, notes=defined,
                                 hints=[f"assign it to a variable first, or declare the parameter "
                                        f"as {p.name[1:]} to take any expression"])
                ok = False
            elif p.kind == "@":
                if isinstance(a, ast.Map) and a.keys is None:
                    maps[p.name] = a.name
                    continue
                self.diags.error(f"argument {i} of macro '{m.name}' must be a map (the parameter is "
                                 f"{p.name})", a.span, notes=defined)
                ok = False
            else:
                exprs[p.name] = a
        if not ok:
            return call
        self.count += 1
        suffix = f".{m.name}.{self.count}"

        def substitute(n: ast.Node) -> ast.Node | None:
            if isinstance(n, ast.Variable):
                return replace(n, name=variables.get(n.name, n.name + suffix))
            if isinstance(n, ast.Map) and n.name in maps:
                keys = None if n.keys is None else [rewrite(k, substitute) for k in n.keys]
                return replace(n, name=maps[n.name], keys=keys)
            if isinstance(n, ast.Ident) and n.name in exprs:
                return rewrite(exprs[n.name], lambda _: None)  # a fresh copy per use
            return None

        inner = stack + (m.name,)
        stmts = [self._expand_in(rewrite(s, substitute), inner) for s in m.body.stmts]
        result = m.body.result
        value = None if result is None else self._expand_in(rewrite(result, substitute), inner)
        if not stmts and value is not None:
            return value
        return ast.MacroExpansion(m.name, stmts, value, call_span=where, span=call.span)


def split_hygienic(name: str) -> tuple[str, str | None]:
    """(``$tmp``, ``f``) for ``$tmp.f.3``, a macro's renamed variable;
    (name, None) for any other variable."""
    parts = name.split(".")
    if len(parts) == 3 and parts[2].isdigit():
        return parts[0], parts[1]
    return name, None


def _count(n: int, one: str, many: str | None = None, *, plain: bool = False) -> str:
    if plain:
        return f"{n} {one if n == 1 else many}"
    return f"{n} {one}{'' if n == 1 else 's'}"


def expand(program: ast.Program, builtin: Callable[[str], bool], diags: Diagnostics) -> None:
    """Check the program's macro definitions and expand every call."""
    seen: dict[str, ast.MacroDef] = {}
    for m in program.macros:
        if m.name in seen:
            diags.error(f"macro '{m.name}' is defined twice", m.span,
                        notes=[Note("first defined here", seen[m.name].span)])
            continue
        if builtin(m.name):
            diags.error(f"macro '{m.name}' has the name of a builtin", m.span)
            continue
        seen[m.name] = m
    if seen and not diags.has_errors():
        Expander(seen, diags).program(program)
