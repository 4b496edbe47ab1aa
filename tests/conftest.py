import os
from pathlib import Path

import pytest
import torch

# Under pytest-xdist each worker gets one thread (the workers share the cores);
# a plain run uses up to two.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
else:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared data not found at {SHARED} (CI lays ../shared beside the clone)")
    return SHARED


@pytest.fixture(scope="session")
def coco_mini(shared_dir) -> Path:
    return shared_dir / "data" / "coco-mini"


@pytest.fixture(scope="session")
def coco_mini_4(coco_mini, tmp_path_factory) -> Path:
    """The first 4 annotated coco-mini training images as both train2017 and val2017."""
    from tests.train_subset import make_subset

    return make_subset(coco_mini, tmp_path_factory.mktemp("coco-mini-4") / "data", 4, splits=("train2017", "val2017"))


@pytest.fixture(scope="session")
def dog_jpg(shared_dir) -> Path:
    return shared_dir / "images" / "dog.jpg"


@pytest.fixture(scope="session")
def nano_onnx(shared_dir) -> Path:
    return shared_dir / "models" / "yolox_nano_coco.onnx"
