"""Live streams (issue 30): how old a frame is when its detections are ready, live mode against
``--stream-buffer``, and the frames/s of several streams batched through one network call
against the same streams run one frame at a time.

The cameras are the tests' own MJPEG servers (``tests/stream_servers.py``) on 127.0.0.1 at
30 fps, looping, in this process. Their clip is ``make_clip`` at 320x240 (dog.jpg panning) with
every frame's clip index drawn in by ``stamp_index``. The clip is made long enough that no
server loops within a run (``--latency-seconds``/``--seconds`` plus 30 s of frames, checked at
the end of each run), so a frame's send time is the server's own record, ``sent_at[index]``
(``time.monotonic()`` when it began to send that frame), and ``read_stamp`` on the frame that
reaches the detector gives the index back. The age of a frame is ``time.monotonic()`` when its
detections are ready (``detect_streams`` yields its batch) minus its send time: transport,
FFmpeg's decoding, waiting in the reader and inference. ``transport`` is the part up to the
reader's ``received`` time.

1. Latency: one stream through ``detect_streams`` for ``--latency-seconds``, the bundled
   yolox-nano at 640 (torch, CPU), live mode (the newest frame) and buffer mode (every frame).
   ``growth`` is the slope of age against time (s of age per s of run; 0 when bounded).
   ``dropped`` counts the frames live mode replaced unprocessed; ``backlog`` the frames read but
   still waiting when the run stopped. ``--extra-delay`` sleeps that many ms after each batch,
   for a machine where inference keeps up with 30 fps.
2. Throughput: 1, 2 and 4 streams (live mode), yolox-nano at 416, ``--seconds`` each:
   *batched* through ``detect_streams`` (one network call per batch of the newest frames), and
   *one at a time*: the same ``StreamSet`` batches, each frame through ``predict_arrays([image])``
   alone. frames/s counts frames whose detections are ready within the run, all streams together.

The detectors are warmed up on every batch size first. The servers, FFmpeg's readers and the
network share the machine's cores; ``OMP_WAIT_POLICY`` is ``PASSIVE`` unless the environment sets
it, as the ``yoloxkit`` command does (torch's spinning OpenMP threads would starve the readers).

    .venv/bin/python benchmarks/bench_streams.py            # about 4 minutes
    .venv/bin/python benchmarks/bench_streams.py --quick    # a smoke run, under a minute
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the ``yoloxkit`` command's default (before torch loads)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from tests.stream_servers import MjpegServer, encode_jpeg, make_clip, read_stamp, stamp_index  # noqa: E402
from yoloxkit import Detector  # noqa: E402
from yoloxkit.infer.stream_run import detect_streams  # noqa: E402
from yoloxkit.infer.stream_set import StreamSet  # noqa: E402
from yoloxkit.infer.streams import StreamReader, StreamSettings  # noqa: E402

FPS = 30.0
CLIP_SIZE = (320, 240)  # (w, h)
MARGIN_SECONDS = 30.0  # clip frames beyond the run: opening the streams, the last batch, stopping
STREAM_COUNTS = (1, 2, 4)


def stamped_jpegs(frames: int) -> list[bytes]:
    """JPEGs of ``frames`` clip frames (320x240), frame i carrying the stamp i."""
    clip = make_clip(frames, CLIP_SIZE)
    return [encode_jpeg(stamp_index(frame, index)) for index, frame in enumerate(clip)]


def warm_up(detector: Detector, jpegs: list[bytes], batch_sizes: tuple[int, ...], rounds: int = 3) -> float:
    """Run every batch size ``rounds`` times; the median ms of one frame alone (the last rounds)."""
    image = cv2.imdecode(np.frombuffer(jpegs[0], np.uint8), cv2.IMREAD_COLOR)
    for size in batch_sizes:
        for _ in range(rounds):
            detector.predict_arrays([image] * size)
    seconds = []
    for _ in range(max(rounds, 5)):
        start = time.perf_counter()
        detector.predict_arrays([image])
        seconds.append(time.perf_counter() - start)
    return 1000 * float(np.median(seconds))


@dataclass
class Run:
    """What one run of streams recorded: per frame done, its age and transport time (s) and the
    run time (s since the loop began) when its detections were ready; network calls; counters."""

    ages: list[float] = field(default_factory=list)
    transport: list[float] = field(default_factory=list)
    ready_at: list[float] = field(default_factory=list)
    calls: int = 0
    elapsed: float = 0.0
    dropped: int = 0
    backlog: int = 0
    wrapped: bool = False

    def record(self, server: MjpegServer, image: np.ndarray, received: float, now: float, began: float) -> None:
        """Record one frame whose detections are ready at ``now`` (monotonic s)."""
        sent = server.sent_at[read_stamp(image)]
        self.ages.append(now - sent)
        self.transport.append(received - sent)
        self.ready_at.append(now - began)

    @property
    def frames(self) -> int:
        return len(self.ages)

    def growth(self) -> float:
        """Slope of age (s) against run time (s), least squares; 0.0 with under 2 frames."""
        if self.frames < 2:
            return 0.0
        return float(np.polyfit(self.ready_at, self.ages, 1)[0])


def run_streams(detector: Detector, jpegs: list[bytes], count: int, seconds: float, buffer: bool,
                batched: bool = True, extra_delay: float = 0.0) -> Run:
    """``count`` looping 30 fps MJPEG servers read into one ``StreamSet`` for ``seconds`` s,
    batched through ``detect_streams`` or each frame alone; ``extra_delay`` s slept per batch."""
    servers = [MjpegServer(jpegs, FPS, loop=True).start() for _ in range(count)]
    settings = StreamSettings(buffer=buffer, timeout=10.0)
    readers = [StreamReader(server.url, f"cam{index}", settings) for index, server in enumerate(servers)]
    streams = StreamSet(readers)
    run = Run()
    try:
        streams.start()
        began = time.monotonic()
        if batched:
            _batched(detector, streams, servers, run, began, seconds, extra_delay)
        else:
            _one_at_a_time(detector, streams, servers, run, began, seconds)
        run.elapsed = time.monotonic() - began
        run.dropped = sum(reader.dropped for reader in readers)
        run.backlog = sum(reader.frames_read - reader.dropped for reader in readers) - run.frames
    finally:
        streams.stop()
        for server in servers:
            server.stop()
    run.wrapped = any(server.frames_sent > len(jpegs) for server in servers)
    return run


def _batched(detector: Detector, streams: StreamSet, servers: list[MjpegServer], run: Run, began: float,
             seconds: float, extra_delay: float) -> None:
    """The loop of ``detect_streams`` until ``seconds`` s have passed since ``began``."""
    batches = detect_streams(detector, streams)
    try:
        for batch in batches:
            now = time.monotonic()
            run.calls += 1
            for index, frame, _ in batch:
                run.record(servers[index], frame.image, frame.received, now, began)
            if now - began >= seconds:
                return
            if extra_delay:
                time.sleep(extra_delay)
    finally:
        batches.close()


def _one_at_a_time(detector: Detector, streams: StreamSet, servers: list[MjpegServer], run: Run, began: float,
                   seconds: float) -> None:
    """The same ``StreamSet`` batches, each frame through the network alone, for ``seconds`` s."""
    batches = streams.batches()
    try:
        for batch in batches:
            for index, frame in batch:
                detector.predict_arrays([frame.image])
                now = time.monotonic()
                run.calls += 1
                run.record(servers[index], frame.image, frame.received, now, began)
            if time.monotonic() - began >= seconds:
                return
    finally:
        batches.close()


def ms(values: list[float], how: str) -> str:
    """Median, 90th percentile, max or last of ``values`` (s) in ms; '-' when empty."""
    if not values:
        return "-"
    pick = {"median": np.median, "p90": lambda v: np.percentile(v, 90), "max": np.max, "last": lambda v: v[-1]}
    return f"{1000 * float(pick[how](values)):.0f}"


def latency_table(detector: Detector, jpegs: list[bytes], seconds: float, extra_delay: float) -> None:
    """Part 1: live mode against buffer mode, one stream, ``seconds`` s each."""
    print(f"\n### Latency, one stream at {FPS:g} fps, {seconds:g} s per mode\n")
    print("| mode | frames done | fps done | age median ms | age p90 ms | age max ms | age at end ms "
          "| growth s/s | transport median ms | dropped | backlog |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for buffer in (False, True):
        run = run_streams(detector, jpegs, 1, seconds, buffer, extra_delay=extra_delay)
        mode = "buffer (--stream-buffer)" if buffer else "live (default)"
        print(f"| {mode} | {run.frames} | {run.frames / run.elapsed:.1f} | {ms(run.ages, 'median')} "
              f"| {ms(run.ages, 'p90')} | {ms(run.ages, 'max')} | {ms(run.ages, 'last')} | {run.growth():.3f} "
              f"| {ms(run.transport, 'median')} | {run.dropped} | {run.backlog} |", flush=True)
        if run.wrapped:
            print("warning: a server looped: ages of its second pass are wrong; make the clip longer")


def throughput_table(detector: Detector, jpegs: list[bytes], seconds: float) -> None:
    """Part 2: 1, 2, 4 streams batched against one at a time, ``seconds`` s each."""
    print(f"\n### Several streams at {FPS:g} fps each, live mode, {seconds:g} s per run\n")
    print("| streams | batched frames/s | one at a time frames/s | batched / one at a time | mean batch "
          "| batched age median ms | one at a time age median ms |")
    print("|---|---|---|---|---|---|---|")
    for count in STREAM_COUNTS:
        batched = run_streams(detector, jpegs, count, seconds, buffer=False, batched=True)
        alone = run_streams(detector, jpegs, count, seconds, buffer=False, batched=False)
        rate_batched, rate_alone = batched.frames / batched.elapsed, alone.frames / alone.elapsed
        mean_batch = batched.frames / max(batched.calls, 1)
        print(f"| {count} | {rate_batched:.1f} | {rate_alone:.1f} | {rate_batched / rate_alone:.2f} "
              f"| {mean_batch:.2f} | {ms(batched.ages, 'median')} | {ms(alone.ages, 'median')} |", flush=True)
        if batched.wrapped or alone.wrapped:
            print("warning: a server looped: ages of its second pass are wrong; make the clip longer")


def print_header(args: argparse.Namespace) -> None:
    """The command, the machine and the versions."""
    given = " ".join(sys.argv[1:])
    print(f"command: .venv/bin/python benchmarks/bench_streams.py {given}".rstrip())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
          f"{platform.system()} {platform.release()}")
    print(f"versions: Python {platform.python_version()}, torch {torch.__version__}, opencv {cv2.__version__}, "
          f"numpy {np.__version__}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="s per throughput run (6 runs)")
    parser.add_argument("--latency-seconds", type=float, default=60.0, help="s per latency mode (2 runs)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--extra-delay", type=float, default=0.0,
                        help="ms slept after each batch of the latency runs (when inference beats 30 fps)")
    parser.add_argument("--quick", action="store_true", help="5 s latency runs, 3 s throughput runs (smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.latency_seconds = 3.0, 5.0
    torch.set_num_threads(args.threads)
    print_header(args)
    frames = int((max(args.seconds, args.latency_seconds) + MARGIN_SECONDS) * FPS)
    started = time.perf_counter()
    jpegs = stamped_jpegs(frames)
    print(f"clip: {frames} stamped frames at {CLIP_SIZE[0]}x{CLIP_SIZE[1]}, "
          f"{sum(map(len, jpegs)) / len(jpegs) / 1024:.1f} KiB per JPEG, made in {time.perf_counter() - started:.1f} s")
    latency_detector = Detector(size=640)
    alone_ms = warm_up(latency_detector, jpegs, (1,))
    print(f"latency: {latency_detector.describe()}; one frame {alone_ms:.1f} ms "
          f"({1000 / alone_ms:.1f} fps against the camera's {FPS:g})"
          + (f"; plus {args.extra_delay:g} ms slept per batch" if args.extra_delay else ""))
    latency_table(latency_detector, jpegs, args.latency_seconds, args.extra_delay / 1000)
    throughput_detector = Detector(size=416)
    alone_ms = warm_up(throughput_detector, jpegs, STREAM_COUNTS)
    print(f"\nthroughput: {throughput_detector.describe()}; one frame {alone_ms:.1f} ms")
    throughput_table(throughput_detector, jpegs, args.seconds)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}; {time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
