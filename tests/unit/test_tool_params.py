"""A stdlib tool's positional parameters are optional: `pytrace tool NAME`
without them compiles silently, while a script's unset $1 is warned about."""

from __future__ import annotations

from tests.conftest import compile_text

SCRIPT = "BEGIN { if ($1 != 0) { printf(\"filter\\n\"); } exit(); }"


def test_unset_parameter_warns_in_a_script(fake_kernel) -> None:  # type: ignore[no-untyped-def]
    _, diags = compile_text(SCRIPT, fake_kernel)
    assert "warning: positional parameter $1 is not set; it reads as 0" in diags.render()


def test_unset_parameter_is_silent_in_a_tool(fake_kernel) -> None:  # type: ignore[no-untyped-def]
    _, diags = compile_text(SCRIPT, fake_kernel, optional_params=True)
    assert diags.render() == ""
