"""MOTA, IDF1, HOTA, ID switches, FP and FN of tracker output against MOTChallenge ground truth.

The metrics are the ``trackers`` library's (``trackers.eval``, CLEAR, Identity and HOTA with
TrackEval's matching). This module finds the sequences, checks the files with :func:`.read_mot`
and that prediction and ground truth belong together (the same sequences; no prediction past
the end of its sequence), then hands the library normalised copies of the files.

Ground truth: a MOTChallenge folder (``SEQ/gt/gt.txt``, optionally ``SEQ/seqinfo.ini``), a flat
folder (``SEQ.txt``), one sequence folder (``gt/gt.txt``) or one file. Prediction: a folder of
``SEQ.txt`` or one file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import TrackingError
from ..io import atomic_write_text
from ..optional import import_optional
from ..data.mot_sequence import read_seqinfo
from .library import TRACKERS_HINT
from .mot import MotTable, read_mot

__all__ = ["SequenceScores", "TrackingReport", "GroundTruth", "load_ground_truth", "load_predictions",
           "evaluate_tracking", "write_report_json"]


@dataclass(frozen=True)
class SequenceScores:
    """The scores of one sequence (or ``COMBINED``): MOTA, IDF1, HOTA, DetA, AssA, MOTP as
    fractions; IDSW, FP, FN, ground-truth boxes and identities as counts."""

    name: str
    mota: float
    idf1: float
    hota: float
    deta: float
    assa: float
    motp: float
    idsw: int
    fp: int
    fn: int
    gt_boxes: int
    gt_ids: int

    def row(self) -> str:
        return (f"{self.name:<14} {100 * self.mota:7.2f} {100 * self.idf1:7.2f} {100 * self.hota:7.2f} "
                f"{100 * self.deta:7.2f} {100 * self.assa:7.2f} {self.idsw:6d} {self.fp:6d} {self.fn:6d}")


@dataclass(frozen=True)
class TrackingReport:
    """Per-sequence scores and their combination (TrackEval's ``COMBINED``)."""

    sequences: list[SequenceScores]
    combined: SequenceScores

    def table(self) -> str:
        """The scores as a text table (percentages for the ratios)."""
        header = f"{'sequence':<14} {'MOTA':>7} {'IDF1':>7} {'HOTA':>7} {'DetA':>7} {'AssA':>7} {'IDSW':>6} {'FP':>6} {'FN':>6}"
        lines = [header, "-" * len(header), *(s.row() for s in self.sequences), "-" * len(header), self.combined.row()]
        return "\n".join(lines)

    def to_json(self) -> dict:
        """Plain JSON: ``sequences`` (a list) and ``combined``."""
        return {"sequences": [asdict(s) for s in self.sequences], "combined": asdict(self.combined)}


@dataclass(frozen=True)
class GroundTruth:
    """One sequence's ground truth and its length (``seqinfo.ini``'s, else its last frame)."""

    table: MotTable
    length: int


def _sequence_gt(folder: Path) -> GroundTruth:
    table = read_mot(folder / "gt" / "gt.txt")
    length = read_seqinfo(folder)["length"] if (folder / "seqinfo.ini").is_file() else table.last_frame
    if table.last_frame > length:
        raise TrackingError(f"{table.path}: frame {table.last_frame} is past the sequence's end ({length} frames, "
                            f"{folder / 'seqinfo.ini'})")
    return GroundTruth(table, length)


def load_ground_truth(path: str | os.PathLike) -> dict[str, GroundTruth]:
    """Ground-truth sequences by name, from any of the layouts the module describes."""
    path = Path(path)
    if not path.exists():
        raise TrackingError(f"ground truth not found: {path}")
    if path.is_file():
        table = read_mot(path)
        return {path.parent.parent.name if path.name == "gt.txt" else path.stem: GroundTruth(table, table.last_frame)}
    if (path / "gt" / "gt.txt").is_file():
        return {path.name: _sequence_gt(path)}
    found = {p.name: _sequence_gt(p) for p in sorted(path.iterdir()) if (p / "gt" / "gt.txt").is_file()}
    if not found:
        found = {p.stem: GroundTruth(t := read_mot(p), t.last_frame) for p in sorted(path.glob("*.txt"))
                 if p.name != "seqmap.txt"}
    if not found:
        raise TrackingError(f"no ground truth in {path}: expected SEQ/gt/gt.txt folders or SEQ.txt files")
    return found


def _some(names: list[str]) -> str:
    """The first few names, for a message."""
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")


def _unpaired(names: list[str], available) -> tuple[list[str], list[str]]:
    """Ground-truth sequences without a prediction, and predictions without a sequence (sorted)."""
    return [n for n in names if n not in available], sorted(set(available) - set(names))


def load_predictions(path: str | os.PathLike, names: list[str]) -> dict[str, MotTable]:
    """Tracker output for the sequences ``names``: a folder with one ``SEQ.txt`` per sequence, or
    one file when there is one sequence. Every sequence needs its file, and every file a sequence."""
    path = Path(path)
    if not path.exists():
        raise TrackingError(f"predictions not found: {path}")
    if path.is_file():
        if len(names) != 1:
            raise TrackingError(f"{path} is one file but the ground truth has {len(names)} sequences "
                                f"({_some(names)}): give a folder of SEQ.txt")
        return {names[0]: read_mot(path)}
    files = {p.stem: p for p in sorted(path.glob("*.txt")) if p.name != "seqmap.txt"}
    missing, extra = _unpaired(names, files)
    if missing:
        raise TrackingError(f"no prediction for sequence {missing[0]} in {path} (expected {path / (missing[0] + '.txt')})"
                            + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    if extra:
        raise TrackingError(f"{files[extra[0]]} matches no ground-truth sequence ({_some(names)})")
    return {n: read_mot(files[n]) for n in names}


def _check_pair(name: str, gt: GroundTruth, prediction: MotTable) -> None:
    if prediction.last_frame > gt.length:
        where = prediction.path or name
        raise TrackingError(f"{where}: frame {prediction.last_frame} is past the end of sequence {name} "
                            f"({gt.length} frames in its ground truth)")


def _write_normalised(path: Path, table: MotTable, ground_truth: bool) -> None:
    """The rows as the library reads them; a table without rows becomes one unconfirmed row
    (id -1, which the evaluator drops), because the library refuses empty files."""
    if not len(table):
        path.write_text("1,-1,0,0,1,1,-1,-1,-1,-1\n" if not ground_truth else "1,1,0,0,1,1,0,1,0\n", encoding="utf-8")
        return
    data = np.column_stack([table.frames, table.ids, table.boxes, table.scores, table.classes, table.visibility])
    lines = []
    for row in data.tolist():  # Python floats: repr keeps every digit
        head = f"{int(row[0])},{int(row[1])}," + ",".join(repr(v) for v in row[2:7])
        lines.append(f"{head},{int(row[7])},{row[8]!r}" if ground_truth else f"{head},-1,-1,-1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _scored_ids(table: MotTable) -> int:
    """Ground-truth identities that count (marked to consider, class 1, as TrackEval's MOT17)."""
    return len(np.unique(table.ids[(table.scores != 0) & (table.classes == 1)]))


def _scores(name: str, result, gt_ids: int) -> SequenceScores:
    clear, identity, hota = result.CLEAR, result.Identity, result.HOTA
    return SequenceScores(
        name=name, mota=float(clear.MOTA), idf1=float(identity.IDF1), hota=float(hota.HOTA), deta=float(hota.DetA),
        assa=float(hota.AssA), motp=float(clear.MOTP), idsw=int(clear.IDSW), fp=int(clear.CLR_FP),
        fn=int(clear.CLR_FN), gt_boxes=int(clear.CLR_TP + clear.CLR_FN), gt_ids=gt_ids,
    )


def evaluate_tracking(
    ground_truth: str | os.PathLike | Mapping[str, GroundTruth | MotTable],
    predictions: str | os.PathLike | Mapping[str, MotTable],
    iou: float = 0.5,
) -> TrackingReport:
    """Score tracker output against ground truth, per sequence and combined.

    Both may be paths (the layouts in the module docstring) or mappings from sequence name to
    tables (ground truth as :class:`GroundTruth` or a :class:`MotTable`). ``iou`` is the match
    threshold of CLEAR and Identity (HOTA averages over 0.05 ... 0.95).
    """
    evaluate = import_optional("trackers.eval", f"track-eval needs the trackers package: {TRACKERS_HINT}")
    if isinstance(ground_truth, (str, os.PathLike)):
        gt = load_ground_truth(ground_truth)
    else:
        gt = {n: g if isinstance(g, GroundTruth) else GroundTruth(g, g.last_frame) for n, g in ground_truth.items()}
    names = list(gt)
    if isinstance(predictions, (str, os.PathLike)):
        pred = load_predictions(predictions, names)
    else:
        pred = dict(predictions)
        missing, extra = _unpaired(names, pred)
        if missing or extra:
            raise TrackingError(f"predictions and ground truth name different sequences: missing {missing}, "
                                f"extra {extra}")
    for name in names:
        _check_pair(name, gt[name], pred[name])
    with tempfile.TemporaryDirectory(prefix="yoloxkit-track-eval-") as folder:
        gt_dir, pred_dir = Path(folder, "gt"), Path(folder, "pred")
        gt_dir.mkdir()
        pred_dir.mkdir()
        for name in names:
            _write_normalised(gt_dir / f"{name}.txt", gt[name].table, ground_truth=True)
            _write_normalised(pred_dir / f"{name}.txt", pred[name], ground_truth=False)
        (Path(folder) / "seqmap.txt").write_text("name\n" + "\n".join(names) + "\n", encoding="utf-8")
        result = evaluate.evaluate_mot_sequences(gt_dir, pred_dir, seqmap=Path(folder) / "seqmap.txt",
                                                 metrics=["CLEAR", "HOTA", "Identity"], threshold=iou)
    sequences = [_scores(name, result.sequences[name], _scored_ids(gt[name].table)) for name in names]
    return TrackingReport(sequences, _scores("COMBINED", result.aggregate, sum(s.gt_ids for s in sequences)))


def write_report_json(report: TrackingReport, path: str | os.PathLike) -> None:
    """``report`` as JSON, atomically."""
    atomic_write_text(json.dumps(report.to_json(), indent=2) + "\n", path)
