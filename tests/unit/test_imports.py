"""``import "name";``: resolution order, directories, cycles, refusal of files
others could change, and diagnostics at the imported file's own lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytrace.diagnostics import Diagnostics
from pytrace.frontend import ast
from pytrace.library import stdlib_dirs
from pytrace.semantic.pipeline import CompileOptions, Compilation, run
from pytrace.source import SourceFile


def _compile(main: Path, fake_kernel, environ: dict[str, str] | None = None,  # type: ignore[no-untyped-def]
             until: str | None = None) -> tuple[Compilation, str]:
    diags = Diagnostics()
    comp = run(SourceFile(str(main), main.read_text()), CompileOptions(kernel=fake_kernel, environ=environ or {}),
               diags, until=until)
    return comp, diags.render()


def _value(comp: Compilation) -> ast.Expr:
    """The value assigned by the main script's first statement."""
    assert comp.program is not None
    return comp.program.probes[-1].body.stmts[0].value  # type: ignore[attr-defined]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_resolution_order_file_dir_then_pytrace_path_then_stdlib(tmp_path: Path, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    main = _write(tmp_path / "main" / "s.pt", 'import "which";\nBEGIN { @x = which(); }\n')
    extra = tmp_path / "extra"
    _write(extra / "which.pt", "macro which() { 2 }\n")
    local = _write(tmp_path / "main" / "which.pt", "macro which() { 1 }\n")
    comp, text = _compile(main, fake_kernel, {"PYTRACE_PATH": f"/nonexistent:{extra}"})
    assert text == "" and _value(comp) == ast.Integer(1)
    local.unlink()
    comp, text = _compile(main, fake_kernel, {"PYTRACE_PATH": f"/nonexistent:{extra}"})
    assert text == "" and _value(comp) == ast.Integer(2)


def test_pytrace_path_shadows_the_stdlib(tmp_path: Path, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    assert (stdlib_dirs()[0] / "base.pt").is_file()
    main = _write(tmp_path / "s.pt", 'import "base";\nBEGIN { @x = ppid; }\n')
    # (until macros: the fake kernel has no BTF for curtask's struct)
    comp, text = _compile(main, fake_kernel, until="macros")
    assert text == ""
    assert isinstance(_value(comp), ast.FieldAccess)  # curtask->real_parent->tgid, from the stdlib
    mine = _write(tmp_path / "lib" / "base.pt", "macro ppid() { 42 }\n")
    comp, text = _compile(main, fake_kernel, {"PYTRACE_PATH": str(mine.parent)})
    assert text == "" and _value(comp) == ast.Integer(42)


def test_relative_paths_suffixes_and_directories(tmp_path: Path, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "lib" / "a.bt", "macro a() { 10 }\n")
    _write(tmp_path / "lib" / "b.pt", "macro b() { 20 }\n")
    _write(tmp_path / "lib" / "notes.txt", "not a snippet\n")
    _write(tmp_path / "up.pt", "macro up() { 3 }\n")
    main = _write(tmp_path / "dir" / "s.pt", 'import "../lib";\nimport "../up.pt";\nBEGIN { @x = a + b + up; }\n')
    comp, text = _compile(main, fake_kernel)
    assert text == ""
    assert _value(comp) == ast.Binary("+", ast.Binary("+", ast.Integer(10), ast.Integer(20)), ast.Integer(3))


def test_missing_import_says_where_it_looked(tmp_path: Path, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    main = _write(tmp_path / "s.pt", 'import "nothere";\nBEGIN { exit(); }\n')
    _, text = _compile(main, fake_kernel, {"PYTRACE_PATH": "/opt/pt"})
    assert text == (f'{main}:1:1: error: cannot find \'nothere\' to import\nimport "nothere";\n^~~~~~~~~~~~~~~~~\n'
                    f"hint: looked for nothere, nothere.pt and nothere.bt in: {tmp_path}, /opt/pt, "
                    f"{stdlib_dirs()[0]}")


def test_cycles_are_reported_at_the_closing_import(tmp_path: Path, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "a.pt", 'import "b";\nmacro a() { 1 }\n')
    b = _write(tmp_path / "b.pt", 'import "a";\nmacro b() { 2 }\n')
    main = _write(tmp_path / "s.pt", 'import "a";\nBEGIN { @x = a + b; }\n')
    _, text = _compile(main, fake_kernel)
    assert text == f'{b}:1:1: error: import cycle: a.pt -> b.pt -> a.pt\nimport "a";\n^~~~~~~~~~~'
    self_import = _write(tmp_path / "self.pt", 'import "self";\nBEGIN { exit(); }\n')
    _, text = _compile(self_import, fake_kernel)
    assert "error: import cycle: self.pt -> self.pt" in text


def test_a_file_imported_twice_is_merged_once(tmp_path: Path, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "common.pt", "macro c() { 5 }\n")
    _write(tmp_path / "x.pt", 'import "common";\n')
    _write(tmp_path / "y.pt", 'import "common";\n')
    main = _write(tmp_path / "s.pt", 'import "x";\nimport "y";\nBEGIN { @x = c; }\n')
    comp, text = _compile(main, fake_kernel)
    assert text == "" and _value(comp) == ast.Integer(5)


def test_the_importing_files_macro_overrides_an_imported_one(tmp_path: Path, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "lib.pt", "macro v() { 1 }\nmacro w() { v() * 10 }\n")
    main = _write(tmp_path / "s.pt", 'import "lib";\nmacro v() { 7 }\nBEGIN { @x = w; }\n')
    comp, text = _compile(main, fake_kernel)
    assert text == "" and _value(comp) == ast.Binary("*", ast.Integer(7), ast.Integer(10))


def test_imported_probes_run_too(tmp_path: Path, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "lib.pt", "END { @ended = 1; }\n")
    main = _write(tmp_path / "s.pt", 'import "lib";\nBEGIN { @x = 1; }\n')
    comp, text = _compile(main, fake_kernel)
    assert text == ""
    assert [p.attaches[0].provider for p in comp.probes] == ["END", "BEGIN"]


def test_errors_inside_an_imported_file_point_at_its_own_lines(tmp_path: Path, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    lib = _write(tmp_path / "lib.pt", '// helpers\n\nmacro bad(x) {\n  x + "s"\n}\nmacro broken( { }\n')
    main = _write(tmp_path / "s.pt", 'import "lib";\nBEGIN { @x = bad(1); }\n')
    _, text = _compile(main, fake_kernel)
    assert text.startswith(f"{lib}:6:")  # the syntax error, in lib.pt's own line 6
    _write(tmp_path / "lib.pt", '// helpers\n\nmacro bad(x) {\n  x + "s"\n}\n')
    _, text = _compile(main, fake_kernel)
    assert text == f"{lib}:4:3: error: '+' cannot be applied to int64 and string[2]\n  x + \"s\"\n  ^~~~~~~"


def test_config_belongs_to_the_main_script(tmp_path: Path, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    lib = _write(tmp_path / "lib.pt", "config = { max_strlen = 32 }\n")
    main = _write(tmp_path / "s.pt", 'import "lib";\nBEGIN { exit(); }\n')
    _, text = _compile(main, fake_kernel)
    assert text.startswith(f"{lib}:1:1: error: config belongs in the main script, not in an imported file")


@pytest.mark.parametrize("what", ["file", "directory"])
def test_world_writable_snippets_are_refused(tmp_path: Path, fake_kernel, what: str) -> None:  # type: ignore[no-untyped-def]
    lib = _write(tmp_path / "shared" / "lib.pt", "macro v() { 1 }\n")
    main = _write(tmp_path / "s.pt", 'import "shared/lib";\nBEGIN { @x = v; }\n')
    target = lib if what == "file" else lib.parent
    target.chmod(0o777 if what == "directory" else 0o666)
    _, text = _compile(main, fake_kernel)
    reason = f"{lib} is writable by every user" if what == "file" else f"its directory {lib.parent} is writable by every user"
    assert text == (f"{main}:1:1: error: refusing to import 'shared/lib': {reason}\n"
                    f'import "shared/lib";\n^~~~~~~~~~~~~~~~~~~~\n'
                    "hint: pytrace runs as root: make it writable only by its owner (chmod go-w), "
                    "in a directory others cannot write")
    if what == "directory":
        # The sticky bit (as /tmp has) lets only a file's owner replace it.
        lib.parent.chmod(0o1777)
        _, text = _compile(main, fake_kernel)
        assert text == ""


def test_a_snippet_owned_by_another_user_is_refused(tmp_path: Path, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.fail("this test changes a file's owner: run the suite as root")
    lib = _write(tmp_path / "lib.pt", "macro v() { 1 }\n")
    os.chown(lib, 65534, 65534)
    main = _write(tmp_path / "s.pt", 'import "lib";\nBEGIN { @x = v; }\n')
    _, text = _compile(main, fake_kernel)
    assert f"error: refusing to import 'lib': {lib} belongs to another user (uid 65534)" in text


def test_base_macros_need_no_import(tmp_path: Path, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    main = _write(tmp_path / "s.pt", "BEGIN { @x = ppid; }\n")
    comp, text = _compile(main, fake_kernel, until="macros")
    assert text == "" and isinstance(_value(comp), ast.FieldAccess)
    # A script's own macro of that name wins, and nothing is read for it.
    main = _write(tmp_path / "s.pt", "macro ppid() { 3 }\nBEGIN { @x = ppid; }\n")
    comp, text = _compile(main, fake_kernel, until="macros")
    assert text == "" and _value(comp) == ast.Integer(3)


def test_preludes_come_before_the_script_with_their_own_locations(fake_kernel) -> None:  # type: ignore[no-untyped-def]
    """The REPL's definition lines: sources of their own before the script;
    a later one replaces an earlier macro, the script's own replaces both."""
    first = SourceFile("definition 1", "macro twice(x) { x * 2 }\nmacro bad(x) { x + \"s\" }")
    second = SourceFile("definition 2", "macro twice(x) { x * 20 }")
    diags = Diagnostics()
    comp = run(SourceFile("stdin", "BEGIN { @x = twice(1); }"),
               CompileOptions(kernel=fake_kernel, environ={}, preludes=[first, second]), diags)
    assert diags.render() == "" and _value(comp) == ast.Binary("*", ast.Integer(1), ast.Integer(20))
    diags = Diagnostics()
    run(SourceFile("stdin", "BEGIN { @x = bad(1); }"), CompileOptions(kernel=fake_kernel, environ={}, preludes=[first]),
        diags)
    assert diags.render().startswith("definition 1:2:16: error: '+' cannot be applied to int64 and string[2]")
