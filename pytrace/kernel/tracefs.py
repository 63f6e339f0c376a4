"""tracefs: finding it, listing its tracepoints and reading their format files.

This module owns everything pytrace knows about ``/sys/kernel/tracing``:
where it is mounted (mounting it if we may), which ``category:event``
tracepoints exist, and what the record of each looks like, parsed from
``events/<category>/<event>/format`` and mapped onto the type model the way
bpftrace maps it.  It holds no state; ``pytrace.kernel.info.LiveKernel`` does
the caching, and compiler passes go through that interface, not this module.
"""

from __future__ import annotations

import ast
import ctypes
import errno
import os
import re

from ..errors import EnvironmentProblem
from ..records import dataclass, field as dc_field
from ..semantic.types import (
    C_INT_TYPES,
    I8,
    U8,
    VOID,
    AddrSpace,
    ArrayType,
    EnumType,
    Field,
    IntType,
    PointerType,
    StringType,
    StructType,
    Type,
    int_of_size,
)

TRACEFS_PATH = "/sys/kernel/tracing"
DEBUGFS_TRACEFS_PATH = "/sys/kernel/debug/tracing"
DEFAULT_STRING_LEN = 64  # bpftrace's default str() size; BPFTRACE_MAX_STRLEN may raise it

_POINTER_SIZE = 8

# Words that qualify a type without changing what it is.  ``__seg_gs`` shows
# up in x86 per-cpu pointers (``void __seg_gs * ptr``).
_QUALIFIERS = frozenset({
    "const", "volatile", "restrict", "__restrict", "__user", "__kernel", "__iomem",
    "__percpu", "__rcu", "__force", "__seg_gs", "__seg_fs", "__nocast", "__bitwise",
})

# One field line.  ``signed:`` is missing on kernels older than 2.6.3x, and
# "field special:" was used by a few early ftrace events.
_FIELD_RE = re.compile(
    r"^\s*field(?: special)?:(?P<decl>[^;]*);"
    r"\s*offset:(?P<offset>\d+);"
    r"\s*size:(?P<size>\d+);"
    r"(?:\s*signed:(?P<signed>\d+);)?"
)
# The declarator at the end of a field declaration: a name and an optional
# array length, which can be empty (flexible array), a number or a macro.
_DECLARATOR_RE = re.compile(r"(?P<name>[A-Za-z_]\w*)\s*(?:\[(?P<len>[^\]]*)\])?\s*$")
_DATA_LOC = "__data_loc"


class TracefsUnavailable(EnvironmentProblem):
    """tracefs is not mounted and could not be mounted, or cannot be read."""


class FormatError(ValueError):
    """A tracepoint format file that does not parse."""


@dataclass(frozen=True)
class TracepointField:
    """One ``field:`` line of a format file, as the kernel wrote it.

    ``c_type`` is the declared type with spacing normalised (``const void*``
    becomes ``const void *``, ``struct iocb * *`` becomes ``struct iocb **``) and the array
    dimension (and a ``__data_loc`` prefix) removed: ``char prev_comm[16]``
    gives ``c_type="char", array_len=16``; ``__data_loc char[] name`` gives
    ``c_type="char", data_loc=True, array_len=None``.  A flexible array
    (``u32 buf[]``) has ``array_len=0``.  ``size`` and ``signed`` are the
    format file's columns; for a data_loc field ``size`` is that of the 32-bit
    (length << 16 | offset) locator word, not of the data.
    """

    name: str
    c_type: str
    offset: int
    size: int
    signed: bool
    array_len: int | None = None
    data_loc: bool = False


@dataclass(frozen=True)
class TracepointFormat:
    """A parsed format file.  ``fields`` are the event's own fields; the
    ``common_*`` header every event starts with is kept in ``common_fields``."""

    category: str
    event: str
    id: int  # -1 when the text has no "ID:" line (hand-written fixtures)
    fields: list[TracepointField]
    common_fields: list[TracepointField] = dc_field(default_factory=list)
    print_fmt: str = ""

    def field(self, name: str) -> TracepointField | None:
        """The event field called ``name`` (not a ``common_*`` one)."""
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def common_field(self, name: str) -> TracepointField | None:
        for f in self.common_fields:
            if f.name == name:
                return f
        return None

    @property
    def record_size(self) -> int:
        """Bytes of the fixed part of the record (data_loc payloads follow it)."""
        return max((f.offset + f.size for f in (*self.common_fields, *self.fields)), default=0)

    def field_type(self, name: str, string_len: int = DEFAULT_STRING_LEN) -> Type | None:
        """The type of ``args.<name>`` in a probe on this tracepoint.

        Adds what only the event's identity tells: syscall arguments point
        into user memory, and sys_enter_* arguments take their signedness from
        the declared C type because the kernel writes ``signed:0`` for all of
        them (kernel/trace/trace_syscalls.c passes a literal 0), which would
        make ``args.dfd`` print AT_FDCWD as 18446744073709551516.
        """
        f = self.field(name)
        if f is None:
            return None
        return field_type(
            f,
            addrspace=self.pointer_addrspace(),
            string_len=string_len,
            signed=self._declared_signedness(f),
        )

    def pointer_addrspace(self) -> AddrSpace:
        return AddrSpace.USER if self.category == "syscalls" else AddrSpace.KERNEL

    def args_struct(self, string_len: int = DEFAULT_STRING_LEN) -> StructType:
        """The record as a struct (what ``args`` is), named as bpftrace names it."""
        members = tuple(
            Field(f.name, self.field_type(f.name, string_len) or VOID, f.offset) for f in self.fields
        )
        return StructType(
            kind="struct",
            tag=f"_tracepoint_{self.category}_{self.event}",
            fields=members,
            byte_size=self.record_size,
            byte_align=8,
        )

    def _declared_signedness(self, f: TracepointField) -> bool | None:
        if self.category != "syscalls" or not self.event.startswith("sys_enter_"):
            return None
        if f.name == "__syscall_nr" or f.array_len is not None or f.data_loc:
            return None
        base, depth = split_c_type(f.c_type)
        known = C_INT_TYPES.get(base)
        return known.signed if depth == 0 and known is not None else None


# --- locating tracefs ------------------------------------------------------


def _tracefs_mounts(mounts_file: str) -> list[str]:
    """Mount points of every tracefs listed in ``mounts_file``."""
    out: list[str] = []
    try:
        with open(mounts_file, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "tracefs":
                    # /proc/mounts escapes blanks in paths as octal (\040).
                    out.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[1]))
    except OSError:
        pass
    return out


def _mount_tracefs(target: str) -> int:
    """mount(2) tracefs on ``target``; 0 on success, else the errno."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return errno.ENOSYS
    fn = libc.mount
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    if fn(b"nodev", target.encode(), b"tracefs", 0, None) != 0:
        return ctypes.get_errno() or errno.EIO
    return 0


def tracefs_root(mount: bool = True, *, mounts_file: str = "/proc/mounts") -> str:
    """The directory tracefs is mounted on.

    Prefers /sys/kernel/tracing, then /sys/kernel/debug/tracing, then any
    other tracefs mount.  When none is mounted and we are root (and ``mount``
    is true) mounts it on /sys/kernel/tracing.  Raises ``TracefsUnavailable``.
    """
    mounts = _tracefs_mounts(mounts_file)
    for preferred in (TRACEFS_PATH, DEBUGFS_TRACEFS_PATH):
        if preferred in mounts:
            return preferred
    if mounts:
        return mounts[0]
    manual = f"mount -t tracefs nodev {TRACEFS_PATH}"
    if not mount:
        raise TracefsUnavailable("tracefs is not mounted", f"mount it as root: {manual}")
    if os.geteuid() != 0:
        raise TracefsUnavailable(
            "tracefs is not mounted and only root can mount it",
            f"run pytrace as root, or mount it first: {manual}",
        )
    err = _mount_tracefs(TRACEFS_PATH)
    if err == errno.EBUSY and os.path.isdir(os.path.join(TRACEFS_PATH, "events")):
        return TRACEFS_PATH  # raced with another mounter; it is there now
    if err != 0:
        raise TracefsUnavailable(
            f"cannot mount tracefs on {TRACEFS_PATH}: {os.strerror(err)}",
            "the kernel needs CONFIG_TRACING (and CONFIG_FTRACE); "
            f"check 'grep tracefs /proc/filesystems' and try: {manual}",
        )
    return TRACEFS_PATH


# --- listing and reading ---------------------------------------------------


def list_tracepoints(root: str) -> list[tuple[str, str]]:
    """Every (category, event) under ``root``/events, sorted.

    Only directory entries are looked at: inside events/ and inside a
    category the files (enable, filter, header_page, ...) are never events
    and every subdirectory is one.  ``DirEntry.is_dir`` answers from d_type,
    so this costs one getdents per directory and no stat.
    """
    out: list[tuple[str, str]] = []
    events = os.path.join(root, "events")
    try:
        with os.scandir(events) as cats:
            categories = [c.name for c in cats if c.is_dir()]
        for cat in categories:
            try:
                with os.scandir(os.path.join(events, cat)) as evs:
                    out.extend((cat, e.name) for e in evs if e.is_dir())
            except (FileNotFoundError, NotADirectoryError):
                continue  # a module unloaded while we listed
    except PermissionError as exc:
        raise _permission_problem(events) from exc
    except FileNotFoundError:
        return []
    out.sort()
    return out


def read_format(root: str, category: str, event: str) -> TracepointFormat | None:
    """The parsed format of ``category:event``, or None if there is no such tracepoint."""
    if not _is_plain_name(category) or not _is_plain_name(event):
        return None  # a script's text must never walk out of events/
    path = os.path.join(root, "events", category, event, "format")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError as exc:
        raise _permission_problem(path) from exc
    return parse_format(text, category, event)


def _is_plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..") and "\0" not in name


def _permission_problem(path: str) -> TracefsUnavailable:
    return TracefsUnavailable(f"permission denied reading {path}", "tracing needs root: run pytrace with sudo")


# --- parsing ---------------------------------------------------------------


def parse_format(text: str, category: str, event: str) -> TracepointFormat:
    """Parse the text of an ``events/<category>/<event>/format`` file."""
    event_id = -1
    fields: list[TracepointField] = []
    common: list[TracepointField] = []
    print_fmt = ""
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("field"):
            m = _FIELD_RE.match(line)
            if m is None:
                raise FormatError(f"{category}:{event}: format line {lineno} does not parse: {stripped!r}")
            f = _parse_field(m, category, event, lineno)
            (common if f.name.startswith("common_") else fields).append(f)
        elif stripped.startswith("ID:"):
            try:
                event_id = int(stripped[3:].strip())
            except ValueError:
                raise FormatError(f"{category}:{event}: bad ID line {stripped!r}") from None
        elif stripped.startswith("print fmt:"):
            print_fmt = stripped[len("print fmt:"):].strip()
    return TracepointFormat(category, event, event_id, fields, common, print_fmt)


def _parse_field(m: re.Match[str], category: str, event: str, lineno: int) -> TracepointField:
    decl = " ".join(m.group("decl").split())
    offset, size = int(m.group("offset")), int(m.group("size"))
    signed = m.group("signed") == "1"
    data_loc = False
    if decl.startswith(_DATA_LOC + " "):
        data_loc = True
        decl = decl[len(_DATA_LOC) + 1:]
    d = _DECLARATOR_RE.search(decl)
    type_text = decl[: d.start()].strip() if d else ""
    if d is None or not type_text:
        raise FormatError(f"{category}:{event}: format line {lineno}: no type and name in {decl!r}")
    name = d.group("name")
    if data_loc:
        # "__data_loc char[] name": the brackets belong to the type; so does
        # their absence in "__data_loc cpumask_t mask".
        type_text = re.sub(r"\s*\[[^\]]*\]$", "", type_text)
    c_type = _normalise_c_type(type_text)
    array_len: int | None = None
    if d.group("len") is not None:
        array_len = _array_len(d.group("len").strip(), c_type, size)
    return TracepointField(name, c_type, offset, size, signed, array_len, data_loc)


def _normalise_c_type(text: str) -> str:
    """Canonical spacing: ``const void*`` -> ``const void *``, ``char * *`` -> ``char **``."""
    out = re.sub(r"\s*\*\s*", " * ", text).split()
    return re.sub(r"\* (?=\*|const\b)", "*", " ".join(out))


def _array_len(text: str, c_type: str, size: int) -> int:
    """The element count of ``[text]``: a number, an arithmetic expression of
    numbers, or (for a macro such as TASK_COMM_LEN) size / element size."""
    if text == "":
        return 0  # flexible array member; its size column is 0 too
    value = _const_int(text)
    if value is not None:
        return value
    elem = element_size(c_type)
    return size // elem if elem else size


def _const_int(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    return _eval_int(node)


def _eval_int(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.BinOp):
        a, b = _eval_int(node.left), _eval_int(node.right)
        if a is None or b is None:
            return None
        ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
               ast.LShift: lambda: a << b if b < 64 else None, ast.RShift: lambda: a >> b,
               ast.Div: lambda: a // b if b else None, ast.FloorDiv: lambda: a // b if b else None}
        op = ops.get(type(node.op))
        return op() if op else None
    return None


def split_c_type(c_type: str) -> tuple[str, int]:
    """``(base type without qualifiers, pointer depth)``:
    ``const char *const *`` -> ``("char", 2)``; ``struct sock *`` -> ``("struct sock", 1)``."""
    depth = c_type.count("*")
    words = [w for w in c_type.replace("*", " ").split() if w not in _QUALIFIERS]
    return " ".join(words), depth


def element_size(c_type: str) -> int | None:
    """Size in bytes of one object of ``c_type`` when the name alone tells (None otherwise)."""
    base, depth = split_c_type(c_type)
    if depth:
        return _POINTER_SIZE
    known = C_INT_TYPES.get(base)
    return known.size if known is not None else None


# --- mapping to the type model ---------------------------------------------

_CHAR_NAMES = frozenset({"char", "signed char"})


def field_type(
    f: TracepointField,
    *,
    addrspace: AddrSpace = AddrSpace.KERNEL,
    string_len: int = DEFAULT_STRING_LEN,
    signed: bool | None = None,
) -> Type:
    """The type-model type of a field, following bpftrace.

    * ``char x[N]`` is ``string[N]``; other arrays are ``ArrayType``.
    * Integers (known C names and unknown typedefs alike) take size and
      signedness from the size:/signed: columns, because the format file is
      what the record really holds; ``signed`` overrides the column (see
      ``TracepointFormat.field_type``).
    * Pointers keep their pointee: ``char *`` is ``int8 *``, ``struct foo *``
      points to a layout-less ``StructType`` that BTF fills in later, and a
      pointer to a typedef we cannot see through is ``void *``.
    * A ``__data_loc char[]`` field is ``string[string_len]``: reading it
      means following the locator, which codegen knows to do because
      ``f.data_loc`` is set.  Other data_loc arrays are a pointer to their
      first element.
    """
    base, depth = split_c_type(f.c_type)
    is_signed = f.signed if signed is None else signed
    if f.data_loc:
        if depth == 0 and base in _CHAR_NAMES:
            return StringType(string_len)
        return PointerType(_pointer_chain(base, depth, addrspace), addrspace)
    if f.array_len is not None:
        if depth == 0 and base in _CHAR_NAMES and f.array_len > 0:
            return StringType(f.array_len)
        if depth:
            elem: Type = PointerType(_pointer_chain(base, depth - 1, addrspace), addrspace)
        elif f.array_len > 0 and f.size % f.array_len == 0:
            elem = _scalar(base, f.size // f.array_len, is_signed)
        else:
            known = C_INT_TYPES.get(base)
            elem = known if known is not None else U8
        return ArrayType(elem, f.array_len)
    if depth:
        return PointerType(_pointer_chain(base, depth - 1, addrspace), addrspace)
    return _scalar(base, f.size, is_signed)


def _pointer_chain(base: str, depth: int, addrspace: AddrSpace) -> Type:
    """The type ``base`` followed by ``depth`` stars."""
    t = _pointee(base)
    for _ in range(depth):
        t = PointerType(t, addrspace)
    return t


def _pointee(base: str) -> Type:
    if base == "void":
        return VOID
    if base in _CHAR_NAMES:
        return I8
    known = C_INT_TYPES.get(base)
    if known is not None:
        return known
    kind, _, tag = base.partition(" ")
    if kind in ("struct", "union") and tag:
        return StructType(kind=kind, tag=tag)
    if kind == "enum" and tag:
        return EnumType(tag=tag)
    return VOID


def _scalar(base: str, size: int, signed: bool) -> Type:
    kind, _, tag = base.partition(" ")
    if kind in ("struct", "union") and tag:
        return StructType(kind=kind, tag=tag, byte_size=size)
    if size not in (1, 2, 4, 8):
        return ArrayType(U8, size)  # a by-value blob we cannot see into
    if kind == "enum" and tag:
        return EnumType(tag=tag, bits=size * 8, signed=signed)
    t: IntType = int_of_size(size, signed)
    return t
