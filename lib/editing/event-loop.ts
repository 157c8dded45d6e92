/** Yielding to the event loop between the steps of a long call. */

/**
 * Resolves on the next turn of the event loop (`setImmediate`), so that timers, progress output and abort signals
 * come in between the steps of a long call.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
