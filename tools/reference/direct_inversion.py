"""Direct Inversion (Ju et al., PnPInversion) for pix2pix-zero, written over the components of diffusers'
StableDiffusionPix2PixZeroPipeline (its UNet with the pipeline's own Pix2PixZeroAttnProcessor, its
Pix2PixZeroL2Loss, a DDIMScheduler per pass and its invert()), as the reference our TypeScript is compared with.
Neither diffusers nor the authors' repository has it; this module follows the rule of the issue:

    z_0 = sf * VAE(image); z_k = the latent after inversion step k (k = 1..T); ref = edit = z_T
    for i = 0..T-1:  r = DDIM step of the reference pass from z_{T-i};  d_i = z_{T-1-i} - r
                     e = guided DDIM step of the edit pass (exactly diffusers' second loop);  edit = e + d_i

`edit(..., direct=False)` is diffusers' own __call__ loop re-run from these components (the fixture builder checks
it reproduces the pipeline bit for bit, so the only difference with direct=True is the rule above).
"""
from __future__ import annotations

from typing import Callable

import torch
from diffusers import DDIMScheduler
from diffusers.pipelines.deprecated.stable_diffusion_variants import pipeline_stable_diffusion_pix2pix_zero as p2pz


class LocalBlend:
    """Prompt-to-Prompt's LocalBlend (Hertz et al.; its `LocalBlend.__call__`) for pix2pix-zero's edit pass, with
    the mask from the reference pass's maps only (pix2pix-zero has no target prompt). At step i, over the maps the
    edit pass is guided towards (every attn2 layer, the conditional CFG half): the mean over layers and heads of
    the maps of the tokens `tokens` (summed), each layer resized bilinearly to the latent; summed over the steps so
    far; max-pooled (kernel 2k + 1, k = `dilation`, by default max(1, round(min(h, w) / 16)): Prompt-to-Prompt's
    3 x 3 at 16 x 16 in latent pixels; 0: no max-pool), divided by its maximum, > threshold;
    edit = ref + mask * (edit - ref), from step int(start * T) on (Prompt-to-Prompt's `start_blend`: the steps
    before it are left as they are, their maps still summed)."""

    def __init__(self, tokens: list[int], threshold: float, batch: int, on_mask=None, dilation: int | None = None,
                 start: float = 0.0, steps: int = 1):
        self.tokens, self.threshold, self.batch, self.on_mask, self.dilation = tokens, threshold, batch, on_mask, dilation
        self.first = int(start * steps)
        self.sum = None

    def __call__(self, step: int, maps: list[torch.Tensor], latents: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        h, w = latents.shape[2:]
        layers = []
        for m in maps:
            q, n = m.shape[1], m.shape[2]
            rw = int(round((q * w / h) ** 0.5))
            word = m.reshape(self.batch, -1, q, n)[-1].mean(0)[:, self.tokens].sum(-1).reshape(1, 1, q // rw, rw)
            layers.append(torch.nn.functional.interpolate(word, size=(h, w), mode="bilinear", align_corners=False))
        step_map = torch.stack(layers).mean(0)
        self.sum = step_map if self.sum is None else self.sum + step_map
        if step < self.first:
            return latents
        k = max(1, round(min(h, w) / 16)) if self.dilation is None else self.dilation
        pooled = torch.nn.functional.max_pool2d(self.sum, 2 * k + 1, 1, padding=k) if k > 0 else self.sum
        mask = (pooled / pooled.max() > self.threshold).float()
        if self.on_mask is not None:
            self.on_mask(step, mask)
        return reference + mask * (latents - reference)


def overlay(decoded: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The input image's own pixels outside the last blend mask, after decoding (as inpainting pipelines'
    `VaeImageProcessor.apply_overlay`, with a soft edge): M = the [1, 1, h, w] mask resized bilinearly
    (align_corners=False) to the image; image + M * (decoded - image), both [1, 3, H, W] in [-1, 1], unclamped."""
    m = torch.nn.functional.interpolate(mask, size=tuple(image.shape[2:]), mode="bilinear", align_corners=False)
    return image + m * (decoded - image)


class SelfAttentionReplace(p2pz.Pix2PixZeroAttnProcessor):
    """Prompt-to-Prompt's self-attention replacement for pix2pix-zero's edit pass, as an attn1 processor: the
    reference pass records the self-attention probabilities of layers with at most `max_queries` queries at the
    steps `state.record` allows; the edit pass's noise prediction (called with timestep None) uses them at the
    timestep `state.replay` names. The guidance forward (with a loss) keeps its own."""

    def __init__(self, name: str, state: dict):
        super().__init__(is_pix2pix_zero=False)
        self.name, self.state = name, state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, timestep=None, loss=None):
        n = hidden_states.shape[1]
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(hidden_states))
        v = attn.head_to_batch_dim(attn.to_v(hidden_states))
        s = self.state
        if timestep is None and s["replay"] is not None and (self.name, s["replay"]) in s["maps"]:
            probs = s["maps"][(self.name, s["replay"])]
        else:
            probs = attn.get_attention_scores(q, k, None)
            if timestep is not None and loss is None and s["record"] and n <= s["max_queries"]:
                s["maps"][(self.name, int(timestep))] = probs.detach()
        return attn.to_out[1](attn.to_out[0](attn.batch_to_head_dim(torch.bmm(probs, v))))


class CrossAttentionReplace(p2pz.Pix2PixZeroAttnProcessor):
    """Prompt-to-Prompt's cross-attention replacement for pix2pix-zero's edit pass, as an attn2 processor that is
    also pix2pix-zero's own: the reference pass (called with a timestep and no loss) records its cross-attention
    probabilities at the steps `state["cross_record"]` allows; the edit pass's noise prediction (timestep None) uses
    them at the timestep `state["cross_replay"]` names, in both CFG halves (as the self-attention replacement). The
    guidance forward (with a loss) is pix2pix-zero's."""

    def __init__(self, name: str, state: dict):
        super().__init__(is_pix2pix_zero=True)
        self.name, self.state = name, state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, timestep=None, loss=None):
        s = self.state
        if timestep is None and s["cross_replay"] is not None and (self.name, s["cross_replay"]) in s["cross_maps"]:
            v = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
            probs = s["cross_maps"][(self.name, s["cross_replay"])]
            return attn.to_out[1](attn.to_out[0](attn.batch_to_head_dim(torch.bmm(probs, v))))
        if timestep is not None and loss is None and s["cross_record"]:
            q = attn.head_to_batch_dim(attn.to_q(hidden_states))
            k = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
            s["cross_maps"][(self.name, int(timestep))] = attn.get_attention_scores(q, k, None).detach()
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, timestep, loss)


def blend_tokens_of(tokenizer, caption: str, words: list[str], attributes: set[str] = frozenset()) -> list[int]:
    """The caption's token positions (0 = start token) of each word; for an attribute word, of the token after it
    instead (the thing it is said of), unless the attribute ends the caption."""
    ids = tokenizer(caption).input_ids
    found = set()
    for word in words:
        w = tokenizer(word, add_special_tokens=False).input_ids
        for j in range(1, len(ids) - len(w)):  # content tokens only: not the start and end tokens
            if ids[j:j + len(w)] == w:
                if word.strip().lower() in attributes and j + len(w) < len(ids) - 1:
                    found.add(j + len(w))
                else:
                    found.update(range(j, j + len(w)))
    return sorted(p for p in found if p < tokenizer.model_max_length)


def invert_trajectory(pipe, caption: str, image, steps: int, generator: torch.Generator, **reg) -> list[torch.Tensor]:
    """diffusers' pipe.invert(), with every latent of the walk recorded: [z_0, z_1, ..., z_T]. `image` is the
    image latents (sf * posterior mean) or an image tensor (then invert() samples the posterior)."""
    trajectory: list[torch.Tensor] = []
    sched = pipe.inverse_scheduler
    real_step = sched.step

    def recording_step(model_output, timestep, sample, *args, **kwargs):
        if not trajectory:
            trajectory.append(sample.detach().clone())
        out = real_step(model_output, timestep, sample, *args, **kwargs)
        trajectory.append(out.prev_sample.detach().clone())
        return out

    sched.step = recording_step
    try:
        inverted = pipe.invert(caption, image=image, num_inference_steps=steps, generator=generator, output_type="pt", **reg).latents
    finally:
        del sched.step
    assert len(trajectory) == steps + 1 and torch.equal(trajectory[-1], inverted)
    return trajectory


@torch.no_grad()
def edit(pipe, caption: str, negative_prompt: str | None, source_embeds: torch.Tensor, target_embeds: torch.Tensor,
         trajectory: list[torch.Tensor], steps: int, guidance_scale: float, cross_attention_guidance_amount: float,
         direct: bool = True, on_reference_maps: Callable[[int, list[torch.Tensor]], None] | None = None,
         blend_tokens: list[int] | None = None, blend_threshold: float = 0.3, on_mask: Callable[[int, torch.Tensor], None] | None = None,
         blend_dilation: int | None = None, self_attention: float = 0.0, self_attention_max_queries: int = 256,
         cross_attention: float = 0.0, blend_start: float = 0.0):
    """Both passes from z_T; returns (edited latents, reference latents). With direct=True the reference pass walks
    the trajectory and the edit gets the offsets d_i. on_reference_maps(i, maps) sees the maps the edit pass of
    step i is guided towards (every attn2 layer in the UNet's order)."""
    device = "cpu"
    cfg = guidance_scale > 1.0
    prompt_embeds, negative_embeds = pipe.encode_prompt(caption, device, 1, cfg, negative_prompt)
    if cfg:
        prompt_embeds = torch.cat([negative_embeds, prompt_embeds])
    unet = p2pz.prepare_unet(pipe.unet)
    # self-attention injection in the first floor(self_attention * T) steps (Prompt-to-Prompt's self_replace_steps)
    inject_steps = int(self_attention * steps + 1e-9)
    sa = {"maps": {}, "record": False, "replay": None, "max_queries": self_attention_max_queries}
    # cross-attention replacement in the first floor(cross_attention * T) steps (Prompt-to-Prompt's cross_replace_steps)
    cross_steps = int(cross_attention * steps + 1e-9)
    sa |= {"cross_maps": {}, "cross_record": False, "cross_replay": None}
    if inject_steps > 0 or cross_steps > 0:
        procs = dict(unet.attn_processors)
        unet.set_attn_processor({
            name: SelfAttentionReplace(name, sa) if "attn1" in name and inject_steps > 0 else CrossAttentionReplace(name, sa) if "attn2" in name and cross_steps > 0 else p
            for name, p in procs.items()
        })
    ref_sched = DDIMScheduler.from_config(pipe.scheduler.config)
    edit_sched = DDIMScheduler.from_config(pipe.scheduler.config)
    ref_sched.set_timesteps(steps, device=device)
    edit_sched.set_timesteps(steps, device=device)
    T = steps

    def combine(noise_pred):
        if not cfg:
            return noise_pred
        u, c = noise_pred.chunk(2)
        return u + guidance_scale * (c - u)

    # Reference pass: records the maps of every step (the processors keep them per timestep) and the offsets.
    ref = trajectory[T].clone()
    offsets = []
    ref_steps = []  # the reference latent after each step (what local blending keeps outside its mask)
    for i, t in enumerate(ref_sched.timesteps):
        sa["record"] = i < inject_steps
        sa["cross_record"] = i < cross_steps
        inp = torch.cat([ref] * 2) if cfg else ref
        noise_pred = unet(inp, t, encoder_hidden_states=prompt_embeds, cross_attention_kwargs={"timestep": t}).sample
        r = ref_sched.step(combine(noise_pred), t, ref).prev_sample
        if direct:
            offsets.append(trajectory[T - 1 - i] - r)
            ref = trajectory[T - 1 - i].clone()
        else:
            ref = r
        ref_steps.append(ref)

    # Edit pass: diffusers' second loop (the direction is added to the conditional half; without CFG to the only
    # half, where diffusers' `prompt_embeds_edit[1:2]` would add it nowhere).
    direction = pipe.construct_direction(source_embeds, target_embeds)
    prompt_embeds_edit = prompt_embeds.clone()
    half = 1 if cfg else 0
    prompt_embeds_edit[half:half + 1] += direction
    latents = trajectory[T].clone()
    blender = LocalBlend(blend_tokens, blend_threshold, 2 if cfg else 1, on_mask, blend_dilation,
                         blend_start, len(edit_sched.timesteps)) if blend_tokens else None
    for i, t in enumerate(edit_sched.timesteps):
        inp = torch.cat([latents] * 2) if cfg else latents
        x_in = inp.detach().clone()
        x_in.requires_grad = True
        opt = torch.optim.SGD([x_in], lr=cross_attention_guidance_amount)
        targets: list[torch.Tensor] = []
        real_compute = p2pz.Pix2PixZeroL2Loss.compute_loss

        def recording_compute(self, predictions, target):
            targets.append(target.detach().clone())
            return real_compute(self, predictions, target)

        p2pz.Pix2PixZeroL2Loss.compute_loss = recording_compute
        try:
            with torch.enable_grad():
                loss = p2pz.Pix2PixZeroL2Loss()
                unet(x_in, t, encoder_hidden_states=prompt_embeds_edit.detach(), cross_attention_kwargs={"timestep": t, "loss": loss})
                loss.loss.backward(retain_graph=False)
                opt.step()
        finally:
            p2pz.Pix2PixZeroL2Loss.compute_loss = real_compute
        if on_reference_maps is not None:
            on_reference_maps(i, targets)
        sa["replay"] = int(t) if i < inject_steps else None
        sa["cross_replay"] = int(t) if i < cross_steps else None
        noise_pred = unet(x_in.detach(), t, encoder_hidden_states=prompt_embeds_edit, cross_attention_kwargs={"timestep": None}).sample
        sa["replay"] = sa["cross_replay"] = None
        latents = x_in.detach().chunk(2)[0] if cfg else x_in.detach()
        latents = edit_sched.step(combine(noise_pred), t, latents).prev_sample
        if direct:
            latents = latents + offsets[i]
        if blend_tokens:
            latents = blender(i, targets, latents, ref_steps[i])
    return latents, ref
