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

from dataclasses import dataclass, field
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
# Plain values
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """A resolved kernel or user stack.

    ``frames`` are the symbolised frames, innermost first.  In BPFTRACE mode
    each is the symbol text (``do_nanosleep+60``) and 0.17 indents it (8
    spaces as a value, 4 as a map key).  In PERF mode each is 0.17's
    ``"<hex address> <symbol>"`` text (``7f72f7291503 clock_nanosleep+35
    (/usr/lib/x86_64-linux-gnu/libc.so.6)``) and is printed after a tab.
    ``missing`` marks a stack id the kernel could not resolve (e.g. -EFAULT):
    0.17 prints nothing at all for it, not even the leading newline.
    """

    frames: tuple[str, ...] = ()
    mode: StackMode = StackMode.BPFTRACE
    missing: bool = False

    def __post_init__(self) -> None:
        # Accept any sequence (a list of frames, say) but store a tuple, so a
        # Stack can be a dict key like the other key values.
        object.__setattr__(self, "frames", tuple(self.frames))


@dataclass(frozen=True)
class Buffer:
    """A buf() value: the bytes actually captured (length already applied)."""

    data: bytes


@dataclass(frozen=True)
class Record:
    """A struct/union value: ``(field name, value)`` pairs in declaration order."""

    fields: tuple[tuple[str, "Value"], ...]


# --------------------------------------------------------------------------
# Aggregations
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    n: int


@dataclass(frozen=True)
class Sum:
    n: int


@dataclass(frozen=True)
class Min:
    n: int


@dataclass(frozen=True)
class Max:
    n: int


@dataclass(frozen=True)
class Avg:
    """avg(): 0.17 prints ``total / count`` in C integer division (toward zero),
    and 0 when count is 0."""

    count: int
    total: int

    @property
    def average(self) -> int:
        return c_div(self.total, self.count) if self.count else 0


@dataclass(frozen=True)
class Stats:
    """stats(): printed as ``count C, average A, total T`` (A as in Avg)."""

    count: int
    total: int

    @property
    def average(self) -> int:
        return c_div(self.total, self.count) if self.count else 0


# 0.17 keeps 65 hist slots and 1002 lhist slots per key (bpftrace.cpp).
HIST_SLOTS = 65
LHIST_MAX_BUCKETS = 1000


@dataclass(frozen=True)
class Hist:
    """hist(): ``buckets`` maps a hist_index() to its count; absent = 0.

    Index 0 holds negative values, 1 holds 0, 2 holds 1 and index i >= 3
    holds [2**(i-2), 2**(i-1)).  0.17's BPF code never produces an index
    above 33 (every value >= 2**31 lands in [2G, 4G)); see hist_index().
    ``bits`` is hist()'s second argument in later bpftrace (log-linear
    sub-buckets); 0.17 has only the one-argument form, so it must be 0.
    """

    bits: int = 0
    buckets: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.bits != 0:
            raise ValueError("bpftrace 0.17's hist() has no sub-buckets: bits must be 0")
        for i in self.buckets:
            if not 0 <= i < HIST_SLOTS:
                raise ValueError(f"hist bucket index {i} out of range 0..{HIST_SLOTS - 1}")

    def slots(self) -> list[int]:
        return [self.buckets.get(i, 0) for i in range(HIST_SLOTS)]

    @property
    def total(self) -> int:
        return sum(self.buckets.values())


@dataclass(frozen=True)
class LHist:
    """lhist(value, lo, hi, step): ``buckets`` maps an lhist_index() to its count.

    With n = (hi - lo) // step: index 0 is "below lo", index i in 1..n holds
    [lo + (i-1)*step, lo + i*step), and index n+1 is printed "[hi, ...)".
    When step does not divide hi - lo, values in [lo + n*step, hi] land in
    index n+1 too (0.17 computes 1 + (value - lo) / step for value <= hi).
    """

    lo: int
    hi: int
    step: int
    buckets: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.step <= 0 or self.hi <= self.lo:
            raise ValueError("lhist needs step > 0 and hi > lo")
        for i in self.buckets:
            if not 0 <= i < LHIST_MAX_BUCKETS + 2:
                raise ValueError(f"lhist bucket index {i} out of range")

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


@dataclass(frozen=True)
class MapData:
    """One map's contents as read from the kernel.

    ``entries`` are ``(key tuple, value)`` in the order the runtime read them
    (bpf_get_next_key order): 0.17 sorts some maps stably from that order, so
    keep it.  The key tuple is empty for a scalar map (``keyed`` False).

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

    name: str
    keyed: bool
    entries: list[tuple[Key, Value]]
    value_type: Type | None = None
    key_types: tuple[Type, ...] | None = None
    key_bytes: list[bytes] | None = None

    def __post_init__(self) -> None:
        if not self.keyed and any(k != () for k, _ in self.entries):
            raise ValueError(f"{self.name}: a scalar map's key must be ()")
        if self.key_bytes is not None and len(self.key_bytes) != len(self.entries):
            raise ValueError(f"{self.name}: key_bytes must parallel entries")
