/** The text form of a `model.json` the writer writes. */
import type { TfjsModelJson } from './manifest.js';

/** `model.json` as text: the config indented, one manifest entry a line (readable, and small for big models). */
export function formatModelJson(model: TfjsModelJson): string {
  const head = Object.entries(model)
    .filter(([k, v]) => k !== 'config' && k !== 'weightsManifest' && v !== undefined)
    .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},`);
  const config = JSON.stringify(model.config, null, 2).split('\n').join('\n  ');
  const groups = model.weightsManifest.map(
    (g) => `    {\n      "paths": ${JSON.stringify(g.paths)},\n      "weights": [\n${g.weights.map((w) => `        ${JSON.stringify(w)}`).join(',\n')}\n      ]\n    }`,
  );
  return `{\n${head.join('\n')}\n  "config": ${config},\n  "weightsManifest": [\n${groups.join(',\n')}\n  ]\n}\n`;
}
