"""Which caption words a toy-world UNet reads over an object: the share of its cross-attention there per word.

For the first n held-out scenes whose first object has the given word (default "red"), the scene is encoded
(posterior mean x scaling_factor), noised to timestep t with a fixed seed, and put through the UNet with its
description; every cross-attention layer's probabilities (averaged over heads) are taken at the query pixels the
first object covers (at least half, at the layer's resolution) and split over the caption's tokens: the start
token, the object's colour word, its shape word, the rest of the caption, and the end token with the padding.
Averaged over layers (each layer's object pixels weigh one) and scenes. Stable Diffusion's maps are read for
Prompt-to-Prompt and pix2pix-zero's guidance as if each word's share said where that word is drawn; a UNet that
reads the object from the end token and padding keeps its words' maps flat.

Run: tools/reference/.venv/bin/python tools/toyworld/attention_share.py [--model DIR ...] [--n 30] [--t 400 700]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import world  # noqa: E402
from edit_locality import word_starts  # noqa: E402

PARTS = ("start", "colour word", "shape word", "rest of caption", "end + padding")


class Recorder:
    """A cross-attention processor that computes attention as diffusers' AttnProcessor does and keeps the
    probabilities ([batch, queries, keys], averaged over heads)."""

    def __init__(self) -> None:
        self.maps: list[torch.Tensor] = []

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **_):
        cross = encoder_hidden_states is not None
        context = encoder_hidden_states if cross else hidden_states
        b = hidden_states.shape[0]
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(context))
        v = attn.head_to_batch_dim(attn.to_v(context))
        probs = attn.get_attention_scores(q, k, None)
        if cross:
            self.maps.append(probs.view(b, attn.heads, *probs.shape[1:]).mean(1))
        out = attn.batch_to_head_dim(torch.bmm(probs, v))
        return attn.to_out[1](attn.to_out[0](out))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, nargs="+", default=[Path("converted_models/toyworld")])
    ap.add_argument("--word", default="red", help="a colour or shape the scenes' first object has (default red)")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--t", type=int, nargs="+", default=[400, 700], help="timesteps (0..999)")
    ap.add_argument("--scene-seed", type=int, default=10**9)
    args = ap.parse_args()
    scenes, seed = [], args.scene_seed
    while len(scenes) < args.n:
        sc = world.scene_for_seed(seed)
        seed += 1
        if args.word in (sc.objects[0].colour, sc.objects[0].shape):
            scenes.append(sc)
    print(f"| model | t | {' | '.join(PARTS)} |")
    print("|---|---|" + "---|" * len(PARTS))
    for model in args.model:
        for sub in ("vae", "unet", "text_encoder", "tokenizer"):
            if not (model / sub).is_dir():
                raise SystemExit(f"{model}: no {sub}/ (expected a toy-world model folder)")
        tok = CLIPTokenizer.from_pretrained(str(model / "tokenizer"))
        enc = CLIPTextModel.from_pretrained(str(model / "text_encoder"), torch_dtype=torch.float32).eval()
        vae = AutoencoderKL.from_pretrained(str(model / "vae")).eval()
        unet = UNet2DConditionModel.from_pretrained(str(model / "unet")).eval()
        rec = Recorder()
        unet.set_attn_processor(rec)
        sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
        texts = [world.describe(sc) for sc in scenes]
        images = np.stack([np.asarray(world.render(sc, 64)) for sc in scenes])
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
            ids = tok(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
            ctx = enc(ids).last_hidden_state
        # each scene's token positions of the parts
        parts = np.zeros((len(scenes), 77), dtype=np.int64)
        for i, (sc, text) in enumerate(zip(scenes, texts)):
            words = text.split(" ")
            starts = word_starts(tok, text)
            parts[i, :] = 4
            parts[i, 1:starts[-1]] = 3
            parts[i, 0] = 0
            o = sc.objects[0]
            # the first object's phrase is "a <size> <colour> <shape>": words 2 and 3
            assert words[2] == o.colour and words[3] == o.shape, text
            parts[i, starts[2]:starts[3]] = 1
            parts[i, starts[3]:starts[4]] = 2
        onehot = torch.from_numpy(np.eye(len(PARTS))[parts]).float()  # [n, 77, parts]
        for t in args.t:
            rec.maps.clear()
            g = torch.Generator().manual_seed(t)
            noisy = sched.add_noise(z, torch.randn(z.shape, generator=g), torch.full((len(scenes),), t))
            with torch.no_grad():
                unet(noisy, t, ctx)
            total, layers = torch.zeros(len(PARTS)), 0
            for m in rec.maps:  # [n, q, 77]
                side = int(round(m.shape[1] ** 0.5))
                masks = torch.from_numpy(np.stack([world.object_mask(sc, side) for sc in scenes])).float().view(len(scenes), -1)
                if float(masks.sum()) == 0:
                    continue
                per_part = torch.einsum("nqk,nkp->nqp", m, onehot)  # share of each query's attention per part
                total += (per_part * masks[..., None]).sum((0, 1)) / masks.sum()
                layers += 1
            share = total / max(layers, 1)
            print(f"| {model} | {t} | " + " | ".join(f"{100 * float(s):.0f} %" for s in share) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
