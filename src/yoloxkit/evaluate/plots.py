"""Evaluation plots (PNG): precision-recall curves, confusion matrix, worst-images gallery."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from ..data.records import DetectionData, ImageRecord
from ..errors import ImageReadError
from ..imaging.letterbox import fit_size
from ..imaging.read import read_image
from ..infer.defaults import DEFAULT_CONF
from ..io import atomic_path, make_output_dir
from .matching import ImageMatch, confusion_matrix, match_predictions
from .predictions import ImagePredictions
from .voc import voc_evaluate

__all__ = [
    "plot_confusion_matrix",
    "plot_pr_curves",
    "plot_pr_per_class",
    "plot_worst_images",
    "pr_per_class_figure",
    "write_plots",
]

GT_COLOR = (60, 200, 60)  # BGR green
TP_COLOR = (230, 140, 30)  # BGR blue
FP_COLOR = (40, 40, 230)  # BGR red


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(path, what="plot") as tmp:
        fig.savefig(tmp, format="png")
    return path


def _interpolated(recall: np.ndarray, precision: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Precision envelope sampled at ``grid`` recalls (0 beyond the last recall reached)."""
    if recall.size == 0:
        return np.zeros_like(grid)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(recall, grid, side="left")
    return np.where(index < len(recall), envelope[np.minimum(index, len(recall) - 1)], 0.0)


def _envelope_steps(recall: np.ndarray, precision: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The step curve whose area is the VOC area AP: from recall 0, down to 0 after the last recall."""
    if recall.size == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 0.0])
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    x = np.concatenate(([0.0], recall, [recall[-1]]))
    y = np.concatenate(([envelope[0]], envelope, [0.0]))
    return x, y


def plot_pr_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: Path, title: str = "Precision-recall, IoU 0.5"
) -> Path:
    """All classes in one axes (thin lines) with the class-mean curve in bold."""
    fig = Figure(figsize=(8, 6.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    grid = np.linspace(0, 1, 101)
    envelopes = []
    for name, (recall, precision, ap) in curves.items():
        ax.plot(*_envelope_steps(recall, precision), color="0.6", linewidth=0.7, alpha=0.7, drawstyle="steps-pre")
        envelopes.append(_interpolated(recall, precision, grid))
    if envelopes:
        mean_ap = float(np.mean([ap for _, _, ap in curves.values()]))
        ax.plot(grid, np.mean(envelopes, axis=0), color="tab:blue", linewidth=2.5,
                label=f"all classes, mAP@0.5 = {mean_ap * 100:.1f}")
        ax.plot([], [], color="0.6", linewidth=0.7, label=f"each class ({len(curves)})")
        ax.legend(loc="lower left")
    else:
        ax.text(0.5, 0.5, "no class with ground truth", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="Recall", ylabel="Precision", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _wrapped(text: str, fontsize: float, width_px: float, renderer) -> str:
    """``text`` broken at spaces into lines no wider than ``width_px`` at ``fontsize``."""
    font = FontProperties(size=fontsize)

    def width(line: str) -> float:
        return renderer.get_text_width_height_descent(line, font, ismath=False)[0]

    lines: list[str] = []
    for word in text.split():
        if lines and width(f"{lines[-1]} {word}") <= width_px:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


def pr_per_class_figure(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], columns: int = 8) -> Figure:
    """The figure of :func:`plot_pr_per_class`; its title is wrapped to the figure's width and the
    panels start below it, whatever the number of classes."""
    count = max(1, len(curves))
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    fig = Figure(figsize=(max(2.3 * columns, 3.0), 2.1 * rows + 0.8), dpi=90)
    renderer = FigureCanvasAgg(fig).get_renderer()
    height_in = fig.get_figheight()
    title = fig.suptitle(
        _wrapped("Precision-recall per class at IoU 0.5 (blue: precision envelope, its area is the AP;"
                 " grey: raw precision)", 13, 0.96 * fig.bbox.width, renderer),
        fontsize=13, y=1 - 0.08 / height_in, va="top",
    )
    title_in = title.get_window_extent(renderer).height / fig.dpi
    # A fixed layout: tight_layout on dozens of axes costs tens of seconds. Below the title: room
    # for the panel titles (0.35 in).
    width_in = fig.get_figwidth()
    fig.subplots_adjust(left=0.5 / width_in, right=1 - 0.15 / width_in, bottom=0.6 / height_in + 0.02,
                        top=1 - (0.08 + title_in + 0.35) / height_in, wspace=0.15, hspace=0.45)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()  # unshared: sharing is quadratic
    for i, ax in enumerate(axes):
        if i >= len(curves):
            ax.set_visible(False)
    for ax, (name, (recall, precision, ap)) in zip(axes, curves.items()):
        x, y = _envelope_steps(recall, precision)
        ax.plot(recall, precision, color="0.55", linewidth=0.6)
        ax.fill_between(x, y, step="pre", alpha=0.25, color="tab:blue")
        ax.plot(x, y, color="tab:blue", linewidth=1.2, drawstyle="steps-pre")
        ax.set_title(f"{name}  AP {ap * 100:.1f}", fontsize=9)
        ax.set(xlim=(0, 1), ylim=(0, 1.05), xticks=(0, 0.5, 1), yticks=(0, 0.5, 1))
        ax.tick_params(labelsize=7)
    for row in range(rows):
        axes[row * columns].set_ylabel("Precision", fontsize=8)
    for ax in axes[-columns:]:
        ax.set_xlabel("Recall", fontsize=8)
    return fig


def plot_pr_per_class(
    curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: Path, columns: int = 8
) -> Path:
    """One small precision-recall panel per class, titled with the class name and its AP@0.5."""
    return _save(pr_per_class_figure(curves, columns), path)


def plot_confusion_matrix(
    matrix: np.ndarray, names: Sequence[str], path: Path, conf: float = DEFAULT_CONF, iou_threshold: float = 0.5
) -> Path:
    """Heat map of ``matrix`` (rows predicted, columns true, last = background), each true-class
    column normalised to 1; classes that never occur are left out."""
    num_classes = len(names)
    used = np.flatnonzero((matrix[:num_classes].sum(axis=1) + matrix[:, :num_classes].sum(axis=0)) > 0)
    index = np.concatenate([used, [num_classes]])
    sub = matrix[np.ix_(index, index)].astype(np.float64)
    normalised = sub / np.maximum(sub.sum(axis=0, keepdims=True), 1)
    labels = [names[i] for i in used] + ["background"]
    size = max(6.0, 0.15 * len(labels) + 3)
    fig = Figure(figsize=(size + 1.2, size), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ticks = np.arange(len(labels))
    font = 10 if len(labels) <= 20 else 7
    ax.set_xticks(ticks, labels, rotation=90, fontsize=font)
    ax.set_yticks(ticks, labels, fontsize=font)
    if len(labels) <= 25:
        for r in range(len(labels)):
            for c in range(len(labels)):
                if sub[r, c]:
                    ax.text(c, r, int(sub[r, c]), ha="center", va="center", fontsize=7,
                            color="white" if normalised[r, c] > 0.5 else "black")
    ax.set_xlabel("True class")
    ax.set_ylabel("Predicted class")
    ax.set_title(f"Confusion matrix (IoU >= {iou_threshold}, score >= {conf}; columns normalised)")
    margin = (0.35 + 0.075 * max(len(label) for label in labels) * font / 10 + 0.3) / size
    fig.subplots_adjust(left=margin * size / (size + 1.2), bottom=margin, right=0.93, top=1 - 0.5 / size)
    return _save(fig, path)


def _draw(
    image: np.ndarray, record: ImageRecord, match: ImageMatch, names: Sequence[str], longest: int = 640
) -> np.ndarray:
    """Resize so the longest side is at most ``longest``, then draw boxes and labels at that scale."""
    height, width = image.shape[:2]
    scale = min(1.0, longest / max(height, width))
    if scale < 1:
        _, new_height, new_width = fit_size(height, width, (round(height * scale), round(width * scale)))
        canvas = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA)
    else:
        canvas = image.copy()
    for box in (record.boxes * scale).astype(int).tolist():
        cv2.rectangle(canvas, tuple(box[:2]), tuple(box[2:]), GT_COLOR, 2)
    pred = match.predictions
    for box, class_id, score, ok in zip(
        (pred.boxes * scale).astype(int).tolist(), pred.class_ids.tolist(), pred.scores.tolist(),
        match.pred_is_tp.tolist(),
    ):
        color = TP_COLOR if ok else FP_COLOR
        cv2.rectangle(canvas, tuple(box[:2]), tuple(box[2:]), color, 2)
        label = f"{names[class_id]} {score:.2f}"
        (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        x, y = max(box[0], 0), max(box[1], h + base + 2)
        cv2.rectangle(canvas, (x, y - h - base - 2), (x + w + 4, y), color, -1)
        cv2.putText(canvas, label, (x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def plot_worst_images(
    records: Sequence[ImageRecord],
    predictions: Sequence[ImagePredictions],
    names: Sequence[str],
    path: Path,
    count: int = 9,
    conf: float = DEFAULT_CONF,
    iou_threshold: float = 0.5,
) -> Path:
    """The ``count`` images with the lowest F1 at ``conf``/``iou_threshold``, with ground truth
    (green), correct predictions (blue) and wrong ones (red) drawn."""
    matches = [match_predictions(r, p, conf, iou_threshold) for r, p in zip(records, predictions)]
    order = sorted(range(len(records)), key=lambda i: (matches[i].f1, -(matches[i].fp + matches[i].fn)))
    chosen = [i for i in order if matches[i].f1 < 1.0][:count] or order[:count]
    columns = min(3, max(1, len(chosen)))
    rows = max(1, math.ceil(len(chosen) / columns))
    fig = Figure(figsize=(5.2 * columns, 4.4 * rows + 0.8), dpi=90)
    for slot, i in enumerate(chosen):
        ax = fig.add_subplot(rows, columns, slot + 1)
        try:
            image = read_image(records[i].path)
        except ImageReadError:
            image = np.full((max(records[i].height, 1), max(records[i].width, 1), 3), 200, np.uint8)
        drawn = _draw(image, records[i], matches[i], names)
        ax.imshow(cv2.cvtColor(drawn, cv2.COLOR_BGR2RGB))
        m = matches[i]
        ax.set_title(f"{Path(records[i].path).name}\nF1 {m.f1:.2f}  TP {m.tp}  FP {m.fp}  FN {m.fn}", fontsize=9)
        ax.axis("off")
    if not chosen:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no images", ha="center", va="center")
        ax.axis("off")
    fig.suptitle(
        f"Worst images (F1 at score >= {conf}, IoU >= {iou_threshold}): "
        "green = ground truth, blue = correct, red = wrong", fontsize=12,
    )
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.9 / (4.4 * rows + 0.8), hspace=0.25)
    return _save(fig, path)


def write_plots(
    data: DetectionData,
    predictions: Sequence[ImagePredictions],
    out_dir: Path,
    classes: Sequence[int] | None = None,
    conf: float = DEFAULT_CONF,
) -> list[Path]:
    """Write ``pr_curves.png``, ``pr_per_class.png``, ``confusion_matrix.png`` and
    ``worst_images.png`` into ``out_dir``; return their paths. A file that cannot be written
    raises :class:`~yoloxkit.errors.OutputError` naming it."""
    out_dir = make_output_dir(out_dir, "plots folder")
    voc = voc_evaluate(data.records, predictions, len(data.names), thresholds=(0.5,), classes=classes)
    curves = {
        name: (voc.curves[k][0], voc.curves[k][1], float(voc.ap[0, k]))
        for k, name in enumerate(data.names)
        if not np.isnan(voc.ap[0, k])
    }
    matrix = confusion_matrix(data.records, predictions, len(data.names), conf=conf)
    return [
        plot_pr_curves(curves, out_dir / "pr_curves.png"),
        plot_pr_per_class(curves, out_dir / "pr_per_class.png"),
        plot_confusion_matrix(matrix, data.names, out_dir / "confusion_matrix.png", conf=conf),
        plot_worst_images(data.records, predictions, data.names, out_dir / "worst_images.png", conf=conf),
    ]
