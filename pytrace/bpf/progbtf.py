"""The smallest BTF a program with subprograms needs: func_info.

The verifier refuses a program that takes a subprogram's address (the
callback of bpf_for_each_map_elem or bpf_loop) unless BTF describes every
function of the program ("missing btf func_info"), and a callback must be
``static`` ("callback function not static"; kernel/bpf/verifier.c,
check_ld_imm).  LLVM writes such BTF only from full debug info, which would
cost every program its debug sections; this module writes the few types
the kernel checks instead:

    [1] INT 'long' (64 bits, signed)   [2] PTR -> void
    [3] FUNC_PROTO long (void *)       [4] FUNC_PROTO long (void *, void *, void *, void *)
    [5] FUNC <main>  (global, [3])     [6..] FUNC <subprog> (static, [4])

loads it with BPF_BTF_LOAD and lays out the ``bpf_func_info`` records
(instruction offset, FUNC type id) that BPF_PROG_LOAD takes with it.
The format is the kernel's Documentation/bpf/btf.rst.
"""

from __future__ import annotations

import ctypes
import struct

from .syscalls import BpfCmd, FdOwner, bpf, close_fd

BTF_MAGIC = 0xEB9F
BTF_KIND_INT, BTF_KIND_PTR, BTF_KIND_FUNC, BTF_KIND_FUNC_PROTO = 1, 2, 12, 13
BTF_FUNC_STATIC, BTF_FUNC_GLOBAL = 0, 1
BTF_INT_SIGNED = 1
FUNC_INFO_REC_SIZE = 8  # struct bpf_func_info { u32 insn_off; u32 type_id; }

_HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len
_TYPE = struct.Struct("<III")         # name_off, info (vlen | kind << 24), size or type
_U32 = struct.Struct("<I")
_PARAM = struct.Struct("<II")         # name_off, type


class BtfLoadAttr(ctypes.Structure):
    """BPF_BTF_LOAD's attributes (include/uapi/linux/bpf.h)."""

    _fields_ = [("btf", ctypes.c_uint64), ("btf_log_buf", ctypes.c_uint64), ("btf_size", ctypes.c_uint32),
                ("btf_log_size", ctypes.c_uint32), ("btf_log_level", ctypes.c_uint32)]


def identifier(text: str) -> bytes:
    """``text`` as a C identifier, which the kernel wants for every FUNC
    and parameter name (kernel/bpf/btf.c, btf_name_valid_identifier)."""
    out = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in text) or "_"
    return ("_" + out if out[0].isdigit() else out).encode("ascii")


def _info(kind: int, vlen: int = 0) -> int:
    return (kind << 24) | vlen


def func_info_btf(main: str, subprogs: list[str]) -> bytes:
    """The BTF blob for a program named ``main`` whose subprograms are
    ``subprogs`` (in instruction order); FUNC type ids are 5, 6, 7, ..."""
    strings = bytearray(b"\0")

    def name(text: str) -> int:
        off = len(strings)
        strings.extend(identifier(text) + b"\0")
        return off

    types = bytearray()
    types += _TYPE.pack(name("long"), _info(BTF_KIND_INT), 8) + _U32.pack((BTF_INT_SIGNED << 24) | 64)
    types += _TYPE.pack(0, _info(BTF_KIND_PTR), 0)
    types += _TYPE.pack(0, _info(BTF_KIND_FUNC_PROTO, 1), 1) + _PARAM.pack(name("ctx"), 2)
    types += _TYPE.pack(0, _info(BTF_KIND_FUNC_PROTO, 4), 1) + b"".join(
        _PARAM.pack(name(p), 2) for p in ("a", "b", "c", "d"))
    types += _TYPE.pack(name(main), _info(BTF_KIND_FUNC, BTF_FUNC_GLOBAL), 3)
    for sub in subprogs:
        types += _TYPE.pack(name(sub), _info(BTF_KIND_FUNC, BTF_FUNC_STATIC), 4)
    header = _HEADER.pack(BTF_MAGIC, 1, 0, _HEADER.size, 0, len(types), len(types), len(strings))
    return header + bytes(types) + bytes(strings)


def func_info_records(subprog_insns: list[int]) -> bytes:
    """``bpf_func_info`` records: the main program at instruction 0 (type 5),
    then each subprogram at its first instruction (types 6, 7, ...)."""
    recs = [(0, 5)] + [(insn, 6 + i) for i, insn in enumerate(subprog_insns)]
    return b"".join(struct.pack("<II", off, tid) for off, tid in recs)


class ProgramBtf(FdOwner):
    """A loaded func_info BTF (an fd) with the records that go with it."""

    def __init__(self, fd: int, records: bytes) -> None:
        self.fd = fd
        self.records = records

    def close(self) -> None:
        if self.fd >= 0:
            close_fd(self.fd)
            self.fd = -1

    @property
    def count(self) -> int:
        return len(self.records) // FUNC_INFO_REC_SIZE

    @classmethod
    def load(cls, main: str, subprogs: list[tuple[int, str]]) -> "ProgramBtf":
        blob = func_info_btf(main, [n for _, n in subprogs])
        buf = ctypes.create_string_buffer(blob, len(blob))
        log = ctypes.create_string_buffer(1 << 14)
        attr = BtfLoadAttr(btf=ctypes.addressof(buf), btf_size=len(blob), btf_log_buf=ctypes.addressof(log),
                           btf_log_size=len(log), btf_log_level=1)
        fd = bpf(BpfCmd.BTF_LOAD, attr, "the kernel refused the program's BTF (func_info)")
        return cls(fd, func_info_records([i for i, _ in subprogs]))
