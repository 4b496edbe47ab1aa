"""Training engine: configuration, optimiser, schedule, EMA, checkpoints, DDP and the loop.

```python
from yoloxkit.engine import TrainConfig, train
result = train(TrainConfig(data="path/to/coco", model="yolox-s", epochs=300))
```

The loop (:mod:`.trainer`, with evaluation, plots and TensorBoard behind it) loads on first use,
so that the configuration and the checks before a run (:func:`.builder.preflight`) do not pay
for importing torchvision and matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import ConfigError, TrainConfig, default_config, load_config

if TYPE_CHECKING:
    from .trainer import Trainer, TrainResult, train

__all__ = ["TrainConfig", "ConfigError", "default_config", "load_config", "Trainer", "TrainResult", "train"]


def __getattr__(name: str):
    if name in ("Trainer", "TrainResult", "train"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'yoloxkit.engine' has no attribute {name!r}")
