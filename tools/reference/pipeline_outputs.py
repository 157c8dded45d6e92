"""End-to-end reference of pix2pix-zero: diffusers' StableDiffusionPix2PixZeroPipeline on the tiny pipeline
converted_models/tiny-sd, with a given caption and sentences, the VAE posterior mean as the image latent, and
the authors' defaults (negative prompt = caption, guidance scale 5, cross-attention guidance 0.1).

Cases: noise regularisation off, and on (seeded generator; every roll shift torch draws is recorded so the
TypeScript side can replay them, and the seed is saved so it can draw them itself).

Writes spec/fixtures/reference/pipeline/:
  input<size>.png           the input images (32 x 32 with maps, its 4 x 4 latents keep them small; 64 x 64)
  <case>.safetensors        image (the preprocessed input, NCHW), image_latents (sf * posterior mean),
                            caption_embeds, source_embeds, target_embeds (mean sentence embeddings), direction,
                            inverted (x_T), edited_latents, edited_image (decoded, unclamped), shifts (I64),
                            ref_maps.step<i>.layer<j> for every step of reg_off (the maps the edit pass is
                            guided towards, in the UNet's forward order)
  cases.json                caption, sentences, settings
"""
import contextlib
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from diffusers import (AutoencoderKL, DDIMInverseScheduler, DDIMScheduler, StableDiffusionPix2PixZeroPipeline,
                       UNet2DConditionModel)
from diffusers.pipelines.deprecated.stable_diffusion_variants import pipeline_stable_diffusion_pix2pix_zero as p2pz
from transformers import CLIPTextModel, CLIPTokenizer

from fixtures_models import randomize

CAPTION = "a photo of a cat sitting on a sofa"
SOURCE = ["a cat", "a photo of a cat", "a small cat on a bed", "a black cat in the garden", "a cat sleeping"]
TARGET = ["a dog", "a photo of a dog", "a small dog on a bed", "a brown dog in the park", "a dog running"]
STEPS = 5
CASES = {
    "reg_off": dict(lambda_auto_corr=0.0, lambda_kl=0.0, num_reg_steps=0, num_auto_corr_rolls=0, seed=0, size=32),
    "reg_on": dict(lambda_auto_corr=20.0, lambda_kl=20.0, num_reg_steps=2, num_auto_corr_rolls=2, seed=3, size=64),
    # An SD 2.x-style pipeline: v-prediction, linear projections, per-block heads, upcast attention, SD 2.x's
    # tokenizer conventions (pad "!") and a gelu text encoder of another width.
    # The VAE posterior sampled with the same generator that then draws the roll shifts, as diffusers' invert().
    "vae_sample": dict(lambda_auto_corr=20.0, lambda_kl=20.0, num_reg_steps=1, num_auto_corr_rolls=2, seed=11, size=64,
                       vae="sample"),
    "sd2_v": dict(lambda_auto_corr=20.0, lambda_kl=20.0, num_reg_steps=2, num_auto_corr_rolls=2, seed=5, size=64,
                  model="spec/fixtures/models/tiny-sd2"),
}


def input_image(size: int) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size] * (32 / size)
    r = 128 + 100 * np.sin(xx / 4.0)
    g = 128 + 90 * np.cos(yy / 3.0)
    b = np.where((xx - 15) ** 2 + (yy - 17) ** 2 < 80, 230, 40)
    return Image.fromarray(np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8), "RGB")


def make_sd2_pipeline(root: Path) -> Path:
    """spec/fixtures/models/tiny-sd2: a small SD 2.x-style UNet of its own, with the VAE of tiny-sd and the gelu
    text encoder + SD 2.x tokenizer of clip-gelu-sd2 (copied, so that the folder stands alone)."""
    out = root / "spec" / "fixtures" / "models" / "tiny-sd2"
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=24, attention_head_dim=(2, 4), use_linear_projection=True, upcast_attention=True,
        norm_num_groups=8,
    )
    randomize(unet, 6)
    unet.save_pretrained(out / "unet", safe_serialization=True)
    for part, src in [("vae", root / "converted_models" / "tiny-sd" / "vae"),
                      ("text_encoder", root / "spec" / "fixtures" / "models" / "clip-gelu-sd2" / "text_encoder"),
                      ("tokenizer", root / "spec" / "fixtures" / "models" / "clip-gelu-sd2" / "tokenizer")]:
        (out / part).mkdir(parents=True, exist_ok=True)
        for f in sorted(src.iterdir()):
            (out / part / f.name).write_bytes(f.read_bytes())
    DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                  set_alpha_to_one=False, steps_offset=1, prediction_type="v_prediction").save_pretrained(out / "scheduler")
    (out / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "feature_extractor": [None, None], "requires_safety_checker": False,
        "safety_checker": [None, None], "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}, indent=2) + "\n")
    return out


@contextlib.contextmanager
def recorded_randint():
    """Records every value torch.randint draws inside the block (diffusers' regularisation roll shifts) in the
    yielded list, so our side can replay them."""
    shifts: list[int] = []
    real_randint = torch.randint

    def recording_randint(*args, **kwargs):
        v = real_randint(*args, **kwargs)
        shifts.append(int(v.item()))
        return v

    torch.randint = recording_randint
    try:
        yield shifts
    finally:
        torch.randint = real_randint


def load(root: Path, sd: Path) -> StableDiffusionPix2PixZeroPipeline:
    scheduler = DDIMScheduler.from_pretrained(sd / "scheduler")
    return StableDiffusionPix2PixZeroPipeline(
        vae=AutoencoderKL.from_pretrained(sd / "vae"),
        text_encoder=CLIPTextModel.from_pretrained(sd / "text_encoder"),
        tokenizer=CLIPTokenizer.from_pretrained(sd / "tokenizer"),
        unet=UNet2DConditionModel.from_pretrained(sd / "unet"),
        scheduler=scheduler,
        feature_extractor=None,
        safety_checker=None,
        inverse_scheduler=DDIMInverseScheduler.from_config(scheduler.config),
        caption_generator=None,
        caption_processor=None,
        requires_safety_checker=False,
    )


@torch.no_grad()
def encode_inputs(pipe: StableDiffusionPix2PixZeroPipeline, image_file: Path):
    """The fixtures' common inputs: (image tensor, sf * VAE posterior mean, source and target sentence embeddings,
    the caption's embedding)."""
    image = pipe.image_processor.preprocess(Image.open(image_file))
    image_latents = pipe.vae.encode(image).latent_dist.mean * pipe.vae.config.scaling_factor
    return (image, image_latents, pipe.get_embeds(SOURCE), pipe.get_embeds(TARGET),
            pipe.encode_prompt(CAPTION, "cpu", 1, False)[0])


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    """Writes a fixture's tensors (contiguous copies) as safetensors."""
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, str(path))
    return path


def write_cases(out: Path, meta: dict) -> Path:
    """Writes a fixture folder's cases.json (sorted keys, so a rebuild gives the same bytes)."""
    js = out / "cases.json"
    js.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return js


def build(root: Path) -> list[Path]:
    out = root / "spec" / "fixtures" / "reference" / "pipeline"
    out.mkdir(parents=True, exist_ok=True)
    written = [make_sd2_pipeline(root)]
    meta = {"caption": CAPTION, "source": SOURCE, "target": TARGET, "steps": STEPS, "guidance_scale": 5.0,
            "cross_attention_guidance_amount": 0.1, "negative_prompt": "caption", "cases": CASES}
    for name, c in CASES.items():
        pipe = load(root, root / c.get("model", "converted_models/tiny-sd"))
        pipe.set_progress_bar_config(disable=True)
        img_path = out / f"input{c['size']}.png"
        input_image(c["size"]).save(img_path, format="PNG", optimize=False, compress_level=9)
        written.append(img_path)
        image, image_latents, source_embeds, target_embeds, caption_embeds = encode_inputs(pipe, img_path)

        with recorded_randint() as shifts:
            inverted = pipe.invert(
                CAPTION, image=image if c.get("vae") == "sample" else image_latents, num_inference_steps=STEPS,
                generator=torch.Generator().manual_seed(c["seed"]), output_type="pt",
                lambda_auto_corr=c["lambda_auto_corr"], lambda_kl=c["lambda_kl"],
                num_reg_steps=c["num_reg_steps"], num_auto_corr_rolls=c["num_auto_corr_rolls"],
            ).latents

        # Record the reference maps the edit pass is guided towards, in the order the loss sees them.
        targets: list[torch.Tensor] = []
        real_compute = p2pz.Pix2PixZeroL2Loss.compute_loss

        def recording_compute(self, predictions, t):
            targets.append(t.detach().clone())
            return real_compute(self, predictions, t)

        p2pz.Pix2PixZeroL2Loss.compute_loss = recording_compute
        try:
            edited = pipe(
                prompt=CAPTION, negative_prompt=CAPTION, source_embeds=source_embeds, target_embeds=target_embeds,
                num_inference_steps=STEPS, guidance_scale=5.0, cross_attention_guidance_amount=0.1,
                latents=inverted, output_type="latent",
            ).images
        finally:
            p2pz.Pix2PixZeroL2Loss.compute_loss = real_compute
        with torch.no_grad():
            decoded = pipe.vae.decode(edited / pipe.vae.config.scaling_factor).sample
        layers = len(targets) // STEPS
        tensors = {
            "image": image, "image_latents": image_latents, "caption_embeds": caption_embeds,
            "source_embeds": source_embeds, "target_embeds": target_embeds,
            "direction": pipe.construct_direction(source_embeds, target_embeds),
            "inverted": inverted, "edited_latents": edited, "edited_image": decoded,
            "shifts": torch.tensor(shifts, dtype=torch.int64),
        }
        if name == "reg_off":
            for step in range(STEPS):
                for j in range(layers):
                    tensors[f"ref_maps.step{step}.layer{j}"] = targets[step * layers + j]
        meta[f"{name}.attention_layers"] = layers
        written.append(save_tensors(out / f"{name}.safetensors", tensors))
    return written + [write_cases(out, meta)]


if __name__ == "__main__":
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for p in build(Path(__file__).resolve().parents[2]):
        print(p)
