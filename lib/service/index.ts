/**
 * The service's building blocks, for a Node service of your own (`pix2pix-zero serve` and `worker` are made of
 * them): import from `pix2pix-zero/dist/lib/service/index.js`. Kept out of the main entry point so that using the
 * library does not load Fastify or BullMQ.
 */
export { EDIT_FIELDS, type EditJobOptions, type EditRequest, parseEditFields } from './edit-request.js';
export { EditRunner, type EditOutcome, type EditRunnerOptions } from './edit-runner.js';
export { createHttpServer, type HttpServerOptions, type ServiceInfo } from './http-server.js';
export { CANCELLED, type JobBackend, type JobOutput, type JobState, type JobStatus, QueueFullError } from './jobs.js';
export { LocalJobs, type LocalJobsOptions } from './local-jobs.js';
export { QueueJobs, type QueueJobsOptions } from './queue-jobs.js';
export { QUEUE_NAME, resultKey } from './queue-names.js';
export { startQueueWorker, type QueueWorker, type QueueWorkerOptions } from './queue-worker.js';
