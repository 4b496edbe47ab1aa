"""Training engine: configuration, optimiser, schedule, EMA, checkpoints, DDP and the loop.

```python
from yoloxkit.engine import TrainConfig, train
result = train(TrainConfig(data="path/to/coco", model="yolox-s", epochs=300))
```
"""

from .config import ConfigError, TrainConfig, default_config, load_config
from .trainer import Trainer, TrainResult, train

__all__ = ["TrainConfig", "ConfigError", "default_config", "load_config", "Trainer", "TrainResult", "train"]
