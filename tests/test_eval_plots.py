"""Issue 11 item 15: the title of pr_per_class.png lies inside the picture (it was cut off with 3
classes) and above the panels, whatever the number of classes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from yoloxkit.evaluate.plots import plot_pr_per_class, pr_per_class_figure


def _curves(count: int) -> dict:
    rng = np.random.default_rng(count)
    return {f"class {k}": (np.sort(rng.uniform(0, 1, 12)), np.sort(rng.uniform(0, 1, 12))[::-1], 0.5)
            for k in range(count)}


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 20])
def test_title_inside_the_figure_and_above_the_panels(count):
    fig = pr_per_class_figure(_curves(count))
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    title = fig._suptitle.get_window_extent(renderer)
    frame = fig.bbox
    assert title.x0 >= frame.x0 and title.x1 <= frame.x1, (title, frame)
    assert title.y0 >= frame.y0 and title.y1 <= frame.y1, (title, frame)
    for ax in fig.axes:
        if ax.get_visible():
            assert ax.title.get_window_extent(renderer).y1 <= title.y0, ax.get_title()
    assert "its area is the AP" in fig._suptitle.get_text().replace("\n", " ")


def test_written_png_has_the_title_pixels(tmp_path):
    path = plot_pr_per_class(_curves(3), tmp_path / "pr_per_class.png")
    image = cv2.imread(str(path))
    assert image is not None
    # the top rows hold the title: dark pixels there, and a white margin at the left and right edges
    top = image[: image.shape[0] // 6]
    assert (top < 100).any()
    assert (image[:, :2] > 250).all() and (image[:, -2:] > 250).all()
