"""Stream URLs: which arguments are live streams (``rtsp://``, ``http://`` ...), the one-line
error of a wrong one, the name of a stream's outputs, and URLs with their passwords hidden."""

from __future__ import annotations

import re

from ..errors import ImageReadError

__all__ = ["STREAM_SCHEMES", "is_stream_url", "check_stream_url", "redact", "stream_name"]

STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https", "rtmp")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]*@")
_SECRET_QUERY = re.compile(r"([?&;][^=&;#]*(?:pass|pwd|token|secret|key|auth|sig)[^=&;#]*=)[^&;#]*", re.IGNORECASE)


def redact(url: str) -> str:
    """``url`` fit for a message: ``user:password@`` shown as ``***@``, the values of query
    parameters such as ``password=``/``token=`` as ``***``, control characters escaped."""
    text = _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1***@", str(url)))
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def is_stream_url(text: str) -> bool:
    """True for ``scheme://...`` with a scheme of :data:`STREAM_SCHEMES` (any case)."""
    match = _SCHEME.match(str(text).strip())
    return match is not None and match.group(1).lower() in STREAM_SCHEMES


def check_stream_url(text: str) -> str:
    """``text`` (stripped) if it is a stream URL with a host; else a one-line :class:`ImageReadError`."""
    url = str(text).strip()
    match = _SCHEME.match(url)
    choices = ", ".join(STREAM_SCHEMES[:-1]) + " or " + STREAM_SCHEMES[-1]
    if match is None:
        raise ImageReadError(f"not a stream URL: {redact(url)} (use scheme://host/..., scheme {choices})")
    scheme = match.group(1).lower()
    if scheme not in STREAM_SCHEMES:
        raise ImageReadError(f"unsupported stream scheme {scheme!r} in {redact(url)}: use {choices}")
    authority = re.split(r"[/?#]", url[match.end():], maxsplit=1)[0].rpartition("@")[2]
    if not re.sub(r":\d*$", "", authority).strip("[]"):
        raise ImageReadError(f"stream URL without a host: {redact(url)}")
    return url


def stream_name(url: str) -> str:
    """A file-name-safe name for the outputs of stream ``url``: its host, port and path, without
    the scheme, the credentials or the query, dots as dashes so that no suffix is read into it
    (``rtsp://u:p@10.0.0.5:554/cam/1.sdp`` -> ``10-0-0-5_554_cam_1-sdp``)."""
    match = _SCHEME.match(str(url).strip())
    rest = str(url).strip()[match.end():] if match else str(url)
    authority, _, path = re.split(r"[?#]", rest, maxsplit=1)[0].partition("/")
    text = authority.rpartition("@")[2] + "_" + path
    return re.sub(r"[^A-Za-z0-9-]+", "_", text.replace(".", "-")).strip("_-") or "stream"
