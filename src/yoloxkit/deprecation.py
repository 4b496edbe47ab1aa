"""Deprecated names and signatures: each warns once per process, with a
:class:`DeprecationWarning` that says what to use instead."""

from __future__ import annotations

import warnings

__all__ = ["warn_deprecated"]

#: the keys of the deprecations already shown in this process
_SHOWN: set[str] = set()


def warn_deprecated(key: str, message: str, stacklevel: int = 3) -> None:
    """Warn ``message`` the first time deprecation ``key`` (the old name) is met in this process.
    ``stacklevel`` 3 points at the caller of the deprecated function that calls this."""
    if key in _SHOWN:
        return
    _SHOWN.add(key)
    warnings.warn(message, DeprecationWarning, stacklevel=stacklevel)
