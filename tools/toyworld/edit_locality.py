"""Where a toy-world text encoder puts a one-word caption edit, and how much the edit depends on the other words.

For held-out descriptions whose first object has the source word ("a small red circle on a plain grey
background"), the exact edit E(caption with the word replaced) - E(caption) is taken position by position and
its squared length split into: the word itself, the next word (for a colour, the noun it is said of), the rest of
the caption, and the end token with the padding (the positions pix2pix-zero's direction also moves). Then the
entanglement: the same edit said of another shape or colour (for red -> blue: "... red square ..." -> "... blue
square ..."), and the cosine of the two edits position by position, weighted by length: 1 when the edit is the
same vector whatever it is said of (what a direction averaged over many sentences can express), lower when the
encoder mixes the word with its neighbours.

Run: tools/reference/.venv/bin/python tools/toyworld/edit_locality.py [--model DIR ...] [--n 50]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPTextModel, CLIPTokenizer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import world  # noqa: E402

#: (source word, target word, the words of the other attribute to swap in for the entanglement test)
EDITS = {
    "red2blue": ("red", "blue", ("circle", "square", "triangle", "star")),
    "circle2square": ("circle", "square", ("red", "green", "yellow", "purple", "orange", "white")),
    "square2triangle": ("square", "triangle", ("red", "green", "yellow", "purple", "orange", "white")),
}


def captions(word: str, n: int, seed0: int) -> list[str]:
    """Descriptions of the first n held-out scenes from seed0 whose first object has `word` (colour or shape)."""
    out, seed = [], seed0
    while len(out) < n:
        sc = world.scene_for_seed(seed)
        seed += 1
        o = sc.objects[0]
        if word in (o.colour, o.shape):
            out.append(world.describe(sc))
    return out


def word_starts(tok, text: str) -> np.ndarray:
    """Token position of each word of `text` and, last, of the end token (CLIP's BPE splits at spaces, so a
    caption's tokens are its words' tokens in order, after the start token at position 0)."""
    lengths = [len(tok(x, add_special_tokens=False).input_ids) for x in text.split(" ")]
    if sum(lengths) + 2 != len(tok(text).input_ids):
        raise SystemExit(f"'{text}': its tokens are not its words' tokens in order")
    return np.cumsum([1] + lengths)


def swap_first(text: str, old: str, new: str) -> str:
    words = text.split(" ")
    i = words.index(old)
    return " ".join(words[:i] + [new] + words[i + 1:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, nargs="+", default=[Path("converted_models/toyworld")])
    ap.add_argument("--n", type=int, default=50, help="captions per edit")
    ap.add_argument("--scene-seed", type=int, default=10**9)
    args = ap.parse_args()
    print("| model | edit | word | next word | rest of caption | end + padding | cosine across the other attribute (all / padding) |")
    print("|---|---|---|---|---|---|---|")
    for model in args.model:
        if not (model / "text_encoder" / "config.json").exists():
            raise SystemExit(f"{model}: no text_encoder/ (expected a toy-world model folder)")
        tok = CLIPTokenizer.from_pretrained(str(model / "tokenizer"))
        enc = CLIPTextModel.from_pretrained(str(model / "text_encoder"), torch_dtype=torch.float32).eval()

        @torch.no_grad()
        def embed(texts: list[str]) -> torch.Tensor:
            ids = tok(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
            return enc(ids).last_hidden_state

        for name, (src, tgt, others) in EDITS.items():
            caps = captions(src, args.n, args.scene_seed)
            delta = embed([swap_first(c, src, tgt) for c in caps]) - embed(caps)  # [n, 77, d]
            share = np.zeros(4)
            cos_all, cos_pad = [], []
            rng = np.random.default_rng(0)
            for k, c in enumerate(caps):
                words = c.split(" ")
                w = words.index(src)
                starts = word_starts(tok, c)
                pos, nxt, eos = slice(starts[w], starts[w + 1]), slice(starts[w + 1], starts[w + 2]), int(starts[-1])
                sq = delta[k].pow(2).sum(-1)
                share += np.array([sq[pos].sum(), sq[nxt].sum(), sq[nxt.stop:eos].sum(), sq[eos:].sum()])
                # the same edit said of another value of the other attribute (the neighbour word for a colour is
                # the shape, for a shape the colour before it)
                j = w + 1 if src in world.COLOURS else w - 1
                alt = [o for o in others if o != words[j]]
                other = alt[int(rng.integers(len(alt)))]
                c2 = " ".join(words[:j] + [other] + words[j + 1:])
                d2 = embed([swap_first(c2, src, tgt)])[0] - embed([c2])[0]
                a, b = delta[k], d2
                cos_all.append(float((a * b).sum() / (a.norm() * b.norm())))
                cos_pad.append(float((a[eos:] * b[eos:]).sum() / (a[eos:].norm() * b[eos:].norm())))
            share /= share.sum()
            print(f"| {model} | {src} -> {tgt} | {share[0]:.0%} | {share[1]:.0%} | {share[2]:.0%} | {share[3]:.0%} | "
                  f"{np.mean(cos_all):.2f} / {np.mean(cos_pad):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
