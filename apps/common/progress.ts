// The "every 1000" progress lines both apps keep from the reference, with a rate added.

/** The multiples of `every` in (from, to]. */
export function milestones(from: number, to: number, every = 1000): number[] {
  const out: number[] = [];
  for (let m = (Math.floor(from / every) + 1) * every; m <= to; m += every) out.push(m);
  return out;
}

/** Counts per second between two (time ms, count) samples. */
export function ratePerSecond(prev: { atMs: number; count: number }, now: { atMs: number; count: number }): number {
  const dt = (now.atMs - prev.atMs) / 1000;
  return dt > 0 ? Math.round((now.count - prev.count) / dt) : 0;
}

/**
 * Turns a growing count into the milestones it crossed, each with the rate since the last time a
 * milestone was crossed.
 */
export class ProgressMeter {
  private last: { atMs: number; count: number };

  constructor(start: number, nowMs = Date.now(), private readonly every = 1000) {
    this.last = { atMs: nowMs, count: start };
  }

  /** Milestones in (previous count, count]; empty when none was crossed. */
  advance(count: number, nowMs = Date.now()): Array<{ milestone: number; rate: number }> {
    const crossed = milestones(this.last.count, count, this.every);
    if (crossed.length === 0) return [];
    const rate = ratePerSecond(this.last, { atMs: nowMs, count });
    this.last = { atMs: nowMs, count };
    return crossed.map((milestone) => ({ milestone, rate }));
  }
}
