"""The interactive REPL: ``pytrace`` on a terminal with no script, or
``pytrace repl``.

``app`` runs the prompt (prompt-toolkit) and reads lines; ``jobs`` runs each
accepted probe set as a tracing session in a thread of its own, printing
above the prompt; ``commands`` holds the ``.help``-style commands;
``complete`` and ``lexer`` serve completion and highlighting; ``state`` is
what those share about the running REPL.
"""
