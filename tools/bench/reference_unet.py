"""PyTorch's side of `npm run bench -- unet`: the full-size SD 1.x block cases (diffusers' own blocks) with the
shapes our cases use, forward and forward + gradient of the pix2pix-zero cross-attention loss w.r.t. the input.

Usage: python reference_unet.py '<json spec>', spec = {"threads": [1, 2], "case": {"id", "kind": "down"|"mid"|"full"|"conv"|"matmul",
"batch", "size", "channels", "reps"}}: one case per process (so its peak RSS is that case's), timed at each thread
count in turn. Prints one JSON line: {"id", "torch", "ompWaitPolicy", "rssBeforeMiB", "maxRssMiB", "timings":
[{"threads", "forwardMs", "gradMs", "reps"}]}.

As our bench: random weights (uniform, variance 1/fan_in; norm scales near 1; small biases), batch of latents
[batch, channels, size, size], temb [batch, 1280], context [batch, 77, 768]; the reference maps are the
cross-attention probabilities of a pass with another context; forward: no hook, under no_grad, with diffusers'
default attention processor (scaled_dot_product_attention); forward + gradient: the cross-attention layers
compute their probabilities explicitly and add mean over (batch * heads) of sum over (query, key) of (M - M_ref)^2
(diffusers' Pix2PixZeroL2Loss), then backward to the input. Medians of `reps` runs after one warm-up run.
"""
import json
import os
import resource
import math
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import rss_mib  # noqa: E402
from diffusers.models.attention_processor import Attention
from diffusers.models.unets.unet_2d_blocks import CrossAttnDownBlock2D, UNetMidBlock2DCrossAttn
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel


class LossState:
    """What the cross-attention processors share during one pass."""

    def __init__(self) -> None:
        self.mode = "off"  # "record" the maps, add to the "loss", or "off"
        self.maps: list[torch.Tensor] = []
        self.index = 0
        self.loss: torch.Tensor | float = 0.0


class CrossAttentionLossProcessor:
    """A cross-attention processor that exposes its probabilities: records them or adds the L2 loss to them."""

    def __init__(self, state: LossState) -> None:
        self.state = state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(context))
        v = attn.head_to_batch_dim(attn.to_v(context))
        probs = attn.get_attention_scores(q, k, attention_mask)
        s = self.state
        if s.mode == "record":
            s.maps.append(probs.detach())
        elif s.mode == "loss":
            s.loss = s.loss + ((probs - s.maps[s.index]) ** 2).sum((1, 2)).mean(0)
            s.index += 1
        out = attn.batch_to_head_dim(torch.bmm(probs, v))
        return attn.to_out[1](attn.to_out[0](out))


def randomize(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            u = torch.rand(p.shape, generator=g) * 2 - 1
            if p.dim() >= 2:
                p.copy_(u * math.sqrt(3 / math.prod(p.shape[1:])))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * u)
            else:
                p.copy_(0.1 * u)


def median_ms(fn, reps: int) -> float:
    fn()
    runs = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1000)
    return sorted(runs)[len(runs) // 2]


# Stable Diffusion 1.x's UNet (CompVis/stable-diffusion-v1-4's unet/config.json), as unet.ts's SD1_UNET.
SD1_UNET = dict(sample_size=64, in_channels=4, out_channels=4,
                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, attention_head_dim=8,
                cross_attention_dim=768, norm_num_groups=32, act_fn="silu", center_input_sample=False,
                downsample_padding=1, flip_sin_to_cos=True, freq_shift=0, mid_block_scale_factor=1, norm_eps=1e-5)


def block_case(kind: str, batch: int, size: int, channels: int, reps: int):
    """Builds the block and its inputs; returns the function that times it (at the current thread count)."""
    g = torch.Generator().manual_seed(1)
    if kind == "full":
        block = UNet2DConditionModel(**SD1_UNET)
    elif kind == "down":
        block = CrossAttnDownBlock2D(in_channels=320, out_channels=320, temb_channels=1280, num_layers=1, resnet_eps=1e-5,
                                     resnet_groups=32, num_attention_heads=8, cross_attention_dim=768, add_downsample=False)
    else:
        block = UNetMidBlock2DCrossAttn(in_channels=1280, temb_channels=1280, resnet_eps=1e-5, resnet_groups=32,
                                        num_attention_heads=8, cross_attention_dim=768)
    block.eval()
    block.requires_grad_(False)
    randomize(block, 7)
    x = torch.randn(batch, channels, size, size, generator=g)
    temb = torch.randn(batch, 1280, generator=g)
    ref_context = torch.randn(batch, 77, 768, generator=g)
    context = torch.randn(batch, 77, 768, generator=g)
    attns = {name: m for name, m in block.named_modules() if isinstance(m, Attention)}
    default_procs = {name: m.processor for name, m in attns.items()}
    state = LossState()
    loss_procs = {name: (CrossAttentionLossProcessor(state) if name.endswith("attn2") else proc) for name, proc in default_procs.items()}

    def set_processors(procs: dict) -> None:
        for name, m in attns.items():
            m.set_processor(procs[name])

    def call(v, ctx):
        if kind == "full":
            return block(v, 500, encoder_hidden_states=ctx).sample
        out = block(v, temb, encoder_hidden_states=ctx)
        return out[0] if isinstance(out, tuple) else out

    set_processors(loss_procs)
    state.mode = "record"
    with torch.no_grad():
        call(x, ref_context)
    state.mode = "off"

    def forward():
        with torch.no_grad():
            call(x, context)

    def grad():
        state.mode, state.index, state.loss = "loss", 0, 0.0
        v = x.detach().clone().requires_grad_(True)
        call(v, context)
        state.loss.backward()
        state.mode = "off"
        return v.grad

    def run() -> dict:
        set_processors(default_procs)
        forward_ms = median_ms(forward, reps)
        set_processors(loss_procs)
        grad_ms = median_ms(grad, reps)
        return {"forwardMs": forward_ms, "gradMs": grad_ms, "crossAttentionLayers": len(state.maps),
                "processor": type(next(iter(default_procs.values()))).__name__}

    return run


def conv_case(batch: int, size: int, channels: int, reps: int) -> dict:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, channels, size, size, generator=g)
    w = torch.randn(channels, channels, 3, 3, generator=g) / math.sqrt(9 * channels)

    def forward():
        with torch.no_grad():
            F.conv2d(x, w, padding=1)

    def grad():
        v = x.detach().clone().requires_grad_(True)
        F.conv2d(v, w, padding=1).sum().backward()
        return v.grad

    return {"forwardMs": median_ms(forward, reps), "gradMs": median_ms(grad, reps)}


def matmul_case(batch: int, tokens: int, dim: int, reps: int) -> dict:
    """The attention score product q k^T (batch x tokens x dim by batch x dim x tokens) and its gradient."""
    g = torch.Generator().manual_seed(1)
    q = torch.randn(batch, tokens, dim, generator=g)
    kt = torch.randn(batch, dim, tokens, generator=g)

    def forward():
        with torch.no_grad():
            torch.bmm(q, kt)

    def grad():
        a = q.detach().clone().requires_grad_(True)
        b = kt.detach().clone().requires_grad_(True)
        torch.bmm(a, b).sum().backward()
        return a.grad

    return {"forwardMs": median_ms(forward, reps), "gradMs": median_ms(grad, reps)}


def main() -> None:
    spec = json.loads(sys.argv[1])
    torch.manual_seed(0)
    c = spec["case"]
    rss_before = rss_mib()
    timings = []
    if c["kind"] == "conv":
        run = lambda: conv_case(c["batch"], c["size"], c["channels"], c["reps"])  # noqa: E731
    elif c["kind"] == "matmul":
        run = lambda: matmul_case(c["batch"], c["size"], c["channels"], c["reps"])  # noqa: E731
    else:
        run = block_case(c["kind"], c["batch"], c["size"], c["channels"], c["reps"])
    for n in spec["threads"]:
        torch.set_num_threads(int(n))
        r = run()
        timings.append({"threads": torch.get_num_threads(), "reps": c["reps"], **r})
        print(f"torch {n} thread(s) {c['id']}: forward {r['forwardMs']:.0f} ms, +grad {r['gradMs']:.0f} ms", file=sys.stderr)
    print(json.dumps({
        "id": c["id"], "torch": torch.__version__, "ompWaitPolicy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
        "rssBeforeMiB": rss_before,
        # Linux reports ru_maxrss in KiB.
        "maxRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "timings": timings,
    }))


if __name__ == "__main__":
    main()
