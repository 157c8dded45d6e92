"""The toy-world quality benchmark (`npm run eval`): pix2pix-zero edits of held-out scenes, judged.

For each task (circle->square, square->triangle, red->blue) it draws scenes of held-out seeds (>= 10**9, a
stream of its own per task) whose main object (index 0) has the source attribute, renders them at the model's
size, and edits them with

  ours-xaX         our TypeScript pipeline (tools/toyworld/edit-batch.ts, the public Pix2PixZero API) with
                   cross-attention guidance X (--xa-guidance, default 0.1 as the authors')
  ours-xa0         the same without cross-attention guidance (xaGuidance 0), from the same inversion
  diffusers-xaX    diffusers' StableDiffusionPix2PixZeroPipeline on the same weights and inputs
  diffusers-xa0    the same with cross_attention_guidance_amount 0
  ours-di-xaX, ours-di-xa0            ours with Direct Inversion (Ju et al., PnPInversion: the reference pass kept on
                                      the inversion trajectory, the edit given the same offsets), same inversion
  diffusers-di-xaX, diffusers-di-xa0  the reference implementation of Direct Inversion over diffusers' components
                                      (tools/reference/direct_inversion.py), same inversion
  ours-di-lb-xaX, ours-di-lb-xa0      Direct Inversion and local blending (Prompt-to-Prompt's LocalBlend: outside a
                                      mask of the source word's reference attention the edit keeps the reference
                                      pass; for a colour word, the caption's next word's, undilated) and
                                      self-attention injection in the first half of the steps (--self-attention
                                      0.5), then the input's own pixels put back outside the last mask after
                                      decoding (--blend-overlay, on by default), same inversion
  diffusers-di-lb-xaX, ...-lb-xa0     its reference implementation (direct_inversion.LocalBlend)

with the same caption (the model's BLIP captioner through our Captioner when it exists, else world.describe),
the same sentence banks (assets/sentences/<concept>.txt, read by both sides), the VAE posterior mean, the
caption as negative prompt, the same guidance scale, steps and noise regularisation (--reg-steps x (5 + 1)
steps, lambda 20, seed 0; --reg-steps 0 for plain DDIM inversion). As yardsticks it scores the input itself
(no edit), the ideal edit (world.with_object rendered), our reference pass (the reconstruction) and our Direct
Inversion reference pass (reconstruction-di: the VAE round trip of the input).

Per image: edit success (the classifier of classifier.py on a crop at the input object's place says the target
attribute and keeps the other one), structure (the object segmented analytically against the scene's known
background: IoU with the ideal edit's mask and with the input's, centroid error and size error against the ideal
edit), background change (mean abs pixel change, 0..255, outside both masks dilated by 2 px, against the input
and against the reconstruction), and ours-vs-diffusers agreement (mean abs difference of the edited images).

Writes docs/bench/eval.json and docs/eval.md (tables + settings); work files under tmp/eval/.

    bash tools/toyworld/eval.sh [--quick] [--n 50] [--steps 20] [--scene-seed BASE] [--model DIR] [--captioner DIR|none]
                                [--xa-guidance 0.1] [--guidance-scale 5] [--reg-steps 5] [--retrain] [--reuse] [--only ours,diffusers]
"""

from __future__ import annotations

import argparse
import calendar
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tools" / "reference"))
import classifier as clf  # noqa: E402
import world  # noqa: E402

#: task -> (attribute, source, target)
TASKS: dict[str, tuple[str, str, str]] = {
    "circle2square": ("shape", "circle", "square"),
    "square2triangle": ("shape", "square", "triangle"),
    "red2blue": ("colour", "red", "blue"),
}
HELDOUT_SEED0 = 10**9
TASK_STREAM = 10**6  # task k draws seeds HELDOUT_SEED0 + k * TASK_STREAM + 0, 1, 2, ...


def methods_for(xa: float) -> tuple[str, ...]:
    """The edited-image folders (and table rows) for cross-attention guidance xa and 0: ours, diffusers, and both
    with Direct Inversion."""
    return (f"ours-xa{xa:g}", "ours-xa0", f"diffusers-xa{xa:g}", "diffusers-xa0",
            f"ours-di-xa{xa:g}", "ours-di-xa0", f"diffusers-di-xa{xa:g}", "diffusers-di-xa0",
            f"ours-di-lb-xa{xa:g}", "ours-di-lb-xa0", f"diffusers-di-lb-xa{xa:g}", "diffusers-di-lb-xa0")


METHODS = methods_for(0.1)  # main() sets it from --xa-guidance
YARDSTICKS = ("input", "ideal", "reconstruction", "reconstruction-di")
#: (ours, diffusers) method prefixes compared for agreement and guidance effect
SIDES = (("ours", "diffusers"), ("ours-di", "diffusers-di"), ("ours-di-lb", "diffusers-di-lb"))
#: the attribute words whose blend mask is the next caption word's, undilated (a subset of lib/editing/sentence-generator.ts' list)
ATTRIBUTE_WORDS = frozenset({"red", "blue", "green", "yellow", "orange", "purple", "pink", "black", "white", "grey", "gray", "brown"})


def injections(settings: dict, source: str) -> tuple[float, float]:
    """The -di-lb- rows' self- and cross-attention injection fractions for an edit of `source`: an attribute edit (a
    colour) keeps the object's layout, so it takes the attribute settings where they are given."""
    sa, ca = settings.get("selfAttention") or 0.0, settings.get("crossAttention") or 0.0
    if source in ATTRIBUTE_WORDS:
        sa = settings["attributeSelfAttention"] if settings.get("attributeSelfAttention") is not None else sa
        ca = settings["attributeCrossAttention"] if settings.get("attributeCrossAttention") is not None else ca
    return sa, ca


def side_label(side: str) -> str:
    return " (Direct Inversion + local blend)" if "-lb" in side else " (Direct Inversion)" if "-di" in side else ""
SEG_FRACTION = 0.5  # a pixel is object when it is > this fraction of the way from the background to the object colour
DILATE_PX = 2


# ---------------------------------------------------------------------------------------------- scenes


def _contrast(a, b) -> float:
    return float(sum(abs(x - y) for x, y in zip(a, b)))


def colour_fits(colour: str, bg: world.Background) -> bool:
    """world.py's own rule for object colours on a background (contrast > 150 with both background colours)."""
    return all(_contrast(world.COLOURS[colour], world.BACKGROUND_COLOURS[c]) > 150 for c in bg.colours)


def draw_scenes(task_index: int, attr: str, src: str, tgt: str, n: int, base: int = HELDOUT_SEED0) -> list[tuple[int, world.Scene]]:
    """The first n held-out scenes of this task's seed stream (from `base`) whose main object has the source
    attribute (and, for a colour edit, a background the target colour stands out on, as world.py requires of
    every object)."""
    out = []
    seed = base + task_index * TASK_STREAM
    while len(out) < n:
        s = world.scene_for_seed(seed)
        o = s.objects[0]
        if getattr(o, attr) == src and (attr != "colour" or colour_fits(tgt, s.background)):
            out.append((seed, s))
        seed += 1
    return out


# ---------------------------------------------------------------------------------------------- measures


def dilate(m: np.ndarray, r: int) -> np.ndarray:
    out = m.copy()
    h, w = m.shape
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx > r * r:
                continue
            sh = np.zeros_like(m)
            sh[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = m[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
            out |= sh
    return out


def largest_component(m: np.ndarray, seed_near: tuple[float, float]) -> np.ndarray:
    """The 4-connected component of m with the most pixels (ties: nearest to seed_near), or m if empty."""
    h, w = m.shape
    label = np.zeros((h, w), dtype=np.int32)
    best, best_key = 0, None
    k = 0
    for y0, x0 in zip(*np.nonzero(m)):
        if label[y0, x0]:
            continue
        k += 1
        q = deque([(y0, x0)])
        label[y0, x0] = k
        pix = []
        while q:
            y, x = q.popleft()
            pix.append((y, x))
            for yy, xx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= yy < h and 0 <= xx < w and m[yy, xx] and not label[yy, xx]:
                    label[yy, xx] = k
                    q.append((yy, xx))
        ys, xs = np.array(pix).T
        dist = math.hypot(ys.mean() - seed_near[1], xs.mean() - seed_near[0])
        key = (len(pix), -dist)
        if best_key is None or key > best_key:
            best, best_key = k, key
    return label == best if best else m


class Judge:
    """Scores images of one input scene: classifier verdicts, segmentation against the known background."""

    def __init__(self, model: clf.ObjectClassifier, scene: world.Scene, attr: str, src: str, tgt: str, size: int) -> None:
        self.model, self.scene, self.attr, self.src, self.tgt, self.size = model, scene, attr, src, tgt, size
        self.obj = scene.objects[0]
        self.ideal_scene = world.with_object(scene, 0, **{attr: tgt})
        self.input = np.asarray(world.render(scene, size), dtype=np.float32)
        self.bg = np.asarray(world.render(world.Scene([], scene.background), size), dtype=np.float32)
        self.mask_in = world.object_mask(scene, size, 0)
        self.mask_ideal = world.object_mask(self.ideal_scene, size, 0)
        # Where the main object may be: a disc around its centre, minus the other objects (dilated).
        yy, xx = np.mgrid[0:size, 0:size]
        cx, cy, r = self.obj.cx * size, self.obj.cy * size, self.obj.radius * size
        window = (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= (2.0 * r + 2) ** 2
        for i in range(1, len(scene.objects)):
            window &= ~dilate(world.object_mask(scene, size, i), DILATE_PX)
        self.window = window
        self.outside = ~dilate(self.mask_in | self.mask_ideal, DILATE_PX)
        # Object colours the segmentation accepts: the source object's and the target's.
        colours = {self.obj.colour} | ({tgt} if attr == "colour" else set())
        # Per pixel: the smallest distance from the background to an accepted object colour.
        self.obj_dist = np.min([np.linalg.norm(self.bg - np.array(world.COLOURS[c], np.float32), axis=-1) for c in colours], axis=0)
        self.scale = 64.0 / size  # pixel figures are quoted at 64 px

    def segment(self, img: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(img - self.bg, axis=-1)
        m = (d > SEG_FRACTION * self.obj_dist) & self.window
        return largest_component(m, (self.obj.cx * self.size, self.obj.cy * self.size))

    def classify(self, imgs: list[np.ndarray]) -> list[tuple[str, str]]:
        crops = np.stack([clf.crop(np.clip(np.rint(a), 0, 255).astype(np.uint8), self.obj.cx, self.obj.cy, self.obj.radius) for a in imgs])
        s, c = clf.predict(self.model, crops)
        return list(zip(s, c))

    def score(self, img: np.ndarray, verdict: tuple[str, str], rec: np.ndarray | None) -> dict:
        shape, colour = verdict
        if self.attr == "shape":
            target_ok, other_ok = shape == self.tgt, colour == self.obj.colour
        else:
            target_ok, other_ok = colour == self.tgt, shape == self.obj.shape
        seg = self.segment(img)

        def iou(a, b):
            u = (a | b).sum()
            return float((a & b).sum() / u) if u else 1.0

        def centroid(m):
            ys, xs = np.nonzero(m)
            return (xs.mean(), ys.mean()) if len(xs) else (math.nan, math.nan)

        ce, ci = centroid(seg), centroid(self.mask_ideal)
        area_ratio = seg.sum() / max(self.mask_ideal.sum(), 1)
        out = self.outside
        rec_change = float(np.abs(img - rec)[out].mean()) if rec is not None else None
        return {
            "shape": shape, "colour": colour, "success": bool(target_ok and other_ok), "target": bool(target_ok),
            "kept": bool(other_ok),
            "iou_ideal": round(iou(seg, self.mask_ideal), 4), "iou_input": round(iou(seg, self.mask_in), 4),
            "centre_px": round(float(math.hypot(ce[0] - ci[0], ce[1] - ci[1]) * self.scale), 3) if seg.any() else None,
            "size_err": round(float(abs(math.sqrt(area_ratio) - 1.0)), 4),
            "bg_change": round(float(np.abs(img - self.input)[out].mean()), 3),
            "bg_change_rec": round(rec_change, 3) if rec_change is not None else None,
        }


# ---------------------------------------------------------------------------------------------- editors


def read_sentences(path: Path) -> list[str]:
    """As lib/editing/sentences.ts parses a bank: one a line, blank lines and '#' lines skipped."""
    lines = [l.strip() for l in path.read_text(encoding="utf8").splitlines()]
    out = [l for l in lines if l and not l.startswith("#")]
    if not out:
        raise ValueError(f"sentence bank {path} is empty")
    return out


def image_size(model: Path) -> int:
    unet = json.loads((model / "unet" / "config.json").read_text())
    vae = json.loads((model / "vae" / "config.json").read_text())
    return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)


def run_node(job: dict, path: Path, log) -> subprocess.Popen:
    path.write_text(json.dumps(job, indent=1))
    # niced to 10 like the rest of the run (not 10 more when this process is niced already)
    cmd = (["nice", "-n", str(10 - os.nice(0))] if os.nice(0) < 10 else []) + ["node", str(ROOT / "dist" / "tools" / "toyworld" / "edit-batch.js"), str(path)]
    log(f"eval: {' '.join(cmd)}")
    # One thread, as torch's (OMP_NUM_THREADS=1 in eval.sh): native TensorFlow reads its own variables, not OpenMP's.
    threads = os.environ.get("OMP_NUM_THREADS", "1")
    env = {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads, **os.environ, "PIX2PIX_ZERO_BACKEND": job.get("backend", "wasm")}
    return subprocess.Popen(cmd, cwd=ROOT, stderr=open(path.with_suffix(".log"), "w"), env=env)


def load_diffusers(model: Path):
    from diffusers import (AutoencoderKL, DDIMInverseScheduler, DDIMScheduler, StableDiffusionPix2PixZeroPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextModel, CLIPTokenizer

    scheduler = DDIMScheduler.from_pretrained(model / "scheduler")
    f32 = torch.float32  # float16 / bfloat16 weights compute in float32, as our loader does
    pipe = StableDiffusionPix2PixZeroPipeline(
        vae=AutoencoderKL.from_pretrained(model / "vae", torch_dtype=f32),
        text_encoder=CLIPTextModel.from_pretrained(model / "text_encoder", dtype=f32),
        tokenizer=CLIPTokenizer.from_pretrained(model / "tokenizer"), unet=UNet2DConditionModel.from_pretrained(model / "unet", torch_dtype=f32),
        scheduler=scheduler, feature_extractor=None, safety_checker=None,
        inverse_scheduler=DDIMInverseScheduler.from_config(scheduler.config), caption_generator=None,
        caption_processor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_diffusers(model: Path, items: list[dict], tasks: dict, settings: dict, log, stop_at: float | None = None) -> dict:
    """Edits every item with diffusers' pipeline (skipping those already done, none started after stop_at);
    returns seconds per item."""
    import direct_inversion  # tools/reference/direct_inversion.py (imports diffusers)

    pipe = load_diffusers(model)
    embeds = {}
    with torch.no_grad():
        for name, t in tasks.items():
            src, tgt = pipe.get_embeds(read_sentences(ROOT / t["sourceSentences"])), pipe.get_embeds(read_sentences(ROOT / t["targetSentences"]))
            # the pipeline's direction is tgt - src (both means): a scaled direction is src + k (tgt - src)
            k = settings.get("directionScale", 1.0)
            embeds[name] = (src, tgt if k == 1.0 else src + k * (tgt - src))
    sf = pipe.vae.config.scaling_factor
    seconds = {}
    for k, it in enumerate(items):
        if all((ROOT / o).exists() for o in it["diffusers_outputs"] + it["diffusers_di_outputs"] + it["diffusers_lb_outputs"]):
            continue
        if stop_at is not None and time.time() > stop_at:
            log(f"eval: diffusers stops at the deadline with {len(items) - k} scenes left")
            break
        t0 = time.time()
        with torch.no_grad():
            image = pipe.image_processor.preprocess(Image.open(ROOT / it["image"]).convert("RGB"))
            latents = pipe.vae.encode(image).latent_dist.mean * sf
        # diffusers' invert(), every latent of the walk recorded (the last is what invert() returns)
        trajectory = direct_inversion.invert_trajectory(pipe, it["caption"], latents, settings["steps"], torch.Generator().manual_seed(settings["seed"]),
                                                        num_reg_steps=settings["numRegSteps"])
        inv = trajectory[-1]
        src, tgt = embeds[it["task"]]
        for xa, out in zip(settings["xaGuidance"], it["diffusers_outputs"]):
            img = pipe(prompt=it["caption"], negative_prompt=it["caption"], source_embeds=src, target_embeds=tgt,
                       num_inference_steps=settings["steps"], guidance_scale=settings["guidanceScale"],
                       cross_attention_guidance_amount=xa, latents=inv.clone(), output_type="pil").images[0]
            img.save(ROOT / out)
        for xa, out in zip(settings["xaGuidance"], it["diffusers_di_outputs"]):
            edited, _ = direct_inversion.edit(pipe, it["caption"], it["caption"], src, tgt, trajectory, settings["steps"],
                                              settings["guidanceScale"], xa, direct=True)
            with torch.no_grad():
                decoded = pipe.vae.decode(edited / sf, return_dict=False)[0]
            pipe.image_processor.postprocess(decoded, output_type="pil", do_denormalize=[True])[0].save(ROOT / out)
        source = tasks[it["task"]]["source"]
        tokens = direct_inversion.blend_tokens_of(pipe.tokenizer, it["caption"], [source], ATTRIBUTE_WORDS)
        # as the library: an attribute edit keeps the thing's outline, so its mask is not dilated unless asked
        blend_dilation = settings.get("blendDilation")
        if blend_dilation is None and source in ATTRIBUTE_WORDS:
            blend_dilation = 0
        # the item's own fractions, the values our side is given (a colour edit's differ from a shape edit's)
        sa, ca = it["selfAttention"], it["crossAttention"]
        for xa, out in zip(settings["xaGuidance"], it["diffusers_lb_outputs"]):
            masks = {}
            edited, _ = direct_inversion.edit(pipe, it["caption"], it["caption"], src, tgt, trajectory, settings["steps"],
                                              settings["guidanceScale"], xa, direct=True, blend_tokens=tokens or None,
                                              blend_threshold=settings["blendThreshold"], blend_dilation=blend_dilation,
                                              blend_start=settings.get("blendStart") or 0.0, self_attention=sa, cross_attention=ca,
                                              self_attention_max_queries=settings.get("selfAttentionMaxQueries") or 256,
                                              on_mask=lambda i, m: masks.__setitem__("last", m.clone()))
            with torch.no_grad():
                decoded = pipe.vae.decode(edited / sf, return_dict=False)[0]
                # the input's own pixels outside the last mask (a caption without the word: no mask, no overlay)
                if settings.get("blendOverlay") and "last" in masks:
                    decoded = direct_inversion.overlay(decoded, image, masks["last"])
            pipe.image_processor.postprocess(decoded, output_type="pil", do_denormalize=[True])[0].save(ROOT / out)
        seconds[it["id"]] = time.time() - t0
        log(f"eval: diffusers [{k + 1}/{len(items)}] {it['id']} {seconds[it['id']]:.1f} s")
    return seconds


# ---------------------------------------------------------------------------------------------- report


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)


def aggregate(rows: list[dict]) -> dict:
    def mean(k):
        v = [r[k] for r in rows if r.get(k) is not None]
        return round(float(np.mean(v)), 4) if v else None

    return {"n": len(rows), "success": mean("success"), "target": mean("target"), "kept": mean("kept"),
            "iou_ideal": mean("iou_ideal"), "iou_input": mean("iou_input"), "centre_px": mean("centre_px"),
            "size_err": mean("size_err"), "bg_change": mean("bg_change"), "bg_change_rec": mean("bg_change_rec"),
            "centre_missing": sum(1 for r in rows if r.get("centre_px") is None)}


def write_examples(path: Path, work: Path, items: list[dict], per_task: int = 3, zoom: int = 2) -> None:
    """A grid PNG: per task the first `per_task` scenes, columns input | ideal | reconstructions | the methods."""
    cols = YARDSTICKS + METHODS
    rows = []
    for task in dict.fromkeys(i["task"] for i in items):
        rows += [i for i in items if i["task"] == task][:per_task]
    if not rows:
        return
    first = Image.open(work / "input" / f"{rows[0]['id']}.png")
    w, h = first.size[0] * zoom, first.size[1] * zoom
    top = 14
    grid = Image.new("RGB", (len(cols) * (w + 2), top + len(rows) * (h + 2)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for c, col in enumerate(cols):
        draw.text((c * (w + 2) + 3, 2), col, fill=(0, 0, 0))
    for r, it in enumerate(rows):
        for c, col in enumerate(cols):
            f = work / col / f"{it['id']}.png"
            if f.exists():
                grid.paste(Image.open(f).convert("RGB").resize((w, h), Image.Resampling.NEAREST), (c * (w + 2), top + r * (h + 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path, optimize=True)


def paired(guided: list[dict], unguided: list[dict]) -> dict:
    """Per-image differences guided - unguided of the structure measures: mean, standard error, and how often
    guidance is better / worse (higher IoU, lower centre error and background change)."""
    out = {}
    for k, higher_better in (("iou_ideal", True), ("iou_input", True), ("centre_px", False), ("size_err", False), ("bg_change", False)):
        d = np.array([a[k] - b[k] for a, b in zip(guided, unguided) if a.get(k) is not None and b.get(k) is not None], dtype=np.float64)
        if len(d) == 0:
            continue
        better = d > 1e-9 if higher_better else d < -1e-9
        worse = d < -1e-9 if higher_better else d > 1e-9
        out[k] = {"mean_diff": round(float(d.mean()), 4), "se": round(float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0, 4),
                  "better": int(better.sum()), "worse": int(worse.sum()), "n": int(len(d))}
    return out


def plain_of(method: str) -> str | None:
    """The plain pix2pix-zero row a Direct Inversion row is measured against: the same side and guidance
    (`ours-di-lb-xa0.1` -> `ours-xa0.1`); None for a plain row or a yardstick."""
    side, _, rest = method.partition("-")
    if not rest.startswith("di-"):
        return None
    return f"{side}-{rest.split('-')[-1]}"


def against_plain(rows: dict[str, list[dict]]) -> dict:
    """Each Direct Inversion row against plain pix2pix-zero on the same scenes (issue #17's targets: success at
    least plain's on every task, background change at most half): success of both, the scenes lost (plain
    succeeds, the row does not) and won, and the ratio of the mean background changes."""
    out = {}
    for m, r in rows.items():
        plain = plain_of(m)
        if plain is None or not r or len(rows.get(plain, [])) != len(r):
            continue
        p = rows[plain]
        bg_m, bg_p = float(np.mean([a["bg_change"] for a in r])), float(np.mean([a["bg_change"] for a in p]))
        out[m] = {"plain": plain, "success": round(float(np.mean([a["success"] for a in r])), 4),
                  "plain_success": round(float(np.mean([a["success"] for a in p])), 4),
                  "lost": sum(1 for a, b in zip(r, p) if b["success"] and not a["success"]),
                  "won": sum(1 for a, b in zip(r, p) if a["success"] and not b["success"]),
                  "bg_ratio": round(bg_m / bg_p, 3) if bg_p > 0 else None}
    return out


def fmt(v, pct=False, nd=2):
    if v is None:
        return "-"
    return f"{100 * v:.0f} %" if pct else f"{v:.{nd}f}"


def write_markdown(path: Path, report: dict) -> None:
    s = report["settings"]
    L = ["# Quality benchmark on the toy world (`npm run eval`)", "",
         "Generated by `tools/toyworld/eval.py` (this file and `docs/bench/eval.json` are rewritten by each run; the",
         "commentary at the end is kept between the markers).", "",
         "Settings:", "",
         f"- model `{s['model']}` at {s['image_size']} px; captions: {s['caption_source']};",
         f"- {s['steps']} DDIM steps for the inversion and for the edit, guidance scale {s['guidanceScale']}, negative prompt = caption,",
         (f"  VAE posterior mean, noise regularisation {s['numRegSteps']} x ({s['numAutoCorrRolls']} + 1) steps with lambda 20, seed {s['seed']};"
          if s['numRegSteps'] else f"  VAE posterior mean, no noise regularisation (plain DDIM inversion, `--reg-steps 0`), seed {s['seed']};"),
         f"  cross-attention guidance {s['xaGuidance'][0]} (`-xa{s['xaGuidance'][0]:g}`) or 0 (`-xa0`), all edits from the same inversion;",
         *([f"- every task's direction times {s['directionScale']:g} (`--direction-scale`), on every row and both sides;"] if s.get('directionScale', 1.0) != 1.0 else []),
         "- `-di-` rows: Direct Inversion (Ju et al., PnPInversion): the reference pass walks the inversion trajectory and the",
         "  edit gets the same offsets (ours: `directInversion: true`; diffusers: `tools/reference/direct_inversion.py`);",
         f"- `-di-lb-` rows: Direct Inversion and local blending (Prompt-to-Prompt's LocalBlend, threshold {s.get('blendThreshold', 0.3)}, dilation "
         f"{'the default' if s.get('blendDilation') is None else s['blendDilation']}"
         + (f", unblended in the first {s['blendStart']:g} of the steps" if s.get('blendStart') else "")
         + (", the input's own pixels put back outside the last mask after decoding (`overlay`)" if s.get('blendOverlay') else "")
         + (f", and self-attention injection in the first {s['selfAttention']:g} of the steps" if s.get('selfAttention') else "")
         + (f", and cross-attention injection in the first {s['crossAttention']:g} of the steps" if s.get('crossAttention') else "")
         + ("; for a colour edit self-attention injection {:g} and cross-attention injection {:g}".format(*injections(s, "red"))
            if s.get('attributeSelfAttention') is not None or s.get('attributeCrossAttention') is not None else "") + "): outside a mask of",
         "  the source word's attention in the reference pass (for a colour word, the caption's next word: the object; its mask",
         "  undilated unless `--blend-dilation` says otherwise) the edit keeps the reference latent (ours: `localBlend` with `overlay` when on,",
         "  `selfAttentionInjection`, `crossAttentionInjection`; diffusers: `direct_inversion.LocalBlend`, `SelfAttentionReplace`,",
         "  `CrossAttentionReplace`);",
         f"- sentence banks `{s.get('banks', 'assets/sentences')}/<concept>.txt` (one sentence a line), the same files on both sides"
         + (f"; ours with the saved directions `{s['directions']}/<task>.safetensors` instead;" if s.get('directions') else ";"),
         f"- held-out scenes: seeds from {s.get('scene_seed', HELDOUT_SEED0)} (task k draws {s.get('scene_seed', HELDOUT_SEED0)} + k x {TASK_STREAM}, + 1, ...; `--scene-seed`), the first",
         f"  {s['n']} per task whose main object (index 0) has the source attribute (for a colour edit: on a background the",
         "  target colour stands out on, world.py's rule for every object); all seeds are listed in `docs/bench/eval.json`;",
         f"- our backend: {report.get('backend', '?')}; the run took {report['seconds']['total'] / 60:.1f} min on {report['machine']}, shared with other jobs.", "",
         f"Classifier (`tools/toyworld/classifier.py`): held-out accuracy on clean renders {fmt(report['classifier']['heldout']['both'], True)}"
         f" (shape {fmt(report['classifier']['heldout']['shape'], True)}, colour {fmt(report['classifier']['heldout']['colour'], True)},"
         f" {report['classifier']['heldout']['crops']} crops of seeds {report['classifier']['heldout']['seeds']}).", "",
         "Columns: **success** = the classifier sees the target attribute and the other attribute kept (target / kept",
         "separately); **IoU ideal / input** = IoU of the segmented object with the ideal edit's mask / with the input's;",
         "**centre** = centroid error against the ideal edit (px at 64 px); **size** = |sqrt(area ratio) - 1| against the",
         "ideal edit; **bg** = mean abs change (0..255) outside the objects against the input, **bg rec** = the same",
         "against our reconstruction (the reference pass, which carries the VAE and inversion error). Yardsticks:",
         "*input* (no edit), *ideal* (the exact edit rendered: the measures' own floor), *reconstruction* (our reference pass),",
         "*reconstruction-di* (our reference pass with Direct Inversion: the VAE round trip of the input).", ""]
    tasks = list(report["tasks"].values())
    L += ["## Summary (mean over the tasks)", "", "| method | success | IoU ideal | centre px | bg | bg rec |", "|---|---|---|---|---|---|"]
    for m in YARDSTICKS + METHODS:
        got = [r["methods"][m] for r in tasks if m in r["methods"]]
        if len(got) != len(tasks):
            continue
        avg = lambda k: float(np.mean([g[k] for g in got])) if all(g[k] is not None for g in got) else None  # noqa: E731
        L.append(f"| {m} | {fmt(avg('success'), True)} | {fmt(avg('iou_ideal'))} | {fmt(avg('centre_px'))} | {fmt(avg('bg_change'), nd=1)} | {fmt(avg('bg_change_rec'), nd=1)} |")
    L.append("")
    vs = [m for m in METHODS if all(m in r.get("against_plain", {}) for r in tasks)] if tasks else []
    if vs:
        names = [f"{TASKS[t][1]} -> {TASKS[t][2]}" for t in report["tasks"]]
        L += ["Against plain pix2pix-zero (the same side and guidance, on the same scenes; issue #17's targets: success at least",
              "plain's on every task, background change at most half): success against plain's (scenes lost / won), then the",
              "background change as a multiple of plain's, per task and for the mean over the tasks.", "",
              "| method | " + " | ".join(names) + " | bg " + " | bg ".join(names) + " | bg mean |",
              "|---|" + "---|" * (2 * len(names) + 1)]
        for m in vs:
            got = [r["against_plain"][m] for r in tasks]
            mean_bg = [(r["methods"][m]["bg_change"], r["methods"][got[0]["plain"]]["bg_change"]) for r in tasks]
            ratio = sum(a for a, _ in mean_bg) / sum(b for _, b in mean_bg) if sum(b for _, b in mean_bg) > 0 else None
            L.append(f"| {m} | " + " | ".join(f"{fmt(g['success'], True)} / {fmt(g['plain_success'], True)} ({g['lost']} / {g['won']})" for g in got)
                     + " | " + " | ".join(f"{fmt(g['bg_ratio'])}x" for g in got) + f" | {fmt(ratio)}x |")
        L.append("")
    for task, res in report["tasks"].items():
        attr, src, tgt = TASKS[task]
        cut = f" of {res['drawn']} drawn: the run was cut short at its deadline" if res.get("drawn", res["n"]) > res["n"] else ""
        L += [f"## {src} -> {tgt} ({res['n']} scenes{cut})", "",
              "| method | success | target | kept | IoU ideal | IoU input | centre px | size err | bg | bg rec |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for m in YARDSTICKS + METHODS:
            a = res["methods"].get(m)
            if a is None:
                continue
            L.append(f"| {m} | {fmt(a['success'], True)} | {fmt(a['target'], True)} | {fmt(a['kept'], True)} | {fmt(a['iou_ideal'])} | "
                     f"{fmt(a['iou_input'])} | {fmt(a['centre_px'])} | {fmt(a['size_err'])} | {fmt(a['bg_change'], nd=1)} | {fmt(a['bg_change_rec'], nd=1)} |")
        c = res.get("captions")
        if c:
            L += ["", f"Captions: {fmt(c['exact'], True)} identical to the ground-truth description, {fmt(c['name_source'], True)} name the source {attr} ('{src}')."]
        for side, ge in res.get("guidance_effect", {}).items():
            L += ["", f"Guidance effect, {side} (per image, xa {s['xaGuidance'][0]} minus xa 0; mean +- standard error; images better / worse with guidance): " + "; ".join(
                f"{k} {v['mean_diff']:+.3f} +- {v['se']:.3f} ({v['better']} / {v['worse']})" for k, v in ge.items()) + "."]
        for xa, de in res.get("direct_inversion_effect", {}).items():
            L += ["", f"Direct Inversion effect, ours {xa} (per image, Direct Inversion minus plain; mean +- standard error; images better / worse with it): " + "; ".join(
                f"{k} {v['mean_diff']:+.3f} +- {v['se']:.3f} ({v['better']} / {v['worse']})" for k, v in de.items()) + "."]
        for xa, de in res.get("local_blend_effect", {}).items():
            L += ["", f"Local blend effect, ours {xa} (per image, Direct Inversion + local blend minus Direct Inversion; mean +- standard error; images better / worse with it): " + "; ".join(
                f"{k} {v['mean_diff']:+.3f} +- {v['se']:.3f} ({v['better']} / {v['worse']})" for k, v in de.items()) + "."]
        ag = res.get("agreement", {})
        if ag:
            L += ["", "Ours vs diffusers (same weights, inputs, captions): " + "; ".join(
                f"xa {k}: mean abs difference {v['mean_abs']:.3f} / 255 (max per image {v['max_image_mean_abs']:.3f}, "
                f"largest pixel difference {v['max_abs']:.0f}), same verdict on {fmt(v['same_verdict'], True)} of images"
                for k, v in ag.items()) + "."]
        L.append("")
    if report.get("examples"):
        L += [f"Examples (the first three scenes of each task; columns: {', '.join(YARDSTICKS + METHODS)}):", "",
              f"![examples]({os.path.relpath(ROOT / report['examples'], path.parent)})", ""]
    t = report["seconds"]
    per = t.get("ours_mean_per_image")
    L += ["## Timings", "", f"Total {t['total']:.0f} s for {t.get('edited_images', 0)} scenes; ours {t.get('ours', 0):.0f} s, diffusers {t.get('diffusers', 0):.0f} s, side by side, one",
          "thread each, niced (once diffusers is done a second process of ours takes items from the other end);",
          "captions {:.0f} s, classifier load {:.0f} s.".format(t.get("captions", 0), t.get("classifier", 0))]
    if per and t.get("diffusers_mean_per_image"):
        L += [f"Per scene (inversion + both edits): ours {per['invert'] + sum(per['edits']):.1f} s (inversion {per['invert']:.1f} s, edit with guidance "
              f"{per['edits'][0]:.1f} s, without {per['edits'][-1]:.1f} s" + (f"; Direct Inversion edits {' / '.join(f'{e:.1f}' for e in per['editsDirect'])} s" if per.get("editsDirect") else "")
              + (f"; with local blending {' / '.join(f'{e:.1f}' for e in per['editsBlend'])} s" if per.get("editsBlend") else "")
              + f"), diffusers {t['diffusers_mean_per_image']:.1f} s (its own CPU kernels; all its edits)."]
    L.append("")
    old = path.read_text() if path.exists() else ""
    begin, end = "<!-- commentary -->", "<!-- /commentary -->"
    comment = old[old.index(begin):old.index(end) + len(end)] if begin in old and end in old else f"{begin}\n{end}"
    L += ["## Commentary", "", comment, ""]
    path.write_text("\n".join(L))


# ---------------------------------------------------------------------------------------------- main


def out_json_prev(args) -> Path:
    return args.json if args.json.is_absolute() else ROOT / args.json


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Toy-world quality benchmark of pix2pix-zero (ours vs diffusers).")
    ap.add_argument("--quick", action="store_true", help="5 scenes per task")
    ap.add_argument("--n", type=int, default=50, help="scenes per task (default 50)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance-scale", type=float, default=5.0)
    ap.add_argument("--xa-guidance", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scene-seed", type=int, default=HELDOUT_SEED0, help=f"first seed of the held-out scenes (default {HELDOUT_SEED0}, the tables' so far)")
    ap.add_argument("--blend-threshold", type=float, default=0.3, help="local blending's mask threshold for the -di-lb- rows (default 0.3, the library's)")
    ap.add_argument("--blend-dilation", type=int, default=None, help="local blending's mask dilation in latent pixels for the -di-lb- rows (default: the library's, max(1, round(latent side / 16)), 0 for a colour word)")
    ap.add_argument("--blend-start", type=float, default=0.0,
                    help="the fraction of the first steps the -di-lb- rows leave unblended (default 0, the library's: every step)")
    ap.add_argument("--blend-overlay", action=argparse.BooleanOptionalAction, default=True,
                    help="the -di-lb- rows put the input's own pixels back outside the last blend mask after decoding (default on; "
                         "--no-blend-overlay: the latent blend alone, as the tables before 2026-12-08)")
    ap.add_argument("--self-attention", type=float, default=0.5,
                    help="self-attention injection (fraction of the first steps) for the -di-lb- rows (default 0.5: it keeps the layout the blend leaves free; 0: off)")
    ap.add_argument("--direction-scale", type=float, default=1.0,
                    help="multiplies every task's direction, on every row and both sides (default 1, the authors')")
    ap.add_argument("--self-attention-max-queries", type=int, default=None,
                    help="self-attention injection only in layers of at most this many queries (default: the library's, 256)")
    ap.add_argument("--cross-attention", type=float, default=0.0,
                    help="cross-attention injection (fraction of the first steps) for the -di-lb- rows (default 0: off)")
    ap.add_argument("--attribute-self-attention", type=float, default=0.8,
                    help="self-attention injection for the -di-lb- rows of attribute (colour) edits (default 0.8: a recoloured object keeps its layout)")
    ap.add_argument("--attribute-cross-attention", type=float, default=0.8,
                    help="cross-attention injection for the -di-lb- rows of attribute (colour) edits (default 0.8, Prompt-to-Prompt's: each word keeps its place)")
    ap.add_argument("--reg-steps", type=int, default=5, help="noise-regularisation steps per inversion step (default 5, the authors'; 0 = plain DDIM inversion)")
    ap.add_argument("--model", type=Path, default=ROOT / "converted_models" / "toyworld")
    ap.add_argument("--captioner", default=None, help="BLIP folder, or 'none' for the ground-truth description (default: <model>/captioner if it exists)")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--banks", type=Path, default=ROOT / "assets" / "sentences", help="sentence banks folder (<concept>.txt)")
    ap.add_argument("--directions", type=Path, default=None,
                    help="folder of saved directions <task>.safetensors (`pix2pix-zero direction --out`) used instead of the banks' "
                         "(ours only: e.g. to test a direction assembled from two banks)")
    ap.add_argument("--only", default="ours,diffusers", help="which editors to run (ours, diffusers)")
    ap.add_argument("--rows", default="all", choices=["all", "plain"],
                    help="which methods: all, or plain (pix2pix-zero with and without guidance only: a third of the time, e.g. to compare sentence banks)")
    ap.add_argument("--backend", default="wasm", choices=["wasm", "tensorflow", "cpu"], help="our tfjs backend (default wasm, the tables' so far)")
    ap.add_argument("--retrain", action="store_true", help="retrain the classifier first")
    ap.add_argument("--reuse", action="store_true", help="keep edited images already in the work folder (re-score only)")
    ap.add_argument("--deadline", default=None, help="HH:MM (UTC): start no new edit after it, score the scenes every method finished")
    ap.add_argument("--work", type=Path, default=ROOT / "tmp" / "eval")
    ap.add_argument("--json", type=Path, default=ROOT / "docs" / "bench" / "eval.json")
    ap.add_argument("--md", type=Path, default=ROOT / "docs" / "eval.md")
    args = ap.parse_args(argv)
    global METHODS, YARDSTICKS
    if args.reg_steps < 0:
        raise SystemExit(f"eval: --reg-steps must be >= 0, got {args.reg_steps}")
    if not args.xa_guidance > 0:
        raise SystemExit(f"eval: --xa-guidance must be > 0 (it is compared with 0), got {args.xa_guidance}")
    METHODS = methods_for(args.xa_guidance)
    plain = args.rows == "plain"
    if plain:
        METHODS, YARDSTICKS = METHODS[:4], tuple(y for y in YARDSTICKS if y != "reconstruction-di")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n = 5 if args.quick else args.n
    t_start = time.time()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    model_dir = args.model if args.model.is_absolute() else ROOT / args.model
    if not (model_dir / "model_index.json").exists():
        raise SystemExit(f"eval: {model_dir} is not a diffusers Stable Diffusion folder (no model_index.json); pass --model")
    captioner = None
    if args.captioner is None:
        if (model_dir / "captioner" / "config.json").exists():
            captioner = model_dir / "captioner"
    elif args.captioner != "none":
        captioner = Path(args.captioner).resolve()
    size = image_size(model_dir)
    rel = lambda p: os.path.relpath(p, ROOT)  # noqa: E731
    if args.scene_seed < 0:
        raise SystemExit(f"eval: --scene-seed must be >= 0, got {args.scene_seed}")
    settings = {"model": rel(model_dir), "image_size": size, "n": n, "scene_seed": args.scene_seed, "steps": args.steps, "rows": args.rows, "guidanceScale": args.guidance_scale,
                "xaGuidance": [args.xa_guidance, 0.0], "seed": args.seed, "numRegSteps": args.reg_steps, "numAutoCorrRolls": 5,
                "lambdaAc": 20, "lambdaKl": 20, "blendThreshold": args.blend_threshold, "blendDilation": args.blend_dilation, "blendStart": args.blend_start, "blendOverlay": args.blend_overlay, "selfAttention": args.self_attention, "selfAttentionMaxQueries": args.self_attention_max_queries, "crossAttention": args.cross_attention,
                "directionScale": args.direction_scale,
                "attributeSelfAttention": args.attribute_self_attention, "attributeCrossAttention": args.attribute_cross_attention, "vae": "posterior mean", "negative_prompt": "caption",
                "caption_source": f"BLIP `{rel(captioner)}` through our Captioner (authors' settings)" if captioner else "ground truth (world.describe)"}

    # Classifier
    t0 = time.time()
    if args.retrain or not clf.DEFAULT_FILE.exists():
        clf.train(clf.DEFAULT_FILE, log=log)
    model, cmeta = clf.load(clf.DEFAULT_FILE)
    t_classifier = time.time() - t0

    # Scenes, inputs and ideal edits
    work = args.work if args.work.is_absolute() else ROOT / args.work
    for d in YARDSTICKS + METHODS:
        (work / d).mkdir(parents=True, exist_ok=True)
    tasks_sel = [t for t in args.tasks.split(",") if t]
    items, scenes = [], {}
    for task in tasks_sel:
        attr, src, tgt = TASKS[task]
        for seed, scene in draw_scenes(list(TASKS).index(task), attr, src, tgt, n, args.scene_seed):
            iid = f"{task}-{seed}"
            scenes[iid] = (task, seed, scene)
            world.render(scene, size).save(work / "input" / f"{iid}.png")
            world.render(world.with_object(scene, 0, **{attr: tgt}), size).save(work / "ideal" / f"{iid}.png")
            items.append({"id": iid, "task": task, "image": rel(work / "input" / f"{iid}.png"),
                          "caption": None if captioner else world.describe(scene),
                          "outputs": [rel(work / METHODS[0] / f"{iid}.png"), rel(work / METHODS[1] / f"{iid}.png")],
                          "diffusers_outputs": [rel(work / METHODS[2] / f"{iid}.png"), rel(work / METHODS[3] / f"{iid}.png")],
                          "outputsDirect": None if plain else [rel(work / METHODS[4] / f"{iid}.png"), rel(work / METHODS[5] / f"{iid}.png")],
                          "diffusers_di_outputs": [] if plain else [rel(work / METHODS[6] / f"{iid}.png"), rel(work / METHODS[7] / f"{iid}.png")],
                          "outputsBlend": None if plain else [rel(work / METHODS[8] / f"{iid}.png"), rel(work / METHODS[9] / f"{iid}.png")],
                          "diffusers_lb_outputs": [] if plain else [rel(work / METHODS[10] / f"{iid}.png"), rel(work / METHODS[11] / f"{iid}.png")],
                          "reconstruction": rel(work / "reconstruction" / f"{iid}.png"),
                          "reconstructionDirect": None if plain else rel(work / "reconstruction-di" / f"{iid}.png"),
                          **dict(zip(("selfAttention", "crossAttention"), injections(settings, src)))})
    banks = args.banks if args.banks.is_absolute() else ROOT / args.banks
    directions = None if args.directions is None else args.directions if args.directions.is_absolute() else ROOT / args.directions
    settings["banks"] = rel(banks)
    settings["directions"] = rel(directions) if directions else None
    # Round-robin over the tasks, so that a run cut short at its deadline has as many scenes of each task
    items = [it for k in range(n) for t in tasks_sel for it in [i for i in items if i["task"] == t][k:k + 1]]
    task_specs = {t: {"source": TASKS[t][1], "target": TASKS[t][2], "sourceSentences": rel(banks / f"{TASKS[t][1]}.txt"),
                      "targetSentences": rel(banks / f"{TASKS[t][2]}.txt")} for t in tasks_sel}
    if directions is not None:
        if "diffusers" in args.only.split(","):
            raise SystemExit("eval: --directions is for our editor only; add --only ours")
        for t, spec in task_specs.items():
            f = directions / f"{t}.safetensors"
            if not f.exists():
                raise SystemExit(f"eval: --directions {args.directions} has no {t}.safetensors")
            spec["direction"] = rel(f)
    for spec in task_specs.values():
        for k in ("sourceSentences", "targetSentences"):
            if not (ROOT / spec[k]).exists():
                raise SystemExit(f"eval: the sentence bank {spec[k]} is missing")
    job = {"model": rel(model_dir), "captioner": rel(captioner) if captioner else None, "backend": args.backend, "cacheDir": False,
           "settings": {k: settings[k] for k in ("steps", "guidanceScale", "xaGuidance", "seed", "numRegSteps", "blendThreshold", "blendDilation", "blendStart", "blendOverlay", "selfAttention", "selfAttentionMaxQueries", "crossAttention", "directionScale")} | {"size": size},
           "tasks": task_specs}
    ours_files = lambda it: [f for f in it["outputs"] + (it["outputsDirect"] or []) + (it["outputsBlend"] or []) + [it["reconstruction"], it["reconstructionDirect"]] if f]  # noqa: E731
    diffusers_files = lambda it: it["diffusers_outputs"] + it["diffusers_di_outputs"] + it["diffusers_lb_outputs"]  # noqa: E731
    todo = [it for it in items if not (args.reuse and all((ROOT / o).exists() for o in ours_files(it) + diffusers_files(it)))]
    only = set(args.only.split(","))

    # Captions (ours, so both editors get the same), then both editors in parallel
    t0 = time.time()
    captions_file = work / "captions.json"
    known = json.loads(captions_file.read_text()) if captions_file.exists() and args.reuse else {}
    need = [it for it in items if it["caption"] is None and it["id"] not in known]
    if need:
        p = run_node({**job, "captionOnly": True, "items": need, "results": rel(work / "captions-results.json")}, work / "captions-job.json", log)
        if p.wait() != 0:
            raise SystemExit(f"eval: captioning failed, see {work / 'captions-job.log'}")
        known |= {r["id"]: r["caption"] for r in json.loads((work / "captions-results.json").read_text())["items"]}
    for it in items:
        if it["caption"] is None:
            it["caption"] = known[it["id"]]
        known[it["id"]] = it["caption"]
    captions_file.write_text(json.dumps(known, indent=1))
    t_captions = time.time() - t0

    t0 = time.time()
    backend = None
    procs = []
    todo_ours = [it for it in todo if "ours" in only]
    if not args.reuse:  # stale outputs would be skipped as done
        for it in todo:
            for o in (ours_files(it) if "ours" in only else []) + (diffusers_files(it) if "diffusers" in only else []):
                (ROOT / o).unlink(missing_ok=True)
        for f in work.glob("ours-results*.json"):
            f.unlink()
    else:  # keep the timings of the earlier, cut-short run
        for f in work.glob("ours-results*.json"):
            f.rename(f.with_name(f"{f.stem}-{int(time.time())}.json.old"))
    stop_at = None
    if args.deadline:
        hh, mm = (int(x) for x in args.deadline.split(":"))
        now = time.gmtime()
        stop_at = float(calendar.timegm((now.tm_year, now.tm_mon, now.tm_mday, hh, mm, 0)))
        log(f"eval: no new scene is started after {args.deadline} UTC ({(stop_at - time.time()) / 60:.0f} min from now)")
    ours_job = {**job, "skipExisting": True, **({"stopAt": stop_at * 1000} if stop_at else {}), "items": [{k: it[k] for k in ("id", "task", "image", "caption", "outputs", "reconstruction", "outputsDirect", "reconstructionDirect", "outputsBlend", "selfAttention", "crossAttention")} for it in todo_ours]}
    if todo_ours:
        procs.append(run_node({**ours_job, "results": rel(work / "ours-results.json")}, work / "ours-job.json", log))
    t_diff, dsec = 0.0, {}
    if "diffusers" in only and todo:
        td = time.time()
        dsec = run_diffusers(model_dir, todo, task_specs, job["settings"], log, stop_at)
        t_diff = time.time() - td
        # diffusers is done: a second process of ours takes the remaining items from the other end
        left = [it for it in todo_ours if not all((ROOT / o).exists() for o in ours_files(it))]
        if procs and procs[0].poll() is None and len(left) > 2 and (stop_at is None or time.time() < stop_at):
            log(f"eval: {len(left)} of our items left: a second process works from the end")
            procs.append(run_node({**ours_job, "reverse": True, "results": rel(work / "ours-results-2.json")}, work / "ours-job-2.json", log))
    for k, p in enumerate(procs):
        if p.wait() != 0:
            raise SystemExit(f"eval: our edit batch {k + 1} failed, see {work / ('ours-job.log' if k == 0 else 'ours-job-2.log')}")
    t_ours = time.time() - t0
    ours_done = [r for f in sorted(work.glob("ours-results*.json*")) for r in json.loads(f.read_text())["items"]]
    for f in sorted(work.glob("ours-results*.json*")):
        backend = json.loads(f.read_text()).get("backend") or backend

    # Scores
    per_image: dict[str, dict] = {}
    report_tasks = {}
    for task in tasks_sel:
        attr, src, tgt = TASKS[task]
        rows = {m: [] for m in YARDSTICKS + METHODS}
        pairs = [(a, b, xa) for a, b in SIDES for xa in settings["xaGuidance"]]
        agree = {f"{xa}" + side_label(a): {"diffs": [], "max": 0.0, "same": []} for a, b, xa in pairs}
        wanted = [m for m in METHODS if m.split("-")[0] in only] + ([y for y in YARDSTICKS if y.startswith("reconstruction")] if "ours" in only else [])
        complete = [i for i in items if i["task"] == task and all((work / m / f"{i['id']}.png").exists() for m in wanted)]
        if len(complete) < sum(1 for i in items if i["task"] == task):
            log(f"eval: {task}: {len(complete)} of {sum(1 for i in items if i['task'] == task)} scenes have every method's edit; scoring those")
        for it in complete:
            _, seed, scene = scenes[it["id"]]
            judge = Judge(model, scene, attr, src, tgt, size)
            paths = {m: work / m for m in YARDSTICKS + METHODS}
            imgs = {m: load_rgb(p / f"{it['id']}.png") for m, p in paths.items() if (p / f"{it['id']}.png").exists()}
            rec = imgs.get("reconstruction")
            names = list(imgs)
            verdicts = dict(zip(names, judge.classify([imgs[m] for m in names])))
            rec_row = {}
            for m in names:
                r = judge.score(imgs[m], verdicts[m], rec)
                if m.startswith("reconstruction"):  # a reconstruction should keep the source: score it as "kept everything"
                    r["success"] = r["target"] = bool(verdicts[m] == (judge.obj.shape, judge.obj.colour))
                rows[m].append(r)
                rec_row[m] = r
            for ours_side, diff_side, xa in pairs:
                a, b = imgs.get(f"{ours_side}-xa{xa:g}"), imgs.get(f"{diff_side}-xa{xa:g}")
                if a is not None and b is not None:
                    d = np.abs(a - b)
                    g = agree[f"{xa}" + side_label(ours_side)]
                    g["diffs"].append(float(d.mean()))
                    g["max"] = max(g["max"], float(d.max()))
                    g["same"].append(rec_row[f"{ours_side}-xa{xa:g}"]["success"] == rec_row[f"{diff_side}-xa{xa:g}"]["success"])
            per_image[it["id"]] = {"seed": seed, "caption": it["caption"], "description": world.describe(scene), "scores": rec_row}
        task_items = complete
        report_tasks[task] = {
            "attribute": attr, "source": src, "target": tgt, "n": len(task_items),
            "captions": {"exact": round(float(np.mean([i["caption"] == world.describe(scenes[i["id"]][2]) for i in task_items])), 4),
                         "name_source": round(float(np.mean([src in i["caption"].split() for i in task_items])), 4)},
            "guidance_effect": {side: paired(rows[f"{side}-xa{settings['xaGuidance'][0]:g}"], rows[f"{side}-xa0"])
                                for side in (x for pair in SIDES for x in pair) if rows.get(f"{side}-xa0") and rows.get(f"{side}-xa{settings['xaGuidance'][0]:g}")},
            "direct_inversion_effect": {f"xa{xa:g}": paired(rows[f"ours-di-xa{xa:g}"], rows[f"ours-xa{xa:g}"])
                                        for xa in settings["xaGuidance"] if rows.get(f"ours-di-xa{xa:g}") and rows.get(f"ours-xa{xa:g}")},
            "local_blend_effect": {f"xa{xa:g}": paired(rows[f"ours-di-lb-xa{xa:g}"], rows[f"ours-di-xa{xa:g}"])
                                   for xa in settings["xaGuidance"] if rows.get(f"ours-di-lb-xa{xa:g}") and rows.get(f"ours-di-xa{xa:g}")},
            "against_plain": against_plain(rows),
            "seeds": [scenes[i["id"]][1] for i in complete], "drawn": sum(1 for i in items if i["task"] == task),
            "methods": {m: aggregate(r) for m, r in rows.items() if r},
            "agreement": {xa: {"mean_abs": round(float(np.mean(g["diffs"])), 3), "max_image_mean_abs": round(float(np.max(g["diffs"])), 3),
                               "max_abs": g["max"], "same_verdict": round(float(np.mean(g["same"])), 4)}
                          for xa, g in agree.items() if g["diffs"]},
        }
    report = {
        "settings": settings, "backend": backend, "machine": f"{os.cpu_count()} CPU cores ({platform.machine()})",
        "classifier": {"file": rel(clf.DEFAULT_FILE), "heldout": cmeta["heldout"], "train_seeds": cmeta["train_seeds"]},
        "tasks": report_tasks,
        "seconds": {"total": round(time.time() - t_start, 1), "ours": round(t_ours, 1), "diffusers": round(t_diff, 1),
                    "captions": round(t_captions, 1), "classifier": round(t_classifier, 1), "edited_images": len(todo)},
        "images": per_image,
    }
    if not todo and out_json_prev(args).exists():  # re-scored only: keep the timings of the run that made the images
        prev = json.loads(out_json_prev(args).read_text()).get("seconds", {})
        report["seconds"] = {**prev, "rescored_in": report["seconds"]["total"]}
    if dsec:
        report["seconds"]["diffusers_mean_per_image"] = round(float(np.mean(list(dsec.values()))), 2)
    if ours_done:
        report["seconds"]["ours_mean_per_image"] = {
            "invert": round(float(np.mean([d["seconds"]["invert"] for d in ours_done])), 2),
            "edits": [round(float(np.mean([d["seconds"]["edits"][i] for d in ours_done])), 2) for i in range(len(ours_done[0]["seconds"]["edits"]))]}
        for key in ("editsDirect", "editsBlend"):
            if all(d["seconds"].get(key) for d in ours_done):
                report["seconds"]["ours_mean_per_image"][key] = [
                    round(float(np.mean([d["seconds"][key][i] for d in ours_done])), 2) for i in range(len(ours_done[0]["seconds"][key]))]
    out_json = args.json if args.json.is_absolute() else ROOT / args.json
    out_md = args.md if args.md.is_absolute() else ROOT / args.md
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(report, indent=1) + "\n")
    examples = out_json.parent / f"{out_json.stem}-examples.png"
    write_examples(examples, work, items)
    report["examples"] = rel(examples)
    write_markdown(out_md, report)
    for task, res in report_tasks.items():
        log(f"eval: {task}")
        for m, a in res["methods"].items():
            log(f"  {m:16s} success {fmt(a['success'], True):>5s}  IoU ideal {fmt(a['iou_ideal'])}  centre {fmt(a['centre_px'])}  bg {fmt(a['bg_change'], nd=1)}")
        for xa, g in res["agreement"].items():
            log(f"  ours vs diffusers xa {xa}: mean abs {g['mean_abs']:.2f}, same verdict {fmt(g['same_verdict'], True)}")
    log(f"eval: wrote {rel(out_json)} and {rel(out_md)} in {time.time() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
