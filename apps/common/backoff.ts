// Capped exponential backoff, pure so that the schedule is unit-tested.

export interface BackoffOptions {
  /** First delay in ms. */
  readonly initialMs: number;
  /** Largest delay in ms. */
  readonly maxMs: number;
  /** Growth per attempt. */
  readonly factor: number;
  /** Fraction of the delay randomised away (0 = none), so restarted replicas do not retry in step. */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 10_000, factor: 2, jitter: 0.2 };

/** The delay before retry number `attempt` (1-based); `random` is in [0, 1). */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random = Math.random()): number {
  const exp = opts.initialMs * Math.pow(opts.factor, Math.max(0, attempt - 1));
  const capped = Math.min(opts.maxMs, exp);
  return Math.round(capped * (1 - opts.jitter * random));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `fn` until it resolves, waiting backoffDelay between attempts; `onFailure` sees each failure
 * and the delay before the next attempt. `shouldStop` ends the loop early with the last error.
 */
export async function retryForever<T>(
  fn: (attempt: number) => Promise<T>,
  onFailure: (err: unknown, attempt: number, delayMs: number) => void,
  opts: BackoffOptions = DEFAULT_BACKOFF,
  shouldStop: () => boolean = () => false,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (shouldStop()) throw err;
      const delay = backoffDelay(attempt, opts);
      onFailure(err, attempt, delay);
      await sleep(delay);
      if (shouldStop()) throw err;
    }
  }
}

/** The first line of an error's message, for one-line log fields. */
export function errText(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.split("\n")[0].slice(0, 300);
}
