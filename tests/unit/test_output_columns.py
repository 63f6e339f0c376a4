"""The column fast paths against the general path they replace.

Maps of the common shapes (integer and string keys; count, sum, min, max,
avg, stats and integer values) travel as ``Columns`` from the decoder to the printers,
which sort index lists and format all the lines with one ``%``
(order.column_order, render.column_rows, text/json ``_format_columns``).
Each test here builds the same map both ways, as Columns and as the plain
entries list the general path prints, and requires byte-identical text and
JSON, for print() with top and div as well as at exit.  The decoding half
(runtime.decode on packed ``MapItems``) is checked the same way against the
per-entry decoder.  No root needed.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

import pytest

from pytrace.bpf.maps import MapItems, PercpuItems
from pytrace.codegen.layout import Layout, map_layout
from pytrace.output import json as ojson
from pytrace.output import order, text
from pytrace.output.render import column_rows
from pytrace.output.values import (
    INT, STR, Avg, Columns, Count, MapData, Max, Min, Stats, Sum, encode_output,
)
from pytrace.runtime import decode
from pytrace.semantic import types as T

U64_MAX = (1 << 64) - 1
COUNT = T.AggregationType(T.AggKind.COUNT)
SUM = T.AggregationType(T.AggKind.SUM, signed=True)

# Strings that stress both formats: JSON escapes (quotes, backslashes,
# control bytes, DEL, non-ASCII, a non-UTF-8 byte kept as a lone surrogate),
# "%" (the fast path formats through a % template), ", " and "," (the key
# separators), the empty string and an ASCII/byte-order trap ("\udcff" sorts
# after "\ue000" by bytes, before it by code point).
NASTY = ["", "a", "ab", "b", "%d", "100%", 'q"t', "b\\s", "tab\there", "nl\nx", "\x7fdel", "\x01",
         "é", "\udcff", "\ue000", "a, b", "a,b", "zz"]


def twin(name: str, keys: Sequence[list], kinds: Sequence[str], values: list[int],
         wrap: type | None, value_type: T.Type | None,
         key_types: tuple[T.Type, ...] | None = None, counts: list[int] | None = None,
         raw_keys: list[bytes] | None = None, value_kind: str = INT) -> tuple[MapData, MapData]:
    """The same map held as Columns and as a plain entries list."""
    size = len(raw_keys[0]) if raw_keys else 0
    cols = Columns(keys, kinds, values, wrap, b"".join(raw_keys) if raw_keys else None, size, counts, value_kind)
    fast = MapData.from_columns(name, bool(keys), cols, value_type=value_type, key_types=key_types)
    if counts is not None:
        vals: list = [wrap(c, t) for c, t in zip(counts, values)]  # type: ignore[misc]
    else:
        vals = values if wrap is None else [wrap(v) for v in values]
    ks = list(zip(*keys)) if keys else [()] * len(values)
    slow = MapData(name, bool(keys), list(zip(ks, vals)), value_type=value_type, key_types=key_types,
                   key_bytes=raw_keys)
    return fast, slow


PRINT_ARGS = [(0, 1), (1, 1), (3, 1), (7, 0), (0, 3), (5, 7), (0, -1), (1 << 32 | 4, 1), (2, 1 << 32)]


def assert_same(fast: MapData, slow: MapData) -> None:
    assert fast.columns is not None and slow.columns is None
    if fast.entry_count():
        assert column_rows(fast, 0, 1) is not None, "the fast path was not taken"
    for top, div in PRINT_ARGS:
        assert text.format_map(fast, top=top, div=div) == text.format_map(slow, top=top, div=div), (top, div)
        assert ojson.format_map(fast, top=top, div=div) == ojson.format_map(slow, top=top, div=div), (top, div)
    assert text.format_maps_at_exit([fast, slow]) == text.format_maps_at_exit([slow, slow])
    assert ojson.format_maps_at_exit([fast]) == ojson.format_maps_at_exit([slow])
    assert fast.entries == slow.entries  # built on demand, equal to the general form
    assert fast == slow


def test_small_example_exact_text() -> None:
    # 0.17: values ascending; keys as they are; the last line ends the map.
    fast, slow = twin("@c", [[3, -1, 7]], [INT], [5, 1, 5], Count, COUNT)
    assert text.format_map(fast) == "@c[-1]: 1\n@c[3]: 5\n@c[7]: 5\n"
    assert ojson.format_map(fast) == '{"type": "map", "data": {"@c": {"-1": 1, "3": 5, "7": 5}}}\n'
    assert text.format_map(fast, top=1, div=2) == "@c[7]: 2\n"
    assert_same(fast, slow)


@pytest.mark.parametrize("n", [0, 1, 2, 16, 17, 40, 255, 256, 257, 1000])
@pytest.mark.parametrize("wrap,value_type", [(Count, COUNT), (Sum, SUM), (Min, T.AggregationType(T.AggKind.MIN)),
                                             (Max, T.AggregationType(T.AggKind.MAX)), (None, T.I64),
                                             (None, T.U64), (Count, None), (None, None)])
def test_int_keys_with_ties_and_negatives(n: int, wrap: type | None, value_type: T.Type | None) -> None:
    # Few distinct values: many ties, which the std::sort replica (<= 256
    # entries) and the stable sort (above) must order as the general path.
    rng = random.Random(n)
    keys = rng.sample(range(-5000, 5000), n)
    values = [rng.choice([-3, 0, 1, 2, 2, 5, 1 << 40]) for _ in range(n)]
    if value_type == T.U64:
        values = [v % (1 << 64) for v in values]
    assert_same(*twin("@m", [keys], [INT], values, wrap, value_type))


@pytest.mark.parametrize("n", [1, 5, 30, 300])
def test_string_keys(n: int) -> None:
    rng = random.Random(n + 1)
    keys = [rng.choice(NASTY) + str(i) * rng.randrange(2) for i in range(n)]
    values = [rng.randrange(4) for _ in range(n)]
    assert_same(*twin("@s", [keys], [STR], values, Count, COUNT))
    assert_same(*twin("@s", [keys], [STR], values, None, T.U64, key_types=(T.StringType(16),)))


@pytest.mark.parametrize("n", [1, 12, 20, 500])
def test_multi_key_tuples(n: int) -> None:
    rng = random.Random(n + 2)
    ints = [rng.randrange(-3, 3) for _ in range(n)]
    strs = [rng.choice(NASTY) for _ in range(n)]
    more = [rng.choice([0, U64_MAX, 1 << 63, 42]) for _ in range(n)]
    values = [rng.randrange(-2, 3) for _ in range(n)]
    assert_same(*twin("@t", [ints, strs], [INT, STR], values, Sum, SUM))
    assert_same(*twin("@t", [strs, ints, more], [STR, INT, INT], values, None, T.I64))
    assert_same(*twin("@t", [ints, more], [INT, INT], values, Count, COUNT))


AVG = T.AggregationType(T.AggKind.AVG)
STATS = T.AggregationType(T.AggKind.STATS)


@pytest.mark.parametrize("n", [1, 2, 16, 17, 100, 256, 257, 600])
@pytest.mark.parametrize("wrap,value_type", [(Avg, AVG), (Stats, STATS), (Avg, None), (Stats, None)])
def test_avg_and_stats_by_key_bytes_then_average(n: int, wrap: type, value_type: T.Type | None) -> None:
    # 0.17 orders these by the raw key bytes (memcmp: little-endian ints,
    # -1 last) and then by average, with ties; stats ignore top, avg not.
    rng = random.Random(n + 3)
    ints = rng.sample(range(-1000, 1000), n)
    strs = [rng.choice(NASTY) + str(i) for i in range(n)]
    counts = [rng.choice([0, 1, 2, 3, 7]) for _ in range(n)]
    totals = [rng.choice([-15, -7, -1, 0, 1, 5, 9, 14]) * max(c, 1) + rng.randrange(-2, 3) for c in counts]
    raw = [_key_bytes(T.TupleType((T.I64, T.StringType(24))), (k, s), 32) for k, s in zip(ints, strs)]
    assert_same(*twin("@a", [ints, strs], [INT, STR], totals, wrap, value_type, counts=counts, raw_keys=raw))
    raw1 = [_key_bytes(T.I64, (k,), 8) for k in ints]
    assert_same(*twin("@a", [ints], [INT], totals, wrap, value_type, counts=counts, raw_keys=raw1))


def test_avg_and_stats_exact_text() -> None:
    raw = [(k % (1 << 64)).to_bytes(8, "little") for k in (2, -1, 1)]
    fast, slow = twin("@s", [[2, -1, 1]], [INT], [150, -50, 1], Stats, STATS, counts=[2, 1, 1], raw_keys=raw)
    assert text.format_map(fast) == ("@s[-1]: count 1, average -50, total -50\n@s[1]: count 1, average 1, total 1\n"
                                     "@s[2]: count 2, average 75, total 150\n\n")
    assert ojson.format_map(fast, top=1) == (
        '{"type": "stats", "data": {"@s": {"-1": {"count": 1, "average": -50, "total": -50}, '
        '"1": {"count": 1, "average": 1, "total": 1}, "2": {"count": 2, "average": 75, "total": 150}}}}\n')
    fast, slow = twin("@a", [[2, -1, 1]], [INT], [-15, 10, 7], Avg, AVG, counts=[2, 1, 2], raw_keys=raw)
    assert text.format_map(fast, top=2, div=2) == "@a[1]: 1\n@a[-1]: 5\n\n"
    assert_same(fast, slow)


def test_avg_columns_need_raw_keys_for_the_fast_order() -> None:
    # Without the raw keys the general path rebuilds them from the values.
    fast, slow = twin("@a", [[2, 1]], [INT], [4, 4], Avg, AVG, counts=[1, 1])
    assert order.column_order(fast) is None
    assert text.format_map(fast) == text.format_map(slow) == "@a[1]: 4\n@a[2]: 4\n\n"


def test_scalar_columns() -> None:
    assert_same(*twin("@x", [], [], [7], Count, COUNT))
    assert_same(*twin("@x", [], [], [-2, 9, 4], None, T.I64))


def test_unusual_names() -> None:
    for name in ["@", "@a%d", "@%%", '@"q']:
        assert_same(*twin(name, [[1, 2, 3]], [INT], [3, 2, 1], Count, COUNT))


def test_columns_validate_their_shape() -> None:
    with pytest.raises(ValueError):
        Columns([[1, 2]], [INT], [1])
    with pytest.raises(ValueError):
        Columns([[1]], [], [1])
    with pytest.raises(ValueError):
        Columns([[1]], ["float"], [1])
    with pytest.raises(ValueError):
        Columns([[1]], [INT], [1], raw_keys=b"\0" * 7, key_size=8)
    with pytest.raises(ValueError):
        MapData.from_columns("@x", False, Columns([[1]], [INT], [1]))
    with pytest.raises(ValueError):
        Columns([[1]], [INT], [1], Avg)  # avg needs counts
    with pytest.raises(ValueError):
        Columns([[1]], [INT], [1], Count, counts=[1])


def test_key_bytes_from_raw_keys() -> None:
    raw = (5).to_bytes(8, "little") + (6).to_bytes(8, "little")
    m = MapData.from_columns("@k", True, Columns([[5, 6]], [INT], [1, 2], Count, raw, 8))
    assert m.key_bytes == [raw[:8], raw[8:]]
    assert MapData.from_columns("@k", True, Columns([[5]], [INT], [1])).key_bytes is None


def test_column_order() -> None:
    assert order.column_order(MapData("@p", True, [((1,), 2)])) is None
    cols = Columns([[2, 1]], [INT], [3, 4])
    assert order.column_order(MapData.from_columns("@p", True, cols, value_type=T.I64)) == [0, 1]
    # Pointer values are key-sorted in 0.17.
    pointers = MapData.from_columns("@p", True, cols, value_type=T.PointerType(T.VoidType()))
    assert order.column_order(pointers) == [1, 0]
    # A column whose kind is not the one its type sorts by: the general path.
    odd = MapData.from_columns("@p", True, cols, value_type=T.StringType(), key_types=(T.StringType(),))
    assert order.column_order(odd) is None
    strs = Columns([["b", "a"]], [STR], ["x", "y"], value_kind=STR)
    assert order.column_order(MapData.from_columns("@s", True, strs, value_type=T.StringType())) == [1, 0]
    assert order.column_order(MapData.from_columns("@s", True, strs, value_type=T.U64)) is None


@pytest.mark.parametrize("n", [0, 1, 2, 17, 300])
def test_key_sorted_maps(n: int) -> None:
    # String (or pointer) values: 0.17 sorts by key, each component stably,
    # integers unsigned (-1 last), strings by bytes; other components
    # (a stack, say: no Columns kind) never reach this path.
    rng = random.Random(n + 4)
    ints = [rng.choice([-1, -2, 0, 1, 2, 255, 256, 1 << 63]) for _ in range(n)]
    strs = [rng.choice(NASTY) for _ in range(n)]
    vals = [rng.choice(NASTY) for _ in range(n)]
    string = T.StringType(16)
    for value_type in (string, None):
        assert_same(*twin("@v", [ints], [INT], vals, None, value_type, value_kind=STR))
        assert_same(*twin("@v", [strs, ints], [STR, INT], vals, None, value_type, value_kind=STR))
        assert_same(*twin("@v", [ints, strs], [INT, STR], vals, None, value_type, (T.I64, string), value_kind=STR))
    pointer = T.PointerType(T.VoidType())
    assert_same(*twin("@v", [strs, ints], [STR, INT], list(range(n)), None, pointer))
    # Unsorted components keep the read order: a key type 0.17 does not sort.
    fast, slow = twin("@v", [ints, strs], [INT, STR], vals, None, string, (pointer, string), value_kind=STR)
    assert_same(fast, slow)


def test_string_values_exact_text() -> None:
    fast, slow = twin("@c", [[2, -1, 1]], [INT], ["b", 'q"', "é"], None, T.StringType(8), value_kind=STR)
    assert text.format_map(fast, div=3) == "@c[1]: é\n@c[2]: b\n@c[-1]: q\"\n"
    assert ojson.format_map(fast) == ('{"type": "map", "data": {"@c": {"1": "\\uffffffc3\\uffffffa9", '
                                      '"2": "b", "-1": "q\\""}}}\n')
    assert_same(fast, slow)
    # strerror() values are strings 0.17 does not quote in JSON.
    unquoted = T.SymbolType(T.SymbolKind.STRERROR)
    assert_same(*twin("@e", [[1, 2]], [INT], ["No such file", "x"], None, unquoted, value_kind=STR))


# --------------------------------------------------------------------------
# MapItems
# --------------------------------------------------------------------------


def test_map_items_reads_as_a_list_of_pairs() -> None:
    pairs = [(b"k1", b"v1v1"), (b"k2", b"v2v2"), (b"k3", b"v3v3")]
    items = MapItems.pack(pairs, 2, 4)
    assert len(items) == 3 and list(items) == pairs and items == pairs and items != pairs[:2]
    assert items[0] == pairs[0] and items[-1] == pairs[-1] and items[1:] == pairs[1:]
    assert sorted(items, reverse=True) == sorted(pairs, reverse=True)
    assert dict(items) == dict(pairs)  # not taken for a mapping (no "keys" attribute)
    assert MapItems(b"", b"", 8, 8) == [] and not MapItems(b"", b"", 8, 8)
    with pytest.raises(IndexError):
        items[3]
    with pytest.raises(ValueError):
        MapItems(b"abc", b"", 2, 4)
    with pytest.raises(ValueError):
        MapItems(b"ab", b"123", 2, 4)


def test_percpu_items_read_as_lists_per_cpu() -> None:
    # 2 CPUs, 12-byte values at 16-byte strides.
    vals = [[b"a" * 12, b"b" * 12], [b"c" * 12, b"d" * 12]]
    packed = b"".join(v.ljust(16, b"\0") for pair in vals for v in pair)
    items = PercpuItems(b"k1k2", packed, 2, 32, 2, 12)
    assert list(items) == [(b"k1", vals[0]), (b"k2", vals[1])] and items[1] == (b"k2", vals[1])
    assert items.stride == 16
    with pytest.raises(ValueError):
        PercpuItems(b"k1k2", packed, 2, 32, 3, 12)
    with pytest.raises(ValueError):
        PercpuItems(b"k1k2", packed, 2, 32, 2, 17)


# --------------------------------------------------------------------------
# Decoding packed items
# --------------------------------------------------------------------------


def _key_bytes(kt: T.Type, key: tuple, size: int) -> bytes:
    parts = list(zip(kt.elements, kt.offsets())) if isinstance(kt, T.TupleType) else [(kt, 0)]
    out = bytearray(size)
    for (et, off), c in zip(parts, key):
        if isinstance(et, T.StringType):
            raw = encode_output(c)[: et.length]
            # Garbage after the NUL, as a bpf_probe_read_str() buffer may hold.
            out[off:off + et.length] = (raw + b"\0" + b"\xaa" * et.length)[: et.length]
        else:
            out[off:off + 8] = (c % (1 << 64)).to_bytes(8, "little")
    return bytes(out)


MakeKey = Callable[[random.Random], tuple]
KEY_SHAPES: list[tuple[T.Type, MakeKey]] = [
    (T.U64, lambda r: (r.randrange(1 << 64),)),
    (T.I64, lambda r: (r.randrange(-50, 50),)),
    (T.StringType(16), lambda r: (r.choice(NASTY + ["exactly16bytes!!"]),)),
    (T.TupleType((T.I64, T.StringType(5))), lambda r: (r.randrange(-3, 3), r.choice(["", "ab", "abcde", "é"]))),
    (T.TupleType((T.StringType(3), T.U64, T.I64)), lambda r: (r.choice(["", "x", "xyz"]), r.randrange(4),
                                                             r.randrange(-2, 2))),
]
VALUE_SHAPES = [COUNT, SUM, T.AggregationType(T.AggKind.COUNT, signed=True), T.U64, T.I64, T.StringType(16)]


@pytest.mark.parametrize("kt,make_key", KEY_SHAPES)
@pytest.mark.parametrize("vt", VALUE_SHAPES)
@pytest.mark.parametrize("n", [0, 3, 300])
def test_decode_columns_matches_general_decoder(kt: T.Type, make_key: MakeKey, vt: T.Type, n: int) -> None:
    ml = map_layout("@d", kt, vt, 1024, set())
    rng = random.Random(n)
    seen: set[bytes] = set()
    pairs = []
    for _ in range(n):  # up to n distinct keys (some shapes have fewer)
        kb = _key_bytes(ml.key_type, make_key(rng), ml.key_size)
        if kb not in seen:
            seen.add(kb)
            if isinstance(vt, T.StringType):
                value = _key_bytes(vt, (rng.choice(NASTY),), ml.value_size)
            else:
                value = rng.choice([0, 1, 2, U64_MAX, 1 << 63, 77]).to_bytes(8, "little")
            pairs.append((kb, value))
    res = decode.Resolver(Layout())
    fast = decode.decode_map(res, ml, MapItems.pack(pairs, ml.key_size, ml.value_size))
    slow = decode.decode_map(res, ml, pairs)
    assert fast.columns is not None and slow.columns is None
    assert fast.entries == slow.entries and fast.key_bytes == slow.key_bytes
    assert fast.key_types == slow.key_types and fast.value_type == slow.value_type
    for top, div in PRINT_ARGS[:5]:
        assert text.format_map(fast, top=top, div=div) == text.format_map(slow, top=top, div=div)
        assert ojson.format_map(fast, top=top, div=div) == ojson.format_map(slow, top=top, div=div)


PERCPU_VALUES = [T.AggregationType(T.AggKind.MIN), T.AggregationType(T.AggKind.MAX), AVG, STATS]


def _cpu_value(rng: random.Random, kind: T.AggKind) -> bytes:
    if kind in (T.AggKind.MIN, T.AggKind.MAX):
        if rng.random() < 0.3:
            return bytes(16)  # never written on this CPU
        v = rng.choice([-5, 0, 3, 0xFFFFFFFF - 2, 0xFFFFFFFF, 1 << 40, 7])
        return (v % (1 << 64)).to_bytes(8, "little") + (1).to_bytes(8, "little")
    total = rng.choice([-9, -1, 0, 4, 10, 1 << 62])
    return (total % (1 << 64)).to_bytes(8, "little") + rng.choice([0, 1, 2, 5]).to_bytes(8, "little")


@pytest.mark.parametrize("kt,make_key", KEY_SHAPES)
@pytest.mark.parametrize("vt", PERCPU_VALUES)
@pytest.mark.parametrize("cpus", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 5, 300])
def test_decode_percpu_columns_match_general_decoder(kt: T.Type, make_key: MakeKey, vt: T.AggregationType,
                                                     cpus: int, n: int) -> None:
    ml = map_layout("@p", kt, vt, 1024, set())
    assert ml.percpu
    rng = random.Random(n * 10 + cpus)
    seen: set[bytes] = set()
    pairs: list[tuple[bytes, list[bytes]]] = []
    for _ in range(n):
        kb = _key_bytes(ml.key_type, make_key(rng), ml.key_size)
        if kb not in seen:
            seen.add(kb)
            pairs.append((kb, [_cpu_value(rng, vt.kind) for _ in range(cpus)]))
    packed = PercpuItems(b"".join(k for k, _ in pairs), b"".join(b"".join(v) for _, v in pairs),
                         ml.key_size, 16 * cpus, cpus, ml.value_size)
    assert list(packed) == pairs
    res = decode.Resolver(Layout())
    fast = decode.decode_map(res, ml, packed)
    slow = decode.decode_map(res, ml, pairs)
    assert fast.columns is not None and slow.columns is None
    assert fast.entries == slow.entries and fast.key_bytes == slow.key_bytes
    for top, div in PRINT_ARGS[:5]:
        assert text.format_map(fast, top=top, div=div) == text.format_map(slow, top=top, div=div)
        assert ojson.format_map(fast, top=top, div=div) == ojson.format_map(slow, top=top, div=div)


def test_decode_other_shapes_take_the_general_path() -> None:
    res = decode.Resolver(Layout())
    hist = map_layout("@h", T.U64, T.AggregationType(T.AggKind.HIST), 16, set())
    kb = (7).to_bytes(8, "little") + (3).to_bytes(8, "little")
    m = decode.decode_map(res, hist, MapItems.pack([(kb, (2).to_bytes(8, "little"))], 16, 8))
    assert m.columns is None and text.format_map(m).startswith("@h[7]: \n[2, 4)")
    scalar = map_layout("@c", None, COUNT, 1, set())
    m = decode.decode_map(res, scalar, MapItems.pack([(bytes(8), (4).to_bytes(8, "little"))], 8, 8))
    assert m.columns is None and text.format_map(m) == "@c: 4\n"
    stacks = map_layout("@k", T.U64, T.StackType(), 16, set())
    m = decode.decode_map(res, stacks, MapItems.pack([(bytes(8), (-14 % (1 << 64)).to_bytes(8, "little")
                                                       + bytes(stacks.value_size - 8))], 8, stacks.value_size))
    assert m.columns is None and text.format_map(m) == "@k[0]: \n\n"  # no frames: a newline
