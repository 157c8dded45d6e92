/**
 * Single-file checkpoints: the name maps both ways, and `pix2pix-zero convert <checkpoint.safetensors>` giving
 * every tensor of the original pipeline exactly. The SD 1.x fixture (spec/fixtures/models/tiny-sd-original.safetensors)
 * was written from converted_models/tiny-sd by a converter of our own in Python and read back by diffusers'
 * from_single_file into the same tensors (tools/reference/single_file_outputs.py); the SD 2.x checkpoint is written
 * here from spec/fixtures/models/tiny-sd2 with the reverse maps (OpenCLIP's fused q/k/v, an unused last layer, the
 * projection head, EMA twins).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { Pix2PixZero } from '../lib/pix2pix-zero.js';
import { type TensorBytesToWrite, SafetensorsFile, writeSafetensorsBytes } from '../lib/io/safetensors.js';
import { knownConfigs } from '../lib/models/checkpoint/configs.js';
import { type CheckpointLayout, CheckpointNameMap } from '../lib/models/checkpoint/names.js';
import { convertCheckpoint, emaName, isSingleFileCheckpoint, readCheckpointInfo } from '../lib/models/checkpoint/single-file.js';
import { checkpointKey } from '../lib/models/checkpoint/cache.js';
import { cli } from './helpers/cli.js';
import { FIXTURES, TINY_SD } from './helpers/tensors.js';

const SD1_CKPT = path.join(FIXTURES, 'models', 'tiny-sd-original.safetensors');
const TINY_SD2 = path.join(FIXTURES, 'models', 'tiny-sd2');
const FILES = { unet: 'diffusion_pytorch_model.safetensors', vae: 'diffusion_pytorch_model.safetensors', text_encoder: 'model.safetensors' } as const;
type Component = keyof typeof FILES;

/** Every tensor of a folder's component: dtype, shape and bytes, by name (the text encoder's names without `text_model.`, position ids left out). */
function tensorsOf(dir: string, component: Component): Map<string, { dtype: string; shape: number[]; bytes: Buffer }> {
  const f = SafetensorsFile.open(path.join(dir, component, FILES[component]));
  try {
    const out = new Map<string, { dtype: string; shape: number[]; bytes: Buffer }>();
    for (const n of f.names()) {
      if (n.endsWith('position_ids')) continue;
      const t = f.info(n);
      out.set(component === 'text_encoder' ? n.replace(/^text_model\./, '') : n, { dtype: t.dtype, shape: [...t.shape], bytes: Buffer.from(f.readBytes(n)) });
    }
    return out;
  } finally {
    f.close();
  }
}

/** Asserts that two pipeline folders hold the same tensors (names, dtypes, shapes, bytes); returns how many. */
function expectSameTensors(actual: string, expected: string, skip: (c: Component, name: string) => boolean = () => false): number {
  let n = 0;
  for (const c of Object.keys(FILES) as Component[]) {
    const a = new Map([...tensorsOf(actual, c)].filter(([k]) => !skip(c, k)));
    const e = new Map([...tensorsOf(expected, c)].filter(([k]) => !skip(c, k)));
    expect([...a.keys()].sort(), c).to.deep.equal([...e.keys()].sort());
    for (const [k, t] of e) {
      const x = a.get(k)!;
      expect([x.dtype, x.shape], `${c} ${k}`).to.deep.equal([t.dtype, t.shape]);
      if (!x.bytes.equals(t.bytes)) throw new Error(`${c} ${k}: the bytes differ`);
      n++;
    }
  }
  return n;
}

const json = (file: string): Record<string, unknown> => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;

/** The layout of a diffusers folder, for writing its original-layout checkpoint. */
function layoutOf(dir: string, text: CheckpointLayout['text']['kind']): CheckpointLayout {
  const u = json(path.join(dir, 'unet', 'config.json')) as { block_out_channels: number[]; layers_per_block: number; down_block_types: string[]; up_block_types: string[] };
  const v = json(path.join(dir, 'vae', 'config.json')) as { block_out_channels: number[]; layers_per_block: number };
  const t = json(path.join(dir, 'text_encoder', 'config.json')) as { num_hidden_layers: number };
  return {
    unet: { levels: u.block_out_channels.length, layersPerBlock: u.layers_per_block, attentionDown: u.down_block_types.map((b) => b.startsWith('CrossAttn')), attentionUp: u.up_block_types.map((b) => b.startsWith('CrossAttn')) },
    vae: { levels: v.block_out_channels.length, layersPerBlock: v.layers_per_block },
    text: { kind: text, layers: t.num_hidden_layers },
  };
}

/**
 * Writes `dir` as an original-layout checkpoint with the reverse maps: fused q/k/v, 1x1 kernels, and for OpenCLIP
 * an extra last layer and the projection head SD 2.x does not use. With `ema`, the UNet's model_ema twins hold the
 * folder's weights and model.diffusion_model.* holds them negated (a full checkpoint with two sets).
 */
function writeOriginal(dir: string, file: string, text: 'clip' | 'openclip', ema = false): number {
  const map = new CheckpointNameMap(layoutOf(dir, text));
  const tensors = new Map<string, { dtype: string; shape: number[]; parts: Buffer[] }>();
  for (const c of Object.keys(FILES) as Component[]) {
    for (const [name, t] of tensorsOf(dir, c)) {
      const p = map.toOriginal(c, name);
      if (p === undefined) throw new Error(`no original name for ${c} ${name}`);
      const entry = tensors.get(p.original) ?? { dtype: t.dtype, shape: [...t.shape], parts: [] };
      if (p.form.kind === 'conv1x1') entry.shape = [...t.shape, 1, 1];
      if (p.form.kind === 'split3') {
        entry.parts[p.form.part] = t.bytes;
        entry.shape = [t.shape[0]! * 3, ...t.shape.slice(1)];
      } else {
        entry.parts = [t.bytes];
      }
      tensors.set(p.original, entry);
    }
  }
  if (text === 'openclip') {
    const last = layoutOf(dir, text).text.layers;
    for (const [k, t] of [...tensors]) {
      if (k.startsWith('cond_stage_model.model.transformer.resblocks.0.')) tensors.set(k.replace('resblocks.0.', `resblocks.${last}.`), t);
    }
    const width = tensors.get('cond_stage_model.model.token_embedding.weight')!.shape[1]!;
    tensors.set('cond_stage_model.model.text_projection', { dtype: 'F32', shape: [width, width], parts: [Buffer.alloc(width * width * 4)] });
  }
  if (ema) {
    for (const [k, t] of [...tensors]) {
      if (!k.startsWith('model.diffusion_model.')) continue;
      tensors.set(emaName(k), t);
      const neg = Buffer.from(Buffer.concat(t.parts));
      const f = new Float32Array(neg.buffer, neg.byteOffset, neg.length / 4);
      for (let i = 0; i < f.length; i++) f[i] = -f[i]!;
      tensors.set(k, { ...t, parts: [neg] });
    }
  }
  tensors.set('alphas_cumprod', { dtype: 'F32', shape: [2], parts: [Buffer.alloc(8)] });
  const entries = [...tensors].map(([k, t]): [string, TensorBytesToWrite] => {
    const bytes = Buffer.concat(t.parts);
    return [k, { dtype: t.dtype as TensorBytesToWrite['dtype'], shape: t.shape, byteLength: bytes.length, bytes: () => bytes }];
  });
  writeSafetensorsBytes(file, entries);
  return entries.length;
}

describe('single-file checkpoints', function () {
  let dir: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-ckpt-'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('the name maps', function () {
    const sd15: CheckpointLayout = {
      unet: { levels: 4, layersPerBlock: 2, attentionDown: [true, true, true, false], attentionUp: [false, true, true, true] },
      vae: { levels: 4, layersPerBlock: 2 },
      text: { kind: 'clip', layers: 12 },
    };
    it("name SD 1.5's tensors as diffusers does (names known from the v1-5 checkpoint and the diffusers folder)", function () {
      const map = new CheckpointNameMap(sd15);
      const cases: [string, string, string][] = [
        ['model.diffusion_model.input_blocks.0.0.weight', 'unet', 'conv_in.weight'],
        ['model.diffusion_model.time_embed.2.bias', 'unet', 'time_embedding.linear_2.bias'],
        ['model.diffusion_model.input_blocks.1.0.in_layers.2.weight', 'unet', 'down_blocks.0.resnets.0.conv1.weight'],
        ['model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight', 'unet', 'down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight'],
        ['model.diffusion_model.input_blocks.3.0.op.weight', 'unet', 'down_blocks.0.downsamplers.0.conv.weight'],
        ['model.diffusion_model.input_blocks.4.0.skip_connection.bias', 'unet', 'down_blocks.1.resnets.0.conv_shortcut.bias'],
        ['model.diffusion_model.input_blocks.11.0.emb_layers.1.weight', 'unet', 'down_blocks.3.resnets.1.time_emb_proj.weight'],
        ['model.diffusion_model.middle_block.1.proj_out.weight', 'unet', 'mid_block.attentions.0.proj_out.weight'],
        ['model.diffusion_model.middle_block.2.out_layers.3.weight', 'unet', 'mid_block.resnets.1.conv2.weight'],
        ['model.diffusion_model.output_blocks.2.1.conv.weight', 'unet', 'up_blocks.0.upsamplers.0.conv.weight'],
        ['model.diffusion_model.output_blocks.5.2.conv.bias', 'unet', 'up_blocks.1.upsamplers.0.conv.bias'],
        ['model.diffusion_model.output_blocks.11.1.norm.weight', 'unet', 'up_blocks.3.attentions.2.norm.weight'],
        ['model.diffusion_model.out.2.weight', 'unet', 'conv_out.weight'],
        ['first_stage_model.encoder.down.1.downsample.conv.weight', 'vae', 'encoder.down_blocks.1.downsamplers.0.conv.weight'],
        ['first_stage_model.encoder.down.1.block.0.nin_shortcut.weight', 'vae', 'encoder.down_blocks.1.resnets.0.conv_shortcut.weight'],
        ['first_stage_model.decoder.up.3.block.2.norm2.bias', 'vae', 'decoder.up_blocks.0.resnets.2.norm2.bias'],
        ['first_stage_model.decoder.up.1.upsample.conv.weight', 'vae', 'decoder.up_blocks.2.upsamplers.0.conv.weight'],
        ['first_stage_model.encoder.mid.attn_1.proj_out.weight', 'vae', 'encoder.mid_block.attentions.0.to_out.0.weight'],
        ['first_stage_model.decoder.norm_out.weight', 'vae', 'decoder.conv_norm_out.weight'],
        ['cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.bias', 'text_encoder', 'encoder.layers.11.mlp.fc2.bias'],
        ['cond_stage_model.transformer.text_model.final_layer_norm.weight', 'text_encoder', 'final_layer_norm.weight'],
      ];
      for (const [original, component, diffusers] of cases) {
        expect(map.toDiffusers(original).map((p) => [p.component, p.diffusers]), original).to.deep.equal([[component, diffusers]]);
        expect(map.toOriginal(component as Component, diffusers)?.original, diffusers).to.equal(original);
      }
      expect(map.toDiffusers('first_stage_model.encoder.mid.attn_1.q.weight')[0]!.form).to.deep.equal({ kind: 'conv1x1' });
      expect(map.toDiffusers('model.diffusion_model.output_blocks.12.0.in_layers.0.weight')).to.deep.equal([]);
      for (const ignored of ['alphas_cumprod', 'model_ema.decay', 'model_ema.diffusion_modelout2weight', 'cond_stage_model.transformer.text_model.embeddings.position_ids']) {
        expect(map.ignored(ignored), ignored).to.equal(true);
      }
      // Old transformers: no text_model. level.
      expect(map.toDiffusers('cond_stage_model.transformer.embeddings.token_embedding.weight')[0]!.diffusers).to.equal('embeddings.token_embedding.weight');
    });
    it('split OpenCLIP (SD 2.x) in q, k and v, and leave its last layer out', function () {
      const map = new CheckpointNameMap({ ...sd15, text: { kind: 'openclip', layers: 23 } });
      expect(map.toDiffusers('cond_stage_model.model.transformer.resblocks.3.attn.in_proj_weight').map((p) => [p.diffusers, p.form])).to.deep.equal([
        ['encoder.layers.3.self_attn.q_proj.weight', { kind: 'split3', part: 0 }],
        ['encoder.layers.3.self_attn.k_proj.weight', { kind: 'split3', part: 1 }],
        ['encoder.layers.3.self_attn.v_proj.weight', { kind: 'split3', part: 2 }],
      ]);
      expect(map.toDiffusers('cond_stage_model.model.transformer.resblocks.22.mlp.c_fc.bias')[0]!.diffusers).to.equal('encoder.layers.22.mlp.fc1.bias');
      expect(map.toDiffusers('cond_stage_model.model.positional_embedding')[0]!.diffusers).to.equal('embeddings.position_embedding.weight');
      expect(map.toDiffusers('cond_stage_model.model.ln_final.bias')[0]!.diffusers).to.equal('final_layer_norm.bias');
      expect(map.ignored('cond_stage_model.model.transformer.resblocks.23.ln_1.weight')).to.equal(true);
      expect(map.ignored('cond_stage_model.model.transformer.resblocks.22.ln_1.weight')).to.equal(false);
      expect(map.ignored('cond_stage_model.model.text_projection')).to.equal(true);
      expect(map.toOriginal('text_encoder', 'encoder.layers.4.self_attn.v_proj.bias')).to.deep.include({ original: 'cond_stage_model.model.transformer.resblocks.4.attn.in_proj_bias', form: { kind: 'split3', part: 2 } });
    });
    it('map every tensor back to itself: original -> diffusers -> original, and diffusers -> original -> diffusers', function () {
      for (const [folder, kind] of [[TINY_SD, 'clip'], [TINY_SD2, 'openclip']] as const) {
        const map = new CheckpointNameMap(layoutOf(folder, kind));
        let n = 0;
        for (const c of Object.keys(FILES) as Component[]) {
          for (const name of tensorsOf(folder, c).keys()) {
            const o = map.toOriginal(c, name);
            expect(o, `${c} ${name}`).to.not.equal(undefined);
            expect(map.toDiffusers(o!.original).map((p) => `${p.component}:${p.diffusers}`), `${c} ${name}`).to.include(`${c}:${name}`);
            n++;
          }
        }
        const f = SafetensorsFile.open(SD1_CKPT);
        try {
          if (kind === 'clip') {
            for (const original of f.names()) {
              if (map.ignored(original)) continue;
              const [p] = map.toDiffusers(original);
              expect(map.toOriginal(p!.component, p!.diffusers)?.original, original).to.equal(original);
            }
          }
        } finally {
          f.close();
        }
        expect(n, folder).to.be.greaterThan(100);
      }
    });
  });

  it('reads the architecture and structure from the names and shapes', function () {
    expect(isSingleFileCheckpoint(SD1_CKPT)).to.equal(true);
    expect(isSingleFileCheckpoint(path.join(TINY_SD, 'unet', 'diffusion_pytorch_model.safetensors'))).to.equal(false);
    const info = readCheckpointInfo(SD1_CKPT);
    expect(info.architecture).to.equal('sd1');
    expect(info.layout).to.deep.equal(layoutOf(TINY_SD, 'clip'));
    const unet = json(path.join(TINY_SD, 'unet', 'config.json'));
    for (const [k, v] of Object.entries(info.inferred.unet)) expect(v, k).to.deep.equal(unet[k] ?? (k === 'transformer_layers_per_block' ? 1 : undefined));
    expect(info.inferred.text_encoder).to.deep.include({ vocab_size: 2514, hidden_size: 32, num_hidden_layers: 2 });
    expect(info.emaTensors).to.equal(0);
  });

  it('convert gives every tensor of the SD 1.x pipeline exactly, from the checkpoint diffusers reads the same way', function () {
    const out = path.join(dir, 'sd1');
    const r = cli(['convert', SD1_CKPT, out, '--config', TINY_SD, '--json']);
    expect(r.code, r.err).to.equal(0);
    const report = JSON.parse(r.out) as { kind: string; checkpoint: { architecture: string; ignored: number; ema: string } };
    expect(report.kind).to.equal('checkpoint');
    expect(report.checkpoint).to.deep.include({ architecture: 'sd1', ignored: 3, ema: 'none' });
    expect(expectSameTensors(out, TINY_SD)).to.equal(424);
    for (const c of ['unet', 'vae', 'text_encoder']) expect(json(path.join(out, c, 'config.json')), c).to.deep.equal(json(path.join(TINY_SD, c, 'config.json')));
    expect(json(path.join(out, 'scheduler', 'scheduler_config.json'))).to.deep.equal(json(path.join(TINY_SD, 'scheduler', 'scheduler_config.json')));
  });

  it('writes the real CLIP tokenizer from the shipped merges (the first merges for a smaller vocabulary)', async function () {
    const config = path.join(dir, 'config-no-tokenizer');
    fs.cpSync(TINY_SD, config, { recursive: true });
    fs.rmSync(path.join(config, 'tokenizer'), { recursive: true });
    const out = path.join(dir, 'sd1-tok');
    convertCheckpoint(SD1_CKPT, out, { config });
    expect(json(path.join(out, 'tokenizer', 'vocab.json'))).to.deep.equal(json(path.join(TINY_SD, 'tokenizer', 'vocab.json')));
    const merges = (d: string): string[] => fs.readFileSync(path.join(d, 'tokenizer', 'merges.txt'), 'utf8').split('\n').filter((l) => l.length > 0);
    expect(merges(out)).to.deep.equal(merges(TINY_SD));
    // The whole pipeline loads and embeds as the original folder does.
    const start = tf.memory().numTensors;
    const a = await Pix2PixZero.load({ model: out, cacheDir: false });
    const b = await Pix2PixZero.load({ model: TINY_SD, cacheDir: false });
    const ea = await a.direction({ name: 'x', sentences: ['a photo of a cat'] }, { name: 'y', sentences: ['a photo of a dog'] });
    const eb = await b.direction({ name: 'x', sentences: ['a photo of a cat'] }, { name: 'y', sentences: ['a photo of a dog'] });
    expect(Array.from(ea.tensor.dataSync())).to.deep.equal(Array.from(eb.tensor.dataSync()));
    ea.dispose();
    eb.dispose();
    a.dispose();
    b.dispose();
    expect(tf.memory().numTensors).to.equal(start);
  });

  it('converts SD 2.x (OpenCLIP split, last layer and projection left out) and takes the EMA weights when asked, as diffusers', function () {
    const ckpt = path.join(dir, 'sd2-full.safetensors');
    writeOriginal(TINY_SD2, ckpt, 'openclip', true);
    const info = readCheckpointInfo(ckpt);
    expect(info.architecture).to.equal('sd2');
    expect(info.emaTensors).to.be.greaterThan(100);
    const notices: string[] = [];
    const ema = path.join(dir, 'sd2-ema');
    const r = convertCheckpoint(ckpt, ema, { config: TINY_SD2, extractEma: true, onNotice: (m) => notices.push(m) });
    expect(r).to.deep.include({ architecture: 'sd2', predictionType: 'v_prediction', ema: 'extracted' });
    expect(expectSameTensors(ema, TINY_SD2)).to.be.greaterThan(300);
    expect(notices).to.deep.equal([]);
    // Without --extract-ema, the non-EMA weights (here the negated ones), as diffusers does, and that is said.
    const plain = path.join(dir, 'sd2-plain');
    convertCheckpoint(ckpt, plain, { config: TINY_SD2, predictionType: 'epsilon', onNotice: (m) => notices.push(m) });
    expect(notices.join('\n')).to.match(/has EMA weights too \(\d+ model_ema\.\* tensors\): the non-EMA UNet weights are taken, as diffusers does/);
    expect(expectSameTensors(plain, TINY_SD2, (c) => c === 'unet')).to.be.greaterThan(100);
    const w = tensorsOf(plain, 'unet').get('conv_in.weight')!;
    const orig = tensorsOf(TINY_SD2, 'unet').get('conv_in.weight')!;
    expect(new Float32Array(w.bytes.buffer, w.bytes.byteOffset, 4)[0]).to.equal(-new Float32Array(orig.bytes.buffer, orig.bytes.byteOffset, 4)[0]!);
    expect(json(path.join(plain, 'scheduler', 'scheduler_config.json')).prediction_type).to.equal('epsilon');
  });

  it('knows the SD 1.x and 2.x configs, and SD 2.x says what it cannot tell', function () {
    const v = knownConfigs('sd2', 'v_prediction');
    const base = knownConfigs('sd2', 'epsilon');
    expect([v.unet.sample_size, base.unet.sample_size, v.scheduler.prediction_type, base.scheduler.prediction_type]).to.deep.equal([96, 64, 'v_prediction', 'epsilon']);
    expect(v.text_encoder).to.deep.include({ hidden_size: 1024, num_hidden_layers: 23, num_attention_heads: 16, hidden_act: 'gelu' });
    expect(knownConfigs('sd1', 'epsilon').unet).to.deep.include({ attention_head_dim: 8, cross_attention_dim: 768, block_out_channels: [320, 640, 1280, 1280] });
    expect(v.tokenizer.pad_token).to.equal('!');
  });

  it('refuses what it does not know, naming it', function () {
    const unknownSize = cli(['convert', SD1_CKPT, path.join(dir, 'never1')]);
    expect(unknownSize.code).to.equal(1);
    expect(unknownSize.err).to.match(/SD 1.x-like checkpoint of an unknown size: unet.block_out_channels: \[16,32\] in the checkpoint, \[320,640,1280,1280\] in the config/);
    const mismatch = cli(['convert', SD1_CKPT, path.join(dir, 'never2'), '--config', TINY_SD2]);
    expect(mismatch.err).to.match(/does not fit the configs of .*tiny-sd2: .*cross_attention_dim: 32 in the checkpoint, 24 in the config/);
    const notCkpt = cli(['convert', path.join(TINY_SD, 'unet', 'diffusion_pytorch_model.safetensors'), path.join(dir, 'never3')]);
    expect(notCkpt.err).to.match(/is not a single-file Stable Diffusion checkpoint in the original layout \(it has no model.diffusion_model.\* tensors\)/);
    const noEma = cli(['convert', SD1_CKPT, path.join(dir, 'never4'), '--config', TINY_SD, '--extract-ema']);
    expect(noEma.err).to.match(/has no EMA weights \(model_ema\.\*\): it is EMA-only or pruned already/);
    for (const [args, re] of [
      [['--dtype', 'float16'], /--dtype applies to model folders/],
      [['--prediction-type', 'x'], /--prediction-type must be 'epsilon' or 'v_prediction'/],
    ] as [string[], RegExp][]) {
      const u = cli(['convert', SD1_CKPT, path.join(dir, 'never5'), ...args]);
      expect(u.code, args.join(' ')).to.equal(2);
      expect(u.err).to.match(re);
    }
    expect(cli(['convert', TINY_SD, path.join(dir, 'never6'), '--extract-ema']).err).to.match(/--extract-ema applies to single-file checkpoints/);
    // Extra tensors no map names: an unknown architecture or extra networks.
    const extra = path.join(dir, 'extra.safetensors');
    const f = SafetensorsFile.open(SD1_CKPT);
    const entries = f.names().map((n): [string, TensorBytesToWrite] => [n, { ...f.info(n), byteLength: f.info(n).end - f.info(n).begin, bytes: () => f.readBytes(n) }]);
    writeSafetensorsBytes(extra, [...entries, ['model.diffusion_model.label_emb.0.0.weight', { dtype: 'F32', shape: [1], byteLength: 4, bytes: () => new Uint8Array(4) }]]);
    f.close();
    expect(() => convertCheckpoint(extra, path.join(dir, 'never7'), { config: TINY_SD })).to.throw(/has 1 tensors no Stable Diffusion 1.x\/2.x map names .* e.g. model.diffusion_model.label_emb.0.0.weight/);
  });

  it('is read directly as a model: converted once into the cache, then read from there', async function () {
    const cacheDir = path.join(dir, 'cache');
    const notices: string[] = [];
    const start = tf.memory().numTensors;
    const p1 = await Pix2PixZero.load({ model: SD1_CKPT, checkpoint: { config: TINY_SD }, cacheDir, onNotice: (m) => notices.push(m) });
    const folder = path.join(cacheDir, 'checkpoints', checkpointKey(SD1_CKPT, { config: TINY_SD }));
    expect(fs.existsSync(path.join(folder, 'model_index.json'))).to.equal(true);
    expect(notices[0]).to.match(/is a single-file checkpoint: converting it once to the diffusers folder/);
    p1.dispose();
    const p2 = await Pix2PixZero.load({ model: SD1_CKPT, checkpoint: { config: TINY_SD }, cacheDir, onNotice: (m) => notices.push(m) });
    expect(notices[1]).to.match(/reading its converted folder/);
    p2.dispose();
    // Without a cache: a temporary folder, removed once the weights are read.
    const before = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('pix2pix-zero-checkpoint-')).length;
    const p3 = await Pix2PixZero.load({ model: SD1_CKPT, checkpoint: { config: TINY_SD }, cacheDir: false });
    expect(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('pix2pix-zero-checkpoint-')).length).to.equal(before);
    p3.dispose();
    expect(tf.memory().numTensors).to.equal(start);
  });

  it("gives embed's text encoder from the checkpoint the same embeddings as the pipeline folder's", async function () {
    const cacheDir = path.join(dir, 'cache-embed');
    const texts = ['a photo of a cat', 'an oil painting of a red car'];
    const start = tf.memory().numTensors;
    const fromFile = await Pix2PixZero.loadTextEmbedder({ model: SD1_CKPT, checkpoint: { config: TINY_SD }, cacheDir });
    const fromFolder = await Pix2PixZero.loadTextEmbedder({ model: TINY_SD });
    const [a, b] = [await fromFile.embed(texts), await fromFolder.embed(texts)];
    expect(a.shape).to.deep.equal(b.shape);
    // The same weights (the conversion is exact), so the same float32 embeddings, bit for bit.
    expect(Array.from(await a.data())).to.deep.equal(Array.from(await b.data()));
    tf.dispose([a, b]);
    fromFile.dispose();
    fromFolder.dispose();
    expect(fs.existsSync(path.join(cacheDir, 'checkpoints', checkpointKey(SD1_CKPT, { config: TINY_SD }), 'model_index.json'))).to.equal(true);
    expect(tf.memory().numTensors).to.equal(start);
  });
});
