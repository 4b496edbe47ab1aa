"""Checks on one box against its image, shared by every dataset reader."""

from __future__ import annotations

from .issues import ERROR, WARNING, DataIssue

__all__ = ["check_box", "OUTSIDE_TOLERANCE"]

# Annotation tools often round box edges a fraction of a pixel past the border; only larger
# excursions are reported.
OUTSIDE_TOLERANCE = 1.0


def check_box(
    file: str, element: str, box: tuple[float, float, float, float], width: int, height: int
) -> tuple[bool, list[DataIssue]]:
    """Check an xyxy ``box`` in an image of ``width`` x ``height`` pixels.

    Returns ``(keep, issues)``: an inverted box (x2 < x1 or y2 < y1) is an error and is not kept;
    a box of zero width or height, or one reaching more than :data:`OUTSIDE_TOLERANCE` pixels
    outside the image, is kept with a warning (training drops or clips it).
    """
    x1, y1, x2, y2 = box
    values = (x1, y1, x2, y2)
    if any(v != v or v in (float("inf"), float("-inf")) for v in values):
        return False, [DataIssue(ERROR, "malformed", file, element, f"box {_fmt(values)} is not finite")]
    if x2 < x1 or y2 < y1:
        return False, [
            DataIssue(ERROR, "inverted_box", file, element,
                      f"box {_fmt(values)} has xmin > xmax or ymin > ymax")
        ]
    issues: list[DataIssue] = []
    if x2 == x1 or y2 == y1:
        issues.append(DataIssue(WARNING, "degenerate_box", file, element, f"box {_fmt(values)} has zero size"))
    tol = OUTSIDE_TOLERANCE
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        issues.append(
            DataIssue(WARNING, "outside_box", file, element,
                      f"box {_fmt(values)} reaches outside the {width}x{height} image")
        )
    return True, issues


def _fmt(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"
