"""What a training run reports (on rank 0 only): log lines, the per-epoch progress bar,
TensorBoard scalars and the JSON files of the output directory."""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from ..io import atomic_write_text

__all__ = ["TrainLogger", "EpochBar", "LOSS_KEYS", "format_losses"]

LOSS_KEYS = ("total_loss", "iou_loss", "conf_loss", "cls_loss", "l1_loss", "pss_loss", "num_fg")


def format_losses(row: dict[str, Any]) -> str:
    """``total_loss=1.2345 iou_loss=...`` for the loss terms of a history row."""
    return " ".join(f"{k}={row[k]:.4f}" for k in LOSS_KEYS if k in row and k != "num_fg")


class EpochBar:
    """A tqdm bar over the iterations of one epoch, or nothing (``enabled=False``)."""

    def __init__(self, total: int, initial: int, desc: str, enabled: bool = True) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=True)

    def update(self, losses: dict[str, float], lr: float, size: int) -> None:
        """Advance by one iteration, showing its losses, learning rate and input size."""
        if self._bar is None:
            return
        self._bar.set_postfix_str(
            " ".join(f"{k.replace('_loss', '')}={v:.3f}" for k, v in losses.items() if k != "num_fg")
            + f" lr={lr:.2e} size={size}",
            refresh=False,
        )
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class TrainLogger:
    """Sends log lines to ``sink`` and writes TensorBoard scalars and JSON files, all only when
    ``is_main`` (rank 0); other ranks stay silent."""

    def __init__(self, sink: Callable[[str], None], is_main: bool) -> None:
        self._sink = sink
        self.is_main = is_main
        self.writer = None  # torch.utils.tensorboard.SummaryWriter once opened

    def log(self, message: str) -> None:
        if self.is_main:
            self._sink(message)

    def open_tensorboard(self, log_dir: str | os.PathLike) -> None:
        """Start writing TensorBoard event files to ``log_dir``."""
        if self.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(log_dir))

    def scalars(self, values: dict[str, float], step: int) -> None:
        """TensorBoard scalars ``{tag: value}`` at ``step`` (nothing without a writer)."""
        if self.writer is not None:
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)

    def epoch_bar(self, total: int, initial: int, desc: str, enabled: bool) -> EpochBar:
        return EpochBar(total, initial, desc, enabled=enabled and self.is_main)

    def write_json(self, value: Any, path: str | os.PathLike, indent: int = 1,
                   default: Callable[[Any], Any] | None = None) -> None:
        """Write ``value`` as JSON to ``path`` atomically (rank 0); ``default`` as in :func:`json.dumps`."""
        if self.is_main:
            atomic_write_text(json.dumps(value, indent=indent, default=default) + "\n", path)

    def write_config(self, options: dict[str, Any], out_dir: str | os.PathLike) -> None:
        """``out_dir/config.json``: every option of the run (``TrainConfig.to_dict()``), rank 0."""
        self.write_json(options, os.path.join(out_dir, "config.json"), indent=2, default=str)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
