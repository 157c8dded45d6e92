"""A small CNN that names the shape and colour of one object of a toy-world image (the quality benchmark's judge).

The classifier looks at a square crop centred on where an object is (or was, before an edit): the crop's half
side is CROP_SCALE x the object's radius, resampled to CROP_PX x CROP_PX. Given the input scene's object
position, the benchmark crops the *edited* image at the same place and asks: which shape, which colour? Besides
world.SHAPES and world.COLOURS each head has a class "none" (no object there: the edit erased it).

Training data: scenes of the training seed range (world.py: 0 .. 10**6 - 1; this uses 0 .. TRAIN_SCENES - 1),
every object of each scene cropped with jitter (centre +-15 % of the half side, scale 0.85-1.2), a low-resolution
look, Gaussian blur, colour jitter and pixel noise (edited images are softer and noisier than renders), plus "none" crops of the
bare background. Seeded (torch and numpy), one thread: about two to four minutes on one core.

    python tools/toyworld/classifier.py [--retrain] [--out tools/toyworld/classifier.safetensors]

trains (when --retrain or when the file is missing), then prints the held-out accuracy on clean renders of
seeds TEST_SEED0 .. TEST_SEED0 + TEST_SCENES - 1 (never used in training nor by the benchmark's scenes).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageFilter
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import world  # noqa: E402

CROP_PX = 32
CROP_SCALE = 1.75
RENDER_PX = 64
SHAPE_CLASSES = tuple(world.SHAPES) + ("none",)
COLOUR_CLASSES = tuple(world.COLOURS) + ("none",)
TRAIN_SCENES = 16000
TEST_SEED0 = 1_500_000_000
TEST_SCENES = 1500
DEFAULT_FILE = Path(__file__).resolve().parent / "classifier.safetensors"


def crop(image: Image.Image | np.ndarray, cx: float, cy: float, radius: float, jitter: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """The CROP_PX x CROP_PX crop (uint8 [h, w, 3]) centred on (cx, cy) with half side CROP_SCALE * radius, all
    in image units; `jitter` = (dx, dy, scale) moves and scales the window (dx, dy in half sides)."""
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB")
    w, h = img.size
    half = CROP_SCALE * radius * jitter[2]
    x, y = (cx + jitter[0] * half) * w, (cy + jitter[1] * half) * h
    hx, hy = half * w, half * h
    box = (x - hx, y - hy, x + hx, y + hy)
    out = img.transform((CROP_PX, CROP_PX), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    return np.asarray(out, dtype=np.uint8)


class ObjectClassifier(nn.Module):
    """Three conv blocks (16, 32, 64 channels) and two heads: shape and colour (each with "none")."""

    def __init__(self) -> None:
        super().__init__()
        chans = [3, 16, 32, 64]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans[:-1], chans[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for c in chans[1:])
        side = CROP_PX // 8
        self.fc = nn.Linear(64 * side * side, 128)
        self.shape_head = nn.Linear(128, len(SHAPE_CLASSES))
        self.colour_head = nn.Linear(128, len(COLOUR_CLASSES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for conv, norm in zip(self.convs, self.norms):
            x = F.max_pool2d(F.relu(norm(conv(x))), 2)
        x = F.dropout(F.relu(self.fc(x.flatten(1))), 0.2, self.training)
        return self.shape_head(x), self.colour_head(x)


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """uint8 [n, h, w, 3] -> float [n, 3, h, w] in [-1, 1]."""
    return torch.from_numpy(np.array(crops, dtype=np.uint8)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _augment(c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = Image.fromarray(c, "RGB")
    if rng.random() < 0.35:  # a low-resolution look (a VAE's downsampled latents)
        k = int(rng.integers(9, 20))
        img = img.resize((k, k), Image.Resampling.BILINEAR).resize((CROP_PX, CROP_PX), Image.Resampling.BICUBIC)
    if rng.random() < 0.7:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.2, 1.6))))
    a = np.asarray(img, dtype=np.float32)
    a = a * rng.uniform(0.9, 1.1, size=3) + rng.uniform(-12, 12, size=3)
    a = a + rng.normal(0.0, rng.uniform(0.0, 8.0), size=a.shape)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def make_dataset(seeds: range, augment: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops and labels (shape index, colour index) for every object of the scenes of `seeds`, plus one "none"
    crop (the bare background at an object's place) for every fourth scene."""
    xs: list[np.ndarray] = []
    ys: list[int] = []
    yc: list[int] = []
    for seed in seeds:
        scene = world.scene_for_seed(seed)
        img = world.render(scene, RENDER_PX)
        for obj in scene.objects:
            j = (float(rng.uniform(-0.15, 0.15)), float(rng.uniform(-0.15, 0.15)), float(rng.uniform(0.85, 1.2))) if augment else (0.0, 0.0, 1.0)
            c = crop(img, obj.cx, obj.cy, obj.radius, j)
            xs.append(_augment(c, rng) if augment else c)
            ys.append(SHAPE_CLASSES.index(obj.shape))
            yc.append(COLOUR_CLASSES.index(obj.colour))
        if seed % 4 == 0:
            bare = world.render(world.Scene([], scene.background), RENDER_PX)
            obj = scene.objects[0]
            j = (float(rng.uniform(-0.15, 0.15)), float(rng.uniform(-0.15, 0.15)), float(rng.uniform(0.85, 1.2))) if augment else (0.0, 0.0, 1.0)
            c = crop(bare, obj.cx, obj.cy, obj.radius, j)
            xs.append(_augment(c, rng) if augment else c)
            ys.append(SHAPE_CLASSES.index("none"))
            yc.append(COLOUR_CLASSES.index("none"))
    return np.stack(xs), np.array(ys, dtype=np.int64), np.array(yc, dtype=np.int64)


def train(out: Path = DEFAULT_FILE, scenes: int = TRAIN_SCENES, epochs: int = 8, log=print) -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    t0 = time.time()
    x, ys, yc = make_dataset(range(scenes), True, rng)
    log(f"classifier: {len(x)} training crops from seeds 0..{scenes - 1} in {time.time() - t0:.0f} s")
    xt = to_tensor(x)
    model = ObjectClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    batch = 128
    steps = epochs * math.ceil(len(x) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    g = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        total, n = 0.0, 0
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            s, c = model(xt[idx])
            loss = F.cross_entropy(s, torch.from_numpy(ys)[idx]) + F.cross_entropy(c, torch.from_numpy(yc)[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            n += len(idx)
        log(f"classifier: epoch {epoch + 1}/{epochs} loss {total / n:.4f} ({time.time() - t0:.0f} s)")
    model.eval()
    acc = evaluate(model)
    meta = {
        "shape_classes": list(SHAPE_CLASSES), "colour_classes": list(COLOUR_CLASSES), "crop_px": CROP_PX,
        "crop_scale": CROP_SCALE, "render_px": RENDER_PX, "train_seeds": f"0..{scenes - 1}", "epochs": epochs,
        "heldout": acc,
    }
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if v.dtype != torch.int64}
    save_file(state, str(out), metadata={"meta": json.dumps(meta)})
    log(f"classifier: saved {out} ({out.stat().st_size / 1e6:.2f} MB) after {time.time() - t0:.0f} s; held-out {acc}")
    return meta


@torch.no_grad()
def predict(model: ObjectClassifier, crops: np.ndarray) -> tuple[list[str], list[str]]:
    """Shape and colour names for uint8 crops [n, CROP_PX, CROP_PX, 3]."""
    s, c = model(to_tensor(crops))
    return [SHAPE_CLASSES[i] for i in s.argmax(1).tolist()], [COLOUR_CLASSES[i] for i in c.argmax(1).tolist()]


def evaluate(model: ObjectClassifier, seed0: int = TEST_SEED0, scenes: int = TEST_SCENES) -> dict:
    """Accuracy on clean renders of held-out seeds (every object, and "none" crops)."""
    x, ys, yc = make_dataset(range(seed0, seed0 + scenes), False, np.random.default_rng(1))
    s, c = predict(model, x)
    s_ok = np.array([SHAPE_CLASSES.index(v) for v in s]) == ys
    c_ok = np.array([COLOUR_CLASSES.index(v) for v in c]) == yc
    return {"seeds": f"{seed0}..{seed0 + scenes - 1}", "crops": int(len(x)), "shape": round(float(s_ok.mean()), 4),
            "colour": round(float(c_ok.mean()), 4), "both": round(float((s_ok & c_ok).mean()), 4)}


def load(path: Path = DEFAULT_FILE) -> tuple[ObjectClassifier, dict]:
    """The trained classifier (eval mode) and its metadata."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["meta"])
    if tuple(meta["shape_classes"]) != SHAPE_CLASSES or tuple(meta["colour_classes"]) != COLOUR_CLASSES:
        raise ValueError(f"{path} was trained for other classes than world.py's: retrain it (--retrain)")
    model = ObjectClassifier()
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise ValueError(f"{path}: missing {missing}, unexpected {unexpected}")
    model.eval()
    return model, meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--out", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--scenes", type=int, default=TRAIN_SCENES)
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.retrain or not args.out.exists():
        train(args.out, args.scenes, args.epochs)
    model, meta = load(args.out)
    print(json.dumps({"file": str(args.out), "heldout_now": evaluate(model), **meta}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
