/** Helpers of the service specs: the CLI's long-running commands as child processes, a free port, binaries. */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ROOT } from './tensors.js';

const BIN = path.join(ROOT, 'bin', 'pix2pix-zero.js');

/** A program on $PATH (or undefined). */
export function findProgram(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, name);
    if (dir !== '' && fs.existsSync(file)) return file;
  }
  return undefined;
}

/** A free local TCP port (bound and released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A child process with its output gathered line by line (stdout and stderr together). */
export class Child {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly waiters: { pattern: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];

  constructor(readonly proc: ChildProcess) {
    let buffered = '';
    const take = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const line of parts) this.line(line);
    };
    proc.stdout?.on('data', take);
    proc.stderr?.on('data', take);
    this.exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  }

  private line(line: string): void {
    this.lines.push(line);
    for (const w of [...this.waiters]) {
      const m = w.pattern.exec(line);
      if (m !== null) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  }

  /** The first line (already printed or to come) matching `pattern`; rejects after `ms` or when the process ends. */
  waitFor(pattern: RegExp, ms = 60_000): Promise<RegExpExecArray> {
    for (const line of this.lines) {
      const m = pattern.exec(line);
      if (m !== null) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${ms} ms; output:\n${this.lines.join('\n')}`)), ms);
      const waiter = {
        pattern,
        resolve: (m: RegExpExecArray) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      this.waiters.push(waiter);
      void this.exited.then((code) => {
        if (!this.waiters.includes(waiter)) return;
        clearTimeout(timer);
        reject(new Error(`the process ended (code ${code}) before a line matching ${pattern}; output:\n${this.lines.join('\n')}`));
      });
    });
  }

  /** Sends `signal` and waits for the exit (resolves to the exit code, null when killed by the signal). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }
}

/** Starts `pix2pix-zero <args>` (niced, as the machine is shared). */
export function startCli(args: string[], env: Record<string, string> = {}): Child {
  return new Child(spawn('nice', ['-n', '5', process.execPath, BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Starts a throw-away `redis-server` on `port` (no persistence). */
export function startRedis(redisServer: string, port: number, dir: string): Child {
  return new Child(spawn(redisServer, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] }));
}
