"""``yoloxkit train``: the official YOLOX recipe on a COCO, VOC or YOLO-txt dataset.

Multi-GPU / multi-node: ``torchrun --nproc_per_node N -m yoloxkit train ...`` (DDP).
"""

from __future__ import annotations

import argparse

# CLI flag -> TrainConfig field, for flags whose value maps 1:1.
_VALUE_FLAGS = (
    "data", "train_split", "val_split", "model", "weights", "epochs", "batch_size", "size", "device",
    "workers", "out", "seed", "eval_interval", "no_aug_epochs", "warmup_epochs", "lr", "min_lr_ratio",
    "momentum", "weight_decay", "ema", "amp", "sync_bn", "cache_ram", "visualize_assign", "multiscale",
    "max_iters_per_epoch", "mosaic_prob", "mixup_prob", "eval_conf", "eval_nms", "plots", "names", "rescale_convs",
    "channels_last", "ema_decay", "ema_ramp", "recipe", "freeze_trunk", "freeze_detector", "pss_targets", "loss_normalizer", "fit_new_classes", "eval_start",
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train or fine-tune a YOLOX model",
        description=(
            "Train or fine-tune a YOLOX model. Starts from the model's COCO weights (bundled for yolox-nano,"
            " the official download otherwise) unless --weights names another file or 'none'."
            " From pretrained weights the 'finetune' recipe applies: the official recipe (SGD nesterov, lr 0.01"
            " per 64 images, cosine to 5%, Mosaic, EMA, multi-scale) with backbone and neck frozen, losses"
            " divided by a running mean of the positives, new class rows fitted on the training labels, an EMA"
            " (0.98) that starts at the pretrained weights, a warm-up of 10% and a no-Mosaic phase of 20% of"
            " the run, and evaluation every epoch from epoch 0."
            " From random weights (--weights none) the 'official' recipe applies: 5 warm-up epochs, last 15"
            " epochs without Mosaic/MixUp and with L1. Defaults follow the model size and the recipe; a YAML"
            " --config and then the flags override them. Writes OUT/last.pth (resumable), OUT/best.pth,"
            " TensorBoard logs and PNG plots."
            " Multi-GPU: torchrun --nproc_per_node N -m yoloxkit train ..."
        ),
    )
    p.add_argument("--data", help="dataset directory (COCO, VOC or YOLO-txt layout) or a data YAML")
    p.add_argument("--train-split", help="training split (exact name or unique prefix; default: the split starting with 'train')")
    p.add_argument("--val-split", help="validation split (default: the split starting with 'val')")
    p.add_argument("--names", nargs="+", help="class names, for VOC data without a names file")
    p.add_argument("--model", help="model name (default yolox-s): yolox-nano, -tiny, -s, -m, -l, -x, -darknet53")
    p.add_argument("--weights", help="starting weights: a .pth or .onnx file, a zoo name (yolox-s: bundled for nano, the"
                   " official download otherwise), or 'none' for random weights (default: the model's COCO weights;"
                   " any class count: classes map by name, new class rows are fitted)")
    p.add_argument("--from-scratch", dest="weights", action="store_const", const="none", help="start from random weights (same as --weights none)")
    p.add_argument("--recipe", choices=("official", "finetune"),
                   help="training recipe (default: finetune from pretrained weights, official from --weights none)")
    p.add_argument("--freeze-trunk", action=argparse.BooleanOptionalAction, default=None,
                   help="freeze backbone and neck, BatchNorm in eval mode (default: on in the finetune recipe)")
    p.add_argument("--freeze-detector", action="store_true", default=None,
                   help="end-to-end (-e2e) models: train only the PSS branch, the detector frozen")
    p.add_argument("--pss-targets", choices=("detector", "gt"),
                   help="end-to-end models: the PSS branch learns to keep the anchors the detector's own NMS keeps"
                        " (detector, default) or each gt's one-to-one anchor (gt)")
    p.add_argument("--loss-normalizer", choices=("batch", "running"),
                   help="divide the losses by the batch's positives (official) or a running mean of them (finetune)")
    p.add_argument("--fit-new-classes", action=argparse.BooleanOptionalAction, default=None,
                   help="fit the class rows the weights lack on the training labels before training (default: on in finetune)")
    p.add_argument("--eval-start", action=argparse.BooleanOptionalAction, default=None,
                   help="evaluate the starting weights as epoch 0 and keep them as best.pth until beaten (default: on in finetune)")
    p.add_argument("--rescale-convs", action=argparse.BooleanOptionalAction, default=None,
                   help="rescale conv kernels whose BatchNorm was folded into them to ordinary norms before fine-tuning"
                   " (same function; default: on for weights converted from ONNX, such as the bundled nano weights)")
    p.add_argument("--config", help="YAML file of training options (keys as the flags, e.g. no_aug_epochs: 5)")
    p.add_argument("--epochs", type=int, help="number of epochs (default 300)")
    p.add_argument("--batch-size", type=int, help="total batch size over all processes (default 64)")
    p.add_argument("--size", type=int, help="training and evaluation input size (default: the model's, 416 or 640)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--workers", type=int, help="data loader workers per process (default: 4, at most the CPUs available)")
    p.add_argument("--out", help="output folder (default: the first free one of runs/train, runs/train2, ...)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue from OUT/last.pth (weights, EMA, optimizer, schedule, RNG); without --out, the newest run")
    p.add_argument("--exist-ok", action="store_true", default=None,
                   help="start over in an --out that holds an earlier run (its files are removed first)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--eval-interval", type=int, help="evaluate every N epochs (default: official 10, finetune 1; every epoch in the no-aug phase; 0: never)")
    p.add_argument("--no-aug-epochs", type=int, help="the lr's flat tail without Mosaic/MixUp, with L1; Mosaic stops one epoch earlier, as in the official trainer (default: official 15, finetune 20%% of the run)")
    p.add_argument("--warmup-epochs", type=float, help="quadratic warm-up epochs (default: official 5, finetune 10%% of the run, at least 1)")
    p.add_argument("--lr", type=float, help="base learning rate (default 0.01 * batch / 64)")
    p.add_argument("--min-lr-ratio", type=float, help="final lr as a fraction of the base lr (default 0.05)")
    p.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, help="weight decay on conv/linear weights (default 5e-4)")
    p.add_argument("--no-mosaic", dest="mosaic", action="store_false", default=None, help="turn Mosaic off")
    p.add_argument("--no-mixup", dest="mixup", action="store_false", default=None, help="turn MixUp off")
    p.add_argument("--no-aug", dest="no_aug", action="store_true", default=None, help="no augmentation at all (letterbox only)")
    p.add_argument("--mosaic-prob", type=float, help="Mosaic probability (default: 1.0; nano 0.5)")
    p.add_argument("--mixup-prob", type=float, help="MixUp probability (default 1.0 where MixUp is on)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None, help="EMA of the weights (default on, off with --freeze-detector)")
    p.add_argument("--ema-decay", type=float, help="EMA decay (default: official 0.9998, finetune 0.98)")
    p.add_argument("--ema-ramp", type=float, help="iterations of the EMA's decay ramp (default: official 2000; finetune 0, no ramp)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels-last (NHWC) memory format for the model and batches (default on; faster on CPU)")
    p.add_argument("--amp", action="store_true", default=None, help="mixed precision on CUDA")
    p.add_argument("--sync-bn", action="store_true", default=None, help="SyncBatchNorm under DDP")
    p.add_argument("--cache-ram", action="store_true", default=None, help="cache decoded images in RAM")
    p.add_argument("--multiscale", action=argparse.BooleanOptionalAction, default=None, help="multi-scale training (default on)")
    p.add_argument("--visualize-assign", action="store_true", default=None, help="write PNGs of the SimOTA positives for a few images to OUT/assign")
    p.add_argument("--plots", action=argparse.BooleanOptionalAction, default=None, help="PNG plots of losses and AP at the end (default on)")
    p.add_argument("--eval-conf", type=float, help="confidence threshold of evaluation (default 0.01)")
    p.add_argument("--eval-nms", type=float, help="NMS IoU threshold of evaluation (default 0.65)")
    p.add_argument("--max-iters-per-epoch", type=int, help="cap iterations per epoch (quick runs and tests)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bars")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """Defaults < --config YAML < flags."""
    from ..engine.config import ConfigError, TrainConfig, load_config, update_config

    cfg = TrainConfig()
    if args.config:
        cfg = load_config(args.config, cfg)
    flags = {name: getattr(args, name) for name in _VALUE_FLAGS + ("resume", "exist_ok", "mosaic", "mixup", "no_aug", "progress")}
    cfg = update_config(cfg, {k: v for k, v in flags.items() if v is not None}, "command line")
    if not cfg.data:
        raise ConfigError("--data is required (a dataset directory or data YAML), on the command line or in --config")
    return cfg


def run(args: argparse.Namespace) -> int:
    from ..engine.builder import preflight

    cfg = config_from_args(args)
    preflight(cfg)  # a missing dataset or weights download fails here, before the loop is imported

    from ..engine.trainer import train

    result = train(cfg)
    return 0 if not result.interrupted else 130
