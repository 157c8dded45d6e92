/**
 * Model fingerprints: a short hash that changes when a model component changes, used to key caches and to check
 * that a saved artefact (an inversion, cached embeddings) belongs to the model it is used with. It hashes the
 * component's config and its weight files' headers and sizes (not all the bytes, so it is instant even for a
 * multi-gigabyte UNet).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ComponentFolder } from './model-folder.js';

function headerBytes(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const size = fs.fstatSync(fd).size;
    const header = Buffer.alloc(Math.min(Math.max(n, 0), size - 8, 100 * 1024 * 1024));
    fs.readSync(fd, header, 0, header.length, 8);
    return Buffer.concat([header, Buffer.from(String(size))]);
  } finally {
    fs.closeSync(fd);
  }
}

/** A 16-hex-digit fingerprint of a component folder (config + weight headers and sizes). */
export function componentFingerprint(component: ComponentFolder): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(component.config));
  const files = component.weightsPath.endsWith('.index.json')
    ? [component.weightsPath, ...new Set(Object.values((JSON.parse(fs.readFileSync(component.weightsPath, 'utf8')) as { weight_map: Record<string, string> }).weight_map))].map((f, i) =>
        i === 0 ? f : path.join(path.dirname(component.weightsPath), f),
      )
    : [component.weightsPath];
  for (const f of files) h.update(f.endsWith('.json') ? fs.readFileSync(f) : headerBytes(f));
  return h.digest('hex').slice(0, 16);
}
