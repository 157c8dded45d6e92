/**
 * Sentences for any concept without a language model: caption-like sentences composed from fixed phrase lists
 * (sizes and colours, settings, and in a quarter of them photo styles and views) around the concept's noun phrase,
 * mostly first in the sentence as in a caption ("a small white owl on a branch"), with English articles
 * ("an owl", "an orange car", "a unicorn", "an hour") and number agreement ("a pair of scissors is", "the scissors
 * are", "two cats are", "some sand is"); an attribute (a colour, material or pattern word: "red", "wooden") is
 * said of things that have it ("a red ball", "two red cars"). The draws come from a seeded generator, so a concept and a seed give
 * the same bank everywhere. The phrases are neutral about the concept on purpose: the same contexts around two
 * concepts cancel in the difference of their mean embeddings, and what is left is the concept.
 */
import { TorchGenerator } from '../random/torch-generator.js';

/** Options of {@link generateSentences}. */
export interface SentenceGeneratorOptions {
  /** How many distinct sentences (default {@link DEFAULT_GENERATED_SENTENCES}). */
  count?: number;
  /** Seed of the draws (default 0). */
  seed?: number;
}

/** How many sentences a generated bank has by default (the authors recommend about 1,000). */
export const DEFAULT_GENERATED_SENTENCES = 1000;

/** The most sentences one call writes. */
export const MAX_GENERATED_SENTENCES = 20_000;

/** How a picture is made: "{style} {noun phrase}". */
const STYLES = [
  'a photo of', 'a close-up photo of', 'a picture of', 'an image of', 'a blurry photo of', 'a bright photo of',
  'a dark photo of', 'a cropped photo of', 'a good photo of', 'a painting of', 'a snapshot of', 'a sketch of',
  'a drawing of', 'a watercolor painting of', 'an oil painting of', 'a black and white photo of', 'a 3D render of',
  'an illustration of', 'a cartoon of', 'a film photo of', 'a polaroid photo of', 'a high resolution photo of',
  'a low resolution photo of', 'a detailed photo of', 'a professional photo of', 'a vintage photo of',
  'a pencil sketch of', 'a digital painting of', 'a wide-angle photo of', 'a macro photo of', 'a studio photo of',
  'a candid photo of', 'a rendering of', 'a jpeg photo of', 'a pixelated photo of', 'a photograph of',
  'a sharp photo of', 'a soft-focus photo of', 'a colorful painting of', 'a minimalist illustration of',
];

/** Sizes: the first adjective of two ("a small white dog", "a large red ball"), as English orders them. */
const SIZES = ['small', 'large', 'big', 'little', 'tiny', 'huge'];

/** Colours: what captions say of a thing after its size ("a small white dog"). */
const COLOURS = ['white', 'black', 'red', 'blue', 'green', 'brown', 'grey', 'yellow', 'orange', 'pink', 'purple'];

/** Where the concept is: a preposition phrase after the noun. */
const SETTINGS = [
  'on a table', 'on a wooden table', 'in a room', 'in a living room', 'in a kitchen', 'on the street',
  'in a city', 'in a garden', 'in a park', 'on the beach', 'in a forest', 'in the snow', 'in a field',
  'in the desert', 'by a lake', 'by the sea', 'on a hill', 'in the mountains', 'in a studio',
  'on a white background', 'on a black background', 'against a blue sky', 'in the rain', 'at night',
  'at sunset', 'in the morning', 'under a tree', 'next to a window', 'near a wall', 'on the grass',
  'on the floor', 'on a shelf', 'in a museum', 'in a shop window', 'at the zoo', 'on a farm', 'in a village',
  'by the road', 'under the stars', 'in the fog',
];

/** How the concept is seen or what happens to it: fits animals, people and objects alike. */
const VIEWS = [
  'in the center of the frame', 'seen from above', 'seen from the side', 'seen from the front',
  'seen from below', 'in the foreground', 'in the background', 'in sharp focus', 'in soft light',
  'in bright sunlight', 'in the shade', 'lit by a lamp', 'under a spotlight', 'in warm light',
  'in cold light', 'in a crowd of things', 'up close', 'far away', 'on display', 'all alone',
];

/**
 * Sentence shapes: S style, N noun phrase, P setting, V view; `{be}` is "is" or "are" as the noun phrase needs.
 */
const SHAPES = [
  '{S} {N}', '{S} {N} {P}', '{S} {N} {V}', '{S} {N} {P}, {V}', 'there {be} {N} {P}',
  'this is {S} {N} {P}', '{S} {N}, {V}', 'a view of {N} {P}',
];

/** Sentence shapes that start with the noun phrase, as image captions do ("a small white dog on the grass"). */
const CAPTION_SHAPES = ['{N} {P}'];

/**
 * How many sentences in four take a caption shape. pix2pix-zero adds the direction to the caption's embedding
 * position by position, and CLIP's text encoder is causal, so the bank should put the concept where captions do:
 * first, after zero to two adjectives. Measured on the toy world (docs/eval.md, issue 19): with style-first shapes
 * one sentence in four instead of two in three, the direction's cosine to the exact edit of held-out captions rose from 0.61-0.75 to
 * 0.72-0.81 (curated banks: 0.76-0.85).
 */
const CAPTION_SHARE = 3;

/**
 * Words that are attributes, not things (colours, materials, patterns): their sentences are about things that
 * have them ("a red ball", "two red cars"), so that the attribute is what the bank has in common.
 */
const ATTRIBUTES = new Set([
  'red', 'blue', 'green', 'yellow', 'orange', 'purple', 'pink', 'black', 'white', 'grey', 'gray', 'brown', 'golden',
  'silver', 'beige', 'cyan', 'magenta', 'violet', 'turquoise', 'wooden', 'metal', 'metallic', 'glass', 'plastic',
  'paper', 'stone', 'leather', 'striped', 'spotted', 'dotted', 'checkered', 'shiny', 'rusty', 'broken', 'transparent',
]);

/** The things an attribute's sentences are about (regular plurals). */
const THINGS = ['object', 'ball', 'car', 'flower', 'house', 'bird', 'cup', 'chair', 'toy', 'hat', 'shirt', 'door', 'boat', 'bicycle', 'balloon', 'book', 'lamp', 'kite', 'bag', 'vase'];

/** Whether a concept is an attribute (a colour, material or pattern word) rather than a thing. */
export function isAttribute(concept: string): boolean {
  return ATTRIBUTES.has(concept.toLowerCase());
}

/** Nouns that are plural only: one of them is "a pair of …", and they take "are". */
const PAIR_NOUNS = new Set([
  'scissors', 'glasses', 'sunglasses', 'spectacles', 'goggles', 'binoculars', 'trousers', 'pants', 'jeans',
  'shorts', 'pajamas', 'pyjamas', 'tights', 'leggings', 'pliers', 'tongs', 'tweezers', 'headphones', 'earphones',
  'shears', 'clippers', 'skis', 'shoes', 'boots', 'socks', 'gloves', 'sandals', 'slippers', 'sneakers', 'earrings',
  'chopsticks', 'handcuffs',
]);

/** Nouns that are plural without a pair: "some …", "are". */
const PLURAL_NOUNS = new Set(['clothes', 'people', 'police', 'cattle', 'stairs', 'groceries', 'fireworks', 'leaves', 'mice', 'geese', 'teeth', 'feet', 'children', 'men', 'women']);

/** Nouns without a plural or an article: "some …", "is". */
const MASS_NOUNS = new Set([
  'water', 'sand', 'rice', 'snow', 'grass', 'milk', 'coffee', 'tea', 'bread', 'money', 'furniture', 'luggage',
  'hair', 'fire', 'smoke', 'ice', 'gold', 'silver', 'wood', 'fog', 'rain', 'sugar', 'salt', 'soup', 'cheese',
  'jewelry', 'jewellery', 'art', 'food', 'honey', 'wine', 'beer', 'juice', 'bamboo', 'lava', 'mud',
]);

/** Nouns whose plural is not the noun plus -s/-es (or is the noun itself): never pluralised. */
const IRREGULAR = new Set(['mouse', 'louse', 'goose', 'child', 'person', 'tooth', 'foot', 'ox', 'sheep', 'fish', 'deer', 'moose', 'aircraft', 'cactus', 'fungus', 'octopus', 'die', 'bison', 'salmon', 'trout', 'series', 'species']);

/** Singular nouns ending in s that are not plurals. */
const SINGULAR_S = /(ss|us|is|os|as|ys|ics)$/;

/** Words that start with a vowel letter but a consonant sound ("a unicorn", "a one-eyed cat", "a European car"). */
const CONSONANT_SOUND = /^(uni(?!nh|nt|mp|nf|nd)|use|usu|ura|uro|ure|euro|eu|ewe|one|once|ubiq|uku|uti)/;
/** Words that start with a consonant letter but a vowel sound ("an hour", "an honest face"). */
const VOWEL_SOUND = /^(hour|honest|honou?r|heir|herb(?!al|ivore))/;

/** "a" or "an" before `word`, as it is said. */
export function indefiniteArticle(word: string): 'a' | 'an' {
  const w = word.toLowerCase();
  // Letters said one by one (an acronym, or a letter before a hyphen): "an MRI scanner", "an X-ray", "a UFO".
  if (/^[A-Z]{2,}\b/.test(word) || /^[a-z]-/i.test(word)) return /^[aefhilmnorsx]/.test(w) ? 'an' : 'a';
  if (VOWEL_SOUND.test(w)) return 'an';
  if (/^[aeiou]/.test(w)) return CONSONANT_SOUND.test(w) ? 'a' : 'an';
  return 'a';
}

/** How a concept's noun phrase counts. */
export type ConceptNumber = 'singular' | 'plural' | 'pair' | 'mass';

/** The number of the noun phrase `concept` (decided by its last word). */
export function conceptNumber(concept: string): ConceptNumber {
  const lower = concept.toLowerCase();
  // "pair of scissors", "cup of tea": the head noun is the first one.
  if (/^[^ ]+ of /.test(lower)) return /^(pairs|cups|groups|piles|bunches) of /.test(lower) ? 'plural' : 'singular';
  const last = lower.split(/[\s-]+/).pop() ?? '';
  if (PAIR_NOUNS.has(last)) return 'pair';
  if (PLURAL_NOUNS.has(last)) return 'plural';
  if (MASS_NOUNS.has(last)) return 'mass';
  if (last.length > 3 && last.endsWith('s') && !SINGULAR_S.test(last)) return 'plural';
  return 'singular';
}

/** The regular plural of `concept`, if it still contains the concept ("cat" -> "cats", "box" -> "boxes"). */
function regularPlural(concept: string): string | undefined {
  if (/ of /.test(concept)) return undefined; // "cups of tea" does not contain "cup of tea"
  if (IRREGULAR.has(concept.split(/[\s-]+/).pop() ?? '')) return undefined;
  if (/(s|x|z|ch|sh)$/.test(concept)) return `${concept}es`;
  if (/[^aeiou]y$/.test(concept) || /(f|fe|o|man)$/.test(concept)) return undefined; // flies, wolves, tomatoes, men
  return `${concept}s`;
}

/** A noun phrase and the form of "to be" it takes. */
interface NounPhrase {
  phrase: string;
  be: 'is' | 'are';
}

/** The noun phrases of an attribute said of `thing`, after an optional size ("a small red ball"). */
function attributePhrases(attribute: string, thing: string, size: string | undefined): NounPhrase[] {
  const words = size === undefined ? `${attribute} ${thing}` : `${size} ${attribute} ${thing}`;
  return [
    ...repeat({ phrase: `${indefiniteArticle(words)} ${words}`, be: 'is' }, 2),
    { phrase: `the ${words}`, be: 'is' },
    { phrase: `two ${words}s`, be: 'are' },
  ];
}

/**
 * How often each noun phrase of a countable singular concept is drawn: "a cat" 9, "the cat" 5, and "two cats" and
 * "a group of cats" 3 each, so three sentences in ten are about a few of it. Captions name one object, and a plural
 * sentence moves the plural token instead: the share of plurals sets how long the direction is where the caption
 * names the object, and the toy world's shape edits are sensitive to that length in opposite ways (circle -> square
 * overshoots with a longer one, square -> triangle stops short with a shorter one). Chosen on the eval's default
 * scenes and checked on others (docs/eval.md, "Generated sentence banks: the share of plural sentences").
 */
const SINGULAR_PHRASE_WEIGHTS = { indefinite: 9, definite: 5, plural: 3 } as const;

/** `n` copies of a noun phrase (a weight in a uniform draw). */
function repeat(np: NounPhrase, n: number): NounPhrase[] {
  return Array.from({ length: n }, () => np);
}

/** The noun phrases of a concept after an optional adjective phrase (one or two words), with the verb each takes. */
function nounPhrases(concept: string, number: ConceptNumber, adj: string | undefined): NounPhrase[] {
  const np = adj === undefined ? concept : `${adj} ${concept}`;
  const withArticle = (head: string): string => {
    const words = adj === undefined ? head : `${adj} ${head}`;
    return `${indefiniteArticle(words)} ${words}`;
  };
  switch (number) {
    case 'singular': {
      // Mostly one of it, as captions say it; a few of it in three sentences in ten (SINGULAR_PHRASE_WEIGHTS).
      const w = SINGULAR_PHRASE_WEIGHTS;
      const out: NounPhrase[] = [
        ...repeat({ phrase: withArticle(concept), be: 'is' }, w.indefinite),
        ...repeat({ phrase: `the ${np}`, be: 'is' }, w.definite),
      ];
      const plural = regularPlural(concept);
      if (plural !== undefined) {
        const pl = adj === undefined ? plural : `${adj} ${plural}`;
        out.push(...repeat({ phrase: `two ${pl}`, be: 'are' }, w.plural), ...repeat({ phrase: `a group of ${pl}`, be: 'is' }, w.plural));
      }
      return out;
    }
    case 'pair':
      return [{ phrase: withArticle(`pair of ${concept}`), be: 'is' }, { phrase: `the ${np}`, be: 'are' }, { phrase: `two pairs of ${np}`, be: 'are' }];
    case 'plural':
      return [{ phrase: np, be: 'are' }, { phrase: `the ${np}`, be: 'are' }, { phrase: `some ${np}`, be: 'are' }, { phrase: `many ${np}`, be: 'are' }];
    case 'mass':
      return [{ phrase: np, be: 'is' }, { phrase: `the ${np}`, be: 'is' }, { phrase: `some ${np}`, be: 'is' }];
  }
}

/**
 * The concept as sentences use it: trimmed, single spaces, lower case unless it has capitals inside (names,
 * acronyms). A word or short phrase of letters, digits, spaces, hyphens and apostrophes, at most 6 words.
 * @throws Error naming the concept and what is expected.
 */
export function normalizeConcept(concept: string): string {
  const c = concept.trim().replace(/\s+/g, ' ');
  if (c.length === 0) throw new Error('concept is empty: give a word or a short phrase (e.g. "lion", "red car")');
  if (c.length > 60 || c.split(' ').length > 6 || !/^[\p{L}\p{N}][\p{L}\p{N} '’-]*$/u.test(c)) {
    throw new Error(`concept '${concept}' is not a word or short phrase (expected at most 6 words of letters, digits, hyphens or apostrophes)`);
  }
  return /\p{Lu}/u.test(c.slice(1)) ? c : c.toLowerCase();
}

/**
 * `count` distinct caption-like sentences about `concept`, each containing it, the same for the same concept,
 * count and seed (a larger count extends a smaller one's bank).
 * @throws Error for a concept that is not a word or short phrase, or a count outside [1, {@link MAX_GENERATED_SENTENCES}].
 */
export function generateSentences(concept: string, options: SentenceGeneratorOptions = {}): string[] {
  const count = options.count ?? DEFAULT_GENERATED_SENTENCES;
  if (!Number.isInteger(count) || count < 1 || count > MAX_GENERATED_SENTENCES) {
    throw new Error(`sentence count must be an integer in [1, ${MAX_GENERATED_SENTENCES}], got ${count}`);
  }
  const word = normalizeConcept(concept);
  const attribute = isAttribute(word);
  const number = attribute ? 'singular' : conceptNumber(word);
  const gen = new TorchGenerator(options.seed ?? 0);
  const pick = <T>(xs: readonly T[]): T => xs[gen.randint(xs.length)]!;
  // A caption's noun phrase: no adjective, a size or a colour, or a size and a colour (a third each); a concept that
  // names a colour itself ("red car") gets sizes only.
  const colours = COLOURS.some((c) => word.split(' ').includes(c)) ? SIZES : COLOURS;
  const adjectives = (): string | undefined => {
    const k = gen.randint(3);
    if (k === 0) return undefined;
    if (k === 1) return pick(gen.randint(2) === 0 ? SIZES : colours);
    return colours === SIZES ? pick(SIZES) : `${pick(SIZES)} ${pick(colours)}`;
  };
  const out = new Set<string>();
  for (let tries = 0; out.size < count; tries++) {
    if (tries > count * 100) throw new Error(`could not write ${count} distinct sentences about '${word}'`);
    // An attribute is said of a thing, half the time after a size ("a small red ball").
    const np = pick(attribute ? attributePhrases(word, pick(THINGS), gen.randint(2) === 0 ? undefined : pick(SIZES)) : nounPhrases(word, number, adjectives()));
    const s = pick(gen.randint(4) < CAPTION_SHARE ? CAPTION_SHAPES : SHAPES)
      .replace('{S}', pick(STYLES))
      .replace('{N}', np.phrase)
      .replace('{P}', pick(SETTINGS))
      .replace('{V}', pick(VIEWS))
      .replace('{be}', np.be);
    out.add(s);
  }
  return [...out];
}
