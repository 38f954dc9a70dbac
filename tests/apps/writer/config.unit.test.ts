import { loadWriterConfig } from "../../../apps/writer/config";

describe("the writer's environment", () => {
  it("takes the reference defaults when only TOPIC and CASSANDRA_SEEDS are set", () => {
    const r = loadWriterConfig({ TOPIC: "project04", CASSANDRA_SEEDS: "cassandra-service.default.svc.cluster.local" });
    expect(r).toEqual({
      ok: true,
      value: expect.objectContaining({
        role: "writer",
        topic: "project04",
        contactPoints: ["cassandra-service.default.svc.cluster.local"],
        port: 9042,
        keyspace: "ece573",
        rowsTable: "prj04",
        lastSeqTable: "prj04_last_seq",
        consistency: "QUORUM",
        replicationFactor: 3,
        localDataCenter: "datacenter1",
        httpPort: 8080,
        readerFromSeq: 0,
      }),
    });
  });

  it("splits a comma list of seeds and accepts lower-case consistency names", () => {
    const r = loadWriterConfig({ TOPIC: "t", CASSANDRA_SEEDS: "a, b ,c", CONSISTENCY: "local_quorum", ROLE: "READER" });
    expect(r.ok && r.value.contactPoints).toEqual(["a", "b", "c"]);
    expect(r.ok && r.value.consistency).toBe("LOCAL_QUORUM");
    expect(r.ok && r.value.role).toBe("reader");
  });

  it("names every bad variable with its allowed values", () => {
    const r = loadWriterConfig({ TOPIC: "", CONSISTENCY: "SOME", REPLICATION_FACTOR: "0", CASSANDRA_KEYSPACE: "ks-1", HTTP_PORT: "http", READER_FROM_SEQ: "-1" });
    expect(r.ok).toBe(false);
    const problems = r.ok ? [] : r.problems;
    expect(problems).toHaveLength(7);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^TOPIC is not set; allowed: a non-empty topic name/),
        expect.stringMatching(/^CASSANDRA_SEEDS is not set/),
        'CONSISTENCY="SOME"; allowed: one of ANY, ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, LOCAL_ONE (default QUORUM)',
        'REPLICATION_FACTOR="0"; allowed: an integer from 1 to 100 (default 3)',
        expect.stringMatching(/^CASSANDRA_KEYSPACE="ks-1"; allowed: a CQL identifier/),
        expect.stringMatching(/^HTTP_PORT="http"; allowed: an integer from 0 to 65535/),
        'READER_FROM_SEQ="-1"; allowed: an integer from 0 to 2147483647 (default 0)',
      ]),
    );
  });
});
