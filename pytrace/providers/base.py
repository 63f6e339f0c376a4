"""The provider interface: what every probe type module implements.

A provider owns everything about its probe type:

* its attach-point syntax (the grammar hands it the raw text) and wildcard
  expansion (``resolve``), and the symbols it adds to a probe (``args``,
  ``argN``, ``retval``, ``func``) in the ``ResolvedAttach`` it returns;
* how its program is built and loaded (``program``: the context the code
  generator reads arguments through, the BPF program type, the BTF type it
  is attached to);
* attaching and detaching (``attach`` returns ``bpf.attach`` objects whose
  ``close()`` detaches);
* listing (``list_probes`` for ``-l``, ``describe`` for ``-lv``).

Adding a probe type means adding one module and listing it in ``registry``.
The runtime imports (``bpf.attach``) happen inside ``attach`` so that the
front end, which imports every provider, does not pay for them.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Callable

from ..diagnostics import Diagnostics, suggest
from ..frontend.ast import AttachPoint
from ..kernel.info import KernelInfo
from ..records import dataclass, field
from ..semantic.types import StructType, Type
from ..source import Span

if TYPE_CHECKING:
    from ..bpf.attach import Attachment

# Program types and attach types (include/uapi/linux/bpf.h), repeated here so
# that the front end need not import the bpf(2) layer.
PROG_KPROBE, PROG_TRACEPOINT, PROG_PERF_EVENT, PROG_RAW_TRACEPOINT, PROG_TRACING = 2, 5, 7, 17, 26
ATTACH_TRACE_RAW_TP, ATTACH_TRACE_FENTRY, ATTACH_TRACE_FEXIT, ATTACH_TRACE_ITER = 23, 24, 25, 28


@dataclass
class ResolveEnv:
    """What a provider may consult while resolving attach points."""

    kernel: KernelInfo
    diags: Diagnostics
    params: list[str] = field(default_factory=list)   # positional parameters $1..
    pid: int | None = None
    unsafe: bool = False
    # Attach points (by id) whose positional parameters could not be
    # substituted; they were reported and are not resolved further.
    failed: set[int] = field(default_factory=set)
    # config max_strlen / BPFTRACE_STRLEN: how much of a tracepoint's
    # __data_loc string field args.X reads.
    strlen: int = 64


@dataclass
class ResolvedAttach:
    """One concrete thing to attach to, after wildcard expansion."""

    provider: str                      # canonical provider name
    target: str                        # canonical full name, e.g. 'tracepoint:sched:sched_switch'
    span: Span | None = None
    args: StructType | None = None     # the type of 'args', when the provider has one
    nargs: int = 0                     # how many argN builtins are valid
    retval: Type | None = None         # the type of 'retval' in return probes
    has_func: bool = False             # whether 'func' names something
    detail: dict[str, Any] = field(default_factory=dict)  # provider-specific parameters


@dataclass(frozen=True)
class ProgramShape:
    """How the program of one attach point is built, loaded and run.

    ``kind`` groups programs for the runtime (``begin``/``end`` run once
    with BPF_PROG_TEST_RUN, ``iter`` is read, the rest are attached);
    ``context`` is how the code generator reads ``args``, ``argN`` and
    ``retval`` (codegen/llvm/context.py): ``raw`` (nothing), ``tracepoint``
    (a tracefs record), ``regs`` (struct pt_regs), ``perf``
    (bpf_perf_event_data), ``rawtp`` (u64 arguments), ``btf`` (u64
    arguments typed from BTF: tp_btf, fentry/fexit), ``iter`` (an
    iterator's context struct).  ``btf_type`` names the kernel BTF type
    whose id is the program's attach_btf_id (``(kind, name)``)."""

    kind: str
    context: str
    prog_type: int
    expected_attach_type: int = 0
    btf_type: tuple[str, str] | None = None
    user: bool = False        # bare addresses are user memory (uprobes, usdt)


@dataclass
class AttachEnv:
    """What attaching needs from the session: tracefs (mounted on first
    use), the process to trace (``-p`` or the ``-c`` child) and where the
    ``-c`` child's binary is."""

    tracefs_root: Callable[[], str]
    pid: int | None = None


class Provider(abc.ABC):
    """One probe type."""

    name: str = ""
    aliases: tuple[str, ...] = ()
    # True for providers whose probes fire once from user space (BEGIN/END)
    # or per sample/timer, where 'args' means nothing.
    runs_once: bool = False

    # Most parts an attach point of this type has, the provider name included.
    max_parts: int = 3
    # Whether 'pytrace -l' (everything, or a provider glob) includes this
    # type; those that need a binary or an address only list when named.
    listed_by_default: bool = True
    # Whether list_probes() returns only lines matching the pattern itself:
    # providers that resolve names (a library's short name becomes its path,
    # C++ names match demangled) cannot be re-filtered by the raw pattern.
    filters_listing: bool = False

    def resolve(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        """Parse ``parts`` (the attach point split on ':'; parts[0] is the
        provider name as written) and expand it.  Errors go to env.diags and
        an empty list is returned."""
        if id(ap) in env.failed:
            return []
        if len(parts) > self.max_parts:
            return self.error_form(ap, env, f"too many parts for the {self.name} probe type",
                                   part_span(ap, self.max_parts, to_end=True, with_colon=True))
        return self.resolve_parts(ap, parts, env)

    @abc.abstractmethod
    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        """``resolve`` for an attach point with at most ``max_parts`` parts."""

    def program(self, a: ResolvedAttach) -> ProgramShape:
        """How ``a``'s program is built and loaded."""
        raise NotImplementedError(f"{self.name} probes are not supported by the code generator yet")

    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list["Attachment"]:
        """Attach program ``prog_fd`` to ``a``; every failure is an
        EnvironmentProblem of one sentence (closing what it attached)."""
        from ..errors import EnvironmentProblem
        raise EnvironmentProblem(f"cannot attach {a.target}: {self.name} probes are not supported yet", None)

    def load_refused(self, a: ResolvedAttach, reason: str) -> str | None:
        """The sentence to say when the kernel refuses to load ``a``'s
        program before verifying it (``reason``: what it said), or None for
        the generic message."""
        return None

    def list_probes(self, rest_glob: str, lister: "ListEnv") -> list[str]:
        """``pytrace -l``: every probe of this type matching ``rest_glob``
        (what follows ``provider:``; providers may list more, the caller
        filters), as full lines in bpftrace's format."""
        lister.warn(f"{self.name} probes cannot be listed")
        return []

    def describe(self, line: str, lister: "ListEnv") -> list[str]:
        """``pytrace -lv``: the arguments of one listed probe, one per line
        (``type name``), in bpftrace's format."""
        return []

    # Helpers shared by the provider modules -------------------------------
    def usage(self) -> str:
        return f"{self.name}:..."

    def error_form(self, ap: AttachPoint, env: ResolveEnv, problem: str,
                   span: Span | None = None) -> list[ResolvedAttach]:
        """Report a malformed attach point; ``span`` narrows the caret to the
        part at fault (the whole attach point by default)."""
        env.diags.error(problem, span or ap.span, hints=[f"the form is {self.usage()}"])
        return []


@dataclass
class ListEnv:
    """What listing needs: ``-p PID`` and where to say why something cannot
    be listed."""

    pid: int | None = None
    warn: Callable[[str], None] = field(default=lambda msg: None)
    explicit: bool = False   # the provider was named (not a glob, not everything)


def split_attach_point(raw: str) -> list[str]:
    """Split on ':' outside double quotes; quotes are removed
    (``uprobe:"/a b":f`` → ['uprobe', '/a b', 'f'])."""
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            quoted = not quoted
        elif ch == "\\" and quoted and i + 1 < len(raw):
            cur.append(raw[i + 1])
            i += 1
        elif ch == ":" and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _part_offsets(raw: str) -> list[tuple[int, int]]:
    """(start, end) of each ':'-separated part of ``raw``, as
    ``split_attach_point`` splits it (quotes included in the range)."""
    out: list[tuple[int, int]] = []
    start = 0
    quoted = False
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            quoted = not quoted
        elif ch == "\\" and quoted:
            i += 1
        elif ch == ":" and not quoted:
            out.append((start, i))
            start = i + 1
        i += 1
    out.append((start, len(raw)))
    return out


def part_span(ap: AttachPoint, index: int, *, to_end: bool = False, with_colon: bool = False,
              skip: int = 0) -> Span | None:
    """The span of part ``index`` of an attach point (``to_end``: through the
    last part; ``with_colon``: from the ':' before it; ``skip``: characters
    left out at the start of the part, e.g. up to a '+' offset)."""
    if ap.span is None:
        return None
    offsets = _part_offsets(ap.raw)
    if index >= len(offsets) or ap.span.end - ap.span.start != len(ap.raw):
        return ap.span
    start, end = offsets[index]
    if to_end:
        end = offsets[-1][1]
    start = min(start + skip, end)
    if with_colon and index > 0:
        start -= 1
    if end <= start:
        # An empty part: point at the ':' before it.
        start, end = max(0, start - 1), max(start, 1)
    return Span(ap.span.file, ap.span.start + start, ap.span.start + end)


def parse_int(text: str) -> int | None:
    """An integer in an attach point: decimal, hex, with '_' separators and
    a k/K/m/M multiplier suffix as bpftrace's attach point parser allows."""
    t = text.strip().replace("_", "")
    mult = 1
    if t[-1:] in ("k", "K"):
        mult, t = 1000, t[:-1]
    elif t[-1:] in ("M",):
        mult, t = 1000_000, t[:-1]
    try:
        return int(t, 0) * mult
    except ValueError:
        return None


def substitute_params(part: str, ap: AttachPoint, env: ResolveEnv) -> str:
    """Replace positional parameters ($1, $2...) inside an attach point."""
    if "$" not in part:
        return part
    out = []
    i = 0
    while i < len(part):
        if part[i] == "$" and i + 1 < len(part) and part[i + 1].isdigit():
            j = i + 1
            while j < len(part) and part[j].isdigit():
                j += 1
            n = int(part[i + 1:j])
            if n == 0 or n > len(env.params):
                at = ap.span
                where = ap.raw.find(part[i:j])
                if ap.span is not None and where >= 0 and ap.span.end - ap.span.start == len(ap.raw):
                    at = Span(ap.span.file, ap.span.start + where, ap.span.start + where + j - i)
                if n == 0:
                    env.diags.error("positional parameters start at $1", at)
                else:
                    env.diags.error(f"positional parameter ${n} is not set", at,
                                    hints=["pass it after the script: pytrace script.pt ARG..."])
                env.failed.add(id(ap))
                out.append("")
            else:
                out.append(env.params[n - 1])
            i = j
        else:
            out.append(part[i])
            i += 1
    return "".join(out)


def not_found(env: ResolveEnv, ap: AttachPoint, what: str, name: str, candidates: list[str],
              extra_hints: list[str] | None = None, span: Span | None = None) -> list[ResolvedAttach]:
    """Report a name that does not exist, with the closest candidate as a
    hint, or the whole (short) list of candidates when none is close."""
    hints = suggest(name, candidates)
    if not hints and 0 < len(candidates) <= 20:
        hints = [f"known {what}s: " + ", ".join(candidates)]
    env.diags.error(f"{what} not found: {name}", span or ap.span, hints=hints + (extra_hints or []))
    return []
