"""Class-names arguments and files: lists, comma-separated strings, .txt, .json and .yaml files."""

import json

import pytest

from yoloxkit.errors import DatasetError
from yoloxkit.names import names_from_yaml_value, read_names


def test_lists_and_comma_separated_strings():
    assert read_names(None) is None
    assert read_names(["cat", "dog"]) == ["cat", "dog"]
    assert read_names("cat, dog") == ["cat", "dog"]


@pytest.mark.parametrize("file_name, text", [
    ("n.txt", "cat\n\ndog\n"),
    ("n.json", json.dumps(["cat", "dog"])),
    ("n.json", json.dumps({"names": ["cat", "dog"]})),
    ("n.json", json.dumps({"names": {"0": "cat", "1": "dog"}})),
    ("n.yaml", "names:\n  0: cat\n  1: dog\n"),
    ("n.yml", "names: [cat, dog]\n"),
    ("n.yaml", "- cat\n- dog\n"),
])
def test_names_files(tmp_path, file_name, text):
    (tmp_path / file_name).write_text(text)
    assert read_names(tmp_path / file_name) == ["cat", "dog"]
    assert read_names(str(tmp_path / file_name)) == ["cat", "dog"]


def test_missing_file_is_named(tmp_path):
    for missing in (tmp_path / "none.txt", str(tmp_path / "none.json"), tmp_path / "no-suffix"):
        with pytest.raises(DatasetError, match=r"names file not found: .*(none|no-suffix)"):
            read_names(missing)


@pytest.mark.parametrize("file_name, text, message", [
    ("bad.json", "{broken", "bad.json: not valid JSON"),
    ("bad.json", json.dumps({"classes": ["a"]}), "no 'names' key"),
    ("bad.json", json.dumps({"names": {"0": "a", "2": "b"}}), "without gaps"),
    ("bad.yaml", "names: [a, a]\n", "'a' appears twice"),
    ("bad.yaml", "names: 3\n", "expected a list of class names"),
    ("bad.txt", "\n\n", "non-empty list"),
])
def test_bad_files(tmp_path, file_name, text, message):
    (tmp_path / file_name).write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_names(tmp_path / file_name)


def test_yaml_value_mapping_needs_class_ids():
    assert names_from_yaml_value({1: "b", 0: "a"}, "x") == ["a", "b"]
    with pytest.raises(DatasetError, match="keys must be class ids"):
        names_from_yaml_value({"a": "b"}, "x")
