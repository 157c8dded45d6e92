"""The toy world: procedural images of simple shapes with ground-truth descriptions and captions.

numpy + Pillow only. Every image is a deterministic function of its Scene, and every Scene of its seed
(`scene_for_seed(seed)` uses `numpy.random.default_rng(seed)`). Training uses seeds 0 .. 10**6 - 1; held-out
evaluation uses seeds >= 10**9 (never used in training).

Geometry is in image units ([0, 1] for x to the right and y downwards), so a scene renders at any size; the
pixel sizes quoted below are at 64 px. Rendering is anti-aliased by drawing at 4x and box-filtering down.

    python tools/toyworld/world.py --seed S [--size 64] --out x.png    # writes the image, prints the scene as JSON
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "star")

#: Object colours (RGB).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 225),
    "yellow": (240, 210, 40),
    "purple": (140, 60, 190),
    "orange": (245, 135, 30),
    "white": (245, 245, 245),
}

#: Background colours (RGB): muted, so that objects stand out. Names may coincide with object colours.
BACKGROUND_COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (225, 225, 218),
    "grey": (125, 125, 125),
    "black": (30, 30, 34),
    "blue": (70, 95, 150),
    "green": (75, 120, 80),
    "pink": (225, 170, 185),
    "brown": (120, 82, 52),
    "beige": (210, 195, 160),
}

SIZES = ("small", "medium", "large")
#: Radius ranges in pixels at 64 px, per size. The radius is that of the circle; other shapes are scaled to a
#: similar area (see `_polygon`).
SIZE_RADIUS_PX: dict[str, tuple[float, float]] = {
    "small": (6.0, 8.5),
    "medium": (9.5, 12.5),
    "large": (13.5, 17.0),
}

BACKGROUND_KINDS = ("plain", "stripes", "checks", "gradient", "noise")

#: Probability of a second object.
P_TWO_OBJECTS = 0.25

_SS = 4  # supersampling factor for anti-aliasing
_REF = 64.0  # the size the pixel figures refer to


@dataclass
class Obj:
    """One object. cx, cy, radius in image units ([0, 1]); angle in degrees (ignored for circles)."""

    shape: str
    colour: str
    size: str
    cx: float
    cy: float
    radius: float
    angle: float


@dataclass
class Background:
    """The background. `colours` are names in BACKGROUND_COLOURS (plain uses the first only).

    period: stripe / check period in image units; angle: stripe or gradient direction in degrees;
    seed: the noise pattern's seed.
    """

    kind: str
    colours: tuple[str, str]
    period: float = 0.125
    angle: float = 0.0
    seed: int = 0


@dataclass
class Scene:
    objects: list[Obj] = field(default_factory=list)
    background: Background = field(default_factory=lambda: Background("plain", ("grey", "grey")))


# ---------------------------------------------------------------------------------------------- sampling


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return float(sum(abs(x - y) for x, y in zip(a, b)))


def _sample_background(rng: np.random.Generator) -> Background:
    kind = BACKGROUND_KINDS[int(rng.choice(len(BACKGROUND_KINDS), p=[0.3, 0.2, 0.15, 0.2, 0.15]))]
    names = list(BACKGROUND_COLOURS)
    a = names[int(rng.integers(len(names)))]
    if kind == "plain":
        b = a
    else:
        others = [n for n in names if n != a and _contrast(BACKGROUND_COLOURS[n], BACKGROUND_COLOURS[a]) > 90]
        b = others[int(rng.integers(len(others)))]
    period = float(rng.uniform(0.14, 0.28))
    if kind == "stripes":
        angle = float(rng.choice([0.0, 45.0, 90.0, 135.0]))
    elif kind == "gradient":
        angle = float(rng.uniform(0.0, 360.0))
    else:
        angle = 0.0
    seed = int(rng.integers(2**31 - 1))
    return Background(kind, (a, b), period, angle, seed)


def _object_colour_ok(colour: str, bg: Background) -> bool:
    rgb = COLOURS[colour]
    return all(_contrast(rgb, BACKGROUND_COLOURS[c]) > 150 for c in bg.colours)


def _extent(radius: float) -> float:
    """How far (image units) any shape of this radius reaches from its centre (stars reach furthest)."""
    return radius * 1.3


def sample_scene(rng: np.random.Generator) -> Scene:
    """A random scene: one object usually, sometimes two (non-overlapping), on a random background."""
    bg = _sample_background(rng)
    n = 2 if rng.random() < P_TWO_OBJECTS else 1
    objects: list[Obj] = []
    ok_colours = [c for c in COLOURS if _object_colour_ok(c, bg)]
    for _ in range(n):
        for _attempt in range(50):
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            colour = ok_colours[int(rng.integers(len(ok_colours)))]
            size = SIZES[int(rng.integers(len(SIZES)))]
            if n == 2 and size == "large":
                size = "medium"
            lo, hi = SIZE_RADIUS_PX[size]
            radius = float(rng.uniform(lo, hi)) / _REF
            m = _extent(radius) + 1.5 / _REF
            cx = float(rng.uniform(m, 1.0 - m))
            cy = float(rng.uniform(m, 1.0 - m))
            angle = float(rng.uniform(-20.0, 20.0))
            if all(
                math.hypot(cx - o.cx, cy - o.cy) > _extent(radius) + _extent(o.radius) + 3.0 / _REF
                for o in objects
            ):
                objects.append(Obj(shape, colour, size, cx, cy, radius, angle))
                break
    return Scene(objects, bg)


def scene_for_seed(seed: int) -> Scene:
    return sample_scene(np.random.default_rng(seed))


# ---------------------------------------------------------------------------------------------- rendering


def _polygon(obj: Obj, scale: float) -> list[tuple[float, float]] | None:
    """Vertices in pixels of a canvas of side `scale`; None for a circle. Shapes have roughly the circle's area."""
    cx, cy, r = obj.cx * scale, obj.cy * scale, obj.radius * scale
    a0 = math.radians(obj.angle)
    if obj.shape == "circle":
        return None
    if obj.shape == "square":
        h = r * math.sqrt(math.pi) / 2.0 * 1.0  # same area as the circle
        rr = h * math.sqrt(2.0)
        angles = [a0 + math.pi / 4 + k * math.pi / 2 for k in range(4)]
        return [(cx + rr * math.cos(t), cy + rr * math.sin(t)) for t in angles]
    if obj.shape == "triangle":
        rr = r * 1.3  # circumradius: area ~ 0.86 of the circle's, reads as the same size
        angles = [a0 - math.pi / 2 + k * 2 * math.pi / 3 for k in range(3)]
        # shift down a little so the triangle's visual centre is at (cx, cy)
        return [(cx + rr * math.cos(t), cy + rr * 0.12 + rr * math.sin(t)) for t in angles]
    if obj.shape == "star":
        ro, ri = r * 1.3, r * 1.3 * 0.45
        pts = []
        for k in range(10):
            t = a0 - math.pi / 2 + k * math.pi / 5
            rad = ro if k % 2 == 0 else ri
            pts.append((cx + rad * math.cos(t), cy + rad * math.sin(t)))
        return pts
    raise ValueError(f"unknown shape {obj.shape!r} (expected one of {SHAPES})")


def _coverage(obj: Obj, size: int) -> np.ndarray:
    """Anti-aliased coverage of one object in [0, 1], float32 [size, size]."""
    big = size * _SS
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    poly = _polygon(obj, big)
    if poly is None:
        cx, cy, r = obj.cx * big, obj.cy * big, obj.radius * big
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    else:
        draw.polygon(poly, fill=255)
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _background_array(bg: Background, size: int) -> np.ndarray:
    """float32 [size, size, 3] in 0..255."""
    if bg.kind not in BACKGROUND_KINDS:
        raise ValueError(f"unknown background kind {bg.kind!r} (expected one of {BACKGROUND_KINDS})")
    c0 = np.array(BACKGROUND_COLOURS[bg.colours[0]], dtype=np.float32)
    c1 = np.array(BACKGROUND_COLOURS[bg.colours[1]], dtype=np.float32)
    if bg.kind == "plain":
        return np.broadcast_to(c0, (size, size, 3)).astype(np.float32)
    if bg.kind == "noise":
        grid = np.random.default_rng(bg.seed).random((8, 8)).astype(np.float32)
        img = Image.fromarray((grid * 255).astype(np.uint8), "L").resize((size, size), Image.Resampling.BICUBIC)
        t = np.asarray(img, dtype=np.float32)[..., None] / 255.0
        return c0 * (1 - t) + c1 * t
    big = size * _SS
    coords = (np.arange(big, dtype=np.float32) + 0.5) / big
    x, y = np.meshgrid(coords, coords)
    th = math.radians(bg.angle)
    if bg.kind == "stripes":
        u = x * math.cos(th) + y * math.sin(th)
        t = (np.floor(u / (bg.period / 2.0)) % 2).astype(np.float32)
    elif bg.kind == "checks":
        t = ((np.floor(x / (bg.period / 2.0)) + np.floor(y / (bg.period / 2.0))) % 2).astype(np.float32)
    else:  # gradient
        u = (x - 0.5) * math.cos(th) + (y - 0.5) * math.sin(th)
        t = np.clip(u / math.sqrt(2.0) + 0.5, 0.0, 1.0).astype(np.float32)
    t = t.reshape(size, _SS, size, _SS).mean(axis=(1, 3))[..., None]
    return c0 * (1 - t) + c1 * t


def render(scene: Scene, size: int = 64) -> Image.Image:
    """The scene as an RGB image of side `size`, anti-aliased; deterministic."""
    img = _background_array(scene.background, size)
    for obj in scene.objects:
        if obj.colour not in COLOURS:
            raise ValueError(f"unknown colour {obj.colour!r} (expected one of {tuple(COLOURS)})")
        a = _coverage(obj, size)[..., None]
        img = img * (1 - a) + np.array(COLOURS[obj.colour], dtype=np.float32) * a
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


def object_mask(scene: Scene, size: int = 64, index: int = 0) -> np.ndarray:
    """bool [size, size]: pixels at least half covered by object `index`."""
    return _coverage(scene.objects[index], size) >= 0.5


def coverage_map(scene: Scene, size: int = 64) -> np.ndarray:
    """float32 [size, size] in [0, 1]: how much of each pixel some object covers (the union of the objects)."""
    cov = np.zeros((size, size), dtype=np.float32)
    for obj in scene.objects:
        cov = np.maximum(cov, _coverage(obj, size))
    return cov


def background_mask(scene: Scene, size: int = 64, margin: int = 0) -> np.ndarray:
    """bool [size, size]: pixels no object touches at all, optionally `margin` pixels away from every object."""
    touched = np.zeros((size, size), dtype=bool)
    for obj in scene.objects:
        touched |= _coverage(obj, size) > 0.0
    if margin > 0:
        t = touched.copy()
        for dy in range(-margin, margin + 1):
            for dx in range(-margin, margin + 1):
                touched |= np.roll(np.roll(t, dy, axis=0), dx, axis=1) & _shift_valid(size, dy, dx)
    return ~touched


def _shift_valid(size: int, dy: int, dx: int) -> np.ndarray:
    v = np.ones((size, size), dtype=bool)
    if dy > 0:
        v[:dy] = False
    elif dy < 0:
        v[dy:] = False
    if dx > 0:
        v[:, :dx] = False
    elif dx < 0:
        v[:, dx:] = False
    return v


# ---------------------------------------------------------------------------------------------- language

_BG_PHRASE = {
    "stripes": "striped",
    "checks": "checkered",
    "noise": "mottled",
}

_SHAPE_SYNONYMS = {
    "circle": ["circle", "circle", "circle", "disc", "round dot"],
    "square": ["square", "square", "square", "box", "block"],
    "triangle": ["triangle", "triangle", "triangle", "triangular shape"],
    "star": ["star", "star", "star", "five-pointed star"],
}

_SIZE_SYNONYMS = {
    "small": ["small", "little", "tiny"],
    "medium": ["medium", "medium-sized", "mid-sized"],
    "large": ["large", "big", "huge"],
}


def background_phrase(bg: Background) -> str:
    """"a striped blue and white background", "a plain grey background", "a grey to black gradient background"."""
    a, b = bg.colours
    if bg.kind == "plain":
        return f"a plain {a} background"
    if bg.kind == "gradient":
        return f"a {a} to {b} gradient background"
    return f"a {_BG_PHRASE[bg.kind]} {a} and {b} background"


def object_phrase(obj: Obj) -> str:
    return f"a {obj.size} {obj.colour} {obj.shape}"


def position_phrase(obj: Obj) -> str:
    """Where the object is on a 3 x 3 grid: "in the top left", "at the top", "in the centre", ..."""
    col = 0 if obj.cx < 1 / 3 else (2 if obj.cx > 2 / 3 else 1)
    row = 0 if obj.cy < 1 / 3 else (2 if obj.cy > 2 / 3 else 1)
    names = {
        (0, 0): "in the top left",
        (0, 1): "at the top",
        (0, 2): "in the top right",
        (1, 0): "on the left",
        (1, 1): "in the centre",
        (1, 2): "on the right",
        (2, 0): "in the bottom left",
        (2, 1): "at the bottom",
        (2, 2): "in the bottom right",
    }
    return names[(row, col)]


def describe(scene: Scene) -> str:
    """The ground-truth description: "a small red circle on a striped blue and white background"."""
    objs = " and ".join(object_phrase(o) for o in scene.objects) or "nothing"
    return f"{objs} on {background_phrase(scene.background)}"


def _pick(rng: np.random.Generator, items: list[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _varied_object(obj: Obj, rng: np.random.Generator, with_size: bool) -> str:
    shape = _pick(rng, _SHAPE_SYNONYMS[obj.shape])
    words = ([_pick(rng, _SIZE_SYNONYMS[obj.size])] if with_size else []) + [obj.colour, shape]
    return " ".join(words)


def captions(scene: Scene, rng: np.random.Generator) -> list[str]:
    """Several varied captions of the same scene; the first is `describe(scene)`."""
    out = [describe(scene)]
    bgp = background_phrase(scene.background)
    objs = scene.objects
    templates = [
        lambda: "a " + " and a ".join(_varied_object(o, rng, False) for o in objs),
        lambda: "a " + " and a ".join(_varied_object(o, rng, True) + " " + position_phrase(o) for o in objs),
        lambda: "a picture of a " + " and a ".join(_varied_object(o, rng, rng.random() < 0.5) for o in objs)
        + " on " + bgp,
        lambda: "an image of " + " and ".join(object_phrase(o) for o in objs),
        lambda: " and ".join(f"{o.colour} {o.shape}" for o in objs),
        lambda: "a " + " and a ".join(f"{o.shape} that is {o.colour}" for o in objs) + ", " + bgp[2:],
        lambda: "a " + " and a ".join(f"{o.colour} {o.shape} {position_phrase(o)}" for o in objs) + " on " + bgp,
    ]
    order = rng.permutation(len(templates))
    for k in order[:5]:
        out.append(templates[int(k)]())
    return out


# ---------------------------------------------------------------------------------------------- edits


def with_object(scene: Scene, index: int = 0, **changes: object) -> Scene:
    """The same scene with object `index` changed (shape=, colour=, size=, ...): the ideal edit.

    A size change without an explicit radius moves the radius to the middle of the new size's range.
    """
    for k, v in changes.items():
        if k == "shape" and v not in SHAPES:
            raise ValueError(f"unknown shape {v!r} (expected one of {SHAPES})")
        if k == "colour" and v not in COLOURS:
            raise ValueError(f"unknown colour {v!r} (expected one of {tuple(COLOURS)})")
        if k == "size" and v not in SIZES:
            raise ValueError(f"unknown size {v!r} (expected one of {SIZES})")
        if k not in {f.name for f in dataclasses.fields(Obj)}:
            raise ValueError(f"unknown object field {k!r}")
    obj = scene.objects[index]
    if "size" in changes and "radius" not in changes:
        lo, hi = SIZE_RADIUS_PX[str(changes["size"])]
        changes = {**changes, "radius": (lo + hi) / 2.0 / _REF}
    objects = list(scene.objects)
    objects[index] = dataclasses.replace(obj, **changes)  # type: ignore[arg-type]
    return Scene(objects, dataclasses.replace(scene.background))


def scene_to_dict(scene: Scene) -> dict:
    d = dataclasses.asdict(scene)
    d["background"]["colours"] = list(scene.background.colours)
    d["description"] = describe(scene)
    return d


def scene_from_dict(d: dict) -> Scene:
    bg = dict(d["background"])
    bg["colours"] = tuple(bg["colours"])
    return Scene([Obj(**o) for o in d["objects"]], Background(**bg))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Render one toy-world scene and print it as JSON.")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--out", help="PNG path to write")
    args = ap.parse_args(argv)
    scene = scene_for_seed(args.seed)
    if args.out:
        render(scene, args.size).save(args.out)
    d = scene_to_dict(scene)
    d["seed"] = args.seed
    d["captions"] = captions(scene, np.random.default_rng(args.seed))
    json.dump(d, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
