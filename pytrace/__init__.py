"""pytrace: a bpftrace-compatible tracing language and compiler for Linux.

The package is laid out by pipeline stage: ``frontend`` (parse to an AST),
``semantic`` (probe resolution, types, checks), ``kernel`` (what the running
kernel offers, behind an injectable interface), ``providers`` (one module per
probe type) and ``builtins`` (one registry of builtins and functions).
"""

__version__ = "0.1.0"
