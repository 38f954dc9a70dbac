// The writer's position gauges say nothing until the resume point is read, rather than a false 0.
import { newRegistry } from "../../../apps/common/http";
import { writerMetrics } from "../../../apps/writer/writer";

test("writer_last_seq and writer_acked_seq appear on /metrics only once the resume point is known", async () => {
  const registry = newRegistry("writer");
  const metrics = writerMetrics(registry);
  const before = await registry.metrics();
  expect(before).toMatch(/^writer_rows_written_total\{app="writer"\} 0$/m);
  expect(before).not.toMatch(/^writer_(last|acked)_seq/m);
  metrics.lastSeq.set(41000);
  metrics.ackedSeq.set(41000);
  metrics.showPositions();
  metrics.showPositions(); // a second call registers nothing twice
  const after = await registry.metrics();
  expect(after).toMatch(/^writer_last_seq\{app="writer"\} 41000$/m);
  expect(after).toMatch(/^writer_acked_seq\{app="writer"\} 41000$/m);
});
