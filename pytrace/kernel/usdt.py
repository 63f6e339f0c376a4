"""USDT probes: the ``.note.stapsdt`` notes that <sys/sdt.h> compiles in.

Each ``STAP_PROBE``/``DTRACE_PROBE`` site leaves a 1-byte ``nop`` in the
code and an ELF note (owner "stapsdt", type 3) describing it: the nop's
address, the link-time address of the ``.stapsdt.base`` section, the
address of the probe's semaphore (0 when it has none), provider and probe
names, and one assembler operand per argument, prefixed by its size and
sign: ``-4@%edi``, ``8@$42``, ``-4@-20(%rbp)``, ``-4@(%rdx,%rcx,4)``,
``-8@counter(%rip)``, ``8f@%rdx`` (a double).

Addresses are link-time virtual addresses.  Systemtap (and GDB) define the
note's base as the value ``.stapsdt.base``'s address had when the note was
written: if a tool such as prelink later moved the sections, pc and
semaphore are shifted by (section address - note base).  Uprobes want file
offsets; ``pc_offset`` and ``semaphore_offset`` (the kernel's
``ref_ctr_offset``) are computed from the PT_LOAD segments.

Arguments are decoded for x86_64 into ``UsdtArg``: register names become
``struct pt_regs`` member names (``%edi``, ``%di``, ``%dil`` -> ``di``), and
a symbol-relative operand (``sym+8(%rip)``, ``sym(,%rax,8)``) has its
symbol resolved, so ``offset`` is relative to the probe's own address for
``ip`` (the uprobe sees regs->ip == the probe address) or absolute for a
base-less operand.  An argument that cannot be decoded leaves the ones
before it usable (``UsdtProbe.error`` says why).

``process_files`` lists what ``-p PID`` searches when the path is left
out: the process's executable and every file it maps.
"""

from __future__ import annotations

import fnmatch
import os
import re
import struct
from types import MappingProxyType
from typing import Literal

from ..records import dataclass
from .elfsyms import ElfHeaders, find_debug_file

# ELF gABI section types (not imported from bpf.elf: listing probes must
# not pull in the bpf(2) layer).
SHT_SYMTAB, SHT_DYNSYM = 2, 11
ET_EXEC, ET_DYN = 2, 3
NT_STAPSDT = 3
STAPSDT_OWNER = "stapsdt"
_ADDRS = struct.Struct("<QQQ")  # pc, base, semaphore (ELF64)
_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym


def _pt_regs_names() -> MappingProxyType[str, str]:
    """x86_64 register spellings -> struct pt_regs member names
    (arch/x86/include/asm/ptrace.h).  The high-byte registers %ah..%dh are
    left out on purpose: they are bits 8-15 of a register, which a size and
    a member name cannot express."""
    names = {"rip": "ip", "eip": "ip"}
    for m in ("ax", "bx", "cx", "dx"):
        names.update(dict.fromkeys((f"r{m}", f"e{m}", m, f"{m[0]}l"), m))
    for m in ("si", "di", "bp", "sp"):
        names.update(dict.fromkeys((f"r{m}", f"e{m}", m, f"{m}l"), m))
    for n in range(8, 16):
        names.update(dict.fromkeys((f"r{n}{suffix}" for suffix in ("", "d", "w", "b", "l")), f"r{n}"))
    return MappingProxyType(names)


PT_REGS = _pt_regs_names()
_ARG = re.compile(r"^(?:(?P<sign>-)?(?P<size>\d+)(?P<fp>f)?@)?(?P<op>\S+)$")
_NUMBER = r"-?(?:0[xX][0-9a-fA-F]+|\d+)"
_CONST = re.compile(rf"^\$(?P<value>{_NUMBER})$")
_MEM = re.compile(r"^(?P<disp>[^(]*)\((?P<base>%\w+)?(?:,(?P<index>%\w+)(?:,(?P<scale>[1248]))?)?\)$")
# A displacement: a number, or a symbol with a constant added before or
# after it ("counter", "counter+8", "40+CheckpointStats" as in postgres).
_DISP = re.compile(rf"^(?:(?P<num>{_NUMBER})|(?:(?P<pre>{_NUMBER})\+)?"
                   rf"(?P<sym>[A-Za-z_.$][\w.$@]*)(?P<addend>[+-](?:0[xX][0-9a-fA-F]+|\d+))?)?$")

Kind = Literal["const", "reg", "mem"]


class UsdtError(ValueError):
    """An argument spec this decoder does not understand."""


class UsdtFileError(ValueError):
    """A file whose notes cannot be probes: not linked (a ``.o``)."""


@dataclass(frozen=True)
class UsdtArg:
    """One probe argument.  ``const``: the value is ``value``.  ``reg``: the
    low ``size`` bytes of pt_regs member ``reg``.  ``mem``: ``size`` bytes
    at ``reg + index * scale + offset`` (``reg`` None: no base register,
    ``offset`` is then a link-time address).  Signed values sign-extend."""

    size: int
    signed: bool
    kind: Kind
    reg: str | None = None
    offset: int = 0
    value: int = 0
    index: str | None = None
    scale: int = 1
    fp: bool = False  # "8f@": the bytes are a double/float, not an integer
    symbol: str | None = None  # the symbol a 'mem' offset was computed from
    spec: str = ""


@dataclass(frozen=True)
class UsdtProbe:
    """One probe site: a probe inlined or expanded in N places has N."""

    path: str
    provider: str
    name: str
    pc: int  # link-time address of the probe's nop, base-adjusted
    pc_offset: int | None  # its file offset: what the uprobe attaches to
    base: int  # .stapsdt.base's address as the note recorded it
    semaphore: int  # its address, 0 for none
    semaphore_offset: int | None  # file offset: ref_ctr_offset; None for no semaphore
    arg_spec: str
    # The arguments decoded, in order; when one cannot be (``error`` says
    # why), the ones before it: argN for N >= len(args) is then unreadable.
    args: tuple[UsdtArg, ...]
    error: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.provider}:{self.name}"


def register(name: str) -> str:
    """The pt_regs member for an AT&T register operand ("%edi" -> "di")."""
    reg = PT_REGS.get(name.lstrip("%").lower())
    if reg is None:
        raise UsdtError(f"register {name} is not a general-purpose register in pt_regs")
    return reg


def _int(text: str) -> int:
    # int(x, 0) would also take "010" as invalid octal: gcc prints decimal.
    return int(text, 16) if text.lstrip("+-")[:2].lower() == "0x" else int(text)


def parse_arg(spec: str, pc: int = 0, symbols: dict[str, int] | None = None) -> UsdtArg:
    """Decode one argument spec.  ``pc`` is the probe's link-time address
    and ``symbols`` link-time symbol values, both for symbol operands."""
    m = _ARG.match(spec)
    if m is None:
        raise UsdtError(f"malformed argument {spec!r}")
    # A spec without a size prefix (very old sdt.h) is taken as 8 bytes.
    size = int(m["size"]) if m["size"] else 8
    if size not in (1, 2, 4, 8):
        raise UsdtError(f"argument {spec!r}: size {size} is not 1, 2, 4 or 8")
    signed, fp, op = bool(m["sign"]), bool(m["fp"]), m["op"]
    c = _CONST.match(op)
    if c is not None:
        return UsdtArg(size, signed, "const", value=_int(c["value"]), fp=fp, spec=spec)
    if op.startswith("%"):
        return UsdtArg(size, signed, "reg", reg=register(op), fp=fp, spec=spec)
    mem = _MEM.match(op)
    if mem is None:
        raise UsdtError(f"argument {spec!r}: unsupported operand {op!r}")
    disp = _DISP.match(mem["disp"].strip())
    if disp is None:
        raise UsdtError(f"argument {spec!r}: unsupported displacement {mem['disp']!r}")
    base = register(mem["base"]) if mem["base"] else None
    index = register(mem["index"]) if mem["index"] else None
    if index == "ip" or index == "sp":
        raise UsdtError(f"argument {spec!r}: {mem['index']} cannot be an index register")
    offset, symbol = 0, disp["sym"]
    if disp["num"]:
        offset = _int(disp["num"])
    elif symbol:
        value = (symbols or {}).get(symbol)
        if value is None:
            raise UsdtError(f"argument {spec!r}: symbol {symbol!r} not found")
        if base not in (None, "ip"):
            raise UsdtError(f"argument {spec!r}: a symbol with base register {mem['base']}")
        offset = value + _int(disp["pre"] or "0") + _int(disp["addend"] or "0")
        if base == "ip":
            # The assembler would have made sym(%rip) the address of sym; at
            # the probe, ip holds pc, so that address is ip + (sym - pc).
            offset -= pc
    return UsdtArg(size, signed, "mem", reg=base, offset=offset, index=index,
                   scale=int(mem["scale"] or 1), fp=fp, symbol=symbol, spec=spec)


def parse_args(arg_spec: str, pc: int = 0, symbols: dict[str, int] | None = None
               ) -> tuple[UsdtArg, ...]:
    """Decode a note's space-separated argument specs."""
    return tuple(parse_arg(a, pc, symbols) for a in arg_spec.split())


def decode_args(arg_spec: str, pc: int = 0, symbols: dict[str, int] | None = None
                ) -> tuple[tuple[UsdtArg, ...], str | None]:
    """The arguments of ``arg_spec`` up to the first one that cannot be
    decoded, and why that one cannot (None when all could): the ones
    before it stay usable."""
    args: list[UsdtArg] = []
    for spec in arg_spec.split():
        try:
            args.append(parse_arg(spec, pc, symbols))
        except UsdtError as e:
            return tuple(args), str(e)
    return tuple(args), None


@dataclass(frozen=True)
class RawNote:
    """A stapsdt note's fields exactly as stored."""

    provider: str
    name: str
    pc: int
    base: int
    semaphore: int
    arg_spec: str


def parse_stapsdt(desc: bytes) -> RawNote | None:
    """Decode one stapsdt note descriptor (ELF64), or None if malformed."""
    if len(desc) < _ADDRS.size:
        return None
    pc, base, sema = _ADDRS.unpack_from(desc)
    strings = desc[_ADDRS.size:].split(b"\0")
    if len(strings) < 3:
        return None
    provider, name, args = (s.decode("utf-8", "replace") for s in strings[:3])
    return RawNote(provider, name, pc, base, sema, args)


def _symbol_values(headers: ElfHeaders, wanted: set[str]) -> dict[str, int]:
    """Values of the defined symbols (of any type) named in ``wanted``, from
    the file's symbol tables, then from its separate debug file's .symtab
    (a static variable of a stripped binary is only there)."""
    found: dict[str, int] = {}
    _scan_symbols(headers, wanted, found)
    if not wanted.issubset(found):
        debug = find_debug_file(headers)
        if debug is not None:
            try:
                _scan_symbols(ElfHeaders.open(debug), wanted, found)
            except (OSError, ValueError):
                pass  # unresolved symbols are reported per argument
    return found


def _scan_symbols(headers: ElfHeaders, wanted: set[str], found: dict[str, int]) -> None:
    for sec in headers.sections:
        if sec.type not in (SHT_SYMTAB, SHT_DYNSYM) or sec.link >= len(headers.sections):
            continue
        data, strtab = headers.read(sec), headers.read(headers.sections[sec.link])
        for nm, _info, _other, shndx, value, _size in _SYM.iter_unpack(
                data[: len(data) // _SYM.size * _SYM.size]):
            if not shndx:
                continue  # undefined: someone else's symbol
            end = strtab.find(b"\0", nm)
            name = strtab[nm: end if end >= 0 else len(strtab)].decode("utf-8", "replace")
            if name in wanted:
                found.setdefault(name, value)


def _needs_symbol(arg_spec: str) -> set[str]:
    out = set()
    for spec in arg_spec.split():
        op = spec.partition("@")[2] or spec
        m = _MEM.match(op)
        d = _DISP.match(m["disp"].strip()) if m else None
        if d is not None and d["sym"]:
            out.add(d["sym"])
    return out


def usdt_probes(path: str) -> list[UsdtProbe]:
    """Every USDT probe site of ELF file ``path``, in note order; raises
    OSError, ElfError or UsdtFileError for a file that has none to give."""
    headers = ElfHeaders.open(path)
    if headers.type not in (ET_EXEC, ET_DYN):
        # An object file's note addresses are section-relative until the
        # linker places them: nothing in it can be attached (bpftrace 0.17
        # lists none either).
        raise UsdtFileError(f"{path}: a relocatable object file, not an executable or a library: "
                            "its probe addresses are not final until it is linked")
    raw = []
    for sec in headers.sections:
        if sec.name == ".note.stapsdt":
            raw.extend(parse_stapsdt(desc) for owner, ntype, desc in headers.notes(sec)
                       if owner == STAPSDT_OWNER and ntype == NT_STAPSDT)
    notes = [n for n in raw if n is not None]
    if not notes:
        return []
    base_sec = headers.section(".stapsdt.base")
    wanted = set().union(*(_needs_symbol(n.arg_spec) for n in notes))
    symbols = _symbol_values(headers, wanted) if wanted else {}
    out = []
    for n in notes:
        # As systemtap and GDB define it: both addresses move with the base,
        # and without a .stapsdt.base section nothing is adjusted.  (libbpf
        # adjusts the pc only; the two agree unless something moved.)
        delta = base_sec.addr - n.base if base_sec is not None else 0
        pc = n.pc + delta
        sema = n.semaphore + delta if n.semaphore else 0
        args, error = decode_args(n.arg_spec, pc, symbols)
        out.append(UsdtProbe(path, n.provider, n.name, pc, headers.file_offset(pc), n.base, sema,
                             headers.file_offset(sema) if sema else None, n.arg_spec, args, error))
    return out


def match(probes: list[UsdtProbe], provider_glob: str | None, name_glob: str) -> list[UsdtProbe]:
    """The probe sites whose provider and name match the fnmatch globs
    (case-sensitive); a None or empty provider matches any, as in
    ``usdt:path:name``."""
    provider_re = re.compile(fnmatch.translate(provider_glob)).match if provider_glob else None
    name_re = re.compile(fnmatch.translate(name_glob)).match
    return [p for p in probes if (provider_re is None or provider_re(p.provider)) and name_re(p.name)]


def find(path: str, provider_glob: str | None, name_glob: str) -> list[UsdtProbe]:
    """The probe sites of ``path`` matching the globs (see ``match``).  One
    probe may have several sites (inlined code)."""
    return match(usdt_probes(path), provider_glob, name_glob)


def process_files(pid: int) -> list[str]:
    """The files process ``pid`` runs and maps (its executable first, then
    the libraries in address order), as bpftrace names them for ``-p``:
    seen through the process's root, ``/proc/PID/root/usr/lib/...``, so a
    process in another mount namespace gets its own files.  Raises OSError
    when the process is gone or its mappings cannot be read."""
    root = f"/proc/{pid}/root"
    out: dict[str, None] = {}
    exe = os.readlink(f"/proc/{pid}/exe")
    if exe.startswith("/") and not exe.endswith(" (deleted)"):
        out[root + exe] = None
    with open(f"/proc/{pid}/maps") as fh:
        for line in fh:
            fields = line.rstrip("\n").split(None, 5)
            # Anonymous memory, [heap], [vdso] and files deleted since they
            # were mapped (the kernel appends " (deleted)") cannot be probed.
            if len(fields) == 6 and fields[5].startswith("/") and not fields[5].endswith(" (deleted)"):
                out.setdefault(root + fields[5], None)
    return list(out)
