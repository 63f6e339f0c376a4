"""pytrace.output against bpftrace 0.17 itself, byte for byte.

Each case is a deterministic fragment of a BEGIN probe that fills maps with
known values, generated from the same Python data that builds the expected
MapData (hist/lhist buckets via hist_index/lhist_index).  Cases are run in
groups, one bpftrace process per group and format (startup is ~0.3 s):

    BEGIN { <case 1 fills>; printf("==case1==\\n"); print(@m1); ...
            <case 2 fills>; ...; printf("==END==\\n"); exit(); }

Between the markers is each case's print() output, compared with
format_map()/format_value(); after END comes the exit dump, compared with
format_maps_at_exit() over every map of the group.  Both formats.

Value-sorted maps (count/sum/min/max/int) print ties in kernel hash order, so
for cases marked ``ties`` both sides are compared after sorting each run of
equal values.  Stack keys are not deterministic and are not run here (see
tests/unit/test_output_text.py for their layout, observed with 0.17).
"""

from __future__ import annotations

import json as stdjson
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Iterator

import pytest

from pytrace.output import json as ojson
from pytrace.output import text as otext
from pytrace.output.values import (
    Avg, Buffer, Count, MapData, Max, Min, Stats, Sum, Value, encode_output, make_hist,
    make_lhist,
)
from pytrace.semantic.types import (
    AggKind, AggregationType, PointerType, SymbolKind, SymbolType,
    VoidType,
)

pytestmark = [pytest.mark.kernel, pytest.mark.oracle]

BPFTRACE = "/usr/bin/bpftrace"

if not os.path.exists(BPFTRACE):  # pragma: no cover - CI always has it
    pytest.skip("needs /usr/bin/bpftrace (bpftrace 0.17)", allow_module_level=True)


# --------------------------------------------------------------------------
# Building scripts and expectations from the same data
# --------------------------------------------------------------------------


def lit(v: object) -> str:
    """A bpftrace literal for a Python int or str."""
    if isinstance(v, int):
        return str(v) if v < 1 << 63 else hex(v)
    assert isinstance(v, str)
    out = []
    for b in encode_output(v):
        c = chr(b)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append(f"\\x{b:02x}")
    return '"' + "".join(out) + '"'


def keystr(key: tuple) -> str:
    return "[" + ", ".join(lit(k) for k in key) + "]" if key else ""


@dataclass
class Case:
    name: str
    script: str
    maps: list[MapData]                                        # final state, for the exit dump
    prints: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    values: list[tuple[str, Value, object]] = field(default_factory=list)  # print(expr)
    ties: bool = False

    def map(self, name: str) -> MapData:
        return next(m for m in self.maps if m.name == name)

    def print_script(self) -> str:
        parts = []
        for name, top, div in self.prints:
            args = [name] + ([str(top)] if top is not None else []) + ([str(div)] if div is not None else [])
            parts.append(f"print({', '.join(args)});")
        for expr, _, _ in self.values:
            parts.append(f"print({expr});")
        return "\n".join(parts)

    def expected(self, fmt: str) -> str:
        mod = otext if fmt == "text" else ojson
        out = []
        for name, top, div in self.prints:
            out.append(mod.format_map(self.map(name), top=top or 0, div=div if div is not None else 1))
        for _, v, t in self.values:
            out.append(mod.format_value(v, t))
        return "".join(out)


def agg_case(name: str, mapname: str, fills: list[tuple[tuple, str]], value: dict[tuple, Value],
             value_type: object = None, **kw: object) -> Case:
    """A case whose script applies ``@map[key] = <call>`` for each fill and
    prints the map once; ``value`` is what the map then holds."""
    script = "\n".join(f"{mapname}{keystr(k)} = {call};" for k, call in fills)
    keyed = any(k for k, _ in fills)
    m = MapData(mapname, keyed, list(value.items()), value_type=value_type)  # type: ignore[arg-type]
    kw.setdefault("prints", [(mapname, None, None)])
    return Case(name, script, [m], **kw)  # type: ignore[arg-type]


def hist_case(name: str, mapname: str, samples: dict[tuple, list[int]], **kw: object) -> Case:
    fills = [(k, f"hist({lit(v)})") for k, vs in samples.items() for v in vs]
    return agg_case(name, mapname, fills, {k: make_hist(vs) for k, vs in samples.items()}, **kw)


def lhist_case(name: str, mapname: str, samples: dict[tuple, list[int]], lo: int, hi: int,
               step: int, **kw: object) -> Case:
    fills = [(k, f"lhist({lit(v)}, {lo}, {hi}, {step})") for k, vs in samples.items() for v in vs]
    return agg_case(name, mapname, fills,
                    {k: make_lhist(vs, lo, hi, step) for k, vs in samples.items()}, **kw)


def simple_agg_case(name: str, mapname: str, fn: str, samples: dict[tuple, list[int]],
                    cast: str = "", **kw: object) -> Case:
    """``cast`` (e.g. "(uint64)") goes before each sample: it makes the
    aggregation unsigned, which is the runtime's business, not output's."""
    fills = [(k, f"{fn}({cast}{lit(v)})") for k, vs in samples.items() for v in vs]
    make = {
        "count": lambda vs: Count(len(vs)),
        "sum": lambda vs: Sum(sum(vs)),
        "min": lambda vs: Min(min(vs)),
        "max": lambda vs: Max(max(vs)),
        "avg": lambda vs: Avg(len(vs), sum(vs)),
        "stats": lambda vs: Stats(len(vs), sum(vs)),
    }[fn]
    if fn == "count":
        fills = [(k, "count()") for k, vs in samples.items() for _ in vs]
    return agg_case(name, mapname, fills, {k: make(vs) for k, vs in samples.items()}, **kw)


def assign_case(name: str, mapname: str, values: dict[tuple, Value], exprs: dict[tuple, str] | None = None,
                **kw: object) -> Case:
    """``@map[key] = <literal or expr>`` for plain (non-aggregation) values."""
    exprs = exprs or {}
    fills = [(k, exprs.get(k) or _value_lit(v)) for k, v in values.items()]
    return agg_case(name, mapname, fills, values, **kw)


def _value_lit(v: Value) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_value_lit(e) for e in v) + ")"
    return lit(v)


# --------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------

BIG = [0, -1, 1, 2, 3, 1 << 31, (1 << 31) - 1, 1 << 32, 1 << 40, (1 << 63) - 1, (1 << 64) - 1]
KSYM = SymbolType(SymbolKind.KSYM)
INET = SymbolType(SymbolKind.INET, 24)


def _many_key_hist() -> Case:
    # 40 keys, totals 1..3 with many ties: std::sort's introsort path, fed in
    # std::map (little-endian key byte) order -- deterministic in 0.17.
    samples = {(k,): [k % 7] * (1 + (k * 7) % 3) for k in range(-5, 35)}
    return hist_case("hist_40_keys_ties", "@hk", samples)


def _many_key_stats() -> Case:
    samples = {(f"k{k:02d}",): [k % 5 - 2, (k * 3) % 4] for k in range(30)}
    return simple_agg_case("stats_30_keys_ties", "@sk", "stats", samples)


GROUPS: dict[str, list[Case]] = {
    "aggregations": [
        simple_agg_case("count_scalar", "@c0", "count", {(): [0, 0, 0]}),
        simple_agg_case("count_keyed", "@c1", "count", {(1,): [0] * 3, (2,): [0], (-7,): [0] * 2}),
        simple_agg_case("sum_signed", "@s1", "sum", {(1,): [5, -20], (2,): [3], (3,): [0], (4,): [7, 7]}),
        simple_agg_case("sum_unsigned_big", "@s2", "sum", {(1,): [(1 << 64) - 16], (2,): [5]},
                        cast="(uint64)"),
        simple_agg_case("min_keyed", "@mn", "min", {(1,): [-50, 3], (2,): [30], (3,): [-100, 0]}),
        # 0.17's max() never creates an entry from a negative first value, so
        # only non-negative samples here (a runtime matter, not output).
        simple_agg_case("max_keyed", "@mx", "max", {(1,): [7, 2], (2,): [30], (3,): [100, 99]}),
        simple_agg_case("avg_rounding", "@av", "avg",
                        {(1,): [-7, -8], (2,): [10], (3,): [3, 4], (4,): [-1, 0, 0]}),
        simple_agg_case("avg_scalar", "@av0", "avg", {(): [5, 6, 6]}),
        simple_agg_case("stats_scalar", "@st0", "stats", {(): [5, 10]}),
        simple_agg_case("stats_keyed_negative", "@st1", "stats",
                        {("x",): [-50], ("y",): [70, 80], ("z",): [1]}),
        assign_case("int_values_signed", "@iv", {(1,): -1, (2,): 3, (3,): -300, (4,): 1 << 40}),
        assign_case("int_values_unsigned", "@uv", {(1,): (1 << 64) - 16, (2,): 3},
                    exprs={(1,): "(uint64)0xfffffffffffffff0", (2,): "(uint64)3"}),
        assign_case("int_scalar_bare_name", "@", {(): 42}),
    ],
    "hists": [
        hist_case("hist_edges", "@h0", {(): [0, 1, 1000, -5]}),
        *[hist_case(f"hist_single_{i}", f"@h1_{i}", {(): [v]}) for i, v in enumerate(BIG)],
        hist_case("hist_inner_zeros_and_bar", "@h2", {(): [1] * 15 + [4] * 26 + [100] * 3 + [5000]}),
        hist_case("hist_bar_float32", "@h3", {(): [1] * 15 + [8] * 52 + [2] * 30}),
        hist_case("hist_keyed_by_total", "@h4",
                  {(1,): [5, 5], (2,): [100], (3,): [1, 1, 1, 1000], (-1,): [2, 2, 2, 2, 2]}),
        hist_case("hist_string_keys", "@h5", {("b",): [1], ("a",): [1], ("ab",): [3, 3], ("",): [7]}),
        _many_key_hist(),
    ],
    "lhists": [
        lhist_case("lhist_all_regions", "@l0", {(): [-1, 0, 5, 55, 55, 99, 100, 150, 1 << 63]},
                   0, 100, 10),
        lhist_case("lhist_uneven_step", "@l1", {(): [29, 30, 89, 90, 95, 100, 101]}, 0, 100, 30),
        lhist_case("lhist_k_labels", "@l2", {(): [2048, 3000, 5000]}, 0, 4096, 1024),
        lhist_case("lhist_m_labels", "@l3", {(): [1048576, 1 << 22]}, 0, 2097152, 1048576),
        lhist_case("lhist_wide_labels", "@l4", {(): [1000005, 3, 3000000]}, 1000000, 1000100, 10),
        lhist_case("lhist_bar", "@l5", {(): [1] * 15 + [5] * 52}, 0, 10, 1),
        lhist_case("lhist_keyed", "@l6", {(1,): [5], (2,): [55, 55], (3,): [1000] * 3}, 0, 100, 10),
        lhist_case("lhist_min_offset", "@l7", {(): [5, 10, 14, 15, 19, 20, 25]}, 10, 20, 5),
    ],
    "keys_and_values": [
        assign_case("int_key_unsigned_order", "@ko",
                    {(-1,): "m", (2,): "n", (1,): "o", (256,): "p", (-2,): "q"}),
        assign_case("multi_key_str_int", "@mk",
                    {("b", 2): "w", ("a", 3): "x", ("b", 1): "y", ("ab", 0): "z", ("", 5): "e"}),
        assign_case("multi_key_int_str", "@mk2",
                    {(2, "b"): "w", (1, "z"): "x", (2, "a"): "y", (-1, "a"): "z"}),
        simple_agg_case("count_multi_key", "@mk3", "count", {("abc", 2): [0] * 7, ("d", -1): [0]}),
        assign_case("string_escapes", "@esc",
                    {("a\tb\x01c",): 1, ('q"u\\o',): 2, ("nl\n",): 3, ("\udce9t\udcc3\udca9",): 4}),
        assign_case("string_values", "@sv", {(1,): 'x\ty\x02"\udce9', (2,): "", (3,): "plain"}),
        assign_case("tuple_values", "@tv", {(1,): (1, 'a"b', (2, "c"), -3), (2,): (0, "", (5, "d"), 7)}),
        assign_case("tuple_scalar", "@t0", {(): (1, "str")}),
        simple_agg_case("count_ties_many", "@ct", "count",
                        {(k,): [0] * (1 + k % 3) for k in range(24)}, ties=True),
        simple_agg_case("count_distinct_many", "@cd", "count",
                        {(k,): [0] * ((k * 11) % 23 + 1) for k in range(23)}),
        _many_key_stats(),
    ],
    "print_args": [
        simple_agg_case("print_count_top_div", "@pc", "count",
                        {(1,): [0], (2,): [0] * 2, (3,): [0] * 3},
                        prints=[("@pc", 2, 3), ("@pc", 0, 2), ("@pc", 5, None), ("@pc", 0, 0)]),
        hist_case("print_hist_top_div", "@ph", {(1,): [5, 5], (2,): [100], (3,): [1, 1, 1, 1000]},
                  prints=[("@ph", 2, 3), ("@ph", 0, 0)]),
        simple_agg_case("print_avg_top_div", "@pa", "avg",
                        {(1,): [-70, -80], (2,): [100], (3,): [30]}, prints=[("@pa", 2, 3)]),
        simple_agg_case("print_stats_ignores_top_div", "@ps", "stats",
                        {("x",): [-50], ("y",): [70, 80], ("z",): [1]}, prints=[("@ps", 2, 3)]),
        simple_agg_case("print_min_div", "@pm", "min", {(1,): [-50], (2,): [30], (3,): [-100]},
                        prints=[("@pm", 2, 3)]),
        simple_agg_case("print_sum_div", "@psu", "sum", {(1,): [-50], (2,): [30], (3,): [0]},
                        prints=[("@psu", 0, 7)]),
        lhist_case("print_lhist_ignores_div", "@pl", {(1,): [5], (2,): [55, 55], (3,): [1000] * 3},
                   0, 100, 10, prints=[("@pl", 2, 3)]),
        assign_case("print_tuple_div", "@pt", {(1,): (10, "a", -7)}, prints=[("@pt", 0, 3)]),
        assign_case("print_int_scalar_div", "@pi", {(): -77}, prints=[("@pi", 2, 3)]),
        Case("print_values", "", [], values=[
            ("1", 1, None), ("-5", -5, None), ('"abc"', "abc", None),
            ('"q\\"\\\\\\t\\x01\\xe9"', 'q"\\\t\x01\udce9', None),
            ('(1, "two")', (1, "two"), None), ('(1, (2, "x"), "")', (1, (2, "x"), ""), None),
        ]),
    ],
    "symbols_and_empties": [
        assign_case("ksym_values_glued", "@ks",
                    {(1,): "do_nanosleep", (2,): "vfs_read", (3,): "0x1"},
                    exprs={(1,): 'ksym(kaddr("do_nanosleep"))', (2,): 'ksym(kaddr("vfs_read"))',
                           (3,): "ksym(1)"}, value_type=KSYM),
        assign_case("ntop_values_glued", "@in", {(1,): "127.0.0.1", (2,): "127.0.0.2"},
                    exprs={(1,): "ntop(0x0100007f)", (2,): "ntop(2, 0x0200007f)"}, value_type=INET),
        assign_case("strerror_unquoted_json", "@se", {(1,): "No such file or directory"},
                    exprs={(1,): "strerror(2)"}, value_type=SymbolType(SymbolKind.STRERROR)),
        assign_case("strftime_unquoted_json", "@tf", {(1,): "abc", (2,): "x-y"},
                    exprs={(1,): 'strftime("abc", 0)', (2,): 'strftime("x-y", 5)'},
                    value_type=SymbolType(SymbolKind.TIMESTAMP, 16)),
        assign_case("username_values", "@un", {(1,): "root"}, exprs={(1,): "username"},
                    value_type=SymbolType(SymbolKind.USERNAME)),
        assign_case("probe_values", "@pr", {(1,): "BEGIN", (2,): "BEGIN"}, exprs={(1,): "probe", (2,): "probe"},
                    value_type=SymbolType(SymbolKind.PROBE)),
        assign_case("buffer_values", "@bf", {(1,): Buffer(b"a\x01b"), (2,): Buffer(b"\xff\"z")},
                    exprs={(1,): 'buf("a\\x01b", 3)', (2,): 'buf("\\xff\\"z", 3)'}),
        assign_case("pointer_values_key_sorted", "@pv", {(1,): 5, (2,): 3, (3,): 4},
                    exprs={k: f"(struct task_struct *){v}" for k, v in {(1,): 5, (2,): 3, (3,): 4}.items()},
                    value_type=PointerType(VoidType()), prints=[("@pv", None, None), ("@pv", 0, 2)]),
        Case("small_int_keys", '@sk8[(int8)-1] = "a"; @sk8[(int8)2] = "b"; @sk8[(int8)1] = "c";',
             [MapData("@sk8", True, [((-1,), "a"), ((2,), "b"), ((1,), "c")])],
             prints=[("@sk8", None, None)]),
        Case("empty_after_delete", "@ed[1] = count(); delete(@ed[1]);",
             [MapData("@ed", True, [], value_type=AggregationType(AggKind.COUNT))], prints=[("@ed", None, None)]),
        Case("empty_stats_after_clear", '@es["x"] = stats(1); clear(@es);',
             [MapData("@es", True, [], value_type=AggregationType(AggKind.STATS))], prints=[("@es", None, None)]),
        Case("empty_hist_after_clear", "@eh[1] = hist(1); clear(@eh);",
             [MapData("@eh", True, [], value_type=AggregationType(AggKind.HIST))], prints=[("@eh", None, None)]),
        Case("zeroed_hist_and_count", "@zh[1] = hist(1); zero(@zh); @zc[1] = count(); zero(@zc);",
             [MapData("@zh", True, [((1,), make_hist([]))]), MapData("@zc", True, [((1,), Count(0))])],
             prints=[("@zh", None, None), ("@zc", None, None)]),
    ],
}


def _all_cases() -> Iterator[tuple[str, Case]]:
    for g, cases in GROUPS.items():
        for c in cases:
            yield g, c


def _group_script(cases: list[Case]) -> str:
    # Each marker opens its case's section: fills, marker, print() calls.
    body = []
    for c in cases:
        body += [c.script, f'printf("=={c.name}==\\n");', c.print_script()]
    body += ['printf("==END==\\n");', "exit();"]
    return "BEGIN {\n" + "\n".join(body) + "\n}\n"


def _marker(name: str, fmt: str) -> bytes:
    text = f"=={name}==\n"
    return encode_output(text if fmt == "text" else ojson.format_message("printf", text))


Sections = tuple[bytes, dict[str, bytes], bytes]


class Oracle:
    """Runs bpftrace once per group and format, on first use."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], Sections] = {}

    def sections(self, group: str, fmt: str) -> Sections:
        """(attach line, per-case print() output, exit dump)."""
        if (group, fmt) not in self._runs:
            self._runs[group, fmt] = self._split(group, fmt, self._run(group, fmt))
        return self._runs[group, fmt]

    @staticmethod
    def _run(group: str, fmt: str) -> bytes:
        script = _group_script(GROUPS[group])
        args = [BPFTRACE] + (["-f", "json"] if fmt == "json" else []) + ["-e", script]
        proc = subprocess.run(args, capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace") + "\n" + script
        return proc.stdout

    @staticmethod
    def _split(group: str, fmt: str, out: bytes) -> Sections:
        first, _, rest = out.partition(b"\n")
        result = {}
        names = [c.name for c in GROUPS[group]] + ["END"]
        for name, nxt in zip(names, names[1:]):
            start = rest.index(_marker(name, fmt)) + len(_marker(name, fmt))
            result[name] = rest[start:rest.index(_marker(nxt, fmt), start)]
        tail = rest[rest.index(_marker("END", fmt)) + len(_marker("END", fmt)):]
        return first + b"\n", result, tail


@pytest.fixture(scope="module")
def oracle() -> Oracle:
    return Oracle()


# --------------------------------------------------------------------------
# Tie-insensitive comparison
# --------------------------------------------------------------------------

_TEXT_ENTRY = re.compile(rb"^(@\w*)\[(.*)\]: (-?\d+)$")


def canon_ties(data: bytes, fmt: str) -> object:
    """Sort each run of equal values (0.17 prints ties in hash order)."""
    if fmt == "json":
        out = []
        for line in data.decode().splitlines():
            if not line.startswith("{"):
                out.append(line)
                continue
            obj = stdjson.loads(line, object_pairs_hook=list)
            (name, entries), = dict(obj)["data"]
            if isinstance(entries, list) and all(isinstance(e, tuple) for e in entries):
                entries = _sort_runs(entries)  # a keyed map's members
            out.append((name, entries))
        return out
    lines = data.split(b"\n")
    parsed = [(_TEXT_ENTRY.match(ln), ln) for ln in lines]
    result: list[object] = []
    run: list[tuple[bytes, bytes]] = []
    run_key: tuple[bytes, bytes] | None = None
    for m, ln in parsed:
        key = (m.group(1), m.group(3)) if m else None
        if run and key != run_key:
            result.extend(sorted(run))
            run = []
        if m:
            run.append((m.group(2), ln))
            run_key = key
        else:
            result.append(ln)
    result.extend(sorted(run))
    return result


def _sort_runs(entries: list[tuple[str, object]]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    i = 0
    while i < len(entries):
        j = i
        while j < len(entries) and entries[j][1] == entries[i][1]:
            j += 1
        out.extend(sorted(entries[i:j]))
        i = j
    return out


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_enough_cases() -> None:
    assert sum(len(c) for c in GROUPS.values()) >= 30
    names = [m.name for _, c in _all_cases() for m in c.maps]
    assert len(names) == len(set(names)), "map names must be unique across the suite"


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("group,case", list(_all_cases()), ids=[c.name for _, c in _all_cases()])
def test_print_output(group: str, case: Case, fmt: str, oracle: Oracle) -> None:
    _, outputs, _ = oracle.sections(group, fmt)
    got = outputs[case.name]
    want = encode_output(case.expected(fmt))
    if case.ties:
        assert canon_ties(got, fmt) == canon_ties(want, fmt)
    else:
        assert got == want


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("group", list(GROUPS))
def test_exit_dump(group: str, fmt: str, oracle: Oracle) -> None:
    attach, _, tail = oracle.sections(group, fmt)
    mod = otext if fmt == "text" else ojson
    assert attach == encode_output(mod.format_attached(1))
    maps = [m for c in GROUPS[group] for m in c.maps]
    want = encode_output(mod.format_maps_at_exit(maps))
    if any(c.ties for c in GROUPS[group]):
        assert canon_ties(tail, fmt) == canon_ties(want, fmt)
    else:
        assert tail == want
