"""Writes the toy world's sentence banks: assets/sentences/<concept>.txt for every shape and object colour.

    python tools/toyworld/make_sentences.py [--count 150] [--seed 5] [--out assets/sentences]

The banks are in the world's caption language (the words its text encoder was trained on) and paired: line k of
circle.txt and line k of square.txt are the same sentence (same template, size, colour, position, background)
with only the shape word changed, and likewise across the colour banks. pix2pix-zero's direction is
mean(E(target)) - mean(E(source)), so with paired banks everything but the concept cancels exactly.
Seeded and deterministic: the committed banks are seed 5; another seed draws other sentences of the same
templates and distribution (an equally good bank, to measure how much a result depends on the draw).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import world  # noqa: E402

ROOT = HERE.parents[1]

TEMPLATES = [
    "a {size} {colour} {shape} on {bg}",
    "a {size} {colour} {shape} on {bg}",
    "a picture of a {size} {colour} {shape} on {bg}",
    "a {colour} {shape} {pos}",
    "a {size} {colour} {shape} {pos} on {bg}",
    "an image of a {size} {colour} {shape}",
    "a {shape} that is {colour}, {bgbare}",
    "a {colour} {shape} on {bg}",
    "a {size} {colour} {shape} {pos}",
    "a picture of a {colour} {shape} {pos} on {bg}",
]

# backgrounds for the colour banks avoid the object colours' names, so every colour word is the object's
NEUTRAL_BACKGROUND = [c for c in world.BACKGROUND_COLOURS if c not in world.COLOURS]


def background(rng: np.random.Generator, names: list[str]) -> str:
    kind = world.BACKGROUND_KINDS[int(rng.integers(len(world.BACKGROUND_KINDS)))]
    a = names[int(rng.integers(len(names)))]
    b = [n for n in names if n != a][int(rng.integers(len(names) - 1))]
    return world.background_phrase(world.Background(kind, (a, b)))


def line(k: int, family: str, concept: str, seen: set, seed: int = 5) -> str | None:
    rng = np.random.default_rng([k, seed])
    t = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    size = world.SIZES[int(rng.integers(len(world.SIZES)))]
    other_colour = list(world.COLOURS)[int(rng.integers(len(world.COLOURS)))]
    other_shape = world.SHAPES[int(rng.integers(len(world.SHAPES)))]
    bgnames = list(world.BACKGROUND_COLOURS) if family == "shape" else NEUTRAL_BACKGROUND
    bg = background(rng, bgnames)
    cx, cy = float(rng.uniform(0.15, 0.85)), float(rng.uniform(0.15, 0.85))
    pos = world.position_phrase(world.Obj("circle", "red", size, cx, cy, 0.1, 0.0))
    colour, shape = (other_colour, concept) if family == "shape" else (concept, other_shape)
    other = other_colour if family == "shape" else other_shape
    key = (t, size if "{size}" in t else "", other, bg if "{bg" in t else "", pos if "{pos}" in t else "")
    if key in seen:
        return None
    seen.add(key)
    return t.format(size=size, colour=colour, shape=shape, bg=bg, bgbare=bg[2:], pos=pos)


def bank(family: str, concept: str, count: int, seed: int = 5) -> list[str]:
    out: list[str] = []
    seen: set = set()
    k = 0
    while len(out) < count:
        s = line(k, family, concept, seen, seed)
        k += 1
        if s is not None:
            out.append(s)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=150)
    ap.add_argument("--seed", type=int, default=5, help="draw (5: the committed banks)")
    ap.add_argument("--out", default=str(ROOT / "assets" / "sentences"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for family, concepts in (("shape", world.SHAPES), ("colour", tuple(world.COLOURS))):
        for c in concepts:
            lines = bank(family, c, args.count, args.seed)
            assert len(set(lines)) == len(lines) and all(c in s for s in lines)
            (out / f"{c}.txt").write_text("\n".join(lines) + "\n")
            print(out / f"{c}.txt", len(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
