"""usdt: user-space statically defined tracepoints (``.note.stapsdt``).

Syntax, as bpftrace's: ``usdt:/path:provider:probe``, ``usdt:/path:probe``
(any provider), globs in the provider and the probe (and in an absolute
path); the path may be a library's short name or an executable on PATH
(``kernel.elfsyms.resolve_library``).  With ``-p PID`` the path may be left
out or be ``*`` (``usdt:probe``, ``usdt:*:probe``, ``usdt::provider:probe``):
the process's executable and every file it maps are searched, as bpftrace
does, and files are named through ``/proc/PID/root``.  ``usdt:provider:probe``
with ``-p`` also works when ``provider`` names no file (bpftrace 0.17 refuses
that form).

Every probe SITE is one ``ResolvedAttach``, so one BPF program: a probe
expanded in N places (inlined code) has N notes, whose arguments may live
in different registers.  The sites of one probe share the target name
``usdt:PATH:PROVIDER:NAME``, which ``probe`` prints once per name (the
layout numbers probe names, not sites).  Arguments reach the code generator
as ``detail["arg_locations"]`` (``kernel.usdt.UsdtArg``) with the site's
link-time address ``detail["link_pc"]`` (codegen/llvm/context.py).

Attaching is a uprobe at the site's file offset with the semaphore's file
offset as ``ref_ctr_offset``: since Linux 4.20 the kernel itself increments
the semaphore in every process that maps the file (only in the traced one
with ``-p``/``-c``), including those that start later.
"""

from __future__ import annotations

import errno
import glob
import os
from typing import TYPE_CHECKING

from ..frontend.ast import AttachPoint
from ..source import Span
from .base import (PROG_KPROBE, AttachEnv, ListEnv, ProgramShape, Provider, ResolveEnv, ResolvedAttach,
                   not_found, part_span, split_attach_point)

if TYPE_CHECKING:
    from ..bpf.attach import Attachment
    from ..kernel.usdt import UsdtProbe

EM_X86_64 = 62
_EXAMPLE = "usdt:/usr/bin/python3:python:function__entry"


def _has_wildcard(text: str) -> bool:
    return any(c in text for c in "*?[")


def _reason(exc: Exception, path: str) -> str:
    """An OSError's or ElfError's message without the path it repeats."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc).removeprefix(f"{path}: ")


def _process_problem(pid: int, exc: OSError) -> str:
    """Why the files of process ``pid`` cannot be listed, in one sentence."""
    if not os.path.exists(f"/proc/{pid}"):
        return f"process {pid} does not exist (any more)"
    if exc.errno == errno.ENOENT:
        # /proc/PID/exe of a kernel thread is an empty link.
        return f"process {pid} runs no executable (a kernel thread)"
    return f"cannot read the files of process {pid}: {_reason(exc, '')}"


class UsdtProvider(Provider):
    listed_by_default = False
    # list_probes matches provider and name itself: a listed line names the
    # resolved file (a library's path, /proc/PID/root/...) and the provider
    # even when the pattern leaves them out, so it cannot match the pattern.
    filters_listing = True
    name = "usdt"
    aliases = ("U",)
    max_parts = 4

    def usage(self) -> str:
        return "usdt:/path/to/binary:provider:probe or usdt:/path/to/binary:probe"

    def program(self, a: ResolvedAttach) -> ProgramShape:
        return ProgramShape("uprobe", "regs", PROG_KPROBE, user=True)

    # ------------------------------------------------------------------ resolving
    def resolve_parts(self, ap: AttachPoint, parts: list[str], env: ResolveEnv) -> list[ResolvedAttach]:
        n = len(parts)
        if n == 2 and env.pid is not None and parts[1]:
            return self._in_process(ap, env, None, parts[1], part_span(ap, 1))
        if n not in (3, 4):
            return self.error_form(ap, env, "a binary and a probe name are needed")
        where, provider, name = parts[1], parts[2] if n == 4 else None, parts[-1]
        name_span = part_span(ap, n - 1)
        if not name:
            return self.error_form(ap, env, "a probe name is needed", name_span)
        if where in ("", "*"):
            if env.pid is None:
                env.diags.error("a binary is needed: without -p there is no process to search", part_span(ap, 1),
                                hints=[f"give the binary's path, e.g. {_EXAMPLE}, or trace a process with -p PID"])
                return []
            return self._in_process(ap, env, provider, name, name_span)
        if _has_wildcard(where) and where.startswith("/"):
            files = sorted(p for p in glob.glob(where) if os.path.isfile(p))
            if not files:
                env.diags.error(f"no file matches {where}", part_span(ap, 1))
                return []
            return self._in_files(ap, env, files, provider, name, name_span, part_span(ap, 1))
        from ..kernel.elfsyms import resolve_library
        path = resolve_library(where, env.pid)
        if path is None:
            if env.pid is not None and n == 3:
                # usdt:provider:probe with -p: 'provider' names no file, so
                # it may be the provider of one of the process's probes.
                from ..kernel.usdt import match
                try:
                    sites = match(self._process_probes(env.pid), where, name)
                except OSError:
                    sites = []  # reported as the file not found
                if sites:
                    return self._attaches(ap, env, sites)
            env.diags.error(f"binary or library not found: {where}", part_span(ap, 1),
                            hints=[f"give the full path, e.g. {_EXAMPLE}"])
            return []
        return self._in_file(ap, env, path, provider, name, name_span, part_span(ap, 1))

    def _in_file(self, ap: AttachPoint, env: ResolveEnv, path: str, provider: str | None, name: str,
                 name_span: Span | None, path_span: Span | None) -> list[ResolvedAttach]:
        """The sites of one named file; every way it can fail is reported."""
        from ..kernel.elfsyms import ElfHeaders
        from ..kernel.usdt import match, usdt_probes
        try:
            machine = ElfHeaders.open(path).machine
            probes = usdt_probes(path)
        except (OSError, ValueError) as exc:
            env.diags.error(f"cannot read the USDT probes of {path}: {_reason(exc, path)}", path_span,
                            hints=["usdt probes live in ELF executables and libraries"])
            return []
        if machine != EM_X86_64:
            env.diags.error(f"{path} is not an x86_64 file (ELF machine {machine}): its probes cannot fire here",
                            path_span)
            return []
        if not probes:
            env.diags.error(f"{path} has no USDT probes (no .note.stapsdt notes)", path_span,
                            hints=["programs get them from <sys/sdt.h> (DTRACE_PROBE, STAP_PROBE); "
                                   "a stripped file keeps them"])
            return []
        sites = match(probes, provider, name)
        if not sites:
            return self._not_found(ap, env, probes, provider, name, name_span,
                                   [f"list them with: pytrace -l 'usdt:{path}:*'"])
        return self._attaches(ap, env, sites)

    def _in_files(self, ap: AttachPoint, env: ResolveEnv, files: list[str], provider: str | None, name: str,
                  name_span: Span | None, where_span: Span | None) -> list[ResolvedAttach]:
        """The sites of the files a path glob matched; files that are not
        ELF or have no probes are passed over."""
        from ..kernel.usdt import match, usdt_probes
        probes: list[UsdtProbe] = []
        for f in files:
            try:
                probes.extend(usdt_probes(f))
            except (OSError, ValueError):
                continue  # a mapped locale archive, a data file matched by the glob
        if not probes:
            env.diags.error("none of these files has USDT probes: " + ", ".join(files[:5]) +
                            (f" and {len(files) - 5} more" if len(files) > 5 else ""), where_span)
            return []
        sites = match(probes, provider, name)
        if not sites:
            return self._not_found(ap, env, probes, provider, name, name_span, [])
        return self._attaches(ap, env, sites)

    @staticmethod
    def _process_probes(pid: int) -> "list[UsdtProbe]":
        """The probe sites of every file process ``pid`` runs or maps
        (files that are not ELF, like a mapped locale archive, are passed
        over); raises OSError when its files cannot be listed."""
        from ..kernel.usdt import process_files, usdt_probes
        probes: list[UsdtProbe] = []
        for f in process_files(pid):
            try:
                probes.extend(usdt_probes(f))
            except (OSError, ValueError):
                continue
        return probes

    def _in_process(self, ap: AttachPoint, env: ResolveEnv, provider: str | None, name: str,
                    name_span: Span | None) -> list[ResolvedAttach]:
        """``-p PID`` without a path: the process's executable and libraries."""
        from ..kernel.usdt import match
        assert env.pid is not None
        try:
            probes = self._process_probes(env.pid)
        except OSError as exc:
            env.diags.error(_process_problem(env.pid, exc), ap.span)
            return []
        if not probes:
            env.diags.error(f"process {env.pid} has no USDT probes in its executable or the libraries it maps",
                            ap.span, hints=["name the binary if the process loads it later (dlopen)"])
            return []
        sites = match(probes, provider, name)
        if not sites:
            return self._not_found(ap, env, probes, provider, name, name_span,
                                   [f"list them with: pytrace -l 'usdt:*' -p {env.pid}"])
        return self._attaches(ap, env, sites)

    def _not_found(self, ap: AttachPoint, env: ResolveEnv, probes: "list[UsdtProbe]", provider: str | None,
                   name: str, span: Span | None, hints: list[str]) -> list[ResolvedAttach]:
        if provider:
            wanted, candidates = f"{provider}:{name}", [p.full_name for p in probes]
            # The caret covers provider and name: they are the part at fault.
            span = part_span(ap, len(split_attach_point(ap.raw)) - 2, to_end=True)
        else:
            wanted, candidates = name, [p.name for p in probes]
        return not_found(env, ap, "usdt probe", wanted, sorted(set(candidates)), hints, span=span)

    def _attaches(self, ap: AttachPoint, env: ResolveEnv, sites: "list[UsdtProbe]") -> list[ResolvedAttach]:
        out: list[ResolvedAttach] = []
        warned: set[tuple[str, str]] = set()
        for p in sites:
            target = f"usdt:{p.path}:{p.provider}:{p.name}"
            if p.pc_offset is None:
                env.diags.error(f"usdt probe {p.full_name} of {p.path} is at {p.pc:#x}, outside the file's "
                                "loadable segments: the note is corrupt", ap.span)
                continue
            if p.error is not None and (target, p.error) not in warned:
                warned.add((target, p.error))
                self._warn_args(ap, env, p)
            out.append(ResolvedAttach(
                self.name, target, ap.span, nargs=len(p.args),
                detail={"path": p.path, "provider": p.provider, "probe": p.name, "pc_offset": p.pc_offset,
                        "semaphore_offset": p.semaphore_offset, "arg_locations": p.args, "link_pc": p.pc,
                        "arg_error": p.error}))
        return out

    def _warn_args(self, ap: AttachPoint, env: ResolveEnv, p: "UsdtProbe") -> None:
        """An argument the decoder rejects: the ones before it stay
        readable; using it or a later one is then an out-of-range error."""
        first, total = len(p.args), len(p.arg_spec.split())
        later = f"arg{first}" if first == total - 1 else f"arg{first}..arg{total - 1}"
        usable = "" if not first else "; arg0 can" if first == 1 else f"; arg0..arg{first - 1} can"
        hints = [f"{later} cannot be used in this probe{usable}"]
        if "symbol" in (p.error or "") and "not found" in (p.error or ""):
            hints.append("the symbol is in neither the file's symbol tables nor a debug file "
                         "(a stripped binary: install its debug symbols)")
        env.diags.warning(f"usdt probe {p.full_name}: arg{first} cannot be read: {p.error}", ap.span, hints=hints)

    # ------------------------------------------------------------------ attaching
    def attach(self, a: ResolvedAttach, prog_fd: int, env: AttachEnv) -> list["Attachment"]:
        """A uprobe at the site, the semaphore counted by the kernel
        (ref_ctr_offset, Linux 4.20), in every process mapping the file or
        only in ``env.pid``."""
        from ..bpf.attach import attach_uprobe
        from ..bpf.syscalls import BpfError
        from ..errors import EnvironmentProblem
        d = a.detail
        sema = int(d.get("semaphore_offset") or 0)
        try:
            return [attach_uprobe(prog_fd, d["path"], int(d["pc_offset"]), pid=env.pid if env.pid else -1,
                                  ref_ctr_offset=sema)]
        except BpfError as exc:
            if exc.errno == errno.EINVAL and sema:
                # kernel/events/uprobes.c refuses a second uprobe at one
                # place with another ref_ctr_offset ("ref_ctr_offset mismatch").
                raise EnvironmentProblem(
                    f"cannot attach {a.target}: the kernel refused its uprobe with the semaphore at file "
                    f"offset {sema:#x}",
                    "another uprobe at the same place without this semaphore makes the kernel refuse it "
                    "(dmesg says 'ref_ctr_offset mismatch')") from None
            raise

    # ------------------------------------------------------------------ listing
    def list_probes(self, rest_glob: str, lister: ListEnv) -> list[str]:
        """``usdt:PATH:[PROVIDER:]NAME`` (PATH a path glob, a library, an
        executable on PATH), or with ``-p`` ``usdt:*[:...]``: the probes of
        the process's files, named through /proc/PID/root as bpftrace names
        them.  Only lines that match are returned (``filters_listing``)."""
        from ..errors import EnvironmentProblem
        from ..kernel.usdt import match, process_files, usdt_probes
        parts = split_attach_point(rest_glob)
        where = parts[0]
        if len(parts) > 3:
            return []
        provider, name = (parts[1], parts[2]) if len(parts) == 3 else (None, parts[1] if len(parts) == 2 else "*")
        explicit = False
        if lister.pid is not None and (len(parts) == 1 or where in ("", "*")):
            try:
                files = process_files(lister.pid)
            except OSError as exc:
                raise EnvironmentProblem(f"cannot list usdt probes: {_process_problem(lister.pid, exc)}") from None
        elif where in ("", "*"):
            lister.warn("name the binary to list usdt probes of, e.g. pytrace -l 'usdt:/usr/bin/python3:*', "
                        "or a process with -p PID")
            return []
        elif len(parts) == 1:
            lister.warn(f"name the probes to list after the binary, e.g. pytrace -l 'usdt:{where}:*'")
            return []
        elif _has_wildcard(where):
            files = sorted(p for p in glob.glob(where) if os.path.isfile(p))
        else:
            from ..kernel.elfsyms import resolve_library
            found = resolve_library(where, lister.pid)
            if found is None:
                raise EnvironmentProblem(f"cannot list usdt probes: no such binary or library: {where}")
            files, explicit = [found], True
        lines: set[str] = set()
        for f in files:
            try:
                probes = usdt_probes(f)
            except (OSError, ValueError) as exc:
                if explicit:
                    raise EnvironmentProblem(f"cannot list the usdt probes of {f}: {_reason(exc, f)}") from None
                continue
            lines.update(f"usdt:{f}:{p.provider}:{p.name}" for p in match(probes, provider, name))
        return sorted(lines)
