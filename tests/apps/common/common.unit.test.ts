import { backoffDelay } from "../../../apps/common/backoff";
import { milestones, ProgressMeter, ratePerSecond } from "../../../apps/common/progress";

describe("backoff while a server is unreachable", () => {
  it("doubles from the first delay and stops growing at the cap", () => {
    const opts = { initialMs: 500, maxMs: 10_000, factor: 2, jitter: 0 };
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((a) => backoffDelay(a, opts))).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  it("takes at most the jitter fraction off", () => {
    const opts = { initialMs: 1000, maxMs: 1000, factor: 2, jitter: 0.2 };
    expect(backoffDelay(1, opts, 0)).toBe(1000);
    expect(backoffDelay(1, opts, 0.999)).toBeGreaterThanOrEqual(800);
  });
});

describe("progress lines every 1000", () => {
  it("lists every multiple of 1000 crossed", () => {
    expect(milestones(999, 1000)).toEqual([1000]);
    expect(milestones(1000, 1999)).toEqual([]);
    expect(milestones(500, 3500)).toEqual([1000, 2000, 3000]);
  });

  it("gives the rate since the previous line", () => {
    expect(ratePerSecond({ atMs: 0, count: 0 }, { atMs: 2000, count: 1000 })).toBe(500);
    const m = new ProgressMeter(0, 0);
    expect(m.advance(999, 1000)).toEqual([]);
    expect(m.advance(2000, 2000)).toEqual([
      { milestone: 1000, rate: 1000 },
      { milestone: 2000, rate: 1000 },
    ]);
  });
});
