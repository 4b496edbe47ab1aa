"""torchrun / DDP helpers: process-group setup (nccl on CUDA, gloo on CPU) and rank queries."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistInfo",
    "init_distributed",
    "is_distributed",
    "rank",
    "world_size",
    "is_main_process",
    "barrier",
    "cleanup",
    "wrap_ddp",
    "convert_sync_bn",
    "all_reduce_mean",
    "broadcast_object",
    "sync_norm_buffers",
]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init_distributed(device: str = "cpu") -> DistInfo:
    """Start the process group when launched by torchrun (env ``RANK``/``WORLD_SIZE``);
    return the process's rank and device. Single-process runs return rank 0 of 1."""
    if not launched_by_torchrun():
        return DistInfo(0, 0, 1, torch.device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(dist.get_rank(), local_rank, dist.get_world_size(), dev)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def convert_sync_bn(model: nn.Module) -> nn.Module:
    """Replace BatchNorm layers by SyncBatchNorm (only meaningful under DDP)."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def wrap_ddp(model: nn.Module, info: DistInfo) -> nn.Module:
    """Wrap in DistributedDataParallel when running with several processes."""
    if not info.distributed:
        return model
    device_ids = [info.local_rank] if info.device.type == "cuda" else None
    # BatchNorm statistics stay per rank during an epoch (as in the official trainer) and are
    # averaged by sync_norm_buffers at its end.
    import inspect

    if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters:
        sync = {"forward_sync_buffers": False}
    else:  # older torch
        sync = {"broadcast_buffers": False}
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, **sync)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Average a tensor over processes (identity in a single process)."""
    if not is_distributed():
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


def broadcast_object(obj, src: int = 0):
    """Send a picklable object from rank ``src`` to every process."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


@torch.no_grad()
def sync_norm_buffers(model: nn.Module) -> None:
    """Average BatchNorm running statistics over processes (DDP does not broadcast buffers
    here, so each rank's statistics follow its own data until this is called)."""
    if not is_distributed():
        return
    world = dist.get_world_size()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            for buffer in (module.running_mean, module.running_var):
                dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
                buffer.div_(world)
