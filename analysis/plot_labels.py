"""Point labels that do not overlap, and a check that a figure's texts do not collide.

`place_labels` tries positions around each point, nearest first (right-above, then the other
diagonals and sides, then further out with a leader line), and keeps the first one whose box
stays inside the axes and clears every label placed so far, any `avoid` boxes and the data
markers. When no position is clear it takes the one that overlaps least (labels weigh more
than markers), so every point keeps its label.
`overlapping_texts` measures the drawn figure; tests use it to prove plots are readable.
"""

from __future__ import annotations

import math

from matplotlib.transforms import Bbox

DISTANCES = (5, 12, 22, 34, 48)          # points from the marker
ANGLES = (45, -45, 135, -135, 0, 180, 90, -90)


def _renderer(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _area(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _candidates():
    for dist in DISTANCES:
        for angle in ANGLES:
            dx, dy = dist * math.cos(math.radians(angle)), dist * math.sin(math.radians(angle))
            ha = "left" if dx > 0.5 else "right" if dx < -0.5 else "center"
            va = "bottom" if dy > 0.5 else "top" if dy < -0.5 else "center"
            yield (dx, dy), ha, va, dist > DISTANCES[0]


def place_labels(ax, points, texts, *, avoid: list[Bbox] = (), markers=(), gid: str | None = None,
                 **text_kw) -> list:
    """Annotate each (x, y) in data coordinates with its text; returns the annotations.

    `markers` are (x, y) data points a label should rather not cover (a label may, when nothing
    else fits: covering a marker costs less than covering another label)."""
    renderer = _renderer(ax.figure)
    frame = ax.get_window_extent(renderer)
    placed = list(avoid)
    dots = [Bbox.from_extents(u - 4, v - 4, u + 4, v + 4)
            for u, v in ax.transData.transform(list(markers) or [(math.nan, math.nan)]) if math.isfinite(u)]
    out = []
    for (x, y), text in zip(points, texts):
        best, best_cost = None, math.inf
        for offset, ha, va, leader in _candidates():
            ann = ax.annotate(text, (x, y), xytext=offset, textcoords="offset points", ha=ha, va=va, gid=gid,
                              arrowprops=dict(arrowstyle="-", lw=0.6, color="0.4") if leader else None, **text_kw)
            box = ann.get_window_extent(renderer)
            outside = box.width * box.height - _area(box, frame)
            cost = sum(_area(box, p) for p in placed) + 4 * outside + 0.25 * sum(_area(box, d) for d in dots)
            if cost < best_cost:
                if best is not None:
                    best[0].remove()
                best, best_cost = (ann, box), cost
                if cost == 0:
                    break
            else:
                ann.remove()
        placed.append(best[1])
        out.append(best[0])
    return out


def overlapping_texts(fig, texts) -> list[tuple[str, str]]:
    """Pairs of visible, non-empty texts among `texts` whose drawn boxes overlap (by more than 1 px^2)."""
    renderer = _renderer(fig)
    shown = [t for t in texts if t.get_visible() and t.get_text().strip()]
    boxes = [t.get_window_extent(renderer) for t in shown]
    return [(shown[i].get_text(), shown[j].get_text()) for i in range(len(shown)) for j in range(i + 1, len(shown))
            if _area(boxes[i], boxes[j]) > 1.0]


def axis_texts(ax) -> list:
    """Tick labels of both axes and the annotations of `ax` (what must not collide)."""
    return [*ax.get_xticklabels(), *ax.get_yticklabels(), *ax.texts]


__all__ = ["place_labels", "overlapping_texts", "axis_texts"]
