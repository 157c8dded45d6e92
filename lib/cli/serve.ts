/**
 * `pix2pix-zero serve`: the HTTP service and its page. Alone it runs edits in its own process, one at a time on a
 * model loaded once; with `--queue redis://...` it only queues them for `pix2pix-zero worker` processes.
 */
import { TYPES } from '../editing/services.js';
import { createHttpServer } from '../service/http-server.js';
import { EditRunner } from '../service/edit-runner.js';
import type { JobBackend } from '../service/jobs.js';
import { LocalJobs } from '../service/local-jobs.js';
import { QueueJobs } from '../service/queue-jobs.js';
import { DEFAULT_RESULT_TTL_SECONDS, checkRedisUrl, probeRedis } from '../service/queue-names.js';
import { type Command, EXIT, UsageError, intOption, numberOption } from './command.js';
import { MODEL_OPTIONS, load, refuseModelConflicts } from './model-options.js';
import { defineCommand } from './run-command.js';
import { redactUrl, untilStopSignal } from './service-process.js';

/** The seconds a command waits for a connection to Redis at start. */
export const REDIS_CONNECT_SECONDS = 15;

/** Fails at once, with the reason, when nothing answers at the `--queue` URL. */
export async function reachRedis(url: string): Promise<void> {
  await probeRedis(url, REDIS_CONNECT_SECONDS * 1000).catch((err: unknown) => {
    throw new Error(`--queue ${redactUrl(url)}: ${(err as Error).message}`);
  });
}

/** `--queue` checked as a Redis URL (a usage error when malformed). */
export function queueUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return checkRedisUrl(value);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** `--result-ttl`: seconds results are kept in Redis. */
export function resultTtl(value: string | undefined): number {
  return intOption(value, 'result-ttl', DEFAULT_RESULT_TTL_SECONDS, 1, 30 * 24 * 3600);
}

/** `pix2pix-zero serve`. */
export const serveCommand: Command = defineCommand({
  name: 'serve',
  summary: 'serve edits over HTTP with a web page (jobs run here, or on workers with --queue)',
  usage: `Usage: pix2pix-zero serve [--host 127.0.0.1] [--port 7860] [--model d] [--captioner d | --no-captioner]
       [--queue redis://host:port] [--max-queued n] [--max-upload MiB] [--result-ttl s]

  --host, --port   where to listen (default 127.0.0.1:7860; --port 0 picks a free port)
  --queue url      queue the edits on BullMQ in this Redis for 'pix2pix-zero worker' processes (the model
                   options are then the workers'); without it, edits run here, one at a time
  --max-queued n   edits that may wait before new ones get 503 (default 8 here, 256 on a queue)
  --max-upload m   the largest image upload in MiB (default 20)
  --result-ttl s   with --queue: how long finished jobs and their images stay in Redis (default 86400)
Model options (without --queue): --model --captioner --no-captioner --cache-dir --no-cache --backend --debug
The API and the page: docs/service.md.`,
  options: {
    ...MODEL_OPTIONS,
    host: { type: 'string' },
    port: { type: 'string' },
    queue: { type: 'string' },
    'max-queued': { type: 'string' },
    'max-upload': { type: 'string' },
    'result-ttl': { type: 'string' },
  },
  async run({ values, positionals, io }) {
    if (positionals.length > 0) throw new UsageError(`serve takes no positional arguments (got '${positionals[0]}')`);
    refuseModelConflicts(values);
    const host = values.host ?? '127.0.0.1';
    const port = intOption(values.port, 'port', 7860, 0, 65535);
    const queue = queueUrl(values.queue);
    const maxQueued = intOption(values['max-queued'], 'max-queued', queue === undefined ? 8 : 256, 1, 1_000_000);
    const maxUploadBytes = Math.round(numberOption(values['max-upload'], 'max-upload', 20, 0.001, 256) * 2 ** 20);
    if (queue === undefined && values['result-ttl'] !== undefined) throw new UsageError('--result-ttl is an option of --queue (results of local edits stay in memory)');
    const resultTtlSeconds = resultTtl(values['result-ttl']);
    if (queue !== undefined) {
      const workerOption = (['model', 'captioner', 'no-captioner', 'cache-dir', 'no-cache', 'backend'] as const).find((k) => values[k] !== undefined && values[k] !== false);
      if (workerOption !== undefined) throw new UsageError(`--${workerOption} is an option of the workers with --queue: give it to 'pix2pix-zero worker'`);
    }
    let jobs: JobBackend;
    let runner: EditRunner | undefined;
    let info: { model?: string; captioner?: boolean; mode: 'local' | 'queue' };
    if (queue !== undefined) {
      await reachRedis(queue);
      jobs = new QueueJobs(queue, { maxQueued, resultTtlSeconds, log: (line) => io.err(`pix2pix-zero serve: ${line}`) });
      info = { mode: 'queue' };
    } else {
      const p2p = await load(values, io, false);
      runner = new EditRunner(p2p);
      jobs = new LocalJobs(runner, { maxQueued });
      info = { mode: 'local', model: p2p.folder.dir, captioner: p2p.container.isBound(TYPES.Captioner) };
    }
    try {
      const app = await createHttpServer({ jobs, info, maxUploadBytes });
      const address = await app.listen({ host, port });
      io.out(`pix2pix-zero serve: listening on ${address} (${queue === undefined ? 'edits run here' : `edits queued on ${redactUrl(queue)}`})`);
      const signal = await untilStopSignal();
      io.err(`pix2pix-zero serve: ${signal}: stopping`);
      await app.close();
      return EXIT.ok;
    } finally {
      await jobs.close();
      runner?.dispose();
    }
  },
});
