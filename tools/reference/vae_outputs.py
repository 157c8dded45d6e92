"""Reference outputs of diffusers' AutoencoderKL (the VAE of Stable Diffusion) for lib/models/vae.

Models:
  tiny_sd   converted_models/tiny-sd/vae (4 blocks, factor 8, mid-block attention, quant convs, sf 0.18215)
  variant   a second small VAE written here to spec/fixtures/reference/vae/variant/ (config.json + safetensors):
            2 blocks (factor 2), 2 layers per block, 3 latent channels, 4 groups, no mid-block attention, no
            quant_conv / post_quant_conv, scaling_factor 0.5, random weights (norms included) from a fixed seed.

Writes spec/fixtures/reference/vae/<model>.safetensors, every tensor NCHW float32 as diffusers returns it:
  image      [2, 3, H, W] input images in [-1, 1] (smooth patterns plus noise; H != W to catch transposes)
  mean       posterior mean          (vae.encode(image).latent_dist.mean)
  logvar     posterior log-variance  (clamped to [-30, 20] as diffusers does)
  noise      torch.randn(mean.shape, generator=torch.Generator().manual_seed(SAMPLE_SEED))
  sample     latent_dist.sample(generator=torch.Generator().manual_seed(SAMPLE_SEED)) = mean + std * noise
  latents    [2, C, h, w] unscaled latents drawn from a fixed seed (the decoder's input)
  decoded    vae.decode(latents).sample (unclamped)
  roundtrip  vae.decode(mean).sample: image -> posterior mean -> image (vae(image) with sample_posterior=False)
  seed       [1] int64: SAMPLE_SEED
and spec/fixtures/reference/vae/randn.safetensors: `n<count>_seed<s>` = torch.randn(count,
generator=torch.Generator().manual_seed(s)) for counts on both of PyTorch's paths (< 16 elements: double
Box-Muller; >= 16: float Box-Muller in blocks of 16, the last block redrawn when the count is not a multiple), and
`shape_2x4x4x6_seed<s>`, the posterior's NCHW noise shape.
Every file is byte-identical on a rerun.
"""
import json
import math
from pathlib import Path

import torch
from safetensors.torch import save_file

from diffusers import AutoencoderKL

SAMPLE_SEED = 1234
VARIANT = dict(
    in_channels=3, out_channels=3, latent_channels=3, layers_per_block=2, block_out_channels=(8, 16),
    down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4,
    sample_size=16, scaling_factor=0.5, mid_block_add_attention=False, use_quant_conv=False,
    use_post_quant_conv=False,
)


def images(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Smooth colour patterns plus a little noise, in [-1, 1], NCHW."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    out = []
    for b in range(batch):
        r = torch.sin(xx / (3.0 + b) + 0.5 * b)
        gr = torch.cos(yy / (2.5 + b))
        bl = torch.where((xx - width / 3) ** 2 + (yy - height / 2) ** 2 < (height / 3) ** 2, 0.8, -0.6)
        img = torch.stack([r, gr, bl]) * 0.85 + 0.15 * torch.rand((3, height, width), generator=g) - 0.075
        out.append(img.clamp(-1, 1))
    return torch.stack(out).contiguous()


def randomize(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(math.prod(p.shape[1:])))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def variant_model(dest: Path) -> tuple[AutoencoderKL, list[Path]]:
    torch.manual_seed(0)
    vae = AutoencoderKL(**VARIANT)
    randomize(vae, 7)
    dest.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in sorted(vae.state_dict().items())}
    save_file(state, str(dest / "diffusion_pytorch_model.safetensors"))
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(VARIANT.items())}
    config = {"_class_name": "AutoencoderKL", **config}
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    # Read back what was written, as a user of the folder would.
    return AutoencoderKL.from_pretrained(dest).eval(), [dest / "config.json", dest / "diffusion_pytorch_model.safetensors"]


@torch.no_grad()
def outputs(vae: AutoencoderKL, height: int, width: int, seed: int) -> dict[str, torch.Tensor]:
    image = images(2, height, width, seed)
    posterior = vae.encode(image).latent_dist
    noise = torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(SAMPLE_SEED))
    sample = posterior.sample(generator=torch.Generator().manual_seed(SAMPLE_SEED))
    latents = torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(seed + 100))
    decoded = vae.decode(latents).sample
    roundtrip = vae.decode(posterior.mean).sample
    forward = vae(image, sample_posterior=False).sample
    assert torch.equal(forward, roundtrip)
    assert torch.allclose(sample, posterior.mean + posterior.std * noise, rtol=0, atol=1e-6)
    out = dict(image=image, mean=posterior.mean, logvar=posterior.logvar, noise=noise, sample=sample,
               latents=latents, decoded=decoded, roundtrip=roundtrip)
    out = {k: v.detach().to(torch.float32).contiguous() for k, v in out.items()}
    out["seed"] = torch.tensor([SAMPLE_SEED], dtype=torch.int64)
    return out


RANDN_CASES = [(1, 0), (7, 3), (15, 1234), (16, 0), (37, 5), (200, 1234)]


def randn_draws() -> dict[str, torch.Tensor]:
    out = {}
    for count, seed in RANDN_CASES:
        out[f"n{count}_seed{seed}"] = torch.randn(count, generator=torch.Generator().manual_seed(seed))
    out[f"shape_2x4x4x6_seed{SAMPLE_SEED}"] = torch.randn((2, 4, 4, 6), generator=torch.Generator().manual_seed(SAMPLE_SEED))
    return {k: v.contiguous() for k, v in out.items()}


def build(root: Path) -> list[Path]:
    out_dir = root / "spec" / "fixtures" / "reference" / "vae"
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    tiny = AutoencoderKL.from_pretrained(root / "converted_models" / "tiny-sd" / "vae").eval()
    path = out_dir / "tiny_sd.safetensors"
    save_file(outputs(tiny, 32, 48, 11), str(path))
    written.append(path)

    variant, files = variant_model(out_dir / "variant")
    written += files
    path = out_dir / "variant.safetensors"
    save_file(outputs(variant, 12, 10, 12), str(path))
    written.append(path)

    path = out_dir / "randn.safetensors"
    save_file(randn_draws(), str(path))
    written.append(path)
    return written
