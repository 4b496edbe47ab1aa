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


# ----------------------------------------------------------------------- when a test-suite worker dies
# A pytest-xdist worker that dies says only "node down: Not properly terminated". These hooks say
# how: on a signal that would end it silently (segfaults and aborts already print their stacks),
# a worker writes the stacks of its threads to a file (its stderr is captured then), and the
# controller prints the worker's exit status and that file.
_SILENT_ENDS = ("SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGXCPU")


def _stacks_file(controller_pid: int, worker: str) -> Path:
    import tempfile

    return Path(tempfile.gettempdir()) / f"yoloxkit-tests-{controller_pid}-{worker}.stacks"


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        import faulthandler
        import signal

        config._silent_end_stacks = open(_stacks_file(os.getppid(), worker), "w")  # noqa: SIM115 (kept open)
        for name in _SILENT_ENDS:
            faulthandler.register(getattr(signal, name), file=config._silent_end_stacks, all_threads=True, chain=True)


def pytest_testnodedown(node, error):
    import signal
    import sys

    stacks = _stacks_file(os.getpid(), node.gateway.id)
    if error is not None:
        try:  # execnet keeps the worker's Popen on its IO object
            status = node.gateway._io.popen.wait(10)
        except Exception as exc:  # noqa: BLE001 - a diagnostic only
            status = f"unknown ({type(exc).__name__})"
        if isinstance(status, int) and status < 0:
            status = f"killed by {signal.Signals(-status).name}"
        text = stacks.read_text(errors="replace") if stacks.exists() else ""
        print(f"\n[{node.gateway.id}] worker process ended: {status}\n{text}", file=sys.stderr, flush=True)
    stacks.unlink(missing_ok=True)
