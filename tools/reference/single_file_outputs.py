"""Single-file checkpoints in the original (CompVis `ldm`) layout, written from diffusers pipeline folders by a
converter of our own (the name rules below, written for this project from the layout of the `ldm` modules, not
taken from diffusers), and checked with diffusers' own reader, `StableDiffusionPipeline.from_single_file`.

build(root) (run by make_fixtures.py) writes spec/fixtures/models/tiny-sd-original.safetensors from
converted_models/tiny-sd (SD 1.x layout: `model.diffusion_model.*`, `first_stage_model.*`,
`cond_stage_model.transformer.*`, plus the DDPM schedule buffers such checkpoints carry), loads it back with
`from_single_file(config=<tiny-sd>)` and asserts that every tensor of the UNet, VAE and text encoder diffusers
reads equals the original pipeline's (torch.equal). The tests then check that `pix2pix-zero convert` gives every
tensor exactly too.

As a program, for the full-size check (streamed one tensor at a time, so a 4 GB pipeline needs little memory):
  python tools/reference/single_file_outputs.py write <diffusers folder> <out.safetensors>
  python tools/reference/single_file_outputs.py check <out.safetensors> <diffusers folder>
  python tools/reference/single_file_outputs.py compare <diffusers folder> <other diffusers folder>
`check` loads the checkpoint with diffusers' `from_single_file` (configs from the folder) and asserts every tensor
equals the folder's (about 2 x the pipeline's size in memory: 8 GB at full size). `compare` checks that every tensor
of unet/, vae/ and text_encoder/ is equal (names, dtypes, shapes, bytes), that the configs are equal, and that
diffusers loads the second folder as a whole StableDiffusionPipeline.
"""
import json
import struct
import sys
from pathlib import Path

import torch
from safetensors import safe_open

RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
          "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _swap(rest: str, table: dict[str, str]) -> str:
    for new, old in sorted(table.items(), key=lambda kv: -len(kv[0])):
        if rest == new or rest.startswith(new + "."):
            return old + rest[len(new):]
    return rest


def unet_original(name: str, cfg: dict) -> str:
    """The `ldm` name of a diffusers UNet tensor."""
    n = cfg["layers_per_block"] + 1
    attn_up = [t.startswith("CrossAttn") for t in cfg["up_block_types"]]
    p = name.split(".")
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    for new, old in fixed.items():
        if name.startswith(new + "."):
            out = old + name[len(new):]
            break
    else:
        if p[0] == "down_blocks":
            b = int(p[1])
            if p[2] == "downsamplers":
                out = f"input_blocks.{(b + 1) * n}.0.op." + ".".join(p[5:])
            else:
                j = int(p[3])
                rest = ".".join(p[4:])
                out = (f"input_blocks.{1 + b * n + j}.0." + _swap(rest, RESNET)) if p[2] == "resnets" \
                    else f"input_blocks.{1 + b * n + j}.1.{rest}"
        elif p[0] == "mid_block":
            rest = ".".join(p[3:])
            out = f"middle_block.1.{rest}" if p[1] == "attentions" else f"middle_block.{2 * int(p[2])}." + _swap(rest, RESNET)
        elif p[0] == "up_blocks":
            b = int(p[1])
            if p[2] == "upsamplers":
                out = f"output_blocks.{b * n + n - 1}.{2 if attn_up[b] else 1}.conv." + ".".join(p[5:])
            else:
                j = int(p[3])
                rest = ".".join(p[4:])
                out = (f"output_blocks.{b * n + j}.0." + _swap(rest, RESNET)) if p[2] == "resnets" \
                    else f"output_blocks.{b * n + j}.1.{rest}"
        else:
            raise ValueError(f"unexpected UNet tensor {name}")
    return "model.diffusion_model." + out


def vae_original(name: str, cfg: dict) -> tuple[str, bool]:
    """The `ldm` name of a diffusers VAE tensor, and whether it becomes a 1x1 convolution kernel."""
    levels = len(cfg["block_out_channels"])
    p = name.split(".")
    conv = False
    if p[0] in ("quant_conv", "post_quant_conv"):
        out = name
    else:
        part = p[0]
        if p[1] == "conv_norm_out":
            out = f"{part}.norm_out." + ".".join(p[2:])
        elif p[1] in ("conv_in", "conv_out"):
            out = name
        elif p[1] == "mid_block":
            if p[2] == "attentions":
                rest = ".".join(p[4:])
                out = f"{part}.mid.attn_1." + _swap(rest, VAE_ATTN)
                conv = rest.endswith("weight") and not rest.startswith("group_norm")
            else:
                out = f"{part}.mid.block_{int(p[3]) + 1}." + _swap(".".join(p[4:]), {"conv_shortcut": "nin_shortcut"})
        elif p[1] == "down_blocks":
            if p[3] == "downsamplers":
                out = f"encoder.down.{p[2]}.downsample.conv." + ".".join(p[6:])
            else:
                out = f"encoder.down.{p[2]}.block.{p[4]}." + _swap(".".join(p[5:]), {"conv_shortcut": "nin_shortcut"})
        elif p[1] == "up_blocks":
            level = levels - 1 - int(p[2])
            if p[3] == "upsamplers":
                out = f"decoder.up.{level}.upsample.conv." + ".".join(p[6:])
            else:
                out = f"decoder.up.{level}.block.{p[4]}." + _swap(".".join(p[5:]), {"conv_shortcut": "nin_shortcut"})
        else:
            raise ValueError(f"unexpected VAE tensor {name}")
    return "first_stage_model." + out, conv


def original_entries(folder: Path):
    """(original name, component, diffusers name, reshape-to-conv) for every tensor of a diffusers SD 1.x folder."""
    for comp, file in (("unet", "diffusion_pytorch_model.safetensors"), ("vae", "diffusion_pytorch_model.safetensors"),
                       ("text_encoder", "model.safetensors")):
        cfg = json.loads((folder / comp / "config.json").read_text())
        with safe_open(folder / comp / file, "pt") as f:
            for k in f.keys():
                if comp == "unet":
                    yield unet_original(k, cfg), comp, k, False
                elif comp == "vae":
                    name, conv = vae_original(k, cfg)
                    yield name, comp, k, conv
                else:
                    # transformers 5 saves CLIPTextModel without its `text_model.` level; checkpoints have it.
                    bare = k[len("text_model."):] if k.startswith("text_model.") else k
                    yield "cond_stage_model.transformer.text_model." + bare, comp, k, False


DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def schedule_buffers() -> dict[str, torch.Tensor]:
    """The DDPM buffers an `ldm` checkpoint carries (scaled-linear betas, 1000 steps); converters drop them."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    return {"betas": betas.float(), "alphas_cumprod": alphas_cumprod.float(),
            "alphas_cumprod_prev": torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]]).float()}


def write_original(folder: Path, out: Path) -> int:
    """Writes the original-layout checkpoint of `folder` to `out`, one tensor at a time; returns the tensor count."""
    entries = sorted(original_entries(folder))
    handles = {}
    files = {"unet": "diffusion_pytorch_model.safetensors", "vae": "diffusion_pytorch_model.safetensors", "text_encoder": "model.safetensors"}
    for comp, file in files.items():
        handles[comp] = safe_open(folder / comp / file, "pt")
    extra = schedule_buffers()
    header, offset, order = {}, 0, []
    for name, comp, key, conv in entries:
        sl = handles[comp].get_slice(key)
        shape = list(sl.get_shape()) + ([1, 1] if conv else [])
        dtype = sl.get_dtype()
        size = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}[dtype]
        n = size
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        order.append((comp, key, None))
        offset += n
    for name, t in extra.items():
        n = t.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        order.append((None, name, t))
        offset += n
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as w:
        w.write(struct.pack("<Q", len(blob)))
        w.write(blob)
        for comp, key, t in order:
            tensor = handles[comp].get_tensor(key) if comp is not None else t
            w.write(tensor.contiguous().view(torch.uint8).numpy().tobytes() if tensor.dtype != torch.float32
                    else tensor.contiguous().numpy().tobytes())
    return len(order)


def check_from_single_file(ckpt: Path, folder: Path) -> int:
    """diffusers reads `ckpt` (configs from `folder`) into exactly the tensors of the pipeline in `folder`."""
    from diffusers import StableDiffusionPipeline
    ours = StableDiffusionPipeline.from_single_file(str(ckpt), config=str(folder), local_files_only=True,
                                                    safety_checker=None, requires_safety_checker=False)
    ref = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    checked = 0
    for comp in ("unet", "vae", "text_encoder"):
        a = getattr(ours, comp).state_dict()
        b = getattr(ref, comp).state_dict()
        b = {k: v for k, v in b.items() if not k.endswith("position_ids")}
        a = {k: v for k, v in a.items() if not k.endswith("position_ids")}
        assert a.keys() == b.keys(), (comp, sorted(set(a) ^ set(b))[:5])
        for k in b:
            assert torch.equal(a[k], b[k]), (comp, k)
            checked += 1
    return checked


def build(root: Path) -> list[Path]:
    folder = root / "converted_models" / "tiny-sd"
    out = root / "spec" / "fixtures" / "models" / "tiny-sd-original.safetensors"
    n = write_original(folder, out)
    checked = check_from_single_file(out, folder)
    print(f"   {n} tensors written; from_single_file gives {checked} tensors, every one equal to tiny-sd's", flush=True)
    return [out]


def _header(path: Path) -> tuple[dict, int]:
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), 8 + n


def compare(a: Path, b: Path) -> None:
    """Every tensor of a's unet/vae/text_encoder equals b's (names, dtypes, shapes, bytes; read in plain chunks, not
    mapped, so memory stays small); diffusers loads b's VAE and text encoder and reads its UNet config."""
    files = {"unet": "diffusion_pytorch_model.safetensors", "vae": "diffusion_pytorch_model.safetensors", "text_encoder": "model.safetensors"}
    total = 0
    for comp, file in files.items():
        ha, sa = _header(a / comp / file)
        hb, sb = _header(b / comp / file)
        ka = {k for k in ha if k != "__metadata__" and not k.endswith("position_ids")}
        kb = {k for k in hb if k != "__metadata__"}
        assert ka == kb, (comp, sorted(ka ^ kb)[:5])
        with open(a / comp / file, "rb") as fa, open(b / comp / file, "rb") as fb:
            for k in sorted(ka):
                ea, eb = ha[k], hb[k]
                assert ea["dtype"] == eb["dtype"] and ea["shape"] == eb["shape"], (comp, k, ea, eb)
                fa.seek(sa + ea["data_offsets"][0])
                fb.seek(sb + eb["data_offsets"][0])
                left = ea["data_offsets"][1] - ea["data_offsets"][0]
                while left > 0:
                    step = min(left, 1 << 24)
                    assert fa.read(step) == fb.read(step), (comp, k)
                    left -= step
                total += 1
    from diffusers import StableDiffusionPipeline
    StableDiffusionPipeline.from_pretrained(b, safety_checker=None, requires_safety_checker=False)
    for c in ("unet", "vae", "text_encoder", "scheduler"):
        name = "scheduler_config.json" if c == "scheduler" else "config.json"
        ca, cb = json.loads((a / c / name).read_text()), json.loads((b / c / name).read_text())
        assert ca == cb, (c, {k: (ca.get(k), cb.get(k)) for k in set(ca) | set(cb) if ca.get(k) != cb.get(k)})
    print(f"{total} tensors equal (names, dtypes, shapes, bytes) and the configs equal; diffusers loads {b} as a "
          "StableDiffusionPipeline")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "write":
        print(f"{write_original(Path(sys.argv[2]), Path(sys.argv[3]))} tensors written to {sys.argv[3]}")
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        print(f"from_single_file gives {check_from_single_file(Path(sys.argv[2]), Path(sys.argv[3]))} tensors, every one "
              f"equal to {sys.argv[3]}'s")
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
