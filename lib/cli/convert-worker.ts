/** The worker thread of `pix2pix-zero convert`: runs one conversion and reports progress and the result. */
import { parentPort, workerData } from 'node:worker_threads';
import { convertModelFolder } from '../models/convert-folder.js';
import type { ConvertJob, ConvertWorkerMessage } from './convert.js';

const post = (m: ConvertWorkerMessage): void => parentPort?.postMessage(m);
const job = workerData as ConvertJob;
try {
  const report = convertModelFolder(job.source, job.out, { ...job.options, onProgress: (event) => post({ kind: 'progress', event }), onNotice: (message) => post({ kind: 'notice', message }) });
  post({ kind: 'done', report });
} catch (err) {
  post({ kind: 'error', message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined });
}
