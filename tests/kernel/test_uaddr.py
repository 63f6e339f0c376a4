"""uaddr() on the kernel, differential with bpftrace 0.17: a non-PIE
program's global variable, its address (st_value is the runtime address
without PIE) and its value read through that address."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cprog import build_c

from .difflib_pt import BPFTRACE, have_bpftrace
from .harness import run

pytestmark = pytest.mark.kernel

C_SOURCE = r"""
volatile long pt_counter = 1234;
volatile long pt_pad[64] = {1};
__attribute__((noinline)) long pt_read(void) { return pt_counter + pt_pad[3]; }
int main(void) { return (int)pt_read() & 1; }
"""
SCRIPT = ('uprobe:{prog}:pt_read {{ printf("%lx %d %d\\n", uaddr("pt_counter"), *(int64*)uaddr("pt_counter"),'
          ' *uaddr("pt_counter")); exit(); }}')


@pytest.fixture(scope="module")
def prog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c(tmp_path_factory.mktemp("uaddr"), C_SOURCE)


def tool(name: str, script: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytrace"] if name == "pytrace" else [BPFTRACE]
    env = {k: v for k, v in os.environ.items() if k != "BPFTRACE_STRLEN"}
    return subprocess.run(cmd + ["-e", script, *args], capture_output=True, text=True, timeout=60, env=env)


def nm_address(path: Path, name: str) -> int:
    out = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True).stdout
    m = re.search(rf"^([0-9a-f]+) \w {name}$", out, re.M)
    assert m, out
    return int(m.group(1), 16)


def test_uaddr_address_and_value(prog: Path) -> None:
    from elftools.elf.elffile import ELFFile
    with open(prog, "rb") as fh:
        (sym,) = ELFFile(fh).get_section_by_name(".symtab").get_symbol_by_name("pt_counter")
        elf_addr = sym["st_value"]
    assert elf_addr == nm_address(prog, "pt_counter")
    r = tool("pytrace", SCRIPT.format(prog=prog), "-c", str(prog))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Attaching 1 probe...\n{elf_addr:x} 1234 1234\n\n\n"


@pytest.mark.oracle
@pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")
def test_uaddr_same_as_bpftrace(prog: Path) -> None:
    script = SCRIPT.format(prog=prog)
    ours, theirs = tool("pytrace", script, "-c", str(prog)), tool("bpftrace", script, "-c", str(prog))
    assert theirs.returncode == 0, theirs.stderr
    assert ours.stdout == theirs.stdout
    assert f"{nm_address(prog, 'pt_counter'):x} 1234 1234\n" in ours.stdout


@pytest.mark.oracle
@pytest.mark.skipif(not have_bpftrace(), reason="needs bpftrace 0.17")
def test_uaddr_function_refused_like_bpftrace(prog: Path) -> None:
    """bpftrace 0.17 resolves data objects only: uaddr("pt_read") fails in
    both, with the error under the argument."""
    script = f'uprobe:{prog}:pt_read {{ printf("%lx\\n", uaddr("pt_read")); exit(); }}'
    ours, theirs = tool("pytrace", script, "-c", str(prog)), tool("bpftrace", script, "-c", str(prog))
    assert theirs.returncode != 0 and f"Could not resolve symbol: {prog}:pt_read" in theirs.stderr
    col = script.index('"pt_read"') + 1
    assert ours.returncode != 0
    assert ours.stderr == (f"stdin:1:{col}: error: uaddr(): no symbol 'pt_read' in {prog}\n{script}\n"
                           + " " * (col - 1) + "^" + "~" * 8 + "\n")
    assert ours.stdout == ""


def test_uaddr_per_binary(prog: Path, tmp_path: Path) -> None:
    """Two binaries with the variable at different addresses: each uprobe
    program gets its own binary's address (bpftrace 0.17 would use the
    first binary's for both), and both read the right value."""
    other = tmp_path / "q"
    # A bigger pt_pad moves pt_counter (gcc lays .data out bottom-up here).
    build_c(tmp_path, C_SOURCE.replace("= 1234;", "= 99;").replace("pt_pad[64]", "pt_pad[80]"), "q")
    a, b = nm_address(prog, "pt_counter"), nm_address(other, "pt_counter")
    assert a != b
    script = (f'uprobe:{prog}:pt_read,uprobe:{other}:pt_read {{ printf("%lx %d\\n", uaddr("pt_counter"),'
              f' *(int64*)uaddr("pt_counter")); @n++; if (@n == 2) {{ exit(); }} }}')
    # Not -c: uprobes of a -c run only fire in the child itself.
    r = run("pytrace", script, lambda: [subprocess.run([str(p)]) for p in (prog, other)], wait_exit=True,
            timeout=30)
    assert r.rc == 0, r.stderr
    assert f"{a:x} 1234\n{b:x} 99\n" in r.stdout
