/**
 * Progress bars on stderr: one line per phase (caption, direction, inversion, edit, decode) with steps, rate and
 * ETA, redrawn in place on a terminal. Off when stderr is not a terminal or with `--quiet`; the `--json` output
 * carries the timings instead.
 */
import type { ProgressEvent } from '../editing/services.js';
import type { CliIO } from './command.js';

const WIDTH = 24;

function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return '--';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}

/** Draws per-phase progress and records each phase's duration. */
export class ProgressReporter {
  private phase: string | undefined;
  private phaseStart = 0;
  private lastDraw = 0;
  /** Seconds spent in each phase, in the order they ran. */
  readonly timings: Record<string, number> = {};

  constructor(
    private readonly io: CliIO,
    private readonly enabled: boolean,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Starts (or switches to) a phase. */
  start(phase: string): void {
    this.finish();
    this.phase = phase;
    this.phaseStart = this.now();
  }

  /** The `onProgress` callback to pass to a long call. */
  readonly onProgress = (e: ProgressEvent): void => {
    if (this.phase !== e.phase) this.start(e.phase);
    const t = this.now();
    if (!this.enabled || (t - this.lastDraw < 100 && e.step < e.total)) return;
    this.lastDraw = t;
    const elapsed = (t - this.phaseStart) / 1000;
    const rate = e.step / Math.max(elapsed, 1e-9);
    const eta = (e.total - e.step) / rate;
    const filled = Math.round((WIDTH * e.step) / Math.max(e.total, 1));
    const bar = `${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}`;
    const line = `${e.phase.padEnd(10)} [${bar}] ${e.step}/${e.total} ${rate.toFixed(rate < 10 ? 2 : 1)} it/s ETA ${fmtSeconds(eta)}`;
    this.io.errRaw(`\r${line}\u001b[K${e.step === e.total ? '\n' : ''}`);
  };

  /** Ends the current phase, recording its time. */
  finish(): void {
    if (this.phase === undefined) return;
    this.timings[this.phase] = (this.timings[this.phase] ?? 0) + (this.now() - this.phaseStart) / 1000;
    this.phase = undefined;
  }
}
