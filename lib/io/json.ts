/** Reading JSON files with errors that say which file and what was wrong. */
import * as fs from 'node:fs';

/** A parsed JSON object. */
export type JsonObject = { [key: string]: unknown };

/** Whether `v` is a JSON object (not null, not an array). */
export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The largest JSON file read (a config or an index); anything larger is refused rather than parsed. */
const MAX_JSON_BYTES = 64 * 1024 * 1024;

/**
 * Reads `file` as a JSON object. `what` names it in errors ("UNet config", "model index").
 * @throws Error naming the file when it is missing, too large, not JSON, or not an object.
 */
export function readJsonObject(file: string, what: string): JsonObject {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new Error(`${what} not found: ${file}`);
  }
  if (!stat.isFile()) throw new Error(`${what} is not a file: ${file}`);
  if (stat.size > MAX_JSON_BYTES) throw new Error(`${what} ${file} is ${stat.size} bytes, larger than any valid one`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${what} ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isJsonObject(json)) throw new Error(`${what} ${file} must be a JSON object`);
  return json;
}
