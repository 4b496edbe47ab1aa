"""Official YOLOX release checkpoints: the name-to-URL table and a download cache.

Files are cached in ``$YOLOXKIT_HOME/weights`` (default ``~/.cache/yoloxkit/weights``) and downloaded
atomically (a partial download never looks like a finished file). Only :func:`download_official`
reaches the network, and only when asked to. Name lookup and connecting are bounded by
:data:`CONNECT_TIMEOUT_S`, so an offline machine fails within seconds; reads by
:data:`DOWNLOAD_TIMEOUT_S`.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DownloadError
from ..io import atomic_path
from ..models import MODEL_SPECS, get_spec

__all__ = [
    "official_weights_urls",
    "official_weights_url",
    "weights_cache_dir",
    "cached_official",
    "download_hint",
    "download_url",
    "download_official",
]

#: seconds a read of a started download may stall
DOWNLOAD_TIMEOUT_S = 30.0
#: seconds for the name lookup and for connecting to one address (an offline machine fails fast)
CONNECT_TIMEOUT_S = 2.5
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


def _lookup(host: str, port: int, timeout: float) -> list:
    """``getaddrinfo`` bounded by ``timeout`` (the system resolver has no timeout of its own)."""
    found: dict[str, object] = {}

    def lookup() -> None:
        try:
            found["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc

    worker = threading.Thread(target=lookup, name="yoloxkit-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    if "error" in found:
        raise found["error"]  # type: ignore[misc]
    if "addresses" not in found:
        raise OSError(f"name lookup of {host} timed out after {timeout:g} s")
    return found["addresses"]  # type: ignore[return-value]


def _connect(address: tuple[str, int], timeout: float | None = None, source_address=None) -> socket.socket:
    """A TCP connection whose lookup and connect use :data:`CONNECT_TIMEOUT_S`; reads then use
    ``timeout`` (the download's read timeout)."""
    host, port = address
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in _lookup(host, port, CONNECT_TIMEOUT_S):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            sock.settimeout(timeout if timeout is not None else DOWNLOAD_TIMEOUT_S)
            return sock
        except OSError as exc:
            sock.close()
            error = exc if not isinstance(exc, socket.timeout) else OSError(
                f"connecting to {host} timed out after {CONNECT_TIMEOUT_S:g} s"
            )
    raise error or OSError(f"no address found for {host}")


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _connect


# The handlers keep the standard library's own arguments (they differ between Python versions)
# and swap in the connection classes above.
class _HTTPHandler(urllib.request.HTTPHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_HTTPConnection, req, **kwargs)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_HTTPSConnection, req, **kwargs)


def _open(url: str):
    """``urlopen`` with the short connect timeout (also through an ``https_proxy``)."""
    return urllib.request.build_opener(_HTTPHandler, _HTTPSHandler).open(url, timeout=DOWNLOAD_TIMEOUT_S)


def download_hint(scratch_hint: bool = False) -> str:
    """What to do when a download fails: ``--weights PATH`` (and ``--weights none`` for training)."""
    hint = "download it yourself and pass --weights PATH"
    if scratch_hint:
        hint += ", or pass --weights none to start from random weights"
    return hint + " (offline machines cannot fetch it)"


def download_url(url: str, destination: str | os.PathLike, progress: bool = True, *, hint: str | None = None) -> Path:
    """Download ``url`` to ``destination`` atomically with a tqdm progress bar.

    Raises :class:`DownloadError` (one line naming the URL and ``hint``, by default
    :func:`download_hint`) on any network or HTTP failure, and when the download is shorter than
    announced. An unreachable host fails within about :data:`CONNECT_TIMEOUT_S` seconds.
    """
    from tqdm import tqdm

    destination = Path(destination)
    hint = hint or download_hint()
    try:
        with _open(url) as response:
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
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        text = (str(reason).splitlines() or [type(exc).__name__])[0]
        raise DownloadError(f"cannot download {url} ({text}); {hint}") from None
    return destination


def cached_official(model_name: str, cache_dir: str | os.PathLike | None = None, url: str | None = None) -> Path:
    """Where the official checkpoint of ``model_name`` is (or would be) cached; nothing is fetched."""
    url = url or official_weights_url(model_name)
    folder = Path(cache_dir) if cache_dir is not None else weights_cache_dir()
    return folder / url.rstrip("/").rsplit("/", 1)[-1]


def download_official(
    model_name: str,
    cache_dir: str | os.PathLike | None = None,
    url: str | None = None,
    *,
    scratch_hint: bool = False,
) -> Path:
    """Path of the cached official checkpoint of ``model_name``, downloading it on first use.

    ``url`` overrides the table (for mirrors); ``cache_dir`` the cache folder. A failed download
    raises :class:`DownloadError` naming the URL and ``--weights PATH`` (and, with
    ``scratch_hint``, ``--weights none``).
    """
    url = url or official_weights_url(model_name)
    target = cached_official(model_name, cache_dir, url)
    if target.is_file() and target.stat().st_size > 0:
        return target
    return download_url(url, target, hint=download_hint(scratch_hint))
