"""The REPL's prompt: read a probe set or a command, run it, repeat.

Built on prompt-toolkit: history in ``~/.pytrace_history`` (Ctrl-R
searches it), completion and highlighting (``complete``, ``lexer``), a
bottom toolbar with what runs, and multi-line input that goes on while the
parser says the input is incomplete (``incomplete``).  Probe sets print
above the prompt (``patch_stdout``) from their own threads (``jobs``),
while the prompt stays usable.

Keys: Enter runs a complete input (or starts a new line); Ctrl-C stops
every running probe set, which prints its maps as at exit, or clears the
line when none runs; Ctrl-D on an empty line leaves, stopping everything
first.  Nothing stays loaded when the REPL ends, however it ends.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from .commands import Commands, command_table
from .incomplete import is_complete
from .jobs import Jobs
from .state import ReplState

PROMPT = "pytrace> "
CONTINUATION = "    ...> "
HISTORY_FILE = "~/.pytrace_history"


class PromptOutput:
    """The prompt's patched stdout/stderr as a session's output stream:
    text written from a probe set's thread appears above the prompt.  It
    has no fileno(), so sessions never bypass it with os.write."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return True  # flush after each write: the prompt redraws under it


def toolbar_text(jobs: Jobs) -> str:
    """The bottom toolbar: the running probe sets, how often their probes
    run and how many events were lost, or how to start."""
    running = jobs.running()
    if not running:
        return " no probes running - type a probe, or .help"
    rate = sum(j.rate() for j in running)
    lost = sum(j.session.lost_events() for j in running)
    ids = ", ".join(str(j.id) for j in running)
    sets = f"{len(running)} probe set{'s' if len(running) != 1 else ''} running [{ids}]"
    return f" {sets} | {rate:,.0f} hits/s | {lost} events lost | Ctrl-C stops them"


class Repl:
    """One interactive session: the prompt, the probe sets and the commands."""

    def __init__(self, *, unsafe: bool = False, json: bool = False, input: Any = None, output: Any = None,
                 history: str | None = HISTORY_FILE, out: TextIO | None = None, err: TextIO | None = None) -> None:
        """``input``/``output``: prompt-toolkit's (tests pass a pipe input
        and a dummy output); ``out``/``err``: where probe sets and commands
        write (default: stdout/stderr, patched to print above the prompt)."""
        self.state = ReplState(commands=command_table(), unsafe=unsafe, json=json)
        self._input = input
        self._output = output
        self._history = history
        self._out = out
        self._err = err
        self.jobs: Jobs | None = None
        self.commands: Commands | None = None
        self._app: Any = None
        self._catalog: Any = None

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        if self._out is not None and self._err is not None:
            return self._run(self._out, self._err)
        from prompt_toolkit.patch_stdout import patch_stdout
        with patch_stdout(raw=True):
            return self._run(PromptOutput(sys.stdout), PromptOutput(sys.stderr))  # type: ignore[arg-type]

    def _run(self, out: TextIO, err: TextIO) -> int:
        self.jobs = Jobs(self.state, out, err)
        self.commands = Commands(self.state, self.jobs, out, err, self.start)
        prompt = self._prompt_session()
        try:
            return self._loop(prompt)
        finally:
            self.jobs.stop()

    def _loop(self, prompt: Any) -> int:
        assert self.jobs is not None and self.commands is not None
        while not self.commands.quit:
            try:
                text = prompt.prompt(PROMPT)
            except KeyboardInterrupt:
                if self.jobs.running():
                    self.jobs.stop()
                continue
            except EOFError:
                break
            self.handle(text)
        return 0

    def handle(self, text: str) -> None:
        """One accepted input: a command, or a probe set to start."""
        assert self.commands is not None
        stripped = text.strip()
        if not stripped:
            return
        if stripped.startswith("."):
            self.commands(stripped)
            return
        if self.define(text):
            self.state.accepted.append(text.rstrip())
            return
        if self.start(text, "stdin") is not None:
            self.state.accepted.append(text.rstrip())

    def define(self, text: str) -> bool:
        """Keep a line that only defines (macros, C types, imports, map
        declarations) for every next probe set; True when it was one."""
        from ..diagnostics import Diagnostics
        from ..frontend.parser import parse
        from ..source import SourceFile
        diags = Diagnostics()
        program = parse(SourceFile("stdin", text), diags)
        if diags.has_errors() or program.probes or program.config:
            return False  # a probe set (or an error the compiler reports in full)
        if not (program.macros or program.imports or program.c_items or program.map_decls):
            return False
        self.state.definitions.append(text)
        what = [f"macro {m.name}" for m in program.macros] + [f'import "{i.path}"' for i in program.imports]
        assert self.jobs is not None
        print(f"defined for the next probe sets: {', '.join(what) or 'C definitions'}", file=self.jobs.out)
        return True

    def start(self, text: str, name: str) -> object:
        """Start ``text`` as a probe set, with the .import'ed snippets and
        the definitions typed before it (each a source of its own, so a
        diagnostic points at the line as it was typed)."""
        from ..source import SourceFile
        assert self.jobs is not None
        preludes = [SourceFile(f"definition {i + 1}", d) for i, d in enumerate(self.state.definitions)]
        if self.state.imports:
            preludes.insert(0, SourceFile(".import", "".join(f'import "{n}";\n' for n in self.state.imports)))
        return self.jobs.start(text, name, preludes)

    # ------------------------------------------------------------------ prompt-toolkit
    def _prompt_session(self) -> Any:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings
        history: Any = InMemoryHistory()
        if self._history:
            path = os.path.expanduser(self._history)
            try:
                with open(path, "a", encoding="utf-8"):
                    pass
                history = FileHistory(path)
            except OSError:
                pass  # an unwritable home: the session's history only
        kb = KeyBindings()

        @kb.add("enter")
        def _enter(event: Any) -> None:
            # Run what is complete; otherwise go on on a new line.
            buf = event.current_buffer
            if buf.complete_state is not None and buf.complete_state.current_completion is not None:
                buf.apply_completion(buf.complete_state.current_completion)
                return
            if is_complete(buf.text):
                buf.validate_and_handle()
            else:
                buf.insert_text("\n")

        assert self.jobs is not None
        jobs = self.jobs
        session: Any = PromptSession(
            history=history, key_bindings=kb, multiline=True, input=self._input, output=self._output,
            prompt_continuation=lambda width, line, soft: CONTINUATION[-width:] if width else CONTINUATION,
            bottom_toolbar=lambda: toolbar_text(jobs), refresh_interval=1.0,
            enable_history_search=False, complete_while_typing=True, **self._extras())
        self._app = session.app
        return session

    def _extras(self) -> dict[str, Any]:
        """Completion and highlighting (pytrace.repl.complete/lexer).  Probe
        lists load in the background; when one arrives while a completion
        menu is wanted, the menu is computed again."""
        from prompt_toolkit.lexers import PygmentsLexer

        from .complete import ProbeCatalog, PytraceCompleter
        from .lexer import PytraceLexer
        self._catalog = ProbeCatalog(on_update=self._catalog_updated)
        return {"lexer": PygmentsLexer(PytraceLexer), "completer": PytraceCompleter(self.state, self._catalog)}

    def _catalog_updated(self) -> None:
        """A probe list finished loading (a background thread): refresh the
        completion menu on the prompt's event loop."""
        app = self._app
        if app is None or not app.is_running or app.loop is None:
            return
        buffer = app.current_buffer

        def refresh() -> None:
            # Only a menu already asked for (Tab, or typing with matches):
            # a list arriving must not pop one up on its own.
            if buffer.complete_state is not None:
                buffer.start_completion(select_first=False)
        app.loop.call_soon_threadsafe(refresh)


def run_repl(*, unsafe: bool = False, json: bool = False, stdout: TextIO | None = None) -> int:
    """``pytrace`` on a terminal without a script, or ``pytrace repl``."""
    return Repl(unsafe=unsafe, json=json).run()
