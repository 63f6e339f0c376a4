"""pytrace.output.values and .order: bucket indexes, the value model, and
bpftrace 0.17's entry order (including libstdc++'s std::sort, step for step).

The expected data were observed with /usr/bin/bpftrace 0.17 (bucket indexes,
orders) and with g++ 12's std::sort (the permutations), so these run
without root; tests/kernel/test_output_oracle.py re-checks against bpftrace.
"""

from __future__ import annotations

import random

import pytest

from pytrace.output import order
from pytrace.output.values import (
    Avg, Count, Hist, LHist, MapData, Stack, Stats, Sum, c_div, hist_index, lhist_index, make_hist,
    make_lhist, to_s64,
)
from pytrace.semantic.types import AggKind, AggregationType, I64, PointerType, StringType, VoidType

# value -> hist slot, as 0.17 prints them: slot 0 "(..., 0)", 1 "[0]", 2 "[1]",
# 3 "[2, 4)" ... 33 "[2G, 4G)" (the cap: 0.17's log2 shifts only add up to 31).
HIST_CASES = [
    (-5, 0), (-1, 0), (0, 1), (1, 2), (2, 3), (3, 3), (4, 4), (7, 4), (8, 5),
    (1000, 11), (1023, 11), (1024, 12), (1 << 20, 22), ((1 << 31) - 1, 32), (1 << 31, 33),
    ((1 << 32) - 1, 33), (1 << 32, 33), (1 << 40, 33), (1 << 62, 33), ((1 << 63) - 1, 33),
    # unsigned values with the top bit set compare as negative int64
    (1 << 63, 0), ((1 << 64) - 1, 0), (-(1 << 63), 0),
]


@pytest.mark.parametrize("value,slot", HIST_CASES)
def test_hist_index(value: int, slot: int) -> None:
    assert hist_index(value) == slot


def test_hist_index_rejects_sub_buckets() -> None:
    with pytest.raises(ValueError):
        hist_index(5, 1)
    with pytest.raises(ValueError):
        Hist(2, {})
    with pytest.raises(ValueError):
        Hist(0, {65: 1})


# (value, lo, hi, step) -> slot; slot n+1 with n = (hi-lo)//step is "[hi, ...)".
LHIST_CASES = [
    (-1, 0, 100, 10, 0), ((1 << 64) - 1, 0, 100, 10, 0), (0, 0, 100, 10, 1), (9, 0, 100, 10, 1),
    (10, 0, 100, 10, 2), (99, 0, 100, 10, 10), (100, 0, 100, 10, 11), (150, 0, 100, 10, 11),
    (1 << 63, 0, 100, 10, 0),
    # step 30 over 0..100: n = 3, and 90..100 already share "[100, ...)"
    (89, 0, 100, 30, 3), (90, 0, 100, 30, 4), (95, 0, 100, 30, 4), (100, 0, 100, 30, 4),
    (101, 0, 100, 30, 4),
    (5, 10, 20, 5, 0), (10, 10, 20, 5, 1), (15, 10, 20, 5, 2), (20, 10, 20, 5, 3), (25, 10, 20, 5, 3),
]


@pytest.mark.parametrize("value,lo,hi,step,slot", LHIST_CASES)
def test_lhist_index(value: int, lo: int, hi: int, step: int, slot: int) -> None:
    assert lhist_index(value, lo, hi, step) == slot


def test_make_hist_and_lhist() -> None:
    assert make_hist([0, 1, 1000, -5, 1000]).buckets == {1: 1, 2: 1, 11: 2, 0: 1}
    lh = make_lhist([5, 55, 55, 1000], 0, 100, 10)
    assert lh.buckets == {1: 1, 6: 2, 11: 1} and lh.nbuckets == 10 and lh.total == 4
    with pytest.raises(ValueError):
        LHist(0, 100, 0, {})


def test_avg_and_stats_truncate_toward_zero() -> None:
    assert Avg(2, -15).average == -7   # 0.17 printed @av[1]: -7 for avg(-7), avg(-8)
    assert Avg(3, -1).average == 0
    assert Avg(0, 0).average == 0
    assert Stats(2, 15).average == 7
    assert c_div(-50, 3) == -16 and c_div(7, -2) == -3
    assert to_s64((1 << 64) - 1) == -1


def test_values_are_immutable_records() -> None:
    # What @dataclass(frozen=True) gave them: equality and hashing by class
    # and fields, a dataclass repr, no assignment.
    assert Count(1) == Count(1) and Count(1) != Sum(1) and Count(1) != 1
    assert hash(Stats(2, 15)) == hash(Stats(2, 15)) and {Count(3): 1}[Count(3)] == 1
    assert repr(Avg(2, -15)) == "Avg(count=2, total=-15)" and repr(Count(4)) == "Count(n=4)"
    frames = Stack(["a", "b"])
    assert frames.frames == ("a", "b") and frames == Stack(("a", "b")) and hash(frames) == hash(Stack(("a", "b")))
    assert Stack().frames == () and not Stack().missing and Stack(missing=True) != Stack()
    assert Hist().buckets == {} and LHist(0, 10, 1).buckets == {}
    with pytest.raises(AttributeError):
        Count(1).n = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del frames.frames
    m = MapData("@x", True, [((1,), Count(1))])
    assert m == MapData("@x", True, [((1,), Count(1))]) and m != MapData("@y", True, [((1,), Count(1))])
    assert m.entry_count() == 1 and bool(MapData("@e", True, [])) and m.first_value() == Count(1) and MapData("@e", True, []).first_value() is None


def test_scalar_map_keys_must_be_empty() -> None:
    with pytest.raises(ValueError):
        MapData("@x", False, [((1,), 5)])
    with pytest.raises(ValueError):
        MapData("@x", True, [((1,), 5)], key_bytes=[])


# --------------------------------------------------------------------------
# std::sort
# --------------------------------------------------------------------------

# g++ 12 (libstdc++), std::sort of (value, index) pairs by value only; the
# index permutations it produced.
TIES_40 = [1, 2, 1, 1, 2, 2, 0, 0, 2, 1, 2, 2, 0, 0, 1, 1, 0, 0, 2, 2, 2, 0, 2, 1, 1, 2, 2, 2, 2,
           0, 2, 0, 2, 0, 0, 0, 0, 0, 2, 0]
TIES_40_GXX = [31, 33, 17, 16, 21, 13, 12, 34, 35, 36, 7, 6, 37, 29, 39, 14, 23, 0, 24, 15, 9, 3, 2,
               32, 20, 38, 30, 28, 27, 26, 25, 22, 19, 18, 11, 10, 8, 5, 4, 1]


def _median_of_3_killer(n: int) -> list[int]:
    # Musser's sequence: drives introsort to its depth limit (heapsort).
    k = n // 2
    a = [0] * n
    for i in range(1, k + 1):
        if i % 2:
            a[i - 1] = i
            a[i] = k + i
        a[k + i - 1] = 2 * i
    return a


KILLER_96_HALVED_GXX = [
    0, 48, 2, 49, 4, 50, 6, 51, 8, 52, 10, 53, 12, 14, 54, 55, 16, 18, 56, 20, 57, 58, 22, 59, 24,
    60, 26, 28, 61, 30, 62, 63, 32, 34, 64, 65, 36, 66, 38, 67, 40, 68, 42, 69, 44, 70, 46, 1, 71,
    72, 3, 73, 5, 7, 74, 75, 9, 76, 11, 77, 13, 78, 15, 79, 17, 80, 19, 21, 81, 82, 23, 83, 25, 27,
    84, 29, 85, 31, 86, 33, 87, 35, 88, 89, 37, 39, 90, 41, 91, 92, 43, 93, 45, 47, 94, 95,
]


def _permutation(values: list[int]) -> list[int]:
    items = list(enumerate(values))
    order.cxx_sort(items, lambda a, b: a[1] < b[1])
    return [i for i, _ in items]


def test_cxx_sort_matches_libstdcxx_with_ties() -> None:
    assert _permutation(TIES_40) == TIES_40_GXX


def test_cxx_sort_matches_libstdcxx_heapsort_path() -> None:
    values = [x // 2 for x in _median_of_3_killer(96)]
    assert _permutation(values) == KILLER_96_HALVED_GXX


def test_cxx_sort_small_inputs_are_stable_insertion_sort() -> None:
    values = [3, 1, 2, 1, 3, 0, 2]
    assert _permutation(values) == sorted(range(len(values)), key=lambda i: values[i])


def test_cxx_sort_sorts() -> None:
    rng = random.Random(3)
    for n in [0, 1, 2, 16, 17, 33, 200, 1000]:
        values = [rng.randrange(5) for _ in range(n)]
        items = list(values)
        order.cxx_sort(items, lambda a, b: a < b)
        assert items == sorted(values)


# --------------------------------------------------------------------------
# Entry order
# --------------------------------------------------------------------------


def _keys(m: MapData, top: int = 0) -> list[tuple]:
    return [k for k, _ in order.ordered_entries(m, top)]


def test_value_sorted_maps() -> None:
    m = MapData("@s", True, [((1,), Sum(-15)), ((2,), Sum(3)), ((3,), Sum(0)), ((4,), Sum(14))])
    assert _keys(m) == [(1,), (3,), (2,), (4,)]
    assert _keys(m, top=2) == [(2,), (4,)]
    assert _keys(m, top=9) == _keys(m)
    ints = MapData("@i", True, [((1,), (1 << 64) - 16), ((2,), 3)])  # unsigned, decoded
    assert _keys(ints) == [(2,), (1,)]


def test_pointer_values_are_key_sorted() -> None:
    m = MapData("@p", True, [((3,), 4), ((1,), 5), ((2,), 3)], value_type=PointerType(VoidType()))
    assert _keys(m) == [(1,), (2,), (3,)]


def test_key_sort_unsigned_ints_then_strings() -> None:
    m = MapData("@k", True, [((-1,), "m"), ((2,), "n"), ((1,), "o"), ((256,), "p"), ((-2,), "q")])
    assert _keys(m) == [(1,), (2,), (256,), (-2,), (-1,)]
    mk = MapData("@mk", True, [(("b", 2), "w"), (("a", 3), "x"), (("b", 1), "y"), (("ab", 0), "z"),
                               (("", 5), "e")])
    assert _keys(mk) == [("", 5), ("a", 3), ("ab", 0), ("b", 1), ("b", 2)]


def test_key_sort_leaves_other_components_in_read_order() -> None:
    m = MapData("@u", True, [(("root", 2), "a"), (("adm", 1), "b")],
                key_types=(StringType(), I64))
    assert _keys(m) == [("adm", 1), ("root", 2)]
    unsorted = MapData("@u", True, [(("root", 2), "a"), (("adm", 2), "b")],
                       key_types=(PointerType(), I64))
    assert _keys(unsorted) == [("root", 2), ("adm", 2)]


def test_hist_maps_by_key_bytes_then_total() -> None:
    # Observed: @h[256], @h[1], @h[2], @h[3], @h[-2], @h[-1] (all totals 1).
    one = make_hist([1])
    m = MapData("@h", True, [((k,), one) for k in (-1, 2, 1, 256, -2, 3)])
    assert _keys(m) == [(256,), (1,), (2,), (3,), (-2,), (-1,)]
    # Raw key bytes win when given.
    raw = MapData("@h", True, [((1,), one), ((2,), one)], key_bytes=[b"\x02", b"\x01"])
    assert _keys(raw) == [(2,), (1,)]


def test_stats_maps_by_average_and_top_rules() -> None:
    entries = [(("x",), Stats(1, -50)), (("y",), Stats(2, 150)), (("z",), Stats(1, 1))]
    m = MapData("@s", True, entries)
    assert _keys(m) == [("x",), ("z",), ("y",)]
    assert _keys(m, top=1) == _keys(m)  # stats ignore top
    a = MapData("@a", True, [(("x",), Avg(1, -50)), (("y",), Avg(2, 150)), (("z",), Avg(1, 1))])
    assert _keys(a, top=1) == [("y",)]


def test_category_from_type_for_empty_maps() -> None:
    assert order.category(MapData("@e", True, [], value_type=AggregationType(AggKind.STATS))) == "stats"
    assert order.category(MapData("@e", True, [], value_type=AggregationType(AggKind.LHIST))) == "hist"
    assert order.category(MapData("@e", True, [])) == "map"
    assert order.category(MapData("@c", True, [((1,), Count(1))])) == "map"


def test_sorted_maps_by_name_bytes() -> None:
    names = ["@a1", "@a", "@", "@B", "@_x"]
    got = [m.name for m in order.sorted_maps([MapData(n, False, []) for n in names])]
    assert got == ["@", "@B", "@_x", "@a", "@a1"]
