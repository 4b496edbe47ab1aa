"""Inference: ``Detector`` (images and arrays in, ``Detections`` out), backends, drawing, video,
live streams (``watch_streams``)."""

from .detections import Detections
from .detector import Detector
from .stream_run import watch_streams
from .streams import StreamSettings

__all__ = ["Detector", "Detections", "watch_streams", "StreamSettings"]
