"""``yoloxkit train``: the official YOLOX recipe on a COCO, VOC or YOLO-txt dataset.

Every flag but ``--config`` is generated from the fields of
:class:`~yoloxkit.engine.config.TrainConfig` (their :class:`~yoloxkit.engine.options.Option`
metadata: help, kind, choices). Multi-GPU / multi-node: ``torchrun --nproc_per_node N -m
yoloxkit train ...`` (DDP).
"""

from __future__ import annotations

import argparse

_DESCRIPTION = (
    "Train or fine-tune a YOLOX model. Starts from the model's COCO weights (bundled for yolox-nano,"
    " the official download otherwise) unless --weights names another file or 'none'."
    " From pretrained weights the 'finetune' recipe applies: the official recipe (SGD nesterov, cosine"
    " to 5%, Mosaic, EMA, multi-scale) with the whole network but the stem trained at twice the official"
    " lr per image (0.02 per 64 images; when the starting weights score below the model's COCO AP on"
    " the validation images, a domain shift, 3x and the L1 box loss from the first epoch), sizes within"
    " 2 strides of --size, BatchNorm statistics re-estimated on the training images, losses divided by"
    " a running mean of the positives, new class rows fitted on the training labels, an EMA (0.98) that starts at"
    " the pretrained weights, a warm-up of 10% and a no-Mosaic phase of 20% of the run, and evaluation"
    " every epoch from epoch 0."
    " From random weights (--weights none) the 'official' recipe applies: 5 warm-up epochs, last 15"
    " epochs without Mosaic/MixUp and with L1. Defaults follow the model size and the recipe; a YAML"
    " --config and then the flags override them. Writes OUT/last.pth (resumable), OUT/best.pth,"
    " TensorBoard logs and PNG plots. --out OUT --resume alone continues a run with its own settings"
    " (OUT/config.json); only one run writes into a folder at a time."
    " Multi-GPU: torchrun --nproc_per_node N -m yoloxkit train ..."
)

_ACTIONS = {"switch": "store_true", "toggle": argparse.BooleanOptionalAction, "off": "store_false"}


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train or fine-tune a YOLOX model", description=_DESCRIPTION)
    p.add_argument("--config", help="YAML file of training options (keys as the flags, e.g. no_aug_epochs: 5)")
    add_option_flags(p)
    p.set_defaults(func=run)


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`TrainConfig` field with an ``Option`` (default ``None``, so that a
    flag not given leaves the YAML's or the field's value)."""
    from ..engine.config import TrainConfig
    from ..engine.options import cli_fields, help_text, value_type
    from ..engine.recipes import preset_help

    for f, opt in cli_fields(TrainConfig):
        kwargs: dict = {"dest": f.name, "default": None, "help": help_text(f, opt, preset_help(f.name))}
        if opt.kind == "value":
            kwargs.update(type=value_type(TrainConfig, f.name), choices=opt.choices, nargs=opt.nargs)
            if opt.nargs == "?":
                kwargs["const"] = opt.const
            if opt.metavar:
                kwargs["metavar"] = opt.metavar
        else:
            kwargs["action"] = _ACTIONS[opt.kind]
        parser.add_argument(opt.flag_for(f.name), **kwargs)
        for flag, const, help in opt.consts:
            parser.add_argument(flag, dest=f.name, action="store_const", const=const, help=help)


def config_from_args(args: argparse.Namespace):
    """Defaults < --config YAML < flags."""
    return _config_and_given(args)[0]


def _config_and_given(args: argparse.Namespace):
    """The config of ``args`` and the names of the options given (flags and YAML keys): a
    ``--resume`` takes the others from the run's config.json."""
    from ..engine.config import ConfigError, TrainConfig, read_config_file, update_config
    from ..engine.options import cli_fields

    values = read_config_file(args.config) if args.config else {}
    cfg = update_config(TrainConfig(), values, args.config or "")
    flags = {f.name: getattr(args, f.name) for f, _ in cli_fields(TrainConfig)}
    flags = {k: v for k, v in flags.items() if v is not None}
    cfg = update_config(cfg, flags, "command line")
    if not cfg.data and not cfg.resume:
        raise ConfigError("--data is required (a dataset directory or data YAML), on the command line or in --config")
    return cfg, {str(k).replace("-", "_") for k in values} | set(flags)


def run(args: argparse.Namespace) -> int:
    from ..engine.plan import plan_run

    # the preflight: options, dataset path, output folder and a missing download fail here, in
    # seconds, before the loop is imported
    plan = plan_run(*_config_and_given(args))

    from ..engine.trainer import train

    result = train(plan)
    return 0 if not result.interrupted else 130
