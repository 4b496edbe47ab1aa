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


def test_a_failing_child_job_ends_with_status_1_and_one_line_to_quote(tmp_path):
    from yoloxkit.child_job import run_child_job

    done = run_child_job("yoloxkit.export.tflite_convert", {"result": str(tmp_path / "r.json")}, tmp_path / "job.json")
    assert done.returncode == 1 and done.stderr.strip() == "KeyError: 'threads'", done.stderr
    assert last_line(done.stderr) == "KeyError: 'threads'" and not (tmp_path / "r.json").exists()
