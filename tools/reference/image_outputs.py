"""Reference outputs for image reading and resizing: what Pillow does with the same files; and the test images
(spec/fixtures/images/: rgb, grey, rgba, palette PNGs and a JPEG).

Writes spec/fixtures/reference/images/:
  source.png, grey.png, grey_alpha.png, rgba.png, palette.png   inputs (deterministic content)
  pillow.safetensors   U8 tensors: `<name>.rgb` = Image.open(f).convert("RGB"),
                       `resize.<filter>.<w>x<h>` = source resized by Pillow with that filter
"""
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.numpy import save_file

FILTERS = {"lanczos": Image.LANCZOS, "bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}
SIZES = [(64, 64), (16, 24), (53, 20), (100, 37), (8, 8)]


def _png(img: Image.Image, path: Path) -> None:
    # No optional chunks, fixed compression: the bytes are the same on every run.
    img.save(path, format="PNG", optimize=False, compress_level=9)


def build(root: Path) -> list[Path]:
    out = root / "spec" / "fixtures" / "reference" / "images"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(1234)
    yy, xx = np.mgrid[0:37, 0:53]
    base = np.stack([xx * 4.8, yy * 6.9, (xx + yy) * 2.8], axis=-1) + rng.rand(37, 53, 3) * 40
    source = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    grey = source.convert("L")
    alpha = Image.fromarray((rng.rand(37, 53) * 255).astype(np.uint8), "L")
    grey_alpha = Image.merge("LA", (grey, alpha))
    rgba = Image.merge("RGBA", (*source.split(), alpha))
    palette = source.quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    files = {"source": source, "grey": grey, "grey_alpha": grey_alpha, "rgba": rgba, "palette": palette}

    tensors: dict[str, np.ndarray] = {}
    written = []
    for name, img in files.items():
        path = out / f"{name}.png"
        _png(img, path)
        written.append(path)
        tensors[f"{name}.rgb"] = np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8).copy()
    for fname, f in FILTERS.items():
        for w, h in SIZES:
            tensors[f"resize.{fname}.{w}x{h}"] = np.asarray(source.resize((w, h), f), dtype=np.uint8).copy()
    st = out / "pillow.safetensors"
    save_file(tensors, str(st), metadata={"pillow": Image.__version__})
    written.append(st)
    # Test images of several modes and formats for the image readers and the BLIP processor.
    images = root / "spec" / "fixtures" / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name, img in {"rgb": source, "grey": grey, "rgba": rgba, "palette": palette}.items():
        _png(img, images / f"{name}.png")
        written.append(images / f"{name}.png")
    jpg = images / "photo.jpg"
    source.resize((48, 40), Image.BICUBIC).save(jpg, format="JPEG", quality=90, optimize=False, progressive=False)
    written.append(jpg)
    return written


if __name__ == "__main__":
    for p in build(Path(__file__).resolve().parents[2]):
        print(p)
