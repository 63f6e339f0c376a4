"""BPF maps: creating them and reading or writing them from user space.

This module owns ``BpfMap``, a thin owner of one map fd plus the geometry
needed to size buffers correctly (key, value and per-CPU strides).  Every
buffer handed to the kernel is sized here from the map's own geometry,
because the kernel writes ``value_size`` bytes (times the possible CPUs for
per-CPU maps) whatever the caller meant: an undersized buffer is silent
memory corruption, so sizes are checked before every call.

Whole-map reads use BPF_MAP_LOOKUP_BATCH (Linux 5.6) and fall back to the
GET_NEXT_KEY + LOOKUP walk on maps or kernels without batch support; either
way they come back as ``MapItems``, the keys and values packed as the kernel
wrote them, for decoders that read whole columns at once.
"""

from __future__ import annotations

import ctypes
import errno
from typing import Iterator, Sequence, overload

from .syscalls import (
    FdOwner,
    ARRAY_MAP_TYPES,
    PAGE_SIZE,
    PERCPU_MAP_TYPES,
    BpfCmd,
    BpfError,
    BpfMapInfo,
    InfoAttr,
    MapBatchAttr,
    MapCreateAttr,
    MapElemAttr,
    MapType,
    bpf,
    bpf_raw,
    close_fd,
    make_error,
    possible_cpus,
    sanitize_name,
)

# ENOTSUPP (524) is the kernel-internal "not supported" some map ops leak to
# user space; EOPNOTSUPP/EINVAL are what maps without batch ops return.
_ENOTSUPP = 524
_NO_BATCH = frozenset({errno.EINVAL, errno.EOPNOTSUPP, _ENOTSUPP, errno.ENOSYS})
# Bytes of keys plus values fetched per batch call (bounded so huge maps do
# not need a huge transient buffer).
_BATCH_BYTES = 4 << 20


def _round8(n: int) -> int:
    return (n + 7) & ~7


class MapItems(Sequence[tuple[bytes, bytes]]):
    """A whole-map read: the (key, value) pairs, kept packed.

    ``raw_keys`` holds the keys back to back (``key_size`` bytes each) and
    ``raw_values`` the values (``value_size`` bytes each), in the order the
    kernel returned them.  (Not ``keys``/``values``: ``dict(m.items())``
    would take an object with a ``keys`` attribute for a mapping.)  It reads as a sequence of ``(key, value)`` bytes
    pairs, built when asked; decoders of fixed-size keys and values read the
    packed bytes instead (memoryview casts, one slice per column), which is
    what keeps printing a 100,000-key map from costing two bytes objects and
    a tuple per entry before decoding even starts.
    """

    __slots__ = ("raw_keys", "raw_values", "key_size", "value_size")

    def __init__(self, keys: bytes, values: bytes, key_size: int, value_size: int) -> None:
        if key_size <= 0 or value_size <= 0 or len(keys) % key_size \
                or len(values) != len(keys) // key_size * value_size:
            raise ValueError("MapItems: keys and values must hold whole, matching entries")
        self.raw_keys = keys
        self.raw_values = values
        self.key_size = key_size
        self.value_size = value_size

    @classmethod
    def pack(cls, pairs: Sequence[tuple[bytes, bytes]], key_size: int, value_size: int) -> MapItems:
        return cls(b"".join(k for k, _ in pairs), b"".join(v for _, v in pairs), key_size, value_size)

    def __len__(self) -> int:
        return len(self.raw_keys) // self.key_size

    def key_list(self) -> list[bytes]:
        ks = self.key_size
        return [self.raw_keys[i:i + ks] for i in range(0, len(self.raw_keys), ks)]

    def value_list(self) -> list:
        """The value of each entry, as a pair holds it."""
        vs = self.value_size
        return [self.raw_values[i:i + vs] for i in range(0, len(self.raw_values), vs)]

    def _value(self, raw: bytes) -> object:
        return raw

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return zip(self.key_list(), self.value_list())

    @overload
    def __getitem__(self, i: int) -> tuple[bytes, bytes]: ...

    @overload
    def __getitem__(self, i: slice) -> list[tuple[bytes, bytes]]: ...

    def __getitem__(self, i: int | slice) -> tuple[bytes, bytes] | list[tuple[bytes, bytes]]:
        if isinstance(i, slice):
            return list(self)[i]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("MapItems index out of range")
        ks, vs = self.key_size, self.value_size
        value = self._value(self.raw_values[i * vs:(i + 1) * vs])
        return self.raw_keys[i * ks:(i + 1) * ks], value  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (MapItems, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compares like a list

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"


class PercpuItems(MapItems):
    """A per-CPU map's whole-map read: each entry's value is ``cpus``
    values of ``cpu_value_size`` bytes at ``value_size // cpus`` strides
    (as the kernel copies them), and reads as the list of those values."""

    __slots__ = ("cpus", "cpu_value_size")

    def __init__(self, keys: bytes, values: bytes, key_size: int, value_size: int, cpus: int,
                 cpu_value_size: int) -> None:
        super().__init__(keys, values, key_size, value_size)
        if cpus <= 0 or value_size % cpus or not 0 < cpu_value_size <= value_size // cpus:
            raise ValueError("PercpuItems: each value must hold one stride per CPU")
        self.cpus = cpus
        self.cpu_value_size = cpu_value_size

    @property
    def stride(self) -> int:
        return self.value_size // self.cpus

    def _value(self, raw: bytes) -> list[bytes]:  # type: ignore[override]
        s, n = self.stride, self.cpu_value_size
        return [raw[c * s:c * s + n] for c in range(self.cpus)]

    def value_list(self) -> list[list[bytes]]:
        return [self._value(v) for v in super().value_list()]


class BpfMap(FdOwner):
    """One BPF map fd and its geometry.  Closing is idempotent; the object is
    a context manager.  Keys and values are ``bytes`` of exactly
    ``key_size``/``value_size`` bytes."""

    def __init__(self, fd: int, map_type: int, key_size: int, value_size: int, max_entries: int,
                 name: str = "", flags: int = 0) -> None:
        self.fd: int = fd
        self.map_type: int = map_type
        self.key_size: int = key_size
        self.value_size: int = value_size
        self.max_entries: int = max_entries
        self.name: str = name
        self.flags: int = flags
        self.ncpus: int = possible_cpus() if map_type in PERCPU_MAP_TYPES else 1
        # Per-CPU values are copied at 8-byte strides (kernel/bpf/*map.c
        # bpf_*_copy use round_up(value_size, 8)), one per *possible* CPU.
        self.percpu_stride: int = _round8(value_size)

    # --- life cycle ---------------------------------------------------------

    @classmethod
    def create(cls, map_type: int, key_size: int, value_size: int, max_entries: int,
               name: str = "", flags: int = 0, *, inner_map_fd: int = 0,
               map_extra: int = 0) -> BpfMap:
        """BPF_MAP_CREATE.  ``name`` is truncated to 15 characters and
        characters the kernel rejects become ``_``."""
        if map_type == MapType.RINGBUF and (max_entries <= 0 or max_entries % PAGE_SIZE
                                            or max_entries & (max_entries - 1)):
            # kernel/bpf/ringbuf.c: a power of two and a page multiple, else EINVAL.
            raise ValueError(f"a ring buffer's size must be a power of 2 and a multiple of "
                             f"{PAGE_SIZE} bytes, not {max_entries}")
        attr = MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size,
                             max_entries=max_entries, map_flags=flags, inner_map_fd=inner_map_fd,
                             map_name=sanitize_name(name), map_extra=map_extra)
        kind = _type_name(map_type)
        fd = bpf(BpfCmd.MAP_CREATE, attr,
                 f"cannot create {kind} map {name!r} (key {key_size} B, value {value_size} B, "
                 f"{max_entries} entries, flags {flags:#x})")
        return cls(fd, map_type, key_size, value_size, max_entries,
                   sanitize_name(name).decode(), flags)

    @classmethod
    def from_fd(cls, fd: int) -> BpfMap:
        """Wrap an existing map fd, reading its geometry with
        BPF_OBJ_GET_INFO_BY_FD.  The map owns (and will close) ``fd`` once
        this returns; if it raises, the fd is still the caller's."""
        info = BpfMapInfo()
        attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
        bpf(BpfCmd.OBJ_GET_INFO_BY_FD, attr, f"fd {fd} is not a BPF map")
        return cls(fd, info.type, info.key_size, info.value_size, info.max_entries,
                   info.name.decode(errors="replace"), info.map_flags)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            close_fd(fd)

    def __repr__(self) -> str:
        return (f"BpfMap(fd={self.fd}, type={_type_name(self.map_type)}, name={self.name!r}, "
                f"key={self.key_size}, value={self.value_size}, max={self.max_entries})")

    @property
    def is_percpu(self) -> bool:
        return self.map_type in PERCPU_MAP_TYPES

    @property
    def value_buffer_size(self) -> int:
        """Bytes the kernel writes for one value of this map."""
        return self.percpu_stride * self.ncpus if self.is_percpu else self.value_size

    # --- single elements ------------------------------------------------------

    def _check_key(self, key: bytes) -> None:
        if len(key) != self.key_size:
            raise ValueError(f"map {self.name!r} has {self.key_size}-byte keys, got {len(key)} bytes")

    def _elem(self, key: bytes | None, value: ctypes.Array[ctypes.c_char] | None,
              flags: int = 0) -> tuple[MapElemAttr, ctypes.Array[ctypes.c_char] | None]:
        kbuf = ctypes.create_string_buffer(key, len(key)) if key is not None else None
        attr = MapElemAttr(map_fd=self.fd, flags=flags,
                           key=ctypes.addressof(kbuf) if kbuf is not None else 0,
                           value=ctypes.addressof(value) if value is not None else 0)
        return attr, kbuf

    def _lookup_raw(self, key: bytes) -> bytes | None:
        self._check_key(key)
        vbuf = ctypes.create_string_buffer(self.value_buffer_size)
        attr, _kbuf = self._elem(key, vbuf)
        ret, err = bpf_raw(BpfCmd.MAP_LOOKUP_ELEM, attr)
        if ret < 0:
            if err == errno.ENOENT:
                return None
            raise make_error(err, "BPF_MAP_LOOKUP_ELEM", f"lookup in map {self.name!r} failed")
        return vbuf.raw

    def lookup(self, key: bytes) -> bytes | None:
        """The value for ``key`` or None.  Not for per-CPU maps (see
        ``lookup_percpu``).  For a stack-trace map the key is the u32 stack
        id and the value the array of u64 addresses (see ``stack``)."""
        if self.is_percpu:
            raise TypeError(f"map {self.name!r} is per-CPU: use lookup_percpu()")
        return self._lookup_raw(key)

    def lookup_percpu(self, key: bytes) -> list[bytes] | None:
        """One value per possible CPU, or None if ``key`` is absent."""
        if not self.is_percpu:
            raise TypeError(f"map {self.name!r} is not per-CPU: use lookup()")
        raw = self._lookup_raw(key)
        return None if raw is None else self._split_percpu(raw)

    def _split_percpu(self, raw: bytes) -> list[bytes]:
        s, n = self.percpu_stride, self.value_size
        return [raw[i * s: i * s + n] for i in range(self.ncpus)]

    def stack(self, stack_id: int) -> list[int] | None:
        """The frames of a STACK_TRACE map entry, trailing zero slots removed;
        None for a negative id (the helper's error code) or a missing id."""
        if stack_id < 0:
            return None
        raw = self.lookup(stack_id.to_bytes(4, "little"))
        if raw is None:
            return None
        frames = list(memoryview(raw).cast("Q"))
        while frames and frames[-1] == 0:
            frames.pop()
        return frames

    def _value_arg(self, value: bytes | list[bytes]) -> bytes:
        if self.is_percpu:
            if isinstance(value, (list, tuple)):
                if len(value) != self.ncpus:
                    raise ValueError(f"per-CPU map {self.name!r} needs {self.ncpus} values")
                parts = list(value)
            elif len(value) == self.value_size:
                parts = [value] * self.ncpus  # the same value on every CPU
            elif len(value) == self.value_buffer_size:
                return bytes(value)
            else:
                raise ValueError(f"map {self.name!r} has {self.value_size}-byte values, got {len(value)}")
            pad = b"\0" * (self.percpu_stride - self.value_size)
            for p in parts:
                if len(p) != self.value_size:
                    raise ValueError(f"map {self.name!r} has {self.value_size}-byte values, got {len(p)}")
            return b"".join(p + pad for p in parts)
        if isinstance(value, (list, tuple)) or len(value) != self.value_size:
            got = "a list" if isinstance(value, (list, tuple)) else f"{len(value)} bytes"
            raise ValueError(f"map {self.name!r} has {self.value_size}-byte values, got {got}")
        return bytes(value)

    def update(self, key: bytes, value: bytes | list[bytes], flags: int = 0) -> None:
        """MAP_UPDATE_ELEM.  On a per-CPU map ``value`` is one value (stored on
        every CPU), a list with one value per possible CPU, or the raw
        strided buffer."""
        self._check_key(key)
        raw = self._value_arg(value)
        vbuf = ctypes.create_string_buffer(raw, len(raw))
        attr, _kbuf = self._elem(key, vbuf, flags)
        ret, err = bpf_raw(BpfCmd.MAP_UPDATE_ELEM, attr)
        if ret < 0:
            if err == errno.EPERM:
                # kernel/bpf/syscall.c map_update_elem: EPERM for a frozen map
                # (or one created BPF_F_RDONLY), not a missing privilege.
                raise BpfError(err, "BPF_MAP_UPDATE_ELEM",
                               f"map {self.name!r} is frozen or read-only for user space")
            if err == errno.EEXIST:
                raise BpfError(err, "BPF_MAP_UPDATE_ELEM", f"key already in map {self.name!r}")
            if err == errno.E2BIG:
                raise BpfError(err, "BPF_MAP_UPDATE_ELEM",
                               f"map {self.name!r} is full ({self.max_entries} entries)")
            raise make_error(err, "BPF_MAP_UPDATE_ELEM", f"update of map {self.name!r} failed")

    def delete(self, key: bytes) -> bool:
        """MAP_DELETE_ELEM; False if the key was not there."""
        self._check_key(key)
        attr, _kbuf = self._elem(key, None)
        ret, err = bpf_raw(BpfCmd.MAP_DELETE_ELEM, attr)
        if ret < 0:
            if err == errno.ENOENT:
                return False
            raise make_error(err, "BPF_MAP_DELETE_ELEM", f"delete from map {self.name!r} failed")
        return True

    def freeze(self) -> None:
        """MAP_FREEZE: no more writes from user space (Linux 5.2); with
        BPF_F_RDONLY_PROG the verifier then treats the contents as constant."""
        bpf(BpfCmd.MAP_FREEZE, MapElemAttr(map_fd=self.fd), f"cannot freeze map {self.name!r}")

    # --- whole-map access -------------------------------------------------------

    def keys(self) -> list[bytes]:
        """Every key: array maps have all indices; others are walked."""
        if self.map_type in ARRAY_MAP_TYPES:
            return [i.to_bytes(4, "little") for i in range(self.max_entries)]
        return self._next_keys()

    def _next_keys(self) -> list[bytes]:
        out: list[bytes] = []
        kbuf = ctypes.create_string_buffer(self.key_size)
        nbuf = ctypes.create_string_buffer(self.key_size)
        attr = MapElemAttr(map_fd=self.fd, key=0, value=ctypes.addressof(nbuf))
        while True:
            ret, err = bpf_raw(BpfCmd.MAP_GET_NEXT_KEY, attr)
            if ret < 0:
                if err == errno.ENOENT:
                    return out
                raise make_error(err, "BPF_MAP_GET_NEXT_KEY", f"cannot walk map {self.name!r}")
            out.append(nbuf.raw)
            ctypes.memmove(kbuf, nbuf, self.key_size)
            attr.key = ctypes.addressof(kbuf)

    def items(self) -> MapItems:
        """Every (key, value): one LOOKUP_BATCH call per chunk, or the
        GET_NEXT_KEY walk where batches are not supported."""
        if self.is_percpu:
            raise TypeError(f"map {self.name!r} is per-CPU: use items_percpu()")
        return self._items_raw()

    def items_percpu(self) -> PercpuItems:
        """Every (key, [value per possible CPU])."""
        if not self.is_percpu:
            raise TypeError(f"map {self.name!r} is not per-CPU: use items()")
        raw = self._items_raw()
        return PercpuItems(raw.raw_keys, raw.raw_values, raw.key_size, raw.value_size, self.ncpus, self.value_size)

    def _items_raw(self) -> MapItems:
        batched = self.items_batch()
        if batched is not None:
            return batched
        return self.items_walk()

    def items_walk(self) -> MapItems:
        """The GET_NEXT_KEY + LOOKUP walk (keys deleted meanwhile are skipped)."""
        out: list[tuple[bytes, bytes]] = []
        for k in self.keys():
            v = self._lookup_raw(k)
            if v is not None:
                out.append((k, v))
        return MapItems.pack(out, self.key_size, self.value_buffer_size)

    def items_batch(self) -> MapItems | None:
        """The items via BPF_MAP_LOOKUP_BATCH, or None if this map (or this
        kernel) has no batch lookup."""
        ks, vs = self.key_size, self.value_buffer_size
        chunk = max(1, min(self.max_entries, _BATCH_BYTES // max(1, ks + vs)))
        # Hash maps use a 4-byte bucket cursor, the generic implementation a
        # key; size for both (kernel/bpf/hashtab.c, syscall.c).
        cursor = max(ks, 8)
        bufs = [ctypes.create_string_buffer(cursor), ctypes.create_string_buffer(cursor)]
        kparts: list[bytes] = []
        vparts: list[bytes] = []
        first = True
        while True:
            keys = ctypes.create_string_buffer(chunk * ks)
            values = ctypes.create_string_buffer(chunk * vs)
            attr = MapBatchAttr(in_batch=0 if first else ctypes.addressof(bufs[0]),
                                out_batch=ctypes.addressof(bufs[1]), keys=ctypes.addressof(keys),
                                values=ctypes.addressof(values), count=chunk, map_fd=self.fd)
            ret, err = bpf_raw(BpfCmd.MAP_LOOKUP_BATCH, attr)
            if ret < 0 and err != errno.ENOENT:
                if first and err in _NO_BATCH:
                    return None
                if err == errno.ENOSPC and attr.count == 0:
                    # A hash bucket holds more entries than ``chunk``: retry bigger.
                    chunk *= 2
                    continue
                raise make_error(err, "BPF_MAP_LOOKUP_BATCH", f"cannot read map {self.name!r}")
            n = attr.count
            # The kernel reports ENOENT on the last chunk, with a valid count.
            kparts.append(ctypes.string_at(keys, n * ks))
            vparts.append(ctypes.string_at(values, n * vs))
            if ret < 0:
                if len(kparts) == 1:
                    return MapItems(kparts[0], vparts[0], ks, vs)
                return MapItems(b"".join(kparts), b"".join(vparts), ks, vs)
            first = False
            bufs.reverse()  # this call's out_batch is the next call's in_batch

    def clear(self) -> None:
        """Empty the map: delete every key, or zero every element of a plain
        or per-CPU array (whose elements cannot be deleted: EINVAL)."""
        if self.map_type in (MapType.ARRAY, MapType.PERCPU_ARRAY):
            zero = bytes(self.value_buffer_size)
            for k in self.keys():
                self.update(k, zero)
            return
        keys = self.keys()
        if not keys:
            return
        if not self._delete_batch(keys):
            for k in keys:
                self.delete(k)

    def _delete_batch(self, keys: list[bytes]) -> bool:
        """MAP_DELETE_BATCH over ``keys``; False if unsupported.  A key that
        vanished meanwhile (the program deleted it) stops the kernel's loop
        with ENOENT after ``count`` deletions; skip it and go on."""
        start = 0
        while start < len(keys):
            raw = b"".join(keys[start:])
            kbuf = ctypes.create_string_buffer(raw, len(raw))
            attr = MapBatchAttr(keys=ctypes.addressof(kbuf), count=len(keys) - start, map_fd=self.fd)
            ret, err = bpf_raw(BpfCmd.MAP_DELETE_BATCH, attr)
            if ret >= 0:
                return True
            if err == errno.ENOENT:
                start += attr.count + 1
                continue
            if start == 0 and attr.count == 0 and err in _NO_BATCH:
                return False
            raise make_error(err, "BPF_MAP_DELETE_BATCH", f"cannot clear map {self.name!r}")
        return True


def _type_name(map_type: int) -> str:
    try:
        return MapType(map_type).name.lower()
    except ValueError:
        return f"type-{map_type}"


__all__ = ["BpfMap", "BpfError", "MapItems", "MapType", "PercpuItems"]
