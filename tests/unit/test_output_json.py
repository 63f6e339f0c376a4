"""pytrace.output.json against ``bpftrace -f json`` output observed with 0.17.

Every expected line was printed by /usr/bin/bpftrace 0.17 (most are re-checked
live by tests/kernel/test_output_oracle.py).
"""

from __future__ import annotations

import pytest

from pytrace.output import json as ojson
from pytrace.output.values import (
    Avg, Buffer, Count, LHist, MapData, Min, Record, Stack, Stats, Sum, encode_output, make_hist,
    make_lhist,
)
from pytrace.semantic.types import AggKind, AggregationType, StackType, SymbolKind, SymbolType


def test_first_example_exit_dump() -> None:
    maps = [
        MapData("@a", False, [((), Count(1))]),
        MapData("@b", True, [((1,), Sum(5)), ((2,), Sum(3))]),
        MapData("@h", False, [((), make_hist([0, 1, 1000, -5]))]),
        MapData("@l", False, [((), make_lhist([15], 0, 100, 10))]),
        MapData("@s", False, [((), Stats(2, 15))]),
        MapData("@m", False, [((), Min(-3))]),
        MapData("@x", True, [(("abc", 2), 7)]),
        MapData("@t", False, [((), (1, "str"))]),
    ]
    assert ojson.format_maps_at_exit(maps) == (
        '\n\n'
        '{"type": "map", "data": {"@a": 1}}\n'
        '{"type": "map", "data": {"@b": {"2": 3, "1": 5}}}\n'
        '{"type": "hist", "data": {"@h": [{"max": -1, "count": 1}, {"min": 0, "max": 0, "count": 1}, '
        '{"min": 1, "max": 1, "count": 1}, {"min": 2, "max": 3, "count": 0}, {"min": 4, "max": 7, "count": 0}, '
        '{"min": 8, "max": 15, "count": 0}, {"min": 16, "max": 31, "count": 0}, '
        '{"min": 32, "max": 63, "count": 0}, {"min": 64, "max": 127, "count": 0}, '
        '{"min": 128, "max": 255, "count": 0}, {"min": 256, "max": 511, "count": 0}, '
        '{"min": 512, "max": 1023, "count": 1}]}}\n'
        '{"type": "hist", "data": {"@l": [{"min": 10, "max": 19, "count": 1}]}}\n'
        '{"type": "map", "data": {"@m": -3}}\n'
        '{"type": "stats", "data": {"@s": {"count": 2, "average": 7, "total": 15}}}\n'
        '{"type": "map", "data": {"@t": [1,"str"]}}\n'
        '{"type": "map", "data": {"@x": {"abc,2": 7}}}\n')


def test_hist_top_bucket_is_c_int_garbage() -> None:
    # hist(1 << 40): 0.17 computes 1 << 31 and (1 << 32) - 1 in int.
    m = MapData("@h1_8", False, [((), make_hist([1 << 40]))])
    assert ojson.format_map(m) == \
        '{"type": "hist", "data": {"@h1_8": [{"min": -2147483648, "max": 0, "count": 1}]}}\n'
    m = MapData("@h", False, [((), make_hist([(1 << 31) - 1]))])
    assert ojson.format_map(m) == \
        '{"type": "hist", "data": {"@h": [{"min": 1073741824, "max": 2147483647, "count": 1}]}}\n'


def test_keyed_hist_with_top_and_div() -> None:
    m = MapData("@h4", True, [((1,), make_hist([5, 5])), ((2,), make_hist([100])),
                              ((-1,), make_hist([2] * 5))])
    assert ojson.format_map(m) == (
        '{"type": "hist", "data": {"@h4": {"2": [{"min": 64, "max": 127, "count": 1}], '
        '"1": [{"min": 4, "max": 7, "count": 2}], "-1": [{"min": 2, "max": 3, "count": 5}]}}}\n')
    assert ojson.format_map(m, top=1, div=2) == \
        '{"type": "hist", "data": {"@h4": {"-1": [{"min": 2, "max": 3, "count": 2}]}}}\n'


def test_lhist_shapes() -> None:
    l0 = MapData("@l0", False, [((), make_lhist([-1, 5, 100], 0, 20, 10))])
    assert ojson.format_map(l0) == (
        '{"type": "hist", "data": {"@l0": [{"max": -1, "count": 1}, {"min": 0, "max": 9, "count": 1}, '
        '{"min": 10, "max": 19, "count": 0}, {"min": 20, "count": 1}]}}\n')
    l2 = MapData("@l2", False, [((), make_lhist([2048, 3000, 5000], 0, 4096, 1024))])
    assert ojson.format_map(l2) == (
        '{"type": "hist", "data": {"@l2": [{"min": 2048, "max": 3071, "count": 2}, '
        '{"min": 3072, "max": 4095, "count": 0}, {"min": 4096, "count": 1}]}}\n')
    wide = MapData("@l4", False, [((), LHist(1000000, 1000100, 10, {0: 1}))])
    assert ojson.format_map(wide) == '{"type": "hist", "data": {"@l4": [{"max": 999999, "count": 1}]}}\n'


def test_stats_and_avg_are_stats_lines() -> None:
    st = MapData("@st1", True, [(("x",), Stats(1, -50)), (("y",), Stats(2, 150)), (("z",), Stats(1, 1))])
    assert ojson.format_map(st, top=2, div=3) == (
        '{"type": "stats", "data": {"@st1": {"x": {"count": 1, "average": -50, "total": -50}, '
        '"z": {"count": 1, "average": 1, "total": 1}, "y": {"count": 2, "average": 75, "total": 150}}}}\n')
    av = MapData("@av", True, [((1,), Avg(2, -15)), ((2,), Avg(1, 10)), ((3,), Avg(2, 7)), ((4,), Avg(3, -1))])
    assert ojson.format_map(av) == '{"type": "stats", "data": {"@av": {"1": -7, "4": 0, "3": 3, "2": 10}}}\n'
    assert ojson.format_map(MapData("@a", False, [((), Avg(3, 17))])) == \
        '{"type": "stats", "data": {"@a": 5}}\n'


def test_escaping_is_per_signed_byte() -> None:
    esc = MapData("@esc", True, [(("a\tb\x01c",), 1), (('q"u\\o',), 2), (("nl\n",), 3),
                                 (("\udce9t\udcc3\udca9",), 4)])
    assert ojson.format_map(esc) == (
        '{"type": "map", "data": {"@esc": {"a\\tb\\u0001c": 1, "q\\"u\\\\o": 2, "nl\\n": 3, '
        '"\\uffffffe9t\\uffffffc3\\uffffffa9": 4}}}\n')
    # valid UTF-8 is mangled the same way: 0.17 escapes bytes, not characters
    assert ojson.json_escape("é\r\x7f") == "\\uffffffc3\\uffffffa9\\r\x7f"


def test_quoting_follows_0_17_types() -> None:
    se = MapData("@se", True, [((1,), "No such file or directory")],
                 value_type=SymbolType(SymbolKind.STRERROR))
    assert ojson.format_map(se) == '{"type": "map", "data": {"@se": {"1": No such file or directory}}}\n'
    ts = MapData("@ts", True, [((1,), "2026")], value_type=SymbolType(SymbolKind.TIMESTAMP, 16))
    assert ojson.format_map(ts) == '{"type": "map", "data": {"@ts": {"1": 2026}}}\n'
    ks = MapData("@ks", True, [((1,), "do_nanosleep"), ((3,), "0x1")], value_type=SymbolType(SymbolKind.KSYM))
    assert ojson.format_map(ks) == '{"type": "map", "data": {"@ks": {"1": "do_nanosleep", "3": "0x1"}}}\n'
    bf = MapData("@bf", True, [((1,), Buffer(b"a\x01b")), ((2,), Buffer(b'\xff"z'))])
    assert ojson.format_map(bf) == \
        '{"type": "map", "data": {"@bf": {"1": "a\\\\x01b", "2": "\\\\xff\\"z"}}}\n'


def test_tuples_records_arrays_values() -> None:
    tv = MapData("@tv", True, [((1,), (1, 'a"b', (2, "c"), -3)), ((2,), (0, "", (5, "d"), 7))])
    assert ojson.format_map(tv) == \
        '{"type": "map", "data": {"@tv": {"1": [1,"a\\"b",[2,"c"],-3], "2": [0,"",[5,"d"],7]}}}\n'
    rec = Record((("weight", 1048576), ("inv_weight", 4194304)))
    assert ojson.format_value(rec) == \
        '{"type": "value", "data": { "weight": 1048576, "inv_weight": 4194304 }}\n'
    q = MapData("@q", True, [((1,), rec)])
    assert ojson.format_map(q) == \
        '{"type": "map", "data": {"@q": {"1": { "weight": 1048576, "inv_weight": 4194304 }}}}\n'
    assert ojson.format_value([3, 0, 0, 0]) == '{"type": "value", "data": [3,0,0,0]}\n'
    got = "".join(ojson.format_value(v) for v in [1, -5, "abc", 'q"\\\t\x01\udce9', (1, (2, "x"), "")])
    assert got == ('{"type": "value", "data": 1}\n{"type": "value", "data": -5}\n'
                   '{"type": "value", "data": "abc"}\n'
                   '{"type": "value", "data": "q\\"\\\\\\t\\u0001\\uffffffe9"}\n'
                   '{"type": "value", "data": [1,[2,"x"],""]}\n')


def test_stacks() -> None:
    frames = ["perf_syscall_enter+475", "syscall_trace_enter+384", "do_syscall_64+527"]
    key = MapData("@", True, [((Stack(frames),), Count(1))])
    assert ojson.format_map(key) == ('{"type": "map", "data": {"@": {"\\n    perf_syscall_enter+475\\n'
                                     '    syscall_trace_enter+384\\n    do_syscall_64+527\\n": 1}}}\n')
    multi = MapData("@m", True, [((Stack(frames[:2]), 5), Count(1))])
    assert ojson.format_map(multi) == ('{"type": "map", "data": {"@m": {"\\n    perf_syscall_enter+475\\n'
                                       '    syscall_trace_enter+384\\n,5": 1}}}\n')
    v = MapData("@v", True, [((1,), Stack(frames[:2]))], value_type=StackType())
    assert ojson.format_map(v) == ('{"type": "map", "data": {"@v": {"1": "\\n        perf_syscall_enter+475\\n'
                                   '        syscall_trace_enter+384\\n"}}}\n')
    assert ojson.format_value((1, Stack(frames[:1]))) == \
        '{"type": "value", "data": [1,"\\n        perf_syscall_enter+475\\n"]}\n'


def test_empty_maps_print_nothing() -> None:
    assert ojson.format_map(MapData("@es", True, [], value_type=AggregationType(AggKind.STATS))) == ""
    assert ojson.format_map(MapData("@zh", True, [((1,), make_hist([]))])) == \
        '{"type": "hist", "data": {"@zh": {"1": []}}}\n'
    assert ojson.format_maps_at_exit([MapData("@e", True, [])]) == "\n\n"


def test_messages() -> None:
    assert ojson.format_attached(1) == '{"type": "attached_probes", "data": {"probes": 1}}\n'
    assert ojson.format_lost(7) == '{"type": "lost_events", "data": {"events": 7}}\n'
    assert ojson.format_message("printf", 'a"\\5\n') == '{"type": "printf", "data": "a\\"\\\\5\\n"}\n'
    assert ojson.format_message("time", "2026|") == '{"type": "time", "data": "2026|"}\n'
    assert ojson.format_message("cat", "hello") == '{"type": "cat", "data": "hello"}\n'
    assert ojson.format_message("syscall", "sys\n") == '{"type": "syscall", "data": "sys\\n"}\n'
    assert encode_output(ojson.format_message("printf", "\udce9\x01\n")) == \
        b'{"type": "printf", "data": "\\uffffffe9\\u0001\\n"}\n'
    with pytest.raises(ValueError):
        ojson.format_message("bogus", "x")
