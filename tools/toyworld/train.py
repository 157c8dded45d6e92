"""Trains the toy-world model family on the CPU and saves it in the real formats (npm run toyworld).

  converted_models/toyworld/             a Stable Diffusion 1.x-style pipeline folder: AutoencoderKL (f = 4,
                                         latents 4 x 16 x 16 at 64 px), CLIPTextModel with the real CLIP
                                         tokenizer (49,408 tokens), UNet2DConditionModel, DDIMScheduler (SD's)
  converted_models/toyworld/captioner/   BlipForConditionalGeneration + BlipProcessor (a WordPiece vocabulary of
                                         the world's words)

Stages (each seeded, each resumable: a finished stage's checkpoint in the work folder is reused unless --force):
  vae        AutoencoderKL on random 32 x 32 crops of the world's 64 x 64 images (L1 + MSE + a small KL);
             scaling_factor = 1 / std of the latents
  text+unet  CLIPTextModel and UNet2DConditionModel trained jointly with the DDPM noise-prediction loss on the
             latents (SD's scaled_linear schedule, 1000 steps), 10% of the captions dropped to "" for
             classifier-free guidance, an EMA of both kept and exported
  blip       BlipForConditionalGeneration, teacher-forced LM loss on "a picture of <description>"
  samples    DDIM samples of held-out descriptions (work/samples.png), a look at the text conditioning
  export     writes the folders above and a README with the losses and times; then verify: diffusers and
             transformers load them back (float32), sample one image and caption the bundled example

    python tools/toyworld/train.py [--stages vae,text+unet,blip,samples,export] [--force] [--quick]

A recipe variant of the text encoder and UNet only (the shipped VAE and captioner reused, so nothing else differs):
    python tools/toyworld/train.py --name text1 --text-layers 1 --reuse-from converted_models/toyworld \
        --stages vae,text+unet,export --out tmp/toyworld-text1
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tools" / "reference"))

import world  # noqa: E402

SD_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                    set_alpha_to_one=False, steps_offset=1, num_train_timesteps=1000, prediction_type="epsilon")
CLIP_MERGES = 49152 - 256 - 2  # CLIP's own count: 48,894 merges, 49,408 tokens
PROMPT = "a picture of"
HELD_OUT = 10**9  # evaluation seeds start here


# ---------------------------------------------------------------------------------------------- settings

def settings(quick: bool, scale: float = 1.0) -> dict:
    """Sizes and step counts (the --quick ones are for trying the command out in a few minutes)."""
    s = dict(
        n_images=16000,
        n_latents=16000,  # the UNet trains on the latents of the first n_latents images (encoding costs)
        vae=dict(channels=(32, 64, 64), steps=2500, batch=16, crop=32, lr=1e-3, kl=1e-6),
        text=dict(hidden=64, intermediate=256, layers=3, heads=4),
        # cross_attn: which resolution levels have cross-attention (SD 1.x's layout: every level but the lowest,
        # plus the mid block); fg_weight: extra loss weight on the latent pixels the objects cover
        unet=dict(channels=(48, 96, 96), layers_per_block=1, heads=4, steps=8000, batch=32, lr=1e-3,
                  ema=0.998, dropout=0.1, snr_gamma=5.0, cross_attn=(True, True, False), fg_weight=4.0),
        blip=dict(hidden=96, intermediate=384, vision_layers=3, text_layers=2, heads=4, patch=8, steps=9000,
                  batch=48, lr=1e-3, shape_weight=5.0),
    )
    for k in ("vae", "unet", "blip"):
        s[k]["steps"] = max(1, round(s[k]["steps"] * scale))
    if quick:
        s["n_images"] = 1200
        s["n_latents"] = 1200
        s["vae"]["steps"] = 60
        s["unet"]["steps"] = 60
        s["blip"]["steps"] = 60
    return s


# ---------------------------------------------------------------------------------------------- logging

class Log:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, *parts: object) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] " + " ".join(str(p) for p in parts)
        print(line, flush=True)
        with self.path.open("a") as f:
            f.write(line + "\n")


class Progress:
    """Prints loss (mean since the last print), it/s and the ETA every `every` steps."""

    def __init__(self, log: Log, name: str, total: int, start: int = 0, every: int = 50):
        self.log, self.name, self.total, self.every = log, name, total, every
        self.t0 = time.time()
        self.start = start
        self.losses: list[float] = []
        self.history: list[tuple[int, float]] = []

    def step(self, i: int, loss: float, extra: str = "") -> None:
        self.losses.append(loss)
        if (i + 1) % self.every == 0 or i + 1 == self.total:
            done = i + 1 - self.start
            rate = done / max(time.time() - self.t0, 1e-9)
            eta = (self.total - i - 1) / max(rate, 1e-9)
            mean = float(np.mean(self.losses))
            self.history.append((i + 1, mean))
            self.log(f"{self.name} step {i + 1}/{self.total} loss {mean:.5f} {rate:.2f} it/s "
                     f"ETA {eta / 60:.1f} min {extra}")
            self.losses = []

    @property
    def last(self) -> float:
        return self.history[-1][1] if self.history else float("nan")


class ThreadTuner:
    """Picks 1 or `max_threads` PyTorch threads as the machine's load allows, re-measured as training goes.

    On a shared 2-core machine a 2-thread step slows down many times over as soon as another process takes a
    core (every parallel region waits for the descheduled thread), while a 1-thread step only loses its share.
    Every `period` steps the other count is tried for `probe` steps and kept if its steps are faster.
    (Thread counts change the order of some float reductions, so a rerun matches to rounding, not bit for bit.)
    """

    def __init__(self, max_threads: int, period: int = 100, probe: int = 6):
        self.max = max_threads
        self.period, self.probe = period, probe
        self.current = max_threads
        self.t = time.time()
        self.times: dict[int, list[float]] = {1: [], max_threads: []}
        self.i = 0
        self.probing: int | None = None
        torch.set_num_threads(self.current)

    def tick(self) -> None:
        """Call once after every step."""
        now = time.time()
        dt, self.t = now - self.t, now
        if self.max <= 1:
            return
        self.i += 1
        n = torch.get_num_threads()
        self.times[n] = (self.times[n] + [dt])[-self.probe:]
        phase = self.i % self.period
        if self.probing is None and phase == self.probe + 2:
            self.probing = 1 if self.current != 1 else self.max
            self._set(self.probing)
        elif self.probing is not None and len(self.times[self.probing]) >= self.probe and \
                phase >= 2 * self.probe + 2:
            fast = lambda k: float(np.median(self.times[k]))  # noqa: E731
            self.current = self.probing if fast(self.probing) < fast(self.current) else self.current
            self.probing = None
            self._set(self.current)

    def _set(self, n: int) -> None:
        torch.set_num_threads(n)
        self.times[n] = []
        self.t = time.time()

    def __str__(self) -> str:
        return f"threads {torch.get_num_threads()}"


def lr_at(step: int, total: int, base: float, warmup: int = 100) -> float:
    """Linear warm-up, then cosine decay to 10% of the base rate."""
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(total - warmup, 1)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def autocast():
    # bfloat16 matmuls and convolutions (AMX / AVX-512 BF16 where the CPU has them); weights stay float32
    return torch.autocast("cpu", dtype=torch.bfloat16)


# ---------------------------------------------------------------------------------------------- data

def build_data(n: int, work: Path, log: Log) -> tuple[np.ndarray, list[dict], list[list[str]]]:
    """Images, scenes and captions of training seeds 0 .. n-1, cached in the work folder."""
    path = work / f"data-{n}.npz"
    meta = work / f"data-{n}.json"
    if path.exists() and meta.exists():
        images = np.load(path)["images"]
        m = json.loads(meta.read_text())
        return images, m["scenes"], m["captions"]
    t0 = time.time()
    images = np.zeros((n, 64, 64, 3), dtype=np.uint8)
    scenes, caps = [], []
    for seed in range(n):
        sc = world.scene_for_seed(seed)
        images[seed] = np.asarray(world.render(sc, 64))
        scenes.append(world.scene_to_dict(sc))
        caps.append(world.captions(sc, np.random.default_rng([seed, 1])))
    np.savez(path, images=images)
    meta.write_text(json.dumps({"scenes": scenes, "captions": caps}))
    log(f"data: {n} scenes rendered in {time.time() - t0:.0f} s")
    return images, scenes, caps


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float [N, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def save_grid(rows: list[torch.Tensor], path: Path, scale: int = 2) -> None:
    """rows of [N, 3, H, W] in [-1, 1] -> one PNG."""
    from PIL import Image
    grid = torch.cat([torch.cat(list(r.clamp(-1, 1)), dim=2) for r in rows], dim=1)
    arr = ((grid.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    img = Image.fromarray(arr)
    img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST).save(path)


# ---------------------------------------------------------------------------------------------- VAE

def make_vae(cfg: dict):
    from diffusers import AutoencoderKL
    ch = tuple(cfg["channels"])
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=ch,
        down_block_types=("DownEncoderBlock2D",) * len(ch), up_block_types=("UpDecoderBlock2D",) * len(ch),
        norm_num_groups=16, sample_size=64, scaling_factor=1.0, mid_block_add_attention=False,
    )


def train_vae(s: dict, images: np.ndarray, work: Path, log: Log, force: bool) -> dict:
    from diffusers import AutoencoderKL
    out = work / "vae"
    if (out / "config.json").exists() and not force:
        log("vae: reusing", out)
        return json.loads((work / "vae-report.json").read_text())
    cfg = s["vae"]
    torch.manual_seed(1)
    vae = make_vae(cfg)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg["lr"], weight_decay=0.0)
    g = torch.Generator().manual_seed(11)
    n = len(images)
    x_all = to_tensor(images)
    prog = Progress(log, "vae", cfg["steps"])
    log(f"vae: {sum(p.numel() for p in vae.parameters()) / 1e6:.2f} M params, {cfg['steps']} steps of "
        f"{cfg['batch']} crops {cfg['crop']} px")
    t0 = time.time()
    c = cfg["crop"]
    tuner = ThreadTuner(s["threads"])
    for step in range(cfg["steps"]):
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, cfg["steps"], cfg["lr"])
        idx = torch.randint(n, (cfg["batch"],), generator=g)
        ox = torch.randint(0, 64 - c + 1, (cfg["batch"],), generator=g)
        oy = torch.randint(0, 64 - c + 1, (cfg["batch"],), generator=g)
        x = torch.stack([x_all[i, :, y:y + c, xx:xx + c] for i, y, xx in zip(idx.tolist(), oy.tolist(), ox.tolist())])
        with autocast():
            post = vae.encode(x).latent_dist
            z = post.sample(generator=g)
            rec = vae.decode(z).sample.float()
        kl = post.kl().mean() / (c * c * 3)
        rec_loss = (rec - x).abs().mean() + (rec - x).pow(2).mean()
        loss = rec_loss + cfg["kl"] * kl * (c * c * 3)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        tuner.tick()
        prog.step(step, float(rec_loss.detach()), str(tuner))
    train_s = time.time() - t0
    vae.eval()
    # scaling factor from the latents of full images; reconstruction error on held-out scenes
    with torch.no_grad():
        z = torch.cat([vae.encode(to_tensor(images[i:i + 64])).latent_dist.mean for i in range(0, 512, 64)])
        std = float(z.std())
        held = np.stack([np.asarray(world.render(world.scene_for_seed(HELD_OUT + k))) for k in range(16)])
        xh = to_tensor(held)
        rec = vae.decode(vae.encode(xh).latent_dist.mean).sample.clamp(-1, 1)
        mse = float(((rec - xh) / 2).pow(2).mean())
    psnr = 10 * math.log10(1 / mse)
    vae.register_to_config(scaling_factor=1.0 / std)
    vae.save_pretrained(out, safe_serialization=True)
    save_grid([xh[:8], rec[:8], xh[8:], rec[8:]], work / "vae-reconstructions.png")
    report = dict(params=sum(p.numel() for p in vae.parameters()), steps=cfg["steps"], batch=cfg["batch"],
                  final_loss=prog.last, latent_std=std, scaling_factor=1.0 / std, heldout_psnr_db=psnr,
                  seconds=train_s)
    (work / "vae-report.json").write_text(json.dumps(report, indent=2))
    log(f"vae: done in {train_s / 60:.1f} min, latent std {std:.4f}, held-out PSNR {psnr:.2f} dB")
    return report


def encode_latents(images: np.ndarray, work: Path, log: Log) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and standard deviations (scaled) of every training image, cached."""
    from diffusers import AutoencoderKL
    path = work / f"latents-{len(images)}.pt"
    if path.exists() and path.stat().st_mtime > (work / "vae" / "config.json").stat().st_mtime:
        d = torch.load(path)
        return d["mean"].float(), d["std"].float()
    vae = AutoencoderKL.from_pretrained(work / "vae").eval()
    sf = vae.config.scaling_factor
    means, stds = [], []
    t0 = time.time()
    with torch.no_grad(), autocast():
        for i in range(0, len(images), 128):
            post = vae.encode(to_tensor(images[i:i + 128])).latent_dist
            means.append(post.mean.float() * sf)
            stds.append(post.std.float() * sf)
    mean, std = torch.cat(means), torch.cat(stds)
    torch.save({"mean": mean.half(), "std": std.half()}, path)
    log(f"latents: {len(images)} encoded in {time.time() - t0:.0f} s, mean std {float(std.mean()):.4f}")
    return mean, std


# ---------------------------------------------------------------------------------------------- text + UNet

def make_tokenizer(work: Path):
    from fixtures_models import clip_tokenizer
    return clip_tokenizer(work / "clip-tokenizer", CLIP_MERGES)


def make_text_encoder(cfg: dict, tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel
    n = len(tokenizer)
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=n, hidden_size=cfg["hidden"], intermediate_size=cfg["intermediate"],
        num_hidden_layers=cfg["layers"], num_attention_heads=cfg["heads"], max_position_embeddings=77,
        hidden_act="quick_gelu", bos_token_id=n - 2, eos_token_id=n - 1, pad_token_id=n - 1,
        projection_dim=cfg["hidden"],
    ))


def make_unet(cfg: dict, cross_dim: int):
    from diffusers import UNet2DConditionModel
    ch = tuple(cfg["channels"])
    xa = tuple(cfg.get("cross_attn", (False,) + (True,) * (len(ch) - 1)))
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in xa)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(xa))
    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=cfg["layers_per_block"],
        block_out_channels=ch, down_block_types=down, up_block_types=up, cross_attention_dim=cross_dim,
        attention_head_dim=cfg["heads"], norm_num_groups=16,
    )


def tokenize(tokenizer, texts: list[str]) -> torch.Tensor:
    return tokenizer(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    pe, p = list(ema.parameters()), [q.detach() for q in model.parameters()]
    torch._foreach_mul_(pe, decay)
    torch._foreach_add_(pe, p, alpha=1 - decay)


def object_weights(scenes: list[dict], work: Path, size: int = 16) -> torch.Tensor:
    """[N, 1, size, size]: the objects' coverage at latent resolution, grown by one latent pixel (cached)."""
    path = work / f"coverage-{len(scenes)}-{size}.pt"
    if path.exists():
        return torch.load(path).float()
    cov = np.stack([world.coverage_map(world.scene_from_dict(sc), size) for sc in scenes])
    t = torch.nn.functional.max_pool2d(torch.from_numpy(cov)[:, None], 3, stride=1, padding=1)
    torch.save(t.half(), path)
    return t


def train_text_unet(s: dict, caps: list[list[str]], scenes: list[dict], work: Path, log: Log, force: bool) -> dict:
    from diffusers import DDPMScheduler
    out = work / "unet"
    if (out / "config.json").exists() and (work / "text_encoder" / "config.json").exists() and not force:
        log("text+unet: reusing", out)
        return json.loads((work / "unet-report.json").read_text())
    cfg = s["unet"]
    images_n = min(s["n_latents"], len(caps))
    caps = caps[:images_n]
    fg = object_weights(scenes[:images_n], work) * cfg.get("fg_weight", 0.0) + 1.0
    mean, std = encode_latents(np.load(work / f"data-{s['n_images']}.npz")["images"][:images_n], work, log)
    tokenizer = make_tokenizer(work)
    t0 = time.time()
    k = len(caps[0])
    ids = tokenize(tokenizer, [c for cs in caps for c in cs]).view(images_n, k, 77)
    empty = tokenize(tokenizer, [""])[0]
    log(f"text+unet: {images_n * k} captions tokenised in {time.time() - t0:.0f} s")
    torch.manual_seed(2)
    text_encoder = make_text_encoder(s["text"], tokenizer)
    unet = make_unet(cfg, s["text"]["hidden"])
    # Training speed only (the saved models are the same): at these sizes the backward pass of PyTorch's CPU
    # flash-attention kernel costs ~4x that of the explicit softmax(QK^T)V, and was half of every step
    from diffusers.models.attention_processor import AttnProcessor
    unet.set_attn_processor(AttnProcessor())
    text_encoder.set_attn_implementation("eager")
    ema_t, ema_u = copy.deepcopy(text_encoder).eval(), copy.deepcopy(unet).eval()
    for m in (ema_t, ema_u):
        m.requires_grad_(False)
    sched = DDPMScheduler(**{k: v for k, v in SD_SCHEDULER.items() if k != "set_alpha_to_one"})
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=0.0, foreach=True)
    ckpt = work / "unet-ckpt.pt"
    g = torch.Generator().manual_seed(22)
    start = 0
    if ckpt.exists() and not force:
        st = torch.load(ckpt, weights_only=False)
        unet.load_state_dict(st["unet"]); text_encoder.load_state_dict(st["text"])
        ema_u.load_state_dict(st["ema_u"]); ema_t.load_state_dict(st["ema_t"])
        opt.load_state_dict(st["opt"]); g.set_state(st["gen"]); start = st["step"]
        log(f"text+unet: resuming at step {start}")
    log(f"text+unet: UNet {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M params, text encoder "
        f"{sum(p.numel() for p in text_encoder.parameters()) / 1e6:.2f} M, {cfg['steps']} steps of {cfg['batch']}")
    prog = Progress(log, "text+unet", cfg["steps"], start)
    t0 = time.time()
    tuner = ThreadTuner(s["threads"])
    for step in range(start, cfg["steps"]):
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, cfg["steps"], cfg["lr"])
        b = cfg["batch"]
        idx = torch.randint(images_n, (b,), generator=g)
        which = torch.randint(k, (b,), generator=g)
        drop = torch.rand(b, generator=g) < cfg["dropout"]
        tok = ids[idx, which]
        tok[drop] = empty
        lat = mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)
        noise = torch.randn(lat.shape, generator=g)
        t = torch.randint(0, 1000, (b,), generator=g)
        noisy = sched.add_noise(lat, noise, t)
        with autocast():
            enc = text_encoder(tok).last_hidden_state
            pred = unet(noisy, t, enc).sample.float()
        # min-SNR-gamma weighting (Hang et al. 2023) for epsilon prediction: min(SNR, gamma) / SNR per sample,
        # which moves the effort from the nearly clean timesteps to those that shape the image
        snr = sched.alphas_cumprod[t] / (1 - sched.alphas_cumprod[t])
        w = snr.clamp(max=cfg["snr_gamma"]) / snr if cfg.get("snr_gamma") else torch.ones_like(snr)
        # objects weigh (1 + fg_weight) x per latent pixel: the shapes, not the backgrounds' textures, are what
        # the text must control
        loss = (w * (fg[idx] * (pred - noise).pow(2)).mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(cfg["ema"], (1 + step) / (10 + step))
        ema_update(ema_u, unet, decay)
        ema_update(ema_t, text_encoder, decay)
        tuner.tick()
        prog.step(step, float(loss.detach()), str(tuner))
        if (step + 1) % 500 == 0 and step + 1 < cfg["steps"]:
            torch.save(dict(unet=unet.state_dict(), text=text_encoder.state_dict(), ema_u=ema_u.state_dict(),
                            ema_t=ema_t.state_dict(), opt=opt.state_dict(), gen=g.get_state(), step=step + 1),
                       ckpt)
    train_s = time.time() - t0
    ema_u.save_pretrained(out, safe_serialization=True)
    ema_t.save_pretrained(work / "text_encoder", safe_serialization=True)
    report = dict(unet_params=sum(p.numel() for p in unet.parameters()),
                  text_params=sum(p.numel() for p in text_encoder.parameters()), steps=cfg["steps"],
                  batch=cfg["batch"], final_loss=prog.last, seconds=train_s, history=prog.history)
    (work / "unet-report.json").write_text(json.dumps(report, indent=2))
    log(f"text+unet: done in {train_s / 60:.1f} min, final loss {prog.last:.5f}")
    return report


# ---------------------------------------------------------------------------------------------- BLIP

BLIP_WORDS = sorted(set(
    (f"{PROMPT} a an and on of to in the at picture background plain striped checkered mottled gradient "
     "top bottom left right centre small medium large " + " ".join(world.SHAPES) + " " + " ".join(world.COLOURS)
     + " " + " ".join(world.BACKGROUND_COLOURS)).split()))


def blip_vocab() -> list[str]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(".,!?'\"-:;()") + letters + ["##" + c for c in letters]
    for w in BLIP_WORDS:
        if w not in vocab:
            vocab.append(w)
    return vocab


def make_blip_processor(work: Path, size: int = 64):
    from transformers import BertTokenizer, BlipImageProcessor, BlipProcessor
    tmp = work / "bert"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "vocab.txt").write_text("\n".join(blip_vocab()) + "\n")
    tokenizer = BertTokenizer(str(tmp / "vocab.txt"), do_lower_case=True, model_max_length=512)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    return BlipProcessor(image_processor=BlipImageProcessor(size={"height": size, "width": size}), tokenizer=tokenizer)


def pixel_values(processor, images: np.ndarray) -> torch.Tensor:
    """The processor's normalisation of 64 px images (its resize to the same size is the identity)."""
    ip = processor.image_processor
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    m = torch.tensor(ip.image_mean).view(1, 3, 1, 1)
    sd = torch.tensor(ip.image_std).view(1, 3, 1, 1)
    return (x - m) / sd


def train_blip(s: dict, images: np.ndarray, scenes: list[dict], work: Path, log: Log, force: bool) -> dict:
    from transformers import BlipConfig, BlipForConditionalGeneration
    out = work / "captioner"
    if (out / "config.json").exists() and not force:
        log("blip: reusing", out)
        return json.loads((work / "blip-report.json").read_text())
    cfg = s["blip"]
    processor = make_blip_processor(work)
    tok = processor.tokenizer
    texts = [f"{PROMPT} {sc['description']}" for sc in scenes]
    enc = tok(texts, padding="longest", return_tensors="pt")
    ids, mask = enc.input_ids, enc.attention_mask
    unk = int((ids == tok.unk_token_id).sum())
    if unk:
        raise SystemExit(f"blip: {unk} caption tokens are [UNK]; the vocabulary misses a world word")
    ids[:, 0] = tok.bos_token_id
    labels = ids.masked_fill(mask == 0, -100)
    shape_ids = torch.tensor(tok.convert_tokens_to_ids(list(world.SHAPES)))
    torch.manual_seed(3)
    h = cfg["hidden"]
    config = BlipConfig(
        vision_config=dict(hidden_size=h, intermediate_size=cfg["intermediate"], num_hidden_layers=cfg["vision_layers"],
                           num_attention_heads=cfg["heads"], image_size=64, patch_size=cfg["patch"]),
        text_config=dict(vocab_size=len(tok), hidden_size=h, intermediate_size=cfg["intermediate"],
                         num_hidden_layers=cfg["text_layers"], num_attention_heads=cfg["heads"],
                         encoder_hidden_size=h, max_position_embeddings=48,
                         bos_token_id=tok.bos_token_id, sep_token_id=tok.sep_token_id,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id),
        projection_dim=h,
    )
    model = BlipForConditionalGeneration(config)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.01, foreach=True)
    g = torch.Generator().manual_seed(33)
    pv_all = pixel_values(processor, images)
    n = len(images)
    log(f"blip: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params, vocabulary {len(tok)}, "
        f"{cfg['steps']} steps of {cfg['batch']}")
    prog = Progress(log, "blip", cfg["steps"])
    t0 = time.time()
    tuner = ThreadTuner(s["threads"])
    for step in range(cfg["steps"]):
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, cfg["steps"], cfg["lr"])
        idx = torch.randint(n, (cfg["batch"],), generator=g)
        with autocast():
            logits = model(pixel_values=pv_all[idx], input_ids=ids[idx], attention_mask=mask[idx]).logits.float()
        # BLIP's LM loss (next token, label smoothing 0.1) with the shape words weighted up: the shape is the
        # one attribute a small ViT is slow to read from its 8 px patches, and the one an edit is about
        target = labels[idx][:, 1:]
        ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100,
                             label_smoothing=0.1, reduction="none").view(target.shape)
        wt = (target != -100).float() * (1 + (cfg["shape_weight"] - 1) * torch.isin(target, shape_ids).float())
        loss = (ce * wt).sum() / wt.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tuner.tick()
        prog.step(step, float(loss.detach()), str(tuner))
    train_s = time.time() - t0
    torch.set_num_threads(s["threads"])
    model.eval()
    acc = evaluate_blip(model, processor, 64, log)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    image_config = json.loads((out / "processor_config.json").read_text())["image_processor"]
    (out / "preprocessor_config.json").write_text(json.dumps(image_config, indent=2, sort_keys=True) + "\n")
    (out / "vocab.txt").write_bytes((work / "bert" / "vocab.txt").read_bytes())
    report = dict(params=sum(p.numel() for p in model.parameters()), steps=cfg["steps"], batch=cfg["batch"],
                  final_loss=prog.last, seconds=train_s, **acc)
    (work / "blip-report.json").write_text(json.dumps(report, indent=2))
    log(f"blip: done in {train_s / 60:.1f} min, {json.dumps(acc)}")
    return report


@torch.no_grad()
def evaluate_blip(model, processor, n: int, log: Log) -> dict:
    """Greedy captions (after the prompt) of n held-out scenes against their descriptions."""
    scenes = [world.scene_for_seed(HELD_OUT + k) for k in range(n)]
    imgs = np.stack([np.asarray(world.render(sc)) for sc in scenes])
    pv = pixel_values(processor, imgs)
    prompt = processor.tokenizer([PROMPT] * n, return_tensors="pt")
    outs = model.generate(pixel_values=pv, input_ids=prompt.input_ids, attention_mask=prompt.attention_mask,
                          max_new_tokens=30, num_beams=1)
    got = [t.strip() for t in processor.tokenizer.batch_decode(outs, skip_special_tokens=True)]
    exact = shape_ok = colour_ok = 0
    for sc, text in zip(scenes, got):
        want = f"{PROMPT} {world.describe(sc)}"
        exact += text == want
        o = sc.objects[0]
        words = text.split()
        shape_ok += o.shape in words
        colour_ok += o.colour in words
    for sc, text in list(zip(scenes, got))[:6]:
        log(f"blip: held-out '{world.describe(sc)}' -> '{text}'")
    return dict(heldout_exact=exact / n, heldout_shape=shape_ok / n, heldout_colour=colour_ok / n, heldout_n=n)


# ---------------------------------------------------------------------------------------------- samples

@torch.no_grad()
def sample_check(work: Path, log: Log, n: int = 8, steps: int = 25, scale: float = 5.0) -> None:
    """DDIM samples of held-out descriptions (a sanity look at the text conditioning)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel
    tokenizer = make_tokenizer(work)
    te = CLIPTextModel.from_pretrained(work / "text_encoder").eval()
    unet = UNet2DConditionModel.from_pretrained(work / "unet").eval()
    vae = AutoencoderKL.from_pretrained(work / "vae").eval()
    sched = DDIMScheduler(**SD_SCHEDULER)
    sched.set_timesteps(steps)
    scenes = [world.scene_for_seed(HELD_OUT + k) for k in range(n)]
    texts = [world.describe(sc) for sc in scenes]
    cond = te(tokenize(tokenizer, texts)).last_hidden_state
    unc = te(tokenize(tokenizer, [""] * n)).last_hidden_state
    g = torch.Generator().manual_seed(5)
    x = torch.randn((n, 4, 16, 16), generator=g)
    for t in sched.timesteps:
        e = unet(torch.cat([x, x]), t, torch.cat([unc, cond])).sample
        eu, ec = e.chunk(2)
        x = sched.step(eu + scale * (ec - eu), t, x).prev_sample
    imgs = vae.decode(x / vae.config.scaling_factor).sample
    real = to_tensor(np.stack([np.asarray(world.render(sc)) for sc in scenes]))
    save_grid([real, imgs], work / "samples.png")
    log("samples: work/samples.png (top: held-out scenes, bottom: DDIM samples of their descriptions)")


# ---------------------------------------------------------------------------------------------- export

def export(s: dict, work: Path, out: Path, log: Log, reports: dict, started: float) -> None:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel
    tokenizer = make_tokenizer(work)
    pipe = StableDiffusionPipeline(
        unet=UNet2DConditionModel.from_pretrained(work / "unet"),
        vae=AutoencoderKL.from_pretrained(work / "vae"),
        text_encoder=CLIPTextModel.from_pretrained(work / "text_encoder"),
        tokenizer=tokenizer, scheduler=DDIMScheduler(**SD_SCHEDULER),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    captioner = work / "captioner"
    if out.exists():
        shutil.rmtree(out)
    pipe.save_pretrained(out, safe_serialization=True)
    # the text encoder is mostly its 49,408-token embedding: float16 halves the folder
    pipe.text_encoder.to(torch.float16).save_pretrained(out / "text_encoder", safe_serialization=True)
    tok = out / "tokenizer"
    (tok / "tokenizer.json").unlink(missing_ok=True)
    for f in ("vocab.json", "merges.txt"):
        (tok / f).write_bytes((work / "clip-tokenizer" / f).read_bytes())
    (tok / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>"}, indent=2) + "\n")
    if captioner.exists():
        shutil.copytree(captioner, out / "captioner")
    for f in ("train.log", "samples.png", "vae-reconstructions.png"):
        if (work / f).exists():
            shutil.copy(work / f, out / f)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    write_readme(s, out, reports, time.time() - started, total, work)
    log(f"export: {out} ({total / 1e6:.1f} MB)")


def write_readme(s: dict, out: Path, reports: dict, seconds: float, total: int, work: Path) -> None:
    v, u, b = reports.get("vae", {}), reports.get("unet", {}), reports.get("blip", {})
    minutes = lambda r: f"{r.get('seconds', float('nan')) / 60:.1f} min"  # noqa: E731
    text = f"""# toyworld: a small Stable Diffusion 1.x-style model family trained on the toy world

Trained from scratch on the CPU by `npm run toyworld` (`tools/toyworld/train.py`, seeded) on {s['n_images']}
procedural 64 x 64 scenes of `tools/toyworld/world.py` (training seeds 0 .. {s['n_images'] - 1}; held-out
evaluation seeds start at 10**9). Real architectures and formats, tiny sizes: it edits toy-world images, nothing else.

| folder | model | size | training |
|---|---|---|---|
| `vae/` | AutoencoderKL, f = 4 (latents 4 x 16 x 16), channels {tuple(s['vae']['channels'])}, no mid attention, {v.get('params', 0) / 1e6:.2f} M params | float32 | {v.get('steps')} steps x {v.get('batch')} random 32 px crops, L1 + MSE + {s['vae']['kl']:g} KL, {minutes(v)}; held-out PSNR {v.get('heldout_psnr_db', float('nan')):.1f} dB; scaling_factor = 1 / latent std = {v.get('scaling_factor', float('nan')):.4f} |
| `text_encoder/` | CLIPTextModel, hidden {s['text']['hidden']}, {s['text']['layers']} layers, 77 positions, {u.get('text_params', 0) / 1e6:.2f} M params | float16 | jointly with the UNet |
| `tokenizer/` | the real CLIP BPE (49,408 tokens, open_clip's `bpe_simple_vocab_16e6.txt.gz`) | | |
| `unet/` | UNet2DConditionModel, channels {tuple(s['unet']['channels'])}, cross-attention at {", ".join(f"{16 >> k}x{16 >> k}" for k, a in enumerate(s['unet'].get('cross_attn', ())) if a)} and in the mid block, cross_attention_dim {s['text']['hidden']}, {u.get('unet_params', 0) / 1e6:.2f} M params | float32 | DDPM epsilon loss with min-SNR-{s['unet'].get('snr_gamma', 0):g} weighting and the objects' latent pixels weighted {1 + s['unet'].get('fg_weight', 0.0):g}x, SD's scaled_linear betas (0.00085 .. 0.012, 1000 steps), {u.get('steps')} steps x {u.get('batch')} on {s['n_latents']} scenes' latents, {s['unet']['dropout']:.0%} captions dropped to "", EMA weights; {minutes(u)}; final loss {u.get('final_loss', float('nan')):.4f} |
| `scheduler/` | DDIMScheduler with SD 1.x's config | | |
| `captioner/` | BlipForConditionalGeneration (ViT patch {s['blip']['patch']} at 64 px, BERT decoder, WordPiece vocabulary of the world's words), {b.get('params', 0) / 1e6:.2f} M params | float32 | teacher-forced LM loss on "a picture of <description>", {b.get('steps')} steps x {b.get('batch')}, {minutes(b)}; final loss {b.get('final_loss', float('nan')):.3f}; greedy held-out captions: exact {b.get('heldout_exact', float('nan')):.0%}, shape word {b.get('heldout_shape', float('nan')):.0%}, colour word {b.get('heldout_colour', float('nan')):.0%} |

Wall time on this machine's 2 cores (shared with other jobs; PyTorch 1 or 2 threads as the load allowed,
bfloat16 autocast): VAE {minutes(v)}, text encoder + UNet {minutes(u)}, BLIP {minutes(b)}; the invocation that
exported this folder ran {seconds / 60:.1f} min (data rendering, latent encoding and checks included; stages whose
checkpoints existed were reused). {total / 1e6:.1f} MB on disk. `train.log` is the training log.

{(work / "notes.md").read_text() if (work / "notes.md").exists() else ""}
Rebuild: `npm run toyworld` (or `bash tools/toyworld/run.sh --force`); check: `python tools/toyworld/check_world.py`.
"""
    (out / "README.md").write_text(text)


@torch.no_grad()
def verify(out: Path, log: Log) -> None:
    """Loads the exported folders back with diffusers / transformers (float16 text encoder read as float32),
    samples one image with StableDiffusionPipeline and captions the bundled example with BlipProcessor."""
    from diffusers import StableDiffusionPipeline
    from PIL import Image
    from transformers import BlipForConditionalGeneration, BlipProcessor
    pipe = StableDiffusionPipeline.from_pretrained(out, torch_dtype=torch.float32, safety_checker=None)
    dtypes = {p.dtype for m in (pipe.unet, pipe.vae, pipe.text_encoder) for p in m.parameters()}
    if dtypes != {torch.float32}:
        raise SystemExit(f"verify: diffusers loaded {dtypes}, expected float32 only")
    prompt = "a large red circle on a striped blue and beige background"
    img = pipe(prompt, num_inference_steps=25, guidance_scale=5.0, height=64, width=64,
               generator=torch.Generator().manual_seed(0)).images[0]
    img.resize((128, 128), Image.Resampling.NEAREST).save(out / "verify-sample.png")
    log(f"verify: diffusers loads {out} as float32; '{prompt}' sampled to verify-sample.png")
    cap = out / "captioner"
    if cap.exists():
        model = BlipForConditionalGeneration.from_pretrained(cap).eval()
        proc = BlipProcessor.from_pretrained(cap)
        example = ROOT / "assets" / "examples" / "toyworld.png"
        inputs = proc(images=Image.open(example).convert("RGB"), text=PROMPT, return_tensors="pt")
        ids = model.generate(**inputs, num_beams=3, max_length=30, min_length=10)
        log(f"verify: BLIP captions {example.name} as '{proc.decode(ids[0], skip_special_tokens=True)}'")


def reuse_models(src: Path, work: Path, log: Log) -> None:
    """Puts an exported folder's VAE and captioner into the work folder as finished stages (a recipe variant that
    changes only the text encoder and UNet then differs from `src` in nothing else)."""
    for name, report in (("vae", "vae-report.json"), ("captioner", "blip-report.json")):
        if not (src / name / "config.json").exists():
            raise SystemExit(f"--reuse-from {src}: no {name}/config.json there (expected an exported toyworld folder)")
        if (work / name / "config.json").exists():
            continue
        shutil.copytree(src / name, work / name)
        (work / report).write_text(json.dumps({"reused_from": str(src / name)}))
        log(f"{name}: copied from {src / name}")


# ---------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", default="vae,text+unet,blip,samples,export")
    ap.add_argument("--force", action="store_true", help="retrain the stages even if their checkpoints exist")
    ap.add_argument("--quick", action="store_true", help="tiny data and step counts, to try the command out")
    ap.add_argument("--work", default=str(HERE / ".work"))
    ap.add_argument("--out", default=None, help="export folder (default converted_models/toyworld, or <work>/export with --quick / --name)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every stage's step count (prototyping)")
    ap.add_argument("--name", default=None, help="work sub-folder (default: full, or quick with --quick)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", action="store_true", help="also write DDIM samples of held-out descriptions")
    ap.add_argument("--text-layers", type=int, default=None,
                    help="text encoder layers (default 3): a recipe variant, trained into its own --name")
    ap.add_argument("--reuse-from", type=Path, default=None,
                    help="an exported toyworld folder whose VAE and captioner a variant reuses (so that only the "
                         "text encoder and UNet differ from it): copied into the work folder unless there already")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    s = settings(args.quick, args.scale)
    s["threads"] = args.threads
    if args.text_layers is not None:
        if args.text_layers < 1:
            raise SystemExit(f"--text-layers must be at least 1, got {args.text_layers}")
        s["text"]["layers"] = args.text_layers
    if (args.text_layers is not None or args.reuse_from is not None) and not (args.name or args.quick):
        raise SystemExit("--text-layers / --reuse-from train a variant: give it its own --name, so that it neither "
                         "reuses the shipped recipe's work folder (full) nor overwrites converted_models/toyworld")
    work = Path(args.work) / (args.name or ("quick" if args.quick else "full"))
    work.mkdir(parents=True, exist_ok=True)
    log = Log(work / "train.log")
    stages = [x.strip() for x in args.stages.split(",") if x.strip()]
    for st in stages:
        if st not in ("vae", "text+unet", "blip", "export", "samples", "verify"):
            raise SystemExit(f"unknown stage {st!r} (expected vae, text+unet, blip, samples, export, verify)")
    out = Path(args.out) if args.out else (work / "export" if args.quick or args.name else ROOT / "converted_models" / "toyworld")
    started = time.time()
    log(f"toyworld training: stages {stages}, settings {json.dumps(s)}")
    if args.reuse_from is not None:
        reuse_models(args.reuse_from, work, log)
    images, scenes, caps = build_data(s["n_images"], work, log)
    reports: dict = {}
    if "vae" in stages:
        reports["vae"] = train_vae(s, images, work, log, args.force)
    if "text+unet" in stages:
        reports["unet"] = train_text_unet(s, caps, scenes, work, log, args.force)
    if "blip" in stages:
        reports["blip"] = train_blip(s, images, scenes, work, log, args.force)
    if args.samples or "samples" in stages:
        sample_check(work, log)
    if "export" in stages:
        for name, f in (("vae", "vae-report.json"), ("unet", "unet-report.json"), ("blip", "blip-report.json")):
            if name not in reports and (work / f).exists():
                reports[name] = json.loads((work / f).read_text())
        export(s, work, out, log, reports, started)
    if "verify" in stages or "export" in stages:
        verify(out, log)
    log(f"toyworld training: finished in {(time.time() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
