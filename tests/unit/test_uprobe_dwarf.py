"""Function parameters from DWARF (pytrace.kernel.dwarf) for ``-lv``: the
expected lines are what bpftrace 0.17 printed for these very sources
(``bpftrace -lv 'uprobe:./types:t*'``); tests/kernel/test_uprobe_list.py
compares the two tools live."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pytrace.kernel.dwarf import FunctionParams, dwarf_file
from pytrace.kernel.elfsyms import load_symbol_table

pytestmark = pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc")

TYPES_C = r"""
#include <stdbool.h>
#include <stddef.h>
typedef unsigned int myu;
enum color { RED, GREEN };
union un { int a; float b; };
struct st { int a; };
typedef struct { int z; } anon_t;
int t1(volatile int a, char *restrict b, int arr[4], int (*fp)(int), myu c, enum color e, union un u,
       struct st s, anon_t an, bool bo) { return a + (b != 0) + arr[0] + (fp != 0) + c + e + u.a + s.a + an.z + bo; }
int t2(char *const p, const char **pp, const char *const *cpp, void *v, const void *cv, unsigned char uc,
       long long ll, float f, double d, size_t sz)
{ return (p != 0) + (pp != 0) + (cpp != 0) + (v != 0) + (cv != 0) + uc + ll + f + d + sz; }
int t3(const struct st *cs, struct st *const sc, const volatile int cvi, __int128 i128, _Complex double cd,
       int x[2][3], struct { int q; } *ap, ...)
{ return cs->a + sc->a + cvi + (int)i128 + (int)__real__ cd + x[0][0] + ap->q; }
void t4(void) {}
int t5(int, int b);
int t5(int a, int b) { return a + b; }
const int t6(const myu *const p) { return *p; }
int main(void) { return 0; }
"""

# bpftrace 0.17's -lv output for the functions above.
EXPECTED = {
    "t1": ["<unknown type> a", "<unknown type> b", "int* arr", "<unknown type>* fp", "myu c", "enum color e",
           "union un u", "struct st s", "anon_t an", "_Bool bo"],
    "t2": ["char* const p", "const char** pp", "const char* const* cpp", "void* v", "const <unknown type>* cv",
           "unsigned char uc", "long long int ll", "float f", "double d", "size_t sz"],
    "t3": ["const struct st* cs", "struct st* const sc", "<unknown type> cvi", "__int128 i128",
           "complex double cd", "<unknown type>* x", "struct <anonymous>* ap"],
    "t4": [],
    "t5": ["int a", "int b"],
    "t6": ["const myu* const p"],
    "main": [],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("dwarf")
    (d / "types.c").write_text(TYPES_C)
    for name, flags in (("types", ["-g"]), ("types-nodbg", [])):
        subprocess.run(["gcc", "-O0", "-w", *flags, "-o", str(d / name), str(d / "types.c")], check=True)
    return d


def test_parameters_as_bpftrace_spells_them(built: Path) -> None:
    path = str(built / "types")
    table = load_symbol_table(path)
    params = FunctionParams(path)
    assert params.source == path
    for name, expected in EXPECTED.items():
        sym = table.lookup(name)
        assert sym is not None
        assert params.params(name, sym.vaddr) == expected, name
        assert params.params(name) == expected, name  # found by name alone too
    assert params.params("no_such_function") == []
    assert params.params("_init", table.lookup("_init").vaddr) == []  # type: ignore[union-attr]
    params.close()


def test_separate_debug_file(built: Path) -> None:
    """A stripped binary's DWARF is in the file its .gnu_debuglink names."""
    d = built / "split"
    d.mkdir()
    binary, debug = d / "types", d / "types.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(built / "types"), str(debug)], check=True)
    subprocess.run(["strip", "--strip-debug", "-o", str(binary), str(built / "types")], check=True)
    subprocess.run(["objcopy", "--remove-section=.note.gnu.build-id", str(binary)], check=True)
    subprocess.run(["objcopy", f"--add-gnu-debuglink={debug}", str(binary)], check=True, cwd=d)
    assert dwarf_file(str(binary)) == str(debug)
    sym = load_symbol_table(str(binary)).lookup("t2")
    assert sym is not None
    assert FunctionParams(str(binary)).params("t2", sym.vaddr) == EXPECTED["t2"]


def test_no_dwarf(built: Path, tmp_path: Path) -> None:
    params = FunctionParams(str(built / "types-nodbg"))
    assert params.source is None and params.params("t1") == []
    text = tmp_path / "x"
    text.write_text("not ELF")
    assert dwarf_file(str(text)) is None and FunctionParams(str(text)).params("f") == []
