// Cassandra I/O for the writer and the reader: connection, schema, rows and the last_seq LWT.
import { Client, types } from "cassandra-driver";
import { errText, retryForever } from "../common/backoff";
import type { Logger } from "../common/logger";
import { Consistency, lwtCommitConsistency, outcomeFromCurrent, AdvanceOutcome, schemaStatements, RESUME_READ_CONSISTENCY } from "./logic";

export interface StoreOptions {
  readonly contactPoints: string[];
  readonly port: number;
  readonly localDataCenter: string;
  readonly keyspace: string;
  readonly rowsTable: string;
  readonly lastSeqTable: string;
}

const CL: Record<Consistency | "SERIAL", number> = {
  ANY: types.consistencies.any,
  ONE: types.consistencies.one,
  TWO: types.consistencies.two,
  THREE: types.consistencies.three,
  QUORUM: types.consistencies.quorum,
  ALL: types.consistencies.all,
  LOCAL_QUORUM: types.consistencies.localQuorum,
  EACH_QUORUM: types.consistencies.eachQuorum,
  LOCAL_ONE: types.consistencies.localOne,
  SERIAL: types.consistencies.serial,
};

export function newClient(opts: StoreOptions, keyspace?: string): Client {
  return new Client({
    contactPoints: opts.contactPoints,
    localDataCenter: opts.localDataCenter,
    keyspace,
    protocolOptions: { port: opts.port },
    socketOptions: { connectTimeout: 5000, readTimeout: 15000 },
    pooling: { maxRequestsPerConnection: 4096 },
  });
}

/** Connects, retrying with capped exponential backoff while no contact point answers. */
export async function connectWithRetry(opts: StoreOptions, log: Logger, shouldStop: () => boolean = () => false): Promise<Client> {
  return retryForever(
    async (attempt) => {
      log.info({ attempt, contactPoints: opts.contactPoints, port: opts.port }, "connecting to cassandra");
      const client = newClient(opts);
      try {
        await client.connect();
        return client;
      } catch (err) {
        await client.shutdown().catch(() => undefined);
        throw err;
      }
    },
    (err, attempt, delayMs) => log.warn({ attempt, delayMs, err: errText(err) }, "cassandra unreachable, retrying"),
    undefined,
    shouldStop,
  );
}

export class Store {
  private readonly rows: string;
  private readonly lastSeq: string;

  constructor(
    readonly client: Client,
    private readonly opts: StoreOptions,
  ) {
    this.rows = `${opts.keyspace}.${opts.rowsTable}`;
    this.lastSeq = `${opts.keyspace}.${opts.lastSeqTable}`;
  }

  /** Creates keyspace and tables when absent; returns the keyspace's replication as found. */
  async ensureSchema(replicationFactor: number): Promise<Record<string, string> | undefined> {
    for (const cql of schemaStatements(this.opts.keyspace, replicationFactor, this.opts.rowsTable, this.opts.lastSeqTable)) {
      await this.client.execute(cql, [], { consistency: CL.ALL });
    }
    await this.client.metadata.refreshKeyspace(this.opts.keyspace).catch(() => undefined);
    const ks = this.client.metadata.keyspaces[this.opts.keyspace] as { strategyOptions?: Record<string, string> } | undefined;
    return ks?.strategyOptions;
  }

  /** The committed last_seq of `topic` (null when the topic has none), read at SERIAL. */
  async readLastSeq(topic: string): Promise<number | null> {
    const rs = await this.client.execute(`SELECT seq FROM ${this.lastSeq} WHERE topic = ?`, [topic], {
      prepare: true,
      consistency: CL[RESUME_READ_CONSISTENCY],
    });
    const row = rs.first();
    return row ? (row["seq"] as number) : null;
  }

  /** Same as readLastSeq, at an ordinary consistency (the reader's view, no Paxos round). */
  async peekLastSeq(topic: string, consistency: Consistency): Promise<number | null> {
    const rs = await this.client.execute(`SELECT seq FROM ${this.lastSeq} WHERE topic = ?`, [topic], { prepare: true, consistency: CL[consistency] });
    const row = rs.first();
    return row ? (row["seq"] as number) : null;
  }

  async insertRow(topic: string, seq: number, value: number, consistency: Consistency): Promise<void> {
    await this.client.execute(`INSERT INTO ${this.rows} (topic, seq, value) VALUES (?, ?, ?)`, [topic, seq, value], {
      prepare: true,
      isIdempotent: true,
      consistency: CL[consistency],
    });
  }

  /**
   * Rows of one topic in one unlogged batch: they share the partition key, so Cassandra applies them as
   * one mutation of one partition (the cheap kind of batch, not a multi-partition one).
   */
  async insertRows(topic: string, rows: ReadonlyArray<{ seq: number; value: number }>, consistency: Consistency): Promise<void> {
    if (rows.length === 1) return this.insertRow(topic, rows[0].seq, rows[0].value, consistency);
    const query = `INSERT INTO ${this.rows} (topic, seq, value) VALUES (?, ?, ?)`;
    await this.client.batch(
      rows.map((r) => ({ query, params: [topic, r.seq, r.value] })),
      { prepare: true, logged: false, isIdempotent: true, consistency: CL[consistency] },
    );
  }

  /** The reference's way: one awaited row insert, then one awaited last_seq update (baseline for bench). */
  async insertRowAndLastSeqPlain(topic: string, seq: number, value: number, consistency: Consistency): Promise<void> {
    await this.insertRow(topic, seq, value, consistency);
    await this.client.execute(`UPDATE ${this.lastSeq} SET seq = ? WHERE topic = ?`, [seq, topic], { prepare: true, consistency: CL[consistency] });
  }

  /**
   * Moves last_seq from `expected` (null: no row yet) to `proposed` with a lightweight transaction, so
   * that of two writers on one topic only one can advance it. An unknown outcome (timeout) is settled by
   * reading back at SERIAL.
   */
  async advanceLastSeq(
    topic: string,
    expected: number | null,
    proposed: number,
    consistency: Consistency,
    ownInDoubt: ReadonlySet<number> = new Set(),
  ): Promise<AdvanceOutcome & { inDoubt?: boolean; err?: string }> {
    const [cql, params] =
      expected === null
        ? [`INSERT INTO ${this.lastSeq} (topic, seq) VALUES (?, ?) IF NOT EXISTS`, [topic, proposed]]
        : [`UPDATE ${this.lastSeq} SET seq = ? WHERE topic = ? IF seq = ?`, [proposed, topic, expected]];
    try {
      const rs = await this.client.execute(cql, params, {
        prepare: true,
        consistency: CL[lwtCommitConsistency(consistency)],
        serialConsistency: CL.SERIAL,
      });
      if (rs.wasApplied()) return { kind: "advanced" };
      const current = rs.first()?.["seq"];
      return outcomeFromCurrent(typeof current === "number" ? current : null, expected, proposed, ownInDoubt);
    } catch (err) {
      try {
        return { ...outcomeFromCurrent(await this.readLastSeq(topic), expected, proposed, ownInDoubt), inDoubt: true, err: errText(err) };
      } catch (readErr) {
        return { kind: "retry", inDoubt: true, err: `${errText(err)}; reading last_seq back: ${errText(readErr)}` };
      }
    }
  }

  /** Seqs of `topic` in (from, to], read at `consistency`, in pages. */
  async seqsBetween(topic: string, from: number, to: number, consistency: Consistency): Promise<number[]> {
    const out: number[] = [];
    const query = `SELECT seq FROM ${this.rows} WHERE topic = ? AND seq > ? AND seq <= ?`;
    let pageState: string | undefined;
    do {
      const rs = await this.client.execute(query, [topic, from, to], { prepare: true, consistency: CL[consistency], fetchSize: 5000, pageState });
      for (const row of rs.rows) out.push(row["seq"] as number);
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return out;
  }
}
