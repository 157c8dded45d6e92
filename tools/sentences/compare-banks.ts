/**
 * How close directions from generated sentence banks come to those of the curated banks: for each toy-world task
 * (circle -> square, square -> triangle, red -> blue), the cosine similarity and norm ratio of the direction made
 * from N generated sentences per concept (N = 10, 100, 1000; lib/editing/sentence-generator.ts, seed 0) to the one
 * made from the curated banks (assets/sentences), on the shipped toy-world model's text encoder.
 *
 * Run: npm run build && node dist/tools/sentences/compare-banks.js [--model dir]
 */
import * as tf from '@tensorflow/tfjs-core';
import { Pix2PixZero } from '../../lib/pix2pix-zero.js';
import { generateSentences } from '../../lib/editing/sentence-generator.js';
import { builtinSentences } from '../../lib/editing/sentences.js';

const TASKS: [string, string][] = [['circle', 'square'], ['square', 'triangle'], ['red', 'blue']];
const COUNTS = [10, 100, 1000];

const modelArg = process.argv.indexOf('--model');
const p2p = await Pix2PixZero.load({ model: modelArg > 0 ? process.argv[modelArg + 1] : undefined, cacheDir: false });
try {
  const rows: string[] = ['| task | sentences | cosine to curated | norm / curated |', '|---|---|---|---|'];
  for (const [a, b] of TASKS) {
    const curated = await p2p.direction({ name: a, sentences: builtinSentences(a) }, { name: b, sentences: builtinSentences(b) });
    const cn = tf.tidy(() => tf.norm(curated.tensor).dataSync()[0]!);
    rows.push(`| ${a} -> ${b} | curated (${builtinSentences(a).length} / ${builtinSentences(b).length}) | 1 | 1 |`);
    for (const n of COUNTS) {
      const d = await p2p.direction({ name: a, sentences: generateSentences(a, { count: n }) }, { name: b, sentences: generateSentences(b, { count: n }) });
      const [cos, ratio] = tf.tidy(() => {
        const x = tf.reshape(d.tensor, [-1]);
        const y = tf.reshape(curated.tensor, [-1]);
        const dn = tf.norm(x).dataSync()[0]!;
        return [tf.sum(tf.mul(x, y)).dataSync()[0]! / (dn * cn), dn / cn];
      });
      rows.push(`| ${a} -> ${b} | generated ${n} | ${cos.toFixed(3)} | ${ratio.toFixed(2)} |`);
      d.dispose();
    }
    curated.dispose();
  }
  console.log(rows.join('\n'));
} finally {
  p2p.dispose();
}
