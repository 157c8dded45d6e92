/**
 * `npm run bench -- command [--subject sd1|sd2] [--model DIR] [--captioner DIR] [--steps N] [--reg-steps N] [--size N]
 *   [--backend tensorflow|wasm|cpu] [--no-reference] [--record NAME]`
 *
 * A user's whole 512 px edit on the full-size subjects (tools/reference/full_size.py `sd1` and `blip`, built into
 * .fullsize/ on first use), as a user runs it, each side a fresh process under `/usr/bin/time -v`, one after the
 * other on the same cores:
 *
 * - ours: `pix2pix-zero edit <image> --model <sd1> --captioner <blip> --source-sentences tools/bench/sentences/cat.txt
 *   --target-sentences .../dog.txt (the bench's 120-sentence banks) --size 512 --steps N --reg-steps R --out <png> --save-latents <file>` (BLIP writes the
 *   caption; the CLI frees BLIP and the text encoder once used);
 * - diffusers: tools/bench/reference_pipeline.py with the same image, model, BLIP folder (the authors' caption
 *   settings), sentences and settings, torch at 2 threads: load, caption, `get_embeds`, VAE encode, `invert()` (which
 *   also decodes x_T), `__call__`, decode.
 *
 * Reported: each side's wall time and maximum resident set (from `/usr/bin/time`), their ratios, whether the
 * captions are the same, and the edited latents' agreement (max |ours - diffusers| / max |diffusers|). Written to
 * docs/bench/command-<backend>.json (with `--subject sd2`, the SD 2.x subject: v-prediction, OpenCLIP ViT-H text encoder;
 * docs/bench/command-<backend>-sd2.json), or to docs/bench/<NAME>.json with `--record NAME`. `--model` and `--captioner`
 * take other folders than the subjects (a held-out pipeline: `tools/reference/full_size.py sd1 blip --seed 7` builds .fullsize/sd1-seed7 and
 * .fullsize/blip-base-seed7).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { BackendName } from '../../lib/backend.js';
import { readSentenceFile } from '../../lib/editing/sentences.js';
import { writePng } from '../../lib/io/image.js';
import { SafetensorsFile } from '../../lib/io/safetensors.js';
import { OMP_WAIT_POLICY, REFERENCE_PYTHON, ROOT, hasReferencePython, lastJsonLine, machineInfo, backendArg, intArg, printTable, writeRecord } from './harness.js';
import { SENTENCES, SETTINGS, fullSizeSubject, maxRelError, testImage } from './pipeline.js';

const TIME = '/usr/bin/time';

/** What `/usr/bin/time -v` says of one command. */
interface Measured {
  wallS: number;
  maxRssMiB: number;
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` under `/usr/bin/time -v` and reads its wall time and peak RSS. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Measured {
  const r = spawnSync(TIME, ['-v', cmd, ...args], { encoding: 'utf8', env, maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] });
  const field = (name: string): string | undefined => r.stderr.split('\n').find((l) => l.trim().startsWith(name))?.split(': ').at(-1)?.trim();
  const wall = (field('Elapsed (wall clock) time') ?? '0').split(':').map(Number).reduce((a, b) => a * 60 + b, 0);
  return { wallS: wall, maxRssMiB: Number(field('Maximum resident set size (kbytes)') ?? 0) / 1024, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Args {
  backend: BackendName;
  size: number;
  steps: number;
  regSteps: number;
  reference: boolean;
  /** The full-size Stable Diffusion subject (tools/reference/full_size.py): SD 1.x or SD 2.x. */
  subject: 'sd1' | 'sd2';
  /** A Stable Diffusion folder instead of the subject's. */
  model?: string;
  /** A BLIP folder instead of the subject's. */
  captioner?: string;
  /** The record's name under docs/bench/ (default: command-<backend>[-sd2][-ours-only]). */
  record?: string;
}

/** A folder argument that must hold `file`. */
function folderArg(flag: string, value: string | undefined, file: string): string {
  if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a folder`);
  const dir = path.resolve(value);
  if (!fs.existsSync(path.join(dir, file))) throw new Error(`${flag}: ${dir} has no ${file}`);
  return dir;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { backend: 'tensorflow', size: 512, steps: 2, regSteps: 0, reference: true, subject: 'sd1' };
  const int = intArg;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--backend') {
      args.backend = backendArg(argv[++i]);
    } else if (a === '--size') {
      args.size = int('--size', argv[++i], 64, 1024);
      if (args.size % 8 !== 0) throw new Error(`--size must be a multiple of 8, got ${args.size}`);
    } else if (a === '--steps') args.steps = int('--steps', argv[++i], 1, 1000);
    else if (a === '--reg-steps') args.regSteps = int('--reg-steps', argv[++i], 0, 100);
    else if (a === '--no-reference') args.reference = false;
    else if (a === '--subject') {
      const v = argv[++i];
      if (v !== 'sd1' && v !== 'sd2') throw new Error(`--subject must be sd1 or sd2, got ${v ?? 'nothing'}`);
      args.subject = v;
    } else if (a === '--model') args.model = folderArg('--model', argv[++i], 'model_index.json');
    else if (a === '--captioner') args.captioner = folderArg('--captioner', argv[++i], 'config.json');
    else if (a === '--record') {
      const v = argv[++i];
      if (v === undefined || !/^[\w.-]+$/.test(v)) throw new Error(`--record needs a file name (letters, digits, . _ -), got ${v ?? 'nothing'}`);
      args.record = v;
    } else throw new Error(`command bench: unknown argument ${a}`);
  }
  return args;
}

/** Runs the command benchmark (the `command` sub-command). */
export async function benchCommand(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (!fs.existsSync(TIME)) throw new Error(`${TIME} is missing (Debian's package 'time'): it measures both sides`);
  const model = args.model ?? fullSizeSubject(args.subject, 'model_index.json');
  const captioner = args.captioner ?? fullSizeSubject('blip', 'config.json');
  const started = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-command-'));
  try {
    const image = path.join(tmp, `input${args.size}.png`);
    await writePng(image, testImage(args.size));
    const latentsFile = path.join(tmp, 'ours-latents.safetensors');
    const oursArgs = [
      path.join(ROOT, 'bin', 'pix2pix-zero.js'), 'edit', image, '--model', model, '--captioner', captioner,
      '--source-sentences', SENTENCES.source, '--target-sentences', SENTENCES.target, '--backend', args.backend,
      '--size', String(args.size), '--steps', String(args.steps), '--reg-steps', String(args.regSteps),
      '--guidance-scale', String(SETTINGS.guidanceScale), '--xa-guidance', String(SETTINGS.xaGuidance), '--seed', String(SETTINGS.seed),
      '--out', path.join(tmp, 'ours.png'), '--save-latents', latentsFile, '--no-cache', '--json', '--quiet',
    ];
    console.error(`[command] ours: pix2pix-zero edit ... --backend ${args.backend} --size ${args.size} --steps ${args.steps} --reg-steps ${args.regSteps}`);
    const ours = timed(process.execPath, oursArgs);
    if (ours.status !== 0) throw new Error(`our edit failed (exit ${ours.status}):\n${ours.stderr.slice(-2000)}`);
    const oursReport = JSON.parse(ours.stdout) as { caption: string; timings?: Record<string, number> };
    const file = SafetensorsFile.open(latentsFile);
    let oursLatents: number[];
    try {
      oursLatents = Array.from(file.read('latent').data);
    } finally {
      file.close();
    }

    let theirs: { measured: Measured; caption: string; edited: number[]; phasesMs: Record<string, number> } | undefined;
    if (args.reference && hasReferencePython()) {
      console.error('[command] diffusers: reference_pipeline.py (torch, 2 threads)...');
      const spec = {
        model, image, captioner, caption: '', source: readSentenceFile(SENTENCES.source), target: readSentenceFile(SENTENCES.target),
        steps: args.steps, warmup_steps: 0, reps: 1, seed: SETTINGS.seed, threads: 2,
        guidance_scale: SETTINGS.guidanceScale, xa_guidance: SETTINGS.xaGuidance, num_reg_steps: args.regSteps,
        num_auto_corr_rolls: SETTINGS.numAutoCorrRolls, lambda_auto_corr: SETTINGS.lambdaAc, lambda_kl: SETTINGS.lambdaKl,
      };
      const env = { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error', PYTHONDONTWRITEBYTECODE: '1', TQDM_DISABLE: '1', OMP_WAIT_POLICY };
      const measured = timed(REFERENCE_PYTHON, [path.join(ROOT, 'tools', 'bench', 'reference_pipeline.py'), JSON.stringify(spec)], env);
      const out = measured.status === 0 ? lastJsonLine<{ caption: string; edited: number[]; phasesMs: Record<string, number> }>(measured.stdout) : undefined;
      if (out === undefined) throw new Error(`diffusers failed (exit ${measured.status}):\n${measured.stderr.slice(-2000)}`);
      theirs = { measured, caption: out.caption, edited: out.edited, phasesMs: out.phasesMs };
    }

    const ratio = (a: number, b: number | undefined): string => (b !== undefined && b > 0 ? `${(a / b).toFixed(2)}x` : '-');
    console.log(`\npix2pix-zero edit, ${args.size} px, ${args.steps} steps, ${args.regSteps} regularisation rounds, ${args.model !== undefined ? path.relative(ROOT, model) : `full-size ${args.subject === 'sd1' ? 'SD 1.x' : 'SD 2.x'}`} + ${args.captioner !== undefined ? path.relative(ROOT, captioner) : 'BLIP base'}: ours (${args.backend}) vs diffusers (torch, 2 threads)\n`);
    printTable(
      ['', 'ours', 'diffusers', 'ours/diffusers'],
      [
        ['wall time', `${ours.wallS.toFixed(1)} s`, theirs !== undefined ? `${theirs.measured.wallS.toFixed(1)} s` : '-', ratio(ours.wallS, theirs?.measured.wallS)],
        ['max RSS', `${ours.maxRssMiB.toFixed(0)} MiB`, theirs !== undefined ? `${theirs.measured.maxRssMiB.toFixed(0)} MiB` : '-', ratio(ours.maxRssMiB, theirs?.measured.maxRssMiB)],
      ],
    );
    const agreement = theirs !== undefined ? maxRelError(oursLatents, theirs.edited) : undefined;
    if (theirs !== undefined) {
      console.log(`\ncaptions ${theirs.caption === oursReport.caption ? 'identical' : `differ: ours "${oursReport.caption}", diffusers "${theirs.caption}"`}; edited latents max relative error ${agreement!.toExponential(2)}`);
    }
    const record = writeRecord(args.record ?? `command-${args.backend}${args.subject === 'sd1' ? '' : `-${args.subject}`}${args.reference ? '' : '-ours-only'}`, {
      benchmark: 'command',
      date: new Date().toISOString(),
      machine: machineInfo(),
      seconds: Math.round((Date.now() - started) / 1000),
      settings: { model: path.relative(ROOT, model), captioner: path.relative(ROOT, captioner), size: args.size, steps: args.steps, regSteps: args.regSteps, ...SETTINGS, sentences: 'tools/bench/sentences/cat.txt -> dog.txt (120 each)' },
      notes: [
        'Each side one fresh process under /usr/bin/time -v, one after the other: wall time and maximum resident set of the whole command (start-up, loading, caption, direction, inversion, edit, decode, writing).',
        'ours: bin/pix2pix-zero.js edit with --captioner (BLIP and the text encoder freed once used). diffusers: tools/bench/reference_pipeline.py (StableDiffusionPix2PixZeroPipeline + BlipForConditionalGeneration, torch 2 threads, OMP_WAIT_POLICY=PASSIVE); its invert() also decodes x_T, which it always does.',
        'latentsMaxRelError: max |ours - diffusers| / max |diffusers| over the edited latents (ours from --save-latents, NCHW as diffusers\').',
      ],
      ours: { wallS: ours.wallS, maxRssMiB: ours.maxRssMiB, caption: oursReport.caption, timingsMs: oursReport.timings },
      diffusers: theirs !== undefined ? { wallS: theirs.measured.wallS, maxRssMiB: theirs.measured.maxRssMiB, caption: theirs.caption, phasesMs: theirs.phasesMs } : undefined,
      latentsMaxRelError: agreement,
    });
    console.log(`\nwritten to ${path.relative(ROOT, record)}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
