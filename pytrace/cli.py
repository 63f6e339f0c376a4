"""The command line: bpftrace's flags, exit codes and ``--emit`` stages.

``main()`` never lets a Python traceback reach the user: script errors are
rendered diagnostics (exit 1), environment problems are one sentence with a
hint (exit 1), and anything unexpected is reported as an internal error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence, TextIO

from . import __version__
from .diagnostics import Diagnostics
from .errors import EnvironmentProblem
from .source import SourceFile

EMIT_STAGES = ("ast", "source", "types", "ir", "asm", "obj")


def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pytrace",
        description="A bpftrace-compatible tracing language for Linux.",
        usage="pytrace [options] FILE [ARG...]\n       pytrace [options] -e 'program' [ARG...]",
        add_help=False,
    )
    p.add_argument("-e", dest="program", metavar="PROGRAM", help="the program to run")
    p.add_argument("-d", "--dry-run", dest="dry_run", action="store_true",
                   help="check the program and stop before anything is loaded into the kernel")
    p.add_argument("--emit", metavar="STAGE", help="print a compiler stage and exit: " + ", ".join(EMIT_STAGES)
                   + " (obj writes the BPF ELF object to -o FILE, or use --emit obj=FILE)")
    p.add_argument("--unsafe", action="store_true", help="allow unsafe functions (system, signal, override)")
    p.add_argument("-p", dest="pid", type=int, metavar="PID", help="trace this process")
    p.add_argument("-c", dest="command", metavar="CMD", help="run CMD and trace it")
    p.add_argument("-q", dest="quiet", action="store_true", help="quiet: no 'Attaching' line")
    p.add_argument("-v", dest="verbose", action="store_true", help="verbose output")
    p.add_argument("-f", dest="format", choices=("text", "json"), default="text", help="output format")
    p.add_argument("-o", dest="output", metavar="FILE", help="write output to FILE")
    p.add_argument("--fake-kernel", dest="fake_kernel", metavar="DIR", help=argparse.SUPPRESS)
    p.add_argument("-V", "--version", action="store_true", help="print the version")
    p.add_argument("-h", "--help", action="store_true", help="show this help")
    p.add_argument("args", nargs="*", metavar="FILE/ARG")
    return p


def _read_script(opts: argparse.Namespace, stderr: TextIO) -> tuple[SourceFile, list[str]] | None:
    if opts.program is not None:
        return SourceFile("stdin", opts.program), list(opts.args)
    if not opts.args:
        return None
    path, params = opts.args[0], list(opts.args[1:])
    try:
        data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read {path}: {exc.strerror}", "check the file name") from None
    name = "stdin" if path == "-" else path
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        src = SourceFile(name, data[: exc.start].decode("utf-8", "replace"))
        line, col = src.line_col(len(src.text))
        print(f"{name}:{line}:{col}: error: the script is not UTF-8 text (byte 0x{data[exc.start]:02x})",
              file=stderr)
        raise SystemExit(1)
    return SourceFile(name, text), params


def _kernel(opts: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .kernel.info import FakeKernel, LiveKernel
    if opts.fake_kernel:
        return FakeKernel(opts.fake_kernel)
    return LiveKernel()


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_arg_parser()
    try:
        opts = parser.parse_args(argv)
    except SystemExit as exc:
        return 1 if exc.code else 0
    if opts.version:
        print(f"pytrace v{__version__}", file=stdout)
        return 0
    if opts.help:
        parser.print_help(stdout)
        return 0
    try:
        return _run(opts, stdout, stderr)
    except EnvironmentProblem as exc:
        print(f"pytrace: {exc.message}", file=stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:
        return int(exc.code or 0)


def _run(opts: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from .frontend import ast, printer
    from .semantic.pipeline import CompileOptions, run

    script = _read_script(opts, stderr)
    if script is None:
        print("pytrace: no program given: pass a FILE or -e 'program'", file=stderr)
        print("hint: try: pytrace -e 'BEGIN { printf(\"hello\\n\"); exit(); }'", file=stderr)
        return 1
    source, params = script
    diags = Diagnostics()
    emit_file = None
    if opts.emit is not None:
        stage, _, emit_file = opts.emit.partition("=")
        if stage not in EMIT_STAGES:
            print(f"pytrace: unknown stage '{stage}' for --emit (choose from {', '.join(EMIT_STAGES)})",
                  file=stderr)
            return 1
        opts.emit = stage
        emit_file = emit_file or (opts.output if stage == "obj" else None)
        if stage == "obj" and not emit_file:
            print("pytrace: --emit obj needs a file: --emit obj=FILE or -o FILE", file=stderr)
            return 1
    if opts.emit in ("ast", "source"):
        from .frontend.parser import parse
        program = parse(source, diags)
        if diags.has_errors():
            print(diags.render(), file=stderr)
            return 1
        print(ast.dump(program) if opts.emit == "ast" else printer.program(program), end="\n" if
              opts.emit == "ast" else "", file=stdout)
        return 0
    options = CompileOptions(kernel=_kernel(opts), unsafe=opts.unsafe, params=params, pid=opts.pid,
                             has_cpid=opts.command is not None)
    comp = run(source, options, diags)
    if len(diags):
        print(diags.render(), file=stderr)
    if diags.has_errors():
        return 1
    if opts.emit == "types":
        assert comp.program is not None
        print(ast.dump(comp.program), file=stdout)
        for m in comp.maps.values():
            key = "" if m.key is None else f"[{m.key}]"
            print(f"map {m.name}{key}: {m.value}", file=stdout)
        return 0
    if opts.emit in ("ir", "asm", "obj"):
        return _emit_code(comp, opts.emit, emit_file, params, stdout, stderr)
    if opts.dry_run:
        n = sum(len(p.attaches) for p in comp.probes)
        if not opts.quiet:
            print(f"{source.name}: OK ({n} attach point{'s' if n != 1 else ''}, {len(comp.maps)} map"
                  f"{'s' if len(comp.maps) != 1 else ''})", file=stdout)
        return 0
    return _trace(comp, opts, params, stdout, stderr)


def _emit_code(comp, stage: str, path: str | None, params: list[str], stdout: TextIO,  # type: ignore[no-untyped-def]
               stderr: TextIO) -> int:
    from .codegen.llvm import module as M
    from .codegen.llvm.irgen import CodegenError
    layout = M.build_layout(comp)
    diags = Diagnostics()
    try:
        specs = M.plan_programs(comp, layout)
        gen = M.generate(comp, layout, specs, {}, {"params": params})
    except CodegenError as exc:
        diags.error(str(exc), exc.span, hints=exc.hints)  # type: ignore[arg-type]
        print(diags.render(), file=stderr)
        return 1
    if stage == "ir":
        print(gen.ir_text, file=stdout)
    elif stage == "asm":
        print(M.emit_assembly(gen), file=stdout)
    else:
        assert path is not None
        with open(path, "wb") as f:
            f.write(M.emit_object(gen))
    return 0


def _trace(comp, opts: argparse.Namespace, params: list[str], stdout: TextIO, stderr: TextIO) -> int:  # type: ignore[no-untyped-def]
    from .runtime.session import Child, RunOptions, Session, check_privileges
    check_privileges()
    out = stdout
    if opts.output:
        out = open(opts.output, "w")
    child = Child.spawn(opts.command) if opts.command else None
    options = RunOptions(quiet=opts.quiet, verbose=opts.verbose, json=opts.format == "json",
                         unsafe=opts.unsafe, pid=opts.pid, child=child, params=params)
    diags = Diagnostics()
    try:
        with Session(comp, options, out, stderr) as session:
            if not session.load(diags):
                print(diags.render(), file=stderr)
                return 1
            return session.run()
    finally:
        if child is not None and child.release_fd >= 0:
            import signal
            os.kill(child.pid, signal.SIGKILL)
            child.release()
        if out is not stdout:
            out.close()


def entry() -> None:
    # Deeply nested (but accepted) expressions are walked recursively by the
    # checker; the parser caps nesting, and this leaves room for that cap.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    sys.exit(main())
