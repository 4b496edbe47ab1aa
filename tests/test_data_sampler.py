"""The epoch sampler: ceil(N / B) full batches per epoch, every image each epoch, a function of
(seed, epoch), ranks splitting the epoch's list; the count checked against the reference sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from yoloxkit.data.loader import EpochSampler, build_loader

ref_samplers = pytest.importorskip("yolox.data.samplers")


class _Indexed(Dataset):
    """Sample ``i`` is a tiny image and one target row whose class is ``i``."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index):
        return np.zeros((4, 4, 3), np.uint8), np.array([[index, 2, 2, 2, 2]], np.float32)


def test_ten_images_batch_four_give_three_full_batches():
    loader, sampler = build_loader(_Indexed(10), batch_size=4, workers=0, seed=3)
    sampler.set_epoch(0)
    batches = [targets[:, 0, 0].long().tolist() for _, targets in loader]
    assert len(loader) == sampler.iterations == 3 and len(batches) == 3
    assert [len(b) for b in batches] == [4, 4, 4]
    seen = [i for batch in batches for i in batch]
    assert sorted(set(seen)) == list(range(10))
    assert seen == list(sampler)  # the loader yields the sampler's order


def test_first_shuffle_holds_every_image_and_a_second_one_fills_the_last_batch():
    sampler = EpochSampler(10, 4, seed=1)
    indices = sampler.epoch_indices(5)
    assert len(indices) == 12
    assert sorted(indices[:10].tolist()) == list(range(10))
    assert len(set(indices[10:].tolist())) == 2  # two distinct images of another shuffle
    tiny = EpochSampler(3, 8, seed=1)  # a batch larger than the split: shuffles repeat
    assert tiny.iterations == 1 and len(list(tiny)) == 8
    assert sorted(np.bincount(tiny.epoch_indices(0), minlength=3).tolist()) == [2, 3, 3]
    assert EpochSampler(5, 2, shuffle=False).epoch_indices(0).tolist() == [0, 1, 2, 3, 4, 0]


def test_indices_are_a_function_of_seed_and_epoch():
    a, b = EpochSampler(50, 8, seed=7), EpochSampler(50, 8, seed=7)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) and list(a) == list(a)  # also when iterated again (mid-epoch replay)
    b.set_epoch(3)
    assert list(a) != list(b)
    other_seed = EpochSampler(50, 8, seed=8)
    other_seed.set_epoch(2)
    assert list(a) != list(other_seed)
    assert np.array_equal(a.epoch_indices(3), b.epoch_indices())


def test_two_ranks_split_the_epoch_list():
    ranks = [EpochSampler(10, 2, seed=4, rank=r, world_size=2) for r in range(2)]
    for sampler in ranks:
        sampler.set_epoch(1)
    lists = [list(sampler) for sampler in ranks]
    assert ranks[0].iterations == 3 and [len(x) for x in lists] == [6, 6]
    full = ranks[0].epoch_indices()
    assert lists[0] == full[0::2].tolist() and lists[1] == full[1::2].tolist()
    assert set(lists[0]) | set(lists[1]) == set(range(10))
    # iteration k of both ranks together is the k-th block of the epoch's list
    for k in range(3):
        together = lists[0][2 * k: 2 * k + 2] + lists[1][2 * k: 2 * k + 2]
        assert sorted(together) == sorted(full[4 * k: 4 * k + 4].tolist())


@pytest.mark.parametrize("size, batch", [(10, 4), (12, 4), (7, 8), (1, 3), (101, 16)])
def test_iteration_count_matches_the_reference_sampler(size, batch):
    reference = ref_samplers.YoloBatchSampler(sampler=ref_samplers.InfiniteSampler(size, seed=0),
                                              batch_size=batch, drop_last=False)
    ours = EpochSampler(size, batch)
    assert ours.iterations == len(reference) == math.ceil(size / batch)
    stream = iter(reference)
    assert all(len(next(stream)) == batch for _ in range(len(reference)))  # every reference batch is full
    assert len(ours) == ours.iterations * batch


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="size"):
        EpochSampler(0, 4)
    with pytest.raises(ValueError, match="batch_size"):
        EpochSampler(4, 0)
    with pytest.raises(ValueError, match="rank 2"):
        EpochSampler(4, 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match="epoch"):
        EpochSampler(4, 2).set_epoch(-1)


def test_loader_batches_are_full_with_workers():
    loader, sampler = build_loader(_Indexed(9), batch_size=4, workers=2, seed=0)
    sampler.set_epoch(4)
    shapes = [images.shape[0] for images, _ in loader]
    assert shapes == [4, 4, 4]
    assert torch.equal(next(iter(loader))[1], next(iter(loader))[1])
