"""Kernel BTF: the public lookup API and its on-disk index cache.

This module owns ``Btf`` (what the rest of pytrace codes against: struct
layouts, enumerators, typedefs, function and raw-tracepoint signatures, type
ids for attach_btf_id) and the cache policy.  The binary format lives in
``btf_format`` and the conversion to semantic types in ``btf_types``.

Cost model (vmlinux, ~126k types, 5.5 MB):

* Importing this module and constructing nothing costs nothing; callers
  create a ``Btf`` only when a script needs a kernel type.
* Reading ``/sys/kernel/btf/vmlinux`` costs ~8 ms (sysfs hands it out 4 KiB
  per read() and it cannot be mmap'ed) and indexing the type records another
  ~30 ms.  So the cache file stores the BTF blob *and* the index; a warm
  ``load`` mmaps that one file, checks its key and two sample pages of the
  source, and is ready in well under a millisecond.
* Lookups by name use C-speed ``find`` over the mmap rather than name
  dictionaries, and only the types actually reached are converted.  Results
  are memoised per ``Btf`` instance, so a repeated lookup is a dict hit.

Cache key: for ``/sys/kernel/btf/vmlinux``, the kernel release and build
version (``uname -r``/``-v``) plus the size, which survives reboots into the
same kernel (the sysfs mtime is the boot time, so keying on it would rebuild
on every boot).  Module BTF under ``/sys/kernel/btf/`` adds mtime and boot id
(modules can be rebuilt and reloaded).  Other files use size, mtime, inode.
A corrupt, truncated or stale cache is rebuilt silently; failing to write the
cache (read-only home, full disk) is ignored.

Not supported yet: split BTF (kernel modules' ``/sys/kernel/btf/<module>``,
whose type ids and string offsets continue those of vmlinux).
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Iterator

from pytrace.kernel.btf_format import (
    KIND_BY_NAME,
    KIND_ENUM,
    KIND_ENUM64,
    KIND_FUNC,
    KIND_FUNC_PROTO,
    KIND_INT,
    KIND_PTR,
    KIND_STRUCT,
    KIND_TYPEDEF,
    KIND_UNION,
    Buffer,
    BtfData,
    BtfError,
    TypeIndex,
)
from pytrace.kernel.btf_types import TypeConverter, c_spelling
from pytrace.semantic.types import C_INT_TYPES, VOID, EnumType, PointerType, StructType, Type

__all__ = ["Btf", "BtfError", "VMLINUX_PATH", "default_cache_dir"]

VMLINUX_PATH = "/sys/kernel/btf/vmlinux"

# Cache file: header, key (padded to 8), type record offsets, type name
# offsets (each n_types * 4 bytes, padded to 8), BTF blob.
_CACHE_MAGIC = b"PTBTFIDX"
_CACHE_VERSION = 2
_CACHE_HEADER = struct.Struct("<8sIIIII4x")  # magic, version, key_len, n_types, blob_len, crc32
_SAMPLE = 4096  # bytes of the source compared with the cached blob at each end


class Btf:
    """Lookups in one BTF blob.  Create with ``Btf.load()`` or ``Btf.from_bytes()``."""

    def __init__(self, data: BtfData, *, from_cache: bool = False) -> None:
        self._data = data
        self._conv = TypeConverter(data)
        self._ids: dict[tuple[tuple[int, ...], str], int | None] = {}
        self._enumerators: dict[str, tuple[int, EnumType] | None] = {}
        self.from_cache = from_cache  # True when the index came from the on-disk cache

    # --- construction -------------------------------------------------------

    @classmethod
    def load(cls, path: str = VMLINUX_PATH, cache_dir: str | None = None) -> Btf:
        """Load BTF from ``path``, through the index cache in ``cache_dir``
        (default ``$XDG_CACHE_HOME/pytrace`` or ``~/.cache/pytrace``)."""
        try:
            st = os.stat(path)
        except OSError as e:
            raise BtfError(f"cannot read BTF from {path}: {e.strerror}") from e
        real = os.path.realpath(path)
        key = _cache_key(real, st)
        cache_file = os.path.join(cache_dir or default_cache_dir(), _cache_name(real))
        data = _read_cache(cache_file, key, real, st.st_size)
        if data is not None:
            return cls(data, from_cache=True)
        try:
            with open(real, "rb") as f:
                blob = f.read()
        except OSError as e:
            raise BtfError(f"cannot read BTF from {path}: {e.strerror}") from e
        data = BtfData(blob)
        _write_cache(cache_file, key, data)
        return cls(data)

    @classmethod
    def from_bytes(cls, data: bytes) -> Btf:
        """A ``Btf`` over an in-memory blob (no cache)."""
        return cls(BtfData(bytes(data)))

    @property
    def n_types(self) -> int:
        return self._data.n_types

    # --- lookups ------------------------------------------------------------

    def type_id(self, kind: str, name: str) -> int | None:
        """The id of the first type of ``kind`` ("struct", "union", "enum",
        "typedef", "func", "int", "var", ...) called ``name``."""
        kinds = KIND_BY_NAME.get(kind)
        if kinds is None:
            raise ValueError(f"unknown BTF kind {kind!r}")
        return self._id(kinds, name)

    def type_by_id(self, type_id: int) -> Type:
        """The semantic type of ``type_id`` (0 is void)."""
        if not 0 <= type_id <= self._data.n_types:
            raise BtfError(f"type id {type_id} out of range")
        return self._conv.convert(type_id)

    def struct(self, name: str) -> StructType | None:
        return self._aggregate((KIND_STRUCT,), name)

    def union(self, name: str) -> StructType | None:
        return self._aggregate((KIND_UNION,), name)

    def enum_value(self, name: str) -> tuple[int, EnumType] | None:
        """``(value, enum type)`` of the enumerator ``name`` (ENUM or ENUM64)."""
        if name in self._enumerators:
            return self._enumerators[name]
        found = self._data.enumerator(name)
        result: tuple[int, EnumType] | None = None
        if found is not None:
            enum_id, value = found
            enum_type = self._conv.convert(enum_id)
            assert isinstance(enum_type, EnumType)
            result = (value, enum_type)
        self._enumerators[name] = result
        return result

    def typedef(self, name: str) -> Type | None:
        """The type a typedef resolves to (through further typedefs and qualifiers)."""
        type_id = self._id((KIND_TYPEDEF,), name)
        return None if type_id is None else self._conv.convert(type_id)

    def type_by_name(self, name: str) -> Type | None:
        """Resolve a C type spelling: ``struct X``, ``union X``, ``enum X``, a
        typedef, a BTF int name (``long unsigned int``) or a common C integer
        spelling (``unsigned long``), optionally followed by ``*``s."""
        text = " ".join(name.split())
        depth = 0
        while text.endswith("*"):
            text, depth = text[:-1].rstrip(), depth + 1
        base = self._base_type(text)
        if base is None:
            return None
        for _ in range(depth):
            base = PointerType(base)
        return base

    def func(self, name: str) -> tuple[list[tuple[str, Type]], Type] | None:
        """``(parameters, return type)`` of the kernel function ``name``."""
        func_id = self._id((KIND_FUNC,), name)
        if func_id is None:
            return None
        data = self._data
        return self._conv.func_proto(data.words[data.record(func_id) + 2])

    def func_signature(self, name: str) -> tuple[list[tuple[str, str]], str] | None:
        """``func``'s parameters as (C spelling of the type, name) and its
        return type's spelling (``-lv``: ``struct file * file``)."""
        func_id = self._id((KIND_FUNC,), name)
        if func_id is None:
            return None
        return self._spelled_proto(self._data.words[self._data.record(func_id) + 2])

    def _spelled_proto(self, proto_id: int) -> tuple[list[tuple[str, str]], str] | None:
        data = self._data
        proto_id = self._conv.strip(proto_id)
        if proto_id == 0 or data.kind(proto_id) != KIND_FUNC_PROTO:
            return None
        words = data.words
        rec = data.record(proto_id)
        params = []
        for j in range(words[rec + 1] & 0xFFFF):
            name_off, ptype = words[rec + 3 + 2 * j], words[rec + 4 + 2 * j]
            if ptype == 0 and name_off == 0:
                continue  # a trailing '...'
            params.append((c_spelling(data, ptype), data.string(name_off)))
        return params, c_spelling(data, words[rec + 2])

    def raw_tracepoint_signature(self, name: str) -> list[tuple[str, str]] | None:
        """``raw_tracepoint_args`` spelled as C (type, name) pairs, for -lv."""
        args = self.raw_tracepoint_args(name)
        typedef_id = self._id((KIND_TYPEDEF,), f"btf_trace_{name.rpartition(':')[2]}")
        if args is None or typedef_id is None:
            return None
        ptr_id = self._conv.strip(typedef_id)
        spelled = self._spelled_proto(self._data.words[self._data.record(ptr_id) + 2])
        if spelled is None:
            return None
        types = [t for t, _ in spelled[0][1:]]
        return [(t, n) for t, (n, _ty) in zip(types, args)]

    def raw_tracepoint_args(self, name: str) -> list[tuple[str, Type]] | None:
        """Arguments of raw tracepoint ``name`` (``sched_switch`` or
        ``sched:sched_switch``), from the ``btf_trace_<name>`` typedef, without
        the leading ``void *__data``.

        The typedef's prototype carries no parameter names, so they are taken
        from ``__bpf_trace_<name>`` (or ``__probestub_<name>``), which has the
        same parameters; ``argN`` if neither exists.
        """
        name = name.rpartition(":")[2]
        typedef_id = self._id((KIND_TYPEDEF,), f"btf_trace_{name}")
        if typedef_id is None:
            return None
        data, conv = self._data, self._conv
        ptr_id = conv.strip(typedef_id)
        if ptr_id == 0 or data.kind(ptr_id) != KIND_PTR:
            return None
        proto = conv.func_proto(data.words[data.record(ptr_id) + 2])
        if proto is None or not proto[0]:
            return None
        params = proto[0][1:]
        if any(not pname for pname, _ in params):
            names = self._raw_tracepoint_names(name, len(params) + 1)
            params = [(names[i] if names else f"arg{i}", ptype) for i, (_, ptype) in enumerate(params)]
        return params

    # --- listings -----------------------------------------------------------

    def func_names(self) -> Iterator[str]:
        """Names of all kernel functions with BTF (each once, in id order)."""
        return self._names((KIND_FUNC,))

    def struct_names(self) -> Iterator[str]:
        return self._names((KIND_STRUCT,))

    def union_names(self) -> Iterator[str]:
        return self._names((KIND_UNION,))

    # --- helpers ------------------------------------------------------------

    def _id(self, kinds: tuple[int, ...], name: str) -> int | None:
        key = (kinds, name)
        try:
            return self._ids[key]
        except KeyError:
            pass
        ids = self._data.ids_named(name, kinds)
        type_id = ids[0] if ids else None
        self._ids[key] = type_id
        return type_id

    def _aggregate(self, kinds: tuple[int, ...], name: str) -> StructType | None:
        type_id = self._id(kinds, name)
        if type_id is None:
            return None
        result = self._conv.convert(type_id)
        assert isinstance(result, StructType)
        return result

    def _base_type(self, text: str) -> Type | None:
        for prefix, kinds in (("struct ", (KIND_STRUCT,)), ("union ", (KIND_UNION,)),
                              ("enum ", (KIND_ENUM, KIND_ENUM64))):
            if text.startswith(prefix):
                type_id = self._id(kinds, text[len(prefix):].strip())
                return None if type_id is None else self._conv.convert(type_id)
        if text == "void":
            return VOID
        for kinds in ((KIND_TYPEDEF,), (KIND_INT,)):
            type_id = self._id(kinds, text)
            if type_id is not None:
                return self._conv.convert(type_id)
        return C_INT_TYPES.get(text)

    def _raw_tracepoint_names(self, name: str, count: int) -> list[str] | None:
        data = self._data
        for func_name in (f"__bpf_trace_{name}", f"__probestub_{name}"):
            func_id = self._id((KIND_FUNC,), func_name)
            if func_id is None:
                continue
            proto = self._conv.func_proto(data.words[data.record(func_id) + 2])
            if proto is not None and len(proto[0]) == count and all(n for n, _ in proto[0][1:]):
                return [n for n, _ in proto[0][1:]]
        return None

    def _names(self, kinds: tuple[int, ...]) -> Iterator[str]:
        seen: set[str] = set()
        for type_id in self._data.ids_of_kind(kinds):
            name = self._data.name(type_id)
            if name and name not in seen:
                seen.add(name)
                yield name


# --- the on-disk cache --------------------------------------------------------


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pytrace")


def _cache_name(real_path: str) -> str:
    # One cache file per source path, so vmlinux and module BTF do not evict each other.
    return f"btf-{os.path.basename(real_path)}-{zlib.crc32(real_path.encode()):08x}.idx"


def _cache_key(real_path: str, st: os.stat_result) -> bytes:
    fmt = f"v{_CACHE_VERSION}"
    if real_path.startswith("/sys/kernel/btf/"):
        uname = os.uname()
        if os.path.basename(real_path) == "vmlinux":
            return f"{fmt}|vmlinux|{st.st_size}|{uname.release}|{uname.version}".encode()
        return f"{fmt}|{real_path}|{st.st_size}|{st.st_mtime_ns}|{_boot_id()}|{uname.release}".encode()
    return f"{fmt}|{real_path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_dev}".encode()


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _pad8(n: int) -> int:
    return (n + 7) & ~7


def _read_cache(cache_file: str, key: bytes, source: str, source_size: int) -> BtfData | None:
    """The cached index and blob, or None if absent, stale or corrupt."""
    try:
        fd = os.open(cache_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size < _CACHE_HEADER.size:
            return None
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    try:
        magic, version, key_len, n_types, blob_len, crc = _CACHE_HEADER.unpack_from(mm, 0)
        if magic != _CACHE_MAGIC or version != _CACHE_VERSION or blob_len != source_size:
            return None
        key_at = _CACHE_HEADER.size
        column = n_types * 4
        offsets_at = key_at + _pad8(key_len)
        names_at = offsets_at + _pad8(column)
        blob_at = names_at + _pad8(column)
        if blob_at + blob_len != size or mm[key_at:key_at + key_len] != key:
            return None
        view = memoryview(mm)
        if zlib.crc32(view[offsets_at:names_at + column], zlib.crc32(key)) != crc:
            return None
        if not _same_ends(source, mm, blob_at, blob_len):
            return None
        index = TypeIndex(view[offsets_at:offsets_at + column].cast("I"), mm, names_at)
        data = BtfData(mm, index, blob_at, blob_len)
        if n_types and (data.offsets[-1] >= len(data.words) or data.offsets[0] != 0):
            return None
        return data
    except (BtfError, ValueError, TypeError, struct.error, OSError):
        return None


def _same_ends(source: str, buf: Buffer, at: int, size: int) -> bool:
    """Compare the first and last pages of ``source`` with the cached blob: a
    cheap content check on top of the metadata key."""
    try:
        fd = os.open(source, os.O_RDONLY)
    except OSError:
        return False
    try:
        head = os.pread(fd, min(_SAMPLE, size), 0)
        tail_at = max(0, size - _SAMPLE)
        tail = os.pread(fd, size - tail_at, tail_at)
    except OSError:
        return False
    finally:
        os.close(fd)
    return head == buf[at:at + len(head)] and tail == buf[at + tail_at:at + size]


def _write_cache(cache_file: str, key: bytes, data: BtfData) -> None:
    """Best effort: any failure leaves the caller unaffected."""
    tmp = f"{cache_file}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        column = 4 * data.n_types
        offsets = data.offsets.tobytes().ljust(_pad8(column), b"\0")
        names = data.index.names_bytes()
        padding = b"\0" * (_pad8(column) - column)
        # The crc runs from the first column's start to the second's end
        # (the padding in between included), as _read_cache checks it.
        crc = zlib.crc32(names, zlib.crc32(offsets, zlib.crc32(key)))
        header = _CACHE_HEADER.pack(_CACHE_MAGIC, _CACHE_VERSION, len(key), data.n_types, data.size, crc)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(header)
                f.write(key.ljust(_pad8(len(key)), b"\0"))
                f.write(offsets)
                f.write(names)
                f.write(padding)
                f.write(data.blob())
            # Atomic replace: readers see the old file or the new one, never a
            # partial one, and existing mmaps of the old file stay valid.
            os.replace(tmp, cache_file)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except Exception:  # noqa: BLE001 - the cache is an optimisation only
        pass
