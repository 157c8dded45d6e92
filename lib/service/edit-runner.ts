/**
 * Runs edits for the service on one loaded model: the model is loaded once, directions are kept by concept pair,
 * and inversions by (image bytes, inversion settings), so a second edit of the same image with the same settings
 * skips the inversion. Runs one edit at a time (tfjs computes one thing at a time in a process anyway), so a cached
 * inversion is never evicted while an edit uses it.
 */
import { createHash } from 'node:crypto';
import { decodeImage, encodePng } from '../io/image.js';
import { type Direction, type Inversion, Pix2PixZero, type Pix2PixZeroLoadOptions } from '../pix2pix-zero.js';
import type { LongCallOptions } from '../editing/services.js';
import type { EditJobOptions, EditRequest } from './edit-request.js';
import { LruCache } from './lru-cache.js';

/** What an edit gives back: PNG bytes and the caption used. */
export interface EditOutcome {
  readonly caption: string;
  readonly image: Buffer;
  readonly reconstruction: Buffer;
  /** Whether the inversion came from the cache (the same image and inversion settings edited before). */
  readonly reusedInversion: boolean;
}

/** Options of {@link EditRunner}: how many inversions and directions to keep. */
export interface EditRunnerOptions {
  /** Inversions kept (default 4; each is the T + 1 latents of its trajectory and the prepared image). */
  readonly inversions?: number;
  /** Directions kept (default 16; each is [1, 77, d]). */
  readonly directions?: number;
}

/** The options an inversion depends on (the others only change the editing pass). */
const INVERSION_KEYS = ['caption', 'steps', 'numRegSteps', 'numAutoCorrRolls', 'lambdaAc', 'lambdaKl', 'minShift', 'vaeEncode', 'seed', 'size', 'fit'] as const;

/**
 * The cache key of an inversion: the image's hash and its inversion options as given (an option left to its
 * default and the same value given only miss a reuse; the parser fills in most defaults anyway).
 */
function inversionKey(imageHash: string, o: EditJobOptions): string {
  return `${imageHash} ${JSON.stringify(INVERSION_KEYS.map((k) => o[k] ?? null))}`;
}

/** Runs edits on one model, reusing directions and inversions. */
export class EditRunner {
  private readonly inversions: LruCache<Inversion>;
  private readonly directions: LruCache<Direction>;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly p2p: Pix2PixZero,
    options: EditRunnerOptions = {},
  ) {
    this.inversions = new LruCache<Inversion>(options.inversions ?? 4, (inv) => inv.dispose());
    this.directions = new LruCache<Direction>(options.directions ?? 16, (d) => d.dispose());
  }

  /** Loads the model (once) for a runner. */
  static async load(options: Pix2PixZeroLoadOptions, runner: EditRunnerOptions = {}): Promise<EditRunner> {
    return new EditRunner(await Pix2PixZero.load(options), runner);
  }

  /** Edits `image` (encoded bytes) as `request` asks; one edit at a time, in the order asked. */
  run(image: Uint8Array, request: EditRequest, call: LongCallOptions = {}): Promise<EditOutcome> {
    const next = this.queue.then(() => this.runNow(image, request, call));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(image: Uint8Array, request: EditRequest, call: LongCallOptions): Promise<EditOutcome> {
    const { signal, onProgress } = call;
    signal?.throwIfAborted();
    const dirKey = `${request.source}\u0000${request.target}`;
    let direction = this.directions.get(dirKey);
    if (direction === undefined) {
      direction = await this.p2p.direction(request.source, request.target, { signal, onProgress });
      this.directions.set(dirKey, direction);
    }
    const invKey = inversionKey(createHash('sha256').update(image).digest('hex'), request.options);
    let inversion = this.inversions.get(invKey);
    const reusedInversion = inversion !== undefined;
    if (inversion === undefined) {
      const rgb = await decodeImage(image, 'image');
      inversion = await this.p2p.invert(rgb, { ...request.options, signal, onProgress });
      this.inversions.set(invKey, inversion);
    }
    const result = await this.p2p.edit(inversion, direction, { ...request.options, reconstruction: true, signal, onProgress });
    result.latents.dispose();
    return {
      caption: result.caption,
      image: await encodePng(result.image),
      reconstruction: await encodePng(result.reconstruction!),
      reusedInversion,
    };
  }

  /** Frees the cached inversions and directions and the model. */
  dispose(): void {
    this.inversions.clear();
    this.directions.clear();
    this.p2p.dispose();
  }
}
