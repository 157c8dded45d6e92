"""Full-size test subjects, built on demand: Stable Diffusion pipeline folders and a BLIP captioner with the real
architectures and configs and random weights from a fixed seed, saved by diffusers / transformers as they save the
real models (safetensors, float32). They are too large to commit (about 4 to 5 GB each); they land in `.fullsize/`
(ignored by git) unless --out says otherwise, and a subject already built with the same seed is kept.

  sd1   SD 1.x (the v1-5 configs): UNet2DConditionModel 860 M parameters (320-640-1280-1280, 8 heads, 768-wide
        context), AutoencoderKL 84 M (128-256-512-512), CLIPTextModel ViT-L/14 123 M (12 layers, 768 wide,
        quick_gelu), the real CLIP BPE tokenizer (49,408 tokens; vocab.json + merges.txt), DDIM epsilon.
  sd2   SD 2.x (the 2-1 configs): the UNet with use_linear_projection, per-block heads (5, 10, 20, 20), upcast
        attention and a 1024-wide context; the OpenCLIP ViT-H text tower (23 layers, 1024 wide, gelu); DDIM
        v-prediction; same VAE and tokenizer.
  blip  BLIP base captioning (Salesforce/blip-image-captioning-base's config): ViT-B/16 at 384 px + a 12-layer
        BERT decoder, the real 30,522-token uncased BERT vocabulary, 247 M parameters.

Usage: tools/reference/.venv/bin/python tools/reference/full_size.py [sd1|sd2|blip ...] [--seed N] [--out DIR]
(or `npm run fixtures:full-size -- sd1`); prints the folder of each subject.
"""
import argparse
import gzip
import json
import shutil
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel  # noqa: E402
from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor,  # noqa: E402
                          BlipProcessor, CLIPTextConfig, CLIPTextModel)

from fixtures_models import SD_SCHEDULER, clip_tokenizer, randomize  # noqa: E402

# Merges of the real CLIP tokenizer: 49,408 tokens = 2 x 256 byte tokens + 48,894 merges + 2 specials.
CLIP_MERGES = 48894

SD1_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                block_out_channels=(320, 640, 1280, 1280),
                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32)
SD2_UNET = dict(SD1_UNET, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
                upcast_attention=True)
VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
           up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
           latent_channels=4, norm_num_groups=32, sample_size=512, scaling_factor=0.18215)
SD1_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
                bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
SD2_TEXT = dict(SD1_TEXT, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
                hidden_act="gelu", projection_dim=512)
SUBJECTS = {
    "sd1": dict(unet=SD1_UNET, text=SD1_TEXT, scheduler=SD_SCHEDULER),
    "sd2": dict(unet=SD2_UNET, text=SD2_TEXT, scheduler=dict(SD_SCHEDULER, prediction_type="v_prediction")),
}


def stamp_matches(out: Path, stamp: dict) -> bool:
    f = out / "full_size.json"
    return f.exists() and json.loads(f.read_text()) == stamp


def build_sd(name: str, out: Path, seed: int) -> None:
    spec = SUBJECTS[name]
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**spec["unet"])
    randomize(unet, seed + 1)
    vae = AutoencoderKL(**VAE)
    randomize(vae, seed + 2)
    text = CLIPTextModel(CLIPTextConfig(**spec["text"]))
    randomize(text, seed + 3)
    tokenizer = clip_tokenizer(out.parent / f".{name}-tokenizer", num_merges=CLIP_MERGES)
    assert len(tokenizer) == 49408, len(tokenizer)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                   scheduler=DDIMScheduler(**spec["scheduler"]), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out, safe_serialization=True)
    # The hub's SD folders ship the slow tokenizer's files beside (or instead of) tokenizer.json.
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(out.parent / f".{name}-tokenizer" / f, out / "tokenizer" / f)
    shutil.rmtree(out.parent / f".{name}-tokenizer", ignore_errors=True)


def build_blip(out: Path, seed: int) -> None:
    vocab = gzip.decompress((ROOT / "spec/fixtures/tokenizers/bert/vocab.txt.gz").read_bytes()).decode()
    tmp = out.parent / ".blip-vocab"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "vocab.txt").write_text(vocab)
    tokenizer = BertTokenizer(str(tmp / "vocab.txt"), do_lower_case=True, model_max_length=512)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    processor = BlipProcessor(image_processor=BlipImageProcessor(
        size={"height": 384, "width": 384}, image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711]), tokenizer=tokenizer)
    config = BlipConfig(
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=384, patch_size=16),
        text_config=dict(vocab_size=30524, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                         num_attention_heads=12, encoder_hidden_size=768, max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, sep_token_id=tokenizer.sep_token_id,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id),
        projection_dim=512)
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(config).eval()
    randomize(model, seed + 1)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("subjects", nargs="*", default=["sd1"], choices=["sd1", "sd2", "blip"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / ".fullsize")
    args = ap.parse_args()
    torch.set_num_threads(2)
    for name in args.subjects:
        folder = args.out / (f"{name}-seed{args.seed}" if name != "blip" else f"blip-base-seed{args.seed}")
        stamp = {"subject": name, "seed": args.seed, "builder": "tools/reference/full_size.py", "version": 1}
        if stamp_matches(folder, stamp):
            print(folder)
            continue
        t0 = time.time()
        tmp = folder.with_name(folder.name + ".building")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if name == "blip":
            build_blip(tmp, args.seed)
        else:
            build_sd(name, tmp, args.seed)
        (tmp / "full_size.json").write_text(json.dumps(stamp) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        print(f"built {name} (seed {args.seed}) in {time.time() - t0:.0f} s, {size / 1e9:.2f} GB", file=sys.stderr)
        print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
