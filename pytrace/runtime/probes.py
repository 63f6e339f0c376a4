"""Attaching one compiled program to what its probe names.

Each attach point goes to its provider (``Provider.attach``); the one case
handled here is the syscall group the code generator made of many syscall
tracepoints, which shares one raw ``sys_enter``/``sys_exit`` link.  Every
failure is one sentence with a hint, and anything attached before the
failure is closed.
"""

from __future__ import annotations

from ..bpf import attach as A
from ..codegen.llvm.module import ProgramSpec
from ..errors import EnvironmentProblem
from ..providers.base import AttachEnv
from ..providers.registry import ProviderRegistry


def attach_program(spec: ProgramSpec, fd: int, providers: ProviderRegistry, env: AttachEnv) -> list[A.Attachment]:
    done: list[A.Attachment] = []
    try:
        if spec.kind == "syscall":
            done.append(A.attach_raw_tracepoint(fd, "sys_exit" if spec.ctx.exit else "sys_enter"))
            return done
        for a in spec.attaches:
            provider = providers.lookup(a.provider)
            if provider is None:
                raise EnvironmentProblem(f"cannot attach {a.target}: unknown probe type {a.provider}")
            done.extend(provider.attach(a, fd, env))
    except BaseException:
        A.close_all(done)
        raise
    return done
