"""Resource layout: the contract between the code generator and the runtime.

From a checked program this decides, before any code is generated, every BPF
map (script maps and internal ones), the byte layout of map keys and values,
the ids and payload layouts of asynchronous events (printf, exit, print...),
and the table of probe names.  The runtime decodes maps and events with the
same objects, so the two sides cannot disagree.
"""

from __future__ import annotations

from enum import Enum

from ..records import dataclass, field
from ..semantic import types as T

# bpf_map_type values (include/uapi/linux/bpf.h).
MAP_HASH, MAP_ARRAY, MAP_PERCPU_HASH, MAP_PERCPU_ARRAY, MAP_STACK_TRACE = 1, 2, 5, 6, 7
MAP_RINGBUF = 27
BPF_F_NO_PREALLOC = 1

RINGBUF_BYTES = 1 << 24        # 16 MiB: measured to keep up with ~1.3 M events/s
STACK_MAP_ENTRIES = 16384
MAX_STACK_DEPTH = 127          # /proc/sys/kernel/perf_event_max_stack default


# Event and update losses are counted in u64 counters the runtime reports at
# exit: slot LOST_SLOT counts ring-buffer records that could not be written,
# slot mapfull_slot(layout, name) the updates of that map dropped because it
# was full.  Each is a global named counter_symbol(slot) in the object's
# COUNTERS_SECTION: the loader makes the section a one-element array map
# (bpf/elf.create_data_maps) and a counter is the u64 at its symbol's offset
# in that element (see read_counters).  Reaching one is an ld_imm64 and an
# atomic add, where a per-CPU count map costs a helper call.
COUNTERS_SECTION = ".bss.counters"
LOST_SLOT = 0

# bpftrace 0.17 stores min(v) as 0xffffffff - v, so that one signed ">="
# against the missing-entry value 0 serves both min() and max().
MIN_BIAS = 0xFFFFFFFF


class ValueKind(Enum):
    PLAIN = "plain"            # the value's own bytes (ints, strings, tuples...)
    ADD = "add"                # count, sum, @x++, @x += n: u64 updated with an atomic add
    MINMAX = "minmax"          # min, max: {i64 value (min: MIN_BIAS - v); u64 set} per CPU
    AVG = "avg"                # avg, stats: {i64 total; u64 count} per CPU
    HIST = "hist"              # hist, lhist: u64 count per (key, bucket), atomic add;
    #                            key-less: the key is the u64 bucket alone (user_key_size 0)


def align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def storage_type(t: T.Type) -> T.Type:
    """How a value of type ``t`` is stored in a map or an event: integers at
    full width (values are computed in 64-bit registers), the rest as is."""
    if isinstance(t, (T.IntType, T.BoolType, T.EnumType)):
        return T.I64 if getattr(t, "signed", False) else T.U64
    if isinstance(t, T.TupleType):
        return T.TupleType(tuple(storage_type(e) for e in t.elements))
    if isinstance(t, T.PointerType):
        return T.U64
    return t


def type_size(t: T.Type) -> int:
    if isinstance(t, T.SymbolType):
        return align(max(t.byte_size, 8), 8)
    return max(t.size, 1)


@dataclass
class MapLayout:
    """One script map as it lives in the kernel."""

    name: str                       # '@name'
    bpf_name: str                   # the kernel object name (<= 15 chars)
    map_type: int
    key_type: T.Type | None         # None: scalar map (one zero u64 key)
    value_type: T.Type              # the checked value type (AggregationType for aggregations)
    kind: ValueKind
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    # The key as the script typed it (key_type is how it is stored): an
    # enum key prints as its enumerators' names.
    declared_key: T.Type | None = None

    @property
    def percpu(self) -> bool:
        return self.map_type == MAP_PERCPU_HASH

    def key_offsets(self) -> list[int]:
        """Offsets of the user key fields inside the key bytes."""
        if self.key_type is None:
            return [0]
        if isinstance(self.key_type, T.TupleType):
            return self.key_type.offsets()
        return [0]

    @property
    def can_fill(self) -> bool:
        """Whether an insert can fail for want of room: not in a map whose
        one key is fixed (a key-less count, sum, min, max, avg, stats or
        value), as max_entries is at least 1."""
        return self.key_type is not None or self.kind is ValueKind.HIST

    @property
    def user_key_size(self) -> int:
        """Bytes of the user's key in the map key: a key-less hist/lhist
        key is the bucket alone, other key-less maps have one zero u64."""
        if self.key_type is None:
            return 0 if self.kind is ValueKind.HIST else 8
        return align(type_size(self.key_type), 8)


@dataclass
class EventArg:
    type: T.Type                     # as stored (integers at 64 bits)
    offset: int
    declared: T.Type | None = None   # as the script typed it (an enum's names)


@dataclass
class EventLayout:
    """A record sent to user space through the ring buffer: an 8-byte event
    id, then the arguments at fixed offsets."""

    id: int
    kind: str                        # 'printf', 'system', 'cat', 'time', 'exit', 'print', 'clear', ...
    args: list[EventArg] = field(default_factory=list)
    size: int = 8
    format: str | None = None        # printf/system/cat/time format string
    map_name: str | None = None      # print/clear/zero target
    extra: dict[str, object] = field(default_factory=dict)

    def add(self, t: T.Type) -> EventArg:
        st = storage_type(t)
        off = align(self.size, min(8, max(1, st.align)))
        arg = EventArg(st, off, t)
        self.args.append(arg)
        self.size = off + type_size(st)
        return arg

    @property
    def total_size(self) -> int:
        return align(self.size, 8)


@dataclass
class Layout:
    maps: dict[str, MapLayout] = field(default_factory=dict)
    events: list[EventLayout] = field(default_factory=list)
    probe_names: list[str] = field(default_factory=list)
    stack_maps: dict[str, int] = field(default_factory=dict)   # 'pt_kstack'/'pt_ustack' -> depth
    time_formats: list[str] = field(default_factory=list)       # strftime() formats by index
    strlen: int = 64
    # Bytes of the per-CPU scratch buffer (SCRATCH_MAP), 0 when no program
    # needs one: room for what does not fit the 512-byte BPF stack.
    scratch_size: int = 0

    def time_format(self, fmt: str) -> int:
        if fmt not in self.time_formats:
            self.time_formats.append(fmt)
        return self.time_formats.index(fmt)

    def event(self, kind: str, **kw: object) -> EventLayout:
        ev = EventLayout(len(self.events), kind, **kw)  # type: ignore[arg-type]
        self.events.append(ev)
        return ev

    def probe_index(self, name: str) -> int:
        if name not in self.probe_names:
            self.probe_names.append(name)
        return self.probe_names.index(name)


SCRATCH_MAP = "pt_scratch"


def counter_slots(layout: Layout) -> int:
    """How many u64 counters COUNTERS_SECTION holds: lost events, a
    dropped-update count per map, and probe hits (hits_slot)."""
    return 2 + len(layout.maps)


def hits_slot(layout: Layout) -> int:
    """The counter of probe runs that passed their predicate, kept only
    when the code generator is asked to (the REPL's toolbar: option
    count_hits): one atomic add per run, which command-line runs do not pay."""
    return 1 + len(layout.maps)


def read_hits(layout: Layout, raw: bytes, offsets: dict[str, int]) -> int:
    off = offsets.get(counter_symbol(hits_slot(layout)))
    return 0 if off is None else int.from_bytes(raw[off:off + 8], "little")


def mapfull_slot(layout: Layout, name: str) -> int:
    return 1 + list(layout.maps).index(name)


def counter_symbol(slot: int) -> str:
    return f"pt_counter{slot}"


def read_counters(layout: Layout, raw: bytes, offsets: dict[str, int]) -> tuple[int, dict[str, int]]:
    """(events lost, {map name: dropped updates}) from ``raw``, the bytes
    of the counters section (its array map's element 0), and ``offsets``,
    the symbols' values (``{sym.name: sym.value}`` of the object's symbol
    table; a counter without a symbol reads 0)."""
    def word(slot: int) -> int:
        off = offsets.get(counter_symbol(slot))
        return 0 if off is None else int.from_bytes(raw[off:off + 8], "little")
    return word(LOST_SLOT), {name: word(mapfull_slot(layout, name)) for name in layout.maps}


def _bpf_name(name: str, used: set[str]) -> str:
    base = "m_" + ("anon" if name == "@" else name[1:])
    base = "".join(ch if ch.isalnum() or ch in "_." else "_" for ch in base)[:15]
    out, n = base, 1
    while out in used:
        suffix = f"_{n}"
        out = base[: 15 - len(suffix)] + suffix
        n += 1
    used.add(out)
    return out


def map_layout(name: str, key: T.Type | None, value: T.Type, max_keys: int, used: set[str]) -> MapLayout:
    ml = _map_layout(name, key, value, max_keys, used)
    ml.declared_key = key
    return ml


def _map_layout(name: str, key: T.Type | None, value: T.Type, max_keys: int, used: set[str]) -> MapLayout:
    key_st = storage_type(key) if key is not None else None
    user_key = 8 if key_st is None else align(type_size(key_st), 8)
    hist_key = 0 if key_st is None else user_key  # see MapLayout.user_key_size
    if isinstance(value, T.AggregationType):
        k = value.kind
        if k in (T.AggKind.COUNT, T.AggKind.SUM):
            return MapLayout(name, _bpf_name(name, used), MAP_HASH, key_st, value, ValueKind.ADD, user_key, 8,
                             max_keys)
        if k in (T.AggKind.MIN, T.AggKind.MAX):
            return MapLayout(name, _bpf_name(name, used), MAP_PERCPU_HASH, key_st, value, ValueKind.MINMAX,
                             user_key, 16, max_keys)
        if k in (T.AggKind.AVG, T.AggKind.STATS):
            return MapLayout(name, _bpf_name(name, used), MAP_PERCPU_HASH, key_st, value, ValueKind.AVG,
                             user_key, 16, max_keys)
        # hist/lhist: one entry per (key, bucket); buckets are few per key.
        return MapLayout(name, _bpf_name(name, used), MAP_HASH, key_st, value, ValueKind.HIST, hist_key + 8, 8,
                         max_keys * 16, BPF_F_NO_PREALLOC)
    vst = storage_type(value)
    kind = ValueKind.ADD if vst in (T.I64, T.U64) else ValueKind.PLAIN
    return MapLayout(name, _bpf_name(name, used), MAP_HASH, key_st, vst, kind, user_key,
                     align(type_size(vst), 8), max_keys)
