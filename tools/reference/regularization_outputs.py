"""Reference outputs of pix2pix-zero's noise regularisation, from diffusers' own loss functions.

The losses are diffusers' `StableDiffusionPix2PixZeroPipeline.auto_corr_loss` and `.kl_divergence`; the update
loop is the one in its `invert()` (5 rounds of 5 auto-correlation steps and 1 KL step, lambda 20). Every roll
shift that `torch.randint` draws is recorded, so the TypeScript side can replay them, and the seed is saved, so it
can also check that its own seeded generator draws the same shifts.

Writes spec/fixtures/reference/regularization/regularization.safetensors (tensors are NCHW as PyTorch has them):
  <case>.input, <case>.sample            model output and latent input
  <case>.ac_loss, <case>.kl_loss         the two losses of the input (ac with the case's seed)
  <case>.ac_grad, <case>.kl_grad         their gradients
  <case>.output                          the regularised noise prediction
  <case>.shifts                          I64, every shift drawn, in order
and cases.json (seed, prediction type, timestep, alphas_cumprod[t], hyperparameters).
"""
import json
from pathlib import Path

import torch
from diffusers import StableDiffusionPix2PixZeroPipeline as P
from safetensors.torch import save_file

CASES = {
    # name: (shape NCHW, seed, prediction_type, alpha_prod_t, lambda_ac, lambda_kl, reg_steps, rolls)
    "eps_64": ((1, 4, 64, 64), 0, "epsilon", 0.5, 20.0, 20.0, 5, 5),
    "eps_8_batch2": ((2, 4, 8, 8), 7, "epsilon", 0.9, 20.0, 20.0, 5, 5),
    "v_16": ((1, 4, 16, 16), 3, "v_prediction", 0.3, 20.0, 20.0, 2, 3),
    "kl_only_32": ((1, 4, 32, 32), 11, "epsilon", 0.5, 0.0, 20.0, 3, 5),
    "ac_only_16x24": ((1, 4, 16, 24), 5, "epsilon", 0.5, 20.0, 0.0, 1, 2),
}


class Recorder:
    """Wraps torch.randint to record what it draws."""

    def __init__(self):
        self.values: list[int] = []
        self.real = torch.randint

    def __call__(self, *args, **kwargs):
        out = self.real(*args, **kwargs)
        self.values.append(int(out.item()))
        return out


def get_epsilon(pred_type, alpha, model_output, sample):
    # As the pipeline's get_epsilon, with alphas_cumprod[t] given.
    a = torch.tensor(alpha, dtype=torch.float32)
    if pred_type == "epsilon":
        return model_output
    return a**0.5 * model_output + (1 - a) ** 0.5 * sample


def build(root: Path) -> list[Path]:
    out = root / "spec" / "fixtures" / "reference" / "regularization"
    out.mkdir(parents=True, exist_ok=True)
    tensors, meta = {}, {}
    for name, (shape, seed, pred, alpha, lac, lkl, steps, rolls) in CASES.items():
        data = torch.Generator().manual_seed(1000 + seed)
        x = torch.randn(shape, generator=data) * 0.8 + 0.1
        sample = torch.randn(shape, generator=data)
        rec = Recorder()
        torch.randint = rec
        try:
            # Losses and gradients of the input alone (fresh generator with the case's seed).
            g = torch.Generator().manual_seed(seed)
            v = x.clone().requires_grad_(True)
            ac = P.auto_corr_loss(None, get_epsilon(pred, alpha, v, sample), generator=g)
            ac.backward()
            ac_grad = v.grad.detach().clone()
            v = x.clone().requires_grad_(True)
            kl = P.kl_divergence(None, get_epsilon(pred, alpha, v, sample))
            kl.backward()
            kl_grad = v.grad.detach().clone()
            first_shifts = len(rec.values)
            # The regularisation loop of invert(), with a fresh generator.
            g = torch.Generator().manual_seed(seed)
            noise_pred = x.clone()
            with torch.enable_grad():
                for _ in range(steps):
                    if lac > 0:
                        for _ in range(rolls):
                            var = torch.autograd.Variable(noise_pred.detach().clone(), requires_grad=True)
                            l_ac = P.auto_corr_loss(None, get_epsilon(pred, alpha, var, sample), generator=g)
                            l_ac.backward()
                            noise_pred = noise_pred - lac * (var.grad.detach() / rolls)
                    if lkl > 0:
                        var = torch.autograd.Variable(noise_pred.detach().clone(), requires_grad=True)
                        l_kld = P.kl_divergence(None, get_epsilon(pred, alpha, var, sample))
                        l_kld.backward()
                        noise_pred = noise_pred - lkl * var.grad.detach()
                    noise_pred = noise_pred.detach()
        finally:
            torch.randint = rec.real
        tensors.update({
            f"{name}.input": x, f"{name}.sample": sample,
            f"{name}.ac_loss": ac.detach().reshape(1), f"{name}.kl_loss": kl.detach().reshape(1),
            f"{name}.ac_grad": ac_grad, f"{name}.kl_grad": kl_grad, f"{name}.output": noise_pred,
            f"{name}.shifts": torch.tensor(rec.values[first_shifts:], dtype=torch.int64),
            f"{name}.loss_shifts": torch.tensor(rec.values[:first_shifts], dtype=torch.int64),
        })
        meta[name] = {"seed": seed, "prediction_type": pred, "alpha_prod_t": alpha, "lambda_ac": lac,
                      "lambda_kl": lkl, "num_reg_steps": steps, "num_auto_corr_rolls": rolls}
    st = out / "regularization.safetensors"
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, str(st))
    js = out / "cases.json"
    js.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return [st, js]


if __name__ == "__main__":
    torch.set_num_threads(1)
    for p in build(Path(__file__).resolve().parents[2]):
        print(p)
