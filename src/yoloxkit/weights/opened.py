"""One way to open weights: :func:`open_weights` resolves a path or a zoo name once
(:mod:`.source`), recognises its format (:mod:`.formats`) and returns a :class:`WeightsFile`,
which reads the file once and knows its model, class names and input size, and can load into a
model or build one."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from ..errors import WeightsMismatchError
from ..models import build_network, get_spec
from .calibration import CalibrationSource
from .contents import WeightsInfo, runtime_only_error
from .formats import Contents, FileFormat, format_of
from .source import WeightsSource, resolve_weights_source

__all__ = ["LoadedModel", "WeightsFile", "open_weights"]


@dataclass(frozen=True)
class LoadedModel:
    """A model built for a weights file and loaded from it (:meth:`WeightsFile.build`)."""

    model: nn.Module  # eval mode
    names: list[str] | None  # stored class names (or the COCO names of an 80-class ONNX file)
    model_name: str
    info: WeightsInfo  # what the file says (its stored input size, ...)


@dataclass
class WeightsFile:
    """A weights file, opened: where it comes from, its format, and (read on first use, once)
    what it holds.

    ``requested`` is the model the caller named (it wins over the name stored in or guessed
    from the file); the class count always comes from the file.
    """

    source: WeightsSource
    requested: str | None = None
    format: FileFormat = field(init=False)

    def __post_init__(self) -> None:
        self.format = format_of(self.source.path)

    @classmethod
    def at(cls, path: str | os.PathLike, model_name: str | None = None) -> "WeightsFile":
        """A file by path, not resolved (a missing file fails when it is read)."""
        return cls(WeightsSource(Path(path), "file", None), model_name)

    @property
    def path(self) -> Path:
        return self.source.path

    @cached_property
    def contents(self) -> Contents:
        """The file as its format's reader read it (read once)."""
        return self.format.read(self.path)

    def describe(self, identify: bool = True) -> WeightsInfo:
        """What the file says; with ``identify``, a file that stores no model name is matched
        against the zoo by its shapes."""
        return self.contents.describe(identify)

    @cached_property
    def info(self) -> WeightsInfo:
        """:meth:`describe`, identifying the model only when none was requested."""
        return self.describe(identify=self.model_name_requested is None)

    @property
    def model_name_requested(self) -> str | None:
        """The model the caller or the zoo name chose, normalised; None when the file decides."""
        name = self.requested or self.source.model_name
        return get_spec(name).name if name else None

    @property
    def model_name(self) -> str | None:
        """The requested model, else the one the file stores or matches; None if unknown."""
        return self.model_name_requested or self.info.model_name

    @property
    def names(self) -> list[str] | None:
        return self.info.names

    @property
    def input_size(self) -> tuple[int, int] | None:
        return self.info.input_size

    def _check_loadable(self) -> None:
        if not self.format.holds_torch_weights:
            raise runtime_only_error(self.path, self.format.label)

    def load_into(self, model: nn.Module, calib_images: CalibrationSource = None) -> list[str] | None:
        """Load into ``model`` strictly (an ONNX export: un-folded, BatchNorms calibrated on
        ``calib_images``); the class names, if known."""
        self._check_loadable()
        return self.contents.load_into(model, calib_images)

    def build(self, calib_images: CalibrationSource = None) -> LoadedModel:
        """Build the model the file belongs to and load it (eval mode)."""
        self._check_loadable()
        info, name = self.info, self.model_name
        if name is None:
            raise WeightsMismatchError(f"{self.path} matches no zoo model; pass --model NAME")
        model = build_network(name, num_classes=info.num_classes or 80)
        names = self.contents.load_into(model, calib_images)
        return LoadedModel(model.eval(), names, name, info)

    def state_dict(self) -> tuple[dict[str, torch.Tensor], list[str] | None]:
        """The state dict and class names (a checkpoint's tensors as stored; an ONNX export
        un-folded into the requested model's module)."""
        self._check_loadable()
        return self.contents.state_dict(self.model_name_requested)


def open_weights(
    weights: str | os.PathLike | None,
    model: str | None = None,
    *,
    scratch_hint: bool = False,
) -> WeightsFile:
    """Open the weights of ``model``: ``weights`` is a file, a zoo name (``yolox-s``: bundled for
    yolox-nano, else the official download, cached) or None for ``model``'s own weights
    (:func:`~.source.resolve_weights_source`, whose errors it raises). Nothing is read yet."""
    return WeightsFile(resolve_weights_source(model, weights, scratch_hint=scratch_hint), model)
