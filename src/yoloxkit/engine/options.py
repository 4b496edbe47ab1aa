"""Training options described once: each :class:`~yoloxkit.engine.config.TrainConfig` field that
``yoloxkit train`` exposes carries an :class:`Option` (help text, flag kind, choices) in its
field metadata, and the command line is generated from those fields.

A new training option is one field, ``name: type = option(default, "help ...")``, plus the code
that uses it: the flag ``--name``, its ``--config`` YAML key, its help and its check against
``choices`` follow from the field.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import MISSING, Field, dataclass
from typing import Any, Literal

__all__ = ["Option", "option", "cli_fields", "value_type", "help_text"]

#: ``value``: ``--name VALUE``; ``switch``: ``--name`` (store_true); ``toggle``: ``--name`` /
#: ``--no-name``; ``off``: a ``--no-...`` flag that stores False
Kind = Literal["value", "switch", "toggle", "off"]


@dataclass(frozen=True)
class Option:
    """How a field appears on the command line. ``help`` may hold ``{default}``, replaced by the
    field's default (so the number is written once, in the field)."""

    help: str
    kind: Kind = "value"
    flag: str | None = None  # None: ``--`` + the field name with dashes
    choices: tuple[str, ...] | None = None  # also checked by TrainConfig.validate
    nargs: str | None = None
    const: Any = None  # with ``nargs="?"``: the value of the flag given without one
    metavar: str | None = None  # the value's name in --help (default: the field's name in capitals)
    #: further flags that store a constant into this field: (flag, constant, help)
    consts: tuple[tuple[str, Any, str], ...] = ()

    def flag_for(self, name: str) -> str:
        return self.flag or "--" + name.replace("_", "-")


def option(default: Any = MISSING, help: str = "", *, default_factory: Any = MISSING, **spec: Any) -> Any:
    """A dataclass field whose metadata is an :class:`Option` (``spec``: its other fields)."""
    metadata = {"option": Option(help, **spec)}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def cli_fields(cls: type) -> list[tuple[Field, Option]]:
    """The fields of dataclass ``cls`` that carry an :class:`Option`, in field order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]


def value_type(cls: type, name: str) -> type | None:
    """``int`` or ``float`` when field ``name`` of ``cls`` holds one (``None`` allowed), else
    ``None`` (a string)."""
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return args[0] if args[0] in (int, float) else None


def help_text(field: Field, opt: Option, presets: dict[str, str] | None = None) -> str:
    """The field's help with ``{default}`` replaced by its default and each ``{key}`` of
    ``presets`` (e.g. ``{official}``, ``{finetune}``: the recipes' values) by its text."""
    text = opt.help.replace("{default}", str(field.default))
    for key, value in (presets or {}).items():
        text = text.replace("{" + key + "}", value)
    return text
