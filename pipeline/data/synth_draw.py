"""Drawing primitives of the synthetic dataset: class shapes, textures, backgrounds and clutter."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

CLASS_NAMES = ["ellipse", "triangle", "rectangle", "cross", "star"]


def random_color(rng: np.random.Generator) -> np.ndarray:
    """One RGB colour, uniform in the cube: the same distribution for every class."""
    return rng.uniform(0, 255, 3).astype(np.float32)


def shape_polygon(cls: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-radius outline [k, 2] of class ``cls`` (centred at 0, before rotation)."""
    if cls == 0:  # ellipse
        t = np.linspace(0, 2 * math.pi, 32, endpoint=False)
        return np.stack([np.cos(t), rng.uniform(0.55, 1.0) * np.sin(t)], 1)
    if cls == 1:  # triangle, mildly irregular
        t = math.pi / 2 + np.radians([0, 120, 240] + rng.uniform(-12, 12, 3))
        r = rng.uniform(0.85, 1.0, 3)
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)
    if cls == 2:  # rectangle (square to 2:1)
        a = rng.uniform(0.5, 1.0)
        pts = np.array([[-1, -a], [1, -a], [1, a], [-1, a]], dtype=np.float64)
        return pts / math.hypot(1, a)
    if cls == 3:  # plus / cross
        t = rng.uniform(0.2, 0.34)
        q = np.array([[t, t], [t, 1], [-t, 1], [-t, t]])
        return np.concatenate([_rot90(q, k) for k in range(4)])
    if cls == 4:  # five-pointed star
        inner = rng.uniform(0.38, 0.5)
        t = math.pi / 2 + np.arange(10) * math.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, inner)
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)
    raise ValueError(f"shape_polygon: unknown class {cls}; expected 0..{len(CLASS_NAMES) - 1}")


def _rot90(pts: np.ndarray, k: int) -> np.ndarray:
    c, s = round(math.cos(k * math.pi / 2)), round(math.sin(k * math.pi / 2))
    return pts @ np.array([[c, s], [-s, c]])


def texture(rng: np.random.Generator, h: int, w: int, color: np.ndarray) -> np.ndarray:
    """float32 [h, w, 3] fill around ``color``: solid, gradient, stripes or noise."""
    kind = rng.integers(4)
    other = np.clip(color + rng.uniform(-90, 90, 3), 0, 255).astype(np.float32)
    if kind == 0:
        return np.broadcast_to(color, (h, w, 3)).astype(np.float32)
    yy, xx = (g.astype(np.float32) for g in np.ogrid[0:h, 0:w])
    ang = rng.uniform(0, math.pi)
    proj = xx * math.cos(ang) + yy * math.sin(ang)
    if kind == 1:
        a = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
    elif kind == 2:
        a = (np.floor(proj / rng.uniform(2, 7)) % 2).astype(np.float32)
    else:
        return np.clip(color + rng.standard_normal((h, w, 3), np.float32) * 28, 0, 255)
    return (color + (other - color) * a[..., None]).astype(np.float32)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """float32 [size, size, 3]: a smooth noise field, gradient, stripes or checker, in random colours."""
    kind = rng.integers(4)
    c1, c2 = random_color(rng), random_color(rng)
    if kind == 0:
        g = int(rng.integers(3, 12))
        low = rng.uniform(0, 255, (g, g, 3)).astype(np.uint8)
        return np.asarray(Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC), np.float32)
    yy, xx = (g.astype(np.float32) for g in np.ogrid[0:size, 0:size])
    if kind == 1:
        ang = rng.uniform(0, 2 * math.pi)
        proj = xx * np.float32(math.cos(ang)) + yy * np.float32(math.sin(ang))
        a = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
    elif kind == 2:
        ang = rng.uniform(0, math.pi)
        a = (np.floor((xx * math.cos(ang) + yy * math.sin(ang)) / rng.uniform(4, 30)) % 2).astype(np.float32)
    else:
        cell = rng.uniform(8, 40)
        a = ((np.floor(xx / cell) + np.floor(yy / cell)) % 2).astype(np.float32)
    out = c1 + (c2 - c1) * a[..., None]
    grain = rng.standard_normal((size, size, 1), np.float32) * rng.uniform(0, 6)
    return np.clip(out + grain, 0, 255).astype(np.float32)


def _rgb(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = rng.integers(0, 256, 3)
    return int(r), int(g), int(b)


def draw_clutter(img: Image.Image, rng: np.random.Generator, count: int) -> None:
    """Draw ``count`` non-class distractors: lines, arcs, irregular blobs, text-like scribbles."""
    d = ImageDraw.Draw(img)
    size = img.width
    for _ in range(count):
        kind = rng.integers(4)
        if kind == 0:
            x = rng.uniform(0, size, 4)
            d.line([(x[0], x[1]), (x[2], x[3])], fill=_rgb(rng), width=int(rng.integers(1, 4)))
        elif kind == 1:
            cx, cy, r = *rng.uniform(0, size, 2), rng.uniform(6, size / 3)
            a0 = rng.uniform(0, 360)
            d.arc([cx - r, cy - r, cx + r, cy + r], a0, a0 + rng.uniform(40, 250), fill=_rgb(rng),
                  width=int(rng.integers(1, 4)))
        elif kind == 2:
            k = int(rng.integers(7, 14))
            t = np.sort(rng.uniform(0, 2 * math.pi, k))
            r = rng.uniform(4, 30) * rng.uniform(0.3, 1.3, k)
            cx, cy = rng.uniform(0, size, 2)
            d.polygon([(cx + a * math.cos(b), cy + a * math.sin(b)) for a, b in zip(r, t)], fill=_rgb(rng))
        else:
            x, y = rng.uniform(0, size, 2)
            pts = [(x, y)]
            for _ in range(int(rng.integers(6, 20))):
                x, y = x + rng.uniform(-2, 4), y + rng.uniform(-3, 3)
                pts.append((x, y))
            d.line(pts, fill=_rgb(rng), width=1)
