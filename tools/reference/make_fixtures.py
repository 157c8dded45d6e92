"""Builds every reference fixture: first the model folders (fixtures_models.py), then each `*_outputs.py` module
in name order. Each module has `build(root) -> list[Path]`. Afterwards spec/fixtures/SHA256SUMS lists every file
under spec/fixtures and converted_models/tiny-sd, so a rerun can be compared byte for byte (`git diff`).

Usage: python tools/reference/make_fixtures.py [module ...]   (default: all)
"""
import hashlib
import importlib
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def modules(selected: list[str]) -> list[str]:
    found = ["fixtures_models"] + sorted(p.stem for p in HERE.glob("*_outputs.py"))
    return [m for m in found if not selected or m in selected]


def checksums() -> Path:
    files = sorted(
        p for base in (ROOT / "spec" / "fixtures", ROOT / "converted_models" / "tiny-sd")
        for p in base.rglob("*") if p.is_file() and p.name != "SHA256SUMS"
    )
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(ROOT)}" for p in files]
    out = ROOT / "spec" / "fixtures" / "SHA256SUMS"
    out.write_text("\n".join(lines) + "\n")
    return out


def main(selected: list[str]) -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    sys.path.insert(0, str(HERE))
    for name in modules(selected):
        random.seed(0)
        np.random.seed(0)
        torch.manual_seed(0)
        print(f"== {name}", flush=True)
        for p in importlib.import_module(name).build(ROOT):
            print(f"   {Path(p).relative_to(ROOT) if Path(p).is_absolute() else p}", flush=True)
    print(f"== {checksums().relative_to(ROOT)}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main(sys.argv[1:])
