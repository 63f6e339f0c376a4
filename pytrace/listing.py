"""``pytrace -l``: the probes this machine offers, in bpftrace's listing format.

One probe per line, ``provider:rest``, sorted the way bpftrace sorts them
(as strings), e.g.::

    BEGIN
    interval:hz:
    rawtracepoint:sched_switch
    software:cpu-clock:
    tracepoint:sched:sched_switch
    uprobe:/bin/bash:readline

Each provider lists its own probes (``Provider.list_probes``) and
describes one for ``-lv`` (``Provider.describe``): tracefs for
tracepoints, the BTF string table for raw tracepoints, the provider tables
for software/hardware events and timer units, the ELF symbol tables of a
binary for ``uprobe:PATH:*``.  Probe kinds this kernel cannot attach
(kprobes, fentry) list nothing when everything is listed; asking for them
explicitly says why.  Providers that need a target (uprobes, USDT,
watchpoints) are only listed when named.

A pattern is a glob (``*``, ``?``, ``[...]``) over the whole line; a pattern
without ``:`` matches the part after any provider (``sched_sw*`` finds
``tracepoint:sched:sched_switch`` and ``rawtracepoint:sched_switch``), as in
bpftrace.  Provider aliases work (``t:sched:*``).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Callable, Iterable, TextIO

from .errors import EnvironmentProblem
from .providers.base import ListEnv, Provider
from .providers.registry import ProviderRegistry


def has_wildcard(text: str) -> bool:
    return any(c in text for c in "*?[")


def _match(lines: Iterable[str], pattern: str) -> list[str]:
    rx = re.compile(fnmatch.translate(pattern), re.DOTALL)
    return [ln for ln in lines if rx.match(ln)]


def _quiet(msg: str) -> None:
    """Listing everything: a provider with nothing to list says nothing."""


def list_probes(pattern: str | None, out: TextIO, *, verbose: bool = False, pid: int | None = None,
                warn: Callable[[str], None] | None = None) -> int:
    """Print the probes matching ``pattern`` (all when None); returns how many."""
    registry = ProviderRegistry()
    named = ListEnv(pid=pid, warn=warn or _quiet, explicit=True)
    quiet = ListEnv(pid=pid, warn=_quiet)
    default = [p for p in registry.providers if p.listed_by_default]
    lines: list[str] = []
    pattern = (pattern or "").strip()
    if not pattern and pid is not None:
        # 'pytrace -l -p PID': the process's probes, as bpftrace lists them.
        return sum(list_probes(p, out, verbose=verbose, pid=pid, warn=warn) for p in ("uprobe:*", "usdt:*"))
    if not pattern or pattern == "*":
        for prov in default:
            lines.extend(prov.list_probes("*", quiet))
        found = sorted(set(lines))
    elif ":" not in pattern:
        # bpftrace: a bare word is searched after any kernel provider.
        for prov in default:
            lines.extend(prov.list_probes("*", quiet))
        found = sorted(set(ln for ln in lines if fnmatch.fnmatchcase(ln, pattern)
                           or fnmatch.fnmatchcase(ln, "*:" + pattern)))
    else:
        prov_glob, _, rest = pattern.partition(":")
        provs: list[Provider]
        if has_wildcard(prov_glob):
            # As bpftrace: a wildcard provider expands to kernel probe types
            # only (uprobes need their binary named explicitly).
            provs = [p for p in default if fnmatch.fnmatchcase(p.name, prov_glob)]
            env = quiet
        else:
            one = registry.lookup(prov_glob)
            if one is None:
                raise EnvironmentProblem(f"cannot list probes: unknown probe type '{prov_glob}'")
            provs, env = [one], named
        for prov in provs:
            listed = prov.list_probes(rest, env)
            # Providers that resolve names themselves (uprobes: a library's short
            # name becomes its path, C++ names match demangled) list only matches.
            lines.extend(listed if prov.filters_listing else _match(listed, f"{prov.name}:{rest}"))
        found = sorted(set(lines))
    for line in found:
        out.write(line + "\n")
        if verbose:
            prov = registry.lookup(line.partition(":")[0])
            for arg in prov.describe(line, named) if prov is not None else []:
                out.write(f"    {arg}\n")
    return len(found)


def list_program(attach_points: Iterable[str], out: TextIO, *, verbose: bool = False, pid: int | None = None,
                 warn: Callable[[str], None] | None = None) -> int:
    """``pytrace -l`` with a program: what each of its attach points matches."""
    total = 0
    for ap in attach_points:
        total += list_probes(ap, out, verbose=verbose, pid=pid, warn=warn)
    return total
