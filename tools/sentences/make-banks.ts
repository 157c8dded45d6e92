/**
 * Writes the built-in sentence banks (assets/sentences/<concept>.txt) of the real-world concepts: for each, first
 * the 120 curated sentences (composed from phrase lists written for that concept: what it looks like, what it does,
 * where it is, and shared framings, with a fixed seed; unchanged since the first banks), then sentences of the
 * template generator (lib/editing/sentence-generator.ts, the same seed) up to {@link BANK_SIZE} in all, the
 * authors' recommended size. pix2pix-zero takes the mean CLIP embedding of such a bank as the concept's position;
 * varied contexts average out everything but the concept, and the generator's contexts are the same for every
 * concept, so they cancel in a direction. The toy world's banks (shapes, colours) are written by
 * tools/toyworld/make_sentences.py, not here.
 *
 * Run: npm run build && node dist/tools/sentences/make-banks.js
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TorchGenerator } from '../../lib/random/torch-generator.js';
import { generateSentences } from '../../lib/editing/sentence-generator.js';

/** The curated sentences a bank starts with. */
const CURATED = 120;
/** The sentences of a bank in all. */
const BANK_SIZE = 1000;

interface Concept {
  /** The word as it appears in sentences (singular). */
  word: string;
  looks: string[];
  does: string[];
  where: string[];
}

const FRAMES = [
  'a photo of {a} {x}',
  'a close-up photo of {a} {x}',
  'a picture of {a} {x}',
  'an image of {a} {x}',
  '{a} {x}',
  'a blurry photo of {a} {x}',
  'a bright photo of {a} {x}',
  'a dark photo of {a} {x}',
  'a cropped photo of {a} {x}',
  'a good photo of {a} {x}',
  'a painting of {a} {x}',
  'a snapshot of {a} {x}',
];

const CONCEPTS: Concept[] = [
  {
    word: 'cat',
    looks: ['fluffy', 'tabby', 'black', 'white', 'ginger', 'grey', 'striped', 'small', 'sleepy', 'curious', 'long-haired', 'calico'],
    does: ['sleeping', 'sitting', 'stretching', 'yawning', 'playing with a toy', 'looking at the camera', 'lying down', 'licking its paw', 'hiding', 'walking'],
    where: ['on a sofa', 'on a windowsill', 'in the garden', 'on a bed', 'on the floor', 'in a basket', 'on a wooden table', 'in the grass', 'next to a plant', 'on a rug'],
  },
  {
    word: 'dog',
    looks: ['fluffy', 'brown', 'black', 'white', 'golden', 'spotted', 'small', 'big', 'happy', 'young', 'old', 'shaggy'],
    does: ['sleeping', 'sitting', 'running', 'playing with a ball', 'looking at the camera', 'lying down', 'wagging its tail', 'jumping', 'fetching a stick', 'walking'],
    where: ['on a sofa', 'in the park', 'in the garden', 'on a bed', 'on the floor', 'on the beach', 'on a wooden porch', 'in the grass', 'in the snow', 'on a rug'],
  },
  {
    word: 'horse',
    looks: ['brown', 'black', 'white', 'chestnut', 'grey', 'spotted', 'tall', 'young', 'wild', 'beautiful', 'strong', 'dappled'],
    does: ['grazing', 'standing', 'running', 'galloping', 'looking at the camera', 'drinking water', 'walking', 'resting', 'trotting', 'eating hay'],
    where: ['in a field', 'in a meadow', 'on a farm', 'in a paddock', 'near a fence', 'on a hill', 'in a stable', 'by a river', 'in the snow', 'on a dirt road'],
  },
  {
    word: 'zebra',
    looks: ['striped', 'young', 'wild', 'beautiful', 'tall', 'adult', 'black and white', 'dusty', 'alert', 'lone', 'grazing', 'calm'],
    does: ['grazing', 'standing', 'running', 'galloping', 'looking at the camera', 'drinking water', 'walking', 'resting', 'eating grass', 'crossing a river'],
    where: ['in a field', 'on the savanna', 'in a zoo', 'in the grassland', 'near a fence', 'on a hill', 'by a watering hole', 'by a river', 'under a tree', 'on a dirt road'],
  },
  {
    word: 'tree',
    looks: ['tall', 'old', 'green', 'large', 'small', 'leafy', 'bare', 'lonely', 'blooming', 'twisted', 'autumn', 'young'],
    does: ['standing', 'swaying in the wind', 'growing', 'casting a shadow', 'covered in leaves', 'covered in snow', 'blossoming', 'reaching to the sky', 'in full bloom', 'losing its leaves'],
    where: ['in a field', 'in a park', 'in the garden', 'on a hill', 'by a lake', 'in a forest', 'next to a house', 'by the road', 'in the snow', 'under a blue sky'],
  },
  {
    word: 'car',
    looks: ['red', 'blue', 'black', 'white', 'old', 'new', 'small', 'shiny', 'vintage', 'silver', 'fast', 'dusty'],
    does: ['parked', 'driving', 'standing', 'speeding', 'waiting at a light', 'turning a corner', 'covered in snow', 'being washed', 'stopped', 'moving'],
    where: ['on a street', 'in a parking lot', 'on a highway', 'in a garage', 'on a country road', 'in the city', 'next to a house', 'by the beach', 'in the rain', 'on a bridge'],
  },
];

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

function sentences(c: Concept, count: number, gen: TorchGenerator): string[] {
  const pick = <T>(xs: T[]): T => xs[gen.randint(xs.length)]!;
  const out = new Set<string>();
  while (out.size < count) {
    const parts: string[] = [];
    const form = gen.randint(4);
    const adj = pick(c.looks);
    const noun = form === 0 ? c.word : `${adj} ${c.word}`;
    let s = pick(FRAMES).replace('{a}', article(noun)).replace('{x}', noun);
    if (form !== 3) parts.push(pick(c.does));
    if (form !== 2) parts.push(pick(c.where));
    if (parts.length > 0) s += ` ${parts.join(' ')}`;
    out.add(s);
  }
  return [...out];
}

const outDir = path.resolve(process.argv[2] ?? 'assets/sentences');
fs.mkdirSync(outDir, { recursive: true });
for (const c of CONCEPTS) {
  const seed = c.word.length * 1000 + c.word.charCodeAt(0);
  const curated = sentences(c, CURATED, new TorchGenerator(seed));
  const list = new Set(curated);
  for (const s of generateSentences(c.word, { count: 2 * BANK_SIZE, seed })) {
    if (list.size >= BANK_SIZE) break;
    list.add(s);
  }
  fs.writeFileSync(path.join(outDir, `${c.word}.txt`), `${[...list].join('\n')}\n`);
  console.log(`${c.word}: ${list.size} sentences (${curated.length} curated, ${list.size - curated.length} generated)`);
}
