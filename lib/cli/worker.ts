/**
 * `pix2pix-zero worker --queue redis://...`: takes the edits `serve --queue` puts on the BullMQ queue, runs them on
 * a model loaded once, and stores the images in Redis. SIGTERM (or Ctrl-C) lets the running job finish first; a
 * worker killed outright loses nothing: its job goes back to the queue when its lock runs out.
 */
import { EditRunner } from '../service/edit-runner.js';
import { startQueueWorker } from '../service/queue-worker.js';
import { type Command, EXIT, UsageError, intOption } from './command.js';
import { MODEL_OPTIONS, load, refuseModelConflicts } from './model-options.js';
import { queueUrl, reachRedis, resultTtl } from './serve.js';
import { defineCommand } from './run-command.js';
import { redactUrl, untilStopSignal } from './service-process.js';

/** The default `--lock-duration`: above the longest step of a full-size edit on a CPU (renewals wait for a step). */
const DEFAULT_LOCK_MS = 300_000;

/** `pix2pix-zero worker`. */
export const workerCommand: Command = defineCommand({
  name: 'worker',
  summary: "run the edits that 'serve --queue' queues (BullMQ on Redis), on this machine's model",
  usage: `Usage: pix2pix-zero worker --queue redis://host:port [--model d] [--captioner d | --no-captioner]
       [--concurrency 1] [--lock-duration ms] [--result-ttl s] [--backend b] [--cache-dir d | --no-cache]

  --queue url         the Redis of the queue (the same URL as 'serve --queue')
  --concurrency n     jobs taken at once (default 1; the edits still run one at a time on the model)
  --lock-duration ms  how long a job's lock lasts without renewal (default 300000): a worker killed mid-job
                      gives its job back to the queue after this long; it must exceed the longest single
                      step (the lock is renewed between steps: ~90 s an edit step at 512 px on a CPU)
  --result-ttl s      how long the images stay in Redis (default 86400)
SIGTERM or Ctrl-C: stop taking jobs and finish the running one (a second signal stops at once).
See docs/service.md.`,
  options: {
    ...MODEL_OPTIONS,
    queue: { type: 'string' },
    concurrency: { type: 'string' },
    'lock-duration': { type: 'string' },
    'result-ttl': { type: 'string' },
  },
  async run({ values, positionals, io }) {
    if (positionals.length > 0) throw new UsageError(`worker takes no positional arguments (got '${positionals[0]}')`);
    const queue = queueUrl(values.queue);
    if (queue === undefined) throw new UsageError('--queue redis://host:port is required');
    refuseModelConflicts(values);
    const concurrency = intOption(values.concurrency, 'concurrency', 1, 1, 64);
    const lockDurationMs = intOption(values['lock-duration'], 'lock-duration', DEFAULT_LOCK_MS, 1000, 3_600_000);
    const resultTtlSeconds = resultTtl(values['result-ttl']);
    await reachRedis(queue);
    const runner = new EditRunner(await load(values, io, false));
    try {
      const log = (line: string): void => io.err(`pix2pix-zero worker ${process.pid}: ${line}`);
      const worker = await startQueueWorker(queue, runner, { concurrency, lockDurationMs, resultTtlSeconds, log });
      io.out(`pix2pix-zero worker ${process.pid}: ready on ${redactUrl(queue)} (concurrency ${concurrency})`);
      const signal = await untilStopSignal();
      log(`${signal}: finishing the running jobs, then stopping`);
      await worker.close();
      log('stopped');
      return EXIT.ok;
    } finally {
      runner.dispose();
    }
  },
});
