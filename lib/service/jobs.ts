/**
 * What the HTTP layer needs of a job system: submit an edit, read its status, its images, cancel it. Two
 * implementations: {@link LocalJobs} (in the server process, one edit at a time) and {@link QueueJobs} (BullMQ on
 * Redis, run by `pix2pix-zero worker` processes).
 */
import type { ProgressEvent } from '../editing/services.js';
import type { EditRequest } from './edit-request.js';

/** Where a job is. */
export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/** A job's status, as `GET /api/edits/:id` answers it. */
export interface JobStatus {
  readonly id: string;
  readonly status: JobState;
  /** The last progress event (null before the first). */
  readonly progress: ProgressEvent | null;
  /** The caption used (null until done). */
  readonly caption: string | null;
  /** Why it failed (null unless failed or cancelled). */
  readonly error: string | null;
}

/** The images of a finished edit. */
export type JobOutput = 'image' | 'reconstruction';

/** The job queue is full: try again after `retryAfterSeconds`. */
export class QueueFullError extends Error {
  constructor(
    readonly capacity: number,
    readonly retryAfterSeconds: number,
  ) {
    super(`the queue is full (${capacity} edits waiting): try again in ${retryAfterSeconds} s`);
    this.name = 'QueueFullError';
  }
}

/** A job system for the service. */
export interface JobBackend {
  /** Queues an edit of `image` (encoded bytes); resolves to its id. Rejects with {@link QueueFullError} when full. */
  submit(image: Buffer, request: EditRequest): Promise<string>;
  /** The status of a job; undefined when there is no such job (or it has expired). */
  status(id: string): Promise<JobStatus | undefined>;
  /** A finished job's PNG; undefined when the job has none (not done, or expired). */
  output(id: string, which: JobOutput): Promise<Buffer | undefined>;
  /** Cancels a job (a running edit stops within one step); resolves to its status, undefined when unknown. */
  cancel(id: string): Promise<JobStatus | undefined>;
  /** Stops taking jobs and frees what it holds. */
  close(): Promise<void>;
}

/** The error a cancelled edit stops with. */
export const CANCELLED = 'cancelled';
