/**
 * How close directions from generated sentence banks come to those of the curated banks: for each toy-world task
 * (circle -> square, square -> triangle, red -> blue), the cosine similarity and norm ratio of the direction made
 * from N generated sentences per concept (N = 10, 100, 1000; lib/editing/sentence-generator.ts, seed 0) to the one
 * made from the curated banks (assets/sentences), on the shipped toy-world model's text encoder; and how close each
 * direction comes to the exact edit of real captions: for up to 40 captions per task of the benchmark's held-out
 * scenes (docs/bench/eval.json), the cosine of the direction to E(caption with the source word replaced) - E(caption),
 * averaged (what pix2pix-zero's edit prompt approximates with caption + direction); and the direction's length where
 * the caption names the word (the first position the exact edit changes: the text encoder is causal) as a fraction
 * of the exact edit's there, averaged over the same captions (how strongly the direction edits that token), and the
 * same ratio after the word that follows it (the rest of the caption) and on the padding. `--banks dir` (repeatable)
 * adds a row per task for the banks of a folder (<concept>.txt, both concepts present), e.g. a generator's variant.
 *
 * Run: npm run build && node dist/tools/sentences/compare-banks.js [--model dir] [--banks dir ...]
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { Pix2PixZero } from '../../lib/pix2pix-zero.js';
import { Pix2PixZeroTextEmbedder } from '../../lib/pix2pix-zero-text-embedder.js';
import { generateSentences } from '../../lib/editing/sentence-generator.js';
import { builtinSentences, readSentenceFile } from '../../lib/editing/sentences.js';

const TASKS: [string, string, string][] = [['circle', 'square', 'circle2square'], ['square', 'triangle', 'square2triangle'], ['red', 'blue', 'red2blue']];
const COUNTS = [10, 100, 1000];

const modelArg = process.argv.indexOf('--model');
const bankDirs = process.argv.flatMap((arg, i) => (arg === '--banks' && i + 1 < process.argv.length ? [process.argv[i + 1]!] : []));
for (const dir of bankDirs) {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`--banks ${dir}: not a folder (expected a folder of <concept>.txt sentence banks)`);
}
const readBank = (dir: string, concept: string): string[] | undefined => {
  const file = `${dir}/${concept}.txt`;
  return fs.existsSync(file) ? readSentenceFile(file) : undefined;
};
const p2p = await Pix2PixZero.load({ model: modelArg > 0 ? process.argv[modelArg + 1] : undefined, cacheDir: false });
const embedder = await Pix2PixZeroTextEmbedder.load({ model: modelArg > 0 ? process.argv[modelArg + 1] : undefined, cacheDir: false });
try {
  const rows: string[] = [
    '| task | sentences | cosine to curated | norm / curated | cosine to the exact caption edits | norm at the word / the exact edit\'s | after the next word | on the padding |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const images = (JSON.parse(fs.readFileSync('docs/bench/eval.json', 'utf8')) as { images: Record<string, { caption: string }> }).images;
  for (const [a, b, task] of TASKS) {
    const word = new RegExp(`\\b${a}\\b`);
    const captions = Object.entries(images).filter(([id, v]) => id.startsWith(`${task}-`) && word.test(v.caption)).map(([, v]) => v.caption).slice(0, 40);
    const edited = await embedder.embed(captions.map((c) => c.replace(word, b)));
    const original = await embedder.embed(captions);
    const exact: tf.Tensor3D = tf.sub(edited, original);
    tf.dispose([edited, original]);
    const toExact = (d: tf.Tensor): number => tf.tidy(() => {
      const dot = tf.sum(tf.mul(exact, tf.reshape(d, [1, exact.shape[1], exact.shape[2]])), [1, 2]);
      return tf.mean(tf.div(dot, tf.mul(tf.norm(exact, 'euclidean', [1, 2]), tf.norm(d)))).dataSync()[0]!;
    });
    // Per caption: the word's position (the first whose exact edit is not zero) and the exact edit's norm there.
    const exactNorms = tf.tidy(() => tf.norm(exact, 'euclidean', 2).arraySync() as number[][]);
    const wordAt = exactNorms.map((n) => n.findIndex((v) => v > 1e-5));
    // The direction's length over `positions(k)` of caption k as a fraction of the exact edit's, averaged over
    // positions and captions: at the word; after the word that follows it (the 10 positions from word + 2: the
    // rest of the caption); on the padding (positions 40-76, past the end of every caption).
    const lengthRatio = (d: tf.Tensor, positions: (k: number) => number[]): number => {
      const norms = tf.tidy(() => tf.norm(tf.reshape(d, [exact.shape[1], exact.shape[2]]), 'euclidean', 1).arraySync() as number[]);
      let sum = 0;
      let n = 0;
      for (let k = 0; k < wordAt.length; k++) {
        for (const p of positions(k)) {
          sum += norms[p]! / exactNorms[k]![p]!;
          n++;
        }
      }
      return sum / n;
    };
    const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
    const lengths = (d: tf.Tensor): string => [
      lengthRatio(d, (k) => [wordAt[k]!]),
      lengthRatio(d, (k) => range(wordAt[k]! + 2, wordAt[k]! + 12)),
      lengthRatio(d, () => range(40, exact.shape[1])),
    ].map((v) => v.toFixed(2)).join(' | ');
    const curated = await p2p.direction({ name: a, sentences: builtinSentences(a) }, { name: b, sentences: builtinSentences(b) });
    const cn = tf.tidy(() => tf.norm(curated.tensor).dataSync()[0]!);
    rows.push(`| ${a} -> ${b} | curated (${builtinSentences(a).length} / ${builtinSentences(b).length}) | 1 | 1 | ${toExact(curated.tensor).toFixed(3)} | ${lengths(curated.tensor)} |`);
    const banks: [string, string[], string[]][] = COUNTS.map((n) => [`generated ${n}`, generateSentences(a, { count: n }), generateSentences(b, { count: n })]);
    for (const dir of bankDirs) {
      const [sa, sb] = [readBank(dir, a), readBank(dir, b)];
      if (sa !== undefined && sb !== undefined) banks.push([`${dir} (${sa.length} / ${sb.length})`, sa, sb]);
    }
    for (const [label, sa, sb] of banks) {
      const d = await p2p.direction({ name: a, sentences: sa }, { name: b, sentences: sb });
      const [cos, ratio] = tf.tidy(() => {
        const x = tf.reshape(d.tensor, [-1]);
        const y = tf.reshape(curated.tensor, [-1]);
        const dn = tf.norm(x).dataSync()[0]!;
        return [tf.sum(tf.mul(x, y)).dataSync()[0]! / (dn * cn), dn / cn];
      });
      rows.push(`| ${a} -> ${b} | ${label} | ${cos.toFixed(3)} | ${ratio.toFixed(2)} | ${toExact(d.tensor).toFixed(3)} | ${lengths(d.tensor)} |`);
      d.dispose();
    }
    curated.dispose();
    exact.dispose();
  }
  console.log(rows.join('\n'));
} finally {
  p2p.dispose();
}
