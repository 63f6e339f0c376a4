"""The neutral output value model: what the runtime hands to the renderers.

This module owns the *shape* of decoded values and the bucket arithmetic of
hist() and lhist().  The runtime reads kernel bytes and decodes them into these
values (integers already sign-corrected, symbols already resolved); the
renderers in text.py and json.py turn them into bpftrace 0.17's exact output.

Value forms (``Value``):

* ``int`` -- every integer, pointer and bool (0.17 has no bool type: 1/0).
  Signedness is already applied; the renderers print the Python int as is.
* ``str`` -- strings and resolved symbols (ksym, usym, username, ntop(),
  strftime(), strerror(), probe, cgroup_path, macaddr...).  Bytes that are not
  UTF-8 travel as lone surrogates (``surrogateescape``), as in
  pytrace.semantic.formats; encode_output() turns rendered text back into the
  exact bytes bpftrace would write.
* ``Stack`` -- a resolved kstack/ustack.
* ``tuple`` -- a bpftrace tuple; ``list`` -- a C array (``int[4]``);
  ``Record`` -- a struct/union value.
* ``Buffer`` -- a buf() value (printed like ``%r``).
* ``Count Sum Min Max Avg Stats Hist LHist`` -- aggregation values.

Which *symbol* a ``str`` is matters in two places (JSON quoting and the line
separator of ksym/usym/ntop/stack maps), so a map or value may carry its
pytrace.semantic.types.Type; without one the renderers infer from the Python
value (a ``str`` is a string).
"""

from __future__ import annotations

from typing import Mapping, Sequence, Union

from pytrace.semantic.types import StackMode, Type

_U64 = 1 << 64


def to_s64(n: int) -> int:
    """Reinterpret ``n`` as a two's complement int64 (what BPF compares)."""
    n %= _U64
    return n - _U64 if n >= 1 << 63 else n


def to_s32(n: int) -> int:
    """C conversion of ``n`` to a 32-bit ``int`` (wraps, as on x86_64)."""
    n %= 1 << 32
    return n - (1 << 32) if n >= 1 << 31 else n


def c_div(a: int, b: int) -> int:
    """C integer division: truncates toward zero (``-7 / 2 == -3``)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def encode_output(text: str) -> bytes:
    """The exact bytes of rendered text (lone surrogates back to raw bytes)."""
    return text.encode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------
# The record base
# --------------------------------------------------------------------------


class FrozenValueError(AttributeError):
    """Assignment to a field of an output value (they are immutable)."""


_set = object.__setattr__


class _Frozen:
    """What ``@dataclass(frozen=True)`` gave these classes, without its cost:
    a dataclass is compiled when its module is imported (about 15 ms for this
    module's dozen), and building one per decoded value ran its generated
    ``__init__`` through ``object.__setattr__`` anyway.  Fields are the
    ``__slots__``; values compare and hash by class and fields, repr as a
    dataclass would, and cannot be reassigned."""

    __slots__ = ()
    # The field names, in order: the __slots__ of the class that declares
    # them (subclasses such as Count add none), less "_" caches.
    _names: tuple[str, ...] = ()

    def __init_subclass__(cls) -> None:
        if cls.__dict__.get("__slots__"):
            cls._names = tuple(f for f in cls.__dict__["__slots__"] if not f.startswith("_"))  # not caches

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, f) for f in self._names)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._fields() == other._fields()  # type: ignore[attr-defined]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._names)
        return f"{type(self).__name__}({inner})"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenValueError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenValueError(f"cannot delete field {name!r}")


# --------------------------------------------------------------------------
# Plain values
# --------------------------------------------------------------------------


class Stack(_Frozen):
    """A resolved kernel or user stack.

    ``frames`` are the symbolised frames, innermost first.  In BPFTRACE mode
    each is the symbol text (``do_nanosleep+60``) and 0.17 indents it (8
    spaces as a value, 4 as a map key).  In PERF mode each is 0.17's
    ``"<hex address> <symbol>"`` text (``7f72f7291503 clock_nanosleep+35
    (/usr/lib/x86_64-linux-gnu/libc.so.6)``) and is printed after a tab.
    ``missing`` marks a stack id the kernel could not resolve (e.g. -EFAULT):
    0.17 prints nothing at all for it, not even the leading newline.
    """

    __slots__ = ("frames", "mode", "missing")
    frames: tuple[str, ...]
    mode: StackMode
    missing: bool

    def __init__(self, frames: Sequence[str] = (), mode: StackMode = StackMode.BPFTRACE,
                 missing: bool = False) -> None:
        # Accept any sequence (a list of frames, say) but store a tuple, so a
        # Stack can be a dict key like the other key values.
        _set(self, "frames", tuple(frames))
        _set(self, "mode", mode)
        _set(self, "missing", missing)


class Buffer(_Frozen):
    """A buf() value: the bytes actually captured (length already applied)."""

    __slots__ = ("data",)
    data: bytes

    def __init__(self, data: bytes) -> None:
        _set(self, "data", data)


class Record(_Frozen):
    """A struct/union value: ``(field name, value)`` pairs in declaration order."""

    __slots__ = ("fields",)
    fields: tuple[tuple[str, "Value"], ...]

    def __init__(self, fields: tuple[tuple[str, "Value"], ...]) -> None:
        _set(self, "fields", fields)


# --------------------------------------------------------------------------
# Aggregations
# --------------------------------------------------------------------------


class IntAggregation(_Frozen):
    """count(), sum(), min() and max(): one integer, ``n``."""

    __slots__ = ("n",)
    n: int

    def __init__(self, n: int) -> None:
        _set(self, "n", n)


class Count(IntAggregation):
    __slots__ = ()


class Sum(IntAggregation):
    __slots__ = ()


class Min(IntAggregation):
    __slots__ = ()


class Max(IntAggregation):
    __slots__ = ()


class MeanAggregation(_Frozen):
    __slots__ = ("count", "total")
    count: int
    total: int

    def __init__(self, count: int, total: int) -> None:
        _set(self, "count", count)
        _set(self, "total", total)

    @property
    def average(self) -> int:
        return c_div(self.total, self.count) if self.count else 0


class Avg(MeanAggregation):
    """avg(): 0.17 prints ``total / count`` in C integer division (toward zero),
    and 0 when count is 0."""

    __slots__ = ()


class Stats(MeanAggregation):
    """stats(): printed as ``count C, average A, total T`` (A as in Avg)."""

    __slots__ = ()


# 0.17 keeps 65 hist slots and 1002 lhist slots per key (bpftrace.cpp).
HIST_SLOTS = 65
LHIST_MAX_BUCKETS = 1000


class Hist(_Frozen):
    """hist(): ``buckets`` maps a hist_index() to its count; absent = 0.

    Index 0 holds negative values, 1 holds 0, 2 holds 1 and index i >= 3
    holds [2**(i-2), 2**(i-1)).  0.17's BPF code never produces an index
    above 33 (every value >= 2**31 lands in [2G, 4G)); see hist_index().
    ``bits`` is hist()'s second argument in later bpftrace (log-linear
    sub-buckets); 0.17 has only the one-argument form, so it must be 0.
    """

    __slots__ = ("bits", "buckets")
    bits: int
    buckets: Mapping[int, int]

    def __init__(self, bits: int = 0, buckets: Mapping[int, int] | None = None) -> None:
        if bits != 0:
            raise ValueError("bpftrace 0.17's hist() has no sub-buckets: bits must be 0")
        buckets = {} if buckets is None else buckets
        for i in buckets:
            if not 0 <= i < HIST_SLOTS:
                raise ValueError(f"hist bucket index {i} out of range 0..{HIST_SLOTS - 1}")
        _set(self, "bits", bits)
        _set(self, "buckets", buckets)

    def slots(self) -> list[int]:
        return [self.buckets.get(i, 0) for i in range(HIST_SLOTS)]

    @property
    def total(self) -> int:
        return sum(self.buckets.values())


class LHist(_Frozen):
    """lhist(value, lo, hi, step): ``buckets`` maps an lhist_index() to its count.

    With n = (hi - lo) // step: index 0 is "below lo", index i in 1..n holds
    [lo + (i-1)*step, lo + i*step), and index n+1 is printed "[hi, ...)".
    When step does not divide hi - lo, values in [lo + n*step, hi] land in
    index n+1 too (0.17 computes 1 + (value - lo) / step for value <= hi).
    """

    __slots__ = ("lo", "hi", "step", "buckets")
    lo: int
    hi: int
    step: int
    buckets: Mapping[int, int]

    def __init__(self, lo: int, hi: int, step: int, buckets: Mapping[int, int] | None = None) -> None:
        if step <= 0 or hi <= lo:
            raise ValueError("lhist needs step > 0 and hi > lo")
        buckets = {} if buckets is None else buckets
        for i in buckets:
            if not 0 <= i < LHIST_MAX_BUCKETS + 2:
                raise ValueError(f"lhist bucket index {i} out of range")
        _set(self, "lo", lo)
        _set(self, "hi", hi)
        _set(self, "step", step)
        _set(self, "buckets", buckets)

    @property
    def nbuckets(self) -> int:
        """Buckets inside [lo, hi), excluding the two open-ended ones."""
        return (self.hi - self.lo) // self.step

    def slots(self) -> list[int]:
        return [self.buckets.get(i, 0) for i in range(LHIST_MAX_BUCKETS + 2)]

    @property
    def total(self) -> int:
        return sum(self.buckets.values())


Aggregation = Union[Count, Sum, Min, Max, Avg, Stats, Hist, LHist]
Value = Union[int, str, Stack, Buffer, Record, tuple, list, Aggregation]
Key = tuple  # one element per map key component; () for scalar maps


def hist_index(value: int, bits: int = 0) -> int:
    """The hist() slot bpftrace 0.17's BPF code picks for ``value``.

    The value is compared as a signed 64-bit integer (so 2**64-1 counts as
    -1).  0.17 generates this log2 (codegen_llvm createLog2Function)::

        if (n < 0) return 0;
        if (n == 0) return 1;
        result = 0;
        for (i = 16; i > 0; i /= 2)
            if (n >= 1 << i) { n >>= i; result += i; }
        return result + 2;

    The shifts only reach 16+8+4+2+1 = 31, so every n >= 2**31 gets 33.
    """
    if bits != 0:
        raise ValueError("bpftrace 0.17's hist() has no sub-buckets: bits must be 0")
    n = to_s64(value)
    if n < 0:
        return 0
    if n == 0:
        return 1
    result = 0
    for i in (16, 8, 4, 2, 1):
        if n >= 1 << i:
            n >>= i
            result += i
    return result + 2


def lhist_index(value: int, lo: int, hi: int, step: int) -> int:
    """The lhist() slot bpftrace 0.17's BPF code picks (createLinearFunction)::

        if (value < min) return 0;
        if (value > max) return 1 + (max - min) / step;
        return 1 + (value - min) / step;

    Comparisons are signed 64-bit.  Note ``>`` not ``>=``: value == max lands
    in 1 + (max - min) / step, which is the "[max, ...)" slot only because
    0.17 insists on min >= 0 and a step; with a step that does not divide
    the range, the values just below max share that slot as well.
    """
    v = to_s64(value)
    if v < lo:
        return 0
    if v > hi:
        return 1 + (hi - lo) // step
    return 1 + (v - lo) // step


def make_hist(values: Sequence[int]) -> Hist:
    """A Hist holding one sample per element of ``values`` (for tests and tools)."""
    buckets: dict[int, int] = {}
    for v in values:
        i = hist_index(v)
        buckets[i] = buckets.get(i, 0) + 1
    return Hist(0, buckets)


def make_lhist(values: Sequence[int], lo: int, hi: int, step: int) -> LHist:
    """An LHist holding one sample per element of ``values``."""
    buckets: dict[int, int] = {}
    for v in values:
        i = lhist_index(v, lo, hi, step)
        buckets[i] = buckets.get(i, 0) + 1
    return LHist(lo, hi, step, buckets)


# --------------------------------------------------------------------------
# Maps
# --------------------------------------------------------------------------


# Kinds of Columns key components.
INT, STR = "int", "str"


class Columns(_Frozen):
    """A map's entries as parallel lists, in read order.

    The runtime hands over the common shapes this way (integer and string
    keys; count, sum, min, max, avg, stats, integer and string values), so that
    ordering and printing 100,000 entries take a few list operations instead
    of several objects per entry (see order.column_order() and
    render.column_rows()).

    * ``keys`` -- one list per key component (``()`` for a scalar map), each
      all plain ``int`` or all ``str`` as ``kinds`` (INT/STR) says.
    * ``values`` -- the integer of each value (``Count(n)`` holds ``n``);
      for avg and stats, the totals; or, ``value_kind`` STR, the strings.
    * ``counts`` -- avg and stats only: the counts.
    * ``wrap`` -- the value class (Count, Sum, Min, Max, Avg or Stats), None
      for plain integers.
    * ``raw_keys``, ``key_size`` -- optionally the packed BPF keys,
      ``key_size`` bytes each: MapData.key_bytes slices them when asked.
    """

    __slots__ = ("keys", "kinds", "values", "counts", "wrap", "raw_keys", "key_size", "value_kind", "_averages")
    keys: tuple[list, ...]
    kinds: tuple[str, ...]
    values: list
    counts: list[int] | None
    wrap: type[IntAggregation] | type[MeanAggregation] | None
    raw_keys: bytes | None
    key_size: int
    value_kind: str

    def __init__(self, keys: Sequence[list], kinds: Sequence[str], values: list,
                 wrap: type[IntAggregation] | type[MeanAggregation] | None = None, raw_keys: bytes | None = None,
                 key_size: int = 0, counts: list[int] | None = None, value_kind: str = INT) -> None:
        n = len(values)
        if len(kinds) != len(keys) or any(k not in (INT, STR) for k in kinds):
            raise ValueError("Columns: one kind, int or str, per key component")
        if any(len(col) != n for col in keys):
            raise ValueError("Columns: every key column needs one element per value")
        if raw_keys is not None and (key_size <= 0 or len(raw_keys) != n * key_size):
            raise ValueError("Columns: raw_keys must hold key_size bytes per value")
        is_mean = wrap is not None and issubclass(wrap, MeanAggregation)
        if is_mean != (counts is not None) or (counts is not None and len(counts) != n):
            raise ValueError("Columns: avg and stats values need one count per total, others none")
        if value_kind not in (INT, STR) or (value_kind == STR and wrap is not None):
            raise ValueError("Columns: values are integers, or plain strings")
        _set(self, "keys", tuple(keys))
        _set(self, "kinds", tuple(kinds))
        _set(self, "values", values)
        _set(self, "counts", counts)
        _set(self, "wrap", wrap)
        _set(self, "raw_keys", raw_keys)
        _set(self, "key_size", key_size)
        _set(self, "value_kind", value_kind)
        _set(self, "_averages", None)

    def value(self, i: int) -> Value:
        """The value of entry ``i`` as the entries list holds it."""
        if self.counts is not None:
            return self.wrap(self.counts[i], self.values[i])  # type: ignore[call-arg,misc]
        v = self.values[i]
        return v if self.wrap is None else self.wrap(v)  # type: ignore[call-arg]

    def averages(self) -> list[int]:
        """avg/stats: each entry's average, as Avg.average computes it
        (inlined for the positive counts the kernel's maps hold).  Kept:
        both the order and the printing need them."""
        if self._averages is None:
            assert self.counts is not None
            _set(self, "_averages", [(t // c if t >= 0 else -(-t // c)) if c > 0 else (c_div(t, c) if c else 0)
                                     for t, c in zip(self.values, self.counts)])
        return self._averages  # type: ignore[return-value]

    def entries(self) -> list[tuple[Key, Value]]:
        if self.counts is not None:
            vals: list = list(map(self.wrap, self.counts, self.values))  # type: ignore[arg-type]
        else:
            vals = self.values if self.wrap is None else list(map(self.wrap, self.values))  # type: ignore[arg-type]
        keys: list[tuple] = list(zip(*self.keys)) if self.keys else [()] * len(vals)
        return list(zip(keys, vals))


class MapData(_Frozen):
    """One map's contents as read from the kernel.

    ``entries`` are ``(key tuple, value)`` in the order the runtime read them
    (bpf_get_next_key order): 0.17 sorts some maps stably from that order, so
    keep it.  The key tuple is empty for a scalar map (``keyed`` False).
    ``MapData.from_columns()`` makes one from ``Columns`` instead; its
    ``entries`` are then built on first use, and the renderers use the
    columns directly where they can.

    Optional, for exactness where the Python values cannot tell:

    * ``value_type`` -- the map's value type.  Decides the layout of an
      *empty* map (0.17 prints one blank line, two for avg/stats), JSON
      quoting (strftime/strerror/macaddr are unquoted), the glued layout of
      ksym/usym/ntop/stack maps, and key-sorting of pointer-valued maps.
    * ``key_types`` -- per key component; only int and string components are
      sorted in key-sorted maps (others keep read order, as in 0.17).
    * ``key_bytes`` -- the raw BPF key of each entry, parallel to
      ``entries``.  hist/lhist/avg/stats maps are ordered by these bytes
      (memcmp) before the sort by total; without them the bytes are rebuilt
      from the values (ints as 8-byte little endian, strings as their bytes),
      which is exact for int and string keys.
    """

    __slots__ = ("name", "keyed", "value_type", "key_types", "columns", "_entries", "_key_bytes")
    name: str
    keyed: bool
    value_type: Type | None
    key_types: tuple[Type, ...] | None
    columns: Columns | None

    def __init__(self, name: str, keyed: bool, entries: list[tuple[Key, Value]],
                 value_type: Type | None = None, key_types: tuple[Type, ...] | None = None,
                 key_bytes: list[bytes] | None = None) -> None:
        if not keyed and any(k != () for k, _ in entries):
            raise ValueError(f"{name}: a scalar map's key must be ()")
        if key_bytes is not None and len(key_bytes) != len(entries):
            raise ValueError(f"{name}: key_bytes must parallel entries")
        self._init(name, keyed, value_type, key_types, None, entries, key_bytes)

    @classmethod
    def from_columns(cls, name: str, keyed: bool, columns: Columns, value_type: Type | None = None,
                     key_types: tuple[Type, ...] | None = None) -> MapData:
        if keyed != bool(columns.keys):
            raise ValueError(f"{name}: a keyed map needs key columns, a scalar map none")
        m = cls.__new__(cls)
        m._init(name, keyed, value_type, key_types, columns, None, None)
        return m

    def _init(self, name: str, keyed: bool, value_type: Type | None, key_types: tuple[Type, ...] | None,
              columns: Columns | None, entries: list[tuple[Key, Value]] | None,
              key_bytes: list[bytes] | None) -> None:
        _set(self, "name", name)
        _set(self, "keyed", keyed)
        _set(self, "value_type", value_type)
        _set(self, "key_types", key_types)
        _set(self, "columns", columns)
        _set(self, "_entries", entries)
        _set(self, "_key_bytes", key_bytes)

    @property
    def entries(self) -> list[tuple[Key, Value]]:
        if self._entries is None:
            assert self.columns is not None
            _set(self, "_entries", self.columns.entries())  # a cache: the contents do not change
        return self._entries  # type: ignore[return-value]

    @property
    def key_bytes(self) -> list[bytes] | None:
        c = self.columns
        if self._key_bytes is None and c is not None and c.raw_keys is not None:
            raw, ks = c.raw_keys, c.key_size
            _set(self, "_key_bytes", [raw[i:i + ks] for i in range(0, len(raw), ks)])
        return self._key_bytes

    def entry_count(self) -> int:
        """The number of entries (without building them).  Not ``__len__``:
        a MapData is true even when empty, as the dataclass was."""
        return len(self.columns.values) if self._entries is None and self.columns is not None \
            else len(self.entries)

    def first_value(self) -> Value | None:
        """The value of the first entry read, None for an empty map."""
        if self._entries is None and self.columns is not None:
            return self.columns.value(0) if self.columns.values else None
        return self.entries[0][1] if self.entries else None

    def _fields(self) -> tuple[object, ...]:
        return (self.name, self.keyed, self.entries, self.value_type, self.key_types, self.key_bytes)

    def __repr__(self) -> str:
        return (f"MapData(name={self.name!r}, keyed={self.keyed!r}, entries={self.entries!r}, "
                f"value_type={self.value_type!r}, key_types={self.key_types!r}, "
                f"key_bytes={self.key_bytes!r})")
