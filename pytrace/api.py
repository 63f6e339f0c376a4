"""pytrace from Python: compile a script, run it, and receive what it
prints as Python values.

    from pytrace.api import Tracer, ScriptError

    t = Tracer('tracepoint:syscalls:sys_enter_openat { print((pid, str(args.filename))); }',
               on_value=lambda v: records.append(v))
    t.run()            # until exit(), Ctrl-C/SIGTERM, t.stop(), or the -c command ends

``print(value)`` of a non-map value hands the decoded value to
``on_value`` (an int, a str, a tuple of them, a Stack...) instead of
printing it; everything else (printf, maps at exit) is written to ``out``
as the command line writes it.  A script with errors raises
``ScriptError`` carrying the rendered diagnostics; an environment problem
raises ``pytrace.errors.EnvironmentProblem``.  Everything is unloaded when
``run()`` returns, however it returns.

This is what the stdlib's Python-driven tools (``pytrace tool audit``,
``pytrace tool strace``) are built on.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable, Sequence, TextIO

from .diagnostics import Diagnostics
from .source import SourceFile


class ScriptError(Exception):
    """The script did not compile; ``str()`` is the rendered diagnostics."""


class Tracer:
    """One script, compiled at construction and run by ``run()``."""

    def __init__(self, script: str, *, name: str = "script", params: Sequence[str] = (), unsafe: bool = False,
                 pid: int | None = None, command: str | None = None, json: bool = False,
                 out: TextIO | None = None, err: TextIO | None = None,
                 on_value: Callable[[object], None] | None = None, quiet: bool = True) -> None:
        from .kernel.info import LiveKernel
        from .semantic.pipeline import CompileOptions, run
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self._command = command
        self._options: dict[str, Any] = dict(pid=pid, unsafe=unsafe, json=json, on_value=on_value, quiet=quiet,
                                             params=list(params))
        diags = Diagnostics()
        self.compilation = run(SourceFile(name, script),
                               CompileOptions(kernel=LiveKernel(), unsafe=unsafe, params=list(params), pid=pid,
                                              has_cpid=command is not None), diags)
        if diags.has_errors():
            raise ScriptError(diags.render())
        self.warnings = diags.render() if len(diags) else ""
        self._session: Any = None
        self._stop_requested = False
        self._lost_at_end = 0  # lost_events() once run() has returned

    def run(self) -> int:
        """Load, attach and run until the script ends; returns its exit code.
        In the main thread SIGINT/SIGTERM stop it; in another thread only
        ``stop()`` does."""
        from .runtime.child import Child
        from .runtime.session import RunOptions, Session
        child = Child.spawn(self._command) if self._command else None
        try:
            options = RunOptions(child=child,
                                 handle_signals=threading.current_thread() is threading.main_thread(),
                                 **self._options)
            with Session(self.compilation, options, self.out, self.err) as session:
                self._session = session
                diags = Diagnostics()
                if not session.load(diags):
                    raise ScriptError(diags.render())
                if self._stop_requested:
                    return 0
                try:
                    return session.run()
                finally:
                    # Read while the maps are still open: the final count.
                    self._lost_at_end = session.lost_events()
        finally:
            self._session = None
            if child is not None:
                child.stop()

    def stop(self) -> None:
        """Ask a running ``run()`` to stop (END runs, maps print)."""
        self._stop_requested = True
        if self._session is not None:
            self._session.request_stop()

    def lost_events(self) -> int:
        """Events the kernel could not hand over so far (a full ring buffer);
        after ``run()`` has returned, the run's final count."""
        return self._session.lost_events() if self._session is not None else self._lost_at_end
