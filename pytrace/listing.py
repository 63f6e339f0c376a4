"""``pytrace -l``: the probes this machine offers, in bpftrace's listing format.

One probe per line, ``provider:rest``, sorted the way bpftrace sorts them
(as strings), e.g.::

    BEGIN
    interval:hz:
    rawtracepoint:sched_switch
    software:cpu-clock:
    tracepoint:sched:sched_switch
    uprobe:/bin/bash:readline

Sources: tracefs ``events/`` for tracepoints (directory names only, no
format files and no BTF), the string table of ``/sys/kernel/btf/vmlinux``
for raw tracepoints (every ``btf_trace_<event>`` typedef name, found with
one regular expression instead of parsing 100 000+ types), the provider
tables for software/hardware events and timer units, and the ELF symbol
tables of a binary for ``uprobe:PATH:*``.  Probe kinds this kernel cannot
attach (kprobes, fentry) are not listed; asking for them explicitly says why.

A pattern is a glob (``*``, ``?``, ``[...]``) over the whole line; a pattern
without ``:`` matches the part after any provider (``sched_sw*`` finds
``tracepoint:sched:sched_switch`` and ``rawtracepoint:sched_switch``), as in
bpftrace.  Provider aliases work (``t:sched:*``).
"""

from __future__ import annotations

import fnmatch
import glob as globmod
import os
import re
from typing import Callable, Iterable, TextIO

from .errors import EnvironmentProblem

# Providers whose entries are listed when no provider is named, in the order
# bpftrace's (string) sort gives them.
KERNEL_PROVIDERS = ("BEGIN", "END", "hardware", "interval", "profile", "rawtracepoint", "software", "tracepoint")
USER_PROVIDERS = ("uprobe", "uretprobe")
_RAWTP = re.compile(rb"\x00btf_trace_(\w+)(?=\x00)")
_FUNC_TYPES = (2, 10)  # STT_FUNC, STT_GNU_IFUNC


class Lister:
    def __init__(self, *, pid: int | None = None, warn: Callable[[str], None] | None = None) -> None:
        self.pid = pid
        self.warn = warn or (lambda msg: None)
        self._registry = None

    # ------------------------------------------------------------ providers
    def canonical(self, provider: str) -> str | None:
        """The provider's full name (aliases resolved), or None if unknown."""
        if provider in KERNEL_PROVIDERS or provider in USER_PROVIDERS:
            return provider
        if self._registry is None:
            from .providers.registry import ProviderRegistry
            self._registry = ProviderRegistry()
        p = self._registry.lookup(provider)  # type: ignore[attr-defined]
        return p.name if p is not None else None

    # ------------------------------------------------------------ sources
    def entries(self, provider: str, rest_glob: str = "*") -> list[str]:
        """Every listable probe of ``provider``, as full lines."""
        if provider in ("BEGIN", "END"):
            return [provider]
        if provider in ("interval", "profile"):
            from .providers.timers import UNITS
            return [f"{provider}:{u}:" for u in UNITS]
        if provider in ("software", "hardware"):
            from .providers.software import HARDWARE_EVENTS, SOFTWARE_EVENTS
            if provider == "hardware" and not os.path.exists("/sys/bus/event_source/devices/cpu"):
                return []
            table = SOFTWARE_EVENTS if provider == "software" else HARDWARE_EVENTS
            return [f"{provider}:{name}:" for name in table]
        if provider == "tracepoint":
            return [f"tracepoint:{c}:{e}" for c, e in self._tracepoints()]
        if provider == "rawtracepoint":
            return [f"rawtracepoint:{name}" for name in raw_tracepoints()]
        if provider in USER_PROVIDERS:
            return self._uprobes(provider, rest_glob)
        if provider in ("kprobe", "kretprobe"):
            if not os.path.exists("/sys/bus/event_source/devices/kprobe"):
                self.warn(f"this kernel has no kprobes (CONFIG_KPROBES is off), so there are no {provider}s to "
                          "list: try 'tracepoint:*' or 'rawtracepoint:*'")
            else:
                self.warn(f"listing {provider}s needs available_filter_functions, which pytrace does not read yet")
            return []
        if provider in ("fentry", "fexit"):
            self.warn(f"{provider} probes are not listed: this kernel refuses fentry/fexit programs or pytrace "
                      "cannot attach them yet; try 'rawtracepoint:*'")
            return []
        self.warn(f"{provider} probes cannot be listed")
        return []

    def _tracepoints(self) -> list[tuple[str, str]]:
        """available_events (what perf can attach to: no ftrace-internal
        events), as bpftrace lists them; the events/ directories if that
        file cannot be read."""
        from .kernel import tracefs
        root = tracefs.tracefs_root()
        try:
            with open(os.path.join(root, "available_events"), encoding="utf-8", errors="replace") as fh:
                pairs = [tuple(line.strip().split(":", 1)) for line in fh if ":" in line]
            return [(c, e) for c, e in pairs]  # type: ignore[misc]
        except OSError:
            return [(c, e) for c, e in tracefs.list_tracepoints(root) if c != "ftrace"]

    def _uprobes(self, provider: str, rest_glob: str) -> list[str]:
        target, sep, _func = rest_glob.partition(":")
        if not sep or not target:
            self.warn(f"name the binary to list {provider}s of, e.g. pytrace -l '{provider}:/bin/bash:*'")
            return []
        paths: list[str]
        if has_wildcard(target):
            paths = sorted(p for p in globmod.glob(target) if os.path.isfile(p))
        else:
            from .providers.uprobe import resolve_binary
            found = resolve_binary(target, self.pid)
            if found is None:
                raise EnvironmentProblem(f"cannot list {provider}s: no such binary or library: {target}")
            paths = [found]
        out: list[str] = []
        for path in paths:
            for name in function_symbols(path, self.warn):
                out.append(f"{provider}:{path}:{name}")
        return out


def has_wildcard(text: str) -> bool:
    return any(c in text for c in "*?[")


def raw_tracepoints(btf_dir: str = "/sys/kernel/btf") -> list[str]:
    """Event names of every ``btf_trace_<event>`` typedef in the kernel's BTF
    (vmlinux and modules), sorted.  Empty without BTF."""
    from .kernel.features import btf_string_table
    names: set[str] = set()
    try:
        files = sorted(os.listdir(btf_dir))
    except OSError:
        return []
    for f in files:
        try:
            table = btf_string_table(os.path.join(btf_dir, f))
        except (OSError, ValueError, Exception):
            continue
        names.update(m.group(1).decode("ascii", "replace") for m in _RAWTP.finditer(table))
    return sorted(names)


def function_symbols(path: str, warn: Callable[[str], None]) -> list[str]:
    """Defined function names of an ELF file (.symtab and .dynsym), sorted and unique."""
    from .bpf.elf import ElfError, ElfObject
    try:
        obj = ElfObject.from_path(path)
    except (OSError, ElfError) as exc:
        warn(f"cannot list function symbols of {path}: {getattr(exc, 'strerror', None) or exc}")
        return []
    names = {s.name for s in (*obj.symbols, *obj.dynsyms)
             if s.type in _FUNC_TYPES and s.name and s.shndx != 0}
    return sorted(names)


def _match(lines: Iterable[str], pattern: str) -> list[str]:
    rx = re.compile(fnmatch.translate(pattern), re.DOTALL)
    return [ln for ln in lines if rx.match(ln)]


def list_probes(pattern: str | None, out: TextIO, *, verbose: bool = False, pid: int | None = None,
                warn: Callable[[str], None] | None = None) -> int:
    """Print the probes matching ``pattern`` (all when None); returns how many."""
    lister = Lister(pid=pid, warn=warn)
    lines: list[str] = []
    pattern = (pattern or "").strip()
    if not pattern or pattern == "*":
        for prov in KERNEL_PROVIDERS:
            lines.extend(lister.entries(prov))
        found = sorted(set(lines))
    elif ":" not in pattern:
        # bpftrace: a bare word is searched after any kernel provider.
        for prov in KERNEL_PROVIDERS:
            lines.extend(lister.entries(prov))
        found = sorted(set(ln for ln in lines if fnmatch.fnmatchcase(ln, pattern)
                           or fnmatch.fnmatchcase(ln, "*:" + pattern)))
    else:
        prov_glob, _, rest = pattern.partition(":")
        if has_wildcard(prov_glob):
            # As bpftrace: a wildcard provider expands to kernel probe types
            # only (uprobes need their binary named explicitly).
            provs = [p for p in KERNEL_PROVIDERS if fnmatch.fnmatchcase(p, prov_glob)]
        else:
            canon = lister.canonical(prov_glob)
            if canon is None:
                raise EnvironmentProblem(f"cannot list probes: unknown probe type '{prov_glob}'")
            provs = [canon]
        for prov in provs:
            lines.extend(_match(lister.entries(prov, rest), f"{prov}:{rest}"))
        found = sorted(set(lines))
    for line in found:
        out.write(line + "\n")
        if verbose:
            for arg in describe(line):
                out.write(f"    {arg}\n")
    return len(found)


def describe(line: str) -> list[str]:
    """``-lv``: the arguments of a tracepoint (its format's fields) or of a raw
    tracepoint (its BTF prototype)."""
    provider, _, rest = line.partition(":")
    if provider == "tracepoint":
        from .kernel import tracefs
        cat, _, ev = rest.partition(":")
        try:
            with open(os.path.join(tracefs.tracefs_root(), "events", cat, ev, "format"), errors="replace") as fh:
                text = fh.read()
        except OSError:
            return []
        # The common_* header comes first, then an empty line, then the event's fields.
        body = text.split("\n\n", 1)[1] if "\n\n" in text else ""
        return [m.group(1).strip() for m in re.finditer(r"^\s*field:([^;]*);", body, re.MULTILINE)]
    if provider == "rawtracepoint":
        try:
            from .kernel.btf import Btf
            args = Btf.load().raw_tracepoint_args(rest)
        except Exception:
            return []
        return [f"{t} {n}" for n, t in args or []]
    return []


def list_program(attach_points: Iterable[str], out: TextIO, *, verbose: bool = False, pid: int | None = None,
                 warn: Callable[[str], None] | None = None) -> int:
    """``pytrace -l`` with a program: what each of its attach points matches."""
    total = 0
    for ap in attach_points:
        total += list_probes(ap, out, verbose=verbose, pid=pid, warn=warn)
    return total
