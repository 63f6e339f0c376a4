"""The REPL's commands (``.help``, ``.probes``, ``.stop`` ...).

``COMMANDS`` describes them (the completer and ``.help`` read it); a
``Commands`` object carries them out against the REPL's jobs and state.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, TextIO

from ..diagnostics import suggest
from .state import CommandInfo

if TYPE_CHECKING:
    from .jobs import Jobs
    from .state import ReplState

COMMANDS: tuple[CommandInfo, ...] = (
    CommandInfo("help", ".help [COMMAND]", "what the commands do, or one command's usage"),
    CommandInfo("probes", ".probes [GLOB]", "list probes, as pytrace -l GLOB", "glob"),
    CommandInfo("info", ".info PROBE", "a probe's arguments, as pytrace -lv PROBE", "probe"),
    CommandInfo("jobs", ".jobs", "the running probe sets: id, probes, probe hits, lost events"),
    CommandInfo("maps", ".maps", "the maps of the running probe sets, with their element counts"),
    CommandInfo("print", ".print @NAME", "print a map of a running probe set now, without stopping it", "map"),
    CommandInfo("stop", ".stop [ID]", "stop a probe set (all of them without ID) and print its maps", "job"),
    CommandInfo("clear", ".clear [@NAME]", "clear a map of a running probe set (all of its maps without NAME)",
                "map"),
    CommandInfo("load", ".load FILE", "run a script file as a probe set", "file"),
    CommandInfo("save", ".save FILE", "write the lines accepted so far as a .pt script", "file"),
    CommandInfo("import", ".import NAME", "add a stdlib snippet to what the next lines can use", "stdlib"),
    CommandInfo("set", ".set json on|off", "print maps and events as JSON lines, or as text", "onoff"),
    CommandInfo("quit", ".quit", "stop every probe set and leave (Ctrl-D too)"),
)


def command_table() -> dict[str, CommandInfo]:
    return {c.name: c for c in COMMANDS}


class Commands:
    """Carries out a ``.command`` line against the REPL's jobs and state."""

    def __init__(self, state: "ReplState", jobs: "Jobs", out: TextIO, err: TextIO,
                 run_script: Callable[[str, str], object]) -> None:
        self.state = state
        self.jobs = jobs
        self.out = out
        self.err = err
        self.run_script = run_script  # (text, name): start a probe set, as a typed line is
        self.quit = False

    def __call__(self, line: str) -> None:
        name, _, arg = line.strip()[1:].partition(" ")
        arg = arg.strip()
        info = self.state.commands.get(name)
        if info is None:
            hints = suggest(name, list(self.state.commands))
            self._say(f"unknown command '.{name}'" + (f": {hints[0]}" if hints else "") + " (.help lists them)")
            return
        getattr(self, f"_{name}")(arg)

    def _say(self, text: str) -> None:
        print(text, file=self.err)

    # ------------------------------------------------------------------ the commands
    def _help(self, arg: str) -> None:
        if arg:
            info = self.state.commands.get(arg.lstrip("."))
            if info is None:
                self._say(f"unknown command '.{arg.lstrip('.')}'")
                return
            print(f"{info.usage}\n    {info.help}", file=self.out)
            return
        width = max(len(c.usage) for c in self.state.commands.values())
        lines = [f"{c.usage:<{width}}  {c.help}" for c in self.state.commands.values()]
        lines.append("")
        lines.append("Type a probe to run it, on one line or several:")
        lines.append("    tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }")
        lines.append("Ctrl-C stops the running probe sets and prints their maps; Ctrl-D leaves.")
        print("\n".join(lines), file=self.out)

    def _probes(self, arg: str) -> None:
        from ..errors import EnvironmentProblem
        from ..listing import list_probes
        try:
            list_probes(arg or None, self.out, warn=lambda m: self._say(f"warning: {m}"))
        except EnvironmentProblem as exc:
            self._say(f"pytrace: {exc.message}")

    def _info(self, arg: str) -> None:
        from ..errors import EnvironmentProblem
        from ..listing import list_probes
        if not arg:
            self._say("usage: .info PROBE (e.g. .info tracepoint:syscalls:sys_enter_openat)")
            return
        try:
            if not list_probes(arg, self.out, verbose=True, warn=lambda m: self._say(f"warning: {m}")):
                self._say(f"no probe matches '{arg}'")
        except EnvironmentProblem as exc:
            self._say(f"pytrace: {exc.message}")

    def _jobs(self, arg: str) -> None:
        running = self.jobs.running()
        if not running:
            print("no probe sets are running", file=self.out)
            return
        for job in running:
            first = job.text.strip().splitlines()[0] if job.text.strip() else ""
            lost = job.session.lost_events()
            print(f"[{job.id}] {job.probes} probe{'s' if job.probes != 1 else ''}, {job.session.hits()} hits"
                  + (f", {lost} lost" if lost else "") + f": {first[:60]}", file=self.out)

    def _maps(self, arg: str) -> None:
        rows = []
        for job in self.jobs.running():
            for name in job.map_names():
                rows.append(f"[{job.id}] {name}: {job.session.map_length(name)} element(s)")
        print("\n".join(rows) if rows else "no maps: no probe set is running", file=self.out)

    def _print(self, arg: str) -> None:
        if not arg.startswith("@"):
            self._say("usage: .print @NAME")
            return
        job = self.jobs.owner(arg)
        if job is None:
            self._say(f"no running probe set has a map {arg}")
            return
        job.session.print_map_now(arg)

    def _stop(self, arg: str) -> None:
        if arg and not arg.isdigit():
            self._say("usage: .stop [ID] (.jobs lists the ids)")
            return
        stopped = self.jobs.stop(int(arg) if arg else None)
        if not stopped:
            self._say(f"no probe set {arg} is running" if arg else "no probe set is running")

    def _clear(self, arg: str) -> None:
        if arg and not arg.startswith("@"):
            self._say("usage: .clear [@NAME]")
            return
        jobs = [self.jobs.owner(arg)] if arg else self.jobs.running()
        if not [j for j in jobs if j is not None]:
            self._say(f"no running probe set has a map {arg}" if arg else "no probe set is running")
            return
        for job in jobs:
            if job is not None:
                for name in ([arg] if arg else job.map_names()):
                    job.session.clear_map_now(name)

    def _load(self, arg: str) -> None:
        if not arg:
            self._say("usage: .load FILE")
            return
        path = os.path.expanduser(arg)
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            self._say(f"cannot read {arg}: {getattr(exc, 'strerror', None) or exc}")
            return
        self.run_script(text, arg)

    def _save(self, arg: str) -> None:
        if not arg:
            self._say("usage: .save FILE")
            return
        if not self.state.accepted:
            self._say("nothing to save: no line has been accepted yet")
            return
        text = "#!/usr/bin/env pytrace\n" + "\n".join(self.state.accepted) + "\n"
        try:
            with open(os.path.expanduser(arg), "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            self._say(f"cannot write {arg}: {exc.strerror or exc}")
            return
        print(f"saved {len(self.state.accepted)} line(s) to {arg}", file=self.out)

    def _import(self, arg: str) -> None:
        name = arg.strip().strip('"')
        if not name:
            self._say("usage: .import NAME (a stdlib snippet)")
            return
        from ..library import snippet_names
        known = snippet_names()  # tools (stdlib/tools) are run with `pytrace tool`, not imported
        if name not in known and f"{name}.pt" not in known and not os.path.isfile(os.path.expanduser(name)):
            hints = suggest(name, known)
            self._say(f"no stdlib snippet named '{name}'" + (f": {hints[0]}" if hints else "")
                      + (f" (known: {', '.join(known)})" if known and not hints else "")
                      + ("" if known else " (the stdlib ships no snippets yet)"))
            return
        self.state.imports.append(name)
        print(f'import "{name}"; is added before each next probe set', file=self.out)

    def _set(self, arg: str) -> None:
        key, _, value = arg.partition(" ")
        if key != "json" or value.strip() not in ("on", "off"):
            self._say("usage: .set json on|off")
            return
        self.state.json = value.strip() == "on"
        print(f"json output {'on' if self.state.json else 'off'} (for the next probe sets)", file=self.out)

    def _quit(self, arg: str) -> None:
        self.quit = True
