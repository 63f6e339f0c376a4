"""Parser tests: constructs, the AST they give, spans, and the round trip."""

from __future__ import annotations

import glob
from pathlib import Path

import lark
import pytest

from pytrace.diagnostics import Diagnostics
from pytrace.frontend import ast, printer
from pytrace.frontend.parser import grammar_text, parse
from pytrace.source import SourceFile

ROOT = Path(__file__).resolve().parents[2]
TOOLS = sorted(glob.glob("/usr/sbin/*.bt"))
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.pt"))


def p(text: str) -> ast.Program:
    d = Diagnostics()
    prog = parse(SourceFile("t", text), d)
    assert not d.has_errors(), d.render()
    return prog


def body(text: str) -> list[ast.Stmt]:
    return p(f"BEGIN {{ {text} }}").probes[0].body.stmts


def expr(text: str) -> ast.Expr:
    s = body(f"$x = {text};")[0]
    assert isinstance(s, ast.Assign)
    return s.value


def test_grammar_is_conflict_free() -> None:
    # strict=True turns any shift/reduce conflict or terminal collision into an error.
    lark.Lark(grammar_text(), parser="lalr", strict=True, keep_all_tokens=True)


def test_one_liner_ast() -> None:
    prog = p("tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }")
    probe = prog.probes[0]
    assert [a.raw for a in probe.attach_points] == ["tracepoint:syscalls:sys_enter_openat"]
    assert probe.body.stmts == [ast.Assign(ast.Map("@", [ast.Ident("comm")]), "=", ast.Call("count", []))]


def test_angle_block_is_the_same_as_braces() -> None:
    a = p("tracepoint:syscalls:sys_enter_open < @[comm] = count(); >")
    b = p("tracepoint:syscalls:sys_enter_open { @[comm] = count(); }")
    assert a == b


def test_angle_block_with_comparison_inside() -> None:
    prog = p("BEGIN < if ($x > 1) { @a = $x > 2; } @b = 1 > 0; >")
    assert len(prog.probes[0].body.stmts) == 2


@pytest.mark.parametrize("text,op", [("1 + 2 * 3", "+"), ("1 * 2 + 3", "+"), ("a == b & c", "&"),
                                     ("a << 1 + 2", "<<"), ("a || b && c", "||"), ("a < b == c", "==")])
def test_c_precedence(text: str, op: str) -> None:
    e = expr(text)
    assert isinstance(e, ast.Binary) and e.op == op


def test_predicate_division_and_end() -> None:
    prog = p("kprobe:f / $x / 2 == 1 / { }")
    pred = prog.probes[0].predicate
    assert isinstance(pred, ast.Binary) and pred.op == "=="
    assert isinstance(pred.left, ast.Binary) and pred.left.op == "/"


@pytest.mark.parametrize("text,value", [
    ("10", 10), ("0x1F", 31), ("017", 15), ("1_000_000", 1000000), ("1e6", 1000000), ("10ul", 10),
    ("5ms", 5_000_000), ("2s", 2_000_000_000), ("0", 0), ("-5", -5), ("18446744073709551615", 2**64 - 1),
])
def test_integer_literals(text: str, value: int) -> None:
    assert expr(text) == ast.Integer(value)


@pytest.mark.parametrize("text,value", [
    (r'"a\nb"', "a\nb"), (r'"tab\there"', "tab\there"), (r'"q\"q"', 'q"q'), (r'"\x41\102"', "AB"),
    (r'"back\\slash"', "back\\slash"),
])
def test_string_escapes(text: str, value: str) -> None:
    assert expr(text) == ast.String(value)


def test_casts_and_fields() -> None:
    e = expr("((struct task_struct *)curtask)->parent->pid")
    assert isinstance(e, ast.FieldAccess) and e.name == "pid" and e.arrow
    inner = e.operand
    assert isinstance(inner, ast.FieldAccess) and inner.name == "parent"
    cast = inner.operand
    assert isinstance(cast, ast.Cast) and cast.type_spec == ast.TypeSpec("struct task_struct", 1)
    assert expr("(uint32)$y") == ast.Cast(ast.TypeSpec("uint32"), ast.Variable("$y"))


def test_tuples_and_indexing() -> None:
    assert expr('(1, "a")') == ast.Tuple([ast.Integer(1), ast.String("a")])
    assert expr("(1,)") == ast.Tuple([ast.Integer(1)])
    assert expr("$t.0") == ast.TupleIndex(ast.Variable("$t"), 0)
    assert expr("$kv.0.1") == ast.TupleIndex(ast.TupleIndex(ast.Variable("$kv"), 0), 1)
    assert expr("$p[2]") == ast.Index(ast.Variable("$p"), ast.Integer(2))
    assert expr("@m[1, 2]") == ast.Map("@m", [ast.Integer(1), ast.Integer(2)])


def test_statements() -> None:
    stmts = body("if ($a) { @x++; } else if ($b) { @y--; } else { @z += 2; } "
                 "unroll(3) { $i++; } while ($i < 3) { $i++; continue; } "
                 "for ($kv : @m) { break; } for ($i : 0..10) { } let $q: uint8 = 1; return;")
    kinds = [type(s).__name__ for s in stmts]
    assert kinds == ["If", "Unroll", "While", "ForMap", "ForRange", "Let", "Return"]
    first = stmts[0]
    assert isinstance(first, ast.If) and first.orelse is not None
    assert isinstance(first.orelse.stmts[0], ast.If)


def test_top_level_items() -> None:
    prog = p('#include <linux/sched.h>\nstruct foo { int a; };\nconfig = { max_map_keys = 10; stack_mode = perf }\n'
             'import "x";\nmacro inc($a) { $a + 1 }\nBEGIN,END { }')
    assert [c.kind for c in prog.c_items] == ["directive", "definition"]
    assert prog.config[0].entries[0] == ast.ConfigEntry("max_map_keys", ast.Integer(10))
    assert prog.imports == [ast.Import("x")]
    assert prog.macros[0].body.result == ast.Binary("+", ast.Variable("$a"), ast.Integer(1))
    assert [a.raw for a in prog.probes[0].attach_points] == ["BEGIN", "END"]


@pytest.mark.parametrize("raw", [
    "uprobe:/bin/bash:readline", "uprobe:/lib/x.so:func+8", "profile:hz:99", "interval:ms:100",
    "watchpoint:0x1000:8:rw", "tracepoint:syscalls:sys_enter_*", 'uprobe:"/a b/c":"ns::f"', "kprobe:vfs_*",
    "usdt:/usr/bin/python3:python:function__entry", "u:libc:malloc", "i:s:1", "software:cs:100",
])
def test_attach_points_kept_verbatim(raw: str) -> None:
    assert p(raw + " { }").probes[0].attach_points[0].raw == raw


def test_spans_point_at_source() -> None:
    src = "BEGIN {\n  @x = count();\n}"
    prog = p(src)
    stmt = prog.probes[0].body.stmts[0]
    assert (stmt.span.line, stmt.span.col, stmt.span.text) == (2, 3, "@x = count()")
    assert stmt.value.span.text == "count()"


def test_shebang_is_ignored() -> None:
    prog = p("#!/usr/bin/env pytrace\nBEGIN { }")
    assert prog.c_items == [] and len(prog.probes) == 1


def _roundtrip(text: str, name: str) -> None:
    d = Diagnostics()
    a = parse(SourceFile(name, text), d)
    assert not d.has_errors(), d.render()
    printed = printer.program(a)
    d2 = Diagnostics()
    b = parse(SourceFile("printed", printed), d2)
    assert not d2.has_errors(), d2.render() + "\n" + printed
    assert a == b
    # Printing is a fixed point after one round.
    assert printer.program(b) == printed


@pytest.mark.parametrize("path", TOOLS + EXAMPLES)
def test_roundtrip_files(path: str) -> None:
    _roundtrip(Path(path).read_text(), path)


def test_debian_tools_present() -> None:
    # The tool scripts come with Debian's bpftrace package (.ci/run installs it).
    assert len(TOOLS) >= 30


@pytest.mark.parametrize("text", [
    "BEGIN { $x = - -1; $y = -(-1); $z = !!$a; $w = ~-$b; $v = *&$c; }",
    "BEGIN { $x = $a ? $b ? 1 : 2 : $c ?: 3; $y = (1 + 2) * (3 - (4 - 5)); $z = 1 - (2 - 3); }",
    "BEGIN { $x = sizeof(struct task_struct) + offsetof(struct task_struct, se.cfs_rq) + sizeof($y); }",
    'BEGIN { printf("%s %d\\n", "a\\tb\\"c", 5); @m[1, "x", (2, 3)] = hist(5, 2); delete(@m[1]); }',
    "BEGIN { $p = (int8 **)0; $q = (uint64[4])$r; let $s: string[16]; --$x; $x--; ++@y; }",
])
def test_roundtrip_expressions(text: str) -> None:
    _roundtrip(text, "t")
