/**
 * The weight-name maps between the original single-file layout of Stable Diffusion 1.x/2.x checkpoints
 * (CompVis/Stability `ldm`: `model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.transformer.*`
 * or the OpenCLIP `cond_stage_model.model.*`) and the diffusers/transformers layout of a pipeline folder
 * (`unet/`, `vae/`, `text_encoder/`; the text encoder's names as transformers 5 saves them, without the
 * `text_model.` level, which the loaders take either way). The maps are data: a table of module pairs (original prefix, diffusers prefix,
 * the renames inside), laid out from a few structural numbers (blocks, layers per block, where the attentions
 * are), plus the tensors whose form changes (the VAE's 1x1-convolution attention projections become linear
 * weights; OpenCLIP's fused `in_proj` splits into q, k and v). Both directions read the same table, so a name maps
 * back to itself.
 */

/** The structure of the original UNet and VAE that the names depend on. */
export interface CheckpointLayout {
  /** UNet levels (`block_out_channels.length`), layers per level, and which down / up levels have attentions. */
  readonly unet: { readonly levels: number; readonly layersPerBlock: number; readonly attentionDown: readonly boolean[]; readonly attentionUp: readonly boolean[] };
  /** VAE levels and resnets per encoder level (the decoder has one more). */
  readonly vae: { readonly levels: number; readonly layersPerBlock: number };
  /**
   * The text encoder: `clip` (transformers' CLIPTextModel, SD 1.x) or `openclip` (SD 2.x), with the diffusers
   * text encoder's layers (for OpenCLIP one fewer than the tower's resblocks: SD 2.x reads the penultimate one).
   */
  readonly text: { readonly kind: 'clip' | 'openclip'; readonly layers: number };
}

/** How a tensor's form differs between the layouts. */
export type TensorForm =
  /** The same shape and bytes. */
  | { readonly kind: 'same' }
  /** A 1x1 convolution kernel [o, i, 1, 1] in the original, a linear weight [o, i] in diffusers (same bytes). */
  | { readonly kind: 'conv1x1' }
  /** Rows `part` of 3 of a fused [3d, ...] original tensor (q, k, v). */
  | { readonly kind: 'split3'; readonly part: 0 | 1 | 2 };

/** The original and diffusers names of one tensor, and how its form differs. */
export interface NamePair {
  readonly original: string;
  /** The diffusers component (`unet`, `vae`, `text_encoder`) and the name inside it. */
  readonly component: 'unet' | 'vae' | 'text_encoder';
  readonly diffusers: string;
  readonly form: TensorForm;
}

/** A module in both layouts: the original prefix, the component and its prefix, and renames of the first name part inside. */
interface ModulePair {
  readonly original: string;
  readonly component: NamePair['component'];
  readonly diffusers: string;
  readonly inner?: Readonly<Record<string, string>>;
  /** Inner names whose tensors change form. */
  readonly forms?: Readonly<Record<string, TensorForm>>;
}

/** Component prefixes of the original checkpoint. */
export const ORIGINAL_PREFIX = {
  unet: 'model.diffusion_model.',
  vae: 'first_stage_model.',
  clip: 'cond_stage_model.transformer.',
  openclip: 'cond_stage_model.model.',
} as const;

/** The level transformers 4 put CLIPTextModel's tensors under (transformers 5 saves them without it). */
const TEXT_MODEL = 'text_model.';

/** Renames inside an `ldm` UNet ResBlock (the rest of the names, `weight` / `bias`, stay). */
const UNET_RESNET: Record<string, string> = {
  'in_layers.0': 'norm1',
  'in_layers.2': 'conv1',
  'emb_layers.1': 'time_emb_proj',
  'out_layers.0': 'norm2',
  'out_layers.3': 'conv2',
  skip_connection: 'conv_shortcut',
};

/** Renames inside an `ldm` VAE ResnetBlock. */
const VAE_RESNET: Record<string, string> = { nin_shortcut: 'conv_shortcut' };

/** Renames inside the VAE's mid-block attention, whose projections are 1x1 convolutions in the original. */
const VAE_ATTENTION: Record<string, string> = { norm: 'group_norm', q: 'to_q', k: 'to_k', v: 'to_v', proj_out: 'to_out.0' };
const VAE_ATTENTION_FORMS: Record<string, TensorForm> = {
  'q.weight': { kind: 'conv1x1' },
  'k.weight': { kind: 'conv1x1' },
  'v.weight': { kind: 'conv1x1' },
  'proj_out.weight': { kind: 'conv1x1' },
};

/** The UNet's modules. */
function unetModules(l: CheckpointLayout['unet']): ModulePair[] {
  const P = ORIGINAL_PREFIX.unet;
  const m: ModulePair[] = [
    { original: `${P}time_embed.0`, component: 'unet', diffusers: 'time_embedding.linear_1' },
    { original: `${P}time_embed.2`, component: 'unet', diffusers: 'time_embedding.linear_2' },
    { original: `${P}input_blocks.0.0`, component: 'unet', diffusers: 'conv_in' },
  ];
  for (let level = 0; level < l.levels; level++) {
    for (let j = 0; j < l.layersPerBlock; j++) {
      const i = 1 + level * (l.layersPerBlock + 1) + j;
      m.push({ original: `${P}input_blocks.${i}.0`, component: 'unet', diffusers: `down_blocks.${level}.resnets.${j}`, inner: UNET_RESNET });
      if (l.attentionDown[level] === true) m.push({ original: `${P}input_blocks.${i}.1`, component: 'unet', diffusers: `down_blocks.${level}.attentions.${j}` });
    }
    if (level < l.levels - 1) {
      const i = 1 + level * (l.layersPerBlock + 1) + l.layersPerBlock;
      m.push({ original: `${P}input_blocks.${i}.0.op`, component: 'unet', diffusers: `down_blocks.${level}.downsamplers.0.conv` });
    }
  }
  m.push(
    { original: `${P}middle_block.0`, component: 'unet', diffusers: 'mid_block.resnets.0', inner: UNET_RESNET },
    { original: `${P}middle_block.1`, component: 'unet', diffusers: 'mid_block.attentions.0' },
    { original: `${P}middle_block.2`, component: 'unet', diffusers: 'mid_block.resnets.1', inner: UNET_RESNET },
  );
  for (let up = 0; up < l.levels; up++) {
    const attn = l.attentionUp[up] === true;
    for (let j = 0; j <= l.layersPerBlock; j++) {
      const i = up * (l.layersPerBlock + 1) + j;
      m.push({ original: `${P}output_blocks.${i}.0`, component: 'unet', diffusers: `up_blocks.${up}.resnets.${j}`, inner: UNET_RESNET });
      if (attn) m.push({ original: `${P}output_blocks.${i}.1`, component: 'unet', diffusers: `up_blocks.${up}.attentions.${j}` });
      if (j === l.layersPerBlock && up < l.levels - 1) {
        m.push({ original: `${P}output_blocks.${i}.${attn ? 2 : 1}.conv`, component: 'unet', diffusers: `up_blocks.${up}.upsamplers.0.conv` });
      }
    }
  }
  m.push({ original: `${P}out.0`, component: 'unet', diffusers: 'conv_norm_out' }, { original: `${P}out.2`, component: 'unet', diffusers: 'conv_out' });
  return m;
}

/** The VAE's modules (the decoder's levels run the other way in diffusers). */
function vaeModules(l: CheckpointLayout['vae']): ModulePair[] {
  const P = ORIGINAL_PREFIX.vae;
  const m: ModulePair[] = [
    { original: `${P}quant_conv`, component: 'vae', diffusers: 'quant_conv' },
    { original: `${P}post_quant_conv`, component: 'vae', diffusers: 'post_quant_conv' },
  ];
  for (const part of ['encoder', 'decoder'] as const) {
    m.push(
      { original: `${P}${part}.conv_in`, component: 'vae', diffusers: `${part}.conv_in` },
      { original: `${P}${part}.conv_out`, component: 'vae', diffusers: `${part}.conv_out` },
      { original: `${P}${part}.norm_out`, component: 'vae', diffusers: `${part}.conv_norm_out` },
      { original: `${P}${part}.mid.block_1`, component: 'vae', diffusers: `${part}.mid_block.resnets.0`, inner: VAE_RESNET },
      { original: `${P}${part}.mid.block_2`, component: 'vae', diffusers: `${part}.mid_block.resnets.1`, inner: VAE_RESNET },
      { original: `${P}${part}.mid.attn_1`, component: 'vae', diffusers: `${part}.mid_block.attentions.0`, inner: VAE_ATTENTION, forms: VAE_ATTENTION_FORMS },
    );
  }
  for (let level = 0; level < l.levels; level++) {
    for (let j = 0; j < l.layersPerBlock; j++) {
      m.push({ original: `${P}encoder.down.${level}.block.${j}`, component: 'vae', diffusers: `encoder.down_blocks.${level}.resnets.${j}`, inner: VAE_RESNET });
    }
    if (level < l.levels - 1) m.push({ original: `${P}encoder.down.${level}.downsample.conv`, component: 'vae', diffusers: `encoder.down_blocks.${level}.downsamplers.0.conv` });
    const up = l.levels - 1 - level;
    for (let j = 0; j <= l.layersPerBlock; j++) {
      m.push({ original: `${P}decoder.up.${level}.block.${j}`, component: 'vae', diffusers: `decoder.up_blocks.${up}.resnets.${j}`, inner: VAE_RESNET });
    }
    if (level > 0) m.push({ original: `${P}decoder.up.${level}.upsample.conv`, component: 'vae', diffusers: `decoder.up_blocks.${up}.upsamplers.0.conv` });
  }
  return m;
}

/** OpenCLIP's text tower (SD 2.x). diffusers keeps all but the last layer (SD 2.x reads the penultimate one). */
function openClipModules(layers: number): ModulePair[] {
  const P = ORIGINAL_PREFIX.openclip;
  const m: ModulePair[] = [
    { original: `${P}token_embedding`, component: 'text_encoder', diffusers: 'embeddings.token_embedding' },
    { original: `${P}ln_final`, component: 'text_encoder', diffusers: 'final_layer_norm' },
  ];
  for (let i = 0; i < layers; i++) {
    m.push({
      original: `${P}transformer.resblocks.${i}`,
      component: 'text_encoder',
      diffusers: `encoder.layers.${i}`,
      inner: { ln_1: 'layer_norm1', ln_2: 'layer_norm2', 'mlp.c_fc': 'mlp.fc1', 'mlp.c_proj': 'mlp.fc2', 'attn.out_proj': 'self_attn.out_proj' },
    });
  }
  return m;
}

/** The tensors outside the module table: single tensors renamed as a whole, and the fused attention inputs. */
function openClipTensors(layers: number): NamePair[] {
  const P = ORIGINAL_PREFIX.openclip;
  const pairs: NamePair[] = [{ original: `${P}positional_embedding`, component: 'text_encoder', diffusers: 'embeddings.position_embedding.weight', form: { kind: 'same' } }];
  for (let i = 0; i < layers; i++) {
    (['q', 'k', 'v'] as const).forEach((x, part) => {
      for (const t of ['weight', 'bias'] as const) {
        pairs.push({
          original: `${P}transformer.resblocks.${i}.attn.in_proj_${t}`,
          component: 'text_encoder',
          diffusers: `encoder.layers.${i}.self_attn.${x}_proj.${t}`,
          form: { kind: 'split3', part: part as 0 | 1 | 2 },
        });
      }
    });
  }
  return pairs;
}

/**
 * Original tensors that no diffusers component holds: the DDPM schedule buffers, EMA bookkeeping, the text
 * encoders' position ids and projection heads, and the layer of OpenCLIP that SD 2.x does not use (the last one,
 * matched by {@link CheckpointNameMap.ignored}).
 */
const IGNORED = [
  /^(betas|alphas_cumprod|alphas_cumprod_prev|sqrt_alphas_cumprod|sqrt_one_minus_alphas_cumprod|log_one_minus_alphas_cumprod|sqrt_recip_alphas_cumprod|sqrt_recipm1_alphas_cumprod|posterior_variance|posterior_log_variance_clipped|posterior_mean_coef1|posterior_mean_coef2|logvar)$/,
  /^model_ema\./,
  /^cond_stage_model\.transformer\.(text_model\.)?embeddings\.position_ids$/,
  /^cond_stage_model\.model\.(text_projection|logit_scale|attn_mask)$/,
  /^first_stage_model\.loss\./,
];

/** The name map of one checkpoint layout, both ways. */
export class CheckpointNameMap {
  private readonly modules: ModulePair[];
  /** Fused tensors (OpenCLIP's in_proj) map to three; every other tensor to one. */
  private readonly byOriginal = new Map<string, NamePair[]>();
  private readonly byDiffusers = new Map<string, NamePair>();

  constructor(readonly layout: CheckpointLayout) {
    const text = layout.text;
    // The diffusers text encoder of SD 2.x has one layer fewer than the OpenCLIP tower.
    this.modules = [...unetModules(layout.unet), ...vaeModules(layout.vae), ...(text.kind === 'clip' ? [] : openClipModules(text.layers))];
    if (text.kind === 'openclip') for (const p of openClipTensors(text.layers)) this.add(p);
  }

  private add(p: NamePair): void {
    this.byOriginal.set(p.original, [...(this.byOriginal.get(p.original) ?? []), p]);
    this.byDiffusers.set(`${p.component}:${p.diffusers}`, p);
  }

  /** Whether an original tensor is one no diffusers component holds (schedule buffers, EMA copies, ...). */
  ignored(original: string): boolean {
    if (IGNORED.some((re) => re.test(original))) return true;
    const t = this.layout.text;
    return t.kind === 'openclip' && original.startsWith(`${ORIGINAL_PREFIX.openclip}transformer.resblocks.${t.layers}.`);
  }

  /** The diffusers tensors of an original tensor (three for a fused q/k/v input; none if the layout has no such tensor). */
  toDiffusers(original: string): NamePair[] {
    const direct = this.byOriginal.get(original);
    if (direct !== undefined) return direct;
    if (this.layout.text.kind === 'clip' && original.startsWith(ORIGINAL_PREFIX.clip)) {
      const rest = original.slice(ORIGINAL_PREFIX.clip.length);
      // Checkpoints saved with older transformers lack the `text_model.` level; transformers 5 saves
      // CLIPTextModel without it too, and so does this.
      return [{ original, component: 'text_encoder', diffusers: rest.startsWith(TEXT_MODEL) ? rest.slice(TEXT_MODEL.length) : rest, form: { kind: 'same' } }];
    }
    const m = this.moduleOf(original, (x) => x.original);
    if (m === undefined) return [];
    const inner = original.slice(m.original.length + 1);
    return [{ original, component: m.component, diffusers: `${m.diffusers}.${rename(inner, m.inner)}`, form: m.forms?.[inner] ?? { kind: 'same' } }];
  }

  /** The original name of a diffusers tensor of `component`, or undefined if the layout has no such tensor. */
  toOriginal(component: NamePair['component'], diffusers: string): NamePair | undefined {
    const direct = this.byDiffusers.get(`${component}:${diffusers}`);
    if (direct !== undefined) return direct;
    if (component === 'text_encoder' && this.layout.text.kind === 'clip') {
      const bare = diffusers.startsWith(TEXT_MODEL) ? diffusers.slice(TEXT_MODEL.length) : diffusers;
      return { original: `${ORIGINAL_PREFIX.clip}${TEXT_MODEL}${bare}`, component, diffusers, form: { kind: 'same' } };
    }
    const m = this.moduleOf(diffusers, (x) => x.diffusers, component);
    if (m === undefined) return undefined;
    const inner = diffusers.slice(m.diffusers.length + 1);
    const back = m.inner === undefined ? undefined : Object.fromEntries(Object.entries(m.inner).map(([a, b]) => [b, a]));
    const originalInner = rename(inner, back);
    return { original: `${m.original}.${originalInner}`, component, diffusers, form: m.forms?.[originalInner] ?? { kind: 'same' } };
  }

  /** The module whose prefix (in one layout) is the longest one that `name` starts with. */
  private moduleOf(name: string, prefix: (m: ModulePair) => string, component?: NamePair['component']): ModulePair | undefined {
    let best: ModulePair | undefined;
    for (const m of this.modules) {
      if (component !== undefined && m.component !== component) continue;
      const p = prefix(m);
      if (name.startsWith(`${p}.`) && (best === undefined || p.length > prefix(best).length)) best = m;
    }
    return best;
  }
}

/** Renames the leading dotted parts of `inner` by the table (the longest match), keeping the rest. */
function rename(inner: string, table: Readonly<Record<string, string>> | undefined): string {
  if (table === undefined) return inner;
  let best: string | undefined;
  for (const k of Object.keys(table)) {
    if ((inner === k || inner.startsWith(`${k}.`)) && (best === undefined || k.length > best.length)) best = k;
  }
  return best === undefined ? inner : `${table[best]}${inner.slice(best.length)}`;
}
