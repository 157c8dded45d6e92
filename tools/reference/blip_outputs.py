"""Reference outputs of transformers' BlipForConditionalGeneration on the tiny fixture BLIP
(spec/fixtures/models/tiny-blip) for the test images (spec/fixtures/images).

Writes spec/fixtures/reference/blip/:
  outputs.safetensors  F32 `pixel_values.<image>` [1, 3, H, W] (BlipProcessor), `vision.<image>` [1, 1+P, C]
                       (vision last_hidden_state), `logits.<image>` [1, L, V] (decoder logits for PREFIX_IDS);
                       I32 `prefix_ids` [L]
  generate.json        generate() ids for each image and case, with and without the text prefix, and the captions
                       decoded with skip_special_tokens
  tokenizer.json       the tokenizer's ids and decodings for a few sentences
  tiny-blip-eos/       the fixture BLIP with the end token's output bias raised by EOS_BOOST, so that generation
                       stops early (min_length, beam hypotheses finishing, early stopping); its generate() ids are
                       in generate.json under `eos`
"""
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file
from transformers import BlipForConditionalGeneration, BlipProcessor

IMAGES = ["rgb", "grey", "rgba", "palette", "photo"]
PROMPT = "a picture of"
CASES = {
    "greedy": dict(num_beams=1, do_sample=False, max_new_tokens=12),
    "greedy_min": dict(num_beams=1, do_sample=False, max_new_tokens=12, min_length=8),
    "greedy_rep": dict(num_beams=1, do_sample=False, max_new_tokens=12, repetition_penalty=1.5),
    "beam3": dict(num_beams=3, do_sample=False, max_new_tokens=12),
    "beam3_min": dict(num_beams=3, do_sample=False, max_new_tokens=10, min_length=6),
    "beam3_rep": dict(num_beams=3, do_sample=False, max_new_tokens=12, repetition_penalty=1.3),
    "beam4_lp": dict(num_beams=4, do_sample=False, max_new_tokens=9, length_penalty=0.5, early_stopping=True),
    "beam2_short": dict(num_beams=2, do_sample=False, max_new_tokens=4),
}
EOS_BOOST = 5.0
EOS_IMAGES = ["rgb", "photo", "grey"]
SENTENCES = [
    "a picture of",
    "A Picture OF a dog, running!",
    "the cat sat on the mat.",
    "unaffable xyz [SEP] qq",
    "  héllo   wörld  ",
]


def _image(root: Path, name: str) -> Image.Image:
    ext = "jpg" if name == "photo" else "png"
    return Image.open(root / "spec" / "fixtures" / "images" / f"{name}.{ext}")


def build(root: Path) -> list[Path]:
    folder = root / "spec" / "fixtures" / "models" / "tiny-blip"
    out = root / "spec" / "fixtures" / "reference" / "blip"
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    processor = BlipProcessor.from_pretrained(str(folder))
    model = BlipForConditionalGeneration.from_pretrained(str(folder)).eval()
    tok = processor.tokenizer

    prefix = tok(PROMPT, return_tensors="pt").input_ids
    prefix_ids = prefix.clone()
    prefix_ids[:, 0] = model.config.text_config.bos_token_id
    prefix_ids = prefix_ids[:, :-1]
    tensors: dict[str, np.ndarray] = {"prefix_ids": prefix_ids[0].numpy().astype(np.int32)}
    gen: dict[str, object] = {"prompt": PROMPT, "prompt_ids": prefix[0].tolist(), "cases": CASES, "results": {}}
    with torch.no_grad():
        for name in IMAGES:
            pv = processor(images=_image(root, name), return_tensors="pt").pixel_values
            tensors[f"pixel_values.{name}"] = pv.numpy().astype(np.float32)
            vis = model.vision_model(pixel_values=pv).last_hidden_state
            tensors[f"vision.{name}"] = vis.numpy().astype(np.float32)
            logits = model.text_decoder(input_ids=prefix_ids, encoder_hidden_states=vis).logits
            tensors[f"logits.{name}"] = logits.numpy().astype(np.float32)
            res: dict[str, object] = {}
            for case, kw in CASES.items():
                for with_prompt in (False, True):
                    ids = model.generate(pixel_values=pv, input_ids=prefix if with_prompt else None, **kw)[0].tolist()
                    res[f"{case}{'.prompt' if with_prompt else ''}"] = {
                        "ids": ids,
                        "caption": tok.decode(ids, skip_special_tokens=True),
                    }
            gen["results"][name] = res
        eos_dir = out / "tiny-blip-eos"
        with torch.no_grad():
            model.text_decoder.cls.predictions.bias[model.config.text_config.sep_token_id] += EOS_BOOST
        model.save_pretrained(str(eos_dir))
        processor.save_pretrained(str(eos_dir))
        eos_model = BlipForConditionalGeneration.from_pretrained(str(eos_dir)).eval()
        eos_res: dict[str, object] = {}
        for name in EOS_IMAGES:
            pv = processor(images=_image(root, name), return_tensors="pt").pixel_values
            res = {}
            for case, kw in CASES.items():
                for with_prompt in (False, True):
                    ids = eos_model.generate(pixel_values=pv, input_ids=prefix if with_prompt else None, **kw)[0].tolist()
                    res[f"{case}{'.prompt' if with_prompt else ''}"] = {"ids": ids, "caption": tok.decode(ids, skip_special_tokens=True)}
            eos_res[name] = res
        gen["eos"] = eos_res
    st = out / "outputs.safetensors"
    save_file(tensors, str(st))
    gj = out / "generate.json"
    gj.write_text(json.dumps(gen, indent=1) + "\n")
    toks = [{"text": s, "ids": tok(s).input_ids, "decoded": tok.decode(tok(s).input_ids, skip_special_tokens=True)} for s in SENTENCES]
    tj = out / "tokenizer.json"
    tj.write_text(json.dumps(toks, indent=1, ensure_ascii=False) + "\n")
    return [st, gj, tj, *sorted(p for p in eos_dir.iterdir() if p.is_file())]
