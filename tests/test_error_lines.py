"""The one-line reasons an error quotes: the first line of an exception, the last line a native
library or a child process printed."""

from __future__ import annotations

from yoloxkit.errors import first_line, last_line


def test_first_line_of_an_exception_or_its_type_name():
    assert first_line(RuntimeError("  bad op\nstack trace")) == "bad op"
    assert first_line(ValueError("")) == "ValueError"


def test_last_line_is_the_last_non_blank_line_stripped():
    assert last_line("progress 10%\n  cannot lower aten.cumprod  \n\n   \n") == "cannot lower aten.cumprod"
    assert last_line("", "exit code 3") == "exit code 3"
    assert last_line(" \n\t\n") == ""
