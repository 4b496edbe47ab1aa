"""One training iteration (forward + loss + backward + SGD step) for yolox-nano, batch 8.

Compares the reference model + loss with yoloxkit's in the same run, from identical
weights on an identical batch, and prints seconds per iteration, the speed-up and the
first-iteration loss of each variant. Variants of yoloxkit:

* ``eager``: the model as built;
* ``channels_last``: model and images in channels-last memory format;
* ``compile``: ``torch.compile`` of the network (backbone + head convs; the loss stays eager);
* ``channels_last+compile``: both;
* ``foreach``: eager with ``SGD(foreach=True)`` (multi-tensor optimizer step).

    .venv/bin/python benchmarks/bench_train_step.py [--size 416] [--batch 8] [--threads 2]
        [--iters 8] [--variants eager channels_last compile channels_last+compile foreach]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

import yoloxkit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.parity.reference import build_reference  # noqa: E402

VARIANTS = ("eager", "channels_last", "compile", "channels_last+compile", "foreach")


def make_batch(batch: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images and 10-30 random boxes per image (class, cx, cy, w, h)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, size, size, generator=gen) * 255
    targets = torch.zeros(batch, 120, 5)
    for b in range(batch):
        n = int(torch.randint(10, 31, (1,), generator=gen))
        wh = torch.rand(n, 2, generator=gen) * size * 0.4 + 8
        targets[b, :n, 0] = torch.randint(0, 80, (n,), generator=gen).float()
        targets[b, :n, 1:3] = wh / 2 + torch.rand(n, 2, generator=gen) * (size - wh)
        targets[b, :n, 3:5] = wh
    return images, targets


class CompiledNetwork(torch.nn.Module):
    """Backbone + head convs under ``torch.compile``; the loss runs eagerly afterwards."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.levels = torch.compile(lambda x: model.head.forward_levels(model.backbone(x)))

    def forward(self, images, targets):
        from yoloxkit.losses import yolox_loss

        return yolox_loss(self.levels(images), targets, self.model.head.strides, self.model.criterion.use_l1)


def make_step(model: torch.nn.Module, channels_last: bool, foreach: bool):
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.01 / 64 * 8, momentum=0.9, nesterov=True, weight_decay=5e-4, foreach=foreach
    )

    def step(images, targets) -> float:
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        loss = model(images, targets)["total_loss"]
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolox-nano")
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")

    reference = build_reference(args.model).train()
    state = reference.state_dict()
    steps = {"reference": make_step(reference, False, False)}
    for variant in args.variants:
        model = yoloxkit.build_model(args.model)
        model.load_state_dict(copy.deepcopy(state))
        model.train()
        channels_last = "channels_last" in variant
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        net = CompiledNetwork(model) if "compile" in variant else model
        steps[variant] = make_step(net, channels_last, foreach=variant == "foreach")

    images, targets = make_batch(args.batch, args.size)
    first_loss, times = {}, {name: [] for name in steps}
    for name, step in steps.items():  # warm-up (and compilation); the first loss is before any update
        start = time.perf_counter()
        first_loss[name] = step(images, targets)
        for _ in range(args.warmup - 1):
            step(images, targets)
        print(f"# warm-up {name}: {time.perf_counter() - start:.1f} s", flush=True)
    for _ in range(args.iters):  # round-robin so that load changes hit every variant alike
        for name, step in steps.items():
            start = time.perf_counter()
            step(images, targets)
            times[name].append(time.perf_counter() - start)

    base = statistics.median(times["reference"])
    print(
        f"{args.model} {args.size}x{args.size} batch {args.batch}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, median of {args.iters} iterations"
    )
    print(f"{'variant':<24} {'s/iter':>7} {'speed-up':>8} {'first loss':>12} {'loss rel. diff':>14}")
    for name in steps:
        t = statistics.median(times[name])
        rel = abs(first_loss[name] - first_loss["reference"]) / abs(first_loss["reference"])
        print(f"{name:<24} {t:>7.3f} {base / t:>7.2f}x {first_loss[name]:>12.5f} {rel:>14.1e}")


if __name__ == "__main__":
    main()
