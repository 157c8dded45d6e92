"""Assembles a direction from two saved directions, to find which part of a direction an edit depends on.

    python tools/toyworld/mix_directions.py BASE.safetensors OTHER.safetensors --out OUT.safetensors
        [--positions 4-18]          # OTHER's vectors at these token positions, BASE's elsewhere
        [--lengths-from other]      # BASE's per-position directions with OTHER's per-position lengths
        [--directions-from other]   # OTHER's per-position directions with BASE's per-position lengths

Both inputs are `pix2pix-zero direction --out` files of the same model ([1, 77, width] tensors named `direction`);
the output is one too (BASE's metadata), so `pix2pix-zero edit --direction OUT` and
`npm run eval -- --only ours --directions <folder of <task>.safetensors>` use it. Positions count from 0 (the
start token). Exactly one of the three options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file


def load(path: Path) -> tuple[np.ndarray, dict[str, str]]:
    try:
        with safe_open(str(path), "np") as f:
            if "direction" not in f.keys():
                raise SystemExit(f"mix_directions: {path} has no tensor 'direction' (is it a `pix2pix-zero direction --out` file?)")
            return f.get_tensor("direction").astype(np.float32), dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error type for a bad header
        raise SystemExit(f"mix_directions: cannot read {path} as safetensors: {e}") from e


def positions(spec: str, count: int) -> slice:
    try:
        lo, _, hi = spec.partition("-")
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise SystemExit(f"mix_directions: --positions must be N or N-M, got {spec!r}") from None
    if not 0 <= a <= b < count:
        raise SystemExit(f"mix_directions: --positions {spec} is outside 0-{count - 1}")
    return slice(a, b + 1)


def rescale(directions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each position's vector of `directions` with the length of `lengths`' vector there."""
    n = np.linalg.norm(directions, axis=-1, keepdims=True)
    target = np.linalg.norm(lengths, axis=-1, keepdims=True)
    return np.where(n > 0, directions / np.maximum(n, 1e-12) * target, 0.0).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path)
    ap.add_argument("other", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    how = ap.add_mutually_exclusive_group(required=True)
    how.add_argument("--positions", help="OTHER's vectors at these positions (N or N-M, inclusive)")
    how.add_argument("--lengths-from", choices=["other"], help="BASE's directions, OTHER's lengths, per position")
    how.add_argument("--directions-from", choices=["other"], help="OTHER's directions, BASE's lengths, per position")
    args = ap.parse_args(argv)
    base, meta = load(args.base)
    other, _ = load(args.other)
    if base.shape != other.shape:
        raise SystemExit(f"mix_directions: {args.base} is {list(base.shape)} and {args.other} {list(other.shape)}; "
                         "they must be directions of the same model")
    if args.positions is not None:
        out = base.copy()
        sl = positions(args.positions, base.shape[-2])
        out[..., sl, :] = other[..., sl, :]
    elif args.lengths_from:
        out = rescale(base, other)
    else:
        out = rescale(other, base)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({"direction": out}, str(args.out), metadata=meta)
    print(f"wrote {args.out} (norm {float(np.linalg.norm(out)):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
