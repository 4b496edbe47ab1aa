"""The live-stream options of ``predict`` and ``track``: --stream-buffer, --vid-stride,
--stream-timeout, --max-frames."""

from __future__ import annotations

import argparse

from .argtypes import positive_float, positive_int

__all__ = ["STREAM_HELP", "add_stream_options", "stream_settings"]

#: what the commands' descriptions say about stream sources
STREAM_HELP = """\
Live streams (rtsp://, rtsps://, http(s):// video or MJPEG, rtmp://) are read each by its own
thread, and the newest frames of all of them go through the network together. Live mode keeps
only the newest frame of each stream, so the delay stays bounded when inference is slower than
the camera; --stream-buffer keeps every frame instead. A stream that drops is reopened with
back-off (one line when it drops, one when it is back); one that sends no frame for
--stream-timeout seconds is given up with one line while the others go on, and the run exits with
status 2 at the end. Streams run until Ctrl-C (the outputs are kept) or --max-frames."""


def add_stream_options(parser: argparse.ArgumentParser) -> None:
    """Add the stream options to ``parser``."""
    parser.add_argument("--stream-buffer", action="store_true",
                        help="keep every frame of a live stream (default: only the newest, bounded delay)")
    parser.add_argument("--vid-stride", type=positive_int, default=1, metavar="N",
                        help="take every Nth frame of videos and streams (default 1)")
    parser.add_argument("--stream-timeout", type=positive_float, default=30.0, metavar="SECONDS",
                        help="give up a stream after this long without a frame; also the longest wait "
                             "for one attempt to open it (default 30, opening at most 10)")
    parser.add_argument("--max-frames", type=positive_int, metavar="N",
                        help="end each live stream after N frames (default: run until Ctrl-C)")


def stream_settings(args: argparse.Namespace):
    """The :class:`~yoloxkit.infer.streams.StreamSettings` of the parsed options."""
    from ..infer.streams import StreamSettings

    defaults = StreamSettings()
    return StreamSettings(buffer=args.stream_buffer, vid_stride=args.vid_stride, timeout=args.stream_timeout,
                          open_timeout=min(defaults.open_timeout, args.stream_timeout))
