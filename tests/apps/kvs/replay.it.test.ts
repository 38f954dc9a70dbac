// Replay of a long log at start: 100,000 changes (puts and deletes over 5,000 keys), its time printed,
// the state exact, and the service not ready until the replay is done.
import { AppProcess, httpGet, sleep } from "../support";
import { get, kvsEnv, metric, replayedLine, startKvs, usePostgres } from "./support";

jest.setTimeout(900_000);

const CHANGES = 100_000;
const KEYS = 5_000;

const postgres = usePostgres();

/** The state after changes 1..CHANGES: change i is to key i % KEYS, a delete when i % 10 == 0, else a put of `value i Test Pair+%`. */
function expectedValue(key: number): string | null {
  const last = key === 0 ? CHANGES : key + CHANGES - KEYS;
  return last % 10 === 0 ? null : `value ${last} Test Pair+%`;
}

test(`replay of ${CHANGES} changes at start: the exact state, its time printed, not ready until done`, async () => {
  const env = kvsEnv(postgres.server);
  // The service creates its table, then stops; the changes are loaded in one statement, in order.
  const first = await startKvs(env, "kvs-create");
  expect((await first.process.stop()).code).toBe(0);
  await postgres.server.query(`
    INSERT INTO transactions (event_type, key, value, change_id)
    SELECT CASE WHEN i % 10 = 0 THEN 1 ELSE 2 END,
           'key-' || (i % ${KEYS}),
           CASE WHEN i % 10 = 0 THEN NULL ELSE convert_to('value ' || i || ' Test Pair+%', 'UTF8') END,
           gen_random_uuid()
    FROM generate_series(1, ${CHANGES}) AS i ORDER BY i`);

  const startedAt = Date.now();
  const kvs = new AppProcess("kvs", env, "kvs-replay");
  const port = await kvs.httpPort();
  // Poll readiness from the moment the port is open until it says ready.
  let notReadySeen = 0;
  let readyAt = 0;
  while (!readyAt) {
    const { status } = await httpGet(port, "/readyz");
    if (status === 200) readyAt = Date.now();
    else notReadySeen++;
    if (kvs.child.exitCode !== null) throw new Error(`kvs exited:\n${kvs.raw.slice(-10).join("\n")}`);
    await sleep(20);
  }
  const line = await kvs.waitFor((l) => / events replayed$/.test(l.msg), 10_000);
  expect(line.msg).toBe(`${CHANGES} events replayed`);
  expect(notReadySeen).toBeGreaterThan(0);
  expect(readyAt).toBeGreaterThanOrEqual(Date.parse(line.time as string));

  const durationMs = line.durationMs as number;
  // Printed, not asserted: the machine is shared.
  console.log(
    `replay of ${CHANGES} changes (${KEYS} keys): ${durationMs} ms reading and applying the log ` +
      `(${Math.round(CHANGES / (durationMs / 1000))} changes/s); ${readyAt - startedAt} ms from process start to ready`,
  );

  const present = Array.from({ length: KEYS }, (_, k) => k).filter((k) => expectedValue(k) !== null).length;
  expect(await metric({ process: kvs, port }, "kvs_keys")).toBe(present);
  expect(await metric({ process: kvs, port }, "kvs_replayed_events")).toBe(CHANGES);
  for (const k of [0, 1, 2, 9, 10, 11, 999, 1000, 2500, 4999]) {
    const got = await get({ process: kvs, port }, `key-${k}`);
    const want = expectedValue(k);
    if (want === null) expect({ k, status: got.status }).toEqual({ k, status: 404 });
    else expect({ k, text: got.text }).toEqual({ k, text: want });
  }
  expect(replayedLine({ process: kvs, port }).keys).toBe(present);
});
