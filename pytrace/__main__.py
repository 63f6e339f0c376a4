"""``python -m pytrace``: the same as the ``pytrace`` command."""

from .cli import entry

entry()
