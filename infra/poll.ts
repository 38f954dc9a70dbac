// The one wait loop of the steps `pulumi up` runs in the cluster (claim expansion, partition reassignment).

export interface PollOptions {
    /** How long to keep asking. */
    readonly timeoutMs: number;
    /** How long to wait between two asks. */
    readonly pollMs: number;
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

/**
 * Asks `check` until it returns a value and returns that; past the deadline, throws the error that
 * `timedOut` makes (called then, so it can name what the last ask found).
 */
export async function until<T>(check: () => Promise<T | undefined>, opts: PollOptions, timedOut: () => Error): Promise<T> {
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
        const v = await check();
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw timedOut();
        await sleep(opts.pollMs);
    }
}
