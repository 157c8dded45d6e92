"""Held-out end-to-end check: a Stable Diffusion pipeline configuration drawn from a seed (UNet blocks, widths,
heads, layers, VAE depth, scheduler spacing, image size), random weights, run through diffusers'
StableDiffusionPix2PixZeroPipeline and through our `pix2pix-zero edit`, with the same caption, sentences, seed and
settings (VAE mean, noise regularisation on, negative prompt = caption). Prints the relative errors of the
inverted noise and the edited latents. Nothing under the repository is written.

With `--direct-inversion` the edit is `pix2pix-zero edit --direct-inversion --reg-steps 0` against Direct Inversion
on diffusers' components (`direct_inversion.py`: the reference pass walks the inversion trajectory, the edit gets
its offsets), and the whole trajectory z_0..z_T is compared too.

Usage: tools/reference/.venv/bin/python tools/reference/heldout.py [--seed N] [--backend wasm|cpu|tensorflow]
[--direct-inversion] [--keep DIR] (`npm run build` first; the text encoder and tokenizer are tiny-sd's).
"""
import argparse
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
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel  # noqa: E402

import direct_inversion  # noqa: E402
from fixtures_models import randomize  # noqa: E402
from pipeline_outputs import load  # noqa: E402

SOURCE = ["a horse", "a horse in a field", "a white horse running", "a photo of a horse", "two horses eating grass"]
TARGET = ["a zebra", "a zebra in a field", "a zebra running", "a photo of a zebra", "two zebras eating grass"]
CAPTION = "a brown horse standing in a field"


def draw_config(seed: int) -> dict:
    r = random.Random(seed)
    levels = r.choice([2, 3])
    width = r.choice([8, 16])
    channels = [width * m for m in [1, 2, 2, 3][:levels]]
    cross = [r.random() < 0.7 for _ in range(levels)]
    cross[0] = True
    heads = r.choice([2, 4]) if r.random() < 0.5 else [r.choice([2, 4]) for _ in range(levels)]
    vae_levels = r.choice([2, 3])
    latent = r.choice([8, 12]) if levels == 3 or vae_levels == 2 else r.choice([4, 6, 8, 10])  # image sides: multiples of 8
    return {
        "unet": dict(sample_size=latent, layers_per_block=r.choice([1, 2]), block_out_channels=channels,
                     down_block_types=["CrossAttnDownBlock2D" if c else "DownBlock2D" for c in cross],
                     up_block_types=["CrossAttnUpBlock2D" if c else "UpBlock2D" for c in reversed(cross)],
                     cross_attention_dim=32, attention_head_dim=heads, norm_num_groups=4,
                     use_linear_projection=r.random() < 0.5, upcast_attention=r.random() < 0.5,
                     flip_sin_to_cos=r.random() < 0.8, freq_shift=r.choice([0, 1])),
        "vae": dict(block_out_channels=[8 * (1 + (i > 0)) for i in range(vae_levels)], layers_per_block=r.choice([1, 2]),
                    norm_num_groups=4, scaling_factor=r.choice([0.18215, 0.13025])),
        "scheduler": dict(timestep_spacing=r.choice(["leading", "trailing"]), set_alpha_to_one=r.random() < 0.5,
                          steps_offset=r.choice([0, 1]), prediction_type=r.choice(["epsilon", "v_prediction"])),
        "image_size": latent * 2 ** (vae_levels - 1),
        "steps": r.choice([4, 5, 6]),
    }


def build_pipeline(cfg: dict, out: Path, seed: int) -> None:
    shutil.copytree(ROOT / "converted_models" / "tiny-sd", out)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(in_channels=4, out_channels=4, **{k: tuple(v) if isinstance(v, list) else v
                                                                  for k, v in cfg["unet"].items()})
    randomize(unet, seed + 1)
    shutil.rmtree(out / "unet")
    unet.save_pretrained(out / "unet", safe_serialization=True)
    v = cfg["vae"]
    n = len(v["block_out_channels"])
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
                        up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(v["block_out_channels"]),
                        layers_per_block=v["layers_per_block"], latent_channels=4, norm_num_groups=v["norm_num_groups"],
                        sample_size=cfg["image_size"], scaling_factor=v["scaling_factor"])
    randomize(vae, seed + 2)
    shutil.rmtree(out / "vae")
    vae.save_pretrained(out / "vae", safe_serialization=True)
    DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                  **cfg["scheduler"]).save_pretrained(out / "scheduler")


def input_image(size: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] * (32 / size)
    img = np.stack([120 + 100 * np.sin(xx / 5), 90 + 80 * np.cos(yy / 4),
                    np.where((xx - 14) ** 2 + (yy - 17) ** 2 < 60, 220, 30)], -1)
    return Image.fromarray(np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8), "RGB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--backend", default="wasm")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    ap.add_argument("--direct-inversion", action="store_true",
                    help="edit with Direct Inversion and plain DDIM inversion (--reg-steps 0) on both sides")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = args.keep or Path(tempfile.mkdtemp(prefix="heldout-"))
    shutil.rmtree(work / "model", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    cfg = draw_config(args.seed)
    print(json.dumps(cfg))
    build_pipeline(cfg, work / "model", args.seed)
    input_image(cfg["image_size"], args.seed).save(work / "input.png")
    (work / "source.txt").write_text("\n".join(SOURCE) + "\n")
    (work / "target.txt").write_text("\n".join(TARGET) + "\n")
    steps, gen_seed = cfg["steps"], 100 + args.seed

    pipe = load(ROOT, work / "model")
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        image = pipe.image_processor.preprocess(Image.open(work / "input.png"))
        latents = pipe.vae.encode(image).latent_dist.mean * pipe.vae.config.scaling_factor
        source, target = pipe.get_embeds(SOURCE), pipe.get_embeds(TARGET)
    reg_steps = 0 if args.direct_inversion else 2
    generator = torch.Generator().manual_seed(gen_seed)
    reg = dict(lambda_auto_corr=20.0, lambda_kl=20.0, num_reg_steps=reg_steps, num_auto_corr_rolls=2)
    trajectory = None
    if args.direct_inversion:
        trajectory = direct_inversion.invert_trajectory(pipe, CAPTION, latents, steps, generator, **reg)
        inverted = trajectory[-1]
        edited, _ = direct_inversion.edit(pipe, CAPTION, CAPTION, source, target, trajectory, steps, 5.0, 0.1, direct=True)
    else:
        inverted = pipe.invert(CAPTION, image=latents, num_inference_steps=steps, output_type="pt", generator=generator,
                               **reg).latents
        edited = pipe(prompt=CAPTION, negative_prompt=CAPTION, source_embeds=source, target_embeds=target,
                      num_inference_steps=steps, guidance_scale=5.0, cross_attention_guidance_amount=0.1,
                      latents=inverted, output_type="latent").images

    cmd = ["node", str(ROOT / "bin" / "pix2pix-zero.js"), "edit", str(work / "input.png"), "--model", str(work / "model"),
           "--caption", CAPTION, "--source-sentences", str(work / "source.txt"), "--target-sentences", str(work / "target.txt"),
           "--steps", str(steps), "--reg-steps", str(reg_steps), "--ac-rolls", "2", "--seed", str(gen_seed), "--no-cache",
           "--backend", args.backend, "--save-inversion", str(work / "inversion.safetensors"),
           "--save-latents", str(work / "edited.safetensors"), "--out", str(work / "edited.png"), "--quiet"]
    if args.direct_inversion:
        cmd.append("--direct-inversion")
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        return 1
    saved = load_file(str(work / "inversion.safetensors"))
    ours_inv = saved["latent"]
    ours_edit = load_file(str(work / "edited.safetensors"))["latent"]

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).abs().max() / b.abs().max())

    e_inv, e_edit = rel(ours_inv, inverted), rel(ours_edit, edited)
    errors = [e_inv, e_edit]
    text = f"inverted x_T {e_inv:.2e}, edited latents {e_edit:.2e}"
    if trajectory is not None:
        if "trajectory" not in saved:
            print("heldout: our inversion file has no trajectory", file=sys.stderr)
            return 1
        e_traj = rel(saved["trajectory"], torch.cat(trajectory))
        errors.append(e_traj)
        text = f"trajectory z_0..z_{steps} {e_traj:.2e}, " + text + " (Direct Inversion)"
    print(f"seed {args.seed}: {text} (max relative error)")
    if args.keep is None:
        shutil.rmtree(work)
    return 0 if max(errors) < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
