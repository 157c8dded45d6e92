/** `pix2pix-zero inspect <file.safetensors | model folder>`: what a weights file or model folder holds. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensorsHeader } from '../io/safetensors.js';
import { type ComponentFolder, detectFolderKind, findWeights, openWeights, readBlipFolder, readComponentFolder, readStableDiffusionFolder } from '../io/model-folder.js';
import type { JsonObject } from '../io/json.js';
import { COMMON_OPTIONS, type Command, EXIT, UsageError } from './command.js';
import { defineCommand } from './run-command.js';

interface TensorRow {
  name: string;
  dtype: string;
  shape: number[];
}

interface ComponentReport {
  name: string;
  dir: string;
  class?: string;
  config: JsonObject;
  weights?: string;
  parameters?: number;
  tensors?: TensorRow[];
}

function tensorsOf(weightsPath: string): TensorRow[] {
  const w = openWeights(weightsPath);
  try {
    return w.names().map((name) => {
      const i = w.info(name);
      return { name, dtype: i.dtype, shape: [...i.shape] };
    });
  } finally {
    w.close();
  }
}

function countParams(rows: TensorRow[]): number {
  return rows.reduce((n, r) => n + r.shape.reduce((a, b) => a * b, 1), 0);
}

function component(name: string, dir: string, config: JsonObject, weightsPath?: string): ComponentReport {
  const cls = typeof config._class_name === 'string' ? config._class_name : Array.isArray(config.architectures) ? String(config.architectures[0]) : undefined;
  const report: ComponentReport = { name, dir, class: cls, config };
  if (weightsPath !== undefined) {
    report.weights = weightsPath;
    report.tensors = tensorsOf(weightsPath);
    report.parameters = countParams(report.tensors);
  }
  return report;
}

/** Everything `inspect` reports about a path. */
export function inspectPath(target: string): { kind: string; path: string; components: ComponentReport[]; tensors?: TensorRow[]; metadata?: Record<string, string> } {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch {
    throw new Error(`not found: ${target}`);
  }
  if (!stat.isFile() && !stat.isDirectory()) throw new Error(`${target} is not a regular file or a folder (a device, pipe or socket)`);
  if (stat.isFile()) {
    const { tensors, metadata } = readSafetensorsHeader(target);
    return {
      kind: 'safetensors',
      path: target,
      components: [],
      tensors: tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })),
      metadata,
    };
  }
  const kind = detectFolderKind(target);
  return { kind, path: target, components: folderComponents(target, kind) };
}

/** The report of a component folder as `readComponentFolder` and its kin read it. */
function ofFolder(name: string, c: ComponentFolder): ComponentReport {
  return component(name, c.dir, c.config, c.weightsPath);
}

/** The components of a model folder of `kind`. */
function folderComponents(target: string, kind: ReturnType<typeof detectFolderKind>): ComponentReport[] {
  switch (kind) {
    case 'stable-diffusion': {
      const sd = readStableDiffusionFolder(target);
      return [
        ofFolder('unet', sd.unet),
        ofFolder('vae', sd.vae),
        ofFolder('text_encoder', sd.textEncoder),
        component('tokenizer', sd.tokenizer.dir, sd.tokenizer.config),
        component('scheduler', path.join(target, 'scheduler'), sd.schedulerConfig),
      ];
    }
    case 'blip': {
      const blip = readBlipFolder(target);
      return [
        ofFolder('model', blip.model),
        component('image_processor', blip.dir, blip.preprocessorConfig),
        component('tokenizer', blip.tokenizer.dir, blip.tokenizer.config),
      ];
    }
    case 'component':
      return [ofFolder(path.basename(target), readComponentFolder(target, 'model'))];
    default:
      findWeights(target, 'model'); // throws the explanatory error
      throw new Error(`${target} is not a model folder (no model_index.json or config.json)`);
  }
}

const fmtShape = (s: number[]): string => `[${s.join(', ')}]`;

/** `pix2pix-zero inspect`. */
export const inspectCommand: Command = defineCommand({
  name: 'inspect',
  summary: 'list the tensors of a safetensors file, or the components and configs of a model folder',
  usage: `Usage: pix2pix-zero inspect <file.safetensors | model folder> [--json] [--config] [--debug]

Prints every tensor's name, dtype and shape. For a folder (a Stable Diffusion pipeline, a BLIP model or a
single diffusers/transformers component) prints each component, its class, parameter count and tensors.
  --config   also print each component's config
  --json     machine-readable output on stdout`,
  options: { ...COMMON_OPTIONS, config: { type: 'boolean', default: false } },
  async run({ values, positionals, io }) {
    if (positionals.length !== 1) throw new UsageError('inspect takes exactly one path');
    const report = inspectPath(positionals[0]!);
    if (values.json) {
      io.out(JSON.stringify(report, null, 2));
      return EXIT.ok;
    }
    const lines: string[] = [`${report.path}: ${report.kind}`];
    if (report.tensors !== undefined) {
      if (report.metadata !== undefined && Object.keys(report.metadata).length > 0) lines.push(`metadata: ${JSON.stringify(report.metadata)}`);
      lines.push(`${report.tensors.length} tensors, ${countParams(report.tensors)} parameters`);
      for (const t of report.tensors) lines.push(`  ${t.name}  ${t.dtype}  ${fmtShape(t.shape)}`);
    }
    for (const c of report.components) {
      const params = c.parameters !== undefined ? `, ${c.parameters} parameters in ${c.tensors?.length} tensors` : '';
      lines.push(`${c.name}: ${c.class ?? 'unknown class'} (${c.dir}${params})`);
      if (values.config) lines.push(...JSON.stringify(c.config, null, 2).split('\n').map((l) => `    ${l}`));
      for (const t of c.tensors ?? []) lines.push(`  ${t.name}  ${t.dtype}  ${fmtShape(t.shape)}`);
    }
    io.out(lines.join('\n'));
    return EXIT.ok;
  },
});
