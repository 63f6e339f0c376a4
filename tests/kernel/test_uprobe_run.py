"""uprobes and uretprobes run by pytrace alone, exact numbers, where
bpftrace 0.17 cannot serve as the oracle: offsets and mid-function
addresses (Debian's 0.17 refuses every offset: it is built without the
disassembler that checks them), -p restricting probes to one process (0.17
counts every process running the binary), ``func`` in a uretprobe (0.17
names the caller), ``uprobe:FUNC`` with -p.  Programs: see
tests/unit/test_uprobe_resolve.py."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.unit.test_uprobe_resolve import Progs, build_progs, insn_starts, nm_values

from .difflib_pt import compare, have_bpftrace, pytrace_only
from .harness import command

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def progs(tmp_path_factory: pytest.TempPathFactory) -> Progs:
    return build_progs(tmp_path_factory.mktemp("uprobe_run"))


def run(exe: Path, *args: int) -> Callable[[], None]:
    return lambda: subprocess.run([str(exe), *map(str, args)], check=True)


def maps(out: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(@.*): (-?\d+)$", out, re.MULTILINE)}


def test_wildcards_args_and_retvals_exact(progs: Progs) -> None:
    c, n = progs.c, 7
    script = (f"uprobe:{c}:wf_* {{ @[func] = count(); }}"
              f" uprobe:{c}:wf_alpha {{ @a0 = sum(arg0); @a1 = sum(arg1); }}"
              f" uprobe:{c}:wf_beta {{ @nz[arg0 != 0, arg1 != 0] = count(); }}"
              f" uretprobe:{c}:wf_* {{ @r[func] = sum(retval); }}")
    got = maps(pytrace_only(script, run(c, n)))
    assert got == {"@[wf_alpha]": n, "@[wf_beta]": n, "@[wf_gamma]": n,
                   "@a0": sum(range(n)), "@a1": 100 * n, "@nz[1, 1]": n,
                   "@r[wf_alpha]": sum(i + 100 for i in range(n)), "@r[wf_beta]": 109 * n,
                   "@r[wf_gamma]": sum(2 * i for i in range(n))}


def test_offset_and_mid_function_address(progs: Progs) -> None:
    """A probe on wf_beta's second instruction, by offset and by address,
    fires once per call; the first instruction's probe fires too."""
    c, n = progs.c, 6
    off = insn_starts(c, "wf_beta")[1]
    vaddr = nm_values(c)["wf_beta"] + off
    script = (f"uprobe:{c}:wf_beta+{off} {{ @o[probe, func] = count(); }}"
              f" uprobe:{c}:{vaddr:#x} {{ @v[probe, func] = count(); }}"
              f" uprobe:{c}:wf_beta {{ @e = count(); }}")
    got = maps(pytrace_only(script, run(c, n)))
    assert got == {f"@o[uprobe:{c}:wf_beta+{off}, wf_beta]": n, f"@v[uprobe:{c}:{vaddr}, wf_beta]": n, "@e": n}


def test_uretprobe_func_is_the_function(progs: Progs) -> None:
    got = maps(pytrace_only(f"uretprobe:{progs.c}:wf_* {{ @[func, probe] = count(); }}", run(progs.c, 3)))
    assert got == {f"@[wf_{f}, uretprobe:{progs.c}:wf_{f}]": 3 for f in ("alpha", "beta", "gamma")}


def test_cpp_overloads_counted_apart(progs: Progs) -> None:
    x, n = progs.cxx, 5
    script = (f'uprobe:{x}:"ns::f" {{ @[func] = count(); @a[func] = sum(arg0); }}'
              f" uprobe:{x}:cpp:ns::K::get {{ @g = sum(arg1); }}"
              f" uretprobe:{x}:plain_c {{ @c = sum(retval); }}")
    got = maps(pytrace_only(script, run(x, n)))
    assert got == {"@[ns::f(int)]": n, "@[ns::f(int, int)]": n,
                   "@a[ns::f(int)]": sum(range(n)), "@a[ns::f(int, int)]": sum(range(n)),
                   "@g": sum(range(n)), "@c": sum(3 * i for i in range(n))}


def test_dash_p_counts_that_process_only(progs: Progs) -> None:
    """Two runs of the same program: with -p only the named one counts, for
    its executable (by path and as ``uprobe:FUNC``) and for the libc it maps
    (no predicate: the filter is the attachment's)."""
    c = progs.c
    traced = subprocess.Popen([str(c), "4", "2500"])
    other = subprocess.Popen([str(c), "9", "2500"])
    try:
        time.sleep(0.3)
        script = (f"uprobe:{c}:wf_alpha {{ @path[pid] = count(); }} uprobe:wf_gamma {{ @exe[pid] = count(); }}"
                  " uprobe:libc:getppid { @libc[pid] = count(); }")

        def both() -> None:
            traced.wait()
            other.wait()
        got = maps(pytrace_only(script, both, tool_args=["-p", str(traced.pid)], wait_exit=True))
        assert got == {f"@path[{traced.pid}]": 4, f"@exe[{traced.pid}]": 4, f"@libc[{traced.pid}]": 4}
    finally:
        for p in (traced, other):
            p.kill()
            p.wait()


def test_without_dash_p_every_process_counts(progs: Progs) -> None:
    c = progs.c

    def two() -> None:
        a = subprocess.Popen([str(c), "2"])
        b = subprocess.Popen([str(c), "3"])
        a.wait()
        b.wait()
    got = maps(pytrace_only(f"uprobe:{c}:wf_alpha {{ @ = count(); @p[pid] = count(); }}", two))
    assert got["@"] == 5 and sorted(v for k, v in got.items() if k.startswith("@p[")) == [2, 3]


def test_errors_are_diagnostics(progs: Progs) -> None:
    """Found at compile time: nothing is attached, no traceback."""
    r = subprocess.run([*command("pytrace"), "-e", f"uprobe:{progs.c}:wf_alhpa {{ }}"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert f"warning: function 'wf_alhpa' not found in {progs.c}" in r.stderr
    assert "error: no probes to attach" in r.stderr
    assert "did you mean 'wf_alpha'?" in r.stderr and "Traceback" not in r.stderr


STACK_SOURCE = r"""
#include <stdlib.h>
#include <unistd.h>
__attribute__((noinline)) int leaf(int x) { return x + 1; }
__attribute__((noinline)) int mid(int x) { return leaf(x) * 2 + 1; }
int main(int argc, char **argv) {
    usleep(300000);
    int r = mid(3);
    if (argc > 1) usleep(atoi(argv[1]) * 1000);
    return r == 9 ? 0 : 1;
}
"""


@pytest.fixture(scope="module")
def stack_prog(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.cprog import build_c
    return str(build_c(tmp_path_factory.mktemp("ustack"), STACK_SOURCE, "st",
                       flags=("-O1", "-no-pie", "-fno-omit-frame-pointer")))


def test_user_stack_of_a_command_that_exits_at_once(stack_prog: str) -> None:
    """A -c command exits right after its probe fires, before its event is
    decoded: the mappings pytrace kept while it ran still name its frames.
    In printf a stack is its frames without print()'s extra newline, and
    an empty one (kstack in a uprobe) is empty."""
    out = pytrace_only(f'uprobe:{stack_prog}:leaf {{ printf("[%s]<%s>\\n", ustack, kstack); }}',
                       tool_args=["-c", stack_prog], wait_exit=True)
    # At leaf's first instruction its frame is not set up yet, so the frame
    # pointer walk goes from leaf straight to main (mid is skipped, as in
    # bpftrace).
    assert out.startswith("[\n        leaf+0\n        main+")
    assert "\n        __libc_start_call_main+" in out
    assert "\n]<>\n" in out


@pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")
def test_user_stack_in_printf_against_bpftrace(stack_prog: str) -> None:
    """The same while the command lingers (bpftrace 0.17 loses the race of
    symbolising before the process exits, so it gets time here)."""
    compare(f'uprobe:{stack_prog}:leaf /pid == cpid/ {{ printf("[%s]<%s>\\n", ustack, kstack); }}',
            tool_args=["-c", f"{stack_prog} 300"], wait_exit=True)


CPP_SOURCE = r"""
#include <unistd.h>
namespace ns { __attribute__((noinline)) int f(int a) { return a + 1; } }
int main() { usleep(300000); volatile int x = ns::f(3); return x == 4 ? 0 : 1; }
"""


def test_cpp_demangle_config(tmp_path: Path) -> None:
    """func and ustack print C++ names demangled, or mangled with
    config = { cpp_demangle = 0 } (bpftrace's setting)."""
    import shutil
    if not shutil.which("g++"):
        pytest.fail("g++ is needed (CI installs it with gcc)")
    exe = tmp_path / "c"
    (tmp_path / "c.cpp").write_text(CPP_SOURCE)
    subprocess.run(["g++", "-O1", "-no-pie", "-fno-omit-frame-pointer", "-o", str(exe), str(tmp_path / "c.cpp")],
                   check=True)
    for setting, name in ((1, "ns::f(int)"), (0, "_ZN2ns1fEi")):
        out = pytrace_only(f'config = {{ cpp_demangle = {setting} }} uprobe:{exe}:"ns::f" {{ @[func, ustack] = count(); }}',
                           tool_args=["-c", str(exe)], wait_exit=True)
        assert f"@[{name}, \n    {name}+0\n" in out, out


def test_func_in_a_variable(stack_prog: str) -> None:
    """func stored in a variable, then used as a key and printed."""
    out = pytrace_only(f'uprobe:{stack_prog}:leaf,uprobe:{stack_prog}:mid {{ $f = func; @[$f] = count(); '
                       f'printf("%s\\n", $f); }}', tool_args=["-c", f"{stack_prog} 100"], wait_exit=True)
    assert out.startswith("mid\nleaf\n") and "@[leaf]: 1\n" in out and "@[mid]: 1\n" in out
