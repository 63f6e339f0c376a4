"""kprobe/kretprobe wildcard expansion (pytrace.providers.kprobe) against a
made-up available_filter_functions: one attach point per function, modules
filtered by ``kprobe:module:func``, a warning when nothing matches, and no
expansion at all on a kernel without kprobes (attaching says what to use).
The same expansion is exercised on a real kprobe kernel by tests/guest."""

from __future__ import annotations

from pathlib import Path

from pytrace.kernel.info import FakeKernel, parse_kernel_functions, read_kernel_functions
from tests.conftest import DATA, compile_text

FUNCS = ["vfs_read", "vfs_readv", "vfs_write", "ksys_read", "vfs_readlink",
         "vfs_read",                      # a static duplicate: one attach point
         "ovl_read_iter [overlay]", "ovl_write_iter [overlay]", "v9fs_file_read_iter [9p]",
         "p9_client_read [9pnet]"]


def targets(text: str, functions: list[str] | None) -> tuple[list[str], str]:
    comp, diags = compile_text(text, FakeKernel(DATA / "tracefs", functions=functions))
    return [a.target for p in comp.probes for a in p.attaches], diags.render()


def test_wildcard_expands_to_each_function() -> None:
    got, errors = targets("kprobe:vfs_rea* { @ = count(); }", FUNCS)
    assert got == ["kprobe:vfs_read", "kprobe:vfs_readlink", "kprobe:vfs_readv"]
    assert errors == ""


def test_kretprobe_wildcard() -> None:
    got, _ = targets("kretprobe:vfs_write* { @ = count(); }", FUNCS)
    assert got == ["kretprobe:vfs_write"]


def test_module_filter() -> None:
    got, _ = targets("kprobe:overlay:ovl_* { @ = count(); }", FUNCS)
    assert got == ["kprobe:overlay:ovl_read_iter", "kprobe:overlay:ovl_write_iter"]
    got, _ = targets("kprobe:9p*:*read* { @ = count(); }", FUNCS)
    assert got == ["kprobe:9pnet:p9_client_read", "kprobe:9p:v9fs_file_read_iter"]


def test_no_match_is_skipped_with_a_warning() -> None:
    # bpftrace 0.17 skips such a probe (dcsnoop's lookup_fast.constprop.*).
    got, text = targets("kprobe:nosuch_* { @ = count(); } kprobe:vfs_read { @ = count(); }", FUNCS)
    assert got == ["kprobe:vfs_read"]
    assert "stdin:1:1: warning: no kernel functions match 'nosuch_*': this probe is skipped" in text
    assert "error" not in text


def test_offset_on_a_wildcard_is_a_diagnostic() -> None:
    got, errors = targets("kprobe:vfs_rea*+4 { @ = count(); }", FUNCS)
    assert got == [] and "an offset needs a single function" in errors


def test_without_kprobes_the_wildcard_is_kept() -> None:
    got, _ = targets("kprobe:vfs_rea* { @ = count(); }", None)
    assert got == ["kprobe:vfs_rea*"]


def test_parse_and_blacklist(tmp_path: Path) -> None:
    assert parse_kernel_functions(["a", "b [m]", "a", "", "c [m]", "a.part.0", "e.part.0.isra.0", "d.isra.0 [m]"],
                                  {"c"}) == [("a", None), ("b", "m"), ("d.isra.0", "m")]
    (tmp_path / "available_filter_functions").write_text("x\ny [mod]\n")
    assert read_kernel_functions(str(tmp_path), pmu=str(tmp_path)) == [("x", None), ("y", "mod")]
    assert read_kernel_functions(str(tmp_path), pmu=str(tmp_path / "nope")) is None
