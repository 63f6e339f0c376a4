"""kprobe/kretprobe, fentry/fexit and hardware probes on a kernel that lacks
them (this project's reference VM: no CONFIG_KPROBES, fentry refused with
EPERM, no hardware PMU).

What can be checked here is checked for real: kprobe programs are generated
and loaded by the kernel (BPF_PROG_TYPE_KPROBE exists without kprobes),
fentry/fexit arguments are typed from BTF and read from the right context
slots, -lv prints BTF prototypes as bpftrace spells them, and each probe
type fails with one sentence naming what to trace instead.  Attaching them
for real is the QEMU kernel matrix's job.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from typing import Any, Iterator

import pytest

from pytrace.bpf.program import prog_info
from pytrace.bpf.syscalls import ProgType
from pytrace.diagnostics import Diagnostics
from pytrace.kernel.btf import Btf
from pytrace.kernel.info import LiveKernel
from pytrace.runtime.session import RunOptions, Session
from pytrace.semantic.pipeline import CompileOptions, run
from pytrace.source import SourceFile

pytestmark = pytest.mark.kernel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAS_KPROBES = os.path.exists("/sys/bus/event_source/devices/kprobe/type")


def pytrace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytrace", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def _compile(script: str) -> Any:
    diags = Diagnostics()
    comp = run(SourceFile("stdin", script), CompileOptions(kernel=LiveKernel(), environ={}), diags)
    assert not diags.has_errors(), diags.render()
    return comp


def _loaded(script: str) -> Iterator[Session]:
    with Session(_compile(script), RunOptions(), io.StringIO(), io.StringIO()) as s:
        diags = Diagnostics()
        assert s.load(diags), diags.render()
        yield s


def test_kprobe_programs_are_generated_and_loaded() -> None:
    """The kernel loads what kprobe/kretprobe compile to, here too."""
    script = ("kprobe:vfs_read { @reads[comm] = count(); @sizes = hist(arg2); } "
              "kretprobe:vfs_read { @ret = sum(retval); }")
    for s in _loaded(script):
        assert len(s.prog_fds) == 2
        for fd in s.prog_fds.values():
            assert prog_info(fd).type == ProgType.KPROBE


@pytest.mark.skipif(HAS_KPROBES, reason="this kernel has kprobes: attaching is tested in the kernel matrix")
def test_kprobe_attach_says_what_to_trace_instead() -> None:
    r = pytrace("-e", "kprobe:do_sys_openat2 { @ = count(); }")
    assert r.returncode == 1
    assert r.stderr == ("pytrace: cannot attach kprobe:do_sys_openat2: this kernel has no kprobes "
                        "(CONFIG_KPROBES is off), so trace tracepoint:syscalls:sys_enter_openat instead\n")


def test_fentry_arguments_are_typed_from_btf() -> None:
    """args of fentry are the function's parameters (names and types from
    BTF), read from the u64 slots of the context; fexit's retval follows."""
    r = pytrace("--emit", "types", "-e",
                "fexit:vfs_read { @[args.count] = sum(retval); @p[args.file->f_pos] = count(); }")
    assert r.returncode == 0, r.stderr
    # size_t count -> uint64; ssize_t retval -> int64; file->f_pos (loff_t) -> int64.
    assert ": uint64 name='count'" in r.stdout and ": int64 name='retval'" in r.stdout
    assert ": int64 name='f_pos'" in r.stdout
    asm = pytrace("--emit", "asm", "-e", "fexit:vfs_read { @[args.count] = sum(retval); }")
    assert asm.returncode == 0, asm.stderr
    # vfs_read(file, buf, count, pos): count is slot 2 (offset 16), retval slot 4 (offset 32).
    assert "+ 16)" in asm.stdout and "+ 32)" in asm.stdout
    bad = pytrace("--dry-run", "-e", "fentry:vfs_read { @ = args.nosuchparam; }")
    assert bad.returncode == 1 and "nosuchparam" in bad.stderr


def test_fentry_refusal_names_the_tracepoint_instead() -> None:
    ok, _ = __import__("pytrace.kernel.features", fromlist=["fentry_works"]).fentry_works()
    if ok:
        pytest.skip("this kernel loads fentry programs: they are run in the kernel matrix")
    r = pytrace("-e", "fexit:do_sys_openat2 { @ = count(); }")
    assert r.returncode == 1
    assert r.stderr == ("pytrace: cannot load fexit:do_sys_openat2: this kernel refuses fexit programs "
                        "(BPF_PROG_LOAD fails with EPERM before the verifier runs), so trace "
                        "tracepoint:syscalls:sys_exit_openat instead\n")
    r = pytrace("-e", "fentry:tcp_retransmit_skb { @ = count(); }")
    assert r.returncode == 1 and r.stderr.endswith("so trace tracepoint:tcp:tcp_retransmit_skb instead\n")


def test_verbose_listing_spells_btf_prototypes_as_c() -> None:
    r = pytrace("-lv", "fexit:vfs_write")
    assert r.returncode == 0
    assert r.stdout == ("fexit:vfs_write\n    struct file * file\n    const char * buf\n    size_t count\n"
                        "    loff_t * pos\n    ssize_t retval\n")
    r = pytrace("-lv", "rawtracepoint:sched_switch")
    assert r.stdout == ("rawtracepoint:sched_switch\n    bool preempt\n    struct task_struct * prev\n"
                        "    struct task_struct * next\n    unsigned int prev_state\n")
    # Where fentry does not load, the full listing leaves the functions out.
    full = pytrace("-l")
    assert "fentry:" not in full.stdout or "fentry: no" not in pytrace("--info").stdout


def test_btf_spelling_matches_the_prototypes() -> None:
    btf = Btf.load()
    assert btf.func_signature("do_sys_openat2") == (
        [("int", "dfd"), ("const char *", "filename"), ("struct open_how *", "how")], "int")
    assert btf.func_signature("tcp_connect") == ([("struct sock *", "sk")], "int")
    assert btf.func_signature("nosuchfunction_pytrace") is None


def test_hardware_events_need_a_pmu() -> None:
    if os.path.exists("/sys/bus/event_source/devices/cpu"):
        pytest.skip("this machine has a hardware PMU")
    r = pytrace("-e", "hardware:cache-misses:1000 { @ = count(); }")
    assert r.returncode == 1
    assert r.stderr == ("pytrace: cannot attach hardware:cache-misses:1000: this machine has no hardware "
                        "performance counters (no 'cpu' PMU, common in virtual machines)\n"
                        "hint: use a software event instead, e.g. software:cpu-clock:1000000\n")


def test_override_is_lowered_and_its_refusal_explained() -> None:
    """override(rc) becomes bpf_override_return(ctx, rc) in a kprobe; a
    kernel without CONFIG_BPF_KPROBE_OVERRIDE refuses the helper, which is
    reported at the statement with the reason."""
    asm = pytrace("--emit", "asm", "--unsafe", "-e", "kprobe:should_failslab { override(-12); }")
    assert asm.returncode == 0 and "call 58" in asm.stdout
    r = pytrace("--unsafe", "-e", "kprobe:should_failslab { override(-12); }")
    if "cannot use helper bpf_override_return" not in r.stderr:
        pytest.skip("this kernel has bpf_override_return for kprobes: the kernel matrix runs it")
    assert r.returncode == 1
    assert r.stderr.startswith("stdin:1:26: error: the kernel's verifier rejected this statement: program of this "
                               "type cannot use helper bpf_override_return#58\n")
    assert "hint: override() needs a kernel built with CONFIG_BPF_KPROBE_OVERRIDE" in r.stderr
