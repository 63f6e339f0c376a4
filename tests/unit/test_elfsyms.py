"""ELF function symbols, C++ demangling and library resolution
(pytrace.kernel.elfsyms, pytrace.kernel.demangle), checked against
binutils (nm, readelf, c++filt) and ldconfig on programs built here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytrace.kernel.demangle import Demangler, demangle, strip_parameters
from pytrace.kernel.elfsyms import (ElfHeaders, ElfSymbols, load_symbol_table, parse_ld_so_cache,
                                    resolve_library)
from pytrace.kernel.libraries import strip_root

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

CXX_SRC = r"""
#include <cstdio>
namespace geo {
struct Point { int x, y; int norm() const; };
__attribute__((noinline)) int Point::norm() const { return x * x + y * y; }
__attribute__((noinline)) int add(int a, int b) { return a + b; }
__attribute__((noinline)) double add(double a, double b) { return a + b; }
template <typename T> __attribute__((noinline)) T twice(T v) { return v + v; }
template int twice<int>(int);
}
extern "C" __attribute__((noinline)) int plain_c(int v) { return v * 3; }
static __attribute__((noinline)) int helper_static(int v) { return v - 1; }
int main(int argc, char **) {
    geo::Point p{argc, 2};
    std::printf("%d\n", p.norm() + geo::add(argc, 1) + (int)geo::add(1.0, 2.0)
                + geo::twice(argc) + plain_c(argc) + helper_static(argc));
    return 0;
}
"""


@pytest.fixture(scope="session")
def cxx_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("elfsyms")
    (tmp / "prog.cc").write_text(CXX_SRC)
    out = tmp / "prog"
    subprocess.run(["g++", "-O1", "-g", "-o", str(out), str(tmp / "prog.cc")], check=True,
                   capture_output=True)
    return out


@pytest.fixture(scope="session")
def stripped_bin(cxx_bin: Path) -> Path:
    """``prog`` without .symtab, pointing at prog.debug by .gnu_debuglink."""
    d = cxx_bin.parent / "stripped"
    d.mkdir()
    debug, out = d / "prog.debug", d / "prog"
    subprocess.run(["objcopy", "--only-keep-debug", str(cxx_bin), str(debug)], check=True)
    subprocess.run(["strip", "--strip-all", "-o", str(out), str(cxx_bin)], check=True)
    subprocess.run(["objcopy", "--remove-section=.note.gnu.build-id", str(out)], check=True)
    subprocess.run(["objcopy", f"--add-gnu-debuglink={debug}", str(out)], check=True, cwd=d)
    return out


def readelf_functions(path: Path, dynamic: bool = False) -> list[tuple[str, int, int]]:
    """(name, value, size) of defined FUNC/IFUNC symbols per ``readelf -sW``."""
    flag = "--dyn-syms" if dynamic else "--syms"
    out = subprocess.run(["readelf", "-W", flag, str(path)], capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] in ("FUNC", "IFUNC") and parts[6] != "UND":
            value = int(parts[1], 16)
            if value:
                rows.append((parts[7], value, int(parts[2], 0)))
    return rows


def section_of(path: Path, vaddr: int) -> tuple[int, int]:
    """(address, offset) of the allocated section holding ``vaddr``."""
    out = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True).stdout
    for m in re.finditer(r"\]\s+\S+\s+\S+\s+([0-9a-f]{16})\s+([0-9a-f]+)\s+([0-9a-f]+)", out):
        addr, off, size = (int(x, 16) for x in m.groups())
        if addr and addr <= vaddr < addr + size:
            return addr, off
    raise AssertionError(f"no section holds {vaddr:#x}")


def test_symbols_match_readelf_and_nm(cxx_bin: Path) -> None:
    table = load_symbol_table(str(cxx_bin))
    expected = readelf_functions(cxx_bin)
    assert {n for n, _, _ in expected} == set(table.functions())
    nm = subprocess.run(["nm", "--defined-only", str(cxx_bin)], capture_output=True, text=True).stdout
    nm_text = {p[2]: int(p[0], 16) for p in (l.split() for l in nm.splitlines())
               if len(p) == 3 and p[1] in "TtWi"}
    for name, value, size in expected:
        sym = table.lookup(name)
        assert sym is not None and (sym.vaddr, sym.size) == (value, size), name
        assert nm_text[name] == value
        addr, off = section_of(cxx_bin, value)
        assert sym.file_offset == value - addr + off
    assert table.lookup("no_such_function") is None


def test_cpp_match_by_demangled_name(cxx_bin: Path) -> None:
    table = load_symbol_table(str(cxx_bin))
    names = {s.name for s in table.match("geo::add")}
    assert names == {"_ZN3geo3addEii", "_ZN3geo3addEdd"}  # both overloads, no parameters given
    assert [s.name for s in table.match("geo::add(int, int)")] == ["_ZN3geo3addEii"]
    assert [s.name for s in table.match("geo::Point::*")] == ["_ZNK3geo5Point4normEv"]
    # A template's demangled name starts with its return type: "int geo::twice<int>(int)".
    assert [s.name for s in table.match("*geo::twice<int>")] == ["_ZN3geo5twiceIiEET_S1_"]
    assert [s.name for s in table.match("plain_c")] == ["plain_c"]
    assert [s.name for s in table.match("plain_?")] == ["plain_c"]
    assert table.match("Plain_c") == []  # case-sensitive
    assert table.lookup("_ZN3geo3addEii") == table.match("_ZN3geo3addEii")[0]


def test_symbolize(cxx_bin: Path) -> None:
    table = load_symbol_table(str(cxx_bin))
    sym = table.lookup("plain_c")
    assert sym is not None and sym.size > 2
    assert table.symbolize(sym.vaddr) == ("plain_c", 0)
    assert table.symbolize(sym.vaddr + 2) == ("plain_c", 2)
    first = min(table.lookup(n).vaddr for n in table.functions())  # type: ignore[union-attr]
    assert table.symbolize(first - 1) is None


def test_demangle_agrees_with_cxxfilt(cxx_bin: Path) -> None:
    mangled = [n for n in load_symbol_table(str(cxx_bin)).functions() if n.startswith("_Z")]
    assert len(mangled) >= 5
    out = subprocess.run(["c++filt"], input="\n".join(mangled), capture_output=True, text=True).stdout
    assert [demangle(n) for n in mangled] == out.splitlines()


def test_demangle_edge_cases() -> None:
    assert demangle("main") is None
    assert demangle("i") is None  # __cxa_demangle alone would say "int"
    assert demangle("_Zgarbage") is None
    assert demangle("_ZN3foo3barEi.cold") == "foo::bar(int) [clone .cold]"
    assert demangle("_ZNSt6vectorIiSaIiEE9push_backERKi@@GLIBCXX_3.4") == \
        "std::vector<int, std::allocator<int> >::push_back(int const&)@@GLIBCXX_3.4"
    assert Demangler("libdoes-not-exist.so.9")("_ZN3foo3barEi") is None
    assert strip_parameters("ns::f(int) const") == "ns::f"
    assert strip_parameters("std::function<void ()>::operator()() const") == \
        "std::function<void ()>::operator()"
    assert strip_parameters("f(std::function<void (int)>)") == "f"
    assert strip_parameters("plain") == "plain"


def test_debuglink_symbols(cxx_bin: Path, stripped_bin: Path) -> None:
    own = {n for n, _, _ in readelf_functions(stripped_bin) + readelf_functions(stripped_bin, True)}
    assert "plain_c" not in own and not any("helper_static" in n for n in own)
    table = load_symbol_table(str(stripped_bin))
    full = load_symbol_table(str(cxx_bin))
    for name in ("plain_c", "_ZL13helper_statici", "_ZN3geo3addEii"):
        assert table.lookup(name) == full.lookup(name)
    assert load_symbol_table(str(stripped_bin), debuginfo=False).lookup("plain_c") is None


def test_debuglink_crc_mismatch_is_ignored(stripped_bin: Path, tmp_path: Path) -> None:
    copy = tmp_path / "prog"
    shutil.copy(stripped_bin, copy)
    (tmp_path / "prog.debug").write_bytes(b"\x7fELF not the debug file")
    assert load_symbol_table(str(copy)).lookup("plain_c") is None


def test_cache_revalidates_on_change(cxx_bin: Path, tmp_path: Path) -> None:
    copy = tmp_path / "prog"
    shutil.copy(cxx_bin, copy)
    cache = ElfSymbols()
    first = cache.load(str(copy))
    assert cache.load(str(copy)) is first
    st = copy.stat()
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert cache.load(str(copy)) is not first


def test_libc_symbols_fast_and_versioned() -> None:
    libc = resolve_library("libc")
    assert libc is not None
    t = time.perf_counter()
    table = load_symbol_table(libc)
    elapsed = time.perf_counter() - t
    # ~3 ms of CPU without debug symbols, ~12 ms with libc6-dbg's 10k more;
    # the bound only catches a regression to pyelftools-like costs (~1 s).
    assert elapsed < 0.25
    dyn = readelf_functions(Path(libc), dynamic=True)
    malloc = [v for n, v, _ in dyn if n.split("@")[0] == "malloc"]
    assert table.lookup("malloc").vaddr == malloc[0]  # type: ignore[union-attr]
    # memcpy has two versions; lookup must pick the default (@@) one, as the linker does.
    default = [v for n, v, _ in dyn if n.startswith("memcpy@@")]
    if default:
        assert table.lookup("memcpy").vaddr == default[0]  # type: ignore[union-attr]
    build_id = re.search(r"Build ID: ([0-9a-f]+)", subprocess.run(
        ["readelf", "-n", libc], capture_output=True, text=True).stdout)
    assert ElfHeaders.open(libc).build_id() == (build_id[1] if build_id else None)


def test_ld_so_cache_matches_ldconfig() -> None:
    if not os.path.exists("/etc/ld.so.cache"):
        pytest.skip("no /etc/ld.so.cache")
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    expected = [(m[1], m[2]) for m in re.finditer(r"^\s+(\S+) \(libc6,x86-64[^)]*\) => (\S+)$",
                                                  out, re.M)]
    assert parse_ld_so_cache(Path("/etc/ld.so.cache").read_bytes()) == expected
    assert parse_ld_so_cache(b"not a cache") == []


def test_resolve_library_names() -> None:
    libc = resolve_library("libc")
    assert libc is not None and os.path.basename(libc) == "libc.so.6"
    assert resolve_library("libc.so.6") == libc
    assert resolve_library("libc.so") == libc  # not the linker script of that name
    pthread = resolve_library("libpthread")
    assert pthread is not None and os.path.basename(pthread) == "libpthread.so.0"
    bash = resolve_library("bash")
    assert bash is not None and os.path.basename(bash) == "bash" and os.access(bash, os.X_OK)
    assert resolve_library("/bin/sh") == "/bin/sh"
    assert resolve_library("/no/such/file") is None
    assert resolve_library("libdefinitely-not-here") is None
    assert resolve_library("") is None


def test_resolve_libssl_not_nss_libssl3() -> None:
    cache = parse_ld_so_cache(Path("/etc/ld.so.cache").read_bytes()) \
        if os.path.exists("/etc/ld.so.cache") else []
    if not any(so.startswith("libssl.so.") for so, _ in cache):
        pytest.skip("OpenSSL's libssl is not installed")
    ssl = resolve_library("libssl", cache=cache)
    assert ssl is not None and re.fullmatch(r"libssl\.so\.\d+.*", os.path.basename(ssl))


def test_resolve_without_ld_so_cache() -> None:
    """No cache: the standard directories, an ELF file (libc.so is text)."""
    libc = resolve_library("libc", cache=[])
    assert libc is not None and os.path.basename(libc) == "libc.so.6"
    assert resolve_library("libpthread", cache=[]).endswith("libpthread.so.0")  # type: ignore[union-attr]


def test_resolve_for_a_process() -> None:
    pid = os.getpid()
    libc = resolve_library("libc", pid=pid)
    # What this process really mapped, seen through its root.
    assert libc is not None and libc.startswith(f"/proc/{pid}/root/")
    assert os.path.samefile(libc, resolve_library("libc"))  # type: ignore[arg-type]
    assert resolve_library("/bin/sh", pid=pid) == f"/proc/{pid}/root/bin/sh"
    assert ElfSymbols().resolve_library("libc") == resolve_library("libc")
    # /proc paths are the kernel's own, the same from every root.
    assert resolve_library(f"/proc/{pid}/exe", pid=pid) == f"/proc/{pid}/exe"
    assert strip_root(libc) == libc[len(f"/proc/{pid}/root"):]
    assert strip_root("/usr/lib/x.so") == "/usr/lib/x.so"


def test_containing_function(cxx_bin: Path) -> None:
    """The function an address falls in, with its start, size and file
    offset; nothing past a function's end, nor inside one of unknown size."""
    table = load_symbol_table(str(cxx_bin))
    sym = table.lookup("plain_c")
    assert sym is not None and sym.size > 2
    assert table.containing(sym.vaddr + 2) == sym
    assert table.containing(sym.vaddr) == sym
    # crt code (_init, deregister_tm_clones...) has size 0: symbolize()
    # still names an address after it (for stacks), containing() does not.
    sized0 = [s for n in table.functions() if (s := table.lookup(n)) is not None and s.size == 0
              and table.symbolize(s.vaddr + 1) == (s.name, 1)]
    assert sized0
    assert all(table.containing(s.vaddr + 1) is None and table.containing(s.vaddr) == s for s in sized0)
    assert table.containing(0) is None


def test_errors_are_bpf_elf_errors(tmp_path: Path) -> None:
    """Callers (kernel/addresses.py) catch pytrace.bpf.elf.ElfError."""
    from pytrace.bpf.elf import ElfError
    bad = tmp_path / "text"
    bad.write_text("not an ELF file\n")
    with pytest.raises(ElfError, match="not an ELF file"):
        ElfHeaders.open(str(bad))


def test_listing_imports_no_bpf_layer() -> None:
    """Reading symbols (pytrace -l 'uprobe:...') does not import the bpf(2)
    layer: start-up cost only a run needs."""
    code = ("import sys; from pytrace.kernel.elfsyms import load_symbol_table, resolve_library; "
            "load_symbol_table(resolve_library('libc')); "
            "print(sorted(m for m in sys.modules if m.startswith('pytrace.bpf')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "[]"
