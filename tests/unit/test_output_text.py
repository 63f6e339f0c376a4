"""pytrace.output.text against output observed from bpftrace 0.17.

Every expected string here was printed by /usr/bin/bpftrace 0.17 on Debian 12
(most of them are re-checked live by tests/kernel/test_output_oracle.py; the
stack, record and array layouts come from runs that are not deterministic
enough for the oracle: symbol offsets, task fields).
"""

from __future__ import annotations

from pytrace.output import text
from pytrace.output.render import bar_width, hist_index_label, lhist_index_label
from pytrace.output.values import (
    Avg, Buffer, Count, LHist, MapData, Min, Record, Stack, Stats, Sum, encode_output, make_hist,
    make_lhist,
)
from pytrace.semantic.types import (
    AggKind, AggregationType, StackMode, StackType, SymbolKind, SymbolType,
)

FULL = "@" * 52
EMPTY = " " * 52


def row(label: str, count: int, bar: str) -> str:
    return f"{label:<16}{count:>8} |{bar:<52}|\n"


def test_first_example_exit_dump() -> None:
    # BEGIN { @a = count(); @b[1] = sum(5); @b[2] = sum(3); @h = hist(0); @h = hist(1);
    #   @h = hist(1000); @h = hist(-5); @l = lhist(15, 0, 100, 10); @s = stats(5);
    #   @s = stats(10); @m = min(-3); @x["abc", 2] = 7; @t = (1, "str"); exit(); }
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
    zeros = "".join(row(f"[{a}, {b})", 0, "") for a, b in
                    [(2, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, 256), (256, 512)])
    want = (
        "\n\n@a: 1\n@b[2]: 3\n@b[1]: 5\n"
        "@h: \n" + row("(..., 0)", 1, FULL) + row("[0]", 1, FULL) + row("[1]", 1, FULL) + zeros
        + row("[512, 1K)", 1, FULL) + "\n"
        "@l: \n" + row("[10, 20)", 1, FULL) + "\n"
        "@m: -3\n@s: count 2, average 7, total 15\n\n@t: (1, str)\n@x[abc, 2]: 7\n"
    )
    assert text.format_maps_at_exit(maps) == want


def test_exit_with_no_maps_is_two_newlines() -> None:
    assert text.format_maps_at_exit([]) == "\n\n"


def test_hist_table_bar_is_single_precision() -> None:
    # hist(1) x15, hist(2) x30, hist(8) x52: 15/52 of 52 columns is 15 in
    # float (14 in double); 15 of 26 is 30 in float (29 in double).
    h = MapData("@h3", False, [((), make_hist([1] * 15 + [8] * 52 + [2] * 30))])
    assert text.format_map(h) == (
        "@h3: \n[1]                   15 |@@@@@@@@@@@@@@@                                     |\n"
        "[2, 4)                30 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@                      |\n"
        "[4, 8)                 0 |                                                    |\n"
        "[8, 16)               52 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\n")
    assert bar_width(15, 26) == 30 and bar_width(15, 52) == 15


def test_hist_labels() -> None:
    assert [hist_index_label(p) for p in (1, 9, 10, 19, 20, 30, 31, 40, 41)] == \
        ["2", "512", "1K", "512K", "1M", "1G", "2G", "1T", "2T"]
    big = MapData("@h1_8", False, [((), make_hist([1 << 40]))])
    assert text.format_map(big) == "@h1_8: \n" + row("[2G, 4G)", 1, FULL) + "\n"


def test_keyed_hist_order_and_print_top_div() -> None:
    m = MapData("@ph", True, [((1,), make_hist([5, 5])), ((2,), make_hist([100])),
                              ((3,), make_hist([1, 1, 1, 1000]))])
    body3 = ("".join(row(f"[{a}, {b})", 0, "") for a, b in
                     [(2, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, 256), (256, 512)]))
    assert text.format_map(m, top=2, div=3) == (
        "@ph[1]: \n" + row("[4, 8)", 0, FULL) + "\n"
        "@ph[3]: \n" + row("[1]", 1, FULL) + body3 + row("[512, 1K)", 0, "@" * 17) + "\n")
    assert text.format_map(m, top=0, div=0).startswith("@ph[2]: \n" + row("[64, 128)", 1, FULL))


def test_lhist_regions_and_labels() -> None:
    l0 = MapData("@l0", False, [((), make_lhist([-1, 0, 5, 55, 55, 99, 100, 150, 1 << 63], 0, 100, 10))])
    mid = "".join(row(f"[{a}, {a + 10})", 0, "") for a in (10, 20, 30, 40))
    assert text.format_map(l0) == (
        "@l0: \n" + row("(..., 0)", 2, FULL) + row("[0, 10)", 2, FULL) + mid
        + row("[50, 60)", 2, FULL) + "".join(row(f"[{a}, {a + 10})", 0, "") for a in (60, 70, 80))
        + row("[90, 100)", 1, "@" * 26) + row("[100, ...)", 2, FULL) + "\n")
    l1 = MapData("@l1", False, [((), make_lhist([29, 30, 89, 90, 95, 100, 101], 0, 100, 30))])
    assert text.format_map(l1) == (
        "@l1: \n" + row("[0, 30)", 1, "@" * 13) + row("[30, 60)", 1, "@" * 13)
        + row("[60, 90)", 1, "@" * 13) + row("[100, ...)", 4, FULL) + "\n")
    l2 = MapData("@l2", False, [((), make_lhist([2048, 3000, 5000], 0, 4096, 1024))])
    assert text.format_map(l2) == ("@l2: \n" + row("[2K, 3K)", 2, FULL) + row("[3K, 4K)", 0, "")
                                   + row("[4K, ...)", 1, "@" * 26) + "\n")
    assert [lhist_index_label(n) for n in (0, 1536, 2048, 1048576, 3 << 20, 1000000)] == \
        ["0", "1536", "2K", "1M", "3M", "1000000"]


def test_lhist_wide_labels_overflow_the_column() -> None:
    m = MapData("@l4", False, [((), make_lhist([1000005, 3, 3000000], 1000000, 1000100, 10))])
    out = text.format_map(m).splitlines()
    assert out[1] == "(..., 1000000)         1 |" + FULL + "|"
    assert out[2] == "[1000000, 1000010)       1 |" + FULL + "|"
    assert out[-2] == "[1000100, ...)         1 |" + FULL + "|"


def test_lhist_params_are_c_ints() -> None:
    # lhist(5000000000, 0, 10000000000, 1000000000) plus lhist(1, ...): 0.17's
    # printer holds max in an int (1410065408), so only one bucket shows.
    m = MapData("@m", False, [((), LHist(0, 10**10, 10**9, {6: 1, 1: 1}))])
    assert text.format_map(m) == "@m: \n" + row("[0, 1000000000)", 1, FULL) + "\n"


def test_lhist_ignores_div() -> None:
    m = MapData("@pl", True, [((2,), make_lhist([55, 55], 0, 100, 10))])
    assert text.format_map(m, div=3) == "@pl[2]: \n" + row("[50, 60)", 2, FULL) + "\n"


def test_stats_avg_min_sum_and_div() -> None:
    st = MapData("@st1", True, [(("x",), Stats(1, -50)), (("y",), Stats(2, 150)), (("z",), Stats(1, 1))])
    want = ("@st1[x]: count 1, average -50, total -50\n@st1[z]: count 1, average 1, total 1\n"
            "@st1[y]: count 2, average 75, total 150\n\n")
    assert text.format_map(st) == want
    assert text.format_map(st, top=2, div=3) == want  # stats ignore top and div
    av = MapData("@av", True, [((1,), Avg(2, -15)), ((2,), Avg(1, 10)), ((3,), Avg(2, 7)), ((4,), Avg(3, -1))])
    assert text.format_map(av) == "@av[1]: -7\n@av[4]: 0\n@av[3]: 3\n@av[2]: 10\n\n"
    pa = MapData("@pa", True, [((1,), Avg(2, -150)), ((2,), Avg(1, 100)), ((3,), Avg(1, 30))])
    assert text.format_map(pa, top=2, div=3) == "@pa[3]: 10\n@pa[2]: 33\n\n"
    pm = MapData("@pm", True, [((1,), Min(-50)), ((2,), Min(30)), ((3,), Min(-100))])
    assert text.format_map(pm, top=2, div=3) == "@pm[1]: -16\n@pm[2]: 10\n"
    pc = MapData("@pc", True, [((1,), Count(1)), ((2,), Count(2)), ((3,), Count(3))])
    assert text.format_map(pc, top=2, div=3) == "@pc[2]: 0\n@pc[3]: 1\n"
    assert text.format_map(pc, div=0) == "@pc[1]: 1\n@pc[2]: 2\n@pc[3]: 3\n"


def test_keys_and_strings_are_raw() -> None:
    esc = MapData("@esc", True, [(("a\tb\x01c",), 1), (('q"u\\o',), 2), (("nl\n",), 3),
                                 (("\udce9t\udcc3\udca9",), 4)])
    assert encode_output(text.format_map(esc)) == \
        b'@esc[a\tb\x01c]: 1\n@esc[q"u\\o]: 2\n@esc[nl\n]: 3\n@esc[\xe9t\xc3\xa9]: 4\n'
    mk = MapData("@mk", True, [(("b", 2), "w"), (("a", 3), "x"), (("b", 1), "y"),
                               (("ab", 0), "z"), (("", 5), "e")])
    assert text.format_map(mk) == "@mk[, 5]: e\n@mk[a, 3]: x\n@mk[ab, 0]: z\n@mk[b, 1]: y\n@mk[b, 2]: w\n"
    tv = MapData("@tv", True, [((1,), (1, 'a"b', (2, "c"), -3)), ((2,), (0, "", (5, "d"), 7))])
    assert text.format_map(tv) == '@tv[1]: (1, a"b, (2, c), -3)\n@tv[2]: (0, , (5, d), 7)\n'
    pt = MapData("@pt", True, [((1,), (10, "a", -7))])
    assert text.format_map(pt, div=3) == "@pt[1]: (3, a, -2)\n"  # div reaches into tuples


def test_glued_symbol_maps() -> None:
    ks = MapData("@ks", True, [((1,), "do_nanosleep"), ((2,), "vfs_read"), ((3,), "0x1")],
                 value_type=SymbolType(SymbolKind.KSYM))
    assert text.format_map(ks) == "@ks[1]: do_nanosleep@ks[2]: vfs_read@ks[3]: 0x1\n"
    inet = MapData("@i", True, [((1,), "127.0.0.1"), ((2,), "127.0.0.2")],
                   value_type=SymbolType(SymbolKind.INET, 24))
    assert text.format_map(inet) == "@i[1]: 127.0.0.1@i[2]: 127.0.0.2\n"
    un = MapData("@un", True, [((1,), "root"), ((2,), "root")], value_type=SymbolType(SymbolKind.USERNAME))
    assert text.format_map(un) == "@un[1]: root\n@un[2]: root\n"


FRAMES = ["perf_syscall_enter+475", "syscall_trace_enter+384", "do_syscall_64+527"]


def test_stack_keys_and_values() -> None:
    # tracepoint:syscalls:sys_enter_clock_nanosleep { @[kstack(3)] = count();
    #   @m[kstack(2), 5] = count(); @v[1] = kstack(2); @v[2] = kstack(perf, 2); ... }
    key = MapData("@", True, [((Stack(FRAMES),), Count(1))])
    assert text.format_map(key) == (
        "@[\n    perf_syscall_enter+475\n    syscall_trace_enter+384\n    do_syscall_64+527\n]: 1\n")
    multi = MapData("@m", True, [((Stack(FRAMES[:2]), 5), Count(1))])
    assert text.format_map(multi) == "@m[\n    perf_syscall_enter+475\n    syscall_trace_enter+384\n, 5]: 1\n"
    vals = MapData("@v", True, [((1,), Stack(FRAMES[:2])), ((2,), Stack(FRAMES[:2]))],
                   value_type=StackType())
    two = "\n        perf_syscall_enter+475\n        syscall_trace_enter+384\n"
    assert text.format_map(vals) == "@v[1]: " + two + "@v[2]: " + two + "\n"
    perf = MapData("@w", True, [((1,), Stack(["7f60c6234503 0x7f60c6234503 ([unknown])",
                                              "11e1a300 0x11e1a300 ([unknown])"], StackMode.PERF))])
    assert text.format_map(perf) == \
        "@w[1]: \n\t7f60c6234503 0x7f60c6234503 ([unknown])\n\t11e1a300 0x11e1a300 ([unknown])\n\n"
    assert text.format_value(Stack(FRAMES[:2])) == two + "\n"
    assert text.format_value(Stack(["7f60c6234503 clock_nanosleep+35 (/usr/lib/x86_64-linux-gnu/libc.so.6)"],
                                   StackMode.PERF)) == \
        "\n\t7f60c6234503 clock_nanosleep+35 (/usr/lib/x86_64-linux-gnu/libc.so.6)\n\n"
    assert text.format_value((1, Stack(FRAMES[:1]))) == "(1, \n        perf_syscall_enter+475\n)\n"
    assert text.format_value(Stack([], missing=True)) == "\n"


def test_records_arrays_buffers() -> None:
    # print(curtask->se.load); print(curtask->cpus_mask.bits)
    rec = Record((("weight", 1048576), ("inv_weight", 4194304)))
    assert text.format_value(rec) == "{ .weight = 1048576, .inv_weight = 4194304 }\n"
    assert text.format_value([3, 0, 0, 0]) == "[3,0,0,0]\n"
    bf = MapData("@bf", True, [((1,), Buffer(b"a\x01b")), ((2,), Buffer(b'\xff"z'))])
    assert text.format_map(bf) == '@bf[1]: a\\x01b\n@bf[2]: \\xff"z\n'


def test_print_values() -> None:
    got = "".join(text.format_value(v) for v in
                  [1, -5, "abc", 'q"\\\t\x01\udce9', (1, "two"), (1, (2, "x"), "")])
    assert encode_output(got) == b'1\n-5\nabc\nq"\\\t\x01\xe9\n(1, two)\n(1, (2, x), )\n'


def test_empty_and_zeroed_maps() -> None:
    assert text.format_map(MapData("@ed", True, [], value_type=AggregationType(AggKind.COUNT))) == "\n"
    assert text.format_map(MapData("@es", True, [], value_type=AggregationType(AggKind.STATS))) == "\n\n"
    assert text.format_map(MapData("@eh", True, [], value_type=AggregationType(AggKind.HIST))) == "\n"
    assert text.format_map(MapData("@zh", True, [((1,), make_hist([]))])) == "@zh[1]: \n\n"
    assert text.format_map(MapData("@zc", True, [((1,), Count(0))])) == "@zc[1]: 0\n"
    assert text.format_map(MapData("@e", False, [((), "")])) == "@e: \n"


def test_messages() -> None:
    assert text.format_lost(3) == "Lost 3 events\n"
    assert text.format_attached(1) == "Attaching 1 probe...\n"
    assert text.format_attached(2) == "Attaching 2 probes...\n"
