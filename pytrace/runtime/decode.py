"""Decoding kernel bytes into neutral output values.

The layouts come from ``codegen.layout`` (the same objects the code
generator used), so a map key or an event argument is read exactly as it was
written.  Values that are resolved in user space (symbols, user names,
addresses, stacks) are resolved here.

Whole maps of the common shapes (integer and string keys; count, sum, min,
max, avg, stats, integer and string values), read as packed ``MapItems``,
are decoded column by column into ``output.values.Columns``: a memoryview
cast turns all the integers of a column into a list at once, and no object
is made per entry.  Every other shape goes through the general decoder, one
entry at a time.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Callable

from ..bpf.maps import MapItems, PercpuItems
from ..codegen.layout import MIN_BIAS, Layout, MapLayout, ValueKind, storage_type, type_size
from ..kernel.symbols import KernelSymbols, UserSymbols, username
from ..output import values as V
from ..semantic import types as T
from ..semantic.formats import render_time


class Resolver:
    """User-space context needed to turn raw values into text.  (A plain
    class: a dataclass would cost its compilation at every start.)"""

    def __init__(self, layout: Layout, ksyms: KernelSymbols | None = None, usyms: UserSymbols | None = None,
                 stack_lookup: Callable[[str, int], list[int] | None] | None = None,
                 boot_wall_ns: int = 0, func_names: list[str] | None = None) -> None:
        self.layout = layout
        self.ksyms = KernelSymbols() if ksyms is None else ksyms
        self.usyms = UserSymbols() if usyms is None else usyms
        self.stack_lookup = stack_lookup
        self.boot_wall_ns = boot_wall_ns  # wall-clock time at ktime 0, for strftime()
        self.func_names: list[str] = [] if func_names is None else func_names

    # ------------------------------------------------------------------
    def value(self, t: T.Type, data: bytes | memoryview, off: int = 0) -> object:
        st = storage_type(t)
        if isinstance(st, T.IntType):
            return int.from_bytes(data[off:off + 8], "little", signed=st.signed)
        if isinstance(st, T.StringType):
            raw = bytes(data[off:off + st.length])
            nul = raw.find(b"\0")
            # surrogateescape keeps non-UTF-8 bytes exact for printing.
            return (raw if nul < 0 else raw[:nul]).decode("utf-8", "surrogateescape")
        if isinstance(st, T.TupleType):
            return tuple(self.value(et, data, off + eo) for et, eo in zip(st.elements, st.offsets()))
        if isinstance(st, T.BufferType):
            n = data[off]
            return V.Buffer(bytes(data[off + 1:off + 1 + min(n, st.length)]))
        if isinstance(st, T.StackType):
            sid = int.from_bytes(data[off:off + 8], "little", signed=True)
            pid = int.from_bytes(data[off + 8:off + 16], "little")
            return self.stack(st, sid, pid)
        if isinstance(st, T.SymbolType):
            return self.symbol(st, data, off)
        if isinstance(st, T.ArrayType):
            es = type_size(st.element)
            return tuple(int.from_bytes(data[off + i * es:off + (i + 1) * es], "little") for i in range(st.count))
        return int.from_bytes(data[off:off + 8], "little")

    def symbol(self, st: T.SymbolType, data: bytes | memoryview, off: int) -> str:
        a = int.from_bytes(data[off:off + 8], "little")
        k = st.kind
        if k in (T.SymbolKind.KSYM, T.SymbolKind.USYM) and a == 0:
            return "0"   # 0.17 prints unresolved addresses with showbase: 0 has no 0x
        if k is T.SymbolKind.KSYM:
            return self.ksyms.resolve(a)
        if k is T.SymbolKind.USYM:
            pid = int.from_bytes(data[off + 8:off + 16], "little")
            return self.usyms.resolve(a, pid)
        if k is T.SymbolKind.USERNAME:
            return username(a)
        if k is T.SymbolKind.PROBE:
            names = self.layout.probe_names
            return names[a] if a < len(names) else f"?{a}"
        if k is T.SymbolKind.FUNC:
            return self.func_names[a] if a < len(self.func_names) else f"0x{a:x}"
        if k is T.SymbolKind.INET:
            family = a
            raw = bytes(data[off + 8:off + 24])
            if family == 10:
                return str(ipaddress.IPv6Address(raw[:16]))
            return str(ipaddress.IPv4Address(raw[:4]))
        if k is T.SymbolKind.TIMESTAMP:
            fmt_index = int.from_bytes(data[off + 8:off + 16], "little")
            fmts = self.layout.time_formats
            fmt = fmts[fmt_index] if fmt_index < len(fmts) else "%H:%M:%S"
            total = self.boot_wall_ns + a
            text = render_time(fmt, total // 1_000_000_000, total % 1_000_000_000)
            return "(?)" if text is None else text
        if k is T.SymbolKind.MACADDR:
            raw = bytes(data[off:off + 6])
            return ":".join(f"{b:02X}" for b in raw)
        if k is T.SymbolKind.STRERROR:
            return os.strerror(a)
        return f"0x{a:x}"

    def stack(self, st: T.StackType, sid: int, pid: int) -> V.Stack:
        if sid < 0 or self.stack_lookup is None:
            return V.Stack([], mode=st.mode)
        mapname = "pt_ustack" if st.user else "pt_kstack"
        addrs = self.stack_lookup(mapname, sid) or []
        frames = []
        for addr in addrs[: st.limit]:
            if addr == 0:
                break
            if st.mode is T.StackMode.RAW:
                frames.append(f"{addr:x}")
                continue
            sym = self.usyms.resolve(addr, pid, offset=True) if st.user else self.ksyms.resolve(addr, offset=True)
            if st.mode is T.StackMode.PERF:
                # 0.17's perf mode: "<hex address> <symbol>", user frames
                # followed by their object file (or "[unknown]").
                if st.user:
                    sym = f"{addr:x} {sym} ({self._object_of(addr, pid)})"
                else:
                    sym = f"{addr:x} {sym}"
            frames.append(sym)
        return V.Stack(frames, mode=st.mode)

    def _object_of(self, addr: int, pid: int) -> str:
        try:
            for m in self.usyms._mappings(pid):  # noqa: SLF001 - the per-pid mapping cache
                if m.start <= addr < m.end and m.path.startswith("/"):
                    return m.path
        except Exception:  # noqa: BLE001 - a vanished process has no mappings
            pass
        return "[unknown]"


def decode_map(res: Resolver, ml: MapLayout, items: list[tuple[bytes, object]]) -> V.MapData:
    """``items`` are (key bytes, value bytes) or, for per-CPU maps,
    (key bytes, [value bytes per CPU])."""
    if isinstance(items, MapItems):
        columns = _decode_columns(ml, items)
        if columns is not None:
            return columns
    keyed = ml.key_type is not None
    entries: list[tuple[tuple, object]] = []
    key_bytes: list[bytes] = []
    agg = ml.value_type if isinstance(ml.value_type, T.AggregationType) else None
    key_types = _key_types(ml)

    key_of = _key_decoder(res, ml)

    if ml.kind is ValueKind.HIST:
        assert agg is not None
        grouped: dict[bytes, dict[int, int]] = {}
        for kb, vb in items:
            assert isinstance(vb, (bytes, bytearray, memoryview))
            user = bytes(kb[: ml.user_key_size])
            bucket = int.from_bytes(kb[ml.user_key_size:ml.user_key_size + 8], "little")
            count = int.from_bytes(vb[:8], "little")
            grouped.setdefault(user, {})[bucket] = grouped.setdefault(user, {}).get(bucket, 0) + count
        for user, buckets in grouped.items():
            if agg.kind is T.AggKind.HIST:
                value: object = V.Hist(agg.params[0] if agg.params else 0, buckets)
            else:
                lo, hi, step = agg.params
                value = V.LHist(lo, hi, step, buckets)
            entries.append((key_of(user), value))
            key_bytes.append(user)
    else:
        value_of = _fast_value_decoder(ml, agg) or (lambda vb: _value_of(res, ml, agg, vb))
        for kb, vb in items:
            kb = bytes(kb)
            entries.append((key_of(kb), value_of(vb)))
            key_bytes.append(kb)
    if not keyed:
        key_bytes = [b"" for _ in entries]
        if not entries and agg is not None and agg.kind is T.AggKind.COUNT:
            # 0.17 prints an empty key-less count() map (never hit, clear()ed
            # or delete()d) as "@c: 0", in text and JSON alike.
            entries, key_bytes = [((), V.Count(0))], [b""]
    return V.MapData(ml.name, keyed, entries, value_type=ml.value_type, key_types=key_types,
                     key_bytes=key_bytes)


def _key_types(ml: MapLayout) -> tuple[T.Type, ...] | None:
    if ml.key_type is None:
        return None
    return ml.key_type.elements if isinstance(ml.key_type, T.TupleType) else (ml.key_type,)


def _decode_columns(ml: MapLayout, items: MapItems) -> V.MapData | None:
    """A keyed count/sum/min/max/avg/stats/integer/string map with integer
    and string key components, decoded a column at a time; None for any other
    shape (and for scalar maps: one entry, as fast the general way)."""
    if ml.key_type is None or items.key_size % 8 or items.value_size % 8:
        return None
    values = _value_columns(ml, items)
    if values is None:
        return None
    keys = _key_columns(ml.key_type, items, ml.declared_key)
    if keys is None:
        return None
    wrap, totals, counts, kind = values
    cols = V.Columns(keys[0], keys[1], totals, wrap, items.raw_keys, items.key_size, counts, kind)
    return V.MapData.from_columns(ml.name, True, cols, value_type=ml.value_type, key_types=_key_types(ml))


def _enum_names(declared: T.Type | None, count: int) -> list[T.EnumType | None]:
    """Per key component, its enum type when it prints as names."""
    parts = declared.elements if isinstance(declared, T.TupleType) else (declared,)
    out = [p if isinstance(p, T.EnumType) and p.names else None for p in parts]
    return out if len(out) == count else [None] * count


def _key_columns(kt: T.Type, items: MapItems, source: T.Type | None = None) -> tuple[list[list], list[str]] | None:
    """(one list per key component, their kinds), or None for components
    other than integers and strings.  ``source``: the key as the script
    typed it (enum components become their names)."""
    ks = items.key_size
    # The components and offsets the general _key_decoder() uses.
    parts = list(zip(kt.elements, kt.offsets())) if isinstance(kt, T.TupleType) else [(kt, 0)]
    enums = _enum_names(source, len(parts))
    keys: list[list] = []
    kinds: list[str] = []
    kview = memoryview(items.raw_keys)
    for (declared, off), enum in zip(parts, enums):
        et = storage_type(declared)
        if isinstance(et, T.IntType) and off % 8 == 0 and off + 8 <= ks:
            # Every 8-byte word of the packed keys, then this component's column.
            column = kview.cast("q" if key_signed(declared) else "Q")[off // 8::ks // 8].tolist()
            if enum is not None:
                keys.append([enum.name_of(v) for v in column])
                kinds.append(V.STR)
                continue
            keys.append(column)
            kinds.append(V.INT)
        elif isinstance(et, T.StringType) and off + et.length <= ks:
            keys.append(_string_column(items.raw_keys, off, et.length, ks))
            kinds.append(V.STR)
        else:
            return None
    return keys, kinds


def _value_columns(ml: MapLayout, items: MapItems) \
        -> tuple[type[V.IntAggregation] | type[V.MeanAggregation] | None, list, list[int] | None, str] | None:
    """(value class, values or totals, counts, INT or STR) as _value_of()
    would decode each entry; None for other value types."""
    agg = ml.value_type if isinstance(ml.value_type, T.AggregationType) else None
    vwords = items.value_size // 8
    if not isinstance(items, PercpuItems):
        if ml.percpu or ml.kind not in (ValueKind.ADD, ValueKind.PLAIN):
            return None
        if agg is not None:
            if agg.kind not in (T.AggKind.COUNT, T.AggKind.SUM):
                return None
            # As _fast_value_decoder: signed when the summed/counted type is.
            signed = agg.signed
            wrap: type[V.IntAggregation] | None = V.Count if agg.kind is T.AggKind.COUNT else V.Sum
        else:
            st = storage_type(ml.value_type)
            if isinstance(st, T.StringType) and st.length <= items.value_size:
                return None, _string_column(items.raw_values, 0, st.length, items.value_size), None, V.STR
            if not isinstance(st, T.IntType):
                return None
            signed, wrap = st.signed, None
        return wrap, memoryview(items.raw_values).cast("q" if signed else "Q")[::vwords].tolist(), None, V.INT
    if agg is None or ml.kind not in (ValueKind.MINMAX, ValueKind.AVG) or items.stride % 8 \
            or items.cpu_value_size < 16:
        return None
    # Per CPU: an i64 (value or total) and a u64 (set flag or count).
    signed_words = memoryview(items.raw_values).cast("q")
    unsigned_words = memoryview(items.raw_values).cast("Q")
    cpu_words = items.stride // 8
    n = len(items)
    if ml.kind is ValueKind.MINMAX:
        # 0.17 takes the largest set per-CPU slot (unwritten slots are 0).
        best = [0] * n
        for c in range(items.cpus):
            v_c = signed_words[c * cpu_words::vwords].tolist()
            set_c = unsigned_words[c * cpu_words + 1::vwords].tolist()
            best = [v if s and v > b else b for b, v, s in zip(best, v_c, set_c)]
        if agg.kind is T.AggKind.MAX:
            return V.Max, best, None, V.INT
        # A min slot holds MIN_BIAS - value; an all-zero min prints 0.
        return V.Min, [MIN_BIAS - b if b else 0 for b in best], None, V.INT
    totals = [0] * n
    counts = [0] * n
    for c in range(items.cpus):
        totals = list(map(int.__add__, totals, signed_words[c * cpu_words::vwords].tolist()))
        counts = list(map(int.__add__, counts, unsigned_words[c * cpu_words + 1::vwords].tolist()))
    return (V.Avg if agg.kind is T.AggKind.AVG else V.Stats), totals, counts, V.INT


def _string_column(raw: bytes, off: int, length: int, stride: int) -> list[str]:
    """The NUL-terminated strings at ``off`` of every ``stride``-byte key
    or value.
    surrogateescape keeps non-UTF-8 bytes exact for printing."""
    return [raw[i:i + length].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            for i in range(off, len(raw), stride)]


def _key_decoder(res: Resolver, ml: MapLayout):  # type: ignore[no-untyped-def]
    """A function from key bytes to the key tuple, specialised once per map:
    printing a 100,000-key map must not pay for the general decoder per key."""
    kt = ml.key_type
    if kt is None:
        return lambda kb: ()
    st = storage_type(kt)
    enums = _enum_names(ml.declared_key, len(kt.elements) if isinstance(kt, T.TupleType) else 1)
    if isinstance(st, T.IntType):
        signed = key_signed(kt)
        enum = enums[0]
        if enum is not None:
            return lambda kb: (enum.name_of(int.from_bytes(kb[:8], "little", signed=signed)),)
        return lambda kb: (int.from_bytes(kb[:8], "little", signed=signed),)
    if isinstance(st, T.StringType):
        n = st.length

        def string_key(kb: bytes) -> tuple:
            raw = kb[:n]
            nul = raw.find(b"\0")
            return ((raw if nul < 0 else raw[:nul]).decode("utf-8", "surrogateescape"),)
        return string_key
    if isinstance(kt, T.TupleType):
        parts = list(zip(kt.elements, kt.offsets()))

        def element(et: T.Type, kb: bytes, eo: int, enum: T.EnumType | None) -> object:
            if isinstance(storage_type(et), T.IntType):
                v = int.from_bytes(kb[eo:eo + 8], "little", signed=key_signed(et))
                return v if enum is None else enum.name_of(v)
            return res.value(et, kb, eo)
        return lambda kb: tuple(element(et, kb, eo, en) for (et, eo), en in zip(parts, enums))
    return lambda kb: (res.value(kt, kb, 0),)


def key_signed(t: T.Type) -> bool:
    """Whether an integer map key prints signed: bpftrace 0.17 prints every
    8-byte integer key as int64 (``@k[(uint64)-1]`` is ``@k[-1]``, in text
    and JSON), smaller ones by their type (``@k[(uint32)-1]`` is 4294967295)."""
    return bool(getattr(t, "signed", False)) or (isinstance(t, T.IntType) and t.bits == 64)


def _fast_value_decoder(ml: MapLayout, agg: T.AggregationType | None):  # type: ignore[no-untyped-def]
    """Plain integer, count and sum values decoded without the general path."""
    if agg is not None and agg.kind in (T.AggKind.COUNT, T.AggKind.SUM):
        # bpftrace 0.17 prints a sum signed only when the summed type is:
        # sum((uint64)-1) is 18446744073709551615, sum(-1) is -1.
        signed = agg.signed
        cls = V.Count if agg.kind is T.AggKind.COUNT else V.Sum
        return lambda vb: cls(int.from_bytes(vb[:8], "little", signed=signed))
    if agg is None:
        st = storage_type(ml.value_type)
        if isinstance(st, T.IntType):
            signed = st.signed
            return lambda vb: int.from_bytes(vb[:8], "little", signed=signed)
    return None


def _value_of(res: Resolver, ml: MapLayout, agg: T.AggregationType | None, vb: object) -> object:
    if agg is None:
        assert isinstance(vb, (bytes, bytearray, memoryview))
        return res.value(ml.value_type, vb, 0)
    k = agg.kind
    if k in (T.AggKind.COUNT, T.AggKind.SUM):
        assert isinstance(vb, (bytes, bytearray, memoryview))
        n = int.from_bytes(vb[:8], "little", signed=agg.signed)
        return V.Count(n) if k is T.AggKind.COUNT else V.Sum(n)
    assert isinstance(vb, list)
    if k in (T.AggKind.MIN, T.AggKind.MAX):
        # 0.17 takes the largest per-CPU slot (unwritten slots are 0); a min
        # slot holds 0xffffffff - value, and an all-zero min prints 0.
        best = 0
        for cpu in vb:
            if int.from_bytes(cpu[8:16], "little"):
                best = max(best, int.from_bytes(cpu[:8], "little", signed=True))
        if k is T.AggKind.MAX:
            return V.Max(best)
        return V.Min(MIN_BIAS - best if best else 0)
    total = sum(int.from_bytes(cpu[:8], "little", signed=True) for cpu in vb)
    count = sum(int.from_bytes(cpu[8:16], "little") for cpu in vb)
    return V.Avg(count, total) if k is T.AggKind.AVG else V.Stats(count, total)
