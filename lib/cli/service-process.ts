/** What the long-running commands (`serve`, `worker`) share: waiting for a stop signal, and hiding passwords in logs. */

/**
 * Resolves with the first SIGINT or SIGTERM; a second one then ends the process at once (exit 130), for a stop
 * that waits on a job the user no longer wants.
 */
export function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const first = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', first);
      process.off('SIGTERM', first);
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(130));
      resolve(signal);
    };
    process.on('SIGINT', first);
    process.on('SIGTERM', first);
  });
}

/** A Redis URL with its password hidden, for logs. */
export function redactUrl(url: string): string {
  const u = new URL(url);
  if (u.password !== '') u.password = '***';
  return u.toString();
}
