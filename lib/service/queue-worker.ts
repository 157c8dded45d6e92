/**
 * The worker side of the queue (`pix2pix-zero worker`): a BullMQ worker that runs each job's edit on one loaded
 * model, reports progress through the job, and stores the PNGs in Redis with a TTL. A worker killed mid-job holds
 * the job's lock no longer: after `lockDuration` another worker's stalled-job check puts it back in the queue and it
 * runs again there. `close()` (on SIGTERM) lets the running jobs finish first.
 */
import { UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { ProgressEvent } from '../editing/services.js';
import type { EditRunner } from './edit-runner.js';
import { CANCELLED } from './jobs.js';
import { CANCEL_CHANNEL, DEFAULT_RESULT_TTL_SECONDS, QUEUE_NAME, type QueuedEdit, type QueuedResult, cancelKey, resultKey, watchErrors } from './queue-names.js';

/** Options of {@link startQueueWorker}. */
export interface QueueWorkerOptions {
  /** Jobs taken at once (default 1; edits still run one at a time on the model, see EditRunner). */
  readonly concurrency?: number;
  /**
   * Milliseconds a job's lock lasts without renewal: how soon a killed worker's job is taken again (default
   * 30 000, BullMQ's). Renewals are timers, so they wait for a step that blocks: keep it above the longest step.
   */
  readonly lockDurationMs?: number;
  /** Seconds the images are kept (default one day). */
  readonly resultTtlSeconds?: number;
  /** Where the worker says what it does (one line per event). */
  readonly log?: (line: string) => void;
}

/** A running worker. */
export interface QueueWorker {
  readonly worker: Worker<QueuedEdit, QueuedResult>;
  /** Stops taking jobs, waits for the running ones, and disconnects. */
  close(): Promise<void>;
}

/** Sends at most ~10 progress updates a second to Redis, and always the last step of a phase. */
function throttled(send: (e: ProgressEvent) => void): (e: ProgressEvent) => void {
  let last = 0;
  let phase = '';
  return (e) => {
    const now = Date.now();
    if (e.phase !== phase || e.step >= e.total || now - last >= 100) {
      last = now;
      phase = e.phase;
      send(e);
    }
  };
}

/** Starts a worker on the queue at `url`, running edits on `runner` (check the URL first: probeRedis). */
export async function startQueueWorker(url: string, runner: EditRunner, options: QueueWorkerOptions = {}): Promise<QueueWorker> {
  const log = options.log ?? (() => undefined);
  const ttl = options.resultTtlSeconds ?? DEFAULT_RESULT_TTL_SECONDS;
  const lockDuration = options.lockDurationMs ?? 30_000;
  const redis = new Redis(url);
  const subscriber = new Redis(url);
  const worker = new Worker<QueuedEdit, QueuedResult>(
    QUEUE_NAME,
    async (job, _token, signal) => {
      const id = job.id!;
      if ((await redis.exists(cancelKey(id))) === 1) throw new UnrecoverableError(CANCELLED);
      log(`job ${id} started (attempt ${job.attemptsStarted})`);
      const onProgress = throttled((e) => void job.updateProgress({ ...e }).catch(() => undefined));
      try {
        const out = await runner.run(Buffer.from(job.data.image, 'base64'), job.data.request, { signal, onProgress });
        await redis.set(resultKey(id, 'image'), out.image, 'EX', ttl);
        await redis.set(resultKey(id, 'reconstruction'), out.reconstruction, 'EX', ttl);
        log(`job ${id} done${out.reusedInversion ? ' (inversion reused)' : ''}`);
        return { caption: out.caption };
      } catch (err) {
        const message = signal?.aborted === true ? CANCELLED : err instanceof Error ? err.message : String(err);
        log(`job ${id} ${message === CANCELLED ? 'cancelled' : `failed: ${message}`}`);
        throw new UnrecoverableError(message);
      }
    },
    { connection: { url, maxRetriesPerRequest: null }, concurrency: options.concurrency ?? 1, lockDuration, stalledInterval: lockDuration, maxStalledCount: 1 },
  );
  watchErrors([worker, redis, subscriber], (message) => log(`redis: ${message}`));
  subscriber.on('message', (_channel: string, id: string) => {
    if (worker.cancelJob(id, CANCELLED)) log(`job ${id} cancel asked`);
  });
  await worker.waitUntilReady();
  await subscriber.subscribe(CANCEL_CHANNEL);
  return {
    worker,
    async close() {
      await worker.close();
      await subscriber.quit();
      await redis.quit();
    },
  };
}
