"""The REPL's probe sets: each accepted script runs as a tracing session in
a thread of its own, printing above the prompt.

Compiling and loading happen in the REPL's thread, so a mistake is shown
at once (diagnostics, or one sentence for an environment problem) and the
REPL goes on; only a loaded session gets a thread.  That thread runs the
session (BEGIN, attach, events, then END and the maps when it stops) and
always closes it, so nothing stays loaded whether the set ends by
``exit()``, ``.stop``, Ctrl-C or the REPL leaving.  Sessions run without
signal handlers (a thread cannot install them) and are stopped with
``Session.request_stop``.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, TextIO

from ..diagnostics import Diagnostics
from ..errors import EnvironmentProblem
from ..records import dataclass, field
from ..source import SourceFile

if TYPE_CHECKING:
    from ..runtime.session import Session
    from .state import ReplState


@dataclass
class Job:
    """One running probe set."""

    id: int
    text: str
    session: "Session"
    probes: int
    started: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None
    # Probe runs per second, measured between two reads of the toolbar.
    _last: tuple[float, int] | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def rate(self) -> float:
        """Probe runs a second since the last call (the toolbar's refresh)."""
        now, events = time.monotonic(), self.session.hits()
        then, before = self._last or (self.started, 0)
        self._last = (now, events)
        return (events - before) / (now - then) if now > then else 0.0

    def map_names(self) -> list[str]:
        layout = self.session.layout
        return list(layout.maps) if layout is not None else []


class Jobs:
    """Starts, lists and stops the REPL's probe sets."""

    def __init__(self, state: "ReplState", out: TextIO, err: TextIO) -> None:
        self.state = state
        self.out = out
        self.err = err
        self._jobs: dict[int, Job] = {}
        self._next_id = 1
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ starting
    def start(self, text: str, name: str = "stdin", preludes: list[SourceFile] | None = None) -> Job | None:
        """Compile, load and start ``text``; None (after saying why) when it
        cannot run."""
        from ..kernel.info import LiveKernel
        from ..runtime.session import RunOptions, Session
        from ..semantic.pipeline import CompileOptions, run
        diags = Diagnostics()
        try:
            comp = run(SourceFile(name, text), CompileOptions(kernel=LiveKernel(), unsafe=self.state.unsafe,
                                                             preludes=list(preludes or [])), diags)
        except EnvironmentProblem as exc:
            self._problem(exc)
            return None
        if len(diags):
            print(diags.render(), file=self.err)
        if diags.has_errors():
            return None
        self.state.remember_names(set(comp.maps), _variables(comp))
        session = Session(comp, RunOptions(json=self.state.json, unsafe=self.state.unsafe, handle_signals=False,
                                           count_hits=True), self.out, self.err)
        try:
            if not session.load(diags):
                print(diags.render(), file=self.err)
                session.close()
                return None
        except EnvironmentProblem as exc:
            session.close()
            self._problem(exc)
            return None
        except BaseException:
            session.close()
            raise
        with self._lock:
            job = Job(self._next_id, text, session, sum(len(p.attaches) for p in comp.probes))
            self._next_id += 1
            self._jobs[job.id] = job
        job.thread = threading.Thread(target=self._run, args=(job,), name=f"pytrace-job-{job.id}", daemon=True)
        job.thread.start()
        return job

    def _run(self, job: Job) -> None:
        try:
            job.session.run()
        except EnvironmentProblem as exc:
            self._problem(exc)
        except Exception as exc:  # a bug: one line, the REPL goes on
            print(f"pytrace: internal error in probe set {job.id}: {type(exc).__name__}: {exc}", file=self.err)
        finally:
            job.session.close()
            with self._lock:
                self._jobs.pop(job.id, None)

    def _problem(self, exc: EnvironmentProblem) -> None:
        print(f"pytrace: {exc.message}", file=self.err)
        if exc.hint:
            print(f"hint: {exc.hint}", file=self.err)

    # ------------------------------------------------------------------ queries
    def running(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.running]

    def get(self, job_id: int) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def owner(self, map_name: str) -> Job | None:
        """The newest running set that has ``map_name``."""
        for job in reversed(self.running()):
            if map_name in job.map_names():
                return job
        return None

    # ------------------------------------------------------------------ stopping
    def stop(self, job_id: int | None = None, timeout: float = 30.0) -> list[int]:
        """Stop one set (all without ``job_id``) and wait until each has run
        END, printed its maps and been unloaded; returns the ids stopped."""
        jobs = self.running() if job_id is None else [j for j in [self.get(job_id)] if j is not None]
        for job in jobs:
            job.session.request_stop()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout)
        return [j.id for j in jobs]


def _variables(comp: object) -> set[str]:
    """The $variables a compiled script assigns (for completion)."""
    from ..frontend import ast
    program = getattr(comp, "program", None)
    if program is None:
        return set()
    return {n.name for n in program.walk() if isinstance(n, ast.Variable) and not n.name[1:].isdigit()}
