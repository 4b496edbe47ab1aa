"""PNG plots written at the end of training: loss curves and AP per epoch."""

from __future__ import annotations

import os
from pathlib import Path

from ..io import atomic_path

__all__ = ["plot_losses", "plot_metric", "whole_epoch_axis"]

LOSS_TERMS = ("total_loss", "iou_loss", "conf_loss", "cls_loss", "l1_loss")


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def whole_epoch_axis(ax) -> None:
    """Ticks of the epoch axis at whole epochs only (no 1.25)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_losses(history: list[dict], path: str | os.PathLike) -> Path | None:
    """Per-epoch mean of each loss term (one panel per term). ``history`` rows hold
    ``epoch`` and the loss terms. Returns the written path, or None with nothing to plot."""
    rows = [r for r in history if "total_loss" in r]
    if not rows:
        return None
    plt = _figure()
    terms = [t for t in LOSS_TERMS if any(t in r for r in rows)]
    fig, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 3.0), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    for ax, term in zip(axes[0], terms):
        ax.plot(epochs, [r.get(term, float("nan")) for r in rows], marker="o", markersize=3)
        ax.set_title(term)
        ax.set_xlabel("epoch")
        whole_epoch_axis(ax)
        ax.set_ylabel("mean loss")
        ax.grid(alpha=0.3)
    fig.suptitle("training losses per epoch")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_metric(history: list[dict], path: str | os.PathLike, key: str = "ap", label: str = "AP") -> Path | None:
    """``key`` (in percent) against epoch for the rows that have it."""
    rows = [r for r in history if r.get(key) is not None]
    if not rows:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot([r["epoch"] for r in rows], [r[key] for r in rows], marker="o", color="tab:green")
    ax.set_xlabel("epoch")
    whole_epoch_axis(ax)
    ax.set_ylabel(f"{label} (%)")
    ax.set_title(f"validation {label} per epoch (EMA weights)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)
