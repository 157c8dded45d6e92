"""Reference outputs of diffusers' DDIMScheduler and DDIMInverseScheduler.

For each case (a scheduler config and a number of steps) writes, into
spec/fixtures/reference/schedulers/schedulers.safetensors:
  <case>.alphas_cumprod                 F32 [num_train_timesteps]
  <case>.ddim.timesteps / .inverse.timesteps   I64
  <case>.model_output, <case>.sample    F32 [2, 4, 3, 3] inputs (the same for every step below)
  <case>.ddim.step<i>.prev / .x0        DDIMScheduler.step at its i-th timestep
  <case>.inverse.step<i>.prev / .x0     DDIMInverseScheduler.step at its i-th timestep
and the configs to cases.json.
"""
import json
from pathlib import Path

import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler
from safetensors.torch import save_file

SD = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
          set_alpha_to_one=False, steps_offset=1, num_train_timesteps=1000, prediction_type="epsilon")

CASES = {
    "sd15_50": (SD, 50),
    "sd15_10": (SD, 10),
    "sd15_1": (SD, 1),
    "sd15_16_trailing": ({**SD, "timestep_spacing": "trailing"}, 16),
    "sd15_7_linspace": ({**SD, "timestep_spacing": "linspace"}, 7),
    "sd2v_20": ({**SD, "prediction_type": "v_prediction"}, 20),
    "sample_pred_5": ({**SD, "prediction_type": "sample"}, 5),
    "linear_clip_25": (dict(beta_schedule="linear", clip_sample=True, set_alpha_to_one=True), 25),
    "cosine_zero_snr_12": (dict(beta_schedule="squaredcos_cap_v2", rescale_betas_zero_snr=True, prediction_type="v_prediction",
                                timestep_spacing="trailing", clip_sample=False), 12),
}


def build(root: Path) -> list[Path]:
    out = root / "spec" / "fixtures" / "reference" / "schedulers"
    out.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    configs = {}
    for name, (cfg, steps) in CASES.items():
        gen = torch.Generator().manual_seed(len(name))
        model_output = torch.randn(2, 4, 3, 3, generator=gen)
        sample = torch.randn(2, 4, 3, 3, generator=gen)
        ddim = DDIMScheduler(**cfg)
        configs[name] = {"config": {k: v for k, v in ddim.config.items() if not k.startswith("_")}, "steps": steps}
        ddim.set_timesteps(steps)
        tensors[f"{name}.alphas_cumprod"] = ddim.alphas_cumprod.clone()
        tensors[f"{name}.model_output"] = model_output
        tensors[f"{name}.sample"] = sample
        tensors[f"{name}.ddim.timesteps"] = ddim.timesteps.clone()
        for i, t in enumerate(ddim.timesteps.tolist()):
            if i in (0, 1, steps // 2, steps - 1):
                r = ddim.step(model_output, t, sample)
                tensors[f"{name}.ddim.step{i}.prev"] = r.prev_sample
                tensors[f"{name}.ddim.step{i}.x0"] = r.pred_original_sample
        if cfg.get("timestep_spacing", "leading") in ("leading", "trailing"):
            inv = DDIMInverseScheduler.from_config(ddim.config)
            inv.set_timesteps(steps)
            tensors[f"{name}.inverse.timesteps"] = inv.timesteps.clone()
            for i, t in enumerate(inv.timesteps.tolist()):
                if i in (0, 1, steps // 2, steps - 1):
                    r = inv.step(model_output, t, sample)
                    tensors[f"{name}.inverse.step{i}.prev"] = r.prev_sample
                    tensors[f"{name}.inverse.step{i}.x0"] = r.pred_original_sample
    st = out / "schedulers.safetensors"
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, str(st))
    js = out / "cases.json"
    js.write_text(json.dumps(configs, indent=1, sort_keys=True, default=str) + "\n")
    return [st, js]


if __name__ == "__main__":
    for p in build(Path(__file__).resolve().parents[2]):
        print(p)
