"""diffusers' side of `npm run bench -- pipeline`: StableDiffusionPix2PixZeroPipeline on the same model, image,
caption, sentences and settings as our `edit`, timed per phase. Driven as tools/reference/pipeline_outputs.py
drives it (VAE posterior mean as the image latent, negative prompt = caption, CFG scale, cross-attention guidance),
but writes nothing: one JSON object on stdout.

Usage: python reference_pipeline.py '<json spec>' where the spec has model, image (a PNG of the exact size),
caption, source, target (sentence lists), steps, warmup_steps, reps, seed, threads, guidance_scale, xa_guidance,
num_reg_steps, num_auto_corr_rolls, lambda_auto_corr, lambda_kl; optionally captioner (a transformers BLIP folder: the
caption is then written by BLIP with the authors' settings, as our captioner writes it, and `caption` is unused).

Phases (milliseconds, each the median of `reps` timed runs after a warm-up run of `warmup_steps` steps):
  caption    (with a captioner) BlipProcessor + generate: prompt "a picture of", 3 beams, min_length 10, 26 new
             tokens, the prompt stripped (our AUTHORS_CAPTION_OPTIONS)
  direction  get_embeds(source) + get_embeds(target) (the mean sentence embeddings)
  encode     image_processor.preprocess + vae.encode (posterior mean, scaled)
  inversion  invert() without the VAE decode of x_T it always does at the end (timed apart: invert_decode)
  edit       __call__(output_type="latent"): reference pass + cross-attention guided edit pass
  decode     vae.decode of the edited latents
"""
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from diffusers import StableDiffusionPix2PixZeroPipeline
from transformers import BlipForConditionalGeneration, BlipProcessor

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tools" / "reference"))
from bench_util import rss_mib  # noqa: E402
from pipeline_outputs import load as load_pipeline  # noqa: E402  (the fixtures' way of building the pipeline)


def load(sd: str) -> StableDiffusionPix2PixZeroPipeline:
    pipe = load_pipeline(ROOT, Path(sd))
    pipe.set_progress_bar_config(disable=True)
    return pipe


CAPTION_PROMPT = "a picture of"


def caption(blip: tuple[BlipForConditionalGeneration, BlipProcessor], image_file: str) -> str:
    model, processor = blip
    inputs = processor(images=Image.open(image_file).convert("RGB"), text=CAPTION_PROMPT, return_tensors="pt")
    with torch.no_grad():
        ids = model.generate(**inputs, num_beams=3, min_length=10, max_new_tokens=26, do_sample=False)[0]
    text = processor.decode(ids, skip_special_tokens=True).strip()
    return text[len(CAPTION_PROMPT):].strip() if text.startswith(CAPTION_PROMPT) else text


def run(pipe: StableDiffusionPix2PixZeroPipeline, spec: dict, steps: int,
        blip: tuple[BlipForConditionalGeneration, BlipProcessor] | None = None) -> tuple[dict, torch.Tensor]:
    ms: dict[str, float] = {}
    if blip is not None:
        t = time.perf_counter()
        spec = dict(spec, caption=caption(blip, spec["image"]))
        ms["caption"] = (time.perf_counter() - t) * 1000
    decode_ms = [0.0]
    real_decode = pipe.vae.decode

    def timed_decode(*args, **kwargs):
        t = time.perf_counter()
        out = real_decode(*args, **kwargs)
        decode_ms[0] += (time.perf_counter() - t) * 1000
        return out

    t0 = time.perf_counter() - ms.get("caption", 0) / 1000
    with torch.no_grad():
        source = pipe.get_embeds(spec["source"])
        target = pipe.get_embeds(spec["target"])
    t1 = time.perf_counter()
    ms["direction"] = (t1 - t0) * 1000 - ms.get("caption", 0)
    with torch.no_grad():
        image = pipe.image_processor.preprocess(Image.open(spec["image"]).convert("RGB"))
        latents = pipe.vae.encode(image).latent_dist.mean * pipe.vae.config.scaling_factor
    t2 = time.perf_counter()
    ms["encode"] = (t2 - t1) * 1000
    pipe.vae.decode = timed_decode
    try:
        inverted = pipe.invert(
            spec["caption"], image=latents, num_inference_steps=steps, generator=torch.Generator().manual_seed(spec["seed"]),
            output_type="pt", lambda_auto_corr=spec["lambda_auto_corr"], lambda_kl=spec["lambda_kl"],
            num_reg_steps=spec["num_reg_steps"], num_auto_corr_rolls=spec["num_auto_corr_rolls"],
        ).latents
    finally:
        pipe.vae.decode = real_decode
    t3 = time.perf_counter()
    ms["invert_decode"] = decode_ms[0]
    ms["inversion"] = (t3 - t2) * 1000 - decode_ms[0]
    edited = pipe(
        prompt=spec["caption"], negative_prompt=spec["caption"], source_embeds=source, target_embeds=target,
        num_inference_steps=steps, guidance_scale=spec["guidance_scale"],
        cross_attention_guidance_amount=spec["xa_guidance"], latents=inverted, output_type="latent",
    ).images
    t4 = time.perf_counter()
    ms["edit"] = (t4 - t3) * 1000
    with torch.no_grad():
        decoded = pipe.vae.decode(edited / pipe.vae.config.scaling_factor).sample
    t5 = time.perf_counter()
    ms["decode"] = (t5 - t4) * 1000
    ms["total"] = (t5 - t0) * 1000 - decode_ms[0]
    del decoded
    ms["captionText"] = spec["caption"]  # type: ignore[assignment]
    return ms, edited


def main() -> None:
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(int(spec["threads"]))
    torch.manual_seed(0)
    t = time.perf_counter()
    pipe = load(spec["model"])
    blip = None
    if spec.get("captioner"):
        blip = (BlipForConditionalGeneration.from_pretrained(spec["captioner"]).eval(), BlipProcessor.from_pretrained(spec["captioner"]))
    load_ms = (time.perf_counter() - t) * 1000
    rss_loaded = rss_mib()
    if int(spec["warmup_steps"]) > 0:
        run(pipe, spec, int(spec["warmup_steps"]), blip)
    runs = []
    for _ in range(int(spec["reps"])):
        ms, edited = run(pipe, spec, int(spec["steps"]), blip)
        runs.append(ms)
    caption_text = runs[-1].pop("captionText")
    for r in runs:
        r.pop("captionText", None)
    ms = {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in runs[0]}
    print(json.dumps({
        "threads": torch.get_num_threads(),
        "torch": torch.__version__, "ompWaitPolicy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
        "loadMs": load_ms,
        "caption": caption_text,
        "phasesMs": ms,
        "runsTotalMs": [r["total"] for r in runs],
        "rssAfterLoadMiB": rss_loaded,
        # Linux reports ru_maxrss in KiB.
        "maxRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "editedShape": list(edited.shape),
        # NaN (a diverging setting, e.g. regularisation on 4 x 4 latents) as null: JSON has no NaN.
        "edited": [v if v == v else None for v in edited.detach().flatten().tolist()],
    }))


if __name__ == "__main__":
    main()
