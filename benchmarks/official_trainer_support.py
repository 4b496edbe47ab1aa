"""Helpers of ``bench_official_trainer.py``: the official trainer (pixeltable-yolox 0.4.3,
``yolox.core.trainer.Trainer``) run on CPU and instrumented, and the comparison tables.

The official loop assumes CUDA in a few places; :func:`cpu_patches` stubs exactly those for the
duration of a run and nothing else: ``Tensor.cuda`` (the multi-scale size tensor), the CUDA
stream ``DataPrefetcher`` (replaced by one that preloads the next batch on CPU, as the original
does on its stream), ``torch.cuda.set_device``, the GPU memory figure of the log line, and the
logger set-up (which would redirect this process's stdout and stderr into loguru; the log goes
to ``OUT/official/train_log.txt`` only). The official evaluator (CUDA tensor types) is replaced
by a callback that gets the EMA state dict after every epoch, so that both trainers are scored
by the same evaluator. Everything else (sampler, Mosaic dataset, batch sampler, schedule,
optimiser groups, EMA, loss, multi-scale draws, the no-aug switch) is the official code.
"""

from __future__ import annotations

import contextlib
import io
import math
import random
import time
import warnings
from argparse import Namespace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

__all__ = ["OfficialSettings", "cpu_patches", "run_official", "optimizer_groups", "summarise", "table", "seeds_table"]

Evaluate = Callable[[dict[str, torch.Tensor]], dict[str, float]]


class OfficialSettings(Namespace):
    """What :func:`run_official` needs (a plain namespace, filled by the benchmark)."""

    data_dir: Path
    train_split: str
    val_split: str
    num_classes: int
    size: int
    epochs: int
    warmup_epochs: int
    no_aug_epochs: int
    batch_size: int
    seed: int
    workers: int
    init_weights: Path
    out_dir: Path
    model: str  # "yolox-nano" or "yolox-tiny"


class CpuPrefetcher:
    """The official ``DataPrefetcher`` without the CUDA stream: it preloads one batch ahead (so
    the first batch of an epoch is fetched during the previous one, as in the original) and
    records, for every batch it hands out, its number of images without boxes and whether the
    batch sampler had Mosaic on when the batch was drawn (exact with ``workers=0``)."""

    def __init__(self, loader: Any, records: list[dict[str, Any]]) -> None:
        self.loader_obj = loader
        self.loader = iter(loader)
        self.records = records
        self.preload()

    def preload(self) -> None:
        self.next_mosaic = bool(self.loader_obj.batch_sampler.mosaic)
        try:
            self.next_input, self.next_target, _, _ = next(self.loader)
        except StopIteration:
            self.next_input = self.next_target = None

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets, mosaic = self.next_input, self.next_target, self.next_mosaic
        empty = int((targets.abs().sum(dim=2) == 0).all(dim=1).sum()) if targets is not None else 0
        self.records.append({"empty": empty, "mosaic_flag": mosaic})
        self.preload()
        return inputs, targets


def optimizer_groups(optimizer: torch.optim.Optimizer) -> list[list]:
    """``[tensors, elements, weight decay, momentum, nesterov]`` of each parameter group."""
    return [[len(g["params"]), sum(p.numel() for p in g["params"]), float(g["weight_decay"]), float(g["momentum"]),
             bool(g["nesterov"])] for g in optimizer.param_groups]


def _file_logger(save_dir: str, distributed_rank: int = 0, filename: str = "log.txt", mode: str = "a") -> None:
    from loguru import logger

    logger.remove()
    logger.add(str(Path(save_dir) / filename), level="INFO")


@contextlib.contextmanager
def cpu_patches(batches: list[dict[str, Any]]) -> Iterator[None]:
    """Stub the CUDA calls of the official trainer while the block runs (see the module doc)."""
    import yolox.core.trainer as official

    saved = {
        (torch.Tensor, "cuda"): torch.Tensor.cuda,
        (torch.cuda, "set_device"): torch.cuda.set_device,
        (official, "DataPrefetcher"): official.DataPrefetcher,
        (official, "gpu_mem_usage"): official.gpu_mem_usage,
        (official, "setup_logger"): official.setup_logger,
    }
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.cuda.set_device = lambda *args, **kwargs: None
    official.DataPrefetcher = lambda loader: CpuPrefetcher(loader, batches)
    official.gpu_mem_usage = lambda: 0.0
    official.setup_logger = _file_logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.cuda.amp deprecation, GradScaler without CUDA
            yield
    finally:
        for (owner, name), value in saved.items():
            setattr(owner, name, value)
        from loguru import logger

        logger.remove()


def _config(s: OfficialSettings):
    """The official Exp of ``s.model`` with the benchmark's data, size and schedule."""
    from yolox.config import YoloxConfig

    config = YoloxConfig.get_named_config(s.model.replace("-", "_"))
    if config is None:
        raise SystemExit(f"--model {s.model}: no official config of that name")
    config.num_classes = s.num_classes
    config.input_size = config.test_size = (s.size, s.size)
    config.max_epoch = s.epochs
    config.warmup_epochs = s.warmup_epochs
    config.no_aug_epochs = s.no_aug_epochs
    config.seed = s.seed
    config.data_num_workers = s.workers
    config.data_dir = str(s.data_dir)
    config.train_ann, config.val_ann = f"instances_{s.train_split}.json", f"instances_{s.val_split}.json"
    config.train_img_dir, config.val_img_dir = s.train_split, s.val_split
    config.output_dir = str(s.out_dir)
    config.eval_interval = 1  # evaluate after every epoch (through the callback)
    config.save_history_ckpt = False
    config.print_interval = 1
    config.get_evaluator = lambda *args, **kwargs: None  # scored by the benchmark's evaluator
    config.validate()
    return config


def run_official(s: OfficialSettings, evaluate: Evaluate, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train with the official trainer and return per-iteration and per-epoch records:
    ``iters`` (epoch, iter, lr, size, losses, empty images, Mosaic flag) and ``epochs``
    (Mosaic on, L1 on, iterations, wall time, AP/AP50 of the EMA weights)."""
    from loguru import logger

    batches: list[dict[str, Any]] = []
    iters: list[dict[str, Any]] = []
    epochs: list[dict[str, Any]] = []
    config = _config(s)
    args = Namespace(
        name="official", batch_size=s.batch_size, fp16=False, resume=False, ckpt=str(s.init_weights),
        start_epoch=None, cache=None, occupy=False, logger="tensorboard", config=s.model,
    )
    # what yolox.cli.train.train does before building the trainer, plus numpy (its HSV draws),
    # which the official CLI leaves unseeded: without it two runs with one seed differ
    random.seed(s.seed)
    torch.manual_seed(s.seed)
    np.random.seed(s.seed)
    with cpu_patches(batches):
        trainer = config.get_trainer(args)
        trainer.device = "cpu"
        timer = {"start": 0.0}
        orig_before_epoch, orig_after_epoch = trainer.before_epoch, trainer.after_epoch
        orig_before_iter, orig_after_iter = trainer.before_iter, trainer.after_iter
        orig_update = trainer.meter.update
        orig_before_train = trainer.before_train
        current: dict[str, Any] = {}

        def before_train() -> None:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' loading messages
                orig_before_train()

        def before_epoch() -> None:
            orig_before_epoch()
            epochs.append({
                "epoch": trainer.epoch, "iterations": trainer.max_iter,
                "mosaic": bool(trainer.train_loader.batch_sampler.mosaic),
                "l1": bool(trainer.model.head.use_l1),
            })
            timer["start"] = time.perf_counter()

        def before_iter() -> None:
            orig_before_iter()
            current.clear()
            current.update(epoch=trainer.epoch, iter=trainer.progress_in_iter,
                           lr=float(trainer.optimizer.param_groups[0]["lr"]), size=int(trainer.input_size[0]))

        def meter_update(**values: Any) -> None:
            current.update({k: float(values[k]) for k in ("total_loss", "iou_loss", "conf_loss", "cls_loss",
                                                          "l1_loss", "num_fg") if k in values})
            orig_update(**values)

        def after_iter() -> None:
            current.update(batches[-1])
            iters.append(dict(current))
            orig_after_iter()

        def after_epoch() -> None:
            epochs[-1]["time_s"] = time.perf_counter() - timer["start"]
            orig_after_epoch()

        def evaluate_and_save() -> None:
            start = time.perf_counter()
            state = {k: v.detach().clone() for k, v in trainer.ema_model.ema.state_dict().items()}
            epochs[-1].update(evaluate(state))
            epochs[-1]["eval_s"] = time.perf_counter() - start
            trainer.save_ckpt("last_epoch")
            row = epochs[-1]
            log(f"official epoch {row['epoch']}: AP {row['AP']:.2f} AP50 {row['AP50']:.2f} ({row['time_s']:.0f} s)")

        trainer.before_train = before_train
        trainer.before_epoch, trainer.after_epoch = before_epoch, after_epoch
        trainer.before_iter, trainer.after_iter = before_iter, after_iter
        trainer.meter.update = meter_update
        trainer.evaluate_and_save_model = evaluate_and_save
        try:
            trainer.train()
        finally:
            logger.remove()
    return {"iters": iters, "epochs": epochs, "optimizer_groups": optimizer_groups(trainer.optimizer),
            "ema_updates": int(trainer.ema_model.updates)}


# ---------------------------------------------------------------------------- report
def summarise(run: dict[str, Any]) -> dict[str, Any]:
    """The figures of the table for one run."""
    iters, epochs = run["iters"], run["epochs"]
    off = [e["epoch"] for e in epochs if not e["mosaic"]]
    l1 = [e["epoch"] for e in epochs if e["l1"]]
    sizes = [r["size"] for r in iters]
    per_epoch = []
    for e in epochs:
        rows = [r for r in iters if r["epoch"] == e["epoch"]]
        per_epoch.append({
            "epoch": e["epoch"], "iterations": len(rows), "mosaic": e["mosaic"], "l1": e["l1"],
            "mosaic_batches": sum(r["mosaic_flag"] for r in rows),
            "empty_images": sum(r["empty"] for r in rows),
            "mean_loss": float(np.mean([r["total_loss"] for r in rows])) if rows else math.nan,
            "time_s": e.get("time_s"), "AP": e.get("AP"), "AP50": e.get("AP50"),
        })
    no_aug_from = off[0] if off else None
    return {
        "iterations_per_epoch": sorted({e["iterations"] for e in epochs}),
        "total_iterations": len(iters),
        "mosaic_off_epoch": no_aug_from,
        "l1_on_epoch": l1[0] if l1 else None,
        "sizes_drawn": sorted(set(sizes)),
        "size_range_drawn": [min(sizes), max(sizes)] if sizes else None,
        "empty_images_aug": sum(r["empty"] for r in iters if no_aug_from is None or r["epoch"] < no_aug_from),
        "empty_images_no_aug": sum(r["empty"] for r in iters if no_aug_from is not None and r["epoch"] >= no_aug_from),
        "lr": [r["lr"] for r in iters],
        "sizes": sizes,
        "per_epoch": per_epoch,
        "wall_s": float(sum(e.get("time_s") or 0.0 for e in epochs)),
        "optimizer_groups": run["optimizer_groups"],
        "ema_updates": run["ema_updates"],
    }


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(official: dict[str, Any], ours: dict[str, Any], settings: dict[str, Any]) -> str:
    """Markdown: the run-level figures, then one row per epoch."""
    n = min(len(official["lr"]), len(ours["lr"]))
    lr_diff = max((abs(a - b) for a, b in zip(official["lr"][:n], ours["lr"][:n])), default=math.nan)

    def sizes(s: dict[str, Any]) -> str:
        return f"{s['size_range_drawn'][0]}-{s['size_range_drawn'][1]}: {', '.join(map(str, s['sizes_drawn']))}"

    rows = [
        ("iterations per epoch", official["iterations_per_epoch"], ours["iterations_per_epoch"]),
        ("total iterations", official["total_iterations"], ours["total_iterations"]),
        ("Mosaic off from epoch (0-based)", official["mosaic_off_epoch"], ours["mosaic_off_epoch"]),
        ("L1 on from epoch (0-based)", official["l1_on_epoch"], ours["l1_on_epoch"]),
        ("optimiser groups [tensors, elements, weight decay, momentum, nesterov]",
         official["optimizer_groups"], ours["optimizer_groups"]),
        ("EMA updates", official["ema_updates"], ours["ema_updates"]),
        ("multi-scale range (configured)", settings["official_size_range"], settings["yoloxkit_size_range"]),
        ("multi-scale sizes drawn", sizes(official), sizes(ours)),
        ("images without boxes fed (Mosaic phase / no-aug phase)",
         f"{official['empty_images_aug']} / {official['empty_images_no_aug']}",
         f"{ours['empty_images_aug']} / {ours['empty_images_no_aug']}"),
        ("training wall time (s, without evaluation)", _fmt(official["wall_s"], 0), _fmt(ours["wall_s"], 0)),
    ]
    low, high = settings["official_size_range"]
    in_range = all(low <= v <= high and v % 32 == 0 for v in official["sizes_drawn"] + ours["sizes_drawn"])
    lines = ["| | official trainer | yoloxkit | same |", "|---|---|---|---|"]
    for name, a, b in rows:
        same = "yes" if a == b else "no"
        if name.startswith("training wall") or name.startswith("images without"):
            same = ""  # drawn from other random streams / machine dependent
        elif name == "multi-scale sizes drawn":  # other random streams: only the range can agree
            same = f"{'all' if in_range else 'not all'} in the official {low}-{high}"
        lines.append(f"| {name} | {a} | {b} | {same} |")
    peaks = max(official["lr"], default=0.0), max(ours["lr"], default=0.0)
    lines.append(f"| lr per iteration (peak; max abs difference over the first {n} iterations) | {peaks[0]:.6g} | "
                 f"{peaks[1]:.6g} | {'yes' if lr_diff <= 1e-9 * max(peaks) else 'no'} ({lr_diff:.2g}) |")
    lines += ["", "| epoch | Mosaic batches (off. / yxk) | L1 | iters | mean loss (off. / yxk) | time s "
              "| AP (off. / yxk) | AP50 (off. / yxk) |", "|---|---|---|---|---|---|---|---|"]
    for a, b in zip(official["per_epoch"], ours["per_epoch"]):
        def onoff(key: str) -> str:
            return f"{'on' if a[key] else 'off'} / {'on' if b[key] else 'off'}"
        lines.append(
            f"| {a['epoch']} | {a['mosaic_batches']} / {b['mosaic_batches']} | {onoff('l1')} | "
            f"{a['iterations']} / {b['iterations']} | {_fmt(a['mean_loss'])} / {_fmt(b['mean_loss'])} | "
            f"{_fmt(a['time_s'], 0)} / {_fmt(b['time_s'], 0)} | "
            f"{_fmt(a['AP'], 1)} / {_fmt(b['AP'], 1)} | {_fmt(a['AP50'], 1)} / {_fmt(b['AP50'], 1)} |"
        )
    return "\n".join(lines)


def seeds_table(runs: list[dict[str, Any]]) -> str:
    """Markdown: AP / AP50 per epoch over the seeds, mean and standard deviation, and per seed."""
    def stats(name: str, key: str, epoch: int) -> tuple[str, list[float]]:
        values = [r[name]["per_epoch"][epoch][key] for r in runs]
        return f"{np.mean(values):.1f} ± {np.std(values):.1f}", values

    seeds = ", ".join(str(r["seed"]) for r in runs)
    lines = ["| epoch | AP official | AP yoloxkit | AP50 official | AP50 yoloxkit "
             f"| AP per seed ({seeds}): official / yoloxkit |", "|---|---|---|---|---|---|"]
    for epoch in range(min(len(r[name]["per_epoch"]) for r in runs for name in ("official", "yoloxkit"))):
        (ao, vo), (ay, vy) = stats("official", "AP", epoch), stats("yoloxkit", "AP", epoch)
        (bo, _), (by, _) = stats("official", "AP50", epoch), stats("yoloxkit", "AP50", epoch)
        per_seed = "; ".join(f"{a:.1f} / {b:.1f}" for a, b in zip(vo, vy))
        lines.append(f"| {epoch} | {ao} | {ay} | {bo} | {by} | {per_seed} |")
    return "\n".join(lines)
