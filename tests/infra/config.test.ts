// The config module on its own: defaults, accepted spellings, and properties that must hold for
// any input (fast-check), such as "a typo never silently falls back to a default".
import fc from "fast-check";
import { ConfigError, CONSISTENCY_LEVELS, KNOWN_KEYS, parseStackConfig, replicasNeeded } from "../../infra/config";
import { parseJvmSize, parseQuantity } from "../../infra/quantity";

const problemsOf = (raw: Record<string, unknown>): string[] => {
    try {
        parseStackConfig(raw);
        return [];
    } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        return e.problems;
    }
};

test("an empty config gives the reference defaults", () => {
    const c = parseStackConfig({});
    expect(c.cassandra).toMatchObject({ replicas: 3, image: "cassandra:4.1.3", clusterName: "ece573-prj04", seedCount: 1 });
    expect(c.kafka).toMatchObject({ replicas: 3, partitions: 4, replicationFactor: 3, minInsyncReplicas: 2 });
    expect(c.writer).toMatchObject({ replicas: 1, topic: "project04", keyspace: "ece573", consistency: "QUORUM" });
    expect(c.clients).toMatchObject({ topic: "test", partitions: 4, producerReplicas: 1, consumerReplicas: 1 });
    expect(c).toMatchObject({ namespace: "streamstack", createNamespace: true, clusterDomain: "cluster.local" });
});

test("numbers given as strings (as `pulumi config set --path` may store them) are accepted", () => {
    expect(parseStackConfig({ cassandra: { replicas: "5" } }).cassandra.replicas).toBe(5);
});

test("namespace default is not created by the program unless asked", () => {
    expect(parseStackConfig({ namespace: "default" }).createNamespace).toBe(false);
    expect(parseStackConfig({ namespace: "team-a", createNamespace: false }).createNamespace).toBe(false);
});

test("quantities and JVM sizes compare in bytes", () => {
    expect(parseQuantity("1Gi")).toBe(2 ** 30);
    expect(parseQuantity("500m")).toBe(0.5);
    expect(parseQuantity("1G")).toBe(1e9);
    expect(parseQuantity("1 Gi")).toBeUndefined();
    expect(parseJvmSize("512M")).toBe(512 * 2 ** 20);
    expect(parseJvmSize("1g")).toBe(2 ** 30);
    expect(parseJvmSize("0")).toBeUndefined();
});

test("property: any replica count below the minimum is rejected with the key named", () => {
    fc.assert(fc.property(
        fc.constantFrom("cassandra", "zookeeper", "kafka"),
        fc.oneof(fc.integer({ max: 0 }), fc.double({ noNaN: true }).filter(d => !Number.isInteger(d))),
        (system, replicas) => {
            const problems = problemsOf({ [system]: { replicas } });
            return problems.some(p => p.startsWith(`streamstack:${system}.replicas: must be an integer >= 1`));
        }));
});

test("property: a Kafka sizing is accepted exactly when RF <= brokers, min ISR <= RF and min ISR <= the RF of __consumer_offsets", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), (replicas, rf, isr) => {
        const problems = problemsOf({ kafka: { replicas, replicationFactor: rf, minInsyncReplicas: isr } });
        // __consumer_offsets gets min(3, brokers) replicas and the brokers' min.insync.replicas.
        const ok = rf <= replicas && isr <= rf && isr <= Math.min(3, replicas);
        return ok ? problems.length === 0 : problems.length > 0 && problems.every(p => p.startsWith("streamstack:kafka."));
    }));
});

test("property: a refused Kafka sizing says what to set instead, and setting it is accepted", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), (replicas, rf, isr) => {
        const kafka: Record<string, number> = { replicas, replicationFactor: rf, minInsyncReplicas: isr };
        const fixed = { ...kafka };
        for (const p of problemsOf({ kafka })) {
            // Each message names its key, the value it got, and the highest value to set instead.
            const m = /^streamstack:kafka\.(\w+): must be at most .* \(got (\d+)\): .*; set kafka\.(\w+) to at most (\d+)/.exec(p);
            if (!m || m[1] !== m[3] || Number(m[2]) !== kafka[m[1]]) return false;
            fixed[m[1]] = Number(m[4]);
        }
        return problemsOf({ kafka: fixed }).length === 0;
    }));
});

test("property: an unknown key is reported together with every other problem, never instead of one", () => {
    const sizing = fc.record({ replicas: fc.integer({ min: 1, max: 5 }), replicationFactor: fc.integer({ min: 1, max: 5 }), minInsyncReplicas: fc.integer({ min: 1, max: 5 }) });
    fc.assert(fc.property(sizing, fc.constantFrom("colour", "owner", "zone"), fc.constantFrom("cassandra", "writer", "images"), (kafka, unknown, section) => {
        const alone = problemsOf({ kafka });
        const withTypo = problemsOf({ kafka, [section]: { [unknown]: "x" } });
        return withTypo.length === alone.length + 1 &&
            alone.every(p => withTypo.includes(p)) &&
            withTypo.some(p => p.startsWith(`streamstack:${section}.${unknown}: unknown key`));
    }));
});

test("replicas a level needs: a quorum is a majority of the replication factor", () => {
    expect([1, 2, 3, 4, 5].map(rf => replicasNeeded("QUORUM", rf))).toEqual([1, 2, 2, 3, 3]);
    expect([1, 3, 5].map(rf => replicasNeeded("ALL", rf))).toEqual([1, 3, 5]);
    expect(replicasNeeded("TWO", 5)).toBe(2);
});

test("property: a consistency level is refused exactly when it names more replicas than the factor has", () => {
    // Majorities and ALL fit any factor; only TWO and THREE can ask for more replicas than exist.
    const refused = (level: string, rf: number) => (level === "TWO" && rf < 2) || (level === "THREE" && rf < 3);
    fc.assert(fc.property(fc.constantFrom(...CONSISTENCY_LEVELS), fc.integer({ min: 1, max: 5 }), (level, rf) => {
        const problems = problemsOf({ cassandra: { replicas: 5 }, writer: { consistency: level, replicationFactor: rf } });
        return (problems.length > 0) === refused(level, rf);
    }));
});

test("property: a misspelt key is never ignored, whatever the typo", () => {
    const sectionKeys = { cassandra: ["replicas", "image", "storageClass", "seedCount"], kafka: ["partitions", "replicationFactor"] };
    fc.assert(fc.property(
        fc.constantFrom(...Object.entries(sectionKeys).flatMap(([s, ks]) => ks.map(k => [s, k] as const))),
        fc.nat(), fc.constantFrom("x", "_", "s", ""),
        ([section, key], at, ch) => {
            const i = at % key.length;
            const typo = ch === "" ? key.slice(0, i) + key.slice(i + 1) : key.slice(0, i) + ch + key.slice(i);
            if (typo === key) return true;
            const problems = problemsOf({ [section]: { [typo]: "1" } });
            return problems.some(p => p.startsWith(`streamstack:${section}.${typo}: unknown key`));
        }));
    fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 12 }).filter(k => !KNOWN_KEYS.includes(k)), key =>
        problemsOf({ [key]: 1 }).some(p => p.startsWith(`streamstack:${key}: unknown key`))));
});
