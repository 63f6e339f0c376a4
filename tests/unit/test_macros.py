"""Macros in the front end: what an expansion becomes, hygiene, and the exact
diagnostics for misuse (their results in the kernel: tests/kernel/test_macros.py)."""

from __future__ import annotations

import pytest

from pytrace.frontend import ast
from tests.conftest import compile_text


def _body(comp) -> list[ast.Stmt]:  # type: ignore[no-untyped-def]
    return comp.program.probes[0].body.stmts


def test_expression_macro_is_substituted(fake_kernel) -> None:  # type: ignore[no-untyped-def]
    comp, diags = compile_text("macro twice(e) { e * 2 }\nBEGIN { @x = twice(3 + 1); }", fake_kernel)
    assert diags.render() == ""
    value = _body(comp)[0].value
    assert value == ast.Binary("*", ast.Binary("+", ast.Integer(3), ast.Integer(1)), ast.Integer(2))


def test_constant_macro_folds_where_a_constant_is_needed(fake_kernel) -> None:  # type: ignore[no-untyped-def]
    comp, diags = compile_text("macro top() { 100 }\nBEGIN { @h = lhist(5, 0, top, 10); unroll(top / 50) { @n++; } }",
                               fake_kernel)
    assert diags.render() == ""


def test_variable_parameter_is_the_callers_variable(fake_kernel) -> None:  # type: ignore[no-untyped-def]
    comp, diags = compile_text("macro inc($v) { $v += 1; $v }\nBEGIN { $a = 1; $b = inc($a); }", fake_kernel)
    assert diags.render() == ""
    exp = _body(comp)[1].value
    assert isinstance(exp, ast.MacroExpansion)
    assert exp.stmts == [ast.Assign(ast.Variable("$a"), "+=", ast.Integer(1))]
    assert exp.result == ast.Variable("$a")


def test_locals_are_renamed_per_expansion(fake_kernel) -> None:  # type: ignore[no-untyped-def]
    comp, diags = compile_text("macro sq(x) { let $t = x; $t * $t }\nBEGIN { $t = 7; @a = sq($t); @b = sq(2); }",
                               fake_kernel)
    assert diags.render() == ""
    first, second = _body(comp)[1].value, _body(comp)[2].value
    assert first.stmts[0].var.name == "$t.sq.1" and second.stmts[0].var.name == "$t.sq.2"
    # The argument keeps the caller's $t: no capture by the macro's own $t.
    assert first.stmts[0].value == ast.Variable("$t")


def test_map_parameter_is_the_callers_map(fake_kernel) -> None:  # type: ignore[no-untyped-def]
    comp, diags = compile_text("macro bump(@m, k) { @m[k]++; }\nBEGIN { bump(@calls, pid); }", fake_kernel)
    assert diags.render() == ""
    stmt = _body(comp)[0].expr.stmts[0]
    assert stmt == ast.ExprStmt(ast.IncDec("++", False, ast.Map("@calls", [ast.Ident("pid")])))
    assert set(comp.maps) == {"@calls"}


def test_macros_call_macros_and_bare_names_call_zero_argument_macros(fake_kernel) -> None:  # type: ignore[no-untyped-def]
    comp, diags = compile_text("macro one() { 1 }\nmacro two() { one + one() }\nBEGIN { @x = two; }", fake_kernel)
    assert diags.render() == ""
    assert _body(comp)[0].value == ast.Binary("+", ast.Integer(1), ast.Integer(1))


def test_no_macro_call_is_left(fake_kernel) -> None:  # type: ignore[no-untyped-def]
    comp, diags = compile_text("macro twice(e) { e * 2 }\nmacro quad(e) { twice(twice(e)) }\n"
                               "BEGIN { @x = quad(3); } END { @y = twice(quad(1)); }", fake_kernel)
    assert diags.render() == ""
    names = {n.name for p in comp.program.probes for n in p.walk() if isinstance(n, (ast.Call, ast.Ident))}
    assert not names & {"twice", "quad"}


BAD = [
    ("recursion", "macro f(x) { g(x) }\nmacro g(y) { f(y) }\nBEGIN { @x = f(1); }", """\
stdin:2:14: error: macro 'f' expands to itself (f -> g -> f)
macro g(y) { f(y) }
             ^
stdin:1:1: note: macro 'f' is defined here
macro f(x) { g(x) }
^~~~~~~~~~~~~~~~~~~"""),
    ("arity", "macro f(x) { x }\nBEGIN { @x = f(1, 2); }", """\
stdin:2:14: error: macro 'f' takes 1 argument, but 2 were given
BEGIN { @x = f(1, 2); }
             ^
stdin:1:1: note: macro 'f' is defined here
macro f(x) { x }
^~~~~~~~~~~~~~~~"""),
    ("bare-name-needs-arguments", "macro f(x, y) { x }\nBEGIN { @x = f; }", """\
stdin:2:14: error: macro 'f' takes 2 arguments; call it as f(x, y)
BEGIN { @x = f; }
             ^
stdin:1:1: note: macro 'f' is defined here
macro f(x, y) { x }
^~~~~~~~~~~~~~~~~~~"""),
    ("variable-parameter", "macro f($x) { $x }\nBEGIN { @x = f(1 + 2); }", """\
stdin:2:16: error: argument 1 of macro 'f' must be a scratch variable (the parameter is $x)
BEGIN { @x = f(1 + 2); }
               ^~~~~
stdin:1:1: note: macro 'f' is defined here
macro f($x) { $x }
^~~~~~~~~~~~~~~~~~
hint: assign it to a variable first, or declare the parameter as x to take any expression"""),
    ("map-parameter", "macro f(@m) { @m[1] = 1; }\nBEGIN { f(@a[1]); }", """\
stdin:2:11: error: argument 1 of macro 'f' must be a map (the parameter is @m)
BEGIN { f(@a[1]); }
          ^~~~~
stdin:1:1: note: macro 'f' is defined here
macro f(@m) { @m[1] = 1; }
^~~~~~~~~~~~~~~~~~~~~~~~~~"""),
    ("hygiene", "macro f() { $leak = 5; }\nBEGIN { f(); @x = $leak; }", """\
stdin:2:19: error: undefined variable $leak
BEGIN { f(); @x = $leak; }
                  ^~~~~"""),
    ("no-capture", "macro f() { $a + 1 }\nBEGIN { $a = 1; @x = f(); }", """\
stdin:1:13: error: undefined variable $a in macro 'f'
macro f() { $a + 1 }
            ^~
hint: a macro's scratch variables are its own: pass the caller's $a as a parameter ($a) to use it"""),
    ("return", "macro f() { return 1 }\nBEGIN { f(); }", """\
stdin:1:13: error: 'return' is not allowed in macro 'f'
macro f() { return 1 }
            ^~~~~~~~
hint: end the body with the value, without ';'"""),
    ("break", "macro f() { break; }\nBEGIN { while (1) { f(); } }", """\
stdin:1:13: error: 'break' outside of a loop in macro 'f'
macro f() { break; }
            ^~~~~"""),
    ("no-value", "macro f() { printf(\"x\\n\"); }\nBEGIN { $x = f(); }", """\
stdin:2:14: error: this expression has no value and cannot be assigned
BEGIN { $x = f(); }
             ^~~"""),
    ("duplicate-parameter", "macro f(x, x) { x }\nBEGIN { @x = f(1, 2); }", """\
stdin:1:12: error: macro 'f' has two parameters named x
macro f(x, x) { x }
           ^"""),
    ("type-error-inside-body", "macro f(x) { x + \"s\" }\nBEGIN { @x = f(1); }", """\
stdin:1:14: error: '+' cannot be applied to int64 and string[2]
macro f(x) { x + "s" }
             ^~~~~~~"""),
]


@pytest.mark.parametrize("script,expected", [pytest.param(s, e, id=i) for i, s, e in BAD])
def test_macro_diagnostics(script: str, expected: str, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    _, diags = compile_text(script, fake_kernel)
    assert diags.render() == expected
    assert diags.has_errors()


def test_expansions_share_no_node(fake_kernel) -> None:  # type: ignore[no-untyped-def]
    """The checker types nodes in place: two expansions (in two probes, where
    `args` differs) must not share one."""
    comp, diags = compile_text("macro seven() { 7 }\nBEGIN { @a = seven; } END { @b = seven; }", fake_kernel)
    assert diags.render() == ""
    first, second = (p.body.stmts[0].value for p in comp.program.probes)
    assert first == second and first is not second
