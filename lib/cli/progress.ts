/**
 * Progress bars on stderr: one line per phase (caption, direction, encode, inversion, edit — the reference and
 * edit passes in lock-step —, decode) with steps, rate and ETA, redrawn in place on a terminal and closed with the
 * phase's duration. Off when stderr is not a terminal or with `--quiet`; the timings are recorded either way, and
 * the `--json` output carries them.
 */
import type { ProgressEvent } from '../progress.js';
import type { CliIO } from './command.js';

const WIDTH = 24;
/** Redraws at most this often (ms); the last step of a phase is always drawn. */
const REDRAW_MS = 100;

/** Seconds as `0.4s`, `12s` or `3m05s`; `--` when unknown. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '--';
  if (s < 59.5) return `${s.toFixed(s < 9.95 ? 1 : 0)}s`;
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m${sec}s` : `${m}m${sec}s`;
}

/** A rate in steps per second, as `12.3 it/s`, or `4.2 s/it` when a step takes more than a second. */
export function formatRate(stepsPerSecond: number): string {
  if (!Number.isFinite(stepsPerSecond) || stepsPerSecond <= 0) return '-- it/s';
  if (stepsPerSecond < 1) return `${(1 / stepsPerSecond).toFixed(1)} s/it`;
  return `${stepsPerSecond.toFixed(stepsPerSecond < 10 ? 2 : 1)} it/s`;
}

/**
 * Steps over which the rate (and so the ETA) is taken: the most recent ones, so that slower first steps (a graph
 * being traced and compiled, caches warming) stop weighing on the ETA once the steps run at their steady pace.
 */
const RATE_WINDOW = 8;

/** Draws per-phase progress and records each phase's duration. */
export class ProgressReporter {
  private phase: string | undefined;
  private phaseStart = 0;
  /** When the current phase reached its last step (a phase ends there, not at the next phase's first event). */
  private phaseEnd: number | undefined;
  /** When the last phase ended (by {@link finish} or at its last step). */
  private lastEnd: number | undefined;
  private lastDraw = Number.NEGATIVE_INFINITY;
  /** Whether a bar is drawn without its closing newline. */
  private lineOpen = false;
  private readonly seconds: Record<string, number> = {};
  /**
   * The current phase's last few (time, step) points, the first its start: the step count its clock started from
   * (0, or the first step seen when its start is unknown). The rate is taken over them.
   */
  private marks: { t: number; step: number }[] = [];

  constructor(
    private readonly io: CliIO,
    private readonly enabled: boolean,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Seconds spent in each phase (to the millisecond), in the order they ran. */
  get timings(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.seconds).map(([k, s]) => [k, roundMs(s)]));
  }

  /** Starts (or switches to) a phase now. */
  start(phase: string): void {
    const t = this.now();
    this.finish(t);
    this.begin(phase, t, 0);
  }

  /** The `onProgress` callback to pass to a long call. */
  readonly onProgress = (e: ProgressEvent): void => {
    const t = this.now();
    if (this.phase !== e.phase) {
      // A phase's first event usually reports its first step already done: the phase began when the previous one
      // reached its last step. Without such an end, start the clock at this event and count from its step.
      const previousEnd = this.phase !== undefined ? this.phaseEnd : this.lastEnd;
      this.finish(t);
      if (e.step > 0 && previousEnd !== undefined) this.begin(e.phase, previousEnd, 0);
      else this.begin(e.phase, t, e.step);
    }
    this.marks.push({ t, step: e.step });
    if (this.marks.length > RATE_WINDOW + 1) this.marks.shift();
    const done = e.step >= e.total;
    if (done && this.phaseEnd === undefined) this.phaseEnd = t;
    if (!this.enabled || (t - this.lastDraw < REDRAW_MS && !done)) return;
    this.lastDraw = t;
    this.io.errRaw(`\r${this.line(e, t)}\u001b[K${done ? '\n' : ''}`);
    this.lineOpen = !done;
  };

  /** Ends the current phase, recording its time (up to its last step, if it reported one). */
  finish(at: number = this.now()): void {
    if (this.phase === undefined) return;
    const end = this.phaseEnd ?? at;
    this.seconds[this.phase] = (this.seconds[this.phase] ?? 0) + Math.max(0, end - this.phaseStart) / 1000;
    this.lastEnd = end;
    this.phase = undefined;
    this.phaseEnd = undefined;
  }

  /**
   * Ends the current phase and the bar's line if it is still open, so that what is printed next (an error) starts
   * on a line of its own. Call it when a command stops, whether it succeeded or not.
   */
  close(): void {
    this.finish();
    if (this.lineOpen) this.io.errRaw('\n');
    this.lineOpen = false;
  }

  private begin(phase: string, at: number, baseStep: number): void {
    this.phase = phase;
    this.phaseStart = at;
    this.phaseEnd = undefined;
    this.marks = [{ t: at, step: baseStep }];
  }

  private line(e: ProgressEvent, t: number): string {
    const elapsed = (t - this.phaseStart) / 1000;
    const first = this.marks[0]!;
    const counted = e.step - first.step;
    const span = (t - first.t) / 1000;
    const rate = counted > 0 && span > 0 ? counted / span : Number.NaN;
    const fraction = e.total > 0 ? Math.min(1, Math.max(0, e.step / e.total)) : 1;
    const filled = Math.round(WIDTH * fraction);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}`;
    const time = e.step >= e.total ? `in ${formatSeconds(elapsed)}` : `ETA ${formatSeconds((e.total - e.step) / rate)}`;
    return `${e.phase.padEnd(10)} [${bar}] ${e.step}/${e.total} ${formatRate(rate)} ${time}`;
  }
}

/** Seconds rounded to the millisecond (what `--json` reports). */
export function roundMs(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
