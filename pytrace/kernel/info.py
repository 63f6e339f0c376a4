"""KernelInfo: the one interface through which compiler passes ask about the kernel.

Probe resolution, type checking and codegen never open /sys or /proc
themselves; they are handed a ``KernelInfo``.  ``LiveKernel`` answers from the
running system (tracefs now, BTF through ``btf()``); ``FakeKernel`` answers
from a directory laid out like tracefs or from a dict, so tests run without
root and give the same answers on every machine.  Caches live on the
instance, never in the module: two ``LiveKernel`` objects are independent.
"""

from __future__ import annotations

import abc
import bisect
import fnmatch
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import tracefs
from .tracefs import TracepointFormat

if TYPE_CHECKING:  # btf.py is written separately; only its name is needed here
    from .btf import Btf

_WILDCARD_CHARS = frozenset("*?[")


def has_wildcard(pattern: str) -> bool:
    """Whether ``pattern`` uses any of the glob characters bpftrace accepts."""
    return any(c in _WILDCARD_CHARS for c in pattern)


class KernelInfo(abc.ABC):
    """What the kernel offers to probes, as far as the compiler needs to know."""

    def __init__(self) -> None:
        # category -> its sorted events; built on the first match so that
        # matching a single category does not scan all ~2300 names.
        self._by_category: dict[str, list[str]] | None = None

    @abc.abstractmethod
    def tracepoints(self) -> list[tuple[str, str]]:
        """Every (category, event), sorted."""

    @abc.abstractmethod
    def tracepoint_format(self, category: str, event: str) -> TracepointFormat | None:
        """The parsed format of ``category:event``; None if it does not exist."""

    def btf(self) -> Btf | None:
        """The kernel's BTF, or None when it is not available."""
        return None

    def kernel_functions(self) -> list[tuple[str, str | None]] | None:
        """(function, module or None) that kprobes can attach to, sorted and
        without duplicates; None when the kernel has no kprobes (then kprobe
        wildcards stay unexpanded and attaching says what to use instead)."""
        return None

    def has_tracepoint(self, category: str, event: str) -> bool:
        events = self._index().get(category)
        if not events:
            return False
        i = bisect.bisect_left(events, event)
        return i < len(events) and events[i] == event

    def categories(self) -> list[str]:
        return sorted(self._index())

    def match_tracepoints(self, cat_glob: str, ev_glob: str) -> list[tuple[str, str]]:
        """The sorted (category, event) pairs matching two globs.

        Globs follow fnmatch (``*``, ``?``, ``[...]``) case-sensitively, as
        bpftrace's wildcards do.  A literal category only looks at its own
        events, and a literal prefix such as ``sys_enter_open*`` narrows the
        search by bisection before any pattern is tried.
        """
        index = self._index()
        if has_wildcard(cat_glob):
            cat_re = _compile(cat_glob)
            cats = [c for c in sorted(index) if cat_re.match(c)]
        else:
            cats = [cat_glob] if cat_glob in index else []
        out: list[tuple[str, str]] = []
        for cat in cats:
            out.extend((cat, ev) for ev in _match_sorted(index[cat], ev_glob))
        return out

    def _index(self) -> dict[str, list[str]]:
        if self._by_category is None:
            by_cat: dict[str, list[str]] = {}
            for cat, ev in self.tracepoints():
                by_cat.setdefault(cat, []).append(ev)
            for evs in by_cat.values():
                evs.sort()
            self._by_category = by_cat
        return self._by_category


def _compile(glob: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(glob))


def _match_sorted(names: list[str], glob: str) -> list[str]:
    """Entries of the sorted list ``names`` matching ``glob``."""
    if not has_wildcard(glob):
        i = bisect.bisect_left(names, glob)
        return [glob] if i < len(names) and names[i] == glob else []
    prefix = re.split(r"[*?\[]", glob, maxsplit=1)[0]
    lo = bisect.bisect_left(names, prefix)
    # Every string starting with ``prefix`` sorts before prefix + U+10FFFF.
    hi = bisect.bisect_left(names, prefix + "\U0010ffff", lo) if prefix else len(names)
    pattern = _compile(glob)
    return [n for n in names[lo:hi] if pattern.match(n)]


class LiveKernel(KernelInfo):
    """The running kernel, read through tracefs (mounted on first use if needed)."""

    def __init__(self, root: str | None = None, *, mount: bool = True) -> None:
        super().__init__()
        self._root = root
        self._mount = mount
        self._tracepoints: list[tuple[str, str]] | None = None
        self._formats: dict[tuple[str, str], TracepointFormat | None] = {}
        self._btf: Btf | None = None
        self._btf_loaded = False
        self._functions: list[tuple[str, str | None]] | None = None

    @property
    def root(self) -> str:
        """The tracefs mount point (raises ``TracefsUnavailable``)."""
        if self._root is None:
            self._root = tracefs.tracefs_root(mount=self._mount)
        return self._root

    def tracepoints(self) -> list[tuple[str, str]]:
        if self._tracepoints is None:
            self._tracepoints = tracefs.list_tracepoints(self.root)
        return list(self._tracepoints)

    def tracepoint_format(self, category: str, event: str) -> TracepointFormat | None:
        key = (category, event)
        if key not in self._formats:
            self._formats[key] = tracefs.read_format(self.root, category, event)
        return self._formats[key]

    def has_tracepoint(self, category: str, event: str) -> bool:
        # One stat instead of indexing all ~2,000 events (a few ms at
        # start-up) when nothing has needed the whole list yet.
        if self._by_category is None and category and event and "/" not in category + event \
                and not category.startswith(".") and not event.startswith("."):
            return os.path.isdir(os.path.join(self.root, "events", category, event))
        return super().has_tracepoint(category, event)

    def kernel_functions(self) -> list[tuple[str, str | None]] | None:
        if self._functions is None:
            self._functions = read_kernel_functions(self.root)
        return self._functions

    def btf(self) -> Btf | None:
        if not self._btf_loaded:
            self._btf_loaded = True
            try:
                from .btf import Btf

                self._btf = Btf.load()
            except (ImportError, OSError):
                self._btf = None
        return self._btf


KPROBE_PMU_DIR = "/sys/bus/event_source/devices/kprobe"


def read_kernel_functions(root: str, *, pmu: str = KPROBE_PMU_DIR) -> list[tuple[str, str | None]] | None:
    """Parse ``<tracefs>/available_filter_functions`` ("name" or "name
    [module]" lines; static functions can repeat) minus the kprobe blacklist
    (debugfs kprobes/blacklist, when readable): what bpftrace expands kprobe
    wildcards against.  None without the kprobe PMU (CONFIG_KPROBES off)."""
    if not os.path.exists(pmu):
        return None
    try:
        with open(os.path.join(root, "available_filter_functions"), errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    blacklisted: set[str] = set()
    try:
        with open("/sys/kernel/debug/kprobes/blacklist", errors="replace") as fh:
            # Lines are "0xSTART-0xEND<tab>name"; a kprobe on one fails with EINVAL.
            blacklisted = {ln.split()[-1] for ln in fh if ln.strip()}
    except OSError:
        pass
    return parse_kernel_functions(lines, blacklisted)


def parse_kernel_functions(lines: list[str], blacklisted: frozenset[str] | set[str] = frozenset()
                           ) -> list[tuple[str, str | None]]:
    """(function, module) pairs from available_filter_functions lines."""
    out: set[tuple[str, str | None]] = set()
    for line in lines:
        parts = line.split()
        # Partial-inlining clones (vfs_statfs.part.0.isra.0) are left out,
        # as bpftrace 0.17 leaves them out (kprobe:vfs_* attaches 72
        # functions on Debian's 6.1 in both); other clones (.isra.0,
        # .constprop.0, which dcsnoop's wildcard asks for) stay.  Naming
        # one in full still attaches.
        if not parts or parts[0] in blacklisted or ".part." in parts[0]:
            continue
        mod = parts[1].strip("[]") if len(parts) > 1 and parts[1].startswith("[") else None
        out.add((parts[0], mod))
    return sorted(out, key=lambda fm: (fm[0], fm[1] or ""))


class FakeKernel(KernelInfo):
    """A kernel described by test data.

    ``source`` is either a directory laid out like tracefs
    (``<dir>/events/<category>/<event>/format``) or a mapping
    ``{(category, event): format_text}``.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | Mapping[tuple[str, str], str],
        btf: Btf | None = None,
        functions: list[str] | None = None,
    ) -> None:
        super().__init__()
        self._btf = btf
        # available_filter_functions lines; None: a kernel without kprobes.
        self._functions = None if functions is None else parse_kernel_functions(functions)
        self._formats: dict[tuple[str, str], TracepointFormat | None] = {}
        self._texts: dict[tuple[str, str], str] | None = None
        self._root: str | None = None
        if isinstance(source, Mapping):
            self._texts = dict(source)
            self._tracepoints = sorted(self._texts)
        else:
            self._root = os.fspath(source)
            if not os.path.isdir(os.path.join(self._root, "events")):
                raise FileNotFoundError(f"no events/ directory under {self._root}")
            self._tracepoints = tracefs.list_tracepoints(self._root)

    def tracepoints(self) -> list[tuple[str, str]]:
        return list(self._tracepoints)

    def tracepoint_format(self, category: str, event: str) -> TracepointFormat | None:
        key = (category, event)
        if key not in self._formats:
            if self._texts is not None:
                text = self._texts.get(key)
                self._formats[key] = None if text is None else tracefs.parse_format(text, category, event)
            else:
                assert self._root is not None
                self._formats[key] = tracefs.read_format(self._root, category, event)
        return self._formats[key]

    def btf(self) -> Btf | None:
        return self._btf

    def kernel_functions(self) -> list[tuple[str, str | None]] | None:
        return self._functions
