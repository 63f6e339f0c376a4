"""Tests for pytrace.semantic.formats.

The tables here were recorded from bpftrace 0.17 (/usr/bin/bpftrace).  The pure
tests check our parser, checker and renderer against those recordings; the
tests marked ``kernel`` run bpftrace again and check that it still prints / rejects
exactly what the tables say (they need root, and skip only when bpftrace is
missing).
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from pytrace.semantic.formats import (
    ArgProblem,
    Conversion,
    FormatProblem,
    Literal,
    check_args,
    check_time_format,
    hex_format_buffer,
    parse_format,
    render,
    render_bytes,
    render_time,
)
from pytrace.semantic.types import (
    BOOL,
    I64,
    U32,
    U64,
    U8,
    VOID,
    AggKind,
    AggregationType,
    ArrayType,
    BufferType,
    PointerType,
    StackType,
    StringType,
    StructType,
    SymbolKind,
    SymbolType,
    TupleType,
)

BPFTRACE = "/usr/bin/bpftrace"
needs_bpftrace = pytest.mark.skipif(not os.path.exists(BPFTRACE), reason="bpftrace is not installed")


def bt_literal(s: str) -> str:
    """A bpftrace string literal for ``s``."""
    esc = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{esc}"'


def run_bpftrace(program: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([BPFTRACE, "-e", program], capture_output=True, timeout=120)


def bpftrace_errors(stderr: bytes) -> str:
    # 0.17 always complains about RLIMIT_MEMLOCK on this kernel; that is not our error.
    lines = stderr.decode(errors="replace").splitlines()
    return "\n".join(line for line in lines if "ERROR" in line and "RLIMIT_MEMLOCK" not in line)


# ----------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------


def conv(start, end, conv, flags="", width=None, precision=None, length="", text="", swallowed=False):
    return Conversion(start, end, flags, width, False, precision, length, conv, text, swallowed)


def test_parse_plain_conversions_and_offsets():
    segs, problems = parse_format("pid %d comm %s\n")
    assert problems == []
    assert segs == [
        Literal(0, 4, "pid "),
        conv(4, 6, "d", text="%d"),
        Literal(6, 12, " comm "),
        conv(12, 14, "s", text="%s"),
        Literal(14, 15, "\n"),
    ]


def test_parse_flags_width_precision_length():
    segs, problems = parse_format("%-05ld%.3s%8.2x%0d%hhu%zX%tp%llo")
    assert problems == []
    assert segs == [
        conv(0, 6, "d", flags="-0", width=5, length="l", text="%-05ld"),
        conv(6, 10, "s", precision=3, text="%.3s"),
        conv(10, 15, "x", width=8, precision=2, text="%8.2x"),
        conv(15, 18, "d", flags="0", text="%0d"),
        conv(18, 22, "u", length="hh", text="%hhu"),
        conv(22, 25, "X", length="z", text="%zX"),
        conv(25, 28, "p", length="t", text="%tp"),
        conv(28, 32, "o", length="ll", text="%llo"),
    ]
    c = segs[0]
    assert (c.spec, c.kind, c.bare) == ("ld", "integer", False)


def test_parse_buffer_conversions_prefer_longest():
    segs, _ = parse_format("%r %rx %rh %ry")
    convs = [s for s in segs if isinstance(s, Conversion)]
    assert [(c.conv, c.start, c.end, c.kind) for c in convs] == [
        ("r", 0, 2, "buffer"), ("rx", 3, 6, "buffer"), ("rh", 7, 10, "buffer"), ("r", 11, 13, "buffer")]
    assert segs[-1] == Literal(13, 14, "y")


def test_parse_percent_percent_depends_on_position():
    # Before the last conversion snprintf turns %% into %; after it 0.17 prints it raw.
    segs, problems = parse_format("50%% of %d%%")
    assert segs == [Literal(0, 8, "50% of "), conv(8, 10, "d", text="%d"), Literal(10, 12, "%%")]
    assert problems == [FormatProblem(
        10, 12, "bpftrace 0.17 prints '%%' after the last conversion as '%%', not '%'", "warning")]


def test_parse_no_conversions_is_printed_verbatim():
    segs, problems = parse_format("100%%\n")
    assert segs == [Literal(0, 6, "100%%\n")]
    assert [p.severity for p in problems] == ["warning"]


def test_parse_swallowed_conversion():
    segs, problems = parse_format("[%%d]")
    assert segs == [Literal(0, 2, "[%"), conv(2, 4, "d", text="%d", swallowed=True), Literal(4, 5, "]")]
    assert problems == [FormatProblem(
        1, 4,
        "bpftrace 0.17 reads '%%d' as '%' followed by the conversion '%d': it takes an "
        "argument but prints '%d' and not the argument", "warning")]


def test_parse_triple_percent_is_escape_then_conversion():
    segs, problems = parse_format("[%%%d]")
    assert problems == []
    assert segs == [Literal(0, 3, "[%"), conv(3, 5, "d", text="%d"), Literal(5, 6, "]")]


@pytest.mark.parametrize("spec", ["%+d", "% d", "%#x", "%i", "%e", "%*d", "%Ld", "%lc", "%ls", "%.d"])
def test_parse_specs_017_does_not_know_are_text(spec):
    segs, problems = parse_format(spec)
    assert segs == [Literal(0, len(spec), spec)]
    assert problems == [FormatProblem(
        0, len(spec),
        f"'{spec}' is not a bpftrace 0.17 conversion (those are %d %u %x %X %o %p (with an "
        "optional hh h l ll j z t), %c %s %r %rx %rh); it is printed as is", "warning")]


def test_parse_unknown_spec_before_a_conversion_is_an_error():
    segs, problems = parse_format("x%+d %d")
    assert segs == [Literal(0, 5, "x%+d "), conv(5, 7, "d", text="%d")]
    assert problems == [FormatProblem(
        1, 4,
        "'%+d' is not a bpftrace 0.17 conversion (those are %d %u %x %X %o %p (with an "
        "optional hh h l ll j z t), %c %s %r %rx %rh); before a later conversion it garbles "
        "the output; write '%%' for a literal '%'")]


def test_parse_percent_text_before_a_conversion():
    # "50% done %d": glibc would read "% d" as a conversion and eat the argument.
    _, problems = parse_format("50% done %d")
    assert [(p.start, p.end, p.severity) for p in problems] == [(2, 5, "error")]
    # "%)" is no conversion at all: glibc prints it as written.
    _, problems = parse_format("(%) %d")
    assert problems == [FormatProblem(
        1, 2, "lone '%' before a conversion; write '%%' for a literal '%'", "warning")]
    # "%5%d": the stray spec runs into the conversion's '%'.
    _, problems = parse_format("%5%d")
    assert [(p.start, p.end, p.severity) for p in problems] == [(0, 2, "error")]


def test_parse_trailing_lone_percent():
    segs, problems = parse_format("abc%")
    assert segs == [Literal(0, 4, "abc%")]
    assert problems == [FormatProblem(
        3, 4, "lone '%' at the end of the format string is printed as is", "warning")]


def test_parse_buffer_conversion_with_width_warns():
    _, problems = parse_format("%5r|%-rx")
    assert problems == [
        FormatProblem(0, 3, "'%5r': bpftrace 0.17 supports no flags, width or precision on %r "
                      "and prints the specifier literally", "warning"),
        FormatProblem(4, 8, "'%-rx': bpftrace 0.17 supports no flags, width or precision on %rx "
                      "and prints the specifier literally", "warning"),
    ]


def test_parse_segments_tile_the_string():
    fmt = "a%%b%-3.2sc%%%ld%%%%d%5r%"
    segs, _ = parse_format(fmt)
    assert segs[0].start == 0 and segs[-1].end == len(fmt)
    assert all(a.end == b.start for a, b in zip(segs, segs[1:]))


# ----------------------------------------------------------------------------
# Argument checking
# ----------------------------------------------------------------------------

TASK = StructType("struct", "task_struct")
STR4 = StringType(4)

# (function, format, setup statement, [(bpftrace expression, our type)], 0.17's error or None)
CHECK_CASES = [
    ("printf", "%d", "", [('"abc"', STR4)],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("printf", "%c", "", [('"abc"', STR4)],
     "printf: %c specifier expects a value of type integer (string supplied)"),
    ("printf", "%p", "", [('"abc"', STR4)],
     "printf: %p specifier expects a value of type integer (string supplied)"),
    ("printf", "%-5ld", "", [('"abc"', STR4)],
     "printf: %ld specifier expects a value of type integer (string supplied)"),
    ("printf", "%s", "", [("5", I64)],
     "printf: %s specifier expects a value of type string (integer supplied)"),
    ("printf", "%s", "", [("(uint8*)16", PointerType(U8))],
     "printf: %s specifier expects a value of type string (integer supplied)"),
    ("printf", "%s", "", [("pid", U32)],
     "printf: %s specifier expects a value of type string (integer supplied)"),
    ("printf", "%s", "", [("1 == 1", BOOL)],
     "printf: %s specifier expects a value of type string (integer supplied)"),
    ("printf", "%x", "", [("(uint8*)16", PointerType(U8))], None),
    ("printf", "%p", "", [("(uint8*)16", PointerType(U8))], None),
    ("printf", "%d", "", [("curtask", PointerType(TASK))], None),
    ("printf", "%p", "", [("65", I64)], None),
    ("printf", "%c", "", [("65", I64)], None),
    ("printf", "%d", "", [("1 == 1", BOOL)], None),
    ("printf", "%lu", "", [("nsecs", U64)], None),
    ("printf", "%-5hhx", "", [("300", I64)], None),
    ("printf", "%s", "", [("comm", StringType(16))], None),
    ("printf", "%s", "", [('buf("ab", 2)', BufferType(2))],
     "printf: %s specifier expects a value of type string (buffer supplied)"),
    ("printf", "%d", "", [('buf("ab", 2)', BufferType(2))],
     "printf: %d specifier expects a value of type integer (buffer supplied)"),
    ("printf", "%r", "", [('"ab"', StringType(3))],
     "printf: %r specifier expects a value of type buffer (string supplied)"),
    ("printf", "%rx", "", [("65", I64)],
     "printf: %rx specifier expects a value of type buffer (integer supplied)"),
    ("printf", "%rh", "", [('buf("ab", 2)', BufferType(2))], None),
    ("printf", "%d", "", [("(1, 2)", TupleType((I64, I64)))],
     "printf: %d specifier expects a value of type integer (tuple supplied)"),
    ("printf", "%s", "", [('(1, "a")', TupleType((I64, StringType(2))))],
     "printf: %s specifier expects a value of type string (tuple supplied)"),
    ("printf", "%s", "", [("kstack", StackType())], None),
    ("printf", "%d", "", [("kstack", StackType())],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("printf", "%d", "", [("ustack", StackType(user=True))],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("printf", "%s", "", [("ksym(0)", SymbolType(SymbolKind.KSYM))], None),
    ("printf", "%d", "", [("ksym(0)", SymbolType(SymbolKind.KSYM))],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("printf", "%d", "", [("usym(0)", SymbolType(SymbolKind.USYM, 16))],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("printf", "%s", "", [("username", SymbolType(SymbolKind.USERNAME))], None),
    ("printf", "%d", "", [("username", SymbolType(SymbolKind.USERNAME))],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("printf", "%d", "", [("ntop(0)", SymbolType(SymbolKind.INET, 24))],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("printf", "%d", "", [('strftime("%H", 0)', SymbolType(SymbolKind.TIMESTAMP, 16))],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("printf", "%d", "", [("probe", SymbolType(SymbolKind.PROBE))],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("printf", "%d", "", [("cgroup_path(1)", SymbolType(SymbolKind.CGROUP_PATH, 16))],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("printf", "%d", "", [("strerror(1)", SymbolType(SymbolKind.STRERROR))],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("printf", "%d", "", [("macaddr(0)", SymbolType(SymbolKind.MACADDR, 6))],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("printf", "%d", "", [("exit()", VOID)],
     "printf: %d specifier expects a value of type integer (none supplied)"),
    ("printf", "%d", "@c = count();", [("@c", AggregationType(AggKind.COUNT))],
     "printf: %d specifier expects a value of type integer (count supplied)"),
    ("printf", "%d", "@c = hist(5);", [("@c", AggregationType(AggKind.HIST, False, (5,)))],
     "printf: %d specifier expects a value of type integer (hist supplied)"),
    ("printf", "%s", "@c = sum(5);", [("@c", AggregationType(AggKind.SUM, True))],
     "printf: %s specifier expects a value of type string (sum supplied)"),
    ("printf", "%d", "", [("*curtask", TASK)],
     "printf: %d specifier expects a value of type integer (record supplied)"),
    ("printf", "%s", "", [("curtask->signal->rlim", ArrayType(StructType("struct", "rlimit"), 16))],
     "printf: %s specifier expects a value of type string (array supplied)"),
    ("printf", "%s %s", "", [('"a"', StringType(2))],
     "printf: Not enough arguments for format string (1 supplied, 2 expected)"),
    ("printf", "%s", "", [('"a"', StringType(2)), ('"b"', StringType(2))],
     "printf: Too many arguments for format string (2 supplied, 1 expected)"),
    ("printf", "%+d", "", [("5", I64)],
     "printf: Too many arguments for format string (1 supplied, 0 expected)"),
    ("printf", "%i", "", [("5", I64)],
     "printf: Too many arguments for format string (1 supplied, 0 expected)"),
    ("printf", "[%%d]", "", [],
     "printf: Not enough arguments for format string (0 supplied, 1 expected)"),
    ("printf", "%d %s %x", "", [('"a"', StringType(2)), ("1", I64), ('"b"', StringType(2))],
     "printf: %d specifier expects a value of type integer (string supplied)"),
    ("cat", "/etc/host%s", "", [("5", I64)],
     "cat: %s specifier expects a value of type string (integer supplied)"),
    ("cat", "/etc/host%s", "", [],
     "cat: Not enough arguments for format string (0 supplied, 1 expected)"),
]


def _our_problems(func, fmt, args):
    return check_args(parse_format(fmt).segments, [t for _, t in args], func)


@pytest.mark.parametrize("func,fmt,setup,args,error017", CHECK_CASES)
def test_check_args_agrees_with_017(func, fmt, setup, args, error017):
    assert (not _our_problems(func, fmt, args)) == (error017 is None)


def test_check_args_messages():
    p = _our_problems("printf", "%d\n", [('"abc"', STR4)])
    assert p == [ArgProblem(0, "printf: %d expects an integer, got string[4]", parse_format("%d").segments[0])]
    [p] = _our_problems("printf", "x%-5s", [("", U32)])
    assert (p.index, p.message, p.conversion.start) == (0, "printf: %-5s expects a string, got uint32", 1)
    [p] = _our_problems("printf", "%r", [("", STR4)])
    assert p.message == "printf: %r expects a buffer (from buf()), got string[4]"
    [p] = _our_problems("printf", "%d", [("", AggregationType(AggKind.COUNT))])
    assert p.message == "printf: %d expects an integer, got count_t (an aggregation, which only print() can show)"
    [p] = _our_problems("cat", "%s", [("", TupleType((I64,)))])
    assert p.message == "cat: %s expects a string, got (int64)"


def test_check_args_count_messages():
    [p] = _our_problems("printf", "%d %d %s", [("", I64)])
    assert p.index == 1 and p.conversion.start == 3
    assert p.message == "printf: not enough arguments for the format string (1 supplied, 3 expected)"
    [p] = _our_problems("system", "echo", [("", I64), ("", I64)])
    assert p == ArgProblem(0, "system: too many arguments for the format string (2 supplied, 0 expected)")


def test_check_args_reports_every_bad_argument():
    problems = _our_problems("printf", "%d %s %r", [("", STR4), ("", I64), ("", BufferType(4))])
    assert [p.index for p in problems] == [0, 1]


def test_check_args_kaddr_is_an_integer():
    # 0.17: printf("%d", kaddr("do_sys_open")) works, "%s" says "(integer supplied)".
    kaddr = SymbolType(SymbolKind.KADDR)
    assert _our_problems("printf", "%d", [("", kaddr)]) == []
    assert len(_our_problems("printf", "%s", [("", kaddr)])) == 1


@needs_bpftrace
@pytest.mark.kernel
@pytest.mark.oracle
@pytest.mark.parametrize("func,fmt,setup,args,error017", CHECK_CASES)
def test_check_table_matches_bpftrace(func, fmt, setup, args, error017):
    call = f"{func}({', '.join([bt_literal(fmt)] + [e for e, _ in args])});"
    result = run_bpftrace(f"BEGIN {{ {setup} {call} exit(); }}")
    errors = bpftrace_errors(result.stderr)
    if error017 is None:
        assert result.returncode == 0 and errors == "", errors
    else:
        assert result.returncode != 0 and error017 in errors, errors


# ----------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------

BUF9 = r'buf("ab\x01\x7f\xff ~\"\\", 9)'
BUF9_V = b'ab\x01\x7f\xff ~"\\'

# (format, bpftrace arguments, decoded values, what 0.17 printed)
RENDER_CASES = [
    ("%d", ["5000000000"], [5000000000], b"705032704"),
    ("%ld", ["5000000000"], [5000000000], b"5000000000"),
    ("%u %x %d", ["-1"] * 3, [-1] * 3, b"4294967295 ffffffff -1"),
    ("%lu %lx %lX %lo", ["-1"] * 4, [-1] * 4,
     b"18446744073709551615 ffffffffffffffff FFFFFFFFFFFFFFFF 1777777777777777777777"),
    ("%hhd %hhu %hd %hu", ["200", "-1", "40000", "-1"], [200, -1, 40000, -1], b"-56 255 -25536 65535"),
    ("%x %X %o", ["255", "3054", "8"], [255, 3054, 8], b"ff BEE 10"),
    ("%zd %td %jd %lld %tu", ["-5"] * 4 + ["-1"], [-5] * 4 + [-1], b"-5 -5 -5 -5 18446744073709551615"),
    ("%d", ["0xffffffff"], [0xFFFFFFFF], b"-1"),
    ("%d %u", ["(uint8)255", "(int8)-1"], [255, -1], b"255 4294967295"),
    ("%ld", ["(uint64)-1"], [2**64 - 1], b"-1"),
    ("[%5d|%-5d|%05d|%-05d]", ["42"] * 4, [42] * 4, b"[   42|42   |00042|42   ]"),
    ("[%.3d|%8.5d|%.0d|%5.0d]", ["5", "-5", "0", "0"], [5, -5, 0, 0], b"[005|  -00005||     ]"),
    ("[%08.3x|%.0x|%010.4o]", ["255", "0", "8"], [255, 0, 8], b"[     0ff||      0010]"),
    ("[%05d|%-05d|%.5d]", ["-5"] * 3, [-5] * 3, b"[-0005|-5   |-00005]"),
    ("[%c|%5c|%-5c|%05c|%.0c]", ["65", "66", "67", "68", "69"], [65, 66, 67, 68, 69],
     b"[A|    B|C    |    D|E]"),
    ("[%c|%c]", ["256+65", "-191"], [321, -191], b"[A|A]"),
    ("[%3c|%-3c|%c]", ["0"] * 3, [0] * 3, b"[  ||]"),
    ("[%c]", ["233"], [233], b"[\xe9]"),
    ("[%p|%p|%p]", ["0", "255", "-1"], [0, 255, -1], b"[(nil)|0xff|0xffffffffffffffff]"),
    ("[%20p|%-20p|%.8p|%020p|%8p|%.3p|%-8p]", ["255"] * 4 + ["0"] * 3, [255] * 4 + [0] * 3,
     b"[                0xff|0xff                |0x000000ff|0x0000000000000000ff|   (nil)|(nil)|(nil)   ]"),
    ("[%hhp|%lp]", ["0x1234"] * 2, [0x1234] * 2, b"[0x1234|0x1234]"),
    ("[%x|%p]", ["(uint8*)16"] * 2, [16, 16], b"[10|0x10]"),
    ("[%d]", ["1 == 1"], [True], b"[1]"),
    ("[%s|%5s|%-5s|%.2s|%5.1s|%-5.1s|%.0s]", ['"abc"'] * 7, ["abc"] * 7,
     b"[abc|  abc|abc  |ab|    a|a    |]"),
    ("[%05s|%0s|%s]", ['"ab"', '"ab"', '""'], ["ab", "ab", ""], b"[   ab|ab|]"),
    ("[%5s|%-5s|%.1s]", ['"é"'] * 3, ["é"] * 3, b"[   \xc3\xa9|\xc3\xa9   |\xc3]"),
    ("[%s]", ['"with %d inside"'], ["with %d inside"], b"[with %d inside]"),
    ("[%r|%rx|%rh]", [BUF9] * 3, [BUF9_V] * 3,
     b'[ab\\x01\\x7f\\xff ~"\\|\\x61\\x62\\x01\\x7f\\xff\\x20\\x7e\\x22\\x5c|61 62 01 7f ff 20 7e 22 5c]'),
    ("[%rh]", ['buf("", 0)'], [b""], b"[]"),
    ("x%ry", ['buf("ab", 2)'], [b"ab"], b"xaby"),
    ("[%5r|%-rx]", ['buf("ab", 2)'] * 2, [b"ab"] * 2, b"[%5r|%-rx]"),
    ("%d 100%%", ["5"], [5], b"5 100%%"),
    ("50%% of %d%%", ["5"], [5], b"50% of 5%%"),
    ("[%%d]", ["5"], [5], b"[%d]"),
    ("100%%", [], [], b"100%%"),
    ("abc%", [], [], b"abc%"),
    ("%+d", [], [], b"%+d"),
    ("[%%%d]", ["7"], [7], b"[%7]"),
    ("[%%rx]", ['buf("ab", 2)'], [b"ab"], b"[%s]"),
    ("[%%5s]", ['"abc"'], ["abc"], b"[%5s]"),
    ("[%6d|%-6d]", ["-42"] * 2, [-42] * 2, b"[   -42|-42   ]"),
    ("[%X]", ["0xdeadbeef"], [0xDEADBEEF], b"[DEADBEEF]"),
    ("[%lx]", ["0x4444444412345678"], [0x4444444412345678], b"[4444444412345678]"),
    ("[%hhx|%hx|%x|%lx]", ["0x123456789"] * 4, [0x123456789] * 4, b"[89|6789|23456789|123456789]"),
    ("[%o|%lo|%ho]", ["-8"] * 3, [-8] * 3, b"[37777777770|1777777777777777777770|177770]"),
    ("[%5.3s|%-6.2s]", ['"abcdef"'] * 2, ["abcdef"] * 2, b"[  abc|ab    ]"),
    ("[%s=%d (%x) %c]", ['"k"', "10", "10", "97"], ["k", 10, 10, 97], b"[k=10 (a) a]"),
    ("%d%%%d", ["1", "2"], [1, 2], b"1%2"),
    ("[%u]", ["0x100000000"], [0x100000000], b"[0]"),
    ("[%-8.3x]", ["10"], [10], b"[00a     ]"),
    ("[%s|%d]", ['"tab\\there"', "(int16)-300"], ["tab\there", -300], b"[tab\there|-300]"),
]


def _line_format(i: int, fmt: str) -> str:
    return f"P{i:02d}:{fmt}\n"


@pytest.mark.parametrize("fmt,bt_args,values,expected", RENDER_CASES)
def test_render_matches_recorded_017_output(fmt, bt_args, values, expected):
    assert render_bytes(parse_format(fmt).segments, values) == expected


def test_render_returns_str_with_surrogates_for_raw_bytes():
    segs = parse_format("[%c|%s]").segments
    text = render(segs, [233, b"\xff"])
    assert text == "[\udce9|\udcff]"
    assert text.encode("utf-8", "surrogateescape") == b"[\xe9|\xff]"


def test_render_value_count_and_kind_errors():
    segs = parse_format("%d %s").segments
    with pytest.raises(ValueError):
        render(segs, [1])
    with pytest.raises(ValueError):
        render(segs, [1, "a", 2])
    with pytest.raises(TypeError):
        render(segs, ["1", "a"])
    with pytest.raises(TypeError):
        render(segs, [1, 2])


def test_hex_format_buffer():
    assert hex_format_buffer(b"a\x00~\x7f", "r") == "a\\x00~\\x7f"
    assert hex_format_buffer(b"a\x00", "rx") == "\\x61\\x00"
    assert hex_format_buffer(b"a\x00", "rh") == "61 00"
    assert hex_format_buffer(b"", "rh") == ""


@needs_bpftrace
@pytest.mark.kernel
@pytest.mark.oracle
def test_render_table_matches_bpftrace():
    """One bpftrace run prints every case; each line must equal render()."""
    assert len(RENDER_CASES) >= 40
    calls = [
        f"printf({', '.join([bt_literal(_line_format(i, fmt))] + bt_args)});"
        for i, (fmt, bt_args, _, _) in enumerate(RENDER_CASES)
    ]
    result = run_bpftrace("BEGIN {\n" + "\n".join(calls) + "\nexit();\n}\n")
    assert result.returncode == 0, bpftrace_errors(result.stderr)
    lines = {line[:4]: line + b"\n" for line in result.stdout.split(b"\n") if line[:1] == b"P"}
    mismatches = []
    for i, (fmt, _, values, expected) in enumerate(RENDER_CASES):
        prefix = f"P{i:02d}:".encode()
        got = lines.get(prefix)
        ours = render_bytes(parse_format(_line_format(i, fmt)).segments, values)
        if got != ours or got != prefix + expected + b"\n":
            mismatches.append((fmt, got, ours))
    assert mismatches == []


# ----------------------------------------------------------------------------
# time() / strftime()
# ----------------------------------------------------------------------------

# 2021-03-04 05:06:07 UTC, a Thursday.
T0 = 1614834367


def test_render_time_utc_fields_and_micros():
    assert render_time("%Y-%m-%d %H:%M:%S.%f", T0, 1_234_567, utc=True) == "2021-03-04 05:06:07.001234"
    assert render_time("%a %b %e %j %Z %z %k|%l|%p", T0, 0, utc=True) == "Thu Mar  4 063 GMT +0000  5| 5|AM"


def test_render_time_nanoseconds_carry_into_seconds():
    # 0.17: time = tv_sec + (tv_nsec + nsecs) / 1e9, micros = (tv_nsec + nsecs) % 1e9 / 1000
    assert render_time("%S.%f", T0, 2_500_000_000, utc=True) == "09.500000"


def test_render_time_local_uses_localtime():
    expected = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(T0))
    assert render_time("%Y-%m-%d %H:%M:%S %Z", T0, 0) == expected


def test_render_time_percent_f_only_for_strftime():
    assert render_time("[%f|%%|%Q|x%]", T0, 5000, utc=True, builtin="time") == "[%f|%|%Q|x%]"
    assert render_time("[%f|%10f|%-f]", T0, 5000, utc=True) == "[000005|      %10f|%-f]"


def test_render_time_failures_return_none():
    assert render_time("", T0, 0) is None
    assert render_time("%Y" * 16, T0, 0, utc=True) is None  # 64 bytes: does not fit
    assert render_time("%Y" * 15 + "abc", T0, 0, utc=True) == "2021" * 15 + "abc"
    with pytest.raises(ValueError):
        render_time("%H", T0, 0, builtin="date")


def test_check_time_format():
    assert check_time_format("%H:%M:%S") == []
    assert check_time_format("%H:%M:%S.%f") == []
    assert check_time_format("%-d %_H %^a %#Z %Ey %Od %5d %%") == []
    assert check_time_format("%H.%f", "time") == [FormatProblem(
        3, 5, "time() does not support %f (only strftime() does); it is printed as is", "warning")]
    assert check_time_format("a%Qb%N") == [
        FormatProblem(1, 3, "'%Q' is not a strftime conversion; it is printed as is", "warning"),
        FormatProblem(4, 6, "'%N' is not a strftime conversion; it is printed as is", "warning"),
    ]
    assert check_time_format("x%%f") == [FormatProblem(
        1, 4, "bpftrace 0.17 replaces the '%f' inside '%%f' with microseconds, which garbles "
        "the format", "warning")]
    assert check_time_format("%10f") == [FormatProblem(
        0, 4, "'%10f': bpftrace only replaces a bare '%f' with microseconds; this is printed as is",
        "warning")]
    assert check_time_format("x%") == [FormatProblem(
        1, 2, "lone '%' at the end of the format string is printed as is", "warning")]


STRFTIME_CASES = [
    "%Y-%m-%d %H:%M:%S.%f",
    "%a %A %b %B %e %j %U %W %u %w %C %g %G %V",
    "%Z %z %p %P %I %l %k %s",
    "%D %F %T %R %r",
    "%c|%x|%X|%h|%y",
    "[%N|%10f|%-f|%Q|%5d|%-d|%_H|%^a|%#Z|%Ey|%Od]",
    "%%f|%%%f",
    "",
    "%Y" * 15 + "abc",
    "%Y" * 16,
    "%t|x%",
]
TIME_LITERAL_CASES = ["[%f|%%|%Q|x%]", "[%%f]", "%Q%"]


@needs_bpftrace
@pytest.mark.kernel
@pytest.mark.oracle
def test_time_formats_match_bpftrace():
    # bpftrace's boot time is unknown to us, so a reference line gives the
    # instant ($t) as epoch seconds and micros; every other line formats $t too.
    calls = ["$t = nsecs;", 'printf("REF:%s\\n", strftime("%s|%f", $t));']
    calls += [f'printf("S{i:02d}:%s\\n", strftime({bt_literal(f)}, $t));'
              for i, f in enumerate(STRFTIME_CASES)]
    calls += [f"time({bt_literal(f'L{i:02d}:{f}' + chr(10))});" for i, f in enumerate(TIME_LITERAL_CASES)]
    result = run_bpftrace("BEGIN {\n" + "\n".join(calls) + "\nexit();\n}\n")
    assert result.returncode == 0, bpftrace_errors(result.stderr)
    lines = {line[:4]: line[4:] for line in result.stdout.decode().split("\n")}
    seconds, micros = map(int, lines["REF:"].split("|"))
    mismatches = []
    for i, f in enumerate(STRFTIME_CASES):
        ours = render_time(f, seconds, micros * 1000)
        if lines.get(f"S{i:02d}:") != ("(?)" if ours is None else ours):
            mismatches.append((f, lines.get(f"S{i:02d}:"), ours))
    for i, f in enumerate(TIME_LITERAL_CASES):
        ours = render_time(f"L{i:02d}:{f}\n", seconds, 0, builtin="time")
        if ours is None or lines.get(f"L{i:02d}:") != ours[4:-1]:
            mismatches.append((f, lines.get(f"L{i:02d}:"), ours))
    assert mismatches == []
