"""Whether what the user typed so far is a whole script, by asking the parser.

The REPL keeps reading lines while the parser's only complaint is that the
input ended early (an open brace, bracket or parenthesis, a predicate not
closed, an attach point with no block yet, an operator with nothing after
it): not by guessing from the last character, which a string or a comment
containing '{' would fool.  Any other syntax error makes the input
complete: it is run, and the error is shown at once.
"""

from __future__ import annotations

from ..diagnostics import Diagnostics, Severity
from ..source import SourceFile

EOF_MESSAGE = "unexpected end of input"


def is_complete(text: str) -> bool:
    """True when ``text`` should be run (or reported) now; False when the
    parser wants more lines.  REPL commands (``.name``) and blank input
    are always complete."""
    stripped = text.strip()
    if not stripped or stripped.startswith("."):
        return True
    from ..frontend.parser import parse
    diags = Diagnostics()
    parse(SourceFile("stdin", text), diags)
    errors = [d for d in diags.items if d.severity is Severity.ERROR]
    if not errors:
        return True
    return not all(d.message.startswith(EOF_MESSAGE) for d in errors)
