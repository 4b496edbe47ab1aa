"""DDP on CPU: two gloo processes train a few iterations and their replicas stay identical.

The test launches this file under ``torch.distributed.run``; run as a script it is the worker.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _worker(data: str, out: str) -> None:
    import torch

    from yoloxkit.engine import distributed as dist_utils
    from yoloxkit.engine.config import TrainConfig
    from yoloxkit.engine.ema import unwrap_model
    from yoloxkit.engine.trainer import Trainer

    torch.set_num_threads(1)
    cfg = TrainConfig(
        data=data, model="yolox-nano", epochs=2, batch_size=4, size=128, size_range=(96, 160), max_iters_per_epoch=2,
        workers=0, device="cpu", seed=3, eval_interval=0, warmup_epochs=1, no_aug_epochs=1, out=out,
        tensorboard=False, progress=False, plots=False,
    )
    record: dict = {"params": [], "batches": []}

    def after_iteration(trainer: Trainer) -> None:
        record["params"].append(_digest(unwrap_model(trainer.model).parameters()))

    trainer = Trainer(cfg, log=lambda m: None, on_iteration_end=after_iteration)
    trainer.setup()
    first_images, _ = next(iter(trainer.pipeline.loader))
    record["first_batch"] = _digest([first_images])
    record["initial"] = _digest(unwrap_model(trainer.model).parameters())
    trainer.setup = lambda: None  # fit() would set up again
    trainer.fit()
    model = unwrap_model(trainer.model)
    record["final_params"] = _digest(model.parameters())
    record["final_buffers"] = _digest(b for n, b in model.named_buffers() if "running" in n)
    record["world"] = trainer.dist.world_size
    rank = trainer.dist.rank
    Path(out, f"rank{rank}.json").write_text(json.dumps(record))
    dist_utils.cleanup()


@pytest.mark.timeout(300)
def test_two_gloo_processes_keep_identical_replicas(coco_mini, tmp_path):
    from tests.train_subset import make_subset
    from yoloxkit.weights import read_checkpoint

    data = make_subset(coco_mini, tmp_path / "data", 8)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           __file__, str(data), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["first_batch"] != ranks[1]["first_batch"]  # each rank reads its own share of the data
    assert ranks[0]["initial"] == ranks[1]["initial"]
    assert len(ranks[0]["params"]) == len(ranks[1]["params"]) == 4
    assert ranks[0]["params"] == ranks[1]["params"]  # identical after every iteration
    assert ranks[0]["final_params"] != ranks[0]["initial"]
    assert ranks[0]["final_buffers"] == ranks[1]["final_buffers"]  # BN statistics averaged at epoch end
    # only rank 0 writes checkpoints; they hold the replicas' weights
    assert sorted(p.name for p in out.glob("*.pth")) == ["last.pth"]
    state = read_checkpoint(out / "last.pth")["train_state"]["model"]
    assert _digest(v for k, v in state.items() if k.endswith(("weight", "bias")) and "running" not in k) == ranks[0]["final_params"]


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
