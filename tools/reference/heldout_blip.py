"""Held-out captioning check: a BLIP configuration drawn from a seed (widths, depths, heads, patch and image size,
image mean/std, the real 30,522-token uncased BERT vocabulary), random weights, saved by transformers'
save_pretrained as it is (no extra files), then captions of a few seeded images from transformers' generate()
and from our `pix2pix-zero caption`, greedy and beam search. Prints whether the token ids are identical.
Nothing under the repository is written.

Usage: tools/reference/.venv/bin/python tools/reference/heldout_blip.py [--seed N] [--backend wasm|cpu] [--keep DIR]
(`npm run build` first).
"""
import argparse
import gzip
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor,  # noqa: E402
                          BlipProcessor)

from fixtures_models import randomize  # noqa: E402

CASES = {"greedy": dict(num_beams=1, max_new_tokens=12), "beam3": dict(num_beams=3, max_new_tokens=10),
         "beam2_min": dict(num_beams=2, max_new_tokens=10, min_length=8, repetition_penalty=1.3)}


def build(seed: int, out: Path) -> BlipProcessor:
    r = random.Random(seed)
    vocab = gzip.decompress((ROOT / "spec/fixtures/tokenizers/bert/vocab.txt.gz").read_bytes()).decode()
    (out.parent / "vocab.txt").write_text(vocab)
    tokenizer = BertTokenizer(str(out.parent / "vocab.txt"), do_lower_case=True, model_max_length=512)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    patch = r.choice([4, 8])
    image = patch * r.choice([4, 5, 6])
    processor = BlipProcessor(image_processor=BlipImageProcessor(
        size={"height": image, "width": image}, image_mean=[r.uniform(0.3, 0.6) for _ in range(3)],
        image_std=[r.uniform(0.2, 0.3) for _ in range(3)]), tokenizer=tokenizer)
    heads_v, heads_t = r.choice([2, 4]), r.choice([2, 4])
    vh, th = heads_v * r.choice([8, 12]), heads_t * r.choice([8, 12])
    config = BlipConfig(
        vision_config=dict(hidden_size=vh, intermediate_size=2 * vh, num_hidden_layers=r.choice([1, 2, 3]),
                           num_attention_heads=heads_v, image_size=image, patch_size=patch),
        text_config=dict(vocab_size=len(tokenizer), hidden_size=th, intermediate_size=2 * th,
                         num_hidden_layers=r.choice([1, 2, 3]), num_attention_heads=heads_t, encoder_hidden_size=vh,
                         max_position_embeddings=64, bos_token_id=tokenizer.bos_token_id,
                         sep_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.sep_token_id),
        projection_dim=th)
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(config).eval()
    randomize(model, seed + 1)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return processor


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--backend", default="wasm")
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = args.keep or Path(tempfile.mkdtemp(prefix="heldout-blip-"))
    shutil.rmtree(work / "blip", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    processor = build(args.seed, work / "blip")
    model = BlipForConditionalGeneration.from_pretrained(work / "blip").eval()
    rng = np.random.default_rng(args.seed)
    failures = 0
    for k in range(3):
        h, w = int(rng.integers(20, 90)), int(rng.integers(20, 90))
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
        path = work / f"image{k}.png"
        img.save(path)
        pixels = processor(images=Image.open(path).convert("RGB"), return_tensors="pt").pixel_values
        for name, opts in CASES.items():
            with torch.no_grad():
                ref = model.generate(pixel_values=pixels, do_sample=False, **opts)[0].tolist()
            cmd = ["node", str(ROOT / "bin/pix2pix-zero.js"), "caption", str(path), "--captioner", str(work / "blip"),
                   "--beams", str(opts["num_beams"]), "--max-new-tokens", str(opts["max_new_tokens"]),
                   "--min-length", str(opts.get("min_length", 0)),
                   "--repetition-penalty", str(opts.get("repetition_penalty", 1)), "--backend", args.backend, "--json"]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                print(f"image{k} {name}: caption failed: {run.stderr.strip()}")
                failures += 1
                continue
            ours = json.loads(run.stdout)["ids"]
            same = ours == ref
            failures += not same
            print(f"image{k} ({w}x{h}) {name}: {'identical' if same else f'DIFFER ours {ours} ref {ref}'}")
    if args.keep is None:
        shutil.rmtree(work)
    print(f"seed {args.seed}: {9 - failures}/9 captions with identical ids")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
