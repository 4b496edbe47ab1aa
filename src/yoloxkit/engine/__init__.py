"""Training engine: configuration, optimiser, schedule, EMA, checkpoints, DDP and the loop.

```python
from yoloxkit.engine import TrainConfig, train
result = train(TrainConfig(data="path/to/coco", model="yolox-s", epochs=300))
```

A run is planned once (:func:`.plan.plan_run`: resolved options, run folder, starting weights)
and user hooks (:class:`.hooks.Hook`, docs/training_hooks.md) run after the built-in ones:
``train(cfg, hooks=[MyHook()])``. The loop (:mod:`.trainer`, with evaluation, plots and
TensorBoard behind it) and the hooks load on first use, so that the configuration and the
checks before a run do not pay for importing torchvision and matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import ConfigError, TrainConfig, default_config, load_config

if TYPE_CHECKING:
    from .hooks import EpochEnd, Hook
    from .plan import RunPlan, plan_run
    from .trainer import Trainer, TrainResult, train

__all__ = [
    "TrainConfig", "ConfigError", "default_config", "load_config", "RunPlan", "plan_run", "Hook", "EpochEnd",
    "Trainer", "TrainResult", "train",
]
_LAZY = {"Trainer": "trainer", "TrainResult": "trainer", "train": "trainer", "Hook": "hooks", "EpochEnd": "hooks",
         "RunPlan": "plan", "plan_run": "plan"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'yoloxkit.engine' has no attribute {name!r}")
