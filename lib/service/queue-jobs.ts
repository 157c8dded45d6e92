/**
 * Jobs on a BullMQ queue in Redis, for `serve --queue`: the server enqueues and answers from the queue's state;
 * `pix2pix-zero worker` processes (lib/service/queue-worker.ts) run the edits and store the images in Redis with a
 * TTL. A cancel removes a waiting job, or marks it and tells the worker running it (a Redis message), whose edit
 * stops within one step.
 */
import { randomUUID } from 'node:crypto';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { ProgressEvent } from '../editing/services.js';
import type { EditRequest } from './edit-request.js';
import { CANCELLED, type JobBackend, type JobOutput, type JobState, type JobStatus, QueueFullError } from './jobs.js';
import { CANCEL_CHANNEL, DEFAULT_RESULT_TTL_SECONDS, QUEUE_NAME, type QueuedEdit, type QueuedResult, cancelKey, resultKey, watchErrors } from './queue-names.js';

/** Options of {@link QueueJobs}. */
export interface QueueJobsOptions {
  /** Waiting jobs over which new ones are refused (default 256). */
  readonly maxQueued?: number;
  /** Seconds finished jobs (and their images) are kept (default one day). */
  readonly resultTtlSeconds?: number;
  /** Where connection errors are told (once per new message). */
  readonly log?: (line: string) => void;
}

/** A BullMQ job's progress as a progress event (null when it has none yet). */
export function progressOf(value: unknown): ProgressEvent | null {
  if (typeof value !== 'object' || value === null) return null;
  const { phase, step, total } = value as Record<string, unknown>;
  return typeof phase === 'string' && typeof step === 'number' && typeof total === 'number' ? { phase, step, total } : null;
}

const STATES: Record<string, JobState> = { waiting: 'queued', delayed: 'queued', prioritized: 'queued', 'waiting-children': 'queued', active: 'running', completed: 'done' };

/** The server side of the queue. */
export class QueueJobs implements JobBackend {
  private readonly queue: Queue<QueuedEdit, QueuedResult>;
  private readonly redis: Redis;
  readonly maxQueued: number;
  readonly ttl: number;

  constructor(url: string, options: QueueJobsOptions = {}) {
    this.queue = new Queue<QueuedEdit, QueuedResult>(QUEUE_NAME, { connection: { url } });
    this.redis = new Redis(url);
    const log = options.log ?? (() => undefined);
    watchErrors([this.queue, this.redis], (message) => log(`redis: ${message}`));
    this.maxQueued = options.maxQueued ?? 256;
    this.ttl = options.resultTtlSeconds ?? DEFAULT_RESULT_TTL_SECONDS;
  }

  async submit(image: Buffer, request: EditRequest): Promise<string> {
    const waiting = await this.queue.getWaitingCount();
    if (waiting >= this.maxQueued) throw new QueueFullError(this.maxQueued, 10);
    const id = randomUUID();
    await this.queue.add('edit', { image: image.toString('base64'), request }, { jobId: id, attempts: 1, removeOnComplete: { age: this.ttl }, removeOnFail: { age: this.ttl } });
    return id;
  }

  async status(id: string): Promise<JobStatus | undefined> {
    // The state first, then the job's fields: a job read before its state could be 'failed' or 'completed' without
    // the failedReason or return value that the same move wrote.
    const state = await this.queue.getJobState(id);
    const job = state === 'unknown' ? undefined : await Job.fromId<QueuedEdit, QueuedResult>(this.queue, id);
    const cancelled = (await this.redis.exists(cancelKey(id))) === 1;
    if (job === undefined) return cancelled ? { id, status: 'cancelled', progress: null, caption: null, error: CANCELLED } : undefined;
    let status: JobState = STATES[state] ?? 'failed';
    if (state === 'failed' && cancelled) status = 'cancelled';
    const error = status === 'failed' || status === 'cancelled' ? (job.failedReason ?? (status === 'cancelled' ? CANCELLED : 'the job failed without a reason')) : null;
    const returned = job.returnvalue as QueuedResult | null | undefined;
    return { id, status, progress: progressOf(job.progress), caption: status === 'done' ? (returned?.caption ?? null) : null, error };
  }

  async output(id: string, which: JobOutput): Promise<Buffer | undefined> {
    return (await this.redis.getBuffer(resultKey(id, which))) ?? undefined;
  }

  async cancel(id: string): Promise<JobStatus | undefined> {
    const job = await Job.fromId<QueuedEdit, QueuedResult>(this.queue, id);
    if (job === undefined) return this.status(id);
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') return this.status(id);
    await this.redis.set(cancelKey(id), '1', 'EX', this.ttl);
    if (state !== 'active') {
      try {
        await job.remove();
      } catch {
        // Taken by a worker meanwhile: it sees the mark, or the message below.
      }
    }
    await this.redis.publish(CANCEL_CHANNEL, id);
    return this.status(id);
  }

  async close(): Promise<void> {
    await this.queue.close();
    await this.redis.quit();
  }
}
