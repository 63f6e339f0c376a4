"""Exceptions for problems with the machine, not with the script.

Mistakes in a script are ``Diagnostic`` objects (see ``diagnostics.py``) and
never raised.  What is raised from here is what no script change can fix: a
missing tracefs, no privileges, an old kernel.  Each carries a one-line
``message`` and an optional ``hint`` saying what the user can do about it, so
the command line can print both without knowing every subclass.
"""

from __future__ import annotations


class EnvironmentProblem(Exception):
    """The running system lacks something pytrace needs."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message: str = message
        self.hint: str | None = hint

    def __str__(self) -> str:
        return self.message
