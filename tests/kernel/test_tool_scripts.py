"""Debian's bpftrace tool scripts through pytrace's front end, on this kernel.

Every script parses and passes the semantic checks against the live kernel
(tracefs formats, BTF): those using only probe types this kernel offers
(tracepoints, uprobes, BEGIN/END, interval, profile) and the kprobe-based
ones alike (kprobe attach points are checked for syntax; attaching them is
what fails on this kernel).  Two scripts bpftrace 0.17 rejects on this kernel
too are the exception: for those both tools must fail and pytrace must say
why.
"""

from __future__ import annotations

import glob
import os
import subprocess
from pathlib import Path

import pytest

from pytrace.diagnostics import Diagnostics
from pytrace.frontend.ast import Program
from pytrace.frontend.parser import parse
from pytrace.kernel.info import LiveKernel
from pytrace.providers.base import split_attach_point
from pytrace.providers.registry import ProviderRegistry
from pytrace.source import SourceFile
from tests.conftest import compile_text

pytestmark = pytest.mark.kernel

TOOLS = sorted(glob.glob("/usr/sbin/*.bt"))
USABLE = {"BEGIN", "END", "tracepoint", "uprobe", "uretprobe", "interval", "profile"}
# Scripts bpftrace 0.17 itself cannot compile on this kernel, with the reason.
KERNEL_MISMATCH = {
    # cfs_rq.nr_running was renamed in newer kernels (BTF has no such field).
    "runqlen.bt": "struct cfs_rq has no field 'nr_running'",
    # TASK_RUNNING is a macro of the kernel's own linux/sched.h; only the uapi
    # header is installed, and it lacks the macro.
    "runqlat.bt": "unknown identifier 'TASK_RUNNING'",
}


def _program(path: str) -> Program:
    d = Diagnostics()
    prog = parse(SourceFile(path, Path(path).read_text()), d)
    assert not d.has_errors(), d.render()
    return prog


def _provider_names(prog: Program) -> set[str]:
    reg = ProviderRegistry()
    names = set()
    for probe in prog.probes:
        for ap in probe.attach_points:
            p = reg.lookup(split_attach_point(ap.raw)[0])
            assert p is not None, ap.raw
            names.add(p.name)
    return names


@pytest.fixture(scope="module")
def live() -> LiveKernel:
    return LiveKernel()


def test_all_tools_parse() -> None:
    assert len(TOOLS) >= 30
    for path in TOOLS:
        _program(path)


@pytest.mark.parametrize("path", TOOLS, ids=[os.path.basename(t) for t in TOOLS])
def test_tool_semantics(path: str, live: LiveKernel) -> None:
    prog = _program(path)
    assert _provider_names(prog) <= USABLE | {"kprobe", "kretprobe"}
    comp, diags = compile_text(Path(path).read_text(), live, name=path)
    name = os.path.basename(path)
    if name in KERNEL_MISMATCH:
        assert KERNEL_MISMATCH[name] in diags.render()
        return
    assert not diags.has_errors(), diags.render()
    assert comp.probes and all(p.attaches for p in comp.probes)


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(KERNEL_MISMATCH))
def test_bpftrace_fails_on_the_same_tools(name: str) -> None:
    out = subprocess.run(["timeout", "-s", "INT", "20", "bpftrace", f"/usr/sbin/{name}"],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "Attaching" not in out.stdout
