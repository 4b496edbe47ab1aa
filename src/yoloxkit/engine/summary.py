"""The results table printed at the end of a training run (and kept as ``OUT/results.txt``):
the best epoch with its metrics per class, the files the run wrote, and the commands that use
them. It names only files that exist."""

from __future__ import annotations

from pathlib import Path

from ..evaluate.report import per_class_table
from .config import TrainConfig
from .state import TrainState

__all__ = ["results_table", "RESULT_FILES"]

#: the files of a run, with what each holds, in the order the table lists them
RESULT_FILES = (
    ("best.pth", "the best epoch's EMA weights: use this one"),
    ("last.pth", "the last epoch, resumable with --resume"),
    ("history.json", "losses and metrics per epoch"),
    ("loss_curves.png", "losses per epoch"),
    ("ap_per_epoch.png", "validation metric per epoch"),
    ("tensorboard", "TensorBoard logs: tensorboard --logdir"),
    ("config.json", "every option of the run"),
)


def _best_lines(state: TrainState) -> list[str]:
    if state.best_metric is None:
        return ["no validation split was evaluated: best.pth is not written (last.pth holds the weights)"]
    which = "the starting weights (no epoch beat them)" if state.best_epoch == 0 else f"epoch {state.best_epoch}"
    lines = [f"best: {which}, {state.metric_name} {state.best_metric:.2f}"]
    report = state.best_eval or {}
    keys = ("AP50", "AP75", "APs", "APm", "APl") if report.get("metric") != "voc" else ("mAP50_voc07", "mAP50_95")
    others = [f"{k} {report[k]:.2f}" for k in keys if isinstance(report.get(k), (int, float))]
    if others:
        lines[0] += f" ({', '.join(others)})"
    if report.get("per_class"):
        lines.append(per_class_table(report.get("metric", "coco"), report["per_class"], report.get("per_class_detail") or {}))
    return lines


def _skipped_lines(state: TrainState) -> list[str]:
    lines = []
    for split, paths in sorted(state.skipped_images.items()):
        if paths:
            shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
            word = "image" if len(paths) == 1 else "images"
            lines.append(f"skipped: {len(paths)} unreadable {split} {word} ({shown})")
    return lines


def results_table(cfg: TrainConfig, state: TrainState, out: str | Path) -> str:
    """The end-of-run text for the resolved ``cfg`` and the final ``state`` of a run in ``out``."""
    out = Path(out)
    epochs = f"{state.epoch} epoch{'' if state.epoch == 1 else 's'}"
    lines = [f"results: {cfg.model} at {cfg.size}, {epochs}, data {cfg.data}"]
    lines += _best_lines(state)
    lines += _skipped_lines(state)
    files = [(out / name, what) for name, what in RESULT_FILES if (out / name).exists()]
    if files:
        width = max(len(str(path)) for path, _ in files)
        lines.append("files:")
        lines += [f"  {str(path).ljust(width)}  {what}" for path, what in files]
    weights = out / "best.pth" if (out / "best.pth").is_file() else out / "last.pth"
    if weights.is_file():
        lines += [
            "next:",
            f"  yoloxkit eval --weights {weights} --data {cfg.data}",
            f"  yoloxkit predict IMAGE_OR_FOLDER --weights {weights}",
            f"  yoloxkit export --weights {weights} --format onnx",
        ]
    return "\n".join(lines)
