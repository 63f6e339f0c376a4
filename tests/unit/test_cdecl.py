"""C definitions: parsing, x86_64 layout (checked against gcc) and diagnostics."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pytrace.diagnostics import Diagnostics
from pytrace.semantic.cdecl import CDecls, parse_definitions
from pytrace.semantic.types import (I8, I16, I64, U8, U32, U64, VOID, ArrayType, EnumType, Field,
                                    PointerType, StructType, Type)
from pytrace.source import SourceFile

LOAD_WEIGHT = StructType("struct", "load_weight",
                         (Field("weight", U64, 0), Field("inv_weight", U32, 8)), 16, 8)
EXTERNAL: dict[tuple[str, str], Type] = {
    ("struct", "load_weight"): LOAD_WEIGHT,
    ("typedef", "ktime_t"): I64,
    ("enum", "ext_state"): EnumType("ext_state", 32, False),
}


def resolve(kind: str, name: str) -> Type | None:
    return EXTERNAL.get((kind, name))


def definitions(text: str) -> list[tuple[str, object]]:
    """Top-level definitions of ``text``: from a struct/union/enum/typedef at the
    start of a line up to the ';' that ends it."""
    sf = SourceFile("defs.bt", text)
    out: list[tuple[str, object]] = []
    end = 0
    for m in re.finditer(r"^(?:struct|union|enum|typedef)\b", text, re.M):
        if m.start() < end:
            continue
        depth, end = 0, m.start()
        while end < len(text) and not (text[end] == ";" and depth == 0):
            depth += text[end] == "{"
            depth -= text[end] == "}"
            end += 1
        end = min(end + 1, len(text))
        out.append((text[m.start():end], sf.span(m.start(), end)))
    return out


def parse(text: str, constants: dict[str, int] | None = None) -> tuple[CDecls, Diagnostics]:
    diags = Diagnostics()
    decls = parse_definitions(definitions(text), resolve, diags,
                              constants=(constants or {}).get)
    return decls, diags


def errors(diags: Diagnostics) -> list[tuple[str, int, int, str]]:
    return [(d.message, d.span.line, d.span.col, d.span.text) for d in diags]


# -- layout against gcc --

LAYOUT_CASES = """
struct s_pad { char a; int b; char c; long d; short e; };
struct s_inner { char x; long y; };
struct s_nested { char a; struct s_inner in; char b; struct s_inner arr[2]; };
struct s_arrays { char name[5]; int m[2][3]; short s; char tail[]; };
struct s_bits { unsigned int a:3; unsigned int b:30; unsigned char c:4; unsigned char d:5;
                long long e:40; int f; short g:9; _Bool h:1; };
union u_mixed { char c; int i; long l; short s[5]; };
struct __attribute__((packed)) s_packed { char a; int b; short c; long d; };
struct s_packed_after { char a; int b; unsigned long long c; } __attribute__((packed));
struct s_aligned { char a; int b __attribute__((aligned(16))); char c; } __attribute__((aligned(32)));
struct s_anon { int kind; union { int i; char c[7]; struct { short x, y; }; }; char z; };
struct s_ptrs { char c; int (*fn)(int, char *); void **pp; char *arr[3]; int (*pa)[4]; };
struct __attribute__((packed)) s_packed_bits { char a; int b:4; int c:30; unsigned short d:1; };
struct s_zero_width { char a; int :0; char b; int :5; char c; long long d:1; };
typedef unsigned short u16t;
enum e_small { E_A, E_B = 5 };
struct s_typedefs { u16t x; enum e_small e; char c; u16t arr[3]; };
union u_bits { int a:3; char b; unsigned long long c:33; };
struct s_inline { struct s_inline_in { char p; short q; } in; char r; };
struct s_words { unsigned u; long long ll; unsigned long long int ulli; signed char sc; _Bool b;
                 long unsigned lu; short int si; };
struct s_member_packed { char a; int b __attribute__((packed)); char c; };
struct s_unaligned_bits { char a; short b:12; char c; int d:20; int e:20; };
struct s_alignas { char a; _Alignas(8) char b; char c; };
struct s_tail { long a; char b; };
struct s_of_tail { struct s_tail t; char c; };
typedef struct { char a; int b; } anon_t;
struct s_anon_typedef { anon_t one; anon_t two[2]; char z; };
struct s_packed_aligned { char a; int b; } __attribute__((packed, aligned(4)));
struct s_sizeof { char buf[sizeof(struct s_pad) + sizeof(anon_t)]; int n[E_B]; };
struct __attribute__((packed)) s_packed_zero { char a; int :0; char b; short c:3; };
struct s_enum_bits { enum e_small k:3; unsigned long long big:63; char x; };
union __attribute__((packed)) u_packed { char a; int b; short c[3]; };
struct s_holds_packed { char a; struct s_packed p; char b; union u_packed u; };
struct s_flex_bits { int a:3; char data[]; };
struct s_empty_union { union { }; char after; };
"""


def _records(decls: CDecls) -> tuple[list[str], dict[str, tuple[int, ...]]]:
    """The C expressions to print and the values our layout predicts for them."""
    lines: list[str] = []
    expected: dict[str, tuple[int, ...]] = {}

    def walk(ctype: str, key: str, st: StructType, prefix: str, base: int) -> None:
        key = key.replace(" ", ":")
        for f in st.fields or ():
            if not f.name:  # anonymous member: C names its fields directly
                assert isinstance(f.type, StructType)
                walk(ctype, key, f.type, prefix, base + f.offset)
                continue
            path = prefix + f.name
            if f.bitfield is not None:
                lines.append(f'bits("{key}.{path}", ({{ {ctype} v; memset(&v, 0, sizeof v); '
                             f'v.{path} = -1; v; }}), sizeof({ctype}));')
                expected[f"{key}.{path}"] = ((base + f.offset) * 8 + f.bitfield[0], f.bitfield[1])
            else:
                lines.append(f'printf("{key}.{path} %zu\\n", offsetof({ctype}, {path}));')
                expected[f"{key}.{path}"] = (base + f.offset,)
                if isinstance(f.type, StructType) and f.type.fields is not None:
                    walk(ctype, key, f.type, path + ".", base + f.offset)

    for key, st in decls.structs.items():
        label = key.replace(" ", ":")
        lines.append(f'printf("{label} %zu %zu\\n", sizeof({key}), _Alignof({key}));')
        expected[label] = (st.size, st.align)
        walk(key, key, st, "", 0)
    for name, t in decls.typedefs.items():
        if isinstance(t, StructType):
            lines.append(f'printf("{name} %zu %zu\\n", sizeof({name}), _Alignof({name}));')
            expected[name] = (t.size, t.align)
    for key, et in decls.enums.items():
        label = key.replace(" ", ":")
        lines.append(f'printf("{label} %zu %zu\\n", sizeof({key}), _Alignof({key}));')
        expected[label] = (et.size, et.align)
    return lines, expected


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_layouts_match_gcc(tmp_path: Path) -> None:
    decls, diags = parse(LAYOUT_CASES)
    assert diags.render() == ""
    assert len(decls.structs) == 32
    lines, expected = _records(decls)
    program = tmp_path / "layout.c"
    program.write_text(
        "#include <stdio.h>\n#include <stddef.h>\n#include <string.h>\n"
        + LAYOUT_CASES
        + "\n#define bits(name, value, size) do { __typeof__(value) v_ = (value); "
        "const unsigned char *p_ = (const void *)&v_; int first_ = -1, count_ = 0; "
        "for (size_t i_ = 0; i_ < (size) * 8; i_++) if (p_[i_ / 8] >> (i_ % 8) & 1) "
        "{ if (first_ < 0) first_ = i_; count_++; } "
        "printf(\"%s %d %d\\n\", name, first_, count_); } while (0)\n"
        "int main(void) {\n" + "\n".join(lines) + "\nreturn 0;\n}\n")
    binary = tmp_path / "layout"
    subprocess.run(["gcc", "-w", "-o", str(binary), str(program)], check=True)
    output = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
    actual = {}
    for line in output.splitlines():
        name, *values = line.split()
        actual[name] = tuple(int(v) for v in values)
    assert actual == expected


# -- exact layouts (no compiler needed) --

def test_runqlen_cfs_rq_uses_resolved_struct() -> None:
    decls, diags = parse("""struct cfs_rq {
	struct load_weight load;
	unsigned long runnable_weight;
	unsigned int nr_running;
	unsigned int h_nr_running;
};""")
    assert len(diags) == 0
    assert decls.structs["struct cfs_rq"] == StructType("struct", "cfs_rq")
    st = decls.structs["struct cfs_rq"]
    assert (st.fields, st.byte_size, st.byte_align) == ((
        Field("load", LOAD_WEIGHT, 0), Field("runnable_weight", U64, 16),
        Field("nr_running", U32, 24), Field("h_nr_running", U32, 28)), 32, 8)


def test_unknown_external_type_points_at_the_type() -> None:
    decls, diags = parse("struct nameidata {\n        struct path     path;\n"
                         "        struct qstr     last;\n        // [...]\n};")
    assert errors(diags) == [
        ("unknown type 'struct path'", 2, 9, "struct path"),
        ("unknown type 'struct qstr'", 3, 9, "struct qstr"),
    ]
    assert "struct nameidata" in decls.structs


def test_bitfield_fields() -> None:
    decls, diags = parse("struct b { unsigned int a:3; unsigned int b:30; unsigned char c:4; "
                         "long long e:40; int :0; char z; };")
    assert len(diags) == 0
    st = decls.structs["struct b"]
    assert st.fields == (
        Field("a", U32, 0, (0, 3)), Field("b", U32, 4, (0, 30)), Field("c", U8, 8, (0, 4)),
        Field("e", I64, 8, (4, 40)), Field("z", I8, 16))
    assert (st.size, st.align) == (24, 8)


def test_pointers_arrays_and_placeholders() -> None:
    decls, diags = parse("struct node { struct node *next; struct task_struct **tasks; int (*cb)(void);"
                         " char names[2][16]; unsigned char flex[]; };")
    assert len(diags) == 0
    st = decls.structs["struct node"]
    assert [(f.name, f.type, f.offset) for f in st.fields or ()] == [
        ("next", PointerType(StructType("struct", "node")), 0),
        ("tasks", PointerType(PointerType(StructType("struct", "task_struct"))), 8),
        ("cb", PointerType(VOID), 16),
        ("names", ArrayType(ArrayType(I8, 16), 2), 24),
        ("flex", ArrayType(U8, 0), 56),
    ]
    assert st.fields[0].type.pointee.fields is None  # type: ignore[union-attr]
    assert st.size == 56


def test_enums_values_and_underlying_types() -> None:
    decls, diags = parse(
        "enum color { RED, GREEN = 5, BLUE, MIXED = GREEN * 2 + (1 << 3), LAST = sizeof(int) };\n"
        "enum neg { MINUS = -1, PLUS = 1 };\n"
        "enum big { HUGE = 0x100000000 };\n"
        "enum { ANON_A = 7, ANON_B = MAXV };\n"
        "enum __attribute__((packed)) small { S1 = 200 };\n",
        constants={"MAXV": 99})
    assert len(diags) == 0
    color = EnumType("color", 32, False)
    assert decls.enums == {"enum color": color, "enum neg": EnumType("neg", 32, True),
                           "enum big": EnumType("big", 64, False), "enum small": EnumType("small", 8, False)}
    assert {k: v for k, (v, _) in decls.enum_values.items()} == {
        "RED": 0, "GREEN": 5, "BLUE": 6, "MIXED": 18, "LAST": 4, "MINUS": -1, "PLUS": 1,
        "HUGE": 0x100000000, "ANON_A": 7, "ANON_B": 99, "S1": 200}
    assert decls.enum_values["BLUE"] == (6, color)
    assert decls.enum_values["ANON_A"][1] == EnumType("", 32, False)


def test_typedefs() -> None:
    decls, diags = parse(
        "typedef unsigned int uint, *uint_p;\n"
        "typedef struct { int x; } point_t;\n"
        "typedef struct named { char c; } named_t;\n"
        "typedef int (*handler_t)(int);\n"
        "typedef char name_t[16];\n"
        "typedef enum ext_state st_t;\n"
        "typedef struct later later_t;\n"
        "struct user { uint a; uint_p p; point_t pt; named_t n; handler_t h; name_t nm; st_t s;"
        " ktime_t t; u32 k; };\n")
    assert len(diags) == 0
    assert decls.typedefs["uint"] == U32
    assert decls.typedefs["uint_p"] == PointerType(U32)
    assert decls.typedefs["handler_t"] == PointerType(VOID)
    assert decls.typedefs["name_t"] == ArrayType(I8, 16)
    assert decls.typedefs["named_t"] is decls.structs["struct named"]
    assert decls.typedefs["later_t"] == StructType("struct", "later")
    st = decls.structs["struct user"]
    assert [(f.name, f.offset) for f in st.fields or ()] == [
        ("a", 0), ("p", 8), ("pt", 16), ("n", 20), ("h", 24), ("nm", 32), ("s", 48), ("t", 56), ("k", 64)]
    assert (st.size, st.align) == (72, 8)


def test_macro_constants_in_array_sizes() -> None:
    decls, diags = parse("struct t { char comm[TASK_COMM_LEN]; int v[N * 2]; };",
                         constants={"TASK_COMM_LEN": 16, "N": 3})
    assert len(diags) == 0
    assert decls.structs["struct t"].size == 40


def test_anonymous_members_are_searchable() -> None:
    decls, _ = parse("struct a { int k; union { int i; struct { short x, y; }; }; };")
    st = decls.structs["struct a"]
    assert st.field_names() == ["k", "i", "x", "y"]
    assert st.field("y") == Field("y", I16, 6)


# -- diagnostics --

def test_syntax_errors_have_precise_spans() -> None:
    _, diags = parse("struct a { int x int y; };\nstruct b { int z; }\n")
    assert errors(diags) == [
        ("expected ';', found 'int'", 1, 18, "int"),
        ("expected ';' after the definition", 2, 20, ""),
    ]


def test_member_errors_recover_and_continue() -> None:
    decls, diags = parse(
        "struct bad { foo_t x; int y:40; int z:0; unsigned int ok; int ok; int w:-1; "
        "struct bad self; void v; float f; };")
    assert [(d.severity.value, d.message, d.span.text) for d in diags] == [
        ("error", "unknown type name 'foo_t'", "foo_t"),
        ("error", "width of bit-field 'y' (40 bits) exceeds the width of its type (32 bits)", "40"),
        ("error", "named bit-field 'z' has zero width", "0"),
        ("error", "bit-field 'w' has negative width (-1)", "-"),
        ("error", "incomplete type 'struct bad'", "struct bad"),
        ("error", "field 'v' has incomplete type 'void'", "v"),
        ("warning", "floating-point type 'float' is treated as an opaque integer of the same size", "float"),
        ("error", "duplicate member 'ok'", "ok"),
    ]
    assert [f.name for f in decls.structs["struct bad"].fields or ()] == ["ok", "ok", "f"]


def test_redefinitions() -> None:
    _, diags = parse("struct a { int x; };\nstruct a { int y; };\nenum e { X };\nenum f { X };\n"
                     "typedef int t;\ntypedef int t;\ntypedef long t;\n")
    assert errors(diags) == [
        ("redefinition of 'struct a'", 2, 8, "a"),
        ("redefinition of enumerator 'X'", 4, 10, "X"),
        ("typedef redefinition with different types ('int64' vs 'int32')", 7, 14, "t"),
    ]
    assert diags.items[0].notes[0].span.line == 1


def test_constant_expression_errors() -> None:
    _, diags = parse("struct a { char b[UNKNOWN]; };\nstruct c { char d[-1]; };\nenum e { A = 1 / 0 };\n"
                     "struct f { int g __attribute__((aligned(3))); };\n")
    assert errors(diags) == [
        ("use of undeclared identifier 'UNKNOWN'", 1, 19, "UNKNOWN"),
        ("array size is negative (-1)", 2, 18, "["),
        ("division by zero", 3, 16, "/"),
        ("requested alignment 3 is not a positive power of 2", 4, 33, "aligned"),
    ]


def test_variable_declarations_are_ignored_with_a_warning() -> None:
    decls, diags = parse("struct v { int a; } var;")
    assert [(d.severity.value, d.message) for d in diags] == [
        ("warning", "declaration of 'var' is ignored: only types can be defined outside probes")]
    assert "struct v" in decls.structs


def test_unknown_enum_type() -> None:
    _, diags = parse("struct s { enum nope e; enum ext_state ok; };")
    assert errors(diags) == [("unknown type 'enum nope'", 1, 12, "enum nope")]
