"""Official YOLOX release checkpoints: the name-to-URL table and a download cache.

Files are cached in ``$YOLOXKIT_HOME/weights`` (default ``~/.cache/yoloxkit/weights``) and downloaded
atomically (a partial download never looks like a finished file). Only :func:`download_official`
reaches the network, and only when asked to.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DownloadError
from ..io import atomic_path
from ..models import MODEL_SPECS, get_spec

__all__ = ["official_weights_urls", "official_weights_url", "weights_cache_dir", "download_url", "download_official"]

DOWNLOAD_TIMEOUT_S = 30.0
CHUNK_BYTES = 1 << 20


def official_weights_urls() -> dict[str, str]:
    """Model name -> URL of its official COCO release checkpoint (from the model zoo specs)."""
    return {name: spec.weights_url for name, spec in MODEL_SPECS.items() if spec.weights_url}


def official_weights_url(model_name: str) -> str:
    """URL of the official checkpoint of ``model_name`` (aliases such as ``yolox_s`` accepted)."""
    spec = get_spec(model_name)
    if not spec.weights_url:
        raise DownloadError(f"model {spec.name} has no official weights; pass --weights PATH")
    return spec.weights_url


def weights_cache_dir() -> Path:
    """``$YOLOXKIT_HOME/weights``, or ``~/.cache/yoloxkit/weights`` when the variable is unset."""
    home = os.environ.get("YOLOXKIT_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".cache" / "yoloxkit"
    return base / "weights"


def download_url(url: str, destination: str | os.PathLike, progress: bool = True) -> Path:
    """Download ``url`` to ``destination`` atomically with a tqdm progress bar.

    Raises :class:`DownloadError` (one line naming the URL and suggesting ``--weights PATH``) on
    any network or HTTP failure, and when the download is shorter than announced.
    """
    from tqdm import tqdm

    destination = Path(destination)
    hint = "download it yourself and pass --weights PATH (offline machines cannot fetch it)"
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            received = 0
            with atomic_path(destination) as tmp, open(tmp, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, desc=destination.name, disable=not progress
            ) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                if total is not None and received != total:
                    raise DownloadError(f"download of {url} stopped at {received} of {total} bytes; {hint}")
    except DownloadError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"cannot download {url} ({str(reason).splitlines()[0]}); {hint}") from None
    return destination


def download_official(model_name: str, cache_dir: str | os.PathLike | None = None, url: str | None = None) -> Path:
    """Path of the cached official checkpoint of ``model_name``, downloading it on first use.

    ``url`` overrides the table (for mirrors); ``cache_dir`` the cache folder.
    """
    url = url or official_weights_url(model_name)
    folder = Path(cache_dir) if cache_dir is not None else weights_cache_dir()
    target = folder / url.rstrip("/").rsplit("/", 1)[-1]
    if target.is_file() and target.stat().st_size > 0:
        return target
    return download_url(url, target)
