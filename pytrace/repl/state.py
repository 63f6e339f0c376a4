"""What the REPL's parts share: the accepted lines, the names a session
has used, the commands and the output settings.  One ``ReplState`` per
REPL, owned by ``app``; the completer reads it, jobs and commands update it.
"""

from __future__ import annotations

from ..records import dataclass, field


@dataclass(frozen=True)
class CommandInfo:
    """One REPL command: ``.name``, its usage line and a one-line help."""

    name: str
    usage: str
    help: str
    # What its argument is, for completion: "" (none), "file", "glob" (a
    # probe pattern), "probe", "map", "job", "stdlib", "onoff".
    argument: str = ""


@dataclass
class ReplState:
    """The REPL's shared state."""

    commands: dict[str, CommandInfo] = field(default_factory=dict)
    # Script lines accepted so far (what .save writes), in order.
    accepted: list[str] = field(default_factory=list)
    # Names used by accepted lines: map names ('@x', '@'), variables ('$x').
    map_names: set[str] = field(default_factory=set)
    variable_names: set[str] = field(default_factory=set)
    json: bool = False
    unsafe: bool = False
    # Stdlib snippets .import added: each next probe set imports them.
    imports: list[str] = field(default_factory=list)
    # Lines that only define (macros, C types, imports): every next probe
    # set sees them, as if typed before it.
    definitions: list[str] = field(default_factory=list)

    def remember_names(self, maps: set[str], variables: set[str]) -> None:
        self.map_names |= maps
        self.variable_names |= variables
