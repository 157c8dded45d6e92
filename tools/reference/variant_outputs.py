"""A tiny pipeline saved by diffusers with only fp16 variant files, and what diffusers reads from it.

Loads converted_models/tiny-sd, casts it to float16 and saves it with `save_pretrained(variant="fp16")` into
spec/fixtures/models/tiny-sd-fp16/, the UNet sharded (`diffusion_pytorch_model.safetensors.index.fp16.json` and
`diffusion_pytorch_model.fp16-0000k-of-0000n.safetensors` shards), the other components in one
`*.fp16.safetensors` file each: every form diffusers and transformers write a variant in. Then loads that folder
back with `from_pretrained(variant="fp16", torch_dtype=float32)` and writes the text embeddings of a few prompts to
spec/fixtures/reference/variant/embeddings.safetensors (with the prompts in prompts.json), so the tests check
that we read what diffusers reads, and how far the fp16 weights move the embeddings from the float32 folder's.
"""
import json
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import save_file

PROMPTS = ["a photo of a cat", "a dog running on the beach", "an oil painting of a red car"]


def build(root: Path) -> list[Path]:
    src = root / "converted_models" / "tiny-sd"
    dest = root / "spec" / "fixtures" / "models" / "tiny-sd-fp16"
    ref = root / "spec" / "fixtures" / "reference" / "variant"
    ref.mkdir(parents=True, exist_ok=True)
    pipe = StableDiffusionPipeline.from_pretrained(src, safety_checker=None, requires_safety_checker=False)
    pipe.to(torch.float16)
    if dest.exists():
        for p in sorted(dest.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    pipe.save_pretrained(dest, variant="fp16", safe_serialization=True)
    # The UNet again, sharded: the variant index and shards.
    (dest / "unet" / "diffusion_pytorch_model.fp16.safetensors").unlink()
    pipe.unet.save_pretrained(dest / "unet", variant="fp16", safe_serialization=True, max_shard_size="300KB")
    loaded = StableDiffusionPipeline.from_pretrained(dest, variant="fp16", torch_dtype=torch.float32,
                                                     safety_checker=None, requires_safety_checker=False)
    assert loaded.unet.dtype == torch.float32
    with torch.no_grad():
        ids = loaded.tokenizer(PROMPTS, padding="max_length", max_length=loaded.tokenizer.model_max_length,
                               truncation=True, return_tensors="pt").input_ids
        emb = loaded.text_encoder(ids)[0].contiguous()
    out = ref / "embeddings.safetensors"
    save_file({"embeddings": emb}, out)
    prompts = ref / "prompts.json"
    prompts.write_text(json.dumps({"prompts": PROMPTS, "unet_files": sorted(p.name for p in (dest / "unet").iterdir())}, indent=2) + "\n")
    return sorted(p for p in dest.rglob("*") if p.is_file()) + [out, prompts]
