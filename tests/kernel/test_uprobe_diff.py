"""uprobe/uretprobe scripts under bpftrace 0.17 and pytrace on the same run
of programs built here (tests/unit/test_uprobe_resolve.py): wildcards and
``probe``, arguments, ``retval``, ``func``, ``ustack`` (frame pointers on),
C++ names, library short names, addresses, -p.

Where 0.17 cannot be the oracle the tests are in test_uprobe_run.py:
offsets (Debian's 0.17 is built without the disassembler it needs to check
them), -p filtering (0.17 counts every process), ``func`` in uretprobes
(0.17 names the caller).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.unit.test_uprobe_resolve import Progs, build_progs, ldconfig_path, nm_values

from .difflib_pt import compare, have_bpftrace

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")]


@pytest.fixture(scope="module")
def progs(tmp_path_factory: pytest.TempPathFactory) -> Progs:
    return build_progs(tmp_path_factory.mktemp("uprobe_diff"))


def run(exe: Path, *args: int) -> Callable[[], None]:
    return lambda: subprocess.run([str(exe), *map(str, args)], check=True)


@pytest.fixture
def background() -> Iterator[Callable[..., Callable[[], None]]]:
    """Workloads that start a program and return while it still runs (its
    stacks and symbols must resolve when the maps are printed)."""
    procs: list[subprocess.Popen] = []  # type: ignore[type-arg]

    def start(exe: Path, *args: int) -> Callable[[], None]:
        def work() -> None:
            procs.append(subprocess.Popen([str(exe), *map(str, args)]))
        return work
    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_wildcard_probe_args_retval(progs: Progs) -> None:
    c = progs.c
    script = (f"uprobe:{c}:wf_* {{ @[probe] = count(); }}"
              f" uretprobe:{c}:wf_* {{ @r[probe] = sum(retval); @h = hist(retval); }}"
              f" uprobe:{c}:other_fn {{ @a[arg0] = count(); @s = sum(arg0); }}")
    out = compare(script, run(c, 5))
    # 5 calls each; sum(i + 100) = 510, 5 * ('h' + 5) = 545, sum(2i) = 20.
    for line in (f"@[uprobe:{c}:wf_alpha]: 5", f"@[uprobe:{c}:wf_beta]: 5", f"@[uprobe:{c}:wf_gamma]: 5",
                 f"@r[uretprobe:{c}:wf_alpha]: 510", f"@r[uretprobe:{c}:wf_beta]: 545",
                 f"@r[uretprobe:{c}:wf_gamma]: 20", "@a[4]: 1", "@s: 10"):
        assert line + "\n" in out, out
    assert "other_fn" not in out.replace(f"uprobe:{c}:other_fn", "")


def test_func_and_probe_printed(progs: Progs) -> None:
    c = progs.c
    script = f'uprobe:{c}:wf_*,uprobe:{c}:other_fn {{ printf("%s %s %d\\n", probe, func, arg0); }}'
    out = compare(script, run(c, 2, 0, 500))
    assert out.count(f"uprobe:{c}:wf_beta wf_beta ") == 2
    assert f"uprobe:{c}:wf_alpha wf_alpha 1\n" in out and f"uprobe:{c}:other_fn other_fn 1\n" in out


def test_ustack_with_frame_pointers(progs: Progs, background: Callable[..., Callable[[], None]]) -> None:
    """User stacks symbolised while the process lives: exit() from the
    probe prints the map before it goes."""
    c = progs.c
    script = (f"uprobe:{c}:wf_beta {{ @[ustack] = count(); @s[ustack(1)] = count(); @n++;"
              " if (@n == 3) { exit(); } }")
    out = compare(script, background(c, 3, 0, 3000), wait_exit=True)
    assert "@s[\n    wf_beta+0\n]: 3\n" in out
    assert "@[\n    wf_beta+0\n    __libc_start_call_main+" in out


def test_cpp_names(progs: Progs, background: Callable[..., Callable[[], None]]) -> None:
    """Quoted C++ names match every overload; probe shows the mangled
    symbol, func and ustack the demangled name."""
    x = progs.cxx
    script = (f'uprobe:{x}:"ns::*" {{ printf("%s|%s|%d\\n", probe, func, arg0); }}'
              f' uretprobe:{x}:"ns::f" {{ @r[probe] = sum(retval); }}')
    out = compare(script, run(x, 3, 0, 500))
    assert out.count(f"uprobe:{x}:_ZN2ns1fEii|ns::f(int, int)|") == 3
    assert f"uprobe:{x}:_ZNK2ns1K3getEi|ns::K::get(int) const|" in out
    assert f"@r[uretprobe:{x}:_ZN2ns1fEi]: 6\n" in out and f"@r[uretprobe:{x}:_ZN2ns1fEii]: 9\n" in out
    script = (f'uprobe:{x}:"ns::K::get" {{ @[ustack(1)] = count(); @n++; if (@n == 2) {{ exit(); }} }}')
    out = compare(script, background(x, 2, 0, 3000), wait_exit=True)
    assert "@[\n    ns::K::get(int) const+0\n]: 2\n" in out


def test_library_short_name(progs: Progs) -> None:
    """uprobe:libc:FUNC attaches where the loader finds libc, and the probe
    is named after that file."""
    libc = ldconfig_path("libc.so.6")
    out = compare("uprobe:libc:getppid /pid == cpid/ { @[probe] = count(); }",
                  tool_args=["-c", f"{progs.c} 4"], wait_exit=True)
    assert out.strip() == f"@[uprobe:{libc}:getppid]: 4"


def test_address(progs: Progs) -> None:
    c = progs.c
    vaddr = nm_values(c)["wf_gamma"]
    out = compare(f"uprobe:{c}:{vaddr:#x} {{ @[probe] = count(); @a = sum(arg0); }}", run(c, 4))
    assert f"@[uprobe:{c}:{vaddr}]: 4\n" in out and "@a: 6\n" in out


def test_dash_p(progs: Progs) -> None:
    """-p PID: its executable's functions by path, libc by the file it maps
    (0.17 does not restrict uprobes to the process: the predicates do)."""
    child = subprocess.Popen([str(progs.c), "4", "2500"])
    try:
        time.sleep(0.3)
        with open(f"/proc/{child.pid}/maps") as fh:
            libc = next(line.split()[-1] for line in fh if "libc.so" in line)
        script = (f"uprobe:{progs.c}:wf_alpha /pid == $1/ {{ @a[arg0] = count(); }}"
                  " uprobe:libc:getppid /pid == $1/ { @[probe] = count(); }")
        out = compare(script, child.wait, params=[child.pid], tool_args=["-p", str(child.pid)], wait_exit=True)
        assert "@a[3]: 1\n" in out and f"@[uprobe:{libc}:getppid]: 4\n" in out
    finally:
        child.kill()
        child.wait()


def test_missing_functions_are_passed_over(progs: Progs) -> None:
    """Attach points naming functions the program lacks are skipped (pytrace
    warns), the others attach; the skipped block's map is still printed."""
    c = progs.c
    script = (f"uprobe:{c}:no_such_fn, uprobe:{c}:wf_alpha {{ @ = count(); }}"
              f" uprobe:{c}:also_missing {{ @x = count(); }} uretprobe:{c}:nothing_* {{ @y = count(); }}")
    out = compare(script, run(c, 3))
    assert out.strip().splitlines() == ["@: 3", "@x: 0", "@y: 0"]


STRUCT_SOURCE = r"""
#include <unistd.h>
struct point { int x; short y; char name[12]; unsigned flag:3; unsigned more:5; struct point *next; };
__attribute__((noinline)) int use(struct point *p) { return p->x + p->y; }
int main(void) {
    struct point b = {7, -3, "second", 5, 17, 0};
    struct point a = {10, 20, "first", 2, 9, &b};
    usleep(300000);
    return use(&a) == 30 ? 0 : 1;
}
"""


def test_struct_defined_in_the_script(tmp_path: Path) -> None:
    """A user-space struct declared in the script (bitfields, a char array,
    a pointer to the next one), read through a uprobe's argument; -O0 so
    that every field is really stored."""
    from tests.cprog import build_c
    exe = build_c(tmp_path, STRUCT_SOURCE, "u", flags=("-O0", "-no-pie"))
    script = ("struct point { int x; short y; char name[12]; unsigned int flag:3; unsigned int more:5; "
              "struct point *next; }; "
              f"uprobe:{exe}:use /pid == cpid/ {{ $p = (struct point *)arg0; printf(\"%d %d %s %d %d | %d %d %s %d\\n\", "
              "$p->x, $p->y, $p->name, $p->flag, $p->more, $p->next->x, $p->next->y, $p->next->name, "
              "$p->next->more); }")
    compare(script, tool_args=["-c", str(exe)], wait_exit=True, expect=["10 20 first 2 9 | 7 -3 second 17"])
