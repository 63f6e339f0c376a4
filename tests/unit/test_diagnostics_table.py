"""Table-driven diagnostics: bad scripts and the exact text pytrace prints.

Each case runs a script through the whole front end (parse, config, C
items, probes, types) against the fake kernel built from tests/data/tracefs
(no BTF) and compares ``Diagnostics.render()`` with the full expected text:
``file:line:col: severity: message``, the source line, the caret and tilde
underline under the exact span, notes at other places and hints.  A second
table holds scripts that must compile without any diagnostic.

To update an expected text, run the case and paste what it prints, after
checking that the message, the position and the underline are right.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from pytrace import cli
from tests.conftest import DATA, compile_text


def _text(block: str) -> str:
    """Expected blocks are written between newlines for readability."""
    if block.startswith("\n"):
        block = block[1:]
    if block.endswith("\n"):
        block = block[:-1]
    return block


# (id, script, compile options, expected stderr text)
BAD: list[tuple[str, str, dict[str, Any], str]] = [
    ("syntax-eof-unclosed-brace",
     r'BEGIN { printf("hi\n")',
     {},
     r'''
stdin:1:23: error: unexpected end of input: '{' is not closed
BEGIN { printf("hi\n")
                      ^
stdin:1:7: note: the '{' opened here
BEGIN { printf("hi\n")
      ^
hint: add the missing '}'
'''),
    ("syntax-eof-unclosed-brace-multiline",
     r'''BEGIN {
  @x = 1;
  @y = 2;
''',
     {},
     r'''
stdin:3:10: error: unexpected end of input: '{' is not closed
  @y = 2;
         ^
stdin:1:7: note: the '{' opened here
BEGIN {
      ^
hint: add the missing '}'
'''),
    ("syntax-eof-unclosed-paren",
     r'BEGIN { printf("hi\n"',
     {},
     r'''
stdin:1:22: error: unexpected end of input: '(' is not closed
BEGIN { printf("hi\n"
                     ^
stdin:1:15: note: the '(' opened here
BEGIN { printf("hi\n"
              ^
hint: add the missing ')'
'''),
    ("syntax-eof-unclosed-map-key",
     r'BEGIN { @x[1',
     {},
     r'''
stdin:1:13: error: unexpected end of input: '[' is not closed
BEGIN { @x[1
            ^
stdin:1:11: note: the '[' opened here
BEGIN { @x[1
          ^
hint: add the missing ']'
'''),
    ("syntax-missing-open-brace",
     r'BEGIN printf("hi"); }',
     {},
     r'''
stdin:1:7: error: syntax error: unexpected 'printf'
BEGIN printf("hi"); }
      ^~~~~~
hint: expected ',', '/', '<' or '{'
'''),
    ("syntax-missing-close-paren",
     r'BEGIN { printf("hi" }',
     {},
     r'''
stdin:1:21: error: syntax error: unexpected '}'
BEGIN { printf("hi" }
                    ^
hint: expected ')' or ','
'''),
    ("syntax-missing-semicolon-assign",
     r'BEGIN { $x = 1 $y = 2; }',
     {},
     r'''
stdin:1:16: error: syntax error: unexpected '$y'
BEGIN { $x = 1 $y = 2; }
               ^~
hint: expected ';' before '$y'
'''),
    ("syntax-missing-semicolon-call",
     r'BEGIN { @x = 1 printf("hi\n"); }',
     {},
     r'''
stdin:1:16: error: syntax error: unexpected 'printf'
BEGIN { @x = 1 printf("hi\n"); }
               ^~~~~~
hint: expected ';' before 'printf'
'''),
    ("syntax-missing-semicolon-keyword",
     r'BEGIN { $x = 1 if ($x) { } }',
     {},
     r'''
stdin:1:16: error: syntax error: unexpected 'if'
BEGIN { $x = 1 if ($x) { } }
               ^~
hint: expected ';' before 'if'
'''),
    ("syntax-missing-operand",
     r'BEGIN { @x = 1 + ; }',
     {},
     r'''
stdin:1:18: error: syntax error: unexpected ';'
BEGIN { @x = 1 + ; }
                 ^
hint: expected an expression
'''),
    ("syntax-missing-rhs-comparison",
     r'BEGIN { if (pid == ) { } }',
     {},
     r'''
stdin:1:20: error: syntax error: unexpected ')'
BEGIN { if (pid == ) { } }
                   ^
hint: expected an expression
'''),
    ("syntax-trailing-comma-in-call",
     r'BEGIN { printf("%d\n", nsecs, ); }',
     {},
     r'''
stdin:1:31: error: syntax error: unexpected ')'
BEGIN { printf("%d\n", nsecs, ); }
                              ^
hint: expected an expression
'''),
    ("syntax-unterminated-string",
     r'BEGIN { printf("abc); }',
     {},
     r'''
stdin:1:16: error: unterminated string
BEGIN { printf("abc); }
               ^~~~~~~~
hint: close the string with '"' on the same line
'''),
    ("syntax-unterminated-string-second-line",
     r'''BEGIN {
  printf("abc
  );
}''',
     {},
     r'''
stdin:2:10: error: unterminated string
  printf("abc
         ^~~~
hint: close the string with '"' on the same line
'''),
    ("syntax-unterminated-comment",
     r'''BEGIN { /* never closed
  exit(); }''',
     {},
     r'''
stdin:1:9: error: unterminated comment
BEGIN { /* never closed
        ^~
hint: close the comment with '*/'
'''),
    ("syntax-unterminated-comment-top-level",
     r'''BEGIN { exit(); }
/* trailing''',
     {},
     r'''
stdin:2:1: error: unterminated comment
/* trailing
^~
hint: close the comment with '*/'
'''),
    ("syntax-stray-backtick",
     r'BEGIN { $x = 1 ` 2; }',
     {},
     r'''
stdin:1:16: error: unexpected character '`'
BEGIN { $x = 1 ` 2; }
               ^
'''),
    ("syntax-stray-character-top-level",
     r'BEGIN { @ = 1; } $',
     {},
     r'''
stdin:1:18: error: unexpected character '$'
BEGIN { @ = 1; } $
                 ^
hint: variables are written $name, positional parameters $1, $2, ...
'''),
    ("syntax-stray-hash-in-block",
     r'''BEGIN { # comment
 }''',
     {},
     r'''
stdin:1:9: error: syntax error: unexpected '# comment'
BEGIN { # comment
        ^~~~~~~~~
hint: '#' lines (#include, #define) are only allowed outside probes; comments are written // ... or /* ... */
'''),
    ("syntax-single-quotes",
     r"BEGIN { $x = 'a'; }",
     {},
     r'''
stdin:1:14: error: unexpected character "'"
BEGIN { $x = 'a'; }
             ^
hint: strings are written in double quotes: "text"
'''),
    ("syntax-lone-dollar",
     r'BEGIN { $ = 1; }',
     {},
     r'''
stdin:1:9: error: unexpected character '$'
BEGIN { $ = 1; }
        ^
hint: variables are written $name, positional parameters $1, $2, ...
'''),
    ("syntax-invalid-escape",
     r'BEGIN { printf("\q"); }',
     {},
     r'''
stdin:1:17: error: invalid escape sequence '\q'
BEGIN { printf("\q"); }
                ^~
hint: valid escapes: \n \t \r \\ \" \xNN \NNN (octal)
'''),
    ("syntax-invalid-hex-escape",
     r'BEGIN { $x = "a\xZZ"; }',
     {},
     r'''
stdin:1:16: error: \x needs hex digits
BEGIN { $x = "a\xZZ"; }
               ^~
hint: valid escapes: \n \t \r \\ \" \xNN \NNN (octal)
'''),
    ("syntax-invalid-octal-literal",
     r'BEGIN { $x = 09; }',
     {},
     r'''
stdin:1:14: error: invalid integer literal '09'
BEGIN { $x = 09; }
             ^~
hint: octal literals use only the digits 0-7
'''),
    ("syntax-overflowing-literal",
     r'BEGIN { $x = 99999999999999999999999; }',
     {},
     r'''
stdin:1:14: error: integer literal '99999999999999999999999' does not fit in 64 bits
BEGIN { $x = 99999999999999999999999; }
             ^~~~~~~~~~~~~~~~~~~~~~~
'''),
    ("syntax-overflowing-hex-literal",
     r'BEGIN { $x = 0x1ffffffffffffffff; }',
     {},
     r'''
stdin:1:14: error: integer literal '0x1ffffffffffffffff' does not fit in 64 bits
BEGIN { $x = 0x1ffffffffffffffff; }
             ^~~~~~~~~~~~~~~~~~~
'''),
    ("syntax-hex-without-digits",
     r'BEGIN { $x = 0x; }',
     {},
     r'''
stdin:1:14: error: invalid integer literal '0x'
BEGIN { $x = 0x; }
             ^~
hint: integers are decimal (123), hexadecimal (0x7b) or octal (0173), optionally with a unit (10ms)
'''),
    ("syntax-digits-then-letters",
     r'BEGIN { $x = 1abc; }',
     {},
     r'''
stdin:1:14: error: invalid integer literal '1abc'
BEGIN { $x = 1abc; }
             ^~~~
hint: integers are decimal (123), hexadecimal (0x7b) or octal (0173), optionally with a unit (10ms)
'''),
    ("syntax-float-literal",
     r'BEGIN { $x = 1.5; }',
     {},
     r'''
stdin:1:14: error: floating-point numbers are not supported
BEGIN { $x = 1.5; }
             ^~~
hint: use integers (scale the value, e.g. by 1000)
'''),
    ("syntax-binary-junk",
     'BEGIN { \x00\x01\x02 }',
     {},
     ("stdin:1:9: error: invalid character '\\x00' in script\n"
     'BEGIN { \x00\x01\x02 }\n'
     '        ^\n'
     'hint: scripts are UTF-8 text; is this a binary file?')),
    ("syntax-binary-junk-elf",
     '\x7fELF\x02\x01\x01',
     {},
     ("stdin:1:1: error: invalid character '\\x7f' in script\n"
     '\x7fELF\x02\x01\x01\n'
     '^\n'
     'hint: scripts are UTF-8 text; is this a binary file?')),
    ("syntax-empty-program",
     r'',
     {},
     r'''
error: the script has no probes
hint: a script needs at least one probe, e.g. BEGIN { printf("hello\n"); }
'''),
    ("syntax-comment-only-program",
     r'''// nothing to trace
''',
     {},
     r'''
error: the script has no probes
hint: a script needs at least one probe, e.g. BEGIN { printf("hello\n"); }
'''),
    ("syntax-probe-without-body",
     r'BEGIN',
     {},
     r'''
stdin:1:6: error: unexpected end of input: the probe has no block
BEGIN
     ^
hint: a probe's statements go in braces: BEGIN { printf("hello\n"); }
'''),
    ("syntax-probe-list-without-body",
     r'BEGIN, END',
     {},
     r'''
stdin:1:11: error: unexpected end of input: the probe has no block
BEGIN, END
          ^
hint: a probe's statements go in braces: BEGIN { printf("hello\n"); }
'''),
    ("syntax-tracepoint-without-body",
     r'''tracepoint:syscalls:sys_enter_openat
''',
     {},
     r'''
stdin:1:37: error: unexpected end of input: the probe has no block
tracepoint:syscalls:sys_enter_openat
                                    ^
hint: a probe's statements go in braces: BEGIN { printf("hello\n"); }
'''),
    ("syntax-predicate-unclosed-at-eof",
     r'BEGIN /pid',
     {},
     r'''
stdin:1:11: error: unexpected end of input: the predicate is not closed
BEGIN /pid
          ^
hint: a predicate ends with '/' right before the probe's block: /pid == 1/ { ... }
'''),
    ("syntax-predicate-without-body",
     r'tracepoint:syscalls:sys_enter_openat /pid == 1/',
     {},
     r'''
stdin:1:48: error: unexpected end of input: the probe has no block
tracepoint:syscalls:sys_enter_openat /pid == 1/
                                               ^
hint: a probe's statements go in braces: BEGIN { printf("hello\n"); }
'''),
    ("syntax-angle-block-without-semicolon",
     r'BEGIN < printf("x") >',
     {},
     r'''
stdin:1:22: error: unexpected end of input: the '< ... >' block is not closed
BEGIN < printf("x") >
                     ^
hint: statements in a '< ... >' block end with ';' before the closing '>'
'''),
    ("syntax-angle-block-last-statement",
     r'BEGIN < printf("x"); exit() >',
     {},
     r'''
stdin:1:30: error: unexpected end of input: the '< ... >' block is not closed
BEGIN < printf("x"); exit() >
                             ^
hint: statements in a '< ... >' block end with ';' before the closing '>'
'''),
    ("syntax-two-probes-two-errors",
     r'''BEGIN { @a = 1; }
END { @b = ; }
tracepoint:syscalls:sys_enter_openat { printf("%s\n" str(args.filename)); }''',
     {},
     r'''
stdin:2:12: error: syntax error: unexpected ';'
END { @b = ; }
           ^
hint: expected an expression
stdin:3:54: error: syntax error: unexpected 'str'
tracepoint:syscalls:sys_enter_openat { printf("%s\n" str(args.filename)); }
                                                     ^~~
hint: expected ')' or ','
'''),
    ("syntax-errors-in-first-and-last-probe",
     r'''BEGIN { $x = ; }
interval:s:1 { @n = 1; }
END { print(@n) }}''',
     {},
     r'''
stdin:1:14: error: syntax error: unexpected ';'
BEGIN { $x = ; }
             ^
hint: expected an expression
stdin:3:18: error: syntax error: unexpected '}'
END { print(@n) }}
                 ^
hint: this '}' has no matching '{'
'''),
    ("syntax-unmatched-close-brace",
     r'BEGIN { exit(); }}',
     {},
     r'''
stdin:1:18: error: syntax error: unexpected '}'
BEGIN { exit(); }}
                 ^
hint: this '}' has no matching '{'
'''),
    ("syntax-unmatched-close-paren",
     r'BEGIN { $x = 1); }',
     {},
     r'''
stdin:1:15: error: syntax error: unexpected ')'
BEGIN { $x = 1); }
              ^
hint: this ')' has no matching '('
'''),
    ("syntax-if-unclosed-paren",
     r'BEGIN { if ($x == 1 { } }',
     {},
     r'''
stdin:1:21: error: syntax error: unexpected '{'
BEGIN { if ($x == 1 { } }
                    ^
hint: expected ')' or ','
'''),
    ("syntax-expression-unclosed-paren",
     r'BEGIN { $x = (1 + 2; }',
     {},
     r'''
stdin:1:20: error: syntax error: unexpected ';'
BEGIN { $x = (1 + 2; }
                   ^
hint: expected ')' or ','
'''),
    ("syntax-map-key-unclosed-bracket",
     r'BEGIN { @x[1 = 2; }',
     {},
     r'''
stdin:1:14: error: syntax error: unexpected '='
BEGIN { @x[1 = 2; }
             ^
hint: expected ']' to close the '[' opened at 1:11
'''),
    ("syntax-predicate-unclosed",
     r'tracepoint:syscalls:sys_enter_openat /pid == 1 { }',
     {},
     r'''
stdin:1:48: error: syntax error: unexpected '{'
tracepoint:syscalls:sys_enter_openat /pid == 1 { }
                                               ^
hint: a predicate ends with '/' right before the probe's block: /pid == 1/ { ... }
'''),
    ("syntax-predicate-missing-block",
     r'BEGIN /1/ exit(); }',
     {},
     r'''
stdin:1:17: error: syntax error: unexpected ';'
BEGIN /1/ exit(); }
                ^
hint: a predicate ends with '/' right before the probe's block: /pid == 1/ { ... }
'''),
    ("syntax-else-without-if",
     r'BEGIN { else { } }',
     {},
     r'''
stdin:1:9: error: 'else' without a matching 'if'
BEGIN { else { } }
        ^~~~
hint: 'else' must follow the '}' of an 'if' block
'''),
    ("syntax-ternary-missing-colon",
     r'BEGIN { $x = pid ? 1; }',
     {},
     r'''
stdin:1:21: error: syntax error: unexpected ';'
BEGIN { $x = pid ? 1; }
                    ^
hint: expected ':'
'''),
    ("syntax-range-missing-end",
     r'BEGIN { for ($i : 0..) { } }',
     {},
     r'''
stdin:1:22: error: syntax error: unexpected ')'
BEGIN { for ($i : 0..) { } }
                     ^
hint: expected an expression
'''),
    ("syntax-cast-to-unknown-type",
     r'BEGIN { $x = (uint128)1; }',
     {},
     r'''
stdin:1:23: error: syntax error: unexpected '1'
BEGIN { $x = (uint128)1; }
                      ^
hint: 'uint128' is not a type: casts take uint8 ... int64, bool, or a struct, union or enum type
'''),
    ("syntax-cast-to-typedef-name",
     r'BEGIN { $x = (pid_t)pid; }',
     {},
     r'''
stdin:1:21: error: syntax error: unexpected 'pid'
BEGIN { $x = (pid_t)pid; }
                    ^~~
hint: 'pid_t' is not a type: casts take uint8 ... int64, bool, or a struct, union or enum type
'''),
    ("syntax-struct-definition-without-semicolon",
     r'''struct foo { int a; int b; }
BEGIN { exit(); }''',
     {},
     r'''
stdin:1:8: error: syntax error: unexpected 'foo'
struct foo { int a; int b; }
       ^~~
hint: a C struct definition ends with ';' after its closing '}'
'''),
    ("syntax-assign-to-field",
     r'BEGIN { $x = 1; $x.foo = 2; }',
     {},
     r'''
stdin:1:24: error: syntax error: unexpected '='
BEGIN { $x = 1; $x.foo = 2; }
                       ^
'''),
    ("syntax-error-after-tab",
     ('BEGIN {\n'
      '\t$x = 1 +;\n'
      '}'),
     {},
     ("stdin:2:10: error: syntax error: unexpected ';'\n"
     '\t$x = 1 +;\n'
     '\t        ^\n'
     'hint: expected an expression')),
    ("provider-unknown-tracepont",
     r'tracepont:syscalls:sys_enter_openat { }',
     {},
     r'''
stdin:1:1: error: unknown probe type 'tracepont'
tracepont:syscalls:sys_enter_openat { }
^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
hint: did you mean 'tracepoint'?
'''),
    ("provider-unknown-kprob",
     r'kprob:vfs_read { }',
     {},
     r'''
stdin:1:1: error: unknown probe type 'kprob'
kprob:vfs_read { }
^~~~~~~~~~~~~~
hint: did you mean 'kprobe'?
'''),
    ("provider-unknown-interal",
     r'interal:s:1 { }',
     {},
     r'''
stdin:1:1: error: unknown probe type 'interal'
interal:s:1 { }
^~~~~~~~~~~
hint: did you mean 'interval'?
'''),
    ("provider-unknown-no-suggestion",
     r'frobnicate:x { }',
     {},
     r'''
stdin:1:1: error: unknown probe type 'frobnicate'
frobnicate:x { }
^~~~~~~~~~~~
'''),
    ("provider-unknown-second-in-list",
     r'''tracepoint:syscalls:sys_enter_openat,
  tracepont:syscalls:sys_exit_openat { }''',
     {},
     r'''
stdin:2:3: error: unknown probe type 'tracepont'
  tracepont:syscalls:sys_exit_openat { }
  ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
hint: did you mean 'tracepoint'?
'''),
    ("tracepoint-missing-event",
     r'tracepoint:syscalls { }',
     {},
     r'''
stdin:1:1: error: a tracepoint needs a category and an event
tracepoint:syscalls { }
^~~~~~~~~~~~~~~~~~~
hint: the form is tracepoint:category:event (e.g. tracepoint:syscalls:sys_enter_openat)
'''),
    ("tracepoint-empty-category",
     r'tracepoint::sys_enter_openat { }',
     {},
     r'''
stdin:1:1: error: a tracepoint needs a category and an event
tracepoint::sys_enter_openat { }
^~~~~~~~~~~~~~~~~~~~~~~~~~~~
hint: the form is tracepoint:category:event (e.g. tracepoint:syscalls:sys_enter_openat)
'''),
    ("tracepoint-too-many-parts",
     r'tracepoint:syscalls:sys_enter_openat:extra { }',
     {},
     r'''
stdin:1:37: error: too many parts for the tracepoint probe type
tracepoint:syscalls:sys_enter_openat:extra { }
                                    ^~~~~~
hint: the form is tracepoint:category:event (e.g. tracepoint:syscalls:sys_enter_openat)
'''),
    ("tracepoint-not-found-suggestion",
     r'tracepoint:syscalls:sys_enter_opnat { }',
     {},
     r'''
stdin:1:21: error: tracepoint not found: syscalls:sys_enter_opnat
tracepoint:syscalls:sys_enter_opnat { }
                    ^~~~~~~~~~~~~~~
hint: did you mean 'sys_enter_openat'?
'''),
    ("tracepoint-not-found-alias",
     r't:sched:sched_swtch { }',
     {},
     r'''
stdin:1:9: error: tracepoint not found: sched:sched_swtch
t:sched:sched_swtch { }
        ^~~~~~~~~~~
hint: did you mean 'sched_switch'?
'''),
    ("tracepoint-category-not-found",
     r'tracepoint:sycalls:sys_enter_openat { }',
     {},
     r'''
stdin:1:12: error: tracepoint category not found: sycalls
tracepoint:sycalls:sys_enter_openat { }
           ^~~~~~~
hint: did you mean 'syscalls'?
'''),
    ("tracepoint-wildcard-matches-nothing",
     r'tracepoint:syscalls:nomatch_* { }',
     {},
     r'''
stdin:1:1: error: no tracepoints match 'syscalls:nomatch_*'
tracepoint:syscalls:nomatch_* { }
^~~~~~~~~~~~~~~~~~~~~~~~~~~~~
hint: list them with: pytrace -l 'tracepoint:syscalls:*'
'''),
    ("tracepoint-category-wildcard-matches-nothing",
     r'tracepoint:zz*:sys_enter_openat { }',
     {},
     r'''
stdin:1:1: error: no tracepoints match 'zz*:sys_enter_openat'
tracepoint:zz*:sys_enter_openat { }
^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
hint: list them with: pytrace -l 'tracepoint:zz*:*'
'''),
    ("rawtracepoint-missing-event",
     r'rawtracepoint { }',
     {},
     r'''
stdin:1:1: error: a raw tracepoint needs an event name
rawtracepoint { }
^~~~~~~~~~~~~
hint: the form is rawtracepoint:event or rawtracepoint:module:event (e.g. rawtracepoint:sched_switch)
'''),
    ("rawtracepoint-empty-event",
     r'rawtracepoint: { }',
     {},
     r'''
stdin:1:1: error: a raw tracepoint needs an event name
rawtracepoint: { }
^~~~~~~~~~~~~~
hint: the form is rawtracepoint:event or rawtracepoint:module:event (e.g. rawtracepoint:sched_switch)
'''),
    ("rawtracepoint-too-many-parts",
     r'rawtracepoint:a:b:c { }',
     {},
     r'''
stdin:1:18: error: too many parts for the rawtracepoint probe type
rawtracepoint:a:b:c { }
                 ^~
hint: the form is rawtracepoint:event or rawtracepoint:module:event (e.g. rawtracepoint:sched_switch)
'''),
    ("kprobe-missing-function",
     r'kprobe: { }',
     {},
     r'''
stdin:1:1: error: a kernel function is needed
kprobe: { }
^~~~~~~
hint: the form is kprobe:function, kprobe:function+offset or kprobe:module:function
'''),
    ("kprobe-bad-offset",
     r'kprobe:vfs_read+xyz { }',
     {},
     r'''
stdin:1:17: error: invalid offset 'xyz'
kprobe:vfs_read+xyz { }
                ^~~
hint: the form is kprobe:function, kprobe:function+offset or kprobe:module:function
'''),
    ("kprobe-empty-offset",
     r'kprobe:vfs_read+ { }',
     {},
     r'''
stdin:1:16: error: invalid offset ''
kprobe:vfs_read+ { }
               ^
hint: the form is kprobe:function, kprobe:function+offset or kprobe:module:function
'''),
    ("kprobe-too-many-parts",
     r'kprobe:a:b:c { }',
     {},
     r'''
stdin:1:11: error: too many parts for the kprobe probe type
kprobe:a:b:c { }
          ^~
hint: the form is kprobe:function, kprobe:function+offset or kprobe:module:function
'''),
    ("kprobe-bad-function-name",
     r'kprobe:bad-name { }',
     {},
     r'''
stdin:1:8: error: invalid function name 'bad-name'
kprobe:bad-name { }
       ^~~~~~~~
hint: the form is kprobe:function, kprobe:function+offset or kprobe:module:function
'''),
    ("kprobe-function-starts-with-digit",
     r'kprobe:9bad { }',
     {},
     r'''
stdin:1:8: error: invalid function name '9bad'
kprobe:9bad { }
       ^~~~
hint: the form is kprobe:function, kprobe:function+offset or kprobe:module:function
'''),
    ("kretprobe-offset",
     r'kretprobe:vfs_read+8 { }',
     {},
     r'''
stdin:1:19: error: a kretprobe cannot have an offset
kretprobe:vfs_read+8 { }
                  ^~
hint: the form is kretprobe:function, kretprobe:function+offset or kretprobe:module:function
'''),
    ("kretprobe-missing-function",
     r'kretprobe { }',
     {},
     r'''
stdin:1:1: error: a kernel function is needed
kretprobe { }
^~~~~~~~~
hint: the form is kretprobe:function, kretprobe:function+offset or kretprobe:module:function
'''),
    ("uprobe-missing-function",
     r'uprobe:/bin/bash { }',
     {},
     r'''
stdin:1:1: error: a binary and a function are needed
uprobe:/bin/bash { }
^~~~~~~~~~~~~~~~
hint: the form is uprobe:/path/to/binary:function (or a library name: uprobe:libc:malloc)
'''),
    ("uprobe-binary-not-found",
     r'uprobe:/nonexistent/bin:main { }',
     {},
     r'''
stdin:1:8: error: binary or library not found: /nonexistent/bin
uprobe:/nonexistent/bin:main { }
       ^~~~~~~~~~~~~~~~
hint: give the full path, e.g. uprobe:/usr/bin/bash:readline
'''),
    ("uprobe-bad-offset",
     r'uprobe:/bin/bash:readline+zz { }',
     {},
     r'''
stdin:1:27: error: invalid offset 'zz'
uprobe:/bin/bash:readline+zz { }
                          ^~
hint: the form is uprobe:/path/to/binary:function (or a library name: uprobe:libc:malloc)
'''),
    ("uprobe-bad-function-name",
     r'uprobe:/bin/bash:bad-name { }',
     {},
     r'''
stdin:1:18: warning: function 'bad-name' not found in /bin/bash
uprobe:/bin/bash:bad-name { }
                 ^~~~~~~~
hint: list them with: pytrace -l 'uprobe:/bin/bash:*'
error: no probes to attach: every attach point of the script was passed over
'''),
    ("uprobe-too-many-parts",
     r'uprobe:/bin/bash:readline:x { }',
     {},
     r'''
stdin:1:26: error: too many parts for a uprobe probe
uprobe:/bin/bash:readline:x { }
                         ^~
hint: the form is uprobe:/path/to/binary:function (or a library name: uprobe:libc:malloc)
'''),
    ("uretprobe-offset",
     r'uretprobe:/bin/bash:readline+4 { }',
     {},
     r'''
stdin:1:29: error: a uretprobe cannot have an offset
uretprobe:/bin/bash:readline+4 { }
                            ^~
hint: the form is uretprobe:/path/to/binary:function (or a library name: uretprobe:libc:malloc)
'''),
    ("usdt-missing-probe",
     r'usdt:/bin/bash { }',
     {},
     r'''
stdin:1:1: error: a binary and a probe name are needed
usdt:/bin/bash { }
^~~~~~~~~~~~~~
hint: the form is usdt:/path/to/binary:provider:probe or usdt:/path/to/binary:probe
'''),
    ("usdt-binary-not-found",
     r'usdt:/nonexistent:probe { }',
     {},
     r'''
stdin:1:6: error: binary or library not found: /nonexistent
usdt:/nonexistent:probe { }
     ^~~~~~~~~~~~
hint: give the full path, e.g. usdt:/usr/bin/python3:python:function__entry
'''),
    ("usdt-too-many-parts",
     r'usdt:/bin/bash:a:b:c { }',
     {},
     r'''
stdin:1:19: error: too many parts for the usdt probe type
usdt:/bin/bash:a:b:c { }
                  ^~
hint: the form is usdt:/path/to/binary:provider:probe or usdt:/path/to/binary:probe
'''),
    ("fentry-without-btf",
     r'fentry:vfs_read { }',
     {},
     r'''
stdin:1:1: error: fentry probes need kernel BTF, and this kernel has none
fentry:vfs_read { }
^~~~~~~~~~~~~~~
hint: BTF comes from /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF=y)
'''),
    ("fexit-without-btf",
     r'fexit:vfs_read { }',
     {},
     r'''
stdin:1:1: error: fexit probes need kernel BTF, and this kernel has none
fexit:vfs_read { }
^~~~~~~~~~~~~~
hint: BTF comes from /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF=y)
'''),
    ("fentry-missing-function",
     r'fentry: { }',
     {},
     r'''
stdin:1:1: error: a kernel function is needed
fentry: { }
^~~~~~~
hint: the form is fentry:function or fentry:module:function
'''),
    ("kfunc-too-many-parts",
     r'kfunc:a:b:c { }',
     {},
     r'''
stdin:1:10: error: too many parts for the fentry probe type
kfunc:a:b:c { }
         ^~
hint: the form is fentry:function or fentry:module:function
'''),
    ("profile-missing-value",
     r'profile:hz { }',
     {},
     r'''
stdin:1:1: error: a unit and a value are needed
profile:hz { }
^~~~~~~~~~
hint: the form is profile:hz:99, profile:s:1, profile:ms:10 or profile:us:100
'''),
    ("profile-unknown-unit",
     r'profile:xx:99 { }',
     {},
     r'''
stdin:1:9: error: unknown unit 'xx' (use hz, s, ms or us)
profile:xx:99 { }
        ^~
hint: the form is profile:hz:99, profile:s:1, profile:ms:10 or profile:us:100
'''),
    ("profile-zero-rate",
     r'profile:hz:0 { }',
     {},
     r'''
stdin:1:12: error: invalid value '0': a positive integer is needed
profile:hz:0 { }
           ^
hint: the form is profile:hz:99, profile:s:1, profile:ms:10 or profile:us:100
'''),
    ("profile-non-numeric-rate",
     r'profile:hz:abc { }',
     {},
     r'''
stdin:1:12: error: invalid value 'abc': a positive integer is needed
profile:hz:abc { }
           ^~~
hint: the form is profile:hz:99, profile:s:1, profile:ms:10 or profile:us:100
'''),
    ("profile-ns-unit",
     r'profile:ns:100 { }',
     {},
     r'''
stdin:1:9: error: unit 'ns' is not supported by profile probes
profile:ns:100 { }
        ^~
hint: the form is profile:hz:99, profile:s:1, profile:ms:10 or profile:us:100
'''),
    ("profile-too-many-parts",
     r'profile:hz:99:1 { }',
     {},
     r'''
stdin:1:14: error: too many parts for the profile probe type
profile:hz:99:1 { }
             ^~
hint: the form is profile:hz:99, profile:s:1, profile:ms:10 or profile:us:100
'''),
    ("interval-missing-value",
     r'interval:s { }',
     {},
     r'''
stdin:1:1: error: a unit and a value are needed
interval:s { }
^~~~~~~~~~
hint: the form is interval:hz:99, interval:s:1, interval:ms:10 or interval:us:100
'''),
    ("interval-zero",
     r'interval:s:0 { }',
     {},
     r'''
stdin:1:12: error: invalid value '0': a positive integer is needed
interval:s:0 { }
           ^
hint: the form is interval:hz:99, interval:s:1, interval:ms:10 or interval:us:100
'''),
    ("interval-unknown-unit",
     r'interval:minutes:1 { }',
     {},
     r'''
stdin:1:10: error: unknown unit 'minutes' (use hz, s, ms or us)
interval:minutes:1 { }
         ^~~~~~~
hint: the form is interval:hz:99, interval:s:1, interval:ms:10 or interval:us:100
'''),
    ("interval-bare",
     r'interval { }',
     {},
     r'''
stdin:1:1: error: a unit and a value are needed
interval { }
^~~~~~~~
hint: the form is interval:hz:99, interval:s:1, interval:ms:10 or interval:us:100
'''),
    ("interval-bad-suffixed-form",
     r'interval:5x { }',
     {},
     r'''
stdin:1:1: error: a unit and a value are needed
interval:5x { }
^~~~~~~~~~~
hint: the form is interval:hz:99, interval:s:1, interval:ms:10 or interval:us:100
'''),
    ("software-unknown-event",
     r'software:bogus-event:100 { }',
     {},
     r'''
stdin:1:10: error: software event not found: bogus-event
software:bogus-event:100 { }
         ^~~~~~~~~~~
hint: known software events: cpu-clock, cpu, task-clock, page-faults, faults, context-switches, cs, cpu-migrations, minor-faults, major-faults, alignment-faults, emulation-faults, dummy, bpf-output
'''),
    ("software-event-typo",
     r'software:page-fault { }',
     {},
     r'''
stdin:1:10: error: software event not found: page-fault
software:page-fault { }
         ^~~~~~~~~~
hint: did you mean 'page-faults'?
'''),
    ("software-zero-count",
     r'software:cs:0 { }',
     {},
     r'''
stdin:1:13: error: invalid count '0': a positive integer is needed
software:cs:0 { }
            ^
hint: the form is software:event or software:event:count (e.g. software:cpu-clock:1000)
'''),
    ("software-missing-event",
     r'software { }',
     {},
     r'''
stdin:1:1: error: an event name is needed
software { }
^~~~~~~~
hint: the form is software:event or software:event:count (e.g. software:cpu-clock:1000)
'''),
    ("software-too-many-parts",
     r'software:cs:1:2 { }',
     {},
     r'''
stdin:1:14: error: too many parts for the software probe type
software:cs:1:2 { }
             ^~
hint: the form is software:event or software:event:count (e.g. software:cpu-clock:1000)
'''),
    ("hardware-event-typo",
     r'hardware:cycle { }',
     {},
     r'''
stdin:1:10: error: hardware event not found: cycle
hardware:cycle { }
         ^~~~~
hint: did you mean 'cycles'?
'''),
    ("hardware-bad-count",
     r'hardware:cycles:abc { }',
     {},
     r'''
stdin:1:17: error: invalid count 'abc': a positive integer is needed
hardware:cycles:abc { }
                ^~~
hint: the form is hardware:event or hardware:event:count (e.g. hardware:cpu-cycles:1000)
'''),
    ("watchpoint-missing-mode",
     r'watchpoint:0x1000:8 { }',
     {},
     r'''
stdin:1:1: error: an address, a length and a mode are needed
watchpoint:0x1000:8 { }
^~~~~~~~~~~~~~~~~~~
hint: the form is watchpoint:0xADDRESS:LENGTH:MODE (e.g. watchpoint:0x404020:8:w)
'''),
    ("watchpoint-bad-address",
     r'watchpoint:zz:8:w { }',
     {},
     r'''
stdin:1:12: error: invalid address 'zz'
watchpoint:zz:8:w { }
           ^~
hint: the form is watchpoint:0xADDRESS:LENGTH:MODE (e.g. watchpoint:0x404020:8:w)
'''),
    ("watchpoint-bad-length",
     r'watchpoint:0x1000:3:w { }',
     {},
     r'''
stdin:1:19: error: invalid length '3' (use 1, 2, 4 or 8)
watchpoint:0x1000:3:w { }
                  ^
hint: the form is watchpoint:0xADDRESS:LENGTH:MODE (e.g. watchpoint:0x404020:8:w)
'''),
    ("watchpoint-bad-mode",
     r'watchpoint:0x1000:8:q { }',
     {},
     r'''
stdin:1:21: error: invalid mode 'q' (use r, w, x or rw)
watchpoint:0x1000:8:q { }
                    ^
hint: the form is watchpoint:0xADDRESS:LENGTH:MODE (e.g. watchpoint:0x404020:8:w)
'''),
    ("watchpoint-exec-combined",
     r'watchpoint:0x1000:8:rx { }',
     {},
     r'''
stdin:1:21: error: mode 'x' cannot be combined with 'r' or 'w'
watchpoint:0x1000:8:rx { }
                    ^~
hint: the form is watchpoint:0xADDRESS:LENGTH:MODE (e.g. watchpoint:0x404020:8:w)
'''),
    ("watchpoint-too-many-parts",
     r'watchpoint:0x1000:8:w:extra { }',
     {},
     r'''
stdin:1:22: error: too many parts for the watchpoint probe type
watchpoint:0x1000:8:w:extra { }
                     ^~~~~~
hint: the form is watchpoint:0xADDRESS:LENGTH:MODE (e.g. watchpoint:0x404020:8:w)
'''),
    ("asyncwatchpoint-missing-mode",
     r'asyncwatchpoint:0x1000:8 { }',
     {},
     r'''
stdin:1:1: error: an address, a length and a mode are needed
asyncwatchpoint:0x1000:8 { }
^~~~~~~~~~~~~~~~~~~~~~~~
hint: the form is asyncwatchpoint:0xADDRESS:LENGTH:MODE (e.g. asyncwatchpoint:0x404020:8:w)
'''),
    ("iter-missing-name",
     r'iter { }',
     {},
     r'''
stdin:1:1: error: an iterator name is needed
iter { }
^~~~
hint: the form is iter:task, iter:task_file, iter:task_vma or iter:NAME:PIN_PATH
'''),
    ("iter-unknown-iterator",
     r'iter:tsk { }',
     {},
     r'''
stdin:1:6: error: iterator not found: tsk
iter:tsk { }
     ^~~
hint: did you mean 'task'?
'''),
    ("iter-too-many-parts",
     r'iter:task:a:b { }',
     {},
     r'''
stdin:1:12: error: too many parts for the iter probe type
iter:task:a:b { }
           ^~
hint: the form is iter:task, iter:task_file, iter:task_vma or iter:NAME:PIN_PATH
'''),
    ("iter-mixed-with-begin",
     r'iter:task, BEGIN { }',
     {},
     r'''
stdin:1:1: error: iter probes cannot share a block with other probe types
iter:task, BEGIN { }
^~~~~~~~~~~~~~~~~~~~
'''),
    ("begin-with-parts",
     r'BEGIN:foo { }',
     {},
     r'''
stdin:1:6: error: BEGIN probes take no parts after the name
BEGIN:foo { }
     ^~~~
hint: the form is BEGIN
'''),
    ("end-with-parts",
     r'END:x:y { }',
     {},
     r'''
stdin:1:4: error: END probes take no parts after the name
END:x:y { }
   ^~~~
hint: the form is END
'''),
    ("attach-point-missing-parameter",
     r'tracepoint:syscalls:sys_enter_$1 { }',
     {},
     r'''
stdin:1:31: error: positional parameter $1 is not set
tracepoint:syscalls:sys_enter_$1 { }
                              ^~
hint: pass it after the script: pytrace script.pt ARG...
'''),
    ("attach-point-parameter-zero",
     r'tracepoint:syscalls:sys_enter_$0 { }',
     {},
     r'''
stdin:1:31: error: positional parameters start at $1
tracepoint:syscalls:sys_enter_$0 { }
                              ^~
'''),
    ("unknown-builtin-comn",
     r'BEGIN { printf("%s\n", comn); }',
     {},
     r'''
stdin:1:24: error: unknown identifier 'comn'
BEGIN { printf("%s\n", comn); }
                       ^~~~
hint: did you mean 'comm'?
'''),
    ("unknown-identifier-no-suggestion",
     r'BEGIN { $x = frobnicate; }',
     {},
     r'''
stdin:1:14: error: unknown identifier 'frobnicate'
BEGIN { $x = frobnicate; }
             ^~~~~~~~~~
'''),
    ("unknown-identifier-missing-sigil-variable",
     r'BEGIN { $count = 1; $y = count + 1; }',
     {},
     r'''
stdin:1:26: error: count is a function; call it as count(...)
BEGIN { $count = 1; $y = count + 1; }
                         ^~~~~
hint: did you mean '$count'?
'''),
    ("unknown-identifier-missing-sigil-map",
     r'BEGIN { @total = 1; $y = total; }',
     {},
     r'''
stdin:1:26: error: unknown identifier 'total'
BEGIN { @total = 1; $y = total; }
                         ^~~~~
hint: did you mean '@total'?
'''),
    ("unknown-function-cuont",
     r'BEGIN { @x = cuont(); }',
     {},
     r'''
stdin:1:14: error: unknown function 'cuont'
BEGIN { @x = cuont(); }
             ^~~~~
hint: did you mean 'count'?
'''),
    ("unknown-function-prinft",
     r'BEGIN { prinft("hi\n"); }',
     {},
     r'''
stdin:1:9: error: unknown function 'prinft'
BEGIN { prinft("hi\n"); }
        ^~~~~~
hint: did you mean 'printf'?
'''),
    ("unknown-function-no-suggestion",
     r'BEGIN { frobnicate(1); }',
     {},
     r'''
stdin:1:9: error: unknown function 'frobnicate'
BEGIN { frobnicate(1); }
        ^~~~~~~~~~
'''),
    ("unknown-function-args-still-checked",
     r'BEGIN { frobnicate(comn); }',
     {},
     r'''
stdin:1:9: error: unknown function 'frobnicate'
BEGIN { frobnicate(comn); }
        ^~~~~~~~~~
stdin:1:20: error: unknown identifier 'comn'
BEGIN { frobnicate(comn); }
                   ^~~~
hint: did you mean 'comm'?
'''),
    ("undefined-map",
     r'BEGIN { printf("%d\n", @missing); }',
     {},
     r'''
stdin:1:24: error: undefined map @missing
BEGIN { printf("%d\n", @missing); }
                       ^~~~~~~~
'''),
    ("undefined-map-suggestion",
     r'BEGIN { @count = 1; } END { printf("%d\n", @cuont); }',
     {},
     r'''
stdin:1:44: error: undefined map @cuont
BEGIN { @count = 1; } END { printf("%d\n", @cuont); }
                                           ^~~~~~
hint: did you mean '@count'?
'''),
    ("undefined-variable",
     r'BEGIN { printf("%d\n", $undefined); }',
     {},
     r'''
stdin:1:24: error: undefined variable $undefined
BEGIN { printf("%d\n", $undefined); }
                       ^~~~~~~~~~
'''),
    ("undefined-variable-suggestion",
     r'BEGIN { $abc = 1; printf("%d\n", $abd); }',
     {},
     r'''
stdin:1:34: error: undefined variable $abd
BEGIN { $abc = 1; printf("%d\n", $abd); }
                                 ^~~~
hint: did you mean '$abc'?
'''),
    ("undefined-variable-other-probe",
     r'BEGIN { $x = 1; } END { printf("%d\n", $x); }',
     {},
     r'''
stdin:1:40: error: undefined variable $x
BEGIN { $x = 1; } END { printf("%d\n", $x); }
                                       ^~
'''),
    ("function-used-as-variable",
     r'BEGIN { $x = printf; }',
     {},
     r'''
stdin:1:14: error: printf is a function; call it as printf(...)
BEGIN { $x = printf; }
             ^~~~~~
hint: usage: printf(fmt, ...)
'''),
    ("variable-builtin-called-with-arguments",
     r'BEGIN { @x = pid(1); }',
     {},
     r'''
stdin:1:14: error: pid takes no arguments, 1 given
BEGIN { @x = pid(1); }
             ^~~~~~
hint: write 'pid'
'''),
    ("arity-printf-0",
     r'BEGIN { printf(); }',
     {},
     r'''
stdin:1:9: error: printf() takes at least 1 argument, 0 given
BEGIN { printf(); }
        ^~~~~~~~
hint: usage: printf(fmt, ...)
'''),
    ("arity-print-0",
     r'BEGIN { print(); }',
     {},
     r'''
stdin:1:9: error: print() takes 1 to 3 arguments, 0 given
BEGIN { print(); }
        ^~~~~~~
hint: usage: print(@map[, top[, div]]) or print(value)
'''),
    ("arity-time-2",
     r'BEGIN { time(1, 2); }',
     {},
     r'''
stdin:1:9: error: time() takes at most 1 argument, 2 given
BEGIN { time(1, 2); }
        ^~~~~~~~~~
hint: usage: time([fmt])
'''),
    ("arity-strftime-1",
     r'BEGIN { strftime("%H"); }',
     {},
     r'''
stdin:1:9: error: strftime() takes 2 arguments, 1 given
BEGIN { strftime("%H"); }
        ^~~~~~~~~~~~~~
hint: usage: strftime(fmt, nsecs)
'''),
    ("arity-join-0",
     r'BEGIN { join(); }',
     {},
     r'''
stdin:1:9: error: join() takes 1 or 2 arguments, 0 given
BEGIN { join(); }
        ^~~~~~
hint: usage: join(argv[, sep])
'''),
    ("arity-str-0",
     r'BEGIN { str(); }',
     {},
     r'''
stdin:1:9: error: str() takes 1 or 2 arguments, 0 given
BEGIN { str(); }
        ^~~~~
hint: usage: str(ptr[, length])
'''),
    ("arity-str-3",
     r'BEGIN { str(1, 2, 3); }',
     {},
     r'''
stdin:1:9: error: str() takes 1 or 2 arguments, 3 given
BEGIN { str(1, 2, 3); }
        ^~~~~~~~~~~~
hint: usage: str(ptr[, length])
'''),
    ("arity-buf-0",
     r'BEGIN { buf(); }',
     {},
     r'''
stdin:1:9: error: buf() takes 1 or 2 arguments, 0 given
BEGIN { buf(); }
        ^~~~~
hint: usage: buf(ptr[, length])
'''),
    ("arity-ksym-0",
     r'BEGIN { ksym(); }',
     {},
     r'''
stdin:1:9: error: ksym() takes 1 argument, 0 given
BEGIN { ksym(); }
        ^~~~~~
hint: usage: ksym(addr)
'''),
    ("arity-usym-2",
     r'BEGIN { usym(1, 2); }',
     {},
     r'''
stdin:1:9: error: usym() takes 1 argument, 2 given
BEGIN { usym(1, 2); }
        ^~~~~~~~~~
hint: usage: usym(addr)
'''),
    ("arity-kaddr-0",
     r'BEGIN { kaddr(); }',
     {},
     r'''
stdin:1:9: error: kaddr() takes 1 argument, 0 given
BEGIN { kaddr(); }
        ^~~~~~~
hint: usage: kaddr("symbol")
'''),
    ("arity-ntop-0",
     r'BEGIN { ntop(); }',
     {},
     r'''
stdin:1:9: error: ntop() takes 1 or 2 arguments, 0 given
BEGIN { ntop(); }
        ^~~~~~
hint: usage: ntop([af,] addr)
'''),
    ("arity-ntop-3",
     r'BEGIN { ntop(1, 2, 3); }',
     {},
     r'''
stdin:1:9: error: ntop() takes 1 or 2 arguments, 3 given
BEGIN { ntop(1, 2, 3); }
        ^~~~~~~~~~~~~
hint: usage: ntop([af,] addr)
'''),
    ("arity-cgroupid-0",
     r'BEGIN { cgroupid(); }',
     {},
     r'''
stdin:1:9: error: cgroupid() takes 1 argument, 0 given
BEGIN { cgroupid(); }
        ^~~~~~~~~~
hint: usage: cgroupid("path")
'''),
    ("arity-macaddr-0",
     r'BEGIN { macaddr(); }',
     {},
     r'''
stdin:1:9: error: macaddr() takes 1 argument, 0 given
BEGIN { macaddr(); }
        ^~~~~~~~~
hint: usage: macaddr(ptr)
'''),
    ("arity-strncmp-2",
     r'BEGIN { strncmp("a", "b"); }',
     {},
     r'''
stdin:1:9: error: strncmp() takes 3 arguments, 2 given
BEGIN { strncmp("a", "b"); }
        ^~~~~~~~~~~~~~~~~
hint: usage: strncmp(a, b, n)
'''),
    ("arity-strcontains-1",
     r'BEGIN { strcontains("a"); }',
     {},
     r'''
stdin:1:9: error: strcontains() takes 2 arguments, 1 given
BEGIN { strcontains("a"); }
        ^~~~~~~~~~~~~~~~
hint: usage: strcontains(haystack, needle)
'''),
    ("arity-exit-2",
     r'BEGIN { exit(1, 2); }',
     {},
     r'''
stdin:1:9: error: exit() takes at most 1 argument, 2 given
BEGIN { exit(1, 2); }
        ^~~~~~~~~~
hint: usage: exit([code])
'''),
    ("arity-clear-0",
     r'BEGIN { clear(); }',
     {},
     r'''
stdin:1:9: error: clear() takes 1 argument, 0 given
BEGIN { clear(); }
        ^~~~~~~
hint: usage: clear(@map)
'''),
    ("arity-zero-2",
     r'BEGIN { zero(@a, @b); }',
     {},
     r'''
stdin:1:9: error: zero() takes 1 argument, 2 given
BEGIN { zero(@a, @b); }
        ^~~~~~~~~~~~
hint: usage: zero(@map)
stdin:1:14: error: undefined map @a
BEGIN { zero(@a, @b); }
             ^~
stdin:1:18: error: undefined map @b
BEGIN { zero(@a, @b); }
                 ^~
'''),
    ("arity-delete-0",
     r'BEGIN { delete(); }',
     {},
     r'''
stdin:1:9: error: delete() takes 1 or 2 arguments, 0 given
BEGIN { delete(); }
        ^~~~~~~~
hint: usage: delete(@map[key]) or delete(@map, key)
'''),
    ("arity-has_key-1",
     r'BEGIN { has_key(@x); }',
     {},
     r'''
stdin:1:9: error: has_key() takes 2 arguments, 1 given
BEGIN { has_key(@x); }
        ^~~~~~~~~~~
hint: usage: has_key(@map, key)
stdin:1:17: error: undefined map @x
BEGIN { has_key(@x); }
                ^~
'''),
    ("arity-len-0",
     r'BEGIN { len(); }',
     {},
     r'''
stdin:1:9: error: len() takes 1 argument, 0 given
BEGIN { len(); }
        ^~~~~
hint: usage: len(@map) or len(stack)
'''),
    ("arity-bswap-0",
     r'BEGIN { bswap(); }',
     {},
     r'''
stdin:1:9: error: bswap() takes 1 argument, 0 given
BEGIN { bswap(); }
        ^~~~~~~
hint: usage: bswap(n)
'''),
    ("arity-kptr-0",
     r'BEGIN { kptr(); }',
     {},
     r'''
stdin:1:9: error: kptr() takes 1 argument, 0 given
BEGIN { kptr(); }
        ^~~~~~
hint: usage: kptr(p)
'''),
    ("arity-uptr-2",
     r'BEGIN { uptr(1, 2); }',
     {},
     r'''
stdin:1:9: error: uptr() takes 1 argument, 2 given
BEGIN { uptr(1, 2); }
        ^~~~~~~~~~
hint: usage: uptr(p)
'''),
    ("arity-strerror-0",
     r'BEGIN { strerror(); }',
     {},
     r'''
stdin:1:9: error: strerror() takes 1 argument, 0 given
BEGIN { strerror(); }
        ^~~~~~~~~~
hint: usage: strerror(errno)
'''),
    ("arity-pton-0",
     r'BEGIN { pton(); }',
     {},
     r'''
stdin:1:9: error: pton() takes 1 argument, 0 given
BEGIN { pton(); }
        ^~~~~~
hint: usage: pton("addr")
'''),
    ("arity-cat-0",
     r'BEGIN { cat(); }',
     {},
     r'''
stdin:1:9: error: cat() takes at least 1 argument, 0 given
BEGIN { cat(); }
        ^~~~~
hint: usage: cat(fmt, ...)
'''),
    ("arity-debugf-0",
     r'BEGIN { debugf(); }',
     {},
     r'''
stdin:1:9: error: debugf() takes at least 1 argument, 0 given
BEGIN { debugf(); }
        ^~~~~~~~
hint: usage: debugf(fmt, ...)
'''),
    ("arity-kstack-3",
     r'BEGIN { kstack(1, 2, 3); }',
     {},
     r'''
stdin:1:9: error: kstack() takes at most 2 arguments, 3 given
BEGIN { kstack(1, 2, 3); }
        ^~~~~~~~~~~~~~~
hint: usage: kstack([mode,] [limit])
'''),
    ("arity-ustack-3",
     r'BEGIN { ustack(perf, 1, 2); }',
     {},
     r'''
stdin:1:9: error: ustack() takes at most 2 arguments, 3 given
BEGIN { ustack(perf, 1, 2); }
        ^~~~~~~~~~~~~~~~~~
hint: usage: ustack([mode,] [limit])
'''),
    ("arity-uaddr-0",
     r'uprobe:/bin/bash:readline { uaddr(); }',
     {},
     r'''
stdin:1:29: error: uaddr() takes 1 argument, 0 given
uprobe:/bin/bash:readline { uaddr(); }
                            ^~~~~~~
hint: usage: uaddr("symbol")
'''),
    ("arity-reg-0",
     r'kprobe:vfs_read { reg(); }',
     {},
     r'''
stdin:1:19: error: reg() takes 1 argument, 0 given
kprobe:vfs_read { reg(); }
                  ^~~~~
hint: usage: reg("name")
'''),
    ("arity-path-0",
     r'iter:task { path(); }',
     {},
     r'''
stdin:1:13: error: path() takes 1 argument, 0 given
iter:task { path(); }
            ^~~~~~
hint: usage: path(struct path *)
'''),
    ("arity-system-0",
     r'BEGIN { system(); }',
     {"unsafe": True},
     r'''
stdin:1:9: error: system() takes at least 1 argument, 0 given
BEGIN { system(); }
        ^~~~~~~~
hint: usage: system(fmt, ...)
'''),
    ("arity-signal-0",
     r'kprobe:vfs_read { signal(); }',
     {"unsafe": True},
     r'''
stdin:1:19: error: signal() takes 1 argument, 0 given
kprobe:vfs_read { signal(); }
                  ^~~~~~~~
hint: usage: signal(sig)
'''),
    ("arity-override-2",
     r'kprobe:vfs_read { override(1, 2); }',
     {"unsafe": True},
     r'''
stdin:1:19: error: override() takes 1 argument, 2 given
kprobe:vfs_read { override(1, 2); }
                  ^~~~~~~~~~~~~~
hint: usage: override(rc)
'''),
    ("arity-count-1",
     r'BEGIN { @x = count(1); }',
     {},
     r'''
stdin:1:14: error: count() takes no arguments, 1 given
BEGIN { @x = count(1); }
             ^~~~~~~~
hint: usage: @m = count()
'''),
    ("arity-sum-0",
     r'BEGIN { @x = sum(); }',
     {},
     r'''
stdin:1:14: error: sum() takes 1 argument, 0 given
BEGIN { @x = sum(); }
             ^~~~~
hint: usage: @m = sum(value)
'''),
    ("arity-avg-2",
     r'BEGIN { @x = avg(1, 2); }',
     {},
     r'''
stdin:1:14: error: avg() takes 1 argument, 2 given
BEGIN { @x = avg(1, 2); }
             ^~~~~~~~~
hint: usage: @m = avg(value)
'''),
    ("arity-min-0",
     r'BEGIN { @x = min(); }',
     {},
     r'''
stdin:1:14: error: min() takes 1 argument, 0 given
BEGIN { @x = min(); }
             ^~~~~
hint: usage: @m = min(value)
'''),
    ("arity-max-2",
     r'BEGIN { @x = max(1, 2); }',
     {},
     r'''
stdin:1:14: error: max() takes 1 argument, 2 given
BEGIN { @x = max(1, 2); }
             ^~~~~~~~~
hint: usage: @m = max(value)
'''),
    ("arity-stats-0",
     r'BEGIN { @x = stats(); }',
     {},
     r'''
stdin:1:14: error: stats() takes 1 argument, 0 given
BEGIN { @x = stats(); }
             ^~~~~~~
hint: usage: @m = stats(value)
'''),
    ("arity-hist-0",
     r'BEGIN { @x = hist(); }',
     {},
     r'''
stdin:1:14: error: hist() takes 1 or 2 arguments, 0 given
BEGIN { @x = hist(); }
             ^~~~~~
hint: usage: @m = hist(value[, bits])
'''),
    ("arity-hist-3",
     r'BEGIN { @x = hist(1, 2, 3); }',
     {},
     r'''
stdin:1:14: error: hist() takes 1 or 2 arguments, 3 given
BEGIN { @x = hist(1, 2, 3); }
             ^~~~~~~~~~~~~
hint: usage: @m = hist(value[, bits])
'''),
    ("arity-lhist-3",
     r'BEGIN { @x = lhist(1, 0, 10); }',
     {},
     r'''
stdin:1:14: error: lhist() takes 4 arguments, 3 given
BEGIN { @x = lhist(1, 0, 10); }
             ^~~~~~~~~~~~~~~
hint: usage: @m = lhist(value, min, max, step)
'''),
    ("type-string-plus-int",
     r'BEGIN { $x = "a" + 1; }',
     {},
     r'''
stdin:1:14: error: '+' cannot be applied to string[2] and int64
BEGIN { $x = "a" + 1; }
             ^~~~~~~
'''),
    ("type-comm-minus-int",
     r'BEGIN { $x = comm - 1; }',
     {},
     r'''
stdin:1:14: error: '-' cannot be applied to string[16] and int64
BEGIN { $x = comm - 1; }
             ^~~~~~~~
'''),
    ("type-compare-string-with-int",
     r'BEGIN { if ("abc" == 1) { } }',
     {},
     r'''
stdin:1:13: error: cannot compare string[4] with int64
BEGIN { if ("abc" == 1) { } }
            ^~~~~~~~~~
hint: strings compare only with strings; use str() to read a char pointer
'''),
    ("type-compare-comm-with-int",
     r'BEGIN { if (comm == 1) { } }',
     {},
     r'''
stdin:1:13: error: cannot compare string[16] with int64
BEGIN { if (comm == 1) { } }
            ^~~~~~~~~
hint: strings compare only with strings; use str() to read a char pointer
'''),
    ("type-string-less-than-string",
     r'BEGIN { if (comm < "a") { } }',
     {},
     r'''
stdin:1:13: error: '<' cannot be applied to string[16] and string[2]
BEGIN { if (comm < "a") { } }
            ^~~~~~~~~~
'''),
    ("type-string-condition",
     r'BEGIN { if ("abc") { } }',
     {},
     r'''
stdin:1:13: error: the condition of 'if' must be an integer or a pointer, not string[4]
BEGIN { if ("abc") { } }
            ^~~~~
'''),
    ("type-string-predicate",
     r'BEGIN /"abc"/ { }',
     {},
     r'''
stdin:1:8: error: a predicate must be an integer or a pointer, not string[4]
BEGIN /"abc"/ { }
       ^~~~~
'''),
    ("type-string-while-condition",
     r'BEGIN { while ("x") { } }',
     {},
     r'''
stdin:1:16: error: the condition of 'while' must be an integer, not string[2]
BEGIN { while ("x") { } }
               ^~~
'''),
    ("type-string-ternary-condition",
     r'BEGIN { $x = "a" ? 1 : 2; }',
     {},
     r'''
stdin:1:14: error: the condition of '?:' must be an integer or a pointer, not string[2]
BEGIN { $x = "a" ? 1 : 2; }
             ^~~
'''),
    ("type-ternary-branch-mismatch",
     r'BEGIN { $x = pid ? "a" : 2; }',
     {},
     r'''
stdin:1:14: error: the branches of '?:' have different types: string[2] and int64
BEGIN { $x = pid ? "a" : 2; }
             ^~~~~~~~~~~~~
'''),
    ("type-logical-and-string",
     r'BEGIN { if (pid && comm) { } }',
     {},
     r'''
stdin:1:20: error: '&&' needs integer or pointer operands, not string[16]
BEGIN { if (pid && comm) { } }
                   ^~~~
'''),
    ("type-not-string",
     r'BEGIN { $x = !"a"; }',
     {},
     r'''
stdin:1:14: error: '!' cannot be applied to string[2]
BEGIN { $x = !"a"; }
             ^~~~
'''),
    ("type-negate-string",
     r'BEGIN { $x = -"a"; }',
     {},
     r'''
stdin:1:14: error: '-' cannot be applied to string[2]
BEGIN { $x = -"a"; }
             ^~~~
'''),
    ("type-complement-comm",
     r'BEGIN { $x = ~comm; }',
     {},
     r'''
stdin:1:14: error: '~' cannot be applied to string[16]
BEGIN { $x = ~comm; }
             ^~~~~
'''),
    ("type-dereference-string",
     r'BEGIN { $x = *comm; }',
     {},
     r'''
stdin:1:14: error: cannot dereference string[16]
BEGIN { $x = *comm; }
             ^~~~~
'''),
    ("type-dereference-void-pointer",
     r'tracepoint:kmem:kfree { $x = *args.ptr; }',
     {},
     r'''
stdin:1:30: error: cannot dereference a void pointer
tracepoint:kmem:kfree { $x = *args.ptr; }
                             ^~~~~~~~~
hint: cast it first: *(uint64 *)p
'''),
    ("type-index-void-pointer",
     r'tracepoint:kmem:kfree { $x = args.ptr[1]; }',
     {},
     r'''
stdin:1:30: error: cannot index a void pointer
tracepoint:kmem:kfree { $x = args.ptr[1]; }
                             ^~~~~~~~~~~
hint: cast it first: ((uint8 *)p)[i]
'''),
    ("type-dereference-void-ctx",
     r'BEGIN { $x = *ctx; }',
     {},
     r'''
stdin:1:14: error: cannot dereference a void pointer
BEGIN { $x = *ctx; }
             ^~~~
hint: cast it first: *(uint64 *)p
'''),
    ("type-field-of-integer",
     r'BEGIN { $x = pid.foo; }',
     {},
     r'''
stdin:1:18: error: cannot access field 'foo' of uint32
BEGIN { $x = pid.foo; }
                 ^~~
'''),
    ("type-field-of-string",
     r'BEGIN { $x = comm.len; }',
     {},
     r'''
stdin:1:19: error: cannot access field 'len' of string[16]
BEGIN { $x = comm.len; }
                  ^~~
'''),
    ("type-unknown-args-field",
     r'tracepoint:syscalls:sys_enter_openat { printf("%s\n", str(args.filenme)); }',
     {},
     r'''
stdin:1:64: error: args has no field 'filenme'
tracepoint:syscalls:sys_enter_openat { printf("%s\n", str(args.filenme)); }
                                                               ^~~~~~~
hint: did you mean 'filename'?
'''),
    ("type-unknown-args-field-arrow",
     r'tracepoint:syscalls:sys_enter_openat { printf("%s\n", str(args->flename)); }',
     {},
     r'''
stdin:1:65: error: args has no field 'flename'
tracepoint:syscalls:sys_enter_openat { printf("%s\n", str(args->flename)); }
                                                                ^~~~~~~
hint: did you mean 'filename'?
'''),
    ("type-unknown-args-field-via-variable",
     r'tracepoint:syscalls:sys_enter_openat { $a = args; $f = $a.mdoe; }',
     {},
     r'''
stdin:1:59: error: args has no field 'mdoe'
tracepoint:syscalls:sys_enter_openat { $a = args; $f = $a.mdoe; }
                                                          ^~~~
hint: did you mean 'mode'?
'''),
    ("type-args-field-not-in-every-probe",
     r'tracepoint:syscalls:sys_enter_openat,tracepoint:syscalls:sys_enter_read { printf("%d\n", args.fd); }',
     {},
     r'''
stdin:1:95: error: args.fd is not available in every probe of this block
tracepoint:syscalls:sys_enter_openat,tracepoint:syscalls:sys_enter_read { printf("%d\n", args.fd); }
                                                                                              ^~
hint: tracepoint:syscalls:sys_enter_openat has no field 'fd'
'''),
    ("type-args-field-wildcard",
     r'tracepoint:syscalls:sys_enter_* { printf("%s\n", str(args.filename)); }',
     {},
     r'''
stdin:1:59: error: args.filename is not available in every probe of this block
tracepoint:syscalls:sys_enter_* { printf("%s\n", str(args.filename)); }
                                                          ^~~~~~~~
hint: tracepoint:syscalls:sys_enter_accept and 329 more have no field 'filename'
'''),
    ("type-tuple-index-out-of-range",
     r'BEGIN { $t = (1, 2); $x = $t.2; }',
     {},
     r'''
stdin:1:30: error: tuple index 2 is out of range: the tuple has 2 elements
BEGIN { $t = (1, 2); $x = $t.2; }
                             ^
hint: valid indexes are 0 to 1
'''),
    ("type-tuple-field-name",
     r'BEGIN { $t = (1, 2); $x = $t.a; }',
     {},
     r'''
stdin:1:30: error: tuples are indexed with numbers ('.0'), not '.a'
BEGIN { $t = (1, 2); $x = $t.a; }
                             ^
'''),
    ("type-tuple-index-of-integer",
     r'BEGIN { $x = pid.0; }',
     {},
     r'''
stdin:1:14: error: '.0' needs a tuple, not uint32
BEGIN { $x = pid.0; }
             ^~~~~
'''),
    ("type-tuple-compare-different-sizes",
     r'BEGIN { $a = (1, 2); $b = (1, 2, 3); if ($a == $b) { } }',
     {},
     r'''
stdin:1:42: error: '==' cannot be applied to (int64, int64) and (int64, int64, int64)
BEGIN { $a = (1, 2); $b = (1, 2, 3); if ($a == $b) { } }
                                         ^~~~~~~~
'''),
    ("type-cast-string-to-int",
     r'BEGIN { $x = (int32)"abc"; }',
     {},
     r'''
stdin:1:14: error: cannot cast string[4] to int32
BEGIN { $x = (int32)"abc"; }
             ^~~~~~~~~~~~
'''),
    ("type-cast-comm-to-int",
     r'BEGIN { $x = (uint64)comm; }',
     {},
     r'''
stdin:1:14: error: cannot cast string[16] to uint64
BEGIN { $x = (uint64)comm; }
             ^~~~~~~~~~~~
'''),
    ("type-cast-to-struct-value",
     r'BEGIN { $x = (struct foo)0; }',
     {},
     r'''
stdin:1:15: error: unknown type 'struct foo'
BEGIN { $x = (struct foo)0; }
              ^~~~~~~~~~
hint: kernel types come from BTF; other types need a definition in the script
'''),
    ("type-cast-to-unknown-struct-pointer",
     r'BEGIN { $x = (struct foo *)0; }',
     {},
     r'''
stdin:1:15: error: unknown type 'struct foo'
BEGIN { $x = (struct foo *)0; }
              ^~~~~~~~~~~~
hint: kernel types come from BTF; other types need a definition in the script
'''),
    ("type-unknown-struct-field",
     r'''struct foo { int a; int b; };
BEGIN { $p = (struct foo *)0; $x = $p->c; }''',
     {},
     r'''
stdin:2:40: error: struct foo has no field 'c'
BEGIN { $p = (struct foo *)0; $x = $p->c; }
                                       ^
'''),
    ("type-field-of-int-field",
     r'''struct foo { int a; int b; };
BEGIN { $p = (struct foo *)0; $x = $p->a->b; }''',
     {},
     r'''
stdin:2:43: error: cannot access field 'b' of int32
BEGIN { $p = (struct foo *)0; $x = $p->a->b; }
                                          ^
'''),
    ("type-sizeof-unknown-struct",
     r'BEGIN { $x = sizeof(struct nope); }',
     {},
     r'''
stdin:1:21: error: unknown type 'struct nope'
BEGIN { $x = sizeof(struct nope); }
                    ^~~~~~~~~~~
hint: kernel types come from BTF; other types need a definition in the script
'''),
    ("type-offsetof-unknown-struct",
     r'BEGIN { $x = offsetof(struct nope, a); }',
     {},
     r'''
stdin:1:23: error: unknown type 'struct nope'
BEGIN { $x = offsetof(struct nope, a); }
                      ^~~~~~~~~~~
hint: kernel types come from BTF; other types need a definition in the script
'''),
    ("type-address-of-literal",
     r'BEGIN { $x = &1; }',
     {},
     r'''
stdin:1:14: error: '&' needs a variable, a map or a field
BEGIN { $x = &1; }
             ^~
'''),
    ("type-index-integer",
     r'BEGIN { $x = pid[0]; }',
     {},
     r'''
stdin:1:14: error: cannot index uint32
BEGIN { $x = pid[0]; }
             ^~~~~~
'''),
    ("type-index-string-out-of-bounds",
     r'BEGIN { $x = comm[100]; }',
     {},
     r'''
stdin:1:19: error: index 100 is out of bounds for string[16]
BEGIN { $x = comm[100]; }
                  ^~~
hint: valid indexes are 0 to 15
'''),
    ("type-index-with-string",
     r'BEGIN { $x = comm["a"]; }',
     {},
     r'''
stdin:1:19: error: an index must be an integer, not string[2]
BEGIN { $x = comm["a"]; }
                  ^~~
'''),
    ("type-let-initialiser-mismatch",
     r'BEGIN { let $x: uint8 = "a"; }',
     {},
     r'''
stdin:1:25: error: cannot initialise $x of type uint8 with a value of type string[2]
BEGIN { let $x: uint8 = "a"; }
                        ^~~
'''),
    ("type-let-unknown-type",
     r'BEGIN { let $x: foo_t; }',
     {},
     r'''
stdin:1:17: error: unknown type 'foo_t'
BEGIN { let $x: foo_t; }
                ^~~~~
'''),
    ("type-let-redeclared",
     r'BEGIN { $x = 1; let $x = 2; }',
     {},
     r'''
stdin:1:21: error: variable $x is already declared
BEGIN { $x = 1; let $x = 2; }
                    ^~
stdin:1:9: note: declared here
BEGIN { $x = 1; let $x = 2; }
        ^~
'''),
    ("type-increment-literal",
     r'BEGIN { 1++; }',
     {},
     r'''
stdin:1:9: error: '++' can only be applied to a variable or a map
BEGIN { 1++; }
        ^~~
'''),
    ("type-assign-void-call",
     r'BEGIN { $x = exit(); }',
     {},
     r'''
stdin:1:14: error: exit() returns no value and cannot be assigned
BEGIN { $x = exit(); }
             ^~~~~~
'''),
    ("type-assign-printf-to-map",
     r'BEGIN { @x = printf("a"); }',
     {},
     r'''
stdin:1:14: error: printf() returns no value and cannot be assigned
BEGIN { @x = printf("a"); }
             ^~~~~~~~~~~
'''),
    ("type-void-map-key",
     r'BEGIN { @x[exit()] = 1; }',
     {},
     r'''
stdin:1:12: error: exit() returns no value and cannot be a map key
BEGIN { @x[exit()] = 1; }
           ^~~~~~
'''),
    ("variable-int-then-string",
     r'BEGIN { $x = 1; $x = "s"; }',
     {},
     r'''
stdin:1:22: error: type mismatch for $x: it holds int64 and cannot take string[2]
BEGIN { $x = 1; $x = "s"; }
                     ^~~
stdin:1:9: note: $x got its type here
BEGIN { $x = 1; $x = "s"; }
        ^~
'''),
    ("variable-string-then-int",
     r'BEGIN { $x = "s"; $x = 1; }',
     {},
     r'''
stdin:1:24: error: type mismatch for $x: it holds string[2] and cannot take int64
BEGIN { $x = "s"; $x = 1; }
                       ^
stdin:1:9: note: $x got its type here
BEGIN { $x = "s"; $x = 1; }
        ^~
'''),
    ("variable-increment-string",
     r'BEGIN { $s = "a"; $s++; }',
     {},
     r'''
stdin:1:19: error: '++' needs an integer, but $s is string[2]
BEGIN { $s = "a"; $s++; }
                  ^~~~
'''),
    ("variable-compound-assign-string",
     r'BEGIN { $s = "a"; $s += 1; }',
     {},
     r'''
stdin:1:19: error: '+=' needs an integer variable, but $s is string[2]
BEGIN { $s = "a"; $s += 1; }
                  ^~~~~~~
'''),
    ("variable-increment-undefined",
     r'BEGIN { $u++; }',
     {},
     r'''
stdin:1:9: error: undefined variable $u
BEGIN { $u++; }
        ^~
'''),
    ("variable-compound-assign-undefined",
     r'BEGIN { $u += 1; }',
     {},
     r'''
stdin:1:9: error: undefined variable $u
BEGIN { $u += 1; }
        ^~
'''),
    ("agg-count-to-variable",
     r'BEGIN { $x = count(); }',
     {},
     r'''
stdin:1:14: error: count() must be assigned directly to a map, not to a variable
BEGIN { $x = count(); }
             ^~~~~~~
hint: write '@name = count()'
'''),
    ("agg-count-in-expression",
     r'BEGIN { @x = count() + 1; }',
     {},
     r'''
stdin:1:14: error: count() must be assigned directly to a map
BEGIN { @x = count() + 1; }
             ^~~~~~~
hint: write '@name = count()'
'''),
    ("agg-count-as-statement",
     r'BEGIN { count(); }',
     {},
     r'''
stdin:1:9: error: count() must be assigned directly to a map
BEGIN { count(); }
        ^~~~~~~
hint: write '@name = count()'
'''),
    ("agg-count-as-printf-argument",
     r'BEGIN { printf("%d\n", count()); }',
     {},
     r'''
stdin:1:24: error: count() must be assigned directly to a map
BEGIN { printf("%d\n", count()); }
                       ^~~~~~~
hint: write '@name = count()'
'''),
    ("agg-count-as-map-key",
     r'BEGIN { @x[count()] = 1; }',
     {},
     r'''
stdin:1:12: error: count() must be assigned directly to a map
BEGIN { @x[count()] = 1; }
           ^~~~~~~
hint: write '@name = count()'
'''),
    ("agg-count-in-tuple",
     r'BEGIN { $x = (1, count()); }',
     {},
     r'''
stdin:1:18: error: count() must be assigned directly to a map
BEGIN { $x = (1, count()); }
                 ^~~~~~~
hint: write '@name = count()'
'''),
    ("agg-compound-assign",
     r'BEGIN { @x += count(); }',
     {},
     r'''
stdin:1:15: error: count() must be assigned with '=', not '+='
BEGIN { @x += count(); }
              ^~~~~~~
hint: write '@x = count()'
'''),
    ("agg-sum-of-string",
     r'BEGIN { @x = sum("a"); }',
     {},
     r'''
stdin:1:18: error: sum() needs an integer, not string[2]
BEGIN { @x = sum("a"); }
                 ^~~
'''),
    ("agg-hist-of-string",
     r'BEGIN { @x = hist(comm); }',
     {},
     r'''
stdin:1:19: error: hist() needs an integer, not string[16]
BEGIN { @x = hist(comm); }
                  ^~~~
'''),
    ("agg-hist-bad-bits",
     r'BEGIN { @x = hist(1, 6); }',
     {},
     r'''
stdin:1:22: error: hist(): the second argument (sub-buckets per power of two) must be a constant 0 to 5
BEGIN { @x = hist(1, 6); }
                     ^
'''),
    ("agg-hist-sub-buckets",
     r'BEGIN { @x = hist(1, 2); }',
     {},
     r'''
stdin:1:22: error: hist(): sub-buckets (a second argument above 0) are not supported; use hist(n) or lhist()
BEGIN { @x = hist(1, 2); }
                     ^
'''),
    ("agg-hist-variable-bits",
     r'BEGIN { @x = hist(1, pid); }',
     {},
     r'''
stdin:1:22: error: hist(): the second argument (sub-buckets per power of two) must be a constant 0 to 5
BEGIN { @x = hist(1, pid); }
                     ^~~
'''),
    ("agg-lhist-max-below-min",
     r'BEGIN { @x = lhist(1, 10, 5, 1); }',
     {},
     r'''
stdin:1:27: error: lhist(): max (5) must be greater than min (10)
BEGIN { @x = lhist(1, 10, 5, 1); }
                          ^
'''),
    ("agg-lhist-zero-step",
     r'BEGIN { @x = lhist(1, 0, 10, 0); }',
     {},
     r'''
stdin:1:30: error: lhist(): step must be positive
BEGIN { @x = lhist(1, 0, 10, 0); }
                             ^
'''),
    ("agg-lhist-negative-min",
     r'BEGIN { @x = lhist(1, -1, 10, 1); }',
     {},
     r'''
stdin:1:23: error: lhist(): min must be non-negative
BEGIN { @x = lhist(1, -1, 10, 1); }
                      ^~
'''),
    ("agg-lhist-too-many-buckets",
     r'BEGIN { @x = lhist(1, 0, 100000, 1); }',
     {},
     r'''
stdin:1:34: error: lhist(): too many buckets (100000; the limit is 1000)
BEGIN { @x = lhist(1, 0, 100000, 1); }
                                 ^
'''),
    ("agg-lhist-non-constant-max",
     r'BEGIN { @x = lhist(1, 0, pid, 1); }',
     {},
     r'''
stdin:1:26: error: lhist(): max must be a constant integer
BEGIN { @x = lhist(1, 0, pid, 1); }
                         ^~~
'''),
    ("agg-increment-count-map",
     r'BEGIN { @x = count(); @x++; }',
     {},
     r'''
stdin:1:23: error: '++' cannot be applied to @x, which holds count_t
BEGIN { @x = count(); @x++; }
                      ^~~~
hint: a count() map is only updated by '@x = count()'
'''),
    ("agg-add-to-sum-map",
     r'BEGIN { @x = sum(5); @x += 3; }',
     {},
     r'''
stdin:1:22: error: '+=' cannot be applied to @x, which holds sum_t
BEGIN { @x = sum(5); @x += 3; }
                     ^~~~~~~
hint: a sum() map is only updated by '@x = sum(value)'
'''),
    ("agg-assign-int-to-count-map",
     r'BEGIN { @x = count(); @x = 5; }',
     {},
     r'''
stdin:1:28: error: type mismatch for map @x: it holds count_t and cannot take int64
BEGIN { @x = count(); @x = 5; }
                           ^
stdin:1:9: note: @x got its type here
BEGIN { @x = count(); @x = 5; }
        ^~
'''),
    ("agg-hist-compared",
     r'BEGIN { @x = hist(5); if (@x > 10) { } }',
     {},
     r'''
stdin:1:27: error: '>' cannot be applied to hist_t(0)
BEGIN { @x = hist(5); if (@x > 10) { } }
                          ^~
hint: a hist() map can only be printed; count(), sum(), avg(), min() and max() maps can be read as numbers
'''),
    ("map-value-conflict-across-probes",
     r'BEGIN { @x = 1; } END { @x = "s"; }',
     {},
     r'''
stdin:1:30: error: type mismatch for map @x: it holds int64 and cannot take string[2]
BEGIN { @x = 1; } END { @x = "s"; }
                             ^~~
stdin:1:9: note: @x got its type here
BEGIN { @x = 1; } END { @x = "s"; }
        ^~
'''),
    ("map-value-conflict-three-probes",
     r'''BEGIN { @x = 1; }
tracepoint:syscalls:sys_enter_openat { @x = comm; }
tracepoint:syscalls:sys_exit_openat { @x = "abc"; }''',
     {},
     r'''
stdin:2:45: error: type mismatch for map @x: it holds int64 and cannot take string[16]
tracepoint:syscalls:sys_enter_openat { @x = comm; }
                                            ^~~~
stdin:1:9: note: @x got its type here
BEGIN { @x = 1; }
        ^~
stdin:3:44: error: type mismatch for map @x: it holds int64 and cannot take string[4]
tracepoint:syscalls:sys_exit_openat { @x = "abc"; }
                                           ^~~~~
stdin:1:9: note: @x got its type here
BEGIN { @x = 1; }
        ^~
'''),
    ("map-key-conflict-across-probes",
     r'BEGIN { @x[1] = 1; } END { @x["s"] = 1; }',
     {},
     r'''
stdin:1:28: error: map @x has key type int64 and cannot take a key of type string[2]
BEGIN { @x[1] = 1; } END { @x["s"] = 1; }
                           ^~~~~~~
stdin:1:9: note: @x got its key type here
BEGIN { @x[1] = 1; } END { @x["s"] = 1; }
        ^~~~~
'''),
    ("map-keyed-then-scalar",
     r'BEGIN { @x[1] = 1; } END { @x = 1; }',
     {},
     r'''
stdin:1:28: error: map @x is used without a key here but with one elsewhere
BEGIN { @x[1] = 1; } END { @x = 1; }
                           ^~
stdin:1:9: note: @x used with a key here
BEGIN { @x[1] = 1; } END { @x = 1; }
        ^~~~~
'''),
    ("map-scalar-then-keyed",
     r'BEGIN { @x = 1; } END { @x[1] = 2; }',
     {},
     r'''
stdin:1:25: error: map @x is used with a key here but without one elsewhere
BEGIN { @x = 1; } END { @x[1] = 2; }
                        ^~~~~
stdin:1:9: note: @x used without a key here
BEGIN { @x = 1; } END { @x[1] = 2; }
        ^~
'''),
    ("map-tuple-key-arity-conflict",
     r'BEGIN { @x[1, "a"] = 1; } END { @x[1] = 2; }',
     {},
     r'''
stdin:1:33: error: map @x has key type (int64, string[2]) and cannot take a key of type int64
BEGIN { @x[1, "a"] = 1; } END { @x[1] = 2; }
                                ^~~~~
stdin:1:9: note: @x got its key type here
BEGIN { @x[1, "a"] = 1; } END { @x[1] = 2; }
        ^~~~~~~~~~
'''),
    ("map-aggregation-kind-conflict",
     r'BEGIN { @x = count(); } END { @x = sum(1); }',
     {},
     r'''
stdin:1:36: error: type mismatch for map @x: it holds count_t and cannot take sum_t
BEGIN { @x = count(); } END { @x = sum(1); }
                                   ^~~~~~
stdin:1:9: note: @x got its type here
BEGIN { @x = count(); } END { @x = sum(1); }
        ^~
'''),
    ("map-int-then-count",
     r'BEGIN { @x++; } END { @x = count(); }',
     {},
     r'''
stdin:1:28: error: type mismatch for map @x: it holds int64 and cannot take count_t
BEGIN { @x++; } END { @x = count(); }
                           ^~~~~~~
stdin:1:9: note: @x got its type here
BEGIN { @x++; } END { @x = count(); }
        ^~
'''),
    ("map-read-with-wrong-key",
     r'BEGIN { @x[1] = 1; $y = @x["a"]; }',
     {},
     r'''
stdin:1:25: error: map @x has key type int64 and cannot take a key of type string[2]
BEGIN { @x[1] = 1; $y = @x["a"]; }
                        ^~~~~~~
stdin:1:9: note: @x got its key type here
BEGIN { @x[1] = 1; $y = @x["a"]; }
        ^~~~~
'''),
    ("map-read-keyed-scalar",
     r'BEGIN { @x = 1; $y = @x[1]; }',
     {},
     r'''
stdin:1:22: error: map @x is used with a key here but without one elsewhere
BEGIN { @x = 1; $y = @x[1]; }
                     ^~~~~
stdin:1:9: note: @x used without a key here
BEGIN { @x = 1; $y = @x[1]; }
        ^~
'''),
    ("map-read-before-any-assignment",
     r'BEGIN { $x = @nowhere; }',
     {},
     r'''
stdin:1:14: error: undefined map @nowhere
BEGIN { $x = @nowhere; }
             ^~~~~~~~
'''),
    ("map-stack-kinds-conflict",
     r'BEGIN { @x = kstack; @x = ustack; }',
     {},
     r'''
stdin:1:27: error: type mismatch for map @x: it holds kstack(bpftrace, 127) and cannot take ustack(bpftrace, 127)
BEGIN { @x = kstack; @x = ustack; }
                          ^~~~~~
stdin:1:9: note: @x got its type here
BEGIN { @x = kstack; @x = ustack; }
        ^~
'''),
    ("map-increment-string-map",
     r'BEGIN { @x = "a"; @x++; }',
     {},
     r'''
stdin:1:19: error: '++' needs an integer map, but @x holds string[2]
BEGIN { @x = "a"; @x++; }
                  ^~~~
'''),
    ("map-compound-assign-string-map",
     r'BEGIN { @x = "a"; @x += 1; }',
     {},
     r'''
stdin:1:19: error: '+=' needs an integer map, but @x holds string[2]
BEGIN { @x = "a"; @x += 1; }
                  ^~~~~~~
'''),
    ("break-outside-loop",
     r'BEGIN { break; }',
     {},
     r'''
stdin:1:9: error: 'break' outside of a loop
BEGIN { break; }
        ^~~~~
'''),
    ("continue-outside-loop",
     r'BEGIN { continue; }',
     {},
     r'''
stdin:1:9: error: 'continue' outside of a loop
BEGIN { continue; }
        ^~~~~~~~
'''),
    ("unroll-zero",
     r'BEGIN { unroll(0) { } }',
     {},
     r'''
stdin:1:16: error: unroll count must be between 1 and 100, not 0
BEGIN { unroll(0) { } }
               ^
'''),
    ("unroll-too-many",
     r'BEGIN { unroll(101) { } }',
     {},
     r'''
stdin:1:16: error: unroll count must be between 1 and 100, not 101
BEGIN { unroll(101) { } }
               ^~~
'''),
    ("unroll-not-constant",
     r'BEGIN { unroll(pid) { } }',
     {},
     r'''
stdin:1:16: error: unroll needs a constant count
BEGIN { unroll(pid) { } }
               ^~~
'''),
    ("exit-in-for-range",
     r'BEGIN { for ($i : 0..10) { exit(); } }',
     {},
     r'''
stdin:1:28: error: exit() cannot be used inside a loop
BEGIN { for ($i : 0..10) { exit(); } }
                           ^~~~~~
hint: set a flag and exit after the loop
'''),
    ("exit-in-while",
     r'BEGIN { while (1) { exit(); } }',
     {},
     r'''
stdin:1:21: error: exit() cannot be used inside a loop
BEGIN { while (1) { exit(); } }
                    ^~~~~~
hint: set a flag and exit after the loop
'''),
    ("for-range-string-bound",
     r'BEGIN { for ($i : "a"..10) { } }',
     {},
     r'''
stdin:1:19: error: a range bound must be an integer, not string[2]
BEGIN { for ($i : "a"..10) { } }
                  ^~~
'''),
    ("for-undefined-map",
     r'BEGIN { for ($kv : @nomap) { } }',
     {},
     r'''
stdin:1:20: error: undefined map @nomap
BEGIN { for ($kv : @nomap) { } }
                   ^~~~~~
'''),
    ("printf-too-few-arguments",
     r'BEGIN { printf("%d %d\n", 1); }',
     {},
     r'''
stdin:1:20: error: printf: not enough arguments for the format string (1 supplied, 2 expected)
BEGIN { printf("%d %d\n", 1); }
                   ^~
'''),
    ("printf-too-many-arguments",
     r'BEGIN { printf("%d\n", 1, 2); }',
     {},
     r'''
stdin:1:27: error: printf: too many arguments for the format string (2 supplied, 1 expected)
BEGIN { printf("%d\n", 1, 2); }
                          ^
'''),
    ("printf-d-with-string",
     r'BEGIN { printf("%d\n", "s"); }',
     {},
     r'''
stdin:1:24: error: printf: %d expects an integer, got string[2]
BEGIN { printf("%d\n", "s"); }
                       ^~~
hint: use %s for strings and symbols
'''),
    ("printf-s-with-int",
     r'BEGIN { printf("%s\n", 1); }',
     {},
     r'''
stdin:1:24: error: printf: %s expects a string, got int64
BEGIN { printf("%s\n", 1); }
                       ^
hint: use %d (or %lu, %lx) for integers
'''),
    ("printf-r-with-int",
     r'BEGIN { printf("%r\n", 1); }',
     {},
     r'''
stdin:1:24: error: printf: %r expects a buffer (from buf()), got int64
BEGIN { printf("%r\n", 1); }
                       ^
'''),
    ("printf-r-with-string",
     r'BEGIN { printf("%r\n", comm); }',
     {},
     r'''
stdin:1:24: error: printf: %r expects a buffer (from buf()), got string[16]
BEGIN { printf("%r\n", comm); }
                       ^~~~
'''),
    ("printf-unknown-conversion",
     r'BEGIN { printf("%q\n", 1); }',
     {},
     r'''
stdin:1:24: error: printf: too many arguments for the format string (1 supplied, 0 expected)
BEGIN { printf("%q\n", 1); }
                       ^
'''),
    ("printf-non-literal-format",
     r'BEGIN { printf(comm); }',
     {},
     r'''
stdin:1:16: error: printf(): the format must be a string literal
BEGIN { printf(comm); }
               ^~~~
'''),
    ("printf-two-bad-arguments",
     r'BEGIN { printf("%d %s\n", "a", 1); }',
     {},
     r'''
stdin:1:27: error: printf: %d expects an integer, got string[2]
BEGIN { printf("%d %s\n", "a", 1); }
                          ^~~
hint: use %s for strings and symbols
stdin:1:32: error: printf: %s expects a string, got int64
BEGIN { printf("%d %s\n", "a", 1); }
                               ^
hint: use %d (or %lu, %lx) for integers
'''),
    ("printf-void-argument",
     r'BEGIN { printf("%d\n", exit()); }',
     {},
     r'''
stdin:1:24: error: printf(): this argument has no value
BEGIN { printf("%d\n", exit()); }
                       ^~~~~~
'''),
    ("time-non-literal-format",
     r'BEGIN { time(1); }',
     {},
     r'''
stdin:1:14: error: time(): the format must be a string literal
BEGIN { time(1); }
             ^
'''),
    ("time-unknown-conversion-warning",
     r'BEGIN { time("%Q\n"); exit(); }',
     {},
     r'''
stdin:1:15: warning: time: '%Q' is not a strftime conversion; it is printed as is
BEGIN { time("%Q\n"); exit(); }
              ^~
'''),
    ("strftime-unknown-conversion-warning",
     r'BEGIN { printf("%s\n", strftime("%H:%Q", nsecs)); exit(); }',
     {},
     r'''
stdin:1:37: warning: strftime: '%Q' is not a strftime conversion; it is printed as is
BEGIN { printf("%s\n", strftime("%H:%Q", nsecs)); exit(); }
                                    ^~
'''),
    ("strftime-string-time",
     r'BEGIN { printf("%s\n", strftime("%H", "x")); }',
     {},
     r'''
stdin:1:39: error: strftime(): the time must be an integer (nanoseconds), not string[2]
BEGIN { printf("%s\n", strftime("%H", "x")); }
                                      ^~~
'''),
    ("strftime-non-literal-format",
     r'BEGIN { $t = strftime(1, 2); }',
     {},
     r'''
stdin:1:23: error: strftime(): the format must be a string literal
BEGIN { $t = strftime(1, 2); }
                      ^
'''),
    ("system-format-mismatch",
     r'BEGIN { system("echo %d", comm); }',
     {"unsafe": True},
     r'''
stdin:1:27: error: system: %d expects an integer, got string[16]
BEGIN { system("echo %d", comm); }
                          ^~~~
hint: use %s for strings and symbols
'''),
    ("unsafe-system",
     r'BEGIN { system("ls"); }',
     {},
     r'''
stdin:1:9: error: system() is an unsafe function: it runs a shell command
BEGIN { system("ls"); }
        ^~~~~~
hint: run with --unsafe to allow it
'''),
    ("unsafe-signal",
     r'tracepoint:syscalls:sys_enter_kill { signal("KILL"); }',
     {},
     r'''
stdin:1:38: error: signal() is an unsafe function: it sends a signal to the traced process
tracepoint:syscalls:sys_enter_kill { signal("KILL"); }
                                     ^~~~~~
hint: run with --unsafe to allow it
'''),
    ("unsafe-override",
     r'kprobe:vfs_read { override(1); }',
     {},
     r'''
stdin:1:19: error: override() is an unsafe function: it changes the return value of a kernel function
kprobe:vfs_read { override(1); }
                  ^~~~~~~~
hint: run with --unsafe to allow it
'''),
    ("unsafe-signal-in-begin",
     r'BEGIN { signal(9); }',
     {},
     r'''
stdin:1:9: error: signal() is an unsafe function: it sends a signal to the traced process
BEGIN { signal(9); }
        ^~~~~~
hint: run with --unsafe to allow it
stdin:1:9: error: signal() is not available in BEGIN probes
BEGIN { signal(9); }
        ^~~~~~
hint: it is available in every probe type except BEGIN, END and iter
'''),
    ("signal-in-begin-with-unsafe",
     r'BEGIN { signal(9); }',
     {"unsafe": True},
     r'''
stdin:1:9: error: signal() is not available in BEGIN probes
BEGIN { signal(9); }
        ^~~~~~
hint: it is available in every probe type except BEGIN, END and iter
'''),
    ("signal-unknown-name",
     r'kprobe:vfs_read { signal("SIGFOO"); }',
     {"unsafe": True},
     r'''
stdin:1:26: error: signal(): unknown signal 'SIGFOO'
kprobe:vfs_read { signal("SIGFOO"); }
                         ^~~~~~~~
'''),
    ("signal-number-out-of-range",
     r'kprobe:vfs_read { signal(99); }',
     {"unsafe": True},
     r'''
stdin:1:26: error: signal(): 99 is not a valid signal number
kprobe:vfs_read { signal(99); }
                         ^~
'''),
    ("override-outside-kprobe",
     r'tracepoint:syscalls:sys_enter_openat { override(1); }',
     {"unsafe": True},
     r'''
stdin:1:40: error: override() is not available in tracepoint probes
tracepoint:syscalls:sys_enter_openat { override(1); }
                                       ^~~~~~~~
hint: it is available in kprobe probes
'''),
    ("retval-in-begin",
     r'BEGIN { printf("%d\n", retval); }',
     {},
     r'''
stdin:1:24: error: 'retval' is only available in return probes (kretprobe, uretprobe, fexit), not in BEGIN probes
BEGIN { printf("%d\n", retval); }
                       ^~~~~~
'''),
    ("retval-in-tracepoint-without-ret",
     r'tracepoint:syscalls:sys_enter_openat { @r = retval; }',
     {},
     r'''
stdin:1:45: error: 'retval' is only available in return probes (kretprobe, uretprobe, fexit), not in tracepoint probes
tracepoint:syscalls:sys_enter_openat { @r = retval; }
                                            ^~~~~~
'''),
    ("retval-in-tracepoint",
     r'tracepoint:syscalls:sys_exit_openat { printf("%d\n", retval); }',
     {},
     r'''
stdin:1:54: error: 'retval' is only available in return probes (kretprobe, uretprobe, fexit), not in tracepoint probes
tracepoint:syscalls:sys_exit_openat { printf("%d\n", retval); }
                                                     ^~~~~~
hint: this tracepoint has the return value in args.ret
'''),
    ("retval-in-kprobe",
     r'kprobe:vfs_read { @r = retval; }',
     {},
     r'''
stdin:1:24: error: 'retval' is only available in return probes (kretprobe, uretprobe, fexit), not in kprobe probes
kprobe:vfs_read { @r = retval; }
                       ^~~~~~
'''),
    ("args-in-begin",
     r'BEGIN { @a = args; }',
     {},
     r'''
stdin:1:14: error: 'args' is not available in BEGIN probes
BEGIN { @a = args; }
             ^~~~
hint: this probe type has no arguments
'''),
    ("args-in-kprobe",
     r'kprobe:vfs_read { @a = args.count; }',
     {},
     r'''
stdin:1:24: error: 'args' is not available in kprobe probes
kprobe:vfs_read { @a = args.count; }
                       ^~~~
hint: use arg0, arg1, ... instead
'''),
    ("args-in-profile",
     r'profile:hz:99 { @a = args; }',
     {},
     r'''
stdin:1:22: error: 'args' is not available in profile probes
profile:hz:99 { @a = args; }
                     ^~~~
hint: this probe type has no arguments
'''),
    ("arg0-in-tracepoint",
     r'tracepoint:syscalls:sys_enter_openat { printf("%d\n", arg0); }',
     {},
     r'''
stdin:1:55: error: 'arg0' is not available in tracepoint probes
tracepoint:syscalls:sys_enter_openat { printf("%d\n", arg0); }
                                                      ^~~~
hint: use args.NAME
'''),
    ("arg0-in-kretprobe",
     r'kretprobe:vfs_read { @a = arg0; }',
     {},
     r'''
stdin:1:27: error: 'arg0' is not available in kretprobe probes
kretprobe:vfs_read { @a = arg0; }
                          ^~~~
hint: a return probe has no arguments; 'retval' is the return value
'''),
    ("arg0-in-interval",
     r'interval:s:1 { @a = arg0; }',
     {},
     r'''
stdin:1:21: error: 'arg0' is not available in interval probes
interval:s:1 { @a = arg0; }
                    ^~~~
hint: this probe type has no arguments
'''),
    ("arg9-in-kprobe",
     r'kprobe:vfs_read { @a = arg9; }',
     {},
     r'''
stdin:1:24: error: 'arg9' is out of range: kprobe probes have arg0..arg5
kprobe:vfs_read { @a = arg9; }
                       ^~~~
'''),
    ("func-in-begin",
     r'BEGIN { printf("%s\n", func); }',
     {},
     r'''
stdin:1:24: error: 'func' is not available in BEGIN probes
BEGIN { printf("%s\n", func); }
                       ^~~~
hint: use 'probe' for the probe's full name
'''),
    ("func-in-tracepoint",
     r'tracepoint:syscalls:sys_enter_openat { @[func] = count(); }',
     {},
     r'''
stdin:1:42: error: 'func' is not available in tracepoint probes
tracepoint:syscalls:sys_enter_openat { @[func] = count(); }
                                         ^~~~
hint: use 'probe' for the probe's full name
'''),
    ("cpid-without-command",
     r'BEGIN { printf("%d\n", cpid); }',
     {},
     r'''
stdin:1:24: error: 'cpid' needs a child command: run with -c 'CMD'
BEGIN { printf("%d\n", cpid); }
                       ^~~~
'''),
    ("reg-in-begin",
     r'BEGIN { @r = reg("ax"); }',
     {},
     r'''
stdin:1:14: error: reg() is not available in BEGIN probes
BEGIN { @r = reg("ax"); }
             ^~~
hint: it is available in every probe type except BEGIN, END, tracepoint, rawtracepoint, fentry, fexit and iter
'''),
    ("reg-unknown-register",
     r'kprobe:vfs_read { @r = reg("foo"); }',
     {},
     r'''
stdin:1:28: error: reg(): unknown register 'foo'
kprobe:vfs_read { @r = reg("foo"); }
                           ^~~~~
'''),
    ("uaddr-in-begin",
     r'BEGIN { @a = uaddr("x"); }',
     {},
     r'''
stdin:1:14: error: uaddr() is not available in BEGIN probes
BEGIN { @a = uaddr("x"); }
             ^~~~~
hint: it is available in uprobe, uretprobe and usdt probes
'''),
    ("path-in-tracepoint",
     r'tracepoint:syscalls:sys_enter_openat { @p = path(args.filename); }',
     {},
     r'''
stdin:1:45: error: path() is not available in tracepoint probes
tracepoint:syscalls:sys_enter_openat { @p = path(args.filename); }
                                            ^~~~
hint: it is available in fentry, fexit and iter probes
'''),
    ("retval-in-mixed-block",
     r'kretprobe:vfs_read, kprobe:vfs_write { @r = retval; }',
     {},
     r'''
stdin:1:45: error: 'retval' is only available in return probes (kretprobe, uretprobe, fexit), not in kprobe probes
kretprobe:vfs_read, kprobe:vfs_write { @r = retval; }
                                            ^~~~~~
'''),
    ("str-negative-length",
     r'BEGIN { printf("%s\n", str(1, -1)); }',
     {},
     r'''
stdin:1:31: error: str(): the length must be positive
BEGIN { printf("%s\n", str(1, -1)); }
                              ^~
'''),
    ("ksym-of-string",
     r'BEGIN { printf("%s\n", ksym("x")); }',
     {},
     r'''
stdin:1:29: error: ksym() needs an address (an integer or a pointer), not string[2]
BEGIN { printf("%s\n", ksym("x")); }
                            ^~~
'''),
    ("kaddr-non-literal",
     r'BEGIN { @a = kaddr(1); }',
     {},
     r'''
stdin:1:20: error: kaddr(): the symbol name must be a string literal
BEGIN { @a = kaddr(1); }
                   ^
'''),
    ("ntop-of-string",
     r'BEGIN { printf("%s\n", ntop("x")); }',
     {},
     r'''
stdin:1:29: error: ntop() needs an IPv4 address (integer) or a 4- or 16-byte array, not string[2]
BEGIN { printf("%s\n", ntop("x")); }
                            ^~~
'''),
    ("cgroupid-non-literal",
     r'BEGIN { $x = cgroupid(1); }',
     {},
     r'''
stdin:1:23: error: cgroupid(): the cgroup path must be a string literal
BEGIN { $x = cgroupid(1); }
                      ^
'''),
    ("bswap-of-string",
     r'BEGIN { $x = bswap("a"); }',
     {},
     r'''
stdin:1:20: error: bswap() needs an integer, not string[2]
BEGIN { $x = bswap("a"); }
                   ^~~
'''),
    ("strerror-of-string",
     r'BEGIN { $x = strerror("a"); }',
     {},
     r'''
stdin:1:23: error: strerror() needs an error number, not string[2]
BEGIN { $x = strerror("a"); }
                      ^~~
'''),
    ("pton-bad-address",
     r'BEGIN { $x = pton("1.2.3"); }',
     {},
     r'''
stdin:1:19: error: pton(): '1.2.3' is not an IPv4 or IPv6 address
BEGIN { $x = pton("1.2.3"); }
                  ^~~~~~~
'''),
    ("strncmp-non-constant-length",
     r'BEGIN { $x = strncmp("a", "b", pid); }',
     {},
     r'''
stdin:1:32: error: strncmp(): the length must be a non-negative constant
BEGIN { $x = strncmp("a", "b", pid); }
                               ^~~
'''),
    ("strncmp-of-integer",
     r'BEGIN { $x = strncmp(1, "b", 1); }',
     {},
     r'''
stdin:1:22: error: strncmp() compares strings, not int64
BEGIN { $x = strncmp(1, "b", 1); }
                     ^
hint: use str() to read a char pointer
'''),
    ("strcontains-of-integer",
     r'BEGIN { $x = strcontains(1, "b"); }',
     {},
     r'''
stdin:1:26: error: strcontains() searches strings, not int64
BEGIN { $x = strcontains(1, "b"); }
                         ^
'''),
    ("join-of-string",
     r'BEGIN { join(comm); }',
     {},
     r'''
stdin:1:14: error: join() needs a pointer to an array of strings (such as args.argv), not string[16]
BEGIN { join(comm); }
             ^~~~
'''),
    ("exit-with-string",
     r'BEGIN { exit("a"); }',
     {},
     r'''
stdin:1:14: error: exit(): the exit code must be an integer, not string[2]
BEGIN { exit("a"); }
             ^~~
'''),
    ("buf-of-integer-without-length",
     r'BEGIN { $x = buf(1); }',
     {},
     r'''
stdin:1:14: error: buf() of a pointer needs a length: buf(ptr, length)
BEGIN { $x = buf(1); }
             ^~~~~~
'''),
    ("macaddr-of-string",
     r'BEGIN { $x = macaddr("a"); }',
     {},
     r'''
stdin:1:22: error: macaddr() needs a pointer or a 6-byte array, not string[2]
BEGIN { $x = macaddr("a"); }
                     ^~~
'''),
    ("kstack-unknown-mode",
     r'BEGIN { @s = kstack(fancy); }',
     {},
     r'''
stdin:1:21: error: a stack mode (bpftrace, perf, raw) or a constant limit is expected
BEGIN { @s = kstack(fancy); }
                    ^~~~~
'''),
    ("kstack-zero-limit",
     r'BEGIN { @s = kstack(0); }',
     {},
     r'''
stdin:1:21: error: stack limit must be between 1 and 1024, not 0
BEGIN { @s = kstack(0); }
                    ^
'''),
    ("ustack-limit-too-large",
     r'BEGIN { @s = ustack(perf, 2000); }',
     {},
     r'''
stdin:1:27: error: stack limit must be between 1 and 1024, not 2000
BEGIN { @s = ustack(perf, 2000); }
                          ^~~~
'''),
    ("print-value-with-extra-argument",
     r'BEGIN { print(1, 2); }',
     {},
     r'''
stdin:1:18: error: print() of a value takes one argument; top and div apply to maps
BEGIN { print(1, 2); }
                 ^
'''),
    ("print-map-non-constant-top",
     r'BEGIN { @x[1] = 1; print(@x, pid); }',
     {},
     r'''
stdin:1:30: error: print(): top and div must be constant integers
BEGIN { @x[1] = 1; print(@x, pid); }
                             ^~~
'''),
    ("len-of-integer",
     r'BEGIN { $y = len(5); }',
     {},
     r'''
stdin:1:18: error: len() needs a map or a stack, not int64
BEGIN { $y = len(5); }
                 ^
'''),
    ("clear-map-element",
     r'BEGIN { @x[1] = 1; clear(@x[1]); }',
     {},
     r'''
stdin:1:26: error: clear() expects a map without a key, such as @name
BEGIN { @x[1] = 1; clear(@x[1]); }
                         ^~~~~
'''),
    ("delete-keyed-map-without-key",
     r'BEGIN { @x[1] = 1; delete(@x); }',
     {},
     r'''
stdin:1:27: error: delete() of an element of @x needs its key
BEGIN { @x[1] = 1; delete(@x); }
                          ^~
hint: write delete(@x[key]) or delete(@x, key); clear(@x) deletes every element
'''),
    ("delete-non-map",
     r'BEGIN { delete(1); }',
     {},
     r'''
stdin:1:16: error: delete() expects a map element such as @m[key], or delete(@m, key)
BEGIN { delete(1); }
               ^
'''),
    ("positional-zero",
     r'BEGIN { printf("%d\n", $0); }',
     {},
     r'''
stdin:1:24: error: positional parameters start at $1
BEGIN { printf("%d\n", $0); }
                       ^~
'''),
    ("positional-missing-warning",
     r'BEGIN { printf("%d\n", $2); exit(); }',
     {"params": ["5"]},
     r'''
stdin:1:24: warning: positional parameter $2 is not set; it reads as 0
BEGIN { printf("%d\n", $2); exit(); }
                       ^~
'''),
    ("positional-string-in-arithmetic",
     r'BEGIN { $x = $1 + 1; }',
     {"params": ["abc"]},
     r'''
stdin:1:14: error: '+' cannot be applied to string[4] and int64
BEGIN { $x = $1 + 1; }
             ^~~~~~
'''),
    ("positional-as-format",
     r'BEGIN { printf($1); }',
     {"params": ["hello"]},
     r'''
stdin:1:16: error: printf(): the format must be a string literal
BEGIN { printf($1); }
               ^~
hint: print a parameter with a format: printf("%s", str($1))
'''),
    ("config-unknown-key",
     r'''config = { max_strln = 10 }
BEGIN { exit(); }''',
     {},
     r'''
stdin:1:12: error: unknown config variable 'max_strln'
config = { max_strln = 10 }
           ^~~~~~~~~~~~~~
hint: did you mean 'max_strlen'?
'''),
    ("config-bad-int-value",
     r'''config = { max_strlen = "abc" }
BEGIN { exit(); }''',
     {},
     r'''
stdin:1:25: error: invalid value for config variable 'max_strlen' (expected int)
config = { max_strlen = "abc" }
                        ^~~~~
'''),
    ("config-bad-choice",
     r'''config = { stack_mode = fancy }
BEGIN { exit(); }''',
     {},
     r'''
stdin:1:25: error: invalid value for config variable 'stack_mode' (expected bpftrace or perf or raw)
config = { stack_mode = fancy }
                        ^~~~~
'''),
    ("config-two-errors",
     r'''config = { missing_probes = maybe; max_map_key = 1 }
BEGIN { exit(); }''',
     {},
     r'''
stdin:1:29: error: invalid value for config variable 'missing_probes' (expected error or warn or ignore)
config = { missing_probes = maybe; max_map_key = 1 }
                            ^~~~~
stdin:1:36: error: unknown config variable 'max_map_key'
config = { missing_probes = maybe; max_map_key = 1 }
                                   ^~~~~~~~~~~~~~~
hint: did you mean 'max_map_keys'?
'''),
    ("macro-defined-twice",
     r'''macro f($a) { $a }
macro f($b) { $b }
BEGIN { exit(); }''',
     {},
     r'''
stdin:2:1: error: macro 'f' is defined twice
macro f($b) { $b }
^~~~~~~~~~~~~~~~~~
stdin:1:1: note: first defined here
macro f($a) { $a }
^~~~~~~~~~~~~~~~~~
'''),
    ("macro-named-like-builtin",
     r'''macro count($a) { $a }
BEGIN { exit(); }''',
     {},
     r'''
stdin:1:1: error: macro 'count' has the name of a builtin
macro count($a) { $a }
^~~~~~~~~~~~~~~~~~~~~~
'''),
    ("include-missing-header",
     r'''#include <nonexistent_header.h>
BEGIN { exit(); }''',
     {},
     r'''
stdin:1:1: error: include file not found: 'nonexistent_header.h'
#include <nonexistent_header.h>
^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
hint: kernel headers are not installed; kernel types come from BTF, so remove the #include or put it under #ifndef BPFTRACE_HAVE_BTF
'''),
    ("many-errors-one-probe",
     r'''BEGIN {
  $x = comn;
  @y = cuont();
  printf("%d\n", "s");
  break;
}''',
     {},
     r'''
stdin:2:8: error: unknown identifier 'comn'
  $x = comn;
       ^~~~
hint: did you mean 'comm'?
stdin:3:8: error: unknown function 'cuont'
  @y = cuont();
       ^~~~~
hint: did you mean 'count'?
stdin:4:18: error: printf: %d expects an integer, got string[2]
  printf("%d\n", "s");
                 ^~~
hint: use %s for strings and symbols
stdin:5:3: error: 'break' outside of a loop
  break;
  ^~~~~
'''),
    ("error-spanning-two-lines",
     r'''BEGIN {
  $x = "a" +
    1;
}''',
     {},
     r'''
stdin:2:8: error: '+' cannot be applied to string[2] and int64
  $x = "a" +
       ^~~~~
'''),
    ("many-errors-two-probes",
     r'''BEGIN { @x = 1; $s = "a" + 1; }
END { @x = "s"; retval; }''',
     {},
     r'''
stdin:1:22: error: '+' cannot be applied to string[2] and int64
BEGIN { @x = 1; $s = "a" + 1; }
                     ^~~~~~~
stdin:2:12: error: type mismatch for map @x: it holds int64 and cannot take string[2]
END { @x = "s"; retval; }
           ^~~
stdin:1:9: note: @x got its type here
BEGIN { @x = 1; $s = "a" + 1; }
        ^~
stdin:2:17: error: 'retval' is only available in return probes (kretprobe, uretprobe, fexit), not in END probes
END { @x = "s"; retval; }
                ^~~~~~
'''),
    ("error-does-not-cascade-into-printf",
     r'BEGIN { printf("%s %d\n", comn, comn + 1); }',
     {},
     r'''
stdin:1:27: error: unknown identifier 'comn'
BEGIN { printf("%s %d\n", comn, comn + 1); }
                          ^~~~
hint: did you mean 'comm'?
stdin:1:33: error: unknown identifier 'comn'
BEGIN { printf("%s %d\n", comn, comn + 1); }
                                ^~~~
hint: did you mean 'comm'?
'''),
    ("error-does-not-cascade-into-assignment",
     r'BEGIN { $x = comn; $x = 1; }',
     {},
     r'''
stdin:1:14: error: unknown identifier 'comn'
BEGIN { $x = comn; $x = 1; }
             ^~~~
hint: did you mean 'comm'?
'''),
]


# (id, script, compile options): scripts that compile without any diagnostic.
GOOD: list[tuple[str, str, dict[str, Any]]] = [
    ("builtins-all-variables",
     r'BEGIN { printf("%d %d %d %d %d %d %d %d %d %s %s %d %d %d %d\n", pid, tid, uid, gid, nsecs, elapsed, cpu, ncpus, numaid, comm, username, cgroup, rand, jiffies, usermode); exit(); }',
     {}),
    ("builtins-curtask-and-probe",
     r'BEGIN { @t = curtask; printf("%s\n", probe); exit(); }',
     {}),
    ("builtins-stacks",
     r'profile:hz:99 { @k[kstack] = count(); @u[ustack(perf, 5)] = count(); @r[kstack(raw)] = count(); }',
     {}),
    ("builtins-args-tracepoint",
     r'tracepoint:syscalls:sys_enter_openat { printf("%s %d\n", str(args.filename), args.flags); }',
     {}),
    ("builtins-args-arrow",
     r'tracepoint:syscalls:sys_enter_openat { printf("%s\n", str(args->filename)); }',
     {}),
    ("builtins-args-common-fields",
     r'tracepoint:syscalls:sys_enter_openat,tracepoint:syscalls:sys_enter_openat2 { printf("%s\n", str(args.filename)); }',
     {}),
    ("builtins-kprobe-args-func",
     r'kprobe:vfs_read { printf("%s %d %d\n", func, arg0, arg5); @r = reg("ip"); }',
     {}),
    ("builtins-kretprobe-retval",
     r'kretprobe:vfs_read { @ret = hist(retval); }',
     {}),
    ("builtins-uprobe-uretprobe",
     r'uprobe:/bin/bash:readline { @a = arg0; @u = uaddr("readline"); } uretprobe:/bin/bash:readline { printf("%s\n", str(retval)); }',
     {}),
    ("builtins-rawtracepoint-args",
     r'rawtracepoint:sched_switch { @a = arg0; }',
     {}),
    ("builtins-cpid-with-command",
     r'BEGIN { printf("%d\n", cpid); exit(); }',
     {"has_cpid": True}),
    ("functions-printf-all-conversions",
     r'BEGIN { printf("%d %u %x %lu %s %c %% %-5d %05x\n", 1, 2, 3, 4, "s", 65, 6, 7); exit(); }',
     {}),
    ("functions-print-forms",
     r'BEGIN { @m[1] = 2; print(@m); print(@m, 5); print(@m, 5, 10); print(1); print(comm); print((1, 2)); exit(); }',
     {}),
    ("functions-time-strftime",
     r'BEGIN { time(); time("%H:%M:%S\n"); printf("%s\n", strftime("%Y-%m-%d", nsecs)); exit(); }',
     {}),
    ("functions-str-buf",
     r'tracepoint:syscalls:sys_enter_openat { printf("%s %r\n", str(args.filename, 16), buf(args.filename, 8)); }',
     {}),
    ("functions-join",
     r'tracepoint:syscalls:sys_enter_execve { join(args.argv); join(args.argv, ","); }',
     {}),
    ("functions-symbols",
     r'BEGIN { printf("%s %s %d\n", ksym(1), usym(1), kaddr("jiffies")); exit(); }',
     {}),
    ("functions-ntop-pton-macaddr",
     r'BEGIN { printf("%s %s\n", ntop(0x0100007f), ntop(pton("::1"))); $m = macaddr(0); exit(); }',
     {}),
    ("functions-strings",
     r'BEGIN { if (strncmp(comm, "bash", 4) == 0 && strcontains(comm, "sh")) { printf("%s\n", strerror(2)); } exit(); }',
     {}),
    ("functions-misc",
     r'BEGIN { $c = cgroupid("/sys/fs/cgroup"); $b = bswap((uint32)1); $k = kptr(0); $u = uptr(0); exit(0); }',
     {}),
    ("functions-map-functions",
     r'BEGIN { @m[1] = 1; @s = 1; delete(@m[1]); delete(@m, 1); delete(@s); $h = has_key(@m, 1); $n = len(@m); clear(@m); zero(@m); exit(); }',
     {}),
    ("functions-unsafe-with-flag",
     r'kprobe:vfs_read { system("echo %d", pid); signal("SIGUSR1"); signal(10); override(0); }',
     {"unsafe": True}),
    ("functions-cat-debugf",
     r'BEGIN { cat("/proc/%d/status", pid); debugf("pid %d", pid); exit(); }',
     {}),
    ("iter-ctx-and-path",
     r'iter:task { $t = ctx; } iter:task_file { @p = path(0); }',
     {}),
    ("aggregations-all",
     r'tracepoint:syscalls:sys_enter_read { @c = count(); @s = sum(args.count); @a = avg(args.count); @mn = min(args.count); @mx = max(args.count); @st = stats(args.count); @h = hist(args.count); @h2 = hist(args.count, 0); @l = lhist(args.count, 0, 1000, 10); }',
     {}),
    ("maps-tuple-keys",
     r'tracepoint:syscalls:sys_enter_openat { @[comm, pid] = count(); @t[(comm, pid)] = count(); @u[1, "a", 2] = 3; }',
     {}),
    ("maps-same-map-many-probes",
     r'tracepoint:syscalls:sys_enter_openat { @n[comm] = count(); } tracepoint:syscalls:sys_enter_read { @n[comm] = count(); } END { print(@n); clear(@n); }',
     {}),
    ("maps-read-before-write-in-later-probe",
     r'END { printf("%d\n", @total); } tracepoint:syscalls:sys_enter_read { @total += args.count; }',
     {}),
    ("maps-increment-then-read",
     r'BEGIN { @x++; @x--; ++@x; printf("%d\n", @x); exit(); }',
     {}),
    ("maps-count-then-compare",
     r'tracepoint:syscalls:sys_enter_read { @c = count(); if (@c > 10) { printf("many\n"); } }',
     {}),
    ("maps-int-widths-unify",
     r'BEGIN { @w = (uint8)1; @w = 1000; @k[(uint16)1] = 1; @k[5] = 2; exit(); }',
     {}),
    ("strings-compare",
     r'tracepoint:syscalls:sys_enter_openat /comm == "bash"/ { if (str(args.filename) != "/etc/passwd") { @[comm] = count(); } }',
     {}),
    ("strings-variable-reassign",
     r'BEGIN { $s = "a"; $s = "longer string"; printf("%s\n", $s); exit(); }',
     {}),
    ("ternaries",
     r'BEGIN { $x = pid > 1 ? 1 : 2; $s = pid ? "yes" : "no"; $y = pid ?: 7; exit(); }',
     {}),
    ("casts",
     r'BEGIN { $a = (uint8)300; $b = (int16)-1; $c = (uint64)$a + $b; $d = (bool)1; exit(); }',
     {}),
    ("pointer-casts-and-deref",
     r'tracepoint:syscalls:sys_enter_openat { $p = (uint8 *)args.filename; $c = *$p; $q = $p + 1; }',
     {}),
    ("for-over-map",
     r'BEGIN { @m[1] = 2; @m[3] = 4; for ($kv : @m) { printf("%d %d\n", $kv.0, $kv.1); } exit(); }',
     {}),
    ("for-over-range-with-break",
     r'BEGIN { for ($i : 0..10) { if ($i == 5) { break; } if ($i == 2) { continue; } printf("%d\n", $i); } exit(); }',
     {}),
    ("while-and-unroll",
     r'BEGIN { $i = 0; while ($i < 10) { $i++; } unroll(3) { $i += 1; } exit(); }',
     {}),
    ("positional-with-param",
     r'BEGIN { printf("%d %s %d\n", $1, str($2), $#); exit(); }',
     {"params": ["42", "hello"]}),
    ("positional-in-attach-point",
     r'tracepoint:syscalls:sys_enter_$1 { @ = count(); }',
     {"params": ["openat"]}),
    ("config-block",
     r'''config = { max_strlen = 128; stack_mode = perf }
BEGIN { exit(); }''',
     {}),
    ("let-declarations",
     r'BEGIN { let $x: uint32 = 5; let $y; let $s: string[8] = "ab"; $y = $x; exit(); }',
     {}),
    ("tuples",
     r'BEGIN { $t = (1, "two", 3); printf("%d %s\n", $t.0, $t.1); @t = $t; exit(); }',
     {}),
    ("struct-definition",
     r'''struct foo { int a; char name[8]; };
BEGIN { $p = (struct foo *)0; printf("%d %s\n", $p->a, $p->name); exit(); }''',
     {}),
    ("enum-constants",
     r'''enum color { RED, GREEN = 5 };
BEGIN { printf("%d\n", GREEN); exit(); }''',
     {}),
    ("define-macro",
     r'''#define LIMIT 10
BEGIN { if (pid > LIMIT) { exit(); } }''',
     {}),
    ("predicate-and-multiple-attach",
     r'tracepoint:syscalls:sys_enter_read, tracepoint:syscalls:sys_enter_write /pid > 100/ { @[probe] = count(); }',
     {}),
    ("wildcards",
     r'tracepoint:syscalls:sys_enter_open* { @[probe] = count(); }',
     {}),
    ("all-providers-resolve",
     r'interval:ms:100 { @i = 1; } profile:99hz { @p = 1; } software:cpu-clock:1000 { @s = 1; } hardware:cycles { @h = 1; } watchpoint:0x1000:8:w { @w = 1; } usdt:/usr/bin/python3.11:python:function__entry { @u = 1; } iter:task { @t = 1; } END { clear(@i); }',
     {}),
]


def test_the_tables_are_large_and_ids_unique() -> None:
    assert len(BAD) >= 220
    assert len(GOOD) >= 40
    ids = [case[0] for case in BAD] + [case[0] for case in GOOD]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("script,options,expected", [pytest.param(s, o, e, id=i) for i, s, o, e in BAD])
def test_bad_script_diagnostics(script: str, options: dict[str, Any], expected: str, fake_kernel) -> None:  # type: ignore[no-untyped-def]
    comp, diags = compile_text(script, fake_kernel, **options)
    assert diags.render() == _text(expected)
    if ": error: " in expected or expected.lstrip().startswith("error:"):
        assert diags.has_errors()


@pytest.mark.parametrize("script,options", [pytest.param(s, o, id=i) for i, s, o in GOOD])
def test_good_script_has_no_diagnostics(script: str, options: dict[str, Any], fake_kernel) -> None:  # type: ignore[no-untyped-def]
    comp, diags = compile_text(script, fake_kernel, **options)
    assert diags.render() == ""
    assert comp.probes and comp.program is not None


@pytest.mark.parametrize("case_id", ["syntax-two-probes-two-errors", "map-value-conflict-across-probes",
                                     "unknown-function-cuont", "positional-missing-warning"])
def test_cli_prints_the_same_text(case_id: str) -> None:
    _, script, options, expected = next(c for c in BAD if c[0] == case_id)
    argv = ["--dry-run", "--fake-kernel", str(DATA / "tracefs"), "-e", script, *options.get("params", [])]
    err = io.StringIO()
    rc = cli.main(argv, stdout=io.StringIO(), stderr=err)
    assert err.getvalue() == _text(expected) + "\n"
    assert rc == (1 if ": error: " in expected else 0)
