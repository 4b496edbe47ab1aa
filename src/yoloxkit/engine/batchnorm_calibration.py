"""Re-estimating BatchNorm statistics on the training data without changing the network's output.

A BatchNorm in train mode normalises with the batch's statistics, in eval mode with its running
statistics. Pretrained weights carry running statistics of *their* data (COCO, or, for weights
un-folded from an ONNX export, the few calibration images of the import). On a new dataset the
batch statistics differ, so the moment the trunk trains, the network computes another function
than the pretrained one, and the first epochs spend themselves undoing that shift (on BCCD the
validation mAP50 fell from 24 to 4 at epoch 2 before this).

:func:`recalibrate_batchnorm` measures every BatchNorm's input statistics ``m'``, ``v'`` on the
training images in one pass (eval mode, so the pass sees exactly the pretrained function) and
moves them into the layer with the affine parameters adjusted so that the eval function does not
change: ``gamma' = gamma * sqrt(v' + eps) / sqrt(v + eps)``, ``beta' = beta + gamma * (m' - m) /
sqrt(v + eps)``. Afterwards the running statistics are the training data's, and train mode, whose
batch statistics now match them, computes (nearly) the same function as the starting weights.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..weights.calibration import ChannelStats

__all__ = ["recalibrate_batchnorm"]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Move the training data's statistics into the BatchNorms of ``model`` whose parameters train
    (frozen ones keep theirs), keeping the eval output the same; returns the layers changed.

    ``batches`` are input images ``[B, 3, H, W]`` as the model takes them (0-255 BGR, letterboxed).
    """
    targets = [m for m in model.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine and m.track_running_stats
               and m.weight.requires_grad]
    if not targets:
        return 0
    moments = {bn: ChannelStats() for bn in targets}
    hooks = [bn.register_forward_pre_hook(lambda module, args: moments[module].update(args[0])) for bn in targets]
    was_training = model.training
    param = next(model.parameters())
    model.eval()
    try:
        for images in batches:
            model(images.to(param.device, param.dtype))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    changed = 0
    for bn, moment in moments.items():
        if moment.count == 0:
            continue
        mean, var = moment.mean, moment.var
        old_std = torch.sqrt(bn.running_var.double() + bn.eps)
        gamma = bn.weight.double()
        bn.bias.add_((gamma * (mean - bn.running_mean.double()) / old_std).to(bn.bias.dtype))
        bn.weight.copy_((gamma * torch.sqrt(var + bn.eps) / old_std).to(bn.weight.dtype))
        bn.running_mean.copy_(mean.to(bn.running_mean.dtype))
        bn.running_var.copy_(var.to(bn.running_var.dtype))
        changed += 1
    return changed
