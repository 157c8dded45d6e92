/**
 * Jobs run in the server process: a bounded first-in first-out queue, one edit at a time on one loaded model.
 * A full queue refuses new edits ({@link QueueFullError}: `503` with `Retry-After`); finished jobs are kept (with
 * their images) up to a count, the oldest dropped first.
 */
import { randomUUID } from 'node:crypto';
import type { ProgressEvent } from '../editing/services.js';
import type { EditRequest } from './edit-request.js';
import type { EditRunner } from './edit-runner.js';
import { CANCELLED, type JobBackend, type JobOutput, type JobState, type JobStatus, QueueFullError } from './jobs.js';

/** Options of {@link LocalJobs}. */
export interface LocalJobsOptions {
  /** Edits that may wait (besides the running one) before new ones are refused (default 8). */
  readonly maxQueued?: number;
  /** Finished jobs kept with their images (default 64). */
  readonly keepFinished?: number;
}

interface LocalJob {
  readonly id: string;
  state: JobState;
  progress: ProgressEvent | null;
  caption: string | null;
  error: string | null;
  image?: Buffer;
  request: EditRequest;
  outputs?: Record<JobOutput, Buffer>;
  readonly controller: AbortController;
}

/** In-process jobs on one {@link EditRunner}. */
export class LocalJobs implements JobBackend {
  private readonly jobs = new Map<string, LocalJob>();
  private readonly waiting: LocalJob[] = [];
  private readonly finished: string[] = [];
  private running: LocalJob | undefined;
  /** Seconds the last edit took: the `Retry-After` a full queue answers with. */
  private lastSeconds = 10;
  private closed = false;
  readonly maxQueued: number;
  readonly keepFinished: number;

  constructor(
    private readonly runner: EditRunner,
    options: LocalJobsOptions = {},
  ) {
    this.maxQueued = options.maxQueued ?? 8;
    this.keepFinished = options.keepFinished ?? 64;
  }

  async submit(image: Buffer, request: EditRequest): Promise<string> {
    if (this.closed) throw new Error('the service is shutting down');
    if (this.waiting.length >= this.maxQueued) throw new QueueFullError(this.maxQueued, Math.max(1, Math.ceil(this.lastSeconds)));
    const job: LocalJob = { id: randomUUID(), state: 'queued', progress: null, caption: null, error: null, image, request, controller: new AbortController() };
    this.jobs.set(job.id, job);
    this.waiting.push(job);
    this.pump();
    return job.id;
  }

  async status(id: string): Promise<JobStatus | undefined> {
    const job = this.jobs.get(id);
    return job === undefined ? undefined : { id: job.id, status: job.state, progress: job.progress, caption: job.caption, error: job.error };
  }

  async output(id: string, which: JobOutput): Promise<Buffer | undefined> {
    return this.jobs.get(id)?.outputs?.[which];
  }

  async cancel(id: string): Promise<JobStatus | undefined> {
    const job = this.jobs.get(id);
    if (job === undefined) return undefined;
    if (job.state === 'queued') {
      this.waiting.splice(this.waiting.indexOf(job), 1);
      this.finish(job, 'cancelled', CANCELLED);
    } else if (job.state === 'running') {
      job.controller.abort(new Error(CANCELLED));
    }
    return this.status(id);
  }

  /** Refuses new jobs, cancels the waiting ones and waits for the running one to stop. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) this.finish(job, 'cancelled', 'the service shut down');
    const running = this.running;
    if (running !== undefined) {
      running.controller.abort(new Error('the service shut down'));
      while (this.running !== undefined) await new Promise((r) => setTimeout(r, 20));
    }
  }

  private pump(): void {
    if (this.running !== undefined || this.closed) return;
    const job = this.waiting.shift();
    if (job === undefined) return;
    this.running = job;
    job.state = 'running';
    const t0 = performance.now();
    const image = job.image!;
    job.image = undefined;
    this.runner
      .run(image, job.request, { signal: job.controller.signal, onProgress: (e) => (job.progress = e) })
      .then(
        (out) => {
          job.caption = out.caption;
          job.outputs = { image: out.image, reconstruction: out.reconstruction };
          this.finish(job, 'done', null);
        },
        (err: unknown) => {
          const aborted = job.controller.signal.aborted;
          const reason: unknown = job.controller.signal.reason;
          this.finish(job, aborted ? 'cancelled' : 'failed', aborted && reason instanceof Error ? reason.message : err instanceof Error ? err.message : String(err));
        },
      )
      .finally(() => {
        this.lastSeconds = (performance.now() - t0) / 1000;
        this.running = undefined;
        this.pump();
      });
  }

  private finish(job: LocalJob, state: JobState, error: string | null): void {
    job.state = state;
    job.error = error;
    job.image = undefined;
    this.finished.push(job.id);
    while (this.finished.length > this.keepFinished) this.jobs.delete(this.finished.shift()!);
  }
}
