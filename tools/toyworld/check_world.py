"""Quick self-checks of the toy world (no pytest): python tools/toyworld/check_world.py

Determinism (scenes, images, captions), masks that match the drawn objects, backgrounds left alone by
with_object, rendering at several sizes, and the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def main() -> int:
    seeds = list(range(200)) + [10**9 + k for k in range(50)]
    n_two = 0
    shapes: set[str] = set()
    kinds: set[str] = set()
    for seed in seeds:
        a, b = world.scene_for_seed(seed), world.scene_for_seed(seed)
        check(a == b, f"scene_for_seed({seed}) is deterministic")
        ia, ib = np.asarray(world.render(a)), np.asarray(world.render(b))
        check(ia.shape == (64, 64, 3) and ia.dtype == np.uint8, "render gives RGB 64x64")
        check(np.array_equal(ia, ib), f"render is deterministic (seed {seed})")
        ca = world.captions(a, np.random.default_rng(seed))
        check(ca == world.captions(b, np.random.default_rng(seed)), "captions are deterministic")
        check(ca[0] == world.describe(a) and len(ca) >= 4, "captions start with the description")
        check(1 <= len(a.objects) <= 2, "one or two objects")
        n_two += len(a.objects) == 2
        kinds.add(a.background.kind)
        bg = world.background_mask(a)
        union = np.zeros((64, 64), dtype=bool)
        for i, obj in enumerate(a.objects):
            shapes.add(obj.shape)
            m = world.object_mask(a, 64, i)
            check(m.sum() > 20, f"object {i} of seed {seed} has pixels")
            check(not (m & union).any(), f"objects of seed {seed} do not overlap")
            union |= m
            col = np.array(world.COLOURS[obj.colour], dtype=np.float32)
            err = np.abs(ia[m].astype(np.float32) - col).max(axis=1)
            # inside the mask: the object's colour (pixels at least half covered: within half the contrast)
            check(np.median(err) < 1.0, f"masked pixels have the object's colour (seed {seed})")
            check((err < 130).all(), f"every masked pixel is mostly the object's colour (seed {seed})")
            # the ideal edit changes only the object (and pixels it touches)
            for shape in world.SHAPES:
                e = world.with_object(a, i, shape=shape)
                check(e.objects[i].shape == shape and e.background == a.background, "with_object changes the shape")
                ie = np.asarray(world.render(e))
                check(np.array_equal(ie[bg & world.background_mask(e)], ia[bg & world.background_mask(e)]),
                      "with_object leaves the background")
        check(not (bg & union).any(), "background mask excludes objects")
        big = world.render(a, 96)
        check(big.size == (96, 96), "renders at 96 px")
        check(world.object_mask(a, 96).shape == (96, 96), "masks at 96 px")
    check(shapes == set(world.SHAPES), "all shapes occur")
    check(kinds == set(world.BACKGROUND_KINDS), "all background kinds occur")
    check(0.1 < n_two / len(seeds) < 0.4, f"sometimes two objects ({n_two}/{len(seeds)})")
    s = world.scene_for_seed(3)
    e = world.with_object(s, 0, size="large", colour="blue")
    check(e.objects[0].size == "large" and e.objects[0].colour == "blue", "with_object size and colour")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "x.png")
        r = subprocess.run([sys.executable, world.__file__, "--seed", "7", "--out", out], capture_output=True,
                           text=True, check=True)
        j = json.loads(r.stdout)
        check(j["description"] == world.describe(world.scene_for_seed(7)), "CLI prints the scene")
        check(world.scene_from_dict(j) == world.scene_for_seed(7), "the JSON round-trips")
        from PIL import Image
        check(np.array_equal(np.asarray(Image.open(out)), np.asarray(world.render(world.scene_for_seed(7)))),
              "CLI writes the image")
    print(f"toyworld self-checks passed ({len(seeds)} scenes, {n_two} with two objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
