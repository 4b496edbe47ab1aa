"""What a plain ``pip install yoloxkit`` brings (issue 11, item 15): ``serve`` works without an
extra, and the old ``[serve]`` extra still resolves."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_serve_needs_no_extra():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert {"fastapi", "uvicorn", "python-multipart"} <= _names(project["dependencies"])
    assert "serve" in project["optional-dependencies"]  # `pip install 'yoloxkit[serve]'` keeps working


def test_docs_do_not_send_users_to_a_missing_extra():
    text = (PYPROJECT.parent / "docs" / "custom_dataset.md").read_text() + (PYPROJECT.parent / "README.md").read_text()
    extras = set(tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"])
    for extra in re.findall(r"yoloxkit\[(\w+)\]", text):
        assert extra in extras, extra


def test_track_extra_brings_what_trackers_needs_but_no_second_opencv():
    from importlib import metadata

    project = tomllib.loads(PYPROJECT.read_text())["project"]
    track = _names(project["optional-dependencies"]["track"])
    assert "opencv-python" not in track and "trackers" not in track
    needed = {r for r in metadata.requires("trackers") if "extra ==" not in r}
    assert _names(needed) - {"opencv-python"} <= track | _names(project["dependencies"])
    # `make test` installs trackers with --no-deps: the test environment has one OpenCV, the headless one
    names = {d.metadata["Name"].lower() for d in metadata.distributions()}
    assert "opencv-python-headless" in names and "opencv-python" not in names


def test_trackers_install_hint_matches_the_makefile():
    from yoloxkit.tracking.library import TRACKERS_HINT

    makefile = (PYPROJECT.parent / "Makefile").read_text()
    pinned = re.search(r"^TRACKERS := (.+)$", makefile, re.M).group(1).strip()
    assert f'--no-deps "{pinned}"' in TRACKERS_HINT and "yoloxkit[track]" in TRACKERS_HINT
