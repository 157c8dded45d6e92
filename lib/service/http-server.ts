/**
 * The service's HTTP API and page (Fastify, with @fastify/multipart for uploads and @fastify/static for the page):
 *
 * - `POST /api/edits` (multipart: an `image` file and the `edit` command's options as fields) -> `202 {id, status}`,
 *   `400` with the CLI's message, `413` for an upload over the limit, `503` + `Retry-After` when the queue is full;
 * - `GET /api/edits/:id` -> the job's status; `GET /api/edits/:id/events` -> the same as server-sent events until
 *   it ends; `GET /api/edits/:id/image` and `/reconstruction` -> the PNGs (`409` until done);
 *   `DELETE /api/edits/:id` cancels;
 * - `GET /api/info` -> the model, whether it captions, the built-in concepts and the fields; `GET /` -> the page.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import multipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import { probeImageSize } from '../io/image.js';
import { PACKAGE_ROOT, SENTENCE_BANKS } from '../paths.js';
import { UsageError } from '../options/values.js';
import { EDIT_FIELDS, parseEditFields } from './edit-request.js';
import { type JobBackend, type JobOutput, type JobStatus, QueueFullError } from './jobs.js';

/** The page's files (plain HTML, CSS and JavaScript: nothing to build). */
export const WEB_ROOT = path.join(PACKAGE_ROOT, 'assets', 'web');
/** The example image the page starts with. */
export const EXAMPLE_IMAGE = path.join(PACKAGE_ROOT, 'assets', 'examples', 'example.png');

/** What the page is told about the service. */
export interface ServiceInfo {
  /** The model folder (of this server, or of the workers when known). */
  readonly model?: string;
  /** Whether an empty caption is written by a captioner (false: the caption is required). */
  readonly captioner?: boolean;
  /** Jobs run `here` (in the server) or on `workers` of a queue. */
  readonly mode: 'local' | 'queue';
}

/** Options of {@link createHttpServer}. */
export interface HttpServerOptions {
  readonly jobs: JobBackend;
  readonly info: ServiceInfo;
  /** The largest upload in bytes (default 20 MiB). */
  readonly maxUploadBytes?: number;
  /** How often a server-sent event stream looks for news, in ms (default 250). */
  readonly eventIntervalMs?: number;
}

const TERMINAL = new Set<JobStatus['status']>(['done', 'failed', 'cancelled']);

/** The built-in concepts (the sentence banks shipped in assets/sentences). */
export function builtInConcepts(): string[] {
  return fs
    .readdirSync(SENTENCE_BANKS)
    .filter((f) => f.endsWith('.txt'))
    .map((f) => f.slice(0, -4))
    .sort();
}

function fail(reply: FastifyReply, code: number, error: string): FastifyReply {
  return reply.code(code).send({ error });
}

/** Builds the service's Fastify instance (not listening yet). */
export async function createHttpServer(options: HttpServerOptions): Promise<FastifyInstance> {
  const { jobs } = options;
  const maxUpload = options.maxUploadBytes ?? 20 * 2 ** 20;
  const every = options.eventIntervalMs ?? 250;
  const app = Fastify({ logger: false });
  await app.register(multipart, { limits: { fileSize: maxUpload, files: 1, fields: EDIT_FIELDS.length + 4, fieldSize: 4096, parts: EDIT_FIELDS.length + 5 } });
  await app.register(fastifyStatic, { root: WEB_ROOT, prefix: '/', index: 'index.html' });

  app.setErrorHandler((err: Error & { statusCode?: number }, _request, reply) => {
    if (err instanceof UsageError) return fail(reply, 400, err.message);
    if (err instanceof QueueFullError) return reply.code(503).header('retry-after', String(err.retryAfterSeconds)).send({ error: err.message });
    if (err instanceof app.multipartErrors.RequestFileTooLargeError) return fail(reply, 413, `the image is over the upload limit of ${maxUpload} bytes`);
    const code = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    return fail(reply, code, err.message);
  });

  app.get('/example.png', (_request, reply) => reply.sendFile(path.basename(EXAMPLE_IMAGE), path.dirname(EXAMPLE_IMAGE)));
  app.get('/api/info', async () => ({ ...options.info, concepts: builtInConcepts(), fields: ['image', ...EDIT_FIELDS], maxUploadBytes: maxUpload }));

  app.post('/api/edits', async (request, reply) => {
    if (!request.isMultipart()) throw new UsageError("send the edit as multipart/form-data: an 'image' file and the options as fields");
    const fields: [string, string][] = [];
    let image: Buffer | undefined;
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'image') throw new UsageError(`unknown file field '${part.fieldname}': send the picture as 'image'`);
        image = await part.toBuffer();
      } else {
        fields.push([part.fieldname, String(part.value)]);
      }
    }
    if (image === undefined || image.length === 0) throw new UsageError("the image is missing: send the picture as the file field 'image'");
    if (probeImageSize(image) === undefined) throw new UsageError('the image is not a PNG, JPEG, GIF or BMP file (unrecognised header)');
    const edit = parseEditFields(fields);
    const id = await jobs.submit(image, edit);
    return reply.code(202).header('location', `/api/edits/${id}`).send({ id, status: 'queued' });
  });

  const statusOr404 = async (id: string, reply: FastifyReply): Promise<JobStatus | undefined> => {
    const status = await jobs.status(id);
    if (status === undefined) void fail(reply, 404, `no edit '${id}' (unknown, or expired)`);
    return status;
  };

  app.get<{ Params: { id: string } }>('/api/edits/:id', async (request, reply) => {
    const status = await statusOr404(request.params.id, reply);
    return status ?? reply;
  });

  app.delete<{ Params: { id: string } }>('/api/edits/:id', async (request, reply) => {
    const status = await jobs.cancel(request.params.id);
    return status ?? fail(reply, 404, `no edit '${request.params.id}' (unknown, or expired)`);
  });

  for (const which of ['image', 'reconstruction'] as const satisfies readonly JobOutput[]) {
    app.get<{ Params: { id: string } }>(`/api/edits/:id/${which}`, async (request, reply) => {
      const status = await statusOr404(request.params.id, reply);
      if (status === undefined) return reply;
      if (status.status !== 'done') return fail(reply, 409, `the edit is ${status.status}, not done`);
      const png = await jobs.output(status.id, which);
      if (png === undefined) return fail(reply, 404, `the ${which} of '${status.id}' has expired`);
      return reply.type('image/png').header('content-disposition', `inline; filename="${status.id}-${which}.png"`).send(png);
    });
  }

  app.get<{ Params: { id: string } }>('/api/edits/:id/events', async (request, reply) => {
    const first = await statusOr404(request.params.id, reply);
    if (first === undefined) return reply;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let last = '';
    let open = true;
    request.raw.on('close', () => (open = false));
    let status: JobStatus | undefined = first;
    try {
      while (open && status !== undefined) {
        const text = JSON.stringify(status);
        if (text !== last) res.write(`data: ${text}\n\n`);
        last = text;
        if (TERMINAL.has(status.status)) break;
        await new Promise((r) => setTimeout(r, every));
        status = await jobs.status(first.id);
      }
      if (open) res.end(status === undefined ? 'event: gone\ndata: {}\n\n' : 'event: end\ndata: {}\n\n');
    } catch (err) {
      // The job system failed (Redis gone): say so on the stream and end it; the client may reconnect.
      if (open) res.end(`event: error\ndata: ${JSON.stringify({ error: (err as Error).message })}\n\n`);
    }
  });

  return app;
}
