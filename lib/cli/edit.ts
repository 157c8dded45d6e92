/**
 * `pix2pix-zero edit`: the pipeline from the command line. Progress bars on stderr, `--json` output with
 * per-phase timings, artefacts written atomically and only when the run succeeds.
 */
import { writePng } from '../io/image.js';
import { saveInversion } from '../editing/artefacts.js';
import { MIN_REGULARIZED_SIDE } from '../editing/noise-regularization.js';
import { DEFAULT_GENERATED_SENTENCES } from '../editing/sentence-generator.js';
import { SETTINGS as S, flagWithDefault as dflt } from '../settings.js';
import { Inversion, type Pix2PixZeroEditOptions } from '../pix2pix-zero.js';
import {
  IMAGE_LIMITS,
  type Command,
  UsageError,
  BACKEND_SYNOPSIS,
  refuseTogether,
} from './command.js';
import { DIRECTION_OPTIONS, directionFrom } from './direction-options.js';
import { MODEL_OPTIONS, cacheOutput, loadForCommand, refuseModelConflicts } from './model-options.js';
import { preflightOutputs } from './outputs.js';
import { defineCommand } from './run-command.js';
import {
  GUIDANCE_OPTIONS,
  INVERT_OPTIONS,
  type OptionValues as Values,
  directionScale,
  guidanceOptions,
  invertOptions,
  refuseDirectionConflicts,
  stringValue as str,
} from '../options/edit-options.js';

/** `pix2pix-zero edit`. */
export const editCommand: Command = defineCommand({
  name: 'edit',
  summary: 'edit an image along a concept direction (e.g. cat -> dog), keeping its structure',
  usage: `Usage: pix2pix-zero edit <image> --out out.png [options]

Model:      --model <sd folder | checkpoint.safetensors> (default: $PIX2PIX_ZERO_MODEL, else the shipped model; a
            single-file SD 1.x/2.x checkpoint is converted once into the cache, --prediction-type epsilon|v_prediction
            settling what an SD 2.x file cannot say)  --caption "..." | --captioner <blip folder>
            (default: the model folder's captioner/, if it has one; loaded only when no caption is given)
            | --no-captioner;  --variant fp16 reads the folder's *.fp16.safetensors (as diffusers' variant=; a
            folder with only fp16 weights is read without it, said on stderr)
Direction:  --task cat2dog | --source cat --target dog | --source-sentences a.txt --target-sentences b.txt
            | --direction d.safetensors;  a concept without a built-in bank gets ${DEFAULT_GENERATED_SENTENCES} generated template
            sentences (said on stderr; pix2pix-zero sentences <word> prints them), or --chat-url <openai-compatible
            base url> --chat-model <name> has a language model write them;  --direction-scale k (default ${S.directionScale.default})
Inversion:  ${dflt(S.steps)} (${S.steps.min} to ${S.steps.max}, at most the scheduler's: 999 for SD 1.x)  ${dflt(S.numRegSteps)} ${dflt(S.numAutoCorrRolls)}
            ${dflt(S.lambdaAc)} ${dflt(S.lambdaKl)} --min-shift ${S.minShift.min}|${S.minShift.max} ${dflt(S.vaeEncode)} ${dflt(S.seed)}
            --size <model's size, 512 for SD 1.x; ${S.size.min} to ${S.size.max}, a multiple of ${S.size.multipleOf}; with regularisation on, at least
            ${MIN_REGULARIZED_SIDE} latent pixels a side: ${MIN_REGULARIZED_SIDE * 8} for SD> ${dflt(S.fit)}
            --inversion f (reuse a saved inversion; no other inversion option then)  --save-inversion f
Editing:    ${dflt(S.guidanceScale)} ${dflt(S.xaGuidance)} --negative-prompt "..." (default: the caption)
            --direct-inversion (keep the reference pass on the inversion trajectory, Ju et al.: the
            reconstruction is the input's VAE round trip, the edit drifts less; no extra cost)
            --local-blend (keep the reference pass outside the edited object's attention mask, Prompt-to-Prompt's
            local blending: background and other objects stay)  --blend-words w1,w2 (default: the source concept;
            for an attribute such as a colour, the caption's next word, the thing it is said of)  ${dflt(S.blendThreshold)}
            --blend-dilation k (the mask's reach in latent pixels; default max(1, round(latent side / 16)), 0 for
            attribute words: their edit keeps the outline; 0: none)  ${dflt(S.blendStart)} (the fraction of the first
            steps left unblended, Prompt-to-Prompt's start_blend: the new object forms before the mask holds the rest)
            --blend-overlay (after decoding, the input image's own pixels outside the last mask, as inpainting's
            apply_overlay: the background is the input's, not its VAE round trip; an --inversion file keeps the image)
            ${dflt(S.selfAttentionInjection)} (the fraction of the first steps whose self-attention maps, in layers of at
            most ${S.selfAttentionMaxQueries.default} queries, are the reference pass's: Prompt-to-Prompt's self-attention replacement, keeps the layout)
            ${dflt(S.crossAttentionInjection)} (the fraction of the first steps whose cross-attention maps are the reference
            pass's: Prompt-to-Prompt's cross-attention replacement, each word keeps its place; for colour and texture edits)
Output:     --out out.png  --reconstruction out-rec.png  --save-latents f.safetensors  --save-direction f
            --json  --quiet  ${BACKEND_SYNOPSIS}  --cache-dir d | --no-cache  --debug
${IMAGE_LIMITS} Outputs are checked before the model loads.`,
  options: {
    ...MODEL_OPTIONS,
    ...DIRECTION_OPTIONS,
    ...INVERT_OPTIONS,
    inversion: { type: 'string' },
    'save-inversion': { type: 'string' },
    'save-latents': { type: 'string' },
    'save-direction': { type: 'string' },
    ...GUIDANCE_OPTIONS,
    reconstruction: { type: 'string' },
    out: { type: 'string' },
  },
  async run({ values, positionals, io, progress }) {
    const v = values as Values;
    const inversionFile = str(v, 'inversion');
    if (positionals.length !== (inversionFile !== undefined ? 0 : 1)) {
      throw new UsageError(inversionFile !== undefined ? 'give either an image or --inversion, not both' : 'edit takes one image (or --inversion f)');
    }
    const out = str(v, 'out');
    if (out === undefined) throw new UsageError('--out <file.png> is required');
    refuseModelConflicts(v);
    refuseDirectionConflicts(v);
    // A saved inversion carries its own caption and inversion settings: giving others would be silently ignored.
    refuseTogether(v, [['inversion', Object.keys(INVERT_OPTIONS).filter((k) => k !== 'steps')]], 'do not go together (a saved inversion keeps the caption and settings it was made with)');
    const opts: Pix2PixZeroEditOptions = {
      ...invertOptions(v),
      ...guidanceOptions(v),
      reconstruction: str(v, 'reconstruction') !== undefined,
    };
    const scale = directionScale(v);
    preflightOutputs([
      { option: '--out', path: out, kind: 'png' },
      { option: '--reconstruction', path: str(v, 'reconstruction'), kind: 'png' },
      { option: '--save-inversion', path: str(v, 'save-inversion'), kind: 'safetensors' },
      { option: '--save-latents', path: str(v, 'save-latents'), kind: 'safetensors' },
      { option: '--save-direction', path: str(v, 'save-direction'), kind: 'safetensors' },
      cacheOutput(v),
    ]);
    const { p2p, report } = await loadForCommand(v, io, progress);
    try {
      const direction = await directionFrom(p2p, v, progress, scale);
      try {
        const source = inversionFile !== undefined ? Inversion.load(inversionFile) : positionals[0]!;
        const result = await p2p.edit(source, direction, { ...opts, onProgress: progress.onProgress });
        try {
          await writePng(out, result.image);
          const rec = str(v, 'reconstruction');
          if (rec !== undefined && result.reconstruction !== undefined) await writePng(rec, result.reconstruction);
          const saveInv = str(v, 'save-inversion');
          if (saveInv !== undefined) result.inversion.save(saveInv);
          const saveDir = str(v, 'save-direction');
          if (saveDir !== undefined) direction.save(saveDir);
          const saveLat = str(v, 'save-latents');
          if (saveLat !== undefined) saveInversion(saveLat, result.latents, result.inversion.meta, undefined, 'latents');
          return report(
            { out, caption: result.caption, reconstruction: rec, backend: p2p.backend.name, size: [result.image.width, result.image.height] },
            [`wrote ${out} (${result.image.width}x${result.image.height}; caption: "${result.caption}")`, ...(rec !== undefined ? [`wrote ${rec}`] : [])],
          );
        } finally {
          result.latents.dispose();
          result.inversion.dispose();
        }
      } finally {
        direction.dispose();
      }
    } finally {
      p2p.dispose();
    }
  },
});
