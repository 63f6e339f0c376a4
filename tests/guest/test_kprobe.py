"""kprobe and kretprobe on a kernel that has them (Debian 6.1 in the guest):
symbol, offset, wildcard, module:symbol, retval and kstack, each counted
exactly against a workload the test controls."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.kernel.difflib_pt import pytrace_only

from .workload import COMM, chain, in_child, preads, reads, readvs

pytestmark = pytest.mark.kernel
ONLY = f'/comm == "{COMM}"/'


def run(script: str, workload: object) -> str:
    def go() -> None:
        in_child(workload)  # type: ignore[arg-type]
    return pytrace_only(script, go, timeout=120)


def test_kprobe_symbol_counts_reads(data: str) -> None:
    out = run(f"kprobe:vfs_read {ONLY} {{ @[comm, func] = count(); }}", preads(data, [(10, 0)] * 25))
    assert out.strip() == f"@[{COMM}, vfs_read]: 25"


def test_kretprobe_retval(data: str) -> None:
    # 250-byte file: 100 bytes at 0, 50 at 200, none at 300.
    work = preads(data, [(100, 0)] * 4 + [(100, 200)] * 3 + [(100, 300)] * 2)
    out = run(f"kretprobe:vfs_read {ONLY} {{ @[retval] = count(); }}", work)
    assert out.strip().split("\n") == ["@[0]: 2", "@[50]: 3", "@[100]: 4"]


def test_kprobe_offset(data: str) -> None:
    # On x86-64 with CONFIG_FUNCTION_TRACER (and no IBT endbr64, as in
    # Debian 6.1) every traceable function starts with the 5-byte
    # `call __fentry__` (patched to a nop): +5 is the next instruction.
    out = run(f"kprobe:vfs_read+0 {ONLY} {{ @a = count(); }} kprobe:vfs_read+5 {ONLY} {{ @b = count(); }}",
              preads(data, [(10, 0)] * 7))
    assert out.strip().split("\n") == ["@a: 7", "@b: 7"]


@pytest.mark.slow
def test_kprobe_bad_offset_is_one_sentence() -> None:
    # +1 is inside that 5-byte instruction: the kernel refuses it.
    p = subprocess.run([sys.executable, "-m", "pytrace", "-e", "kprobe:vfs_read+1 { exit(); }"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    assert re.search(r"cannot attach kprobe:vfs_read\+1: .*\(perf_event_open: EILSEQ", p.stderr), p.stderr


def test_kprobe_wildcard(data: str) -> None:
    out = run(f"kprobe:vfs_rea* {ONLY} {{ @[probe] = count(); }}",
              chain(preads(data, [(10, 0)] * 5), readvs(data, 3, 10)))
    assert out.strip().split("\n") == ["@[kprobe:vfs_readv]: 3", "@[kprobe:vfs_read]: 5"]


@pytest.mark.slow
def test_kprobe_wildcard_attaches_every_match() -> None:
    # Partial-inlining clones (name.part.0) are left out, as bpftrace does.
    funcs = {ln.split()[0] for ln in open("/sys/kernel/tracing/available_filter_functions")
             if ln.startswith("vfs_rea") and ".part." not in ln.split()[0]}
    assert {"vfs_read", "vfs_readv", "vfs_readlink"} <= funcs
    listed = subprocess.run([sys.executable, "-m", "pytrace", "-l", "kprobe:vfs_rea*"],
                            capture_output=True, text=True, timeout=120)
    assert listed.stdout.split() == [f"kprobe:{f}" for f in sorted(funcs)], listed.stderr
    p = subprocess.run([sys.executable, "-m", "pytrace", "-e", "kprobe:vfs_rea* { @ = count(); } BEGIN { exit(); }"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    # BEGIN is a probe too, as bpftrace counts them.
    assert p.stdout.startswith(f"Attaching {len(funcs) + 1} probes...\n"), p.stdout


@pytest.mark.slow
def test_kretprobe_wildcard_no_match_is_a_diagnostic() -> None:
    p = subprocess.run([sys.executable, "-m", "pytrace", "-e", "kretprobe:vfs_no_such_* { exit(); }"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert "stdin:1:1: warning: no kernel functions match 'vfs_no_such_*': this probe is skipped" in p.stderr
    assert "no probes to attach" in p.stderr, p.stderr


def test_kprobe_module_symbol(data: str) -> None:
    # overlay is a module here (=m in Debian); every read of a file on the
    # overlay root goes through ovl_read_iter once.
    out = run(f"kprobe:overlay:ovl_read_iter {ONLY} {{ @[probe] = count(); }} "
              f"kprobe:overlay:ovl_read_i* {ONLY} {{ @w[probe] = count(); }}",
              preads(data, [(10, 0)] * 6))
    assert out.strip().split("\n") == ["@[kprobe:overlay:ovl_read_iter]: 6",
                                       "@w[kprobe:overlay:ovl_read_iter]: 6"]


def test_kstack_under_kprobe(data: str) -> None:
    out = run(f"kprobe:vfs_read {ONLY} {{ @[kstack] = count(); }}", reads(data, 9, 10))
    m = re.fullmatch(r"@\[\n((?:    \S+\n)+)\]: (\d+)", out.strip())
    assert m, out
    frames = [f.strip() for f in m.group(1).splitlines()]
    assert m.group(2) == "9"
    assert re.fullmatch(r"vfs_read\+\d+", frames[0]), frames
    assert re.fullmatch(r"ksys_read\+\d+", frames[1]), frames
    assert any(f.startswith("do_syscall_64+") for f in frames), frames


def test_comm_map_key_is_one_entry(data: str) -> None:
    # Linux 6.1's bpf_get_current_comm does not NUL-pad; pytrace finds that
    # out (kernel/features.py comm_is_padded) and zeroes the key itself.
    from pytrace.kernel.features import comm_is_padded
    assert comm_is_padded() is False
    out = run(f"kprobe:vfs_read {ONLY} {{ @[comm] = count(); @t[comm, pid > 0] = count(); }}",
              preads(data, [(10, 0)] * 11))
    assert out.strip().split("\n") == [f"@[{COMM}]: 11", f"@t[{COMM}, 1]: 11"]
