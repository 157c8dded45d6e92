"""Reference of local blending for pix2pix-zero (direct_inversion.LocalBlend: Prompt-to-Prompt's LocalBlend with the
mask from the reference pass's maps, over diffusers' pipeline components) on the tiny pipelines, 5 steps.

Cases, all at 64 px (8 x 8 latents) with threshold 0.8 (the random tiny models attend almost uniformly: lower
thresholds give all-ones masks, which test nothing; the builder refuses those): with Direct Inversion and CFG
(tiny-sd, the word "cat"), without Direct Inversion on the SD 2.x-style v-prediction pipeline (tiny-sd2, "sofa"),
with Direct Inversion without CFG (guidance scale 1, tiny-sd, "cat"), from the third step on (start 0.4), without the mask's dilation (tiny-sd,
"cat" and "sofa"), with the overlay of the decoded edit on the input image (lb_di_overlay), and for an attribute word (tiny-sd, "red" in "a photo of a red cat sitting on a sofa": the mask
of "cat", undilated). The token positions are found by direct_inversion.blend_tokens_of with transformers'
tokenizer; the tests find them with ours and compare.

Writes spec/fixtures/reference/local_blend/:
  <case>.safetensors   image_latents (z_0), caption_embeds, direction, trajectory ([T + 1, c, h, w]),
                       edited_latents (with local blending and / or self- and cross-attention injection), unblended_latents
                       (the same edit without either),
                       mask.step<i> ([1, 1, h, w] of 0 / 1: the mask of each blended step i); with the overlay
                       also input_image, decoded_image (the edited latents decoded) and overlaid_image
                       (direct_inversion.overlay of the two with the last mask), [1, 3, H, W] in [-1, 1]
  cases.json           caption, sentences, settings, each case's token positions
"""
from pathlib import Path

import torch

import direct_inversion as di
from pipeline_outputs import CAPTION, SOURCE, TARGET, encode_inputs, load, save_tensors, write_cases

STEPS = 5
IMAGES = {32: "spec/fixtures/reference/pipeline/input32.png", 64: "spec/fixtures/reference/pipeline/input64.png"}
CASES = {
    "lb_di": dict(guidance_scale=5.0, xa=0.1, size=64, direct=True, words=["cat"], threshold=0.8),
    "lb_sd2_v_plain": dict(guidance_scale=5.0, xa=0.1, size=64, direct=False, words=["sofa"], threshold=0.8,
                           model="spec/fixtures/models/tiny-sd2"),
    "lb_di_no_cfg": dict(guidance_scale=1.0, xa=0.1, size=64, direct=True, words=["cat"], threshold=0.8),
    # Prompt-to-Prompt's start_blend: the first int(0.4 * 5) = 2 steps unblended, their maps still in the mask
    "lb_di_start": dict(guidance_scale=5.0, xa=0.1, size=64, direct=True, words=["cat"], threshold=0.8, blend_start=0.4),
    "lb_di_no_dilation": dict(guidance_scale=5.0, xa=0.1, size=64, direct=True, words=["cat", "sofa"], threshold=0.8,
                              dilation=0),
    # self-attention injection (Prompt-to-Prompt's self-attention replacement) in the first 3 of 5 steps, with the
    # blend and Direct Inversion, and alone on the v-prediction pipeline (no blend, no Direct Inversion)
    "si_di_lb": dict(guidance_scale=5.0, xa=0.1, size=64, direct=True, words=["cat"], threshold=0.8, self_attention=0.6),
    "si_sd2_v_plain": dict(guidance_scale=5.0, xa=0.1, size=64, direct=False, words=[], threshold=0.3, self_attention=0.4,
                           model="spec/fixtures/models/tiny-sd2"),
    # cross-attention injection (Prompt-to-Prompt's cross-attention replacement) in the first 3 of 5 steps with the
    # blend and Direct Inversion; in the first 2 on the v-prediction pipeline alone; in every step with self-attention
    # injection and Direct Inversion, without CFG
    "ci_di_lb": dict(guidance_scale=5.0, xa=0.1, size=64, direct=True, words=["cat"], threshold=0.8, cross_attention=0.6),
    "ci_sd2_v_plain": dict(guidance_scale=5.0, xa=0.1, size=64, direct=False, words=[], threshold=0.3, cross_attention=0.4,
                           model="spec/fixtures/models/tiny-sd2"),
    "ci_si_di_no_cfg": dict(guidance_scale=1.0, xa=0.1, size=64, direct=True, words=[], threshold=0.3, self_attention=0.4,
                            cross_attention=1.0),
    # an attribute word (a colour): its mask is that of the thing after it ("cat"), undilated, as the library blends
    # a colour edit; a caption of its own
    # the overlay (the input's pixels outside the last mask, after decoding): the lb_di edit, decoded
    "lb_di_overlay": dict(guidance_scale=5.0, xa=0.1, size=64, direct=True, words=["cat"], threshold=0.8, overlay=True),
    "lb_attribute": dict(guidance_scale=5.0, xa=0.1, size=64, direct=True, words=["red"], attributes=["red"], threshold=0.8,
                         dilation=0, caption="a photo of a red cat sitting on a sofa"),
}


def build(root: Path) -> list[Path]:
    out = root / "spec" / "fixtures" / "reference" / "local_blend"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    meta = {"caption": CAPTION, "source": SOURCE, "target": TARGET, "steps": STEPS, "images": IMAGES,
            "negative_prompt": "caption", "cases": {}}
    for name, c in CASES.items():
        pipe = load(root, root / c.get("model", "converted_models/tiny-sd"))
        pipe.set_progress_bar_config(disable=True)
        image, image_latents, source_embeds, target_embeds, caption_embeds = encode_inputs(pipe, root / IMAGES[c["size"]])
        caption = c.get("caption", CAPTION)
        if caption != CAPTION:
            caption_embeds = pipe.encode_prompt(caption, "cpu", 1, False)[0]
        # plain DDIM inversion (no regularisation): the blend is what is tested here
        trajectory = di.invert_trajectory(pipe, caption, image_latents, STEPS, torch.Generator().manual_seed(0),
                                          lambda_auto_corr=0.0, lambda_kl=0.0, num_reg_steps=0, num_auto_corr_rolls=0)
        tokens = di.blend_tokens_of(pipe.tokenizer, caption, c["words"], frozenset(c.get("attributes", ())))
        assert tokens or not c["words"], f"{name}: the caption has none of {c['words']}"
        args = dict(caption=caption, negative_prompt=caption, source_embeds=source_embeds, target_embeds=target_embeds,
                    trajectory=trajectory, steps=STEPS, guidance_scale=c["guidance_scale"],
                    cross_attention_guidance_amount=c["xa"], direct=c["direct"])
        masks: dict[str, torch.Tensor] = {}
        edited, _ = di.edit(pipe, **args, blend_tokens=tokens or None, blend_threshold=c["threshold"], blend_dilation=c.get("dilation"),
                            on_mask=lambda i, m: masks.__setitem__(f"mask.step{i}", m.clone()),
                            self_attention=c.get("self_attention", 0.0), cross_attention=c.get("cross_attention", 0.0),
                            blend_start=c.get("blend_start", 0.0))
        unblended, _ = di.edit(pipe, **args)  # without the blend and the attention injections
        fractions = [float(m.mean()) for m in masks.values()]
        # a test of the blend needs masks that keep part of the latent and edit part of it
        assert not tokens or any(0 < f < 1 for f in fractions), f"{name}: every mask is all 0 or all 1 ({fractions})"
        meta["cases"][name] = {**c, "tokens": tokens, "mask_fractions": [round(f, 4) for f in fractions]}
        tensors = {"image_latents": image_latents, "caption_embeds": caption_embeds,
                   "direction": pipe.construct_direction(source_embeds, target_embeds),
                   "trajectory": torch.cat(trajectory, 0), "edited_latents": edited, "unblended_latents": unblended, **masks}
        if c.get("overlay"):
            with torch.no_grad():
                decoded = pipe.vae.decode(edited / pipe.vae.config.scaling_factor, return_dict=False)[0]
            last = masks[f"mask.step{STEPS - 1}"]
            tensors |= {"input_image": image, "decoded_image": decoded, "overlaid_image": di.overlay(decoded, image, last)}
        written.append(save_tensors(out / f"{name}.safetensors", tensors))
    return written + [write_cases(out, meta)]
