"""The package version (``pyproject.toml`` holds the same number for the build)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
