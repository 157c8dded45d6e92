/**
 * BERT's WordPiece tokenizer (transformers' `BertTokenizer`/`BertTokenizerFast`, uncased or cased), as BLIP uses it:
 * built from a folder's `tokenizer.json`, or from `vocab.txt` + `tokenizer_config.json` (the same pipeline the
 * Rust library's `BertTokenizerFast` converter writes: BERT normaliser, BERT pre-tokeniser, WordPiece with `##`
 * continuations and a 100-character word limit, `[CLS] ... [SEP]` template, WordPiece decoder), run by
 * `@huggingface/tokenizers` offline.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import type { TokenizerFiles } from '../io/model-folder.js';
import { type JsonObject, isJsonObject, readJsonObject } from '../io/json.js';
import { readTextFile } from '../io/text-file.js';
import { addedTokenJson, parseSpecialToken, withoutFinalSigma } from './common.js';

/** BertTokenizer's defaults for the special tokens the folder's config does not name. */
const DEFAULTS = { unk: '[UNK]', sep: '[SEP]', pad: '[PAD]', cls: '[CLS]', mask: '[MASK]' } as const;

/** Reads `vocab.txt` (one token a line, the line number is the id). */
function readVocab(file: string): Map<string, number> {
  const lines = readTextFile(file, 'the BERT vocabulary').split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const vocab = new Map<string, number>();
  lines.forEach((line, i) => {
    const token = line.replace(/\r$/, '');
    if (!vocab.has(token)) vocab.set(token, i);
  });
  if (vocab.size === 0) throw new Error(`the BERT vocabulary ${file} is empty`);
  return vocab;
}

/** The `tokenizer.json` that `BertTokenizerFast` builds from `vocab.txt` and its options. */
export function bertTokenizerJson(vocab: Map<string, number>, config: JsonObject, source: string): JsonObject {
  const token = (key: keyof typeof DEFAULTS): string => parseSpecialToken(config[`${key}_token`])?.content ?? DEFAULTS[key];
  const special = { unk: token('unk'), sep: token('sep'), pad: token('pad'), cls: token('cls'), mask: token('mask') };
  const extra: string[] = [];
  const bos = parseSpecialToken(config.bos_token)?.content;
  if (bos !== undefined) extra.push(bos);
  for (const [k, t] of Object.entries(special)) {
    if (!vocab.has(t)) throw new Error(`${source}: the ${k} token ${JSON.stringify(t)} is not in the vocabulary`);
  }
  const lowercase = config.do_lower_case !== false;
  const strip = config.strip_accents;
  // Tokens added to the vocabulary (BLIP's bos "[DEC]") take the ids after it, as transformers adds them.
  let nextId = Math.max(...vocab.values()) + 1;
  for (const t of extra) if (!vocab.has(t)) vocab.set(t, nextId++);
  const added = [...new Set([special.pad, special.unk, special.cls, special.sep, special.mask, ...extra])].map((content) => {
    return addedTokenJson(vocab.get(content)!, parseSpecialToken(content)!);
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: config.tokenize_chinese_chars !== false,
      strip_accents: typeof strip === 'boolean' ? strip : null,
      lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: special.cls, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: special.sep, type_id: 0 } }],
      pair: [
        { SpecialToken: { id: special.cls, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: special.sep, type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: special.sep, type_id: 1 } },
      ],
      special_tokens: {
        [special.cls]: { id: special.cls, ids: [vocab.get(special.cls)], tokens: [special.cls] },
        [special.sep]: { id: special.sep, ids: [vocab.get(special.sep)], tokens: [special.sep] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: special.unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: Object.fromEntries(vocab) },
  };
}

/** Whether a tokenizer.json normaliser (or any step of a Sequence) lowercases. */
function lowercases(normalizer: unknown): boolean {
  if (!isJsonObject(normalizer)) return false;
  if (normalizer.type === 'Lowercase') return true;
  if (normalizer.type === 'BertNormalizer') return normalizer.lowercase === true;
  if (normalizer.type === 'Sequence' && Array.isArray(normalizer.normalizers)) return normalizer.normalizers.some(lowercases);
  return false;
}

/**
 * A BERT WordPiece tokenizer. Build it with {@link BertTokenizer.fromFiles} (a transformers tokenizer folder, as
 * read by `readTokenizerFolder`/`readBlipFolder`) or {@link BertTokenizer.fromVocab}.
 */
export class BertTokenizer {
  private readonly tokenizer: Tokenizer;
  /** Whether the normaliser lowercases (a BertNormalizer with `lowercase`, or a Lowercase step). */
  private readonly lowercase: boolean;

  private constructor(json: JsonObject, config: JsonObject, readonly source: string) {
    this.lowercase = lowercases(json.normalizer);
    // transformers 5 cleans up tokenization spaces in decode() only when the config asks for it (default false);
    // the WordPiece decoder's own per-token cleanup (" ." -> ".") applies either way, as in the Rust library.
    this.tokenizer = new Tokenizer(json, { ...config, clean_up_tokenization_spaces: config.clean_up_tokenization_spaces === true });
  }

  /** From a folder's files: `tokenizer.json` when present, else `vocab.txt` with `tokenizer_config.json`. */
  static fromFiles(files: TokenizerFiles): BertTokenizer {
    const config = { ...files.specialTokens, ...files.config };
    if (files.tokenizerJson !== undefined) {
      return new BertTokenizer(readJsonObject(files.tokenizerJson, 'BERT tokenizer.json'), config, files.tokenizerJson);
    }
    if (files.vocabTxt !== undefined) return BertTokenizer.fromVocab(files.vocabTxt, config);
    throw new Error(`BERT tokenizer in ${files.dir}: expected tokenizer.json or vocab.txt`);
  }

  /** From a `vocab.txt` and `BertTokenizer` options (`do_lower_case`, `strip_accents`, special tokens). */
  static fromVocab(vocabTxt: string, config: JsonObject = {}): BertTokenizer {
    return new BertTokenizer(bertTokenizerJson(readVocab(vocabTxt), config, vocabTxt), config, vocabTxt);
  }

  /** The ids of `text`, with `[CLS]` and `[SEP]` unless `addSpecialTokens` is false. */
  encode(text: string, addSpecialTokens = true): number[] {
    // The Rust BertNormalizer lowercases character by character, so a capital sigma at a word's end becomes σ.
    if (this.lowercase) text = withoutFinalSigma(text);
    return this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  /** The text of `ids` as transformers' `decode` gives it (special tokens skipped unless `keepSpecial`). */
  decode(ids: readonly number[], keepSpecial = false): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], { skip_special_tokens: !keepSpecial });
  }

  /** The id of `token`, or undefined. */
  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token) ?? undefined;
  }
}
