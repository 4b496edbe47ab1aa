"""SimOTA assignment alone: yoloxkit's batched assigner vs the reference's per-image loop.

Batch of 8 images, 10 to 50 objects per image, 80 classes, the anchor grid of a
nano-sized model at 416 (3549 anchors) and 640 (8400 anchors). Both assigners get the same
random head outputs; the script checks that they choose the same positives and prints
a table of median times and the speed-up (ratio of medians, and "best-of": ratio of the
fastest runs, robust on a shared machine), measured alternately in the same run.

    .venv/bin/python benchmarks/bench_simota.py [--threads 2] [--repeats 7] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from yoloxkit.assign.geometry import anchor_centers
from yoloxkit.assign.inputs import AssignInputs
from yoloxkit.assign.simota import simota_assign

STRIDES = (8, 16, 32)


def make_inputs(size: int, batch: int, objects: int, num_classes: int, seed: int, device: str):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(size // s, size // s) for s in STRIDES]
    grid, stride, centers = anchor_centers(shapes, STRIDES)
    num_anchors = grid.shape[0]
    raw = torch.randn(batch, num_anchors, 4, generator=gen) * 0.5
    boxes = torch.cat([(raw[..., :2] + grid) * stride[:, None], torch.exp(raw[..., 2:] + 1.0) * stride[:, None]], -1)
    obj = torch.randn(batch, num_anchors, generator=gen) * 2 - 2
    cls = torch.randn(batch, num_anchors, num_classes, generator=gen) * 2 - 3
    if objects > 10:  # a spread of counts, e.g. 30-50
        counts = torch.randint(max(1, objects - 20), objects + 1, (batch,), generator=gen)
    else:
        counts = torch.full((batch,), objects)
    max_labels = int(counts.max())
    gt = torch.zeros(batch, max_labels, 4)
    classes = torch.zeros(batch, max_labels, dtype=torch.long)
    valid = torch.arange(max_labels) < counts[:, None]
    for b in range(batch):
        n = int(counts[b])
        wh = torch.rand(n, 2, generator=gen) * size * 0.4 + 6
        gt[b, :n] = torch.cat([wh / 2 + torch.rand(n, 2, generator=gen) * (size - wh), wh], -1)
        classes[b, :n] = torch.randint(0, num_classes, (n,), generator=gen)
    to = lambda *ts: [t.to(device) for t in ts]  # noqa: E731
    names = ("grid", "stride", "centers", "boxes", "obj", "cls", "gt", "classes", "valid")
    inputs = dict(zip(names, to(grid, stride, centers, boxes, obj, cls, gt, classes, valid)))
    inputs["shapes"] = shapes
    return inputs


def ours(x):
    inputs = AssignInputs.from_tensors(x["boxes"], x["obj"], x["cls"], x["gt"], x["classes"], x["valid"], x["shapes"], STRIDES)
    out = simota_assign(inputs)
    return out.fg_mask


def reference(head, x):
    """The reference head's own per-image loop (as in its get_losses)."""
    x_shifts = x["grid"][None, :, 0]
    y_shifts = x["grid"][None, :, 1]
    strides = x["stride"][None]
    masks = []
    for b in range(x["boxes"].shape[0]):
        n = int(x["valid"][b].sum())
        fg = torch.zeros(x["boxes"].shape[1], dtype=torch.bool, device=x["boxes"].device)
        if n:
            _, fg, _, _, _ = head.get_assignments(
                b, n, x["gt"][b, :n], x["classes"][b, :n].float(), x["boxes"][b], strides, x_shifts, y_shifts,
                x["cls"], x["obj"].unsqueeze(-1),
            )
        masks.append(fg)
    return torch.stack(masks)


def timed(fn, repeats: int, device: str) -> list[float]:
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[416, 640])
    parser.add_argument("--objects", type=int, nargs="+", default=[10, 30, 50])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import warnings

    warnings.filterwarnings("ignore")
    from yolox.models import YoloxHead

    head = YoloxHead(80, width=0.25, depthwise=True).to(args.device)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, batch {args.batch}")
    header = ("size", "anchors", "objects/img", "reference ms", "yoloxkit ms", "speed-up", "best-of", "same fg")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (5, 7, 11, 12, 11, 8, 7, 7))))
    for size in args.sizes:
        for objects in args.objects:
            x = make_inputs(size, args.batch, objects, 80, seed=size + objects, device=args.device)
            same = torch.equal(ours(x), reference(head, x))
            t_ref, t_ours = [], []
            for _ in range(args.repeats):  # alternate, so that load changes hit both alike
                t_ref += timed(lambda: reference(head, x), 1, args.device)
                t_ours += timed(lambda: ours(x), 1, args.device)
            med_ref, med_ours = statistics.median(t_ref), statistics.median(t_ours)
            span = f"{max(1, objects - 20)}-{objects}" if objects > 10 else str(objects)
            print(
                f"{size:>5} {x['grid'].shape[0]:>7} {span:>11} {med_ref * 1e3:>12.1f} {med_ours * 1e3:>11.1f} "
                f"{med_ref / med_ours:>7.1f}x {min(t_ref) / min(t_ours):>6.1f}x {str(same):>7}"
            )

if __name__ == "__main__":
    main()
