"""The shared CLI argument types reject bad values with one-line messages."""

import argparse

import pytest

from yoloxkit.cli.argtypes import non_negative_float, port, positive_float, positive_int, unit_float


@pytest.mark.parametrize(
    "parse, text, expected",
    [(positive_int, "3", 3), (unit_float, "0.25", 0.25), (positive_float, "1.5", 1.5),
     (non_negative_float, "0", 0.0), (port, "8000", 8000)],
)
def test_accepts_good_values(parse, text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "parse, text, message",
    [(positive_int, "0", "must be >= 1"), (positive_int, "x", "expected an integer"),
     (unit_float, "1.5", "must be in [0, 1]"), (unit_float, "nan", "must be in [0, 1]"),
     (positive_float, "0", "must be > 0"), (non_negative_float, "-1", "must be >= 0"),
     (port, "70000", "0..65535")],
)
def test_rejects_bad_values(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(text)
