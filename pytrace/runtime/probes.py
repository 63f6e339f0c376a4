"""Attaching one compiled program to what its probe names.

Each attach point goes to its provider (``Provider.attach``); the one case
handled here is the syscall group the code generator made of many syscall
tracepoints, which shares one raw ``sys_enter``/``sys_exit`` link.  Every
failure is one sentence with a hint, and anything attached before the
failure is closed.  The exception, as in bpftrace 0.17: a kprobe the kernel
refuses is skipped with a warning when its probe names more than one
function (a wildcard, or a list such as ``kprobe:a, kprobe:b``); only a
probe's one explicit function is an error.
"""

from __future__ import annotations

from typing import Callable

from ..bpf import attach as A
from ..codegen.llvm.module import ProgramSpec
from ..errors import EnvironmentProblem
from ..providers.base import AttachEnv
from ..providers.registry import ProviderRegistry


def attach_program(spec: ProgramSpec, fd: int, providers: ProviderRegistry, env: AttachEnv,
                   warn: Callable[[str], None] | None = None) -> list[A.Attachment]:
    from ..providers.kprobe import KprobeAttachFailed
    done: list[A.Attachment] = []
    several = len(spec.probe.attaches) > 1 or len(spec.probe.probe.attach_points) > 1
    try:
        if spec.kind == "syscall":
            done.append(A.attach_raw_tracepoint(fd, "sys_exit" if spec.ctx.exit else "sys_enter"))
            return done
        for a in spec.attaches:
            provider = providers.lookup(a.provider)
            if provider is None:
                raise EnvironmentProblem(f"cannot attach {a.target}: unknown probe type {a.provider}")
            try:
                done.extend(provider.attach(a, fd, env))
            except KprobeAttachFailed:
                if warn is None or not several:
                    raise
                warn(f"could not attach probe {a.target}, skipping.")
    except BaseException:
        A.close_all(done)
        raise
    return done
