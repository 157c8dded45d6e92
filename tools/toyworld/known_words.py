"""Which words of a sentence bank the toy world's text encoder was trained on.

The toy world's CLIPTextModel is trained from scratch on the world's own captions (train.py), so only the tokens
of its caption language ("small", "red", "star", "background", ...) ever get a gradient; every other token of the
49,408-token CLIP vocabulary keeps its initial embedding (normal, std 0.02: a norm near 0.02 * sqrt(hidden)), which
is also the median norm of the table. A token counts as trained when its embedding norm is more than 1.6 times that
median. For each bank (a file of one sentence a line, or a folder of <concept>.txt) this prints the share of
its word tokens (BOS, EOS and padding left out) that are trained, and the untrained words it uses most:
a direction from a bank whose contexts are mostly untrained tokens is made of contexts this encoder cannot read,
unlike a real CLIP text encoder, which was trained on all of them.

Run: tools/reference/.venv/bin/python tools/toyworld/known_words.py [--model converted_models/toyworld] BANK...
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import CLIPTokenizer


def bank_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise SystemExit(f"{path}: no <concept>.txt files in this folder")
        return files
    if not path.is_file():
        raise SystemExit(f"{path}: no such file or folder (expected a sentence bank or a folder of them)")
    return [path]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=Path("converted_models/toyworld"), help="toy-world model folder")
    ap.add_argument("--top", type=int, default=8, help="how many of the most used untrained words to list")
    ap.add_argument("banks", type=Path, nargs="+", help="sentence bank files or folders of <concept>.txt")
    args = ap.parse_args()
    weights = args.model / "text_encoder" / "model.safetensors"
    if not weights.is_file():
        raise SystemExit(f"{weights}: missing (build the toy world first: npm run toyworld)")
    state = load_file(str(weights))
    key = next((k for k in state if k.endswith("embeddings.token_embedding.weight")), None)
    if key is None:
        raise SystemExit(f"{weights}: no token embedding table (embeddings.token_embedding.weight)")
    table = state[key].float()
    norms = table.norm(dim=1)
    trained = norms > 1.6 * norms.median()  # untrained: up to ~1.5 x (0.24); the world's words: 1.8-4.2 x
    tok = CLIPTokenizer.from_pretrained(str(args.model / "tokenizer"))
    print(f"{int(trained.sum())} of {len(norms)} tokens trained (embedding norm > 1.6 x the median, {float(norms.median()):.3f})")
    print("| bank | sentences | word tokens trained | most used untrained words |")
    print("|---|---|---|---|")
    for path in args.banks:
        for f in bank_files(path):
            lines = [s.strip() for s in f.read_text(encoding="utf-8").splitlines() if s.strip()]
            unknown: Counter[str] = Counter()
            total = known = 0
            for s in lines:
                ids = tok(s, add_special_tokens=False).input_ids
                total += len(ids)
                mask = trained[torch.tensor(ids, dtype=torch.long)] if ids else torch.zeros(0, dtype=torch.bool)
                known += int(mask.sum())
                unknown.update(tok.convert_ids_to_tokens([i for i, k in zip(ids, mask.tolist()) if not k]))
            top = ", ".join(w.replace("</w>", "") for w, _ in unknown.most_common(args.top))
            share = 100 * known / total if total else 0.0
            print(f"| {f} | {len(lines)} | {share:.0f} % | {top} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
