"""Debian's bpftrace tool scripts through pytrace's front end, on this kernel.

Every script parses and passes the semantic checks against the live kernel
(tracefs formats, BTF): those using only probe types this kernel offers
(tracepoints, uprobes, BEGIN/END, interval, profile) and the kprobe-based
ones alike (kprobe attach points are checked for syntax; attaching them is
what fails on this kernel: test_tools_kprobe.py).  Two scripts bpftrace 0.17
rejects on this kernel too are the exception: for those both tools must fail
and pytrace must say why.  Two more pass the checks but cannot run under
bpftrace 0.17 here either: loads.bt reads a data symbol /proc/kallsyms does
not list, tcpdrop.bt needs kernel headers (bpftrace) -- pytrace, with BTF,
should run it, and a loopback drop the test causes shows what it must print.

The tools that run are compared with bpftrace in test_tools_syscalls.py,
test_tools_system.py and test_tools_uprobe.py.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import time
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

from .difflib_pt import Forked, have_bpftrace, pytrace_only, tool_script

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
# Functions tools probe that Debian 12's libraries do not export: bpftrace
# 0.17 skips those attach points, and so does pytrace (test_tools_uprobe.py).  libcrypto's are
# local symbols ("need debug symbol", the tools say); glibc 2.34 moved
# pthread_create from libpthread into libc.
_CRYPTO_LOCAL = {"rsa_ossl_public_encrypt", "rsa_ossl_public_decrypt", "rsa_ossl_private_encrypt",
                 "rsa_ossl_private_decrypt", "ossl_ecdsa_sign", "ossl_ecdsa_verify"}
ABSENT_FUNCTIONS = {
    "sslsnoop.bt": _CRYPTO_LOCAL | {"ossl_ecdh_compute_key"},
    "ssllatency.bt": _CRYPTO_LOCAL | {"ecdh_simple_compute_key"},
    "threadsnoop.bt": {"pthread_create"},
}
# Scripts that pass the checks but that bpftrace 0.17 cannot run here either.
RUN_MISMATCH = {
    # avenrun is a data symbol: /proc/kallsyms lists those only with
    # CONFIG_KALLSYMS_ALL.
    "loads.bt": "Failed to resolve kernel symbol: avenrun",
    # bpftrace 0.17's clang ends up in the script's #ifndef BPFTRACE_HAVE_BTF
    # branch here (seen with those includes, the #else branch and a
    # kfree_skb probe casting to struct sk_buff), and no kernel headers are
    # installed; without that branch it fails on the tracepoint's field type
    # enum skb_drop_reason, which only BTF describes.
    "tcpdrop.bt": "'net/sock.h' file not found",
}
# What pytrace says about the scripts neither tool can run here: where, why.
PYTRACE_SAYS = {
    "runqlat.bt": ("/usr/sbin/runqlat.bt:29:26: error: unknown identifier 'TASK_RUNNING'\n"
                   "\tif (args->prev_state == TASK_RUNNING) {\n"
                   "\t                        ^~~~~~~~~~~~\n"),
    "runqlen.bt": ("/usr/sbin/runqlen.bt:37:16: error: struct cfs_rq has no field 'nr_running'\n"
                   "\t$len = $my_q->nr_running;\n"
                   "\t              ^~~~~~~~~~\n"),
    "loads.bt": ("/usr/sbin/loads.bt:31:19: error: kaddr(): 'avenrun' not found\n"
                 "\t$avenrun = kaddr(\"avenrun\");\n"
                 "\t                 ^~~~~~~~~\n"),
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
    # A function the library lacks is a warning, and its attach point is
    # dropped, as bpftrace 0.17 drops it (silently); nothing else may be
    # reported.
    assert not diags.has_errors(), diags.render()
    absent = ABSENT_FUNCTIONS.get(name, set())
    missing = [m.group(1) for d in diags.items if (m := re.match(r"function '(\w+)' not found in ", d.message))]
    assert set(missing) == absent, diags.render()  # a uprobe and a uretprobe may name one
    assert comp.probes
    for p in comp.probes:
        if not p.attaches:  # every function it names is absent
            assert all(ap.raw.rsplit(":", 1)[1] in absent for ap in p.probe.attach_points), p.probe.attach_points


# Where each tool that needs only probe types this kernel offers is run
# against bpftrace 0.17 (the kprobe ones: test_tools_kprobe.py).
COMPARED = {
    "test_tools_syscalls.py": ("syscount",),
    "test_tools_system.py": ("bitesize", "writeback", "cpuwalk"),
    "test_tools_uprobe.py": ("sslsnoop", "ssllatency", "threadsnoop"),
    # Next to the stdlib's ports: the `form` fixture runs pytrace on Debian's file too.
    "test_stdlib_tools_proc.py": ("execsnoop", "opensnoop", "statsnoop", "killsnoop", "setuids", "syncsnoop",
                                  "naptime", "pidpersec", "bashreadline", "gethostlatency"),
}


def test_every_usable_tool_is_run() -> None:
    """Each tool without kprobes is compared with bpftrace in a test of its
    own, or is one bpftrace 0.17 cannot run here either."""
    usable = {os.path.basename(p)[:-3] for p in TOOLS if not {"kprobe", "kretprobe"} & _provider_names(_program(p))}
    compared = {name for names in COMPARED.values() for name in names}
    failing = {n[:-3] for n in (*KERNEL_MISMATCH, *RUN_MISMATCH)}
    assert usable == compared | failing and not compared & failing
    here = Path(__file__).parent
    for file, names in COMPARED.items():
        text = (here / file).read_text()
        for name in names:
            assert f"def test_{name}(" in text, (file, name)
            if file == "test_stdlib_tools_proc.py":
                assert re.search(rf"def test_{name}\([^)]*form: str", text), (file, name)


@pytest.mark.oracle
@pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")
@pytest.mark.parametrize("name", sorted(KERNEL_MISMATCH) + sorted(RUN_MISMATCH))
def test_bpftrace_fails_on_the_same_tools(name: str) -> None:
    out = subprocess.run(["timeout", "-s", "INT", "20", "bpftrace", f"/usr/sbin/{name}"],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "Attaching" not in out.stdout
    if name in RUN_MISMATCH:
        assert RUN_MISMATCH[name] in out.stderr


@pytest.mark.parametrize("name", sorted(PYTRACE_SAYS))
def test_pytrace_says_why_a_tool_cannot_run(name: str) -> None:
    """The run stops at the compile step with one diagnostic at the
    script's line, before anything is traced or printed."""
    out = subprocess.run([sys.executable, "-m", "pytrace", f"/usr/sbin/{name}"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=60)
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == PYTRACE_SAYS[name]


# ---------------------------------------------------------------- tcpdrop, which pytrace should run


def _drop_a_syn(report: int) -> None:
    """In a network namespace of its own whose loopback drops every packet
    (pfifo with room for none), a non-blocking connect: its SYN is freed
    with reason QDISC_DROP while the socket is in SYN_SENT.  The source and
    destination ports are written to the fd ``report``."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.unshare(0x40000000) == 0, os.strerror(ctypes.get_errno())  # CLONE_NEWNET
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["tc", "qdisc", "add", "dev", "lo", "root", "pfifo", "limit", "0"], check=True)
    with socket.socket() as listener, socket.socket() as s:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        assert s.connect_ex(listener.getsockname()) == errno.EINPROGRESS
        time.sleep(0.05)
        os.write(report, f"{s.getsockname()[1]} {listener.getsockname()[1]}".encode())


def test_tcpdrop_runs_under_pytrace() -> None:
    for tool in ("ip", "tc"):
        if not shutil.which(tool):
            pytest.skip(f"needs {tool} (iproute2)")
    r, w = os.pipe()
    child = Forked(lambda: _drop_a_syn(w))
    try:
        body = pytrace_only(tool_script("tcpdrop"), child)
        sport, dport = (int(p) for p in os.read(r, 64).split())
    finally:
        os.close(r)
        os.close(w)
    lines = body.split("\n")
    assert lines[:2] == ["Tracing tcp drops. Hit Ctrl-C to end.",
                         "TIME     PID      COMM             SADDR:SPORT           DADDR:DPORT           STATE   "]
    comm = Path("/proc/self/comm").read_text().strip()
    row = f"{child.pid:<8} {comm:<16} {'127.0.0.1':>39}:{sport:<6} {'127.0.0.1':>39}:{dport:<6} SYN_SENT  "
    mine = [i for i, ln in enumerate(lines) if ln[9:] == row]
    assert len(mine) == 1 and re.match(r"^\d\d:\d\d:\d\d $", lines[mine[0]][:9]), body
    # printf("%s\n", kstack): a newline, a frame per line, a newline.
    end = lines.index("", mine[0] + 2)
    stack = lines[mine[0] + 1:end]
    assert stack[0] == "" and all(re.match(r"^ {8}\w[\w.]*\+\d+$", f) for f in stack[1:]), stack
    names = [f.strip().split("+")[0] for f in stack[1:]]
    for fn in ("__dev_queue_xmit", "tcp_connect", "__sys_connect"):
        assert fn in names, stack
