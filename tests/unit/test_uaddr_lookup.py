"""uaddr()'s symbol lookup (elfsyms.find_symbol) against nm and pyelftools,
and the two code generator diagnostics of uaddr(), with exact texts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytrace.bpf.elf import STT_FUNC, STT_OBJECT
from pytrace.codegen.llvm.calls import _uaddr
from pytrace.codegen.llvm.irgen import CodegenError
from pytrace.frontend import ast
from pytrace.kernel.addresses import default_resolve
from pytrace.kernel.elfsyms import find_symbol
from pytrace.semantic import types as T
from tests.cprog import build_c

C_SOURCE = r"""
volatile long pt_counter = 1234;
volatile short pt_short;
static volatile int pt_static = 7;
__attribute__((noinline)) long pt_read(void) { return pt_counter + pt_static + pt_short; }
int main(void) { return (int)pt_read() & 1; }
"""


@pytest.fixture(scope="module")
def prog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c(tmp_path_factory.mktemp("uaddr"), C_SOURCE)


def nm_symbols(path: Path) -> dict[str, tuple[int, str]]:
    out = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True).stdout
    return {f[2]: (int(f[0], 16), f[1]) for f in (ln.split() for ln in out.splitlines()) if len(f) == 3}


def test_objects_match_nm_and_pyelftools(prog: Path) -> None:
    from elftools.elf.elffile import ELFFile
    nm = nm_symbols(prog)
    with open(prog, "rb") as fh:
        symtab = ELFFile(fh).get_section_by_name(".symtab")
        sizes = {s.name: s["st_size"] for s in symtab.iter_symbols()}
    for name in ("pt_counter", "pt_short", "pt_static"):
        sym = find_symbol(str(prog), name)
        assert sym is not None, name
        assert (sym.vaddr, sym.size) == (nm[name][0], sizes[name]), name
    assert nm["pt_short"][1] == "B"  # .bss: in no file-backed part of a segment
    assert find_symbol(str(prog), "pt_short").file_offset is None  # type: ignore[union-attr]
    assert find_symbol(str(prog), "pt_counter").size == 8  # type: ignore[union-attr]


def test_functions_only_when_asked(prog: Path) -> None:
    # bpftrace 0.17's uaddr("pt_read") fails: it looks at STT_OBJECT only.
    assert find_symbol(str(prog), "pt_read") is None
    sym = find_symbol(str(prog), "pt_read", frozenset((STT_FUNC, STT_OBJECT)))
    assert sym is not None and sym.vaddr == nm_symbols(prog)["pt_read"][0]


def test_exact_names_only(prog: Path) -> None:
    assert find_symbol(str(prog), "pt_count") is None  # a prefix is not a match
    assert find_symbol(str(prog), "pt_counter2") is None
    assert find_symbol(str(prog), "") is None


def test_dynsym_of_a_stripped_library() -> None:
    # libc has no .symtab: its exported data objects come from .dynsym.
    from pytrace.kernel.elfsyms import resolve_library
    libc = resolve_library("libc.so.6")
    assert libc is not None
    sym = find_symbol(libc, "environ", debuginfo=False)
    assert sym is not None and sym.size == 8


def test_default_resolve(prog: Path) -> None:
    assert default_resolve("uaddr", "pt_counter", str(prog)) == nm_symbols(prog)["pt_counter"][0]
    assert default_resolve("uaddr", "nope", str(prog)) is None
    assert default_resolve("uaddr", "pt_counter", None) is None
    assert default_resolve("uaddr", "pt_counter", "/etc/hostname") is None  # not ELF: no symbol, no crash
    assert default_resolve("uaddr", "pt_counter", "/nonexistent") is None


def _lower(binaries: tuple[str, ...], resolve: object = None) -> CodegenError:
    """Lower uaddr("pt_counter") with a stand-in Lowerer; return its error."""
    arg = ast.String("pt_counter", span=SimpleNamespace(start=6, end=18))
    call = ast.Call("uaddr", [arg])
    lw = SimpleNamespace(binaries=binaries, options={"resolve_symbol": resolve} if resolve else {})
    with pytest.raises(CodegenError) as err:
        _uaddr(lw, call, T.PointerType(T.U64, T.AddrSpace.USER))  # type: ignore[arg-type]
    assert err.value.span is arg.span  # points at the argument, not the call
    return err.value


def test_diagnostic_not_a_uprobe() -> None:
    assert str(_lower(())) == \
        "uaddr() needs a uprobe or usdt probe: it looks the symbol up in the probe's binary"


def test_diagnostic_missing_symbol() -> None:
    assert str(_lower(("/x/bin",), lambda kind, name, binary: None)) == "uaddr(): no symbol 'pt_counter' in /x/bin"


def test_missing_symbol_end_to_end(prog: Path) -> None:
    """The whole message as printed, through the CLI (--emit needs no root)."""
    script = f'uprobe:{prog}:pt_read {{ @a = uaddr("pt_read"); }}'
    r = subprocess.run([sys.executable, "-m", "pytrace", "--emit", "ir", "-e", script],
                       capture_output=True, text=True, timeout=60)
    col = script.index('"pt_read")') + 1
    assert r.returncode != 0
    assert r.stderr == (f"stdin:1:{col}: error: uaddr(): no symbol 'pt_read' in {prog}\n{script}\n"
                        + " " * (col - 1) + "^" + "~" * 8 + "\n")


def test_emit_ir_has_the_address(prog: Path) -> None:
    script = f'uprobe:{prog}:pt_read {{ @a = uaddr("pt_counter"); }}'
    r = subprocess.run([sys.executable, "-m", "pytrace", "--emit", "ir", "-e", script],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"i64 {nm_symbols(prog)['pt_counter'][0]}" in r.stdout
