/**
 * What `serve --queue` and `pix2pix-zero worker` agree on in Redis: the BullMQ queue, where results are kept (each
 * PNG a key with a TTL, so every server of a fleet can read every result), the cancel channel, and what a job
 * carries.
 */
import { Redis } from 'ioredis';
import type { EditRequest } from './edit-request.js';

/** The BullMQ queue's name. */
export const QUEUE_NAME = 'pix2pix-zero-edits';

/** How long results (and finished jobs) are kept by default: one day. */
export const DEFAULT_RESULT_TTL_SECONDS = 24 * 3600;

/** What a queued job carries: the image bytes (base64) and the validated request. */
export interface QueuedEdit {
  readonly image: string;
  readonly request: EditRequest;
}

/** What a finished job returns (its images are keys of their own: {@link resultKey}). */
export interface QueuedResult {
  readonly caption: string;
}

/** The Redis key of a finished job's PNG. */
export function resultKey(id: string, which: 'image' | 'reconstruction'): string {
  return `pix2pix-zero:${QUEUE_NAME}:result:${id}:${which}`;
}

/** The Redis key that marks a job as cancelled (read by the worker that takes or runs it). */
export function cancelKey(id: string): string {
  return `pix2pix-zero:${QUEUE_NAME}:cancelled:${id}`;
}

/** The channel a server publishes a cancelled job's id on, for the worker running it. */
export const CANCEL_CHANNEL = `pix2pix-zero:${QUEUE_NAME}:cancel`;

/** Checks a `--queue` URL: `redis://` or `rediss://`, with a host. */
export function checkRedisUrl(url: string, option = '--queue'): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${option} must be a redis://host:port URL, got '${url}'`);
  }
  if ((parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || parsed.hostname === '') throw new Error(`${option} must be a redis://host:port URL, got '${url}'`);
  return url;
}

/** What emits connection errors: ioredis clients, BullMQ queues and workers. */
export interface ErrorEmitter {
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * Listens to the connection errors of Redis clients (unlistened, ioredis prints each retry as an "unhandled error
 * event"); `report` is called when the message changes, not at every retry of the same failure.
 */
export function watchErrors(emitters: readonly ErrorEmitter[], report: (message: string) => void): void {
  let last = '';
  for (const e of emitters) {
    e.on('error', (err) => {
      if (err.message === last) return;
      last = err.message;
      report(err.message);
    });
  }
}

/**
 * Checks once that Redis answers at `url` (one connection, no retries, `timeoutMs` to connect), so that a wrong URL
 * fails at start with the reason instead of clients retrying forever.
 */
export async function probeRedis(url: string, timeoutMs: number): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs, enableOfflineQueue: false });
  let last: string | undefined;
  client.on('error', (err: Error) => (last = err.message));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw new Error(`cannot reach Redis (${last ?? (err as Error).message})`);
  } finally {
    client.disconnect();
  }
}
