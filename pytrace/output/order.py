"""The order in which bpftrace 0.17 prints a map's entries (and print()'s top).

This module owns entry ordering for both renderers.  0.17 (bpftrace.cpp
print_map / print_map_hist / print_map_stats) does:

* count, sum, min, max and integer-valued maps: ``std::sort`` by value,
  ascending, over the entries in bpf_get_next_key order.  ``std::sort`` is
  not stable, so ties come out in an order that depends on the kernel's hash
  iteration order -- nondeterministic from run to run, but a pure function
  of the read order, which cxx_sort() reproduces exactly.
* hist and lhist maps: entries first go into a ``std::map`` keyed by the raw
  key bytes (so: memcmp order of the key, integers little endian), then
  ``std::sort`` by the sum of all buckets.  Deterministic.
* avg and stats maps: the same, sorted by the average (``total / count``).
* every other map (strings, tuples, ksym..., pointers): a ``std::stable_sort``
  per key component, last component first, so the result is ordered by the
  first component, then the second...  Integer components compare as
  *unsigned* 64-bit (-1 sorts after every positive key), string components
  with strncmp; components of other types (stacks, symbols, probe) are not
  sorted and keep the read order.
* ``print(@m, top)`` keeps the last ``top`` entries of that order (all when
  there are no more than ``top``); stats maps ignore top (0.17 warns).

column_order() is the same order for maps held as ``Columns``: a permutation
of the entry indexes, sorted without making an object per entry.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

from pytrace.output.values import (
    INT,
    Avg,
    Count,
    Hist,
    Key,
    LHist,
    MapData,
    Max,
    Min,
    Stats,
    Sum,
    Value,
    encode_output,
)
from pytrace.semantic.types import (
    AggKind,
    AggregationType,
    BoolType,
    EnumType,
    IntType,
    StringType,
    SymbolKind,
    SymbolType,
    Type,
)

T = TypeVar("T")
Entry = tuple[Key, Value]

# Map categories: which of 0.17's three printers handles the map.
PLAIN, HIST, STATS = "map", "hist", "stats"

_U64 = 1 << 64


# --------------------------------------------------------------------------
# libstdc++'s std::sort, step for step
# --------------------------------------------------------------------------
#
# bpftrace 0.17 is built with GCC 12; its std::sort is introsort: quicksort
# with a median-of-three pivot down to runs of 16, heapsort past a depth of
# 2*floor(log2 n), then one insertion sort over everything.  For 16 entries or
# fewer that is a plain (stable) insertion sort.

_THRESHOLD = 16


def cxx_sort(items: list[T], less: Callable[[T, T], bool]) -> None:
    """Sort ``items`` in place exactly as libstdc++'s ``std::sort`` would."""
    n = len(items)
    if n < 2:
        return
    _introsort_loop(items, 0, n, 2 * (n.bit_length() - 1), less)
    _final_insertion_sort(items, 0, n, less)


def _introsort_loop(a: list[T], first: int, last: int, depth: int,
                    less: Callable[[T, T], bool]) -> None:
    while last - first > _THRESHOLD:
        if depth == 0:
            _heap_sort(a, first, last, less)
            return
        depth -= 1
        cut = _partition_pivot(a, first, last, less)
        _introsort_loop(a, cut, last, depth, less)
        last = cut


def _partition_pivot(a: list[T], first: int, last: int, less: Callable[[T, T], bool]) -> int:
    mid = first + (last - first) // 2
    _move_median_to_first(a, first, first + 1, mid, last - 1, less)
    # __unguarded_partition(first + 1, last, pivot = first)
    lo, hi, pivot = first + 1, last, a[first]
    while True:
        while less(a[lo], pivot):
            lo += 1
        hi -= 1
        while less(pivot, a[hi]):
            hi -= 1
        if not lo < hi:
            return lo
        a[lo], a[hi] = a[hi], a[lo]
        lo += 1


def _move_median_to_first(a: list[T], result: int, i: int, j: int, k: int,
                          less: Callable[[T, T], bool]) -> None:
    if less(a[i], a[j]):
        if less(a[j], a[k]):
            m = j
        elif less(a[i], a[k]):
            m = k
        else:
            m = i
    elif less(a[i], a[k]):
        m = i
    elif less(a[j], a[k]):
        m = k
    else:
        m = j
    a[result], a[m] = a[m], a[result]


def _final_insertion_sort(a: list[T], first: int, last: int,
                          less: Callable[[T, T], bool]) -> None:
    if last - first > _THRESHOLD:
        _insertion_sort(a, first, first + _THRESHOLD, less)
        for i in range(first + _THRESHOLD, last):
            _unguarded_linear_insert(a, i, less)
    else:
        _insertion_sort(a, first, last, less)


def _insertion_sort(a: list[T], first: int, last: int, less: Callable[[T, T], bool]) -> None:
    for i in range(first + 1, last):
        if less(a[i], a[first]):
            val = a[i]
            a[first + 1:i + 1] = a[first:i]
            a[first] = val
        else:
            _unguarded_linear_insert(a, i, less)


def _unguarded_linear_insert(a: list[T], last: int, less: Callable[[T, T], bool]) -> None:
    val = a[last]
    nxt = last - 1
    while less(val, a[nxt]):
        a[last] = a[nxt]
        last = nxt
        nxt -= 1
    a[last] = val


def _heap_sort(a: list[T], first: int, last: int, less: Callable[[T, T], bool]) -> None:
    # std::__partial_sort(first, last, last): __make_heap then __sort_heap.
    n = last - first
    if n >= 2:
        parent = (n - 2) // 2
        while True:
            _adjust_heap(a, first, parent, n, a[first + parent], less)
            if parent == 0:
                break
            parent -= 1
    while last - first > 1:
        last -= 1
        val = a[last]
        a[last] = a[first]
        _adjust_heap(a, first, 0, last - first, val, less)


def _adjust_heap(a: list[T], first: int, hole: int, length: int, value: T,
                 less: Callable[[T, T], bool]) -> None:
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if less(a[first + child], a[first + child - 1]):
            child -= 1
        a[first + hole] = a[first + child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        a[first + hole] = a[first + child - 1]
        hole = child - 1
    # __push_heap
    parent = (hole - 1) // 2
    while hole > top and less(a[first + parent], value):
        a[first + hole] = a[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    a[first + hole] = value


# --------------------------------------------------------------------------
# Classifying a map
# --------------------------------------------------------------------------


def category(m: MapData) -> str:
    """PLAIN, HIST or STATS: which 0.17 printer handles the map."""
    t = m.value_type
    if isinstance(t, AggregationType):
        if t.kind in (AggKind.HIST, AggKind.LHIST):
            return HIST
        if t.kind in (AggKind.AVG, AggKind.STATS):
            return STATS
        return PLAIN
    v = m.first_value()
    if v is not None:
        if isinstance(v, (Hist, LHist)):
            return HIST
        if isinstance(v, (Avg, Stats)):
            return STATS
    return PLAIN


def _value_sorted(m: MapData) -> bool:
    """True for the maps 0.17 sorts by value: count, sum, min, max, integers."""
    t = m.value_type
    if t is not None:
        if isinstance(t, AggregationType):
            return t.kind in (AggKind.COUNT, AggKind.SUM, AggKind.MIN, AggKind.MAX)
        return _is_int_type(t)
    return isinstance(m.first_value(), (int, Count, Sum, Min, Max))


def _is_int_type(t: Type) -> bool:
    # kaddr() is a plain uint64 in 0.17; pointers are *not* IsIntTy there.
    if isinstance(t, SymbolType):
        return t.kind is SymbolKind.KADDR
    return isinstance(t, (IntType, BoolType, EnumType))


def _scalar(v: Value) -> int:
    if isinstance(v, (Count, Sum, Min, Max)):
        return v.n
    if isinstance(v, int):
        return int(v)
    raise TypeError(f"a value-sorted map holds integers, not {type(v).__name__}")


def _average(v: Value) -> int:
    if isinstance(v, (Avg, Stats)):
        return v.average
    raise TypeError(f"an avg/stats map holds Avg or Stats values, not {type(v).__name__}")


def _total(v: Value) -> int:
    if isinstance(v, (Hist, LHist)):
        return v.total
    raise TypeError(f"a hist/lhist map holds Hist or LHist values, not {type(v).__name__}")


# --------------------------------------------------------------------------
# Ordering
# --------------------------------------------------------------------------


def ordered_entries(m: MapData, top: int = 0) -> list[Entry]:
    """The entries of ``m`` in 0.17's print order, cut to the last ``top``
    (0 = all; stats maps ignore it, as 0.17 does)."""
    cat = category(m)
    if cat == PLAIN:
        entries = list(m.entries)
        if _value_sorted(m):
            _sort_by_metric(entries, _scalar)
        else:
            _sort_by_key(entries, m)
    else:
        entries = _by_key_bytes(m)
        _sort_by_metric(entries, _total if cat == HIST else _average)
    top &= 0xFFFFFFFF  # 0.17's top is a uint32_t
    skip_top = cat == STATS and not _is_avg_map(m)
    if top and not skip_top and len(entries) > top:
        entries = entries[len(entries) - top:]
    return entries


# Above this many entries the C-implemented stable sort replaces the std::sort
# replica: the two differ only in the order of equal values, and 0.17 prints
# those in kernel hash order (its hash seed is random per map), which no
# replica reproduces anyway; the replica costs seconds on 100,000 keys.
EXACT_SORT_LIMIT = 256


def _sort_by_metric(entries: list[Entry], metric) -> None:  # type: ignore[no-untyped-def]
    if len(entries) > EXACT_SORT_LIMIT:
        entries.sort(key=lambda e: metric(e[1]))
    else:
        cxx_sort(entries, lambda a, b: metric(a[1]) < metric(b[1]))


def column_order(m: MapData, top: int = 0) -> list[int] | None:
    """ordered_entries() for a map held as Columns: the indexes of its
    entries in print order, cut as ``top`` says; None when the map is not
    held as columns or the general path must order it (avg/stats without
    their raw keys, or columns of another kind than the types say)."""
    cols = m.columns
    if cols is None:
        return None
    cat = category(m)
    n = len(cols.values)
    idx = list(range(n))
    metric: list[int] | None = None
    if cat == PLAIN and cols.counts is None:
        if _value_sorted(m):
            if cols.value_kind != INT:
                return None
            metric = cols.values
        elif not _sort_indexes_by_key(idx, m):
            return None
    elif cat == STATS and cols.counts is not None and cols.raw_keys is not None:
        # _by_key_bytes(): the memcmp order of the raw keys (all distinct).
        raw, ks = cols.raw_keys, cols.key_size
        idx.sort(key=[raw[i:i + ks] for i in range(0, n * ks, ks)].__getitem__)
        metric = cols.averages()
    else:
        return None
    # The sorts of _sort_by_metric(), on indexes: both only compare the metric.
    if metric is not None and n > EXACT_SORT_LIMIT:
        idx.sort(key=metric.__getitem__)
    elif metric is not None:
        values = metric
        cxx_sort(idx, lambda a, b: values[a] < values[b])
    top &= 0xFFFFFFFF  # 0.17's top is a uint32_t
    if top and n > top and not (cat == STATS and not _is_avg_map(m)):
        idx = idx[n - top:]
    return idx


def _sort_indexes_by_key(idx: list[int], m: MapData) -> bool:
    """_sort_by_key() on indexes (the same stable sorts, last component
    first); False if a column's kind is not the one its type sorts by."""
    cols = m.columns
    assert cols is not None
    if not idx:
        return True
    kinds = _key_component_kinds(m, len(cols.keys))
    for kind, col_kind, col in reversed(list(zip(kinds, cols.kinds, cols.keys))):
        if kind is None:
            continue
        if kind != col_kind:
            return False
        if kind == INT:
            sort_key = [k % _U64 for k in col]
        else:
            joined = "".join(col)
            # Code point order is byte order for ASCII; else compare the bytes.
            sort_key = col if joined.isascii() and "\0" not in joined else [_c_string(c) for c in col]
        idx.sort(key=sort_key.__getitem__)
    return True


def _is_avg_map(m: MapData) -> bool:
    t = m.value_type
    if isinstance(t, AggregationType):
        return t.kind is AggKind.AVG
    return isinstance(m.first_value(), Avg)


def _by_key_bytes(m: MapData) -> list[Entry]:
    """The entries as 0.17's std::map<key bytes, ...> iterates them."""
    if m.key_bytes is not None:
        pairs = sorted(zip(m.key_bytes, m.entries), key=lambda p: p[0])
        return [e for _, e in pairs]
    return sorted(m.entries, key=lambda e: tuple(_component_bytes(c) for c in e[0]))


def _component_bytes(c: object) -> bytes:
    if isinstance(c, bool) or isinstance(c, int):
        return (int(c) % _U64).to_bytes(8, "little")
    if isinstance(c, str):
        return _c_string(c)
    # Stacks and the like are ids in the kernel's key; without key_bytes the
    # read order is the best we have (sorted() is stable).
    return b""


def _c_string(s: str) -> bytes:
    return encode_output(s).split(b"\0", 1)[0]


def _key_component_kinds(m: MapData, width: int) -> list[str | None]:
    """Per key component: "int", "str" or None (not sorted by 0.17)."""
    kinds: list[str | None] = []
    for i in range(width):
        if m.key_types is not None and i < len(m.key_types):
            t = m.key_types[i]
            kinds.append("int" if _is_int_type(t) else "str" if isinstance(t, StringType) else None)
            continue
        sample = m.columns.keys[i][0] if m.columns is not None else m.entries[0][0][i]
        kinds.append("int" if isinstance(sample, int) else "str" if isinstance(sample, str) else None)
    return kinds


def _sort_by_key(entries: list[Entry], m: MapData) -> None:
    if not entries:
        return
    width = len(entries[0][0])
    kinds = _key_component_kinds(m, width)
    # Last component first, each sort stable: ends up ordered by the first.
    for i in reversed(range(width)):
        if kinds[i] == "int":
            entries.sort(key=lambda e, i=i: int(e[0][i]) % _U64)
        elif kinds[i] == "str":
            entries.sort(key=lambda e, i=i: _c_string(e[0][i]))


def sorted_maps(maps: Sequence[MapData]) -> list[MapData]:
    """Maps in the order 0.17 prints them at exit: by name (a std::map<string>)."""
    return sorted(maps, key=lambda m: encode_output(m.name))
