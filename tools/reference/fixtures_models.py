"""Small models of the real architectures, built by diffusers/transformers with fixed seeds and saved with
save_pretrained (safetensors), for the TypeScript port to be checked against:

  converted_models/tiny-sd/          a complete tiny Stable Diffusion 1.x-style pipeline (the shipped default):
                                     UNet2DConditionModel, AutoencoderKL (downscale 8), CLIPTextModel with a CLIP
                                     tokenizer cut from the real CLIP BPE, DDIMScheduler with SD's config
  spec/fixtures/models/unet-sd2/     a UNet2DConditionModel in the SD 2.x style (linear projections, per-block
                                     head dims, upcast attention, 2 layers per block)
  spec/fixtures/models/tiny-blip/    BlipForConditionalGeneration + BlipProcessor with a small BERT vocabulary
  spec/fixtures/safetensors/         dtypes.safetensors (every dtype, edge values) + dtypes.json (expected values)

Every parameter is re-drawn from a seeded normal (weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1), norm scales
~ 1 + N(0, 0.1)) so that no layer is zero or the identity and the parity tests exercise every weight, and the
attention maps are far from uniform.
"""
import gzip
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file as save_numpy

from clip_outputs import bytes_to_unicode  # CLIP's byte-to-symbol table, shared with the tokenizer fixtures
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor,
                          BlipProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer)

SD_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                    set_alpha_to_one=False, steps_offset=1, num_train_timesteps=1000, prediction_type="epsilon")
TINY_MERGES = 2000


def randomize(model: torch.nn.Module, seed: int, embed_std: float = 0.5) -> None:
    """Re-draws every parameter from a seeded generator (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            leaf = name.rsplit(".", 1)[-1]
            is_norm = any(k in name for k in ("norm", "layer_norm", "layernorm", "LayerNorm"))
            if "embedding" in name and p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) * embed_std)
            elif p.dim() >= 2:
                fan_in = math.prod(p.shape[1:])
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            elif is_norm and leaf == "weight":
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


# ---------------------------------------------------------------------------------------------- tokenizers

def clip_tokenizer(dest: Path, num_merges: int = TINY_MERGES) -> CLIPTokenizer:
    """A CLIP tokenizer built exactly as CLIP's (byte symbols, their end-of-word forms, merges, the two special
    tokens) from the first `num_merges` merges of the real BPE file shipped by open_clip_torch."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None:
        raise SystemExit("open_clip_torch is missing from the venv (tools/reference/run.sh installs it)")
    bpe = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe).read().decode("utf-8").split("\n")[1: num_merges + 1]
    merges = [tuple(line.split()) for line in lines]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False) + "\n")
    (dest / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return CLIPTokenizer(str(dest / "vocab.json"), str(dest / "merges.txt"), pad_token="<|endoftext|>", model_max_length=77)


def bert_vocab() -> list[str]:
    """A small uncased WordPiece vocabulary: BERT's special tokens, letters and their ## forms, punctuation,
    and common caption words (so captions tokenise to words, and anything else to letters)."""
    words = ("a an the of in on at with and picture photo image photography close up view small large big red "
             "blue green yellow black white brown grey orange pink purple circle square triangle star shape "
             "background striped dotted plain cat dog horse zebra tree car sitting standing lying running on top "
             "left right bottom middle center two one there is are this that it its two next to near some many "
             "sofa bed grass field park street road table floor window garden sky water").split()
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    punct = list(".,!?'\"-:;()")
    pieces = ["##s", "##ing", "##ed", "##er", "##ly"] + ["##" + c for c in letters]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + punct + letters + pieces
    for w in words:
        if w not in vocab:
            vocab.append(w)
    return vocab


# ---------------------------------------------------------------------------------------------- models

def tiny_sd(root: Path) -> Path:
    out = root / "converted_models" / "tiny-sd"
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8,
    )
    randomize(unet, 1)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=8, sample_size=64, scaling_factor=0.18215,
    )
    randomize(vae, 2)
    tok_dir = root / "tools" / "reference" / ".build" / "clip-tokenizer"
    tokenizer = clip_tokenizer(tok_dir)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, hidden_act="quick_gelu", bos_token_id=len(tokenizer) - 2,
        eos_token_id=len(tokenizer) - 1, pad_token_id=len(tokenizer) - 1,
    ))
    randomize(text_encoder, 3)
    pipe = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=DDIMScheduler(**SD_SCHEDULER),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(out, safe_serialization=True)
    # Stable Diffusion 1.x folders ship the slow-tokenizer files (vocab.json + merges.txt), not tokenizer.json.
    tok = out / "tokenizer"
    (tok / "tokenizer.json").unlink()
    for f in ("vocab.json", "merges.txt"):
        (tok / f).write_bytes((tok_dir / f).read_bytes())
    (tok / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>"}, indent=2) + "\n")
    return out


def unet_sd2(root: Path) -> Path:
    out = root / "spec" / "fixtures" / "models" / "unet-sd2"
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=24, attention_head_dim=(2, 4), use_linear_projection=True, upcast_attention=True,
        norm_num_groups=8,
    )
    randomize(unet, 4)
    unet.save_pretrained(out, safe_serialization=True)
    return out


def tiny_blip(root: Path) -> Path:
    out = root / "spec" / "fixtures" / "models" / "tiny-blip"
    out.mkdir(parents=True, exist_ok=True)
    tmp = root / "tools" / "reference" / ".build" / "bert"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "vocab.txt").write_text("\n".join(bert_vocab()) + "\n")
    tokenizer = BertTokenizer(str(tmp / "vocab.txt"), do_lower_case=True, model_max_length=512)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    vocab_size = len(tokenizer)
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    torch.manual_seed(0)
    config = BlipConfig(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8),
        text_config=dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, encoder_hidden_size=32, max_position_embeddings=64,
                         bos_token_id=tokenizer.bos_token_id, sep_token_id=tokenizer.sep_token_id,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id),
        projection_dim=32,
    )
    model = BlipForConditionalGeneration(config)
    randomize(model, 5)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    # The hub's BLIP folders also carry the image processor's own file and BERT's vocab.txt.
    image_config = json.loads((out / "processor_config.json").read_text())["image_processor"]
    (out / "preprocessor_config.json").write_text(json.dumps(image_config, indent=2, sort_keys=True) + "\n")
    (out / "vocab.txt").write_bytes((tmp / "vocab.txt").read_bytes())
    return out


def dtypes(root: Path) -> list[Path]:
    out = root / "spec" / "fixtures" / "safetensors"
    out.mkdir(parents=True, exist_ok=True)
    f = [0.0, -0.0, 1.0, -2.5, 3.14159, 65504.0, 6.1e-5, 5.96e-8, 1e-45, float("inf"), float("-inf"), float("nan")]
    tensors = {
        "f32": np.array(f, dtype=np.float32).reshape(3, 4),
        "f64": np.array([1 / 3, -1e300, 1e-300, 2.0], dtype=np.float64),
        "f16": np.array(f + [0.1, 1 + 2 ** -10, 2 ** -24, 2 ** -14 - 2 ** -24], dtype=np.float16),
        "i64": np.array([0, -1, 2147483647, -2147483648, 42], dtype=np.int64),
        "i32": np.array([[1, -2], [3, -4]], dtype=np.int32),
        "i16": np.array([-32768, 32767, 0], dtype=np.int16),
        "i8": np.array([-128, 127, 5], dtype=np.int8),
        "u8": np.array([0, 128, 255], dtype=np.uint8),
        "bool": np.array([True, False, True]),
        "scalar": np.array(7.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    st = out / "dtypes.safetensors"
    # numpy has no bfloat16: the bf16 tensor is written by torch from values whose bf16 rounding matters.
    bf = torch.tensor([1.0, 1.00390625, 1.0078125, -3.3, 1e38, 1e-38, float("inf")], dtype=torch.float32).to(torch.bfloat16)
    from safetensors.torch import save_file as save_torch
    save_torch({**{k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, "bf16": bf}, str(st))

    def values(a) -> list:
        flat = a.reshape(-1).tolist()
        return ["nan" if isinstance(x, float) and math.isnan(x) else "inf" if x == float("inf") else
                "-inf" if x == float("-inf") else x for x in flat]

    expected = {k: {"dtype": {"float32": "F32", "float64": "F64", "float16": "F16", "int64": "I64", "int32": "I32",
                              "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}[str(v.dtype)],
                    "shape": list(v.shape), "values": values(v.astype(np.float64) if v.dtype == np.float16 else v)}
                for k, v in tensors.items()}
    expected["bf16"] = {"dtype": "BF16", "shape": [7], "values": values(bf.to(torch.float32).numpy())}
    js = out / "dtypes.json"
    js.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return [st, js]


def build(root: Path) -> list[Path]:
    return [tiny_sd(root), unet_sd2(root), tiny_blip(root), *dtypes(root)]


if __name__ == "__main__":
    torch.set_num_threads(1)
    for p in build(Path(__file__).resolve().parents[2]):
        print(p)
