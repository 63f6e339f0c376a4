"""The preprocessor subset: conditionals, #define, #include of userspace headers."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import pytest

from pytrace.diagnostics import Diagnostics, Severity
from pytrace.semantic.cexpr import CInt, parse_int_literal
from pytrace.semantic.cpp import DEFAULT_INCLUDE_DIRS, CppResult, default_predefined, evaluate
from pytrace.source import SourceFile

HAVE_SOCKET_H = any(os.path.isfile(os.path.join(d, "sys/socket.h")) for d in DEFAULT_INCLUDE_DIRS)
needs_headers = pytest.mark.skipif(not HAVE_SOCKET_H, reason="userspace headers (libc6-dev) not installed")

KERNEL_HINT = ("kernel headers are not installed; kernel types come from BTF, so remove the "
               "#include or put it under #ifndef BPFTRACE_HAVE_BTF")


def c_items(text: str, name: str = "test.bt") -> list[tuple[str, str, object]]:
    """Split a script's top level the way the parser does: '#' lines (with
    continuations) and struct/union/enum/typedef definitions up to their ';'."""
    sf = SourceFile(name, text)
    items: list[tuple[str, str, object]] = []
    pos = 0
    pattern = re.compile(r"^[ \t]*#|^(?:struct|union|enum|typedef)\b|/\*.*?\*/", re.M | re.S)
    while (m := pattern.search(text, pos)) is not None:
        start = m.start()
        if m.group().startswith("/*"):
            pos = m.end()
            continue
        if m.group().lstrip().startswith("#"):
            end = start
            while True:
                nl = text.find("\n", end)
                end = len(text) if nl < 0 else nl
                if not text[:end].endswith("\\") or nl < 0:
                    break
                end += 1
            items.append(("directive", text[start:end], sf.span(start, end)))
        else:
            depth, end = 0, start
            while end < len(text):
                depth += text[end] == "{"
                depth -= text[end] == "}"
                if text[end] == ";" and depth == 0:
                    break
                end += 1
            end += 1
            items.append(("definition", text[start:end], sf.span(start, end)))
        pos = end
    return items


def run(text: str, *, btf: bool = True, predefined: dict[str, str] | None = None,
        name: str = "test.bt") -> tuple[CppResult, Diagnostics]:
    diags = Diagnostics()
    if predefined is None:
        predefined = default_predefined(btf)
    result = evaluate(c_items(text, name), predefined=predefined,
                      include_dirs=list(DEFAULT_INCLUDE_DIRS), diags=diags)
    return result, diags


def texts(result: CppResult) -> list[str]:
    return [text for text, _ in result.active_definitions]


def messages(diags: Diagnostics) -> list[tuple[str, str, int]]:
    return [(d.severity.value, d.message, d.span.line if d.span else 0) for d in diags]


# -- conditionals --

def test_ifdef_else_nesting() -> None:
    result, diags = run(
        "#ifdef A\n"
        "struct a { int x; };\n"
        "#else\n"
        "#ifndef B\n"
        "struct b { int x; };\n"
        "#else\n"
        "struct c { int x; };\n"
        "#endif\n"
        "struct d { int x; };\n"
        "#endif\n"
        "struct e { int x; };\n",
        predefined={"B": ""})
    assert texts(result) == ["struct c { int x; };", "struct d { int x; };", "struct e { int x; };"]
    assert len(diags) == 0


def test_if_elif_chain_takes_first_true_branch_only() -> None:
    result, diags = run(
        "#define LEVEL 2\n"
        "#if LEVEL == 1\nstruct one {};\n"
        "#elif LEVEL == 2\nstruct two {};\n"
        "#elif LEVEL >= 2\nstruct also_two {};\n"
        "#else\nstruct other {};\n"
        "#endif\n")
    assert texts(result) == ["struct two {};"]
    assert len(diags) == 0


def test_if_expressions() -> None:
    result, diags = run(
        "#define X 3\n"
        "#if defined(X) && defined X && !defined(Y) && X * 2 + 1 == 7 && (X << 2) > 11\n"
        "struct a {};\n#endif\n"
        "#if Y == 0 && !Y\nstruct b {};\n#endif\n"           # unknown identifiers are 0
        "#if 0 && 1 / 0\n#else\nstruct c {};\n#endif\n"      # short-circuit: no division error
        "#if -1 < 0 && 10 / 3 == 3 && 7 % 4 == 3 && (1 ? 2 : 3) == 2\nstruct d {};\n#endif\n"
        "#if 0xff == 255 && 010 == 8 && 'A' == 65\nstruct e {};\n#endif\n"
        "#if defined BPFTRACE_HAVE_BTF\nstruct f {};\n#endif\n"
        "#if X != 3 || X <= 2\nstruct no {};\n#endif\n")
    assert texts(result) == ["struct a {};", "struct b {};", "struct c {};", "struct d {};",
                             "struct e {};", "struct f {};"]
    assert len(diags) == 0


def test_function_like_macros_in_if() -> None:
    result, diags = run(
        "#define PREREQ(maj, min) ((MAJOR << 16) + MINOR >= ((maj) << 16) + (min))\n"
        "#define MAJOR 4\n#define MINOR 2\n"
        "#if PREREQ(4, 1)\nstruct yes {};\n#endif\n"
        "#if PREREQ(4, 3)\nstruct no {};\n#endif\n")
    assert texts(result) == ["struct yes {};"]
    assert len(diags) == 0


def test_nested_group_inside_false_branch_is_skipped_entirely() -> None:
    result, diags = run(
        "#if 0\n#if 1 / 0\n#error never\n#endif\n#include <no/such.h>\nstruct a {};\n"
        "#else\nstruct b {};\n#endif\n")
    assert texts(result) == ["struct b {};"]
    assert len(diags) == 0


# -- macros --

def test_script_defines_and_macro_int() -> None:
    result, diags = run(
        "#define MAX 10\n"
        "#define HEX 0x10\n"
        "#define SHIFT (1 << 3)\n"
        "#define UFLAG (1U<<4)\n"
        "#define NEG -1\n"
        "#define ALIAS MAX\n"
        "#define SUM (MAX + HEX * 2)\n"
        "#define CAST ((int)5)\n"
        "#define MASK (~0U)\n"
        "#define NAME \"text\"\n"
        "#define EMPTY\n"
        "#define SELF SELF\n"
        "#define TWICE(x) ((x) * 2)\n"
        "#define USES_FN TWICE(21)\n"
        "#define GONE 1\n"
        "#undef GONE\n")
    assert len(diags) == 0
    assert result.macros["MAX"] == "10"
    assert result.macros["SHIFT"] == "(1 << 3)"
    assert result.macros["EMPTY"] == ""
    assert "GONE" not in result.macros
    assert "TWICE" not in result.macros
    assert result.function_macros["TWICE"].params == ("x",)
    values = {n: result.macro_int(n) for n in
              ["MAX", "HEX", "SHIFT", "UFLAG", "NEG", "ALIAS", "SUM", "CAST", "MASK", "NAME",
               "EMPTY", "SELF", "USES_FN", "GONE", "TWICE", "UNDEFINED"]}
    assert values == {"MAX": 10, "HEX": 16, "SHIFT": 8, "UFLAG": 16, "NEG": -1, "ALIAS": 10,
                      "SUM": 42, "CAST": 5, "MASK": 0xFFFFFFFF, "NAME": None, "EMPTY": None,
                      "SELF": None, "USES_FN": 42, "GONE": None, "TWICE": None, "UNDEFINED": None}


def test_redefinition_with_a_different_value_warns() -> None:
    result, diags = run("#define A 1\n#define A 1\n#define A 2\n")
    assert messages(diags) == [("warning", "macro 'A' redefined (was '1')", 3)]
    assert result.macro_int("A") == 2


def test_mutually_recursive_macros_terminate() -> None:
    result, _ = run("#define A B\n#define B A\n#define C (C + 1)\n")
    assert (result.macro_int("A"), result.macro_int("B"), result.macro_int("C")) == (None, None, None)


def test_predefined_macros_are_visible() -> None:
    result, _ = run("", btf=True)
    assert result.macro_int("BPFTRACE_HAVE_BTF") == 1
    result, _ = run("", btf=False)
    assert "BPFTRACE_HAVE_BTF" not in result.macros


def test_integer_literal_types() -> None:
    assert parse_int_literal("10") == CInt(10, 32, False)
    assert parse_int_literal("0xffffffff") == CInt(0xFFFFFFFF, 32, True)
    assert parse_int_literal("4294967296") == CInt(4294967296, 64, False)
    assert parse_int_literal("1UL") == CInt(1, 64, True)
    assert parse_int_literal("017") == CInt(15, 32, False)
    assert parse_int_literal("08") is None
    assert parse_int_literal("1.5") is None


# -- includes --

@needs_headers
def test_sys_socket_address_families() -> None:
    result, diags = run("#include <sys/socket.h>\n")
    assert len(diags) == 0
    assert result.includes == ["sys/socket.h"]
    assert result.macros["AF_INET"] == "PF_INET"
    assert [result.macro_int(n) for n in ("AF_INET", "AF_INET6", "AF_UNIX")] == [2, 10, 1]
    assert result.macro_int("SOL_SOCKET") == 1
    # Depends on conditionals over __TIMESIZE/__WORDSIZE from nested headers.
    assert result.macros["SO_TIMESTAMP"] == "SO_TIMESTAMP_OLD"
    assert result.macro_int("SO_TIMESTAMP") == 29
    # Only macros are harvested: SOCK_STREAM is an enum constant re-#defined to itself.
    assert result.macro_int("SOCK_STREAM") is None


@needs_headers
@needs_headers
def test_uapi_header_macros() -> None:
    result, diags = run("#include <linux/sched.h>\n")
    assert len(diags) == 0
    assert result.macro_int("CLONE_VM") == 0x100
    assert result.macro_int("SCHED_FIFO") == 1


def test_missing_header_is_an_error_with_hint() -> None:
    result, diags = run("#include <linux/socket.h>\n#include <net/sock.h>\n")
    assert [(d.message, d.span.line, d.span.col, d.span.text, d.hints) for d in diags] == [
        ("include file not found: 'net/sock.h'", 2, 1, "#include <net/sock.h>", [KERNEL_HINT])]
    assert result.includes == ["linux/socket.h", "net/sock.h"]


def test_quoted_include_searches_the_script_directory(tmp_path: Path) -> None:
    directory = str(tmp_path)
    with open(os.path.join(directory, "consts.h"), "w") as f:
        f.write("#ifndef CONSTS_H\n#define CONSTS_H\n#define ANSWER (40 + 2) /* c */\n#endif\n")
    script = os.path.join(directory, "s.bt")
    text = '#include "consts.h"\n#include "consts.h"\n#include "missing.h"\n'
    with open(script, "w") as f:
        f.write(text)
    result, diags = run(text, name=script)
    assert result.macro_int("ANSWER") == 42
    assert [(d.message, d.span.line) for d in diags] == [("include file not found: 'missing.h'", 3)]


@needs_headers
def test_has_include() -> None:
    result, diags = run('#if __has_include(<sys/socket.h>) && !__has_include("nope/none.h")\n'
                        "struct ok {};\n#endif\n")
    assert texts(result) == ["struct ok {};"]
    assert len(diags) == 0


# -- errors --

def test_unbalanced_conditionals() -> None:
    _, diags = run("#endif\n#else\n#elif 1\n#ifdef X\n#else\n#else\n#endif\n#if 1\n#ifndef Y\n")
    assert messages(diags) == [
        ("error", "#endif without #if", 1),
        ("error", "#else without #if", 2),
        ("error", "#elif without #if", 3),
        ("error", "#else after #else", 6),
        ("error", "unterminated '#if' (missing #endif)", 8),
        ("error", "unterminated '#ifndef' (missing #endif)", 9),
    ]


def test_directive_errors() -> None:
    _, diags = run('#error "need BTF"\n#warning careful\n#pragma once\n#pragma pack(1)\n'
                   "#foo bar\n#if\n#endif\n#if 1 +\n#endif\n#if 1 / 0\n#endif\n#ifdef\n#endif\n"
                   "#define\n#define 3 x\n#include\n#if FOO(1)\n#endif\n#\n#!shebang-like\n")
    assert messages(diags) == [
        ("error", '"need BTF"', 1),
        ("warning", "careful", 2),
        ("error", "invalid preprocessing directive '#foo'", 5),
        ("error", "#if with no expression", 6),
        ("error", "invalid #if expression: expected an expression", 8),
        ("error", "invalid #if expression: division by zero", 10),
        ("error", "macro name missing in #ifdef", 12),
        ("error", "macro name missing in #define", 14),
        ("error", "macro name must be an identifier", 15),
        ("error", '#include expects "FILENAME" or <FILENAME>', 16),
        ("error", "invalid #if expression: function-like macro 'FOO' is not defined", 17),
    ]


def test_error_inside_excluded_group_is_silent() -> None:
    _, diags = run("#ifndef BPFTRACE_HAVE_BTF\n#error no BTF\n#endif\n", btf=True)
    assert len(diags) == 0
    _, diags = run("#ifndef BPFTRACE_HAVE_BTF\n#error no BTF\n#endif\n", btf=False)
    assert messages(diags) == [("error", "no BTF", 2)]


def test_comments_and_continuations_in_directives() -> None:
    result, diags = run("#define A 1 /* one */ // trailing\n#define B (A + \\\n  2)\n"
                        "#if B == 3 // yes\nstruct s {};\n#endif /* done */\n")
    assert len(diags) == 0
    assert result.macros["A"] == "1"
    assert result.macro_int("B") == 3
    assert texts(result) == ["struct s {};"]


# -- Debian's bpftrace tools --

RUNQLEN_TOP = """#!/usr/bin/env bpftrace
/*
 * runqlen.bt	CPU scheduler run queue length as a histogram.
 */

#ifndef BPFTRACE_HAVE_BTF
#include <linux/sched.h>

// Until BTF is available, we'll need to declare some of this struct manually,
// since it isn't available to be #included. This will need maintenance to match
// your kernel version. It is from kernel/sched/sched.h:
struct cfs_rq {
	struct load_weight load;
	unsigned long runnable_weight;
	unsigned int nr_running;
	unsigned int h_nr_running;
};
#endif

BEGIN
{
	printf("Sampling run queue length at 99 Hertz... Hit Ctrl-C to end.\\n");
}
"""

TCPDROP_TOP = """#!/usr/bin/env bpftrace
/*
 * tcpdrop.bt   Trace TCP kernel-dropped packets/segments.
 */

#ifndef BPFTRACE_HAVE_BTF
#include <linux/socket.h>
#include <net/sock.h>
#else
#include <sys/socket.h>
#endif

BEGIN
{
  printf("Tracing tcp drops. Hit Ctrl-C to end.\\n");
}
"""

CFS_RQ = """struct cfs_rq {
	struct load_weight load;
	unsigned long runnable_weight;
	unsigned int nr_running;
	unsigned int h_nr_running;
};"""


def test_items_of_runqlen() -> None:
    assert [kind for kind, _, _ in c_items(RUNQLEN_TOP)] == [
        "directive", "directive", "directive", "definition", "directive"]


@needs_headers
def test_runqlen_with_and_without_btf() -> None:
    result, diags = run(RUNQLEN_TOP, btf=True)
    assert (texts(result), result.includes, len(diags)) == ([], [], 0)
    result, diags = run(RUNQLEN_TOP, btf=False)
    assert (texts(result), result.includes, len(diags)) == ([CFS_RQ], ["linux/sched.h"], 0)
    (_, span), = result.active_definitions
    assert (span.line, span.col) == (12, 1)


@needs_headers
def test_tcpdrop_with_and_without_btf() -> None:
    result, diags = run(TCPDROP_TOP, btf=True)
    assert len(diags) == 0
    assert result.includes == ["sys/socket.h"]
    assert (result.macro_int("AF_INET"), result.macro_int("AF_INET6")) == (2, 10)
    result, diags = run(TCPDROP_TOP, btf=False)
    assert [(d.severity, d.message, d.span.line, d.hints) for d in diags] == [
        (Severity.ERROR, "include file not found: 'net/sock.h'", 8, [KERNEL_HINT])]
    assert result.includes == ["linux/socket.h", "net/sock.h"]
    assert result.macro_int("AF_INET") is None  # <linux/socket.h> does not define it


TOOLS = sorted(glob.glob("/usr/sbin/*.bt"))


@needs_headers
@pytest.mark.skipif(not TOOLS, reason="bpftrace tools not installed")
@pytest.mark.parametrize("path", TOOLS, ids=os.path.basename)
def test_debian_tools_preprocess_cleanly_with_btf(path: str) -> None:
    with open(path) as f:
        text = f.read()
    result, diags = run(text, btf=True, name=path)
    assert diags.render() == ""
    assert result.active_definitions == []


def test_result_cache_is_reused_and_invalidated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    inc = tmp_path / "inc"
    inc.mkdir()
    header = inc / "mine.h"
    header.write_text("#define VALUE 7\n")
    text = "#include <mine.h>\n"
    src = SourceFile("stdin", text)
    items = [("directive", text.strip(), src.span(0, len(text) - 1))]
    cache = str(tmp_path / "cache")

    def run_once() -> int | None:
        d = Diagnostics()
        r = evaluate(items, predefined={}, include_dirs=[str(inc)], diags=d, cache_dir=cache)
        assert not d.has_errors()
        return r.macro_int("VALUE")

    assert run_once() == 7
    stored = list((tmp_path / "cache").glob("cpp-*.pickle"))
    assert len(stored) == 1
    assert run_once() == 7                      # served from the cache
    header.write_text("#define VALUE 8  \n")    # a changed header (size and mtime) invalidates it
    assert run_once() == 8
