"""Reference of Direct Inversion for pix2pix-zero (tools/reference/direct_inversion.py over diffusers' pipeline
components) on the tiny pipelines, 5 steps, 32 x 32 inputs (64 x 64 for tiny-sd2: its noise regularisation gives
NaN in diffusers on 4 x 4 latents).

Cases: noise regularisation off with CFG (tiny-sd), regularisation on with CFG on the SD 2.x-style v-prediction
pipeline (tiny-sd2), and regularisation on without CFG (guidance scale 1, tiny-sd).

Writes spec/fixtures/reference/direct_inversion/:
  <case>.safetensors   image_latents (z_0), caption_embeds, direction, shifts (I64, the roll shifts torch drew),
                       trajectory ([T + 1, c, h, w]: z_0..z_T), edited_latents, reconstruction (the reference
                       pass's result: z_0), plain_edited_latents (the same edit without Direct Inversion),
                       ref_maps.step<i>.layer<j> (di_reg_off only: the maps the edit pass of step i is guided
                       towards, first CFG half only: with the caption as negative prompt both halves are the same,
                       which the builder checks; this halves the file)
  cases.json           caption, sentences, settings
Before writing, it checks that direct_inversion.edit(direct=False) reproduces diffusers' pipeline exactly.
"""
from pathlib import Path

import torch

import direct_inversion as di
from pipeline_outputs import CAPTION, SOURCE, TARGET, encode_inputs, load, recorded_randint, save_tensors, write_cases

STEPS = 5
IMAGES = {32: "spec/fixtures/reference/pipeline/input32.png", 64: "spec/fixtures/reference/pipeline/input64.png"}
CASES = {
    "di_reg_off": dict(lambda_auto_corr=0.0, lambda_kl=0.0, num_reg_steps=0, num_auto_corr_rolls=0, seed=0,
                       guidance_scale=5.0, xa=0.1, size=32, maps=True),
    "di_sd2_v": dict(lambda_auto_corr=20.0, lambda_kl=20.0, num_reg_steps=2, num_auto_corr_rolls=2, seed=5,
                     guidance_scale=5.0, xa=0.1, size=64, model="spec/fixtures/models/tiny-sd2"),
    "di_no_cfg": dict(lambda_auto_corr=20.0, lambda_kl=20.0, num_reg_steps=1, num_auto_corr_rolls=2, seed=3,
                      guidance_scale=1.0, xa=0.1, size=32),
}


def build(root: Path) -> list[Path]:
    out = root / "spec" / "fixtures" / "reference" / "direct_inversion"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    meta = {"caption": CAPTION, "source": SOURCE, "target": TARGET, "steps": STEPS, "images": IMAGES,
            "negative_prompt": "caption", "cases": CASES}
    for name, c in CASES.items():
        pipe = load(root, root / c.get("model", "converted_models/tiny-sd"))
        pipe.set_progress_bar_config(disable=True)
        _, image_latents, source_embeds, target_embeds, caption_embeds = encode_inputs(pipe, root / IMAGES[c["size"]])
        with recorded_randint() as shifts:
            trajectory = di.invert_trajectory(
                pipe, CAPTION, image_latents, STEPS, torch.Generator().manual_seed(c["seed"]),
                lambda_auto_corr=c["lambda_auto_corr"], lambda_kl=c["lambda_kl"], num_reg_steps=c["num_reg_steps"],
                num_auto_corr_rolls=c["num_auto_corr_rolls"])
        args = dict(caption=CAPTION, negative_prompt=CAPTION, source_embeds=source_embeds, target_embeds=target_embeds,
                    trajectory=trajectory, steps=STEPS, guidance_scale=c["guidance_scale"],
                    cross_attention_guidance_amount=c["xa"])
        plain, _ = di.edit(pipe, **args, direct=False)
        if c["guidance_scale"] > 1:  # diffusers adds no direction without CFG (prompt_embeds_edit[1:2] is empty)
            expected = pipe(prompt=CAPTION, negative_prompt=CAPTION, source_embeds=source_embeds, target_embeds=target_embeds,
                            num_inference_steps=STEPS, guidance_scale=c["guidance_scale"],
                            cross_attention_guidance_amount=c["xa"], latents=trajectory[-1].clone(), output_type="latent").images
            assert torch.equal(plain, expected), f"{name}: the re-run loop differs from diffusers by {(plain - expected).abs().max()}"
        maps: dict[str, torch.Tensor] = {}

        def keep_maps(i: int, m: list[torch.Tensor]) -> None:
            for j, x in enumerate(m):
                first, second = x.chunk(2)
                assert torch.allclose(first, second, rtol=0, atol=1e-7), f"{name}: the CFG halves' maps differ"
                maps[f"ref_maps.step{i}.layer{j}"] = first

        edited, reconstruction = di.edit(pipe, **args, direct=True, on_reference_maps=keep_maps if c.get("maps") else None)
        assert torch.equal(reconstruction, trajectory[0])
        tensors = {"image_latents": image_latents, "caption_embeds": caption_embeds,
                   "direction": pipe.construct_direction(source_embeds, target_embeds),
                   "shifts": torch.tensor(shifts, dtype=torch.int64), "trajectory": torch.cat(trajectory, 0),
                   "edited_latents": edited, "reconstruction": reconstruction, "plain_edited_latents": plain, **maps}
        if maps:
            meta[f"{name}.attention_layers"] = len(maps) // STEPS
        written.append(save_tensors(out / f"{name}.safetensors", tensors))
    return written + [write_cases(out, meta)]
