"""Reference outputs of diffusers' UNet2DConditionModel on the two fixture UNets (SD 1.x style in tiny-sd, and the
SD 2.x style one), with every cross-attention map and the gradient of the pix2pix-zero loss.

For each model and timestep, writes to spec/fixtures/reference/unet/<model>.safetensors (tensors NCHW):
  sample [2,4,4,4], context [2,77,d], context_ref [2,77,d]           inputs
  t<t>.out                      the UNet output
  t<t>.maps.<layer path>        attention probabilities of each attn2 [batch*heads, queries, keys] (t=500)
  t<t>.ref.<layer path>         the reference maps under context_ref (t=500)
  t<t>.loss, t<t>.grad          L = sum over layers of mean over batch*heads of sum over (q, k) of
                                (M - M_ref)^2 with M_ref the maps under context_ref, and dL/dsample by autograd
  odd.sample [1,4,5,3], odd.t   a latent whose sides are not multiples of 2^downsamplers (diffusers passes
  odd.out, odd.loss, odd.grad   upsample_size to the up blocks) at a fractional timestep (421.75), with the
                                first item's contexts: output, loss and gradient as above
"""
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor
from safetensors.torch import save_file

TIMESTEPS = [1, 500, 981]
MAPS_AT = 500  # the maps (large) are saved for this timestep only
ODD_T = 421.75  # a fractional timestep (diffusers makes a float64 tensor of it) for the odd-size case


class Recording(AttnProcessor):
    """The plain attention processor, also handing each call's probabilities to `sink`."""

    def __init__(self, name, sink):
        super().__init__()
        self.name, self.sink = name, sink

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *a, **k):
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        key = attn.head_to_batch_dim(attn.to_k(context))
        value = attn.head_to_batch_dim(attn.to_v(context))
        probs = attn.get_attention_scores(query, key, attention_mask)
        self.sink(self.name, probs)
        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        return attn.to_out[1](attn.to_out[0](out))


def run(unet, sample, t, context, sink):
    procs = {}
    for name in unet.attn_processors:
        module = name[: -len(".processor")]
        procs[name] = Recording(module, sink) if module.endswith("attn2") else AttnProcessor()
    unet.set_attn_processor(procs)
    return unet(sample, t, encoder_hidden_states=context).sample


def build(root: Path) -> list[Path]:
    out = root / "spec" / "fixtures" / "reference" / "unet"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, folder in [("sd1", root / "converted_models" / "tiny-sd" / "unet"),
                         ("sd2", root / "spec" / "fixtures" / "models" / "unet-sd2")]:
        unet = UNet2DConditionModel.from_pretrained(folder).eval()
        g = torch.Generator().manual_seed(7)
        d = unet.config.cross_attention_dim
        sample = torch.randn(2, 4, 4, 4, generator=g)
        context = torch.randn(2, 77, d, generator=g)
        context_ref = torch.randn(2, 77, d, generator=g)
        tensors = {"sample": sample, "context": context, "context_ref": context_ref}
        for t in TIMESTEPS:
            maps, ref = {}, {}
            with torch.no_grad():
                tensors[f"t{t}.out"] = run(unet, sample, t, context, lambda n, p: maps.__setitem__(n, p.clone()))
                run(unet, sample, t, context_ref, lambda n, p: ref.__setitem__(n, p.clone()))
            if t == MAPS_AT:
                for n, m in maps.items():
                    tensors[f"t{t}.maps.{n}"] = m
            x = sample.clone().requires_grad_(True)
            parts = []
            run(unet, x, t, context, lambda n, p: parts.append(((p - ref[n]) ** 2).sum((1, 2)).mean(0)))
            loss = sum(parts)
            loss.backward()
            tensors[f"t{t}.loss"] = loss.detach().reshape(1)
            tensors[f"t{t}.grad"] = x.grad.detach().clone()
            if t == MAPS_AT:
                for n, m in ref.items():
                    tensors[f"t{t}.ref.{n}"] = m
        odd = torch.randn(1, 4, 5, 3, generator=torch.Generator().manual_seed(11))
        t = ODD_T
        ref = {}
        with torch.no_grad():
            tensors["odd.out"] = run(unet, odd, t, context[:1], lambda n, p: None)
            run(unet, odd, t, context_ref[:1], lambda n, p: ref.__setitem__(n, p.clone()))
        x = odd.clone().requires_grad_(True)
        parts = []
        run(unet, x, t, context[:1], lambda n, p: parts.append(((p - ref[n]) ** 2).sum((1, 2)).mean(0)))
        loss = sum(parts)
        loss.backward()
        tensors.update({"odd.sample": odd, "odd.t": torch.tensor([t]), "odd.loss": loss.detach().reshape(1),
                        "odd.grad": x.grad.detach().clone()})
        st = out / f"{name}.safetensors"
        save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, str(st))
        written.append(st)
    return written


if __name__ == "__main__":
    torch.set_num_threads(1)
    for p in build(Path(__file__).resolve().parents[2]):
        print(p)
