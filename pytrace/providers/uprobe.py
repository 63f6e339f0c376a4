"""uprobe and uretprobe: dynamic probes on user-space functions.

Syntax, as bpftrace 0.17: ``uprobe:BIN:FUNC``, ``uprobe:BIN:FUNC+OFFSET``,
``uprobe:BIN:ADDRESS`` (a link-time address, as objdump shows it);
``uretprobe:BIN:FUNC``.  FUNC may be a glob (``read*``) and a C++ name,
quoted, matches by its demangled form (``uprobe:prog:"ns::f"`` attaches to
every overload, ``"ns::f(int)"`` to one); ``uprobe:BIN:cpp:ns::f`` (later
bpftrace) is accepted too.  BIN is a path (a glob attaches to every file
that matches), a library by short name or soname (``libc``,
``libc.so.6``: with ``-p`` the file that process maps, else the one
/etc/ld.so.cache names) or an executable on PATH.  With ``-p PID``,
``uprobe:FUNC`` means that process's executable, and probes fire only in
that process.

Everything is resolved here, at compile time: each matching function
becomes its own ResolvedAttach (its own program), named as bpftrace names
it for ``probe`` (``uprobe:PATH-AS-WRITTEN:SYMBOL``, ``+OFFSET`` when
non-zero, an address in decimal), with the file offset the kernel wants in
``detail["file_offset"]`` and the name ``func`` prints (C++ demangled) in
``detail["symbol"]``.  A function the file lacks is passed over, as
bpftrace 0.17 does (Debian's tools name functions only some library
versions have), with a warning at the function part and the nearest names
as hints; a script left with nothing to attach fails (semantic/pipeline).
A non-zero offset must fall on an instruction boundary (kernel/x86insn)
unless ``--unsafe``.
"""

from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING, Callable, NamedTuple

from ..kernel.libraries import is_elf, resolve_library, strip_root
from .base import (PROG_KPROBE, AttachEnv, ListEnv, ProgramShape, Provider, ResolveEnv, ResolvedAttach, parse_int,
                   part_span, split_attach_point)

if TYPE_CHECKING:
    from ..bpf.attach import Attachment
    from ..frontend.ast import AttachPoint
    from ..source import Span
    from ..kernel.dwarf import FunctionParams
    from ..kernel.elfsyms import ElfSymbols, Symbol, SymbolTable


def resolve_binary(name: str, pid: int | None = None) -> str | None:
    """The file a uprobe/usdt target names: a path (seen from ``pid``'s
    root), a library short name or soname ('libc', 'libc.so.6',
    'libssl', as the loader finds it) or an executable on PATH."""
    return resolve_library(name, pid)


def has_wildcard(text: str) -> bool:
    return any(c in text for c in "*?[")


class TargetError(ValueError):
    """A malformed uprobe target: the message and where it points (the
    index of the part at fault, None for the whole attach point); ``hint``
    None means the usage hint, "" none."""

    def __init__(self, message: str, part: int | None = None, *, skip: int = 0, to_end: bool = False,
                 with_colon: bool = False, hint: str | None = None, missing: bool = False) -> None:
        super().__init__(message)
        self.part, self.skip, self.to_end, self.with_colon, self.hint = part, skip, to_end, with_colon, hint
        self.missing = missing  # the binary does not exist (not: the attach point is malformed)


class Target(NamedTuple):
    """A parsed uprobe target (before the binary and symbols are looked up)."""

    binary: str | None     # as written; None: the -p process's executable
    func: str              # a symbol, glob or (demangled) C++ name; "" for an address
    func_part: int         # index of the function's first part in the attach point
    offset: int = 0
    address: int | None = None


def parse_target(parts: list[str], pid: int | None, kind: str) -> Target:
    """Split ``parts`` (provider first, as split_attach_point gives them)
    into a Target; raises TargetError."""
    if len(parts) == 2 and pid is not None:
        binary, rest, first = None, parts[1:], 1
    elif len(parts) >= 3:
        binary, rest, first = parts[1], parts[2:], 2
        if not binary:
            raise TargetError("the binary is missing", 1)
    else:
        raise TargetError("a binary and a function are needed")
    if len(rest) > 1 and rest[0] == "cpp":
        rest, first = rest[1:], first + 1
    # An unquoted C++ name was split at its '::'; put it back together.
    func = ":".join(rest)
    if len(rest) > 1 and "::" not in func:
        raise TargetError(f"too many parts for a {kind} probe", first + 1, to_end=True, with_colon=True)
    if not func:
        raise TargetError("the function is missing", first)
    if func[0].isdigit():
        address = parse_int(func)
        if address is None:
            raise TargetError(f"invalid address '{func}'", first, to_end=True)
        return Target(binary, "", first, 0, address)
    head, plus, tail = func.rpartition("+")
    # "f+8" is an offset; "ns::operator+" and "operator+=" (C++ names) are not.
    if plus and tail and not head.endswith("operator"):
        if kind == "uretprobe":
            raise TargetError("a uretprobe cannot have an offset", first, skip=len(head), to_end=True)
        value = parse_int(tail)
        if value is None:
            raise TargetError(f"invalid offset '{tail}'", first, skip=len(head) + 1, to_end=True)
        if not head:
            raise TargetError("the function is missing", first)
        return Target(binary, head, first, value)
    return Target(binary, func, first)


class UprobeProvider(Provider):
    listed_by_default = False
    # pytrace.listing: list_probes() returns exactly the matching lines (a
    # library's short name becomes its path, C++ names match demangled).
    filters_listing = True
    name = "uprobe"
    aliases = ("u",)
    is_return = False

    def __init__(self) -> None:
        # Per provider instance, that is per compilation or listing: symbol
        # tables and DWARF read once however many attach points name a file.
        self._elf: ElfSymbols | None = None
        self._dwarf: dict[str, FunctionParams] = {}
        self._listed: dict[str, str] = {}   # path shown -> file, for describe()
        self._warned: set[str] = set()

    def usage(self) -> str:
        return f"{self.name}:/path/to/binary:function (or a library name: {self.name}:libc:malloc)"

    def symbols(self) -> ElfSymbols:
        if self._elf is None:
            from ..kernel.elfsyms import ElfSymbols
            self._elf = ElfSymbols()
        return self._elf

    def program(self, a: ResolvedAttach) -> ProgramShape:
        return ProgramShape("uprobe", "regs", PROG_KPROBE, user=True)

    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list[Attachment]:
        """A uprobe at the file offset resolved at compile time, in every
        process that maps the file, or only in ``env.pid`` (-p)."""
        from ..bpf.attach import attach_uprobe
        d = a.detail
        return [attach_uprobe(prog_fd, d["path"], int(d["file_offset"]), retprobe=self.is_return,
                              pid=env.pid if env.pid else -1)]

    # ------------------------------------------------------------------ resolving
    def resolve(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        # No fixed part count: an unquoted C++ name (ns::f) splits into several.
        if id(ap) in env.failed:
            return []
        return self.resolve_parts(ap, parts, env)

    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        try:
            t = parse_target(parts, env.pid, self.name)
            files = self._files(t, env.pid)
        except TargetError as exc:
            span = ap.span if exc.part is None else part_span(ap, exc.part, skip=exc.skip, to_end=exc.to_end,
                                                              with_colon=exc.with_colon)
            hint = f"the form is {self.usage()}" if exc.hint is None else exc.hint
            env.diags.error(str(exc), span, hints=[hint] if hint else [])
            return []
        func_span = part_span(ap, t.func_part, to_end=True)
        out: list[ResolvedAttach] = []
        problems: list[tuple[str, list[str]]] = []
        read_any = False
        for path, shown in files:
            try:
                table = self.symbols().load(path)
            except (OSError, ValueError) as exc:  # ValueError: ElfError
                if len(files) == 1:
                    env.diags.error(f"cannot read the symbols of {shown}: {_reason(exc, path)}",
                                    part_span(ap, 1) if t.binary is not None else ap.span)
                    return []
                continue  # a path glob also matches files that are not programs
            read_any = True
            if t.address is not None:
                made = self._at_address(ap, t, table, path, shown, env)
            else:
                made = self._at_symbols(ap, t, table, path, shown, env, problems)
            if made is None:
                return []
            out.extend(made)
        if not read_any:
            env.diags.error(f"none of the files matching '{t.binary}' is an ELF file pytrace can read",
                            part_span(ap, 1))
        elif not out and problems:
            # bpftrace 0.17 passes over an attach point whose function the
            # file lacks (tools name functions that only some versions of a
            # library have): a warning here, and an error only when nothing
            # in the whole script can be attached.
            message, hints = problems[0]
            env.diags.warning(message, func_span, hints=hints)
        return out

    def _files(self, t: Target, pid: int | None) -> list[tuple[str, str]]:
        """(file to attach to, path the probe name shows) of each binary
        ``t`` names; raises TargetError."""
        if t.binary is None:
            assert pid is not None
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                raise TargetError(f"cannot find the executable of process {pid}", hint="") from None
            # /proc/PID/exe reaches the file even when it was deleted or
            # lives in another mount namespace.
            return [(f"/proc/{pid}/exe", exe.removesuffix(" (deleted)"))]
        if has_wildcard(t.binary):
            found = [(p, p) for p in sorted(glob.glob(t.binary)) if os.path.isfile(p) and is_elf(p)]
            if not found:
                raise TargetError(f"no binaries match '{t.binary}'", 1, hint="")
            return found
        path = self.symbols().resolve_library(t.binary, pid)
        if path is None:
            raise TargetError(f"binary or library not found: {t.binary}", 1, missing=True,
                              hint=f"give the full path, e.g. {self.name}:/usr/bin/bash:readline")
        if not os.path.isfile(path):
            raise TargetError(f"not a file: {t.binary}", 1, hint="")
        # bpftrace names the probe after the path as written, or after the
        # file a short name resolved to (without a /proc/PID/root prefix).
        return [(path, t.binary if "/" in t.binary else strip_root(path))]

    def _make(self, ap: AttachPoint, path: str, shown: str, point: str, file_offset: int, *, offset: int = 0,
              func: str, elf_symbol: str | None = None, address: int | None = None) -> ResolvedAttach:
        """One attach point: ``point`` is what the probe name shows after
        the path (the symbol, or the address in decimal, as bpftrace)."""
        from ..semantic.types import U64
        detail = {"path": path, "display_path": shown, "symbol": func, "elf_symbol": elf_symbol,
                  "offset": offset, "file_offset": file_offset, "address": address}
        return ResolvedAttach(self.name, f"{self.name}:{shown}:{point}" + (f"+{offset}" if offset else ""),
                              ap.span, nargs=0 if self.is_return else 6, retval=U64 if self.is_return else None,
                              has_func=True, detail=detail)

    def _at_symbols(self, ap: AttachPoint, t: Target, table: SymbolTable, path: str, shown: str,
                    env: ResolveEnv, problems: list[tuple[str, list[str]]]) -> list[ResolvedAttach] | None:
        matches = table.match(t.func)
        listing = f"list them with: pytrace -l '{self.name}:{shown}:*'"
        if not matches:
            if has_wildcard(t.func):
                problems.append((f"no functions match '{t.func}' in {shown}", [listing]))
            else:
                problems.append((f"function '{t.func}' not found in {shown}",
                                 _near(t.func, table) or [listing]))
            return []
        span = part_span(ap, t.func_part, to_end=True)
        out = []
        for sym in matches:
            if sym.file_offset is None:
                env.diags.error(f"function '{sym.name}' of {shown} is not in a loadable segment", span)
                return None
            if t.offset and sym.size and t.offset >= sym.size:
                env.diags.error(f"offset {t.offset} is outside function '{sym.name}' ({sym.size} bytes)", span)
                return None
            if t.offset and not env.unsafe and not self._boundary_ok(path, sym, t.offset, env, span):
                return None
            out.append(self._make(ap, path, shown, sym.name, sym.file_offset + t.offset, offset=t.offset,
                                  func=table.demangled(sym.name) or sym.name, elf_symbol=sym.name))
        return out

    def _at_address(self, ap: AttachPoint, t: Target, table: SymbolTable, path: str, shown: str,
                    env: ResolveEnv) -> list[ResolvedAttach] | None:
        assert t.address is not None
        span = part_span(ap, t.func_part, to_end=True)
        file_offset = table.headers.file_offset(t.address)
        if file_offset is None:
            env.diags.error(f"address {t.address:#x} is not in a loadable segment of {shown}", span)
            return None
        sym = table.containing(t.address)
        if sym is None:
            if not env.unsafe:
                env.diags.error(f"address {t.address:#x} is not inside a function of {shown}", span,
                                hints=["--unsafe attaches there anyway"])
                return None
            func = f"{t.address:#x}"
        else:
            off = t.address - sym.vaddr
            if off and not env.unsafe and not self._boundary_ok(path, sym, off, env, span,
                                                                f"address {t.address:#x} ({sym.name}+{off})"):
                return None
            func = table.demangled(sym.name) or sym.name
        return [self._make(ap, path, shown, str(t.address), file_offset, func=func, address=t.address)]

    def _boundary_ok(self, path: str, sym: Symbol, offset: int, env: ResolveEnv, span: Span | None,
                     what: str = "") -> bool:
        """Whether ``offset`` into ``sym`` starts an instruction (a uprobe
        elsewhere would corrupt the traced program); reports when not."""
        from ..kernel.x86insn import boundaries, on_boundary
        assert sym.file_offset is not None
        try:
            with open(path, "rb") as fh:
                fh.seek(sym.file_offset)
                code = fh.read(max(sym.size, offset + 1))
        except OSError as exc:
            env.diags.error(f"cannot read the code of '{sym.name}': {exc.strerror or exc}", span)
            return False
        ok = on_boundary(code, offset)
        if ok:
            return True
        if ok is None:
            env.diags.error(f"cannot decode the instructions of '{sym.name}' up to offset {offset}", span,
                            hints=["--unsafe attaches there anyway"])
            return False
        starts = [b for b in boundaries(code[: offset + 16]) if abs(b - offset) < 16]
        env.diags.error(f"{what or f'offset {offset}'} is in the middle of an instruction of '{sym.name}'", span,
                        hints=[f"instructions start at offsets {', '.join(map(str, starts))} nearby",
                               "--unsafe attaches there anyway"])
        return False

    # ------------------------------------------------------------------ listing
    def list_probes(self, rest_glob: str, lister: ListEnv) -> list[str]:
        """``pytrace -l 'uprobe:BIN:GLOB'``: as bpftrace 0.17, one line per
        function of BIN matching GLOB (C++ names match demangled and are
        listed mangled), BIN shown as written or as the file a short name
        resolved to."""
        from ..errors import EnvironmentProblem
        parts = [self.name, *split_attach_point(rest_glob)]
        try:
            t = parse_target(parts, lister.pid, self.name)
            files = self._files(t, lister.pid)
        except TargetError as exc:
            if exc.missing:
                raise EnvironmentProblem(f"cannot list {self.name}s: no such binary or library: {parts[1]}") from None
            if len(parts) < 3 and lister.pid is None:
                lister.warn(f"name the binary to list {self.name}s of, e.g. pytrace -l '{self.name}:/bin/bash:*'")
            else:
                lister.warn(f"cannot list {self.name}s: {exc}")
            return []
        if t.address is not None:
            return []
        if t.binary is None and lister.pid is not None:
            # '-l uprobe:*' with -p: bpftrace 0.17 lists the executable as
            # seen from the process's root.
            files = [(path, f"/proc/{lister.pid}/root{shown}") for path, shown in files]
        if len(files) == 1 and not has_wildcard(t.binary or ""):
            try:
                self.symbols().load(files[0][0])
            except (OSError, ValueError) as exc:  # ValueError: ElfError
                raise EnvironmentProblem(f"cannot list {self.name}s of {files[0][1]}: {_reason(exc, files[0][0])}") \
                    from None
        out = []
        for path, shown in files:
            self._listed[shown] = path
            names = function_symbols(path, lister.warn, self.symbols(), t.func)
            out.extend(f"{self.name}:{shown}:{n}" for n in names)
        return out

    def describe(self, line: str, lister: ListEnv) -> list[str]:
        """``-lv``: the function's parameters from DWARF (``type name``), as
        bpftrace 0.17 prints them for uprobes (not for uretprobes)."""
        if self.is_return:
            return []
        shown, _, name = line.partition(":")[2].rpartition(":")
        path = self._listed.get(shown) or resolve_binary(shown, lister.pid)
        if path is None:
            return []
        params = self._dwarf.get(path)
        if params is None:
            from ..kernel.dwarf import FunctionParams
            params = self._dwarf[path] = FunctionParams(path)
        if params.source is None:
            self._warn_once(lister, path, f'no DWARF found for "{shown}", cannot show parameter info')
            return []
        try:
            sym = self.symbols().load(path).lookup(name)
        except (OSError, ValueError):  # ValueError: ElfError
            sym = None
        result = params.params(name, sym.vaddr if sym is not None else None)
        if params.error is not None:
            self._warn_once(lister, path, params.error)
        return result

    def _warn_once(self, lister: ListEnv, path: str, message: str) -> None:
        if path not in self._warned:
            self._warned.add(path)
            lister.warn(message)


class UretprobeProvider(UprobeProvider):
    name = "uretprobe"
    aliases = ("ur",)
    is_return = True


def function_symbols(path: str, warn: Callable[[str], None], symbols: ElfSymbols | None = None,
                     pattern: str = "*") -> list[str]:
    """The function names of ELF file ``path`` that ``pattern`` matches, as
    bpftrace lists them: .symtab, .dynsym and the separate debug file's
    .symtab, without GCC's .part.N fragments, sorted."""
    from ..kernel.elfsyms import ElfSymbols
    try:
        table = (symbols or ElfSymbols()).load(path)
    except (OSError, ValueError) as exc:  # ValueError: ElfError
        warn(f"cannot list function symbols of {path}: {_reason(exc, path)}")
        return []
    if pattern == "*":
        return [n for n in table.functions() if ".part." not in n]
    return [s.name for s in table.match(pattern)]


def _reason(exc: Exception, path: str) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc).removeprefix(f"{path}: ")


def _near(name: str, table: SymbolTable) -> list[str]:
    """'did you mean' for a function name: among names of a similar length
    (what suggest() could pick anyway), C++ ones by their demangled name
    without parameters when ``name`` looks like one."""
    from ..diagnostics import suggest
    lo, hi = len(name) * 0.6, len(name) / 0.6
    names = [n for n in table.functions() if lo <= len(n) <= hi]
    if "::" in name:
        from ..kernel.demangle import strip_parameters
        for n in table.functions():
            full = table.demangled(n)
            if full is not None:
                short = strip_parameters(full)
                if lo <= len(short) <= hi:
                    names.append(short)
    return suggest(name, names)
