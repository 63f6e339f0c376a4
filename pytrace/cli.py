"""The command line: bpftrace's flags, exit codes and ``--emit`` stages.

``main()`` never lets a Python traceback reach the user: script errors are
rendered diagnostics (exit 1), environment problems are one line starting
``pytrace:`` (sometimes followed by a ``hint:`` line; exit 1), and anything
unexpected is reported as an internal error (exit 1; set PYTRACE_DEBUG=1 for
the traceback).  A traced script exits with 0, or with N after ``exit(N)``.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import shlex
import shutil
import signal
import sys
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Sequence, TextIO

from . import __version__
from .diagnostics import Diagnostics
from .errors import EnvironmentProblem
from .source import SourceFile

if TYPE_CHECKING:
    from .library import Tool

EMIT_STAGES = ("ast", "source", "types", "ir", "asm", "obj")
FORMATS = ("text", "json")
BUFFERING = ("line", "full", "none")


class UsageError(Exception):
    """A command-line mistake: one sentence, exit 1."""


class Terminated(BaseException):
    """SIGTERM before the session installed its own handler: unwinds like Ctrl-C."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # Our type functions write whole sentences that name their flag.
        m = re.match(r"argument (-[a-zA-Z]|--[\w-]+)(?:/--?[\w-]+)*: (.*)", message, re.DOTALL)
        if m and m.group(2).startswith(("invalid ", "the ", "a ")):
            message = m.group(2)
        elif m and m.group(2) == "expected one argument":
            message = f"option {m.group(1)} needs a value"
        raise UsageError(message)


def _pid(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = -1
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid PID '{text}' for -p: a positive process id is needed")
    return value


def _format(text: str) -> str:
    if text not in FORMATS:
        raise argparse.ArgumentTypeError(f"invalid output format '{text}' for -f: choose text or json")
    return text


def _buffering(text: str) -> str:
    if text not in BUFFERING:
        raise argparse.ArgumentTypeError(f"invalid buffering mode '{text}' for -B: choose line, full or none")
    return text


def build_arg_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pytrace",
        description="A bpftrace-compatible tracing language for Linux.",
        usage="pytrace [options] FILE [ARG...]\n"
              "       pytrace [options] -e 'program' [ARG...]\n"
              "       pytrace [repl]    (the interactive REPL, on a terminal)\n"
              "       pytrace tools | pytrace tool NAME [ARG...]\n"
              "       pytrace -l [GLOB]\n"
              "       pytrace --info",
        add_help=False,
    )
    p.add_argument("-e", dest="program", metavar="PROGRAM", help="the program to run")
    p.add_argument("-l", dest="list", action="store_true",
                   help="list probes (all, those matching GLOB, or those of the program); -lv adds arguments")
    p.add_argument("-d", "--dry-run", dest="dry_run", action="store_true",
                   help="check the program and stop before anything is loaded into the kernel")
    p.add_argument("--emit", metavar="STAGE", help="print a compiler stage and exit: " + ", ".join(EMIT_STAGES)
                   + " (obj writes the BPF ELF object to -o FILE, or use --emit obj=FILE)")
    p.add_argument("--unsafe", action="store_true", help="allow unsafe functions (system, signal, override)")
    p.add_argument("-p", dest="pid", type=_pid, metavar="PID", help="trace this process")
    p.add_argument("-c", dest="command", metavar="CMD", help="run CMD, trace it, stop when it exits (cpid)")
    p.add_argument("-q", dest="quiet", action="store_true", help="quiet: no 'Attaching' line")
    p.add_argument("-v", dest="verbose", action="store_true", help="verbose output")
    p.add_argument("-f", dest="format", type=_format, default="text", metavar="FORMAT",
                   help="output format: text or json")
    p.add_argument("-o", dest="output", metavar="FILE", help="write output to FILE")
    p.add_argument("-B", dest="buffering", type=_buffering, default=None, metavar="MODE",
                   help="output buffering: line, full or none (default: flush after each batch of events)")
    p.add_argument("--no-warnings", dest="no_warnings", action="store_true", help="do not print warnings")
    p.add_argument("--info", action="store_true", help="print the kernel features pytrace can use, found by trying them")
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
    if path != "-" and os.path.isdir(path):
        raise EnvironmentProblem(f"cannot read {path}: it is a directory, not a script")
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read {path}: {exc.strerror or exc}", "check the file name") from None
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
    argv = list(sys.argv[1:] if argv is None else argv)
    tool = _python_tool(argv)
    if tool is not None:
        # A Python-driven tool parses its own options (strace -p/-c/-s...):
        # hand it the arguments untouched by pytrace's parser.
        from .library import run_python_tool
        return _guarded(lambda: run_python_tool(tool, argv[2:], stdout, stderr), stdout, stderr)
    parser = build_arg_parser()
    try:
        opts = parser.parse_args(argv)
    except UsageError as exc:
        print(f"pytrace: {exc} (see pytrace --help)", file=stderr)
        return 1
    except SystemExit as exc:
        return 1 if exc.code else 0
    if opts.version:
        print(f"pytrace v{__version__}", file=stdout)
        return 0
    if opts.help:
        parser.print_help(stdout)
        return 0
    return _guarded(lambda: _info(stdout) if opts.info else _run(opts, stdout, stderr), stdout, stderr)


def _python_tool(argv: list[str]) -> Tool | None:
    """The Python-driven tool ``pytrace tool NAME ...`` names, if it is one."""
    if argv[:1] != ["tool"] or len(argv) < 2:
        return None
    from .library import find_tool
    tool = find_tool(argv[1])
    return tool if tool is not None and tool.is_python else None


def _guarded(body: Callable[[], int | None], stdout: TextIO, stderr: TextIO) -> int:
    """Run ``body`` turning every failure into a message and an exit code:
    never a traceback."""
    try:
        return int(body() or 0)
    except EnvironmentProblem as exc:
        _problem(exc.message, exc.hint, stderr)
        return 1
    except UsageError as exc:
        print(f"pytrace: {exc} (see pytrace --help)", file=stderr)
        return 1
    except (KeyboardInterrupt, Terminated):
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BrokenPipeError:
        # The reader went away (pytrace ... | head): nothing more to say.
        _silence_stdout()
        return 0
    except OSError as exc:
        # A bpf/perf call that failed in a way no message above anticipated.
        from .bpf.syscalls import BpfError
        if isinstance(exc, BpfError):
            _problem(exc.message, exc.hint, stderr)
        else:
            _problem(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), None, stderr)
        return 1
    except RecursionError:
        print("pytrace: the script is nested too deeply to compile", file=stderr)
        return 1
    except Exception as exc:  # a bug in pytrace: say so in one line, never a traceback
        if os.environ.get("PYTRACE_DEBUG"):
            import traceback
            print(getattr(exc, "pytrace_traceback", None) or traceback.format_exc(), end="", file=stderr)
        print(f"pytrace: internal error: {type(exc).__name__}: {exc} (set PYTRACE_DEBUG=1 for the traceback "
              "and please report it)", file=stderr)
        return 1


def _problem(message: str, hint: str | None, stderr: TextIO) -> None:
    print(f"pytrace: {message}", file=stderr)
    if hint:
        print(f"hint: {hint}", file=stderr)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _info(stdout: TextIO) -> int:
    from .kernel.features import format_report, probe_all
    stdout.write(format_report(probe_all()))
    return 0


def _list(opts: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from . import listing

    def warn(msg: str) -> None:
        if not opts.no_warnings:
            print(f"pytrace: warning: {msg}", file=stderr)

    if opts.program is not None or (opts.args and opts.args[0] != "-" and os.path.isfile(opts.args[0])):
        script = _read_script(opts, stderr)
        assert script is not None
        from .frontend.parser import parse
        diags = Diagnostics()
        program = parse(script[0], diags)
        if diags.has_errors():
            print(diags.render(), file=stderr)
            return 1
        aps = [ap.raw for probe in program.probes for ap in probe.attach_points]
        listing.list_program(aps, stdout, verbose=opts.verbose, pid=opts.pid, warn=warn)
        return 0
    if len(opts.args) > 1:
        raise UsageError("-l takes at most one pattern")
    listing.list_probes(opts.args[0] if opts.args else None, stdout, verbose=opts.verbose, pid=opts.pid,
                        warn=warn)
    return 0


def _run(opts: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if opts.list:
        try:
            return _list(opts, stdout, stderr)
        except UsageError as exc:
            print(f"pytrace: {exc} (see pytrace --help)", file=stderr)
            return 1
    if opts.program is None and opts.args[:1] == ["tools"]:
        return _list_tools(stdout)
    if opts.program is None and opts.args[:1] == ["tool"]:
        opts.args = _tool_args(opts.args[1:])
        opts.is_tool = True
    if opts.program is None and (opts.args[:1] == ["repl"] or (not opts.args and _interactive())):
        # No script on a terminal (or 'pytrace repl'): the interactive REPL.
        from .repl.app import run_repl
        return run_repl(unsafe=opts.unsafe, json=opts.format == "json")
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
        from .frontend import ast, printer
        from .frontend.parser import parse
        program = parse(source, diags)
        if diags.has_errors():
            print(diags.render(), file=stderr)
            return 1
        print(ast.dump(program) if opts.emit == "ast" else printer.program(program), end="\n" if
              opts.emit == "ast" else "", file=stdout)
        return 0
    tracing = not opts.dry_run and opts.emit is None
    if tracing:
        _check_run_options(opts)
    compiler = None
    if tracing and not opts.fake_kernel:
        # LLVM loads in a child while this process reads and checks the script.
        from .codegen.llvm.worker import CompilerProcess
        compiler = CompilerProcess.start()
    try:
        return _compile_and_run(opts, source, params, diags, emit_file, tracing, compiler, stdout, stderr)
    finally:
        if compiler is not None:
            compiler.close()


def _compile_and_run(opts: argparse.Namespace, source: SourceFile, params: list[str], diags: Diagnostics,
                     emit_file: str | None, tracing: bool, compiler: Any, stdout: TextIO, stderr: TextIO) -> int:
    if tracing and not opts.fake_kernel:
        from .kernel.features import preflight
        preflight()
    from .semantic.pipeline import CompileOptions, run
    options = CompileOptions(kernel=_kernel(opts), unsafe=opts.unsafe, params=params, pid=opts.pid,
                             has_cpid=opts.command is not None, optional_params=getattr(opts, "is_tool", False))
    try:
        comp = run(source, options, diags)
    except EnvironmentProblem as exc:
        from .kernel.tracefs import TracefsUnavailable
        if tracing and isinstance(exc, TracefsUnavailable):
            # One sentence before anything is loaded, as the other start-up checks.
            raise EnvironmentProblem(f"{exc.message}, so tracepoints cannot be used"
                                     + (f" ({exc.hint})" if exc.hint else "")) from None
        raise
    if len(diags) and (diags.has_errors() or not opts.no_warnings):
        print(diags.render(), file=stderr)
    if diags.has_errors():
        return 1
    if opts.emit == "types":
        from .frontend import ast
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
    if opts.fake_kernel:
        print("pytrace: --fake-kernel cannot trace; add --dry-run or --emit", file=stderr)
        return 1
    if any(a.provider == "tracepoint" for p in comp.probes for a in p.attaches):
        from .kernel.features import preflight
        preflight(tracefs=True)
    return _trace(comp, opts, params, compiler, stdout, stderr)


def _list_tools(stdout: TextIO) -> int:
    """``pytrace tools``: each shipped tool and what it does."""
    from .library import tools
    found = tools()
    width = max((len(t.name) for t in found), default=0)
    for t in found:
        print(f"{t.name:<{width}}  {t.description}", file=stdout)
    return 0


def _tool_args(args: list[str]) -> list[str]:
    """``pytrace tool NAME [ARG...]``: the tool's script and its arguments."""
    from .library import find_tool, tools
    if not args:
        raise UsageError("pytrace tool needs the name of a tool (pytrace tools lists them)")
    tool = find_tool(args[0])
    if tool is None:
        from .diagnostics import suggest
        hints = suggest(args[0], [t.name for t in tools()])
        raise EnvironmentProblem(f"no tool named '{args[0]}'" + (f": {hints[0]}" if hints else ""),
                                 "pytrace tools lists them")
    return [str(tool.path), *args[1:]]


def _interactive() -> bool:
    """Whether stdin and stdout are a terminal (the REPL needs both)."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _check_run_options(opts: argparse.Namespace) -> None:
    """-p, -c and -o problems, found before anything is compiled or loaded."""
    if opts.pid is not None and opts.command is not None:
        raise EnvironmentProblem("-p and -c cannot be used together: trace a running process or start one")
    if opts.pid is not None and not os.path.exists(f"/proc/{opts.pid}"):
        raise EnvironmentProblem(f"no process with PID {opts.pid} to trace (-p)")
    if opts.command is not None:
        try:
            argv = shlex.split(opts.command)
        except ValueError as exc:
            raise EnvironmentProblem(f"cannot parse the command of -c: {exc}") from None
        if not argv:
            raise EnvironmentProblem("the command of -c is empty")
        exe = argv[0]
        if "/" in exe:
            if not os.path.isfile(exe) or not os.access(exe, os.X_OK):
                raise EnvironmentProblem(f"cannot run '{exe}' (-c): no such executable file")
        elif shutil.which(exe) is None:
            raise EnvironmentProblem(f"cannot run '{exe}' (-c): command not found in PATH")
    if opts.output is not None:
        if os.path.isdir(opts.output):
            raise EnvironmentProblem(f"cannot write the output to {opts.output} (-o): it is a directory")
        parent = os.path.dirname(os.path.abspath(opts.output))
        if not os.path.isdir(parent):
            raise EnvironmentProblem(f"cannot write the output to {opts.output} (-o): no directory {parent}")


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
        try:
            with open(path, "wb") as f:
                f.write(M.emit_object(gen))
        except OSError as exc:
            raise EnvironmentProblem(f"cannot write {path}: {exc.strerror}") from None
    return 0


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _trace(comp, opts: argparse.Namespace, params: list[str], compiler: Any, stdout: TextIO,  # type: ignore[no-untyped-def]
           stderr: TextIO) -> int:
    from .runtime.child import Child
    from .runtime.session import RunOptions, Session
    # Until the session takes over SIGINT/SIGTERM, both unwind through the
    # finally blocks below (and Session.__exit__), so nothing stays loaded.
    previous_term = signal.signal(signal.SIGTERM, _raise_terminated)
    out = stdout
    child = None
    try:
        if opts.output:
            try:
                out = open(opts.output, "w")
            except OSError as exc:
                raise EnvironmentProblem(f"cannot write the output to {opts.output} (-o): {exc.strerror}") from None
        child = Child.spawn(opts.command) if opts.command else None
        options = RunOptions(quiet=opts.quiet, verbose=opts.verbose, json=opts.format == "json",
                             unsafe=opts.unsafe, pid=opts.pid, child=child, params=params,
                             buffering=opts.buffering, notify_out=stdout,
                             compiler=compiler)
        diags = Diagnostics()
        with Session(comp, options, out, stderr) as session:
            if not session.load(diags):
                print(diags.render(), file=stderr)
                return 1
            return session.run()
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if child is not None:
            child.stop()
        if out is not stdout:
            try:
                out.close()
            except OSError:
                pass


# Optional modules Lark imports when present but pytrace never uses at run
# time (regex for regex=True grammars, interegular for strict-mode collision
# checks); importing them costs ~50-100 ms of start-up.
_UNUSED_OPTIONAL_IMPORTS = ("regex", "interegular")


def entry() -> None:
    # Deeply nested (but accepted) expressions are walked recursively by the
    # checker; the parser caps nesting, and this leaves room for that cap.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for name in _UNUSED_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    try:
        sys.stderr.flush()
    except OSError:
        pass
    # Everything is detached, closed and written by now.  Tearing down the
    # interpreter (module dicts, gc of the parser tables, llvmlite's objects)
    # would only add 30-100 ms before the shell gets its prompt back: run the
    # atexit handlers (caches are saved there) and leave.
    atexit._run_exitfuncs()
    os._exit(code)
