"""BPF maps: creating them and reading or writing them from user space.

This module owns ``BpfMap``, a thin owner of one map fd plus the geometry
needed to size buffers correctly (key, value and per-CPU strides).  Every
buffer handed to the kernel is sized here from the map's own geometry,
because the kernel writes ``value_size`` bytes (times the possible CPUs for
per-CPU maps) whatever the caller meant: an undersized buffer is silent
memory corruption, so sizes are checked before every call.

Whole-map reads use BPF_MAP_LOOKUP_BATCH (Linux 5.6) and fall back to the
GET_NEXT_KEY + LOOKUP walk on maps or kernels without batch support.
"""

from __future__ import annotations

import ctypes
import errno

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

    def items(self) -> list[tuple[bytes, bytes]]:
        """Every (key, value): one LOOKUP_BATCH call per chunk, or the
        GET_NEXT_KEY walk where batches are not supported."""
        if self.is_percpu:
            raise TypeError(f"map {self.name!r} is per-CPU: use items_percpu()")
        return self._items_raw()

    def items_percpu(self) -> list[tuple[bytes, list[bytes]]]:
        """Every (key, [value per possible CPU])."""
        if not self.is_percpu:
            raise TypeError(f"map {self.name!r} is not per-CPU: use items()")
        return [(k, self._split_percpu(v)) for k, v in self._items_raw()]

    def _items_raw(self) -> list[tuple[bytes, bytes]]:
        batched = self.items_batch()
        if batched is not None:
            return batched
        return self.items_walk()

    def items_walk(self) -> list[tuple[bytes, bytes]]:
        """The GET_NEXT_KEY + LOOKUP walk (keys deleted meanwhile are skipped)."""
        out: list[tuple[bytes, bytes]] = []
        for k in self.keys():
            v = self._lookup_raw(k)
            if v is not None:
                out.append((k, v))
        return out

    def items_batch(self) -> list[tuple[bytes, bytes]] | None:
        """The items via BPF_MAP_LOOKUP_BATCH, or None if this map (or this
        kernel) has no batch lookup."""
        ks, vs = self.key_size, self.value_buffer_size
        chunk = max(1, min(self.max_entries, _BATCH_BYTES // max(1, ks + vs)))
        # Hash maps use a 4-byte bucket cursor, the generic implementation a
        # key; size for both (kernel/bpf/hashtab.c, syscall.c).
        cursor = max(ks, 8)
        bufs = [ctypes.create_string_buffer(cursor), ctypes.create_string_buffer(cursor)]
        out: list[tuple[bytes, bytes]] = []
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
            kraw = ctypes.string_at(keys, n * ks)
            vraw = ctypes.string_at(values, n * vs)
            out.extend(zip([kraw[i:i + ks] for i in range(0, n * ks, ks)],
                           [vraw[i:i + vs] for i in range(0, n * vs, vs)]))
            if ret < 0:
                return out
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


__all__ = ["BpfMap", "BpfError", "MapType"]
