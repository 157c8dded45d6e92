"""Builds every reference fixture: first the model folders (fixtures_models.py), then each `*_outputs.py` module
in name order. Each module has `build(root) -> list[Path]`. Afterwards spec/fixtures/SHA256SUMS lists every file
under spec/fixtures and converted_models/tiny-sd, so a rerun can be compared byte for byte (`git diff`).

Usage: python tools/reference/make_fixtures.py [--check] [module ...]   (default: all)

--check rebuilds everything into a scratch copy of the tree instead and compares it with the committed files:
JSON, text and images byte for byte, integer tensors exactly, float tensors within CHECK_RTOL of each tensor's
largest magnitude. On one machine a full run reproduces its own bytes; on another CPU, MKL and oneDNN take other
kernel paths and floats can differ in their last bits, which this check tells apart from real changes.
"""
import hashlib
import importlib
import json
import os
import random
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def modules(selected: list[str]) -> list[str]:
    found = ["fixtures_models"] + sorted(p.stem for p in HERE.glob("*_outputs.py"))
    return [m for m in found if not selected or m in selected]


CHECK_RTOL = 1e-4  # below every parity tolerance of the tests (1e-4 .. 1e-3)
FIXTURE_DIRS = (Path("spec") / "fixtures", Path("converted_models") / "tiny-sd")


def fixture_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for base in FIXTURE_DIRS for p in (root / base).rglob("*")
                  if p.is_file() and p.name != "SHA256SUMS")


def checksums(root: Path = ROOT) -> Path:
    lines = [f"{hashlib.sha256((root / p).read_bytes()).hexdigest()}  {p}" for p in fixture_files(root)]
    out = root / "spec" / "fixtures" / "SHA256SUMS"
    out.write_text("\n".join(lines) + "\n")
    return out


def build_all(root: Path, selected: list[str]) -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    for name in modules(selected):
        random.seed(0)
        np.random.seed(0)
        torch.manual_seed(0)
        print(f"== {name}", flush=True)
        for p in importlib.import_module(name).build(root):
            print(f"   {Path(p).relative_to(root) if Path(p).is_absolute() else p}", flush=True)
    print(f"== {checksums(root).relative_to(root)}")


def safetensors_arrays(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    types = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
             "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            out[k] = np.frombuffer(json.dumps(v, sort_keys=True).encode(), dtype=np.uint8)
            continue
        b, e = v["data_offsets"]
        if v["dtype"] == "BF16":  # widen to float32 by shifting the 16 bits up
            raw = np.frombuffer(data[8 + n + b:8 + n + e], dtype=np.uint16).astype(np.uint32) << 16
            out[k] = raw.view(np.float32).reshape(v["shape"])
        else:
            out[k] = np.frombuffer(data[8 + n + b:8 + n + e], dtype=types[v["dtype"]]).reshape(v["shape"])
    return out


def compare(committed: Path, rebuilt: Path) -> str | None:
    """None when the rebuilt file matches the committed one; else what differs."""
    a, b = committed.read_bytes(), rebuilt.read_bytes()
    if a == b:
        return None
    if committed.suffix != ".safetensors":
        return "bytes differ"
    x, y = safetensors_arrays(committed), safetensors_arrays(rebuilt)
    if x.keys() != y.keys():
        return f"tensor names differ: {sorted(set(x) ^ set(y))[:5]}"
    worst = (0.0, "")
    for k in x:
        if x[k].shape != y[k].shape or x[k].dtype != y[k].dtype:
            return f"{k}: {x[k].dtype}{list(x[k].shape)} vs {y[k].dtype}{list(y[k].shape)}"
        if not np.issubdtype(x[k].dtype, np.floating):
            if not np.array_equal(x[k], y[k]):
                return f"{k}: integer values differ"
            continue
        scale = float(np.max(np.abs(x[k].astype(np.float64)))) if x[k].size else 0.0
        err = float(np.max(np.abs(x[k].astype(np.float64) - y[k]))) / max(scale, 1e-30) if x[k].size else 0.0
        if err > worst[0]:
            worst = (err, k)
    if worst[0] > CHECK_RTOL:
        return f"{worst[1]}: relative difference {worst[0]:.2e} > {CHECK_RTOL:.0e}"
    return f"ok within {worst[0]:.1e} (last-bit float differences)"


def check(selected: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="fixtures-check-") as tmp:
        scratch = Path(tmp)
        for base in FIXTURE_DIRS:
            shutil.copytree(ROOT / base, scratch / base)
        build_all(scratch, selected)
        committed, rebuilt = fixture_files(ROOT), fixture_files(scratch)
        failures = close = 0
        for p in sorted(set(committed) | set(rebuilt)):
            if p not in rebuilt or p not in committed:
                print(f"DIFFERS {p}: {'not rebuilt' if p not in rebuilt else 'not committed'}")
                failures += 1
                continue
            verdict = compare(ROOT / p, scratch / p)
            if verdict is not None:
                bad = not verdict.startswith("ok")
                failures += bad
                close += not bad
                print(f"{'DIFFERS' if bad else 'close  '} {p}: {verdict}")
        same = len(committed) - failures - close
        print(f"fixture check: {len(committed)} files: {same} byte-identical, {close} within {CHECK_RTOL:.0e}, {failures} differ")
        return 1 if failures else 0


def main(argv: list[str]) -> int:
    if "--check" in argv:
        return check([a for a in argv if a != "--check"])
    build_all(ROOT, argv)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main(sys.argv[1:]))
