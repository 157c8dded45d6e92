/** Which special and added tokens a CLIP tokenizer folder defines, resolved as transformers 5 resolves them. */
import { type JsonObject, isJsonObject } from '../io/json.js';
import { CLIP_BOS, CLIP_EOS } from './clip-vocab.js';
import { type SpecialToken, parseSpecialToken } from './common.js';

/** The special-token attributes of a transformers tokenizer, in the order transformers adds them. */
const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;
type SpecialKey = (typeof SPECIAL_KEYS)[number];

/** The special tokens of a CLIP tokenizer and the added tokens that the text is split on. */
export interface ClipSpecialTokens {
  readonly bos: string;
  readonly eos: string;
  readonly unk: string;
  readonly pad: string;
  /** Every added token, with the flags transformers ends up with (the last definition of a content wins). */
  readonly added: readonly SpecialToken[];
}

/** CLIPTokenizer's defaults, used where a folder's configs name no token. */
const CLIP_DEFAULTS: Partial<Record<SpecialKey, string>> = { bos_token: CLIP_BOS, eos_token: CLIP_EOS, unk_token: CLIP_EOS, pad_token: CLIP_EOS };

/**
 * Resolves the special tokens of a tokenizer folder as transformers 5 does: `tokenizer_config.json` values,
 * overridden by `special_tokens_map.json` unless the config has an `added_tokens_decoder` (whose entries then
 * define the flags of the tokens they name), CLIPTokenizer's defaults for the rest. A token given as a string is
 * matched in the raw text; an object keeps its `normalized` flag.
 */
export function resolveClipSpecialTokens(config: JsonObject, specialTokensMap: JsonObject = {}): ClipSpecialTokens {
  const decoder = isJsonObject(config.added_tokens_decoder) ? config.added_tokens_decoder : undefined;
  const values = new Map<SpecialKey, SpecialToken>();
  for (const key of SPECIAL_KEYS) {
    // In tokenizer_config.json, a serialised AddedToken ({"__type": "AddedToken"}) is not marked special, so its
    // `normalized` defaults to true; a plain object is made special, defaulting to false.
    const raw = config[key];
    const fromConfig = parseSpecialToken(raw, isJsonObject(raw) && raw.__type === 'AddedToken');
    const fromMap = decoder === undefined ? parseSpecialToken(specialTokensMap[key], false) : undefined;
    const fallback = CLIP_DEFAULTS[key];
    const token = fromMap ?? fromConfig ?? (fallback !== undefined ? parseSpecialToken(fallback, false) : undefined);
    if (token !== undefined) values.set(key, token);
  }
  const extraRaw = config.additional_special_tokens ?? config.extra_special_tokens ?? specialTokensMap.additional_special_tokens;
  const extras = Array.isArray(extraRaw) ? extraRaw.map((v) => parseSpecialToken(v, false)).filter((t) => t !== undefined) : [];

  // transformers adds the config's added_tokens_decoder entries (by id), then each special token whose content
  // they do not already define, then the extra tokens; the backend keeps the last flags given for a content.
  const ordered: SpecialToken[] = [];
  const fromDecoder = new Set<string>();
  if (decoder !== undefined) {
    const entries = Object.entries(decoder)
      .map(([id, v]) => [Number(id), parseSpecialToken(v, isJsonObject(v) && v.special !== true)] as const)
      .sort((a, b) => a[0] - b[0]);
    for (const [, t] of entries) {
      if (t === undefined) continue;
      ordered.push(t);
      fromDecoder.add(t.content);
    }
  }
  for (const t of [...values.values(), ...extras]) if (!fromDecoder.has(t.content)) ordered.push(t);
  const last = new Map<string, SpecialToken>();
  for (const t of ordered) {
    last.delete(t.content);
    last.set(t.content, t);
  }
  const content = (key: SpecialKey): string => values.get(key)?.content ?? CLIP_DEFAULTS[key]!;
  return { bos: content('bos_token'), eos: content('eos_token'), unk: content('unk_token'), pad: content('pad_token'), added: [...last.values()] };
}
