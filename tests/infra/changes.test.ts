// Day-2 changes: a config is compared with what the stack deployed last. Each rule below is what an
// operator would check by hand before a change: "will this take the ring down, or lose data?".
import { spawnSync } from "child_process";
import fc from "fast-check";
import { mkdtempSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import {
    ChangeError, checkClaimGrowth, guardChanges, Guarded, raiseOffsetsReplicationCommand, readRecord, recordOf, zookeeperGrowthLosesData, zookeeperGrowthSteps,
} from "../../infra/changes";
import { parseStackConfig } from "../../infra/config";

type Raw = Record<string, any>;

/** What a stack deployed with `raw` has recorded, read back as the next run reads it (through JSON). */
const deployedWith = (raw: Raw) => readRecord(JSON.parse(JSON.stringify(recordOf(parseStackConfig(raw)))));
/** The stack was deployed with `from`; the user edits its config to `to`. */
const change = (from: Raw, to: Raw): Guarded => guardChanges(deployedWith(from), parseStackConfig(to));
const keysOf = (g: Guarded) => g.refusals.map(r => r.key);

describe("nothing to compare", () => {
    test("a new stack (no previous record) has nothing refused and nothing to warn about, whatever its config", () => {
        for (const raw of [{}, { zookeeper: { replicas: 3 } }, { kafka: { replicas: 1, replicationFactor: 1, minInsyncReplicas: 1 } }, { cassandra: { clusterName: "other" } }]) {
            expect(guardChanges(undefined, parseStackConfig(raw))).toEqual({ refusals: [], warnings: [] });
        }
    });

    test("running `up` again with the same config refuses and warns about nothing", () => {
        const raw = { zookeeper: { replicas: 3 }, kafka: { partitions: 6 }, cassandra: { storageClass: "fast" } };
        expect(change(raw, raw)).toEqual({ refusals: [], warnings: [] });
    });

    test("unrelated changes go ahead without a word: consistency, cpu, memory, heaps, images, app replicas, growth", () => {
        const to = {
            writer: { consistency: "ONE", cpu: "500m", memory: "512Mi" },
            cassandra: { cpu: "1", memory: "2Gi", maxHeapSize: "1G", image: "cassandra:4.1.4", replicas: 5 },
            kafka: { cpu: "1", heapSize: "256m", replicas: 4 },
            zookeeper: { memory: "1Gi" },
            clients: { producerReplicas: 0, partitions: 8 },
            images: { nodeBase: "node:22-bookworm-slim" },
        };
        expect(change({}, to)).toEqual({ refusals: [], warnings: [] });
    });

    test("a record that lacks a section (another program version) is compared on the fields it has", () => {
        const partial = readRecord({ version: 1, namespace: "streamstack", selector: ["app", "app.kubernetes.io/instance"], cassandra: { clusterName: "ece573-prj04", replicas: 3 } });
        expect(guardChanges(partial, parseStackConfig({ kafka: { replicas: 1, replicationFactor: 1, minInsyncReplicas: 1 } }))).toEqual({ refusals: [], warnings: [] });
        expect(keysOf(guardChanges(partial, parseStackConfig({ cassandra: { clusterName: "x" } })))).toEqual(["cassandra.clusterName"]);
        expect(readRecord("not a record")).toBeUndefined();
    });
});

describe("immutable once the system exists", () => {
    test.each([
        ["clusterName", "prod-ring", /refuses to start under another one/],
        ["datacenter", "dc2", /refuses to start when the snitch reports another/],
        ["rack", "rack2", /refuses to start when the snitch reports another/],
    ])("cassandra.%s: a change is refused, naming the key, both values, why and a new stack instead", (key, value, why) => {
        const g = change({}, { cassandra: { [key]: value } });
        expect(g.refusals).toHaveLength(1);
        const message = new ChangeError(g.refusals).message;
        expect(message).toContain(`streamstack:cassandra.${key}: "${recordOf(parseStackConfig({})).cassandra[key as "rack"]}" -> "${value}" refused: `);
        expect(message).toMatch(why);
        expect(message).toMatch(/Instead: keep it; for a system with cassandra\.\w+ "[^"]+", create a new stack with it and copy the data over/);
        expect(g.refusals[0].confirmable).toBe(false);
    });

    test("namespace: another namespace is another, empty system, refused", () => {
        const g = change({}, { namespace: "team-a" });
        expect(keysOf(g)).toEqual(["namespace"]);
        expect(g.refusals[0].why).toMatch(/deleted from streamstack and created empty in team-a/);
    });
});

describe("ZooKeeper growth", () => {
    test("1 -> 3 is refused: the two empty members form a quorum without the one that has the data; grow 1 -> 2 -> 3", () => {
        const g = change({}, { zookeeper: { replicas: 3 } });
        expect(keysOf(g)).toEqual(["zookeeper.replicas"]);
        expect(g.refusals[0].why).toMatch(/2 new members start empty.*quorum of 3 \(2 votes\) without the member that holds the data/);
        expect(g.refusals[0].instead).toMatch(/one `pulumi up` at a time through 1 -> 2 -> 3 members/);
    });

    test("1 -> 2, 2 -> 3 and 3 -> 4 go ahead; 1 -> 5 and 3 -> 5 are refused with their steps", () => {
        for (const [from, to] of [[1, 2], [2, 3], [3, 4], [4, 5]]) {
            expect(change({ zookeeper: { replicas: from } }, { zookeeper: { replicas: to } }).refusals).toEqual([]);
        }
        expect(change({}, { zookeeper: { replicas: 5 } }).refusals[0].instead).toMatch(/through 1 -> 2 -> 4 -> 5 members/);
        expect(change({ zookeeper: { replicas: 3 } }, { zookeeper: { replicas: 5 } }).refusals[0].instead).toMatch(/through 3 -> 4 -> 5 members/);
    });

    test("property: growth is refused exactly when some quorum of the new ensemble can leave out a whole quorum of the old one", () => {
        // Brute force over member sets: members 0..from-1 are old, the rest new.
        const subsets = (n: number, k: number): number[][] => k === 0 ? [[]] : n < k ? [] : [...subsets(n - 1, k), ...subsets(n - 1, k - 1).map(s => [...s, n - 1])];
        const q = (n: number) => Math.floor(n / 2) + 1;
        fc.assert(fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 9 }), (from, to) => {
            const unsafe = to > from && subsets(to, q(to)).some(newQ => subsets(from, q(from)).some(oldQ => oldQ.every(m => !newQ.includes(m))));
            return zookeeperGrowthLosesData(from, to) === unsafe;
        }));
        fc.assert(fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 9 }), (from, to) => {
            const steps = zookeeperGrowthSteps(from, Math.max(from, to));
            return steps.every((s, i) => i === 0 || !zookeeperGrowthLosesData(steps[i - 1], s));
        }));
    });
});

describe("partitions", () => {
    test("lowering clients.partitions is refused: Kafka cannot remove partitions", () => {
        const g = change({ clients: { partitions: 8 } }, { clients: { partitions: 4 } });
        expect(keysOf(g)).toEqual(["clients.partitions"]);
        expect(new ChangeError(g.refusals).message).toMatch(/streamstack:clients\.partitions: 8 -> 4 refused: Kafka cannot remove partitions: topic test keeps its 8.*Instead: keep clients\.partitions at 8 or more/);
    });

    test("lowering kafka.partitions with clients.partitions unset lowers the app topic: refused, naming kafka.partitions", () => {
        const g = change({ kafka: { partitions: 6 } }, { kafka: { partitions: 4 } });
        expect(keysOf(g)).toEqual(["kafka.partitions"]);
        expect(g.refusals[0].instead).toMatch(/set clients\.partitions to 6 as well/);
        expect(g.warnings).toEqual([]);
    });

    test("fewer partitions on a new topic go ahead: it is created with its own count", () => {
        expect(change({ clients: { partitions: 8 } }, { clients: { partitions: 4, topic: "test2" } }).refusals).toEqual([]);
    });

    test("kafka.partitions with clients.partitions set changes only the brokers' default: a warning that says so", () => {
        const g = change({ clients: { partitions: 8 } }, { clients: { partitions: 8 }, kafka: { partitions: 2 } });
        expect(g.refusals).toEqual([]);
        expect(g.warnings).toHaveLength(1);
        expect(g.warnings[0]).toMatch(/^streamstack:kafka\.partitions: 4 -> 2: every broker restarts, one at a time/);
        expect(g.warnings[0]).toMatch(/only of topics the brokers create themselves \(auto-created on first use, or created without a count\), and topics that exist keep theirs/);
        expect(g.warnings[0]).toMatch(/The app topic test is not affected: it takes clients\.partitions \(8\)/);
    });

    test("raising kafka.partitions with clients.partitions unset: the warning says the app topic follows", () => {
        const g = change({}, { kafka: { partitions: 6 } });
        expect(g.refusals).toEqual([]);
        expect(g.warnings[0]).toMatch(/The app topic test follows it, since clients\.partitions is unset: the producer adds partitions 4 -> 6 when it starts/);
    });
});

describe("Kafka brokers", () => {
    test("kafka.replicas down to no fewer brokers than any topic's replicas goes ahead with a warning: `pulumi up` moves the replicas off the leaving brokers first", () => {
        const g = change({ kafka: { replicas: 5 } }, { kafka: { replicas: 3 } });
        expect(g.refusals).toEqual([]);
        expect(g.warnings).toEqual([expect.stringMatching(
            /^streamstack:kafka\.replicas: 5 -> 3: `pulumi up` moves every partition replica off brokers 3, 4 \(broker id = pod ordinal\) onto brokers 0,1,2 before the StatefulSet shrinks .*waits until every reassignment is complete/)]);
        expect(g.warnings[0]).toContain("`kubectl -n streamstack delete pvc kafka-data-kafka-3 kafka-data-kafka-4`");
    });

    test("kafka.replicas down below the replicas of __consumer_offsets is refused, with the plan that lowers them first", () => {
        const g = change({ kafka: { replicas: 3, replicationFactor: 2, minInsyncReplicas: 1 } }, { kafka: { replicas: 2, replicationFactor: 2, minInsyncReplicas: 1 } });
        expect(keysOf(g)).toEqual(["kafka.replicas"]);
        const [r] = g.refusals;
        expect(r.why).toMatch(/^__consumer_offsets has up to 3 replicas per partition, more than the 2 brokers that would stay/);
        expect(r.instead).toMatch(/lower those topics' replication to at most 2: .* a plan with at most 2 replicas per partition, all on brokers 0,1 /);
        expect(r.instead).toMatch(/kafka-reassign-partitions --bootstrap-server localhost:9092 --reassignment-json-file plan\.json --execute.*--verify.*then confirm this change, and `pulumi up` moves every partition replica off broker 2 /);
        expect(r.confirmable).toBe(true);
        expect(new ChangeError(g.refusals).message).toContain("`pulumi config set streamstack:confirm kafka.replicas=2`");
    });

    test("kafka.replicas down below the app topic's replicas is refused, naming the topic", () => {
        const g = change({ kafka: { replicas: 5, replicationFactor: 4, minInsyncReplicas: 2 } }, { kafka: { replicas: 3, replicationFactor: 3, minInsyncReplicas: 2 } });
        expect(keysOf(g)).toEqual(["kafka.replicas"]);
        expect(g.refusals[0].why).toMatch(/^the app topic test has 4 replicas per partition, more than the 3 brokers that would stay/);
    });

    test("growing from one broker warns that __consumer_offsets stays at replication factor 1, with the command to raise it", () => {
        const one = { kafka: { replicas: 1, replicationFactor: 1, minInsyncReplicas: 1 } };
        const g = change(one, { kafka: { replicas: 3, replicationFactor: 3, minInsyncReplicas: 2 } });
        expect(g.refusals).toEqual([]);
        expect(g.warnings).toHaveLength(1);
        const [w] = g.warnings;
        expect(w).toMatch(/^streamstack:kafka\.replicas: 1 -> 3: __consumer_offsets keeps the replication factor it was created with \(1:/);
        expect(w).toContain("raise it to 3: `kubectl -n streamstack exec kafka-0 -- bash -c '");
        expect(w).toMatch(/kafka\.minInsyncReplicas \(2\) is above its replication factor, so the consumer group cannot commit offsets/);
        expect(w).toMatch(/The app topic test also keeps the 1 replica it was created with/);
        // From three brokers on, the internal topics were created with 3 replicas already.
        expect(change({}, { kafka: { replicas: 5 } }).warnings).toEqual([]);
    });

    test("the command that raises __consumer_offsets writes a reassignment of its 50 partitions over the brokers", () => {
        const bin = mkdtempSync(join(tmpdir(), "reassign-"));
        // Stands in for Kafka's tool: prints the file it is given.
        writeFileSync(join(bin, "kafka-reassign-partitions"), '#!/bin/bash\ncat "$4"\n', { mode: 0o755 });
        try {
            for (const brokers of [2, 3, 5]) {
                const command = raiseOffsetsReplicationCommand("kubectl -n ns", "kafka", brokers);
                const script = /^kubectl -n ns exec kafka-0 -- bash -c '(.*)'$/.exec(command)![1].replace("/tmp/offsets-rf.json", join(bin, "plan.json"));
                const run = spawnSync("bash", ["-c", script], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, encoding: "utf8" });
                expect(run.status).toBe(0);
                const plan = JSON.parse(run.stdout);
                expect(plan.version).toBe(1);
                expect(plan.partitions.map((p: any) => p.partition)).toEqual(Array.from({ length: 50 }, (_, i) => i));
                for (const p of plan.partitions) {
                    expect(p.topic).toBe("__consumer_offsets");
                    expect(new Set(p.replicas).size).toBe(Math.min(3, brokers));
                    for (const b of p.replicas) expect(b).toBeLessThan(brokers);
                }
            }
        } finally {
            rmSync(bin, { recursive: true, force: true });
        }
    });
});

describe("Cassandra nodes", () => {
    test("cassandra.replicas down to 3 or more goes ahead with a warning: `up` decommissions the leaving nodes, highest first, and their claims go", () => {
        const g = change({ cassandra: { replicas: 5 } }, { cassandra: { replicas: 3 } });
        expect(g.refusals).toEqual([]);
        expect(g.warnings).toEqual([expect.stringMatching(
            /^streamstack:cassandra\.replicas: 5 -> 3: `pulumi up` decommissions cassandra-4, then cassandra-3 before the StatefulSet shrinks \(`nodetool decommission` through kubectl.*their claims are deleted as their pods go/)]);
    });

    test("cassandra.replicas below 3 is refused: decommission cannot leave fewer nodes than system_distributed's replicas; the message says how to lower them", () => {
        const g = change({ cassandra: { replicas: 3 } }, { cassandra: { replicas: 2 }, writer: { replicationFactor: 2 } });
        expect(keysOf(g)).toEqual(["cassandra.replicas"]);
        const [r] = g.refusals;
        expect(r.why).toMatch(/`nodetool decommission` refuses to leave 2 nodes while system_distributed keeps 3 replicas/);
        expect(r.instead).toMatch(/ALTER KEYSPACE system_distributed WITH replication = \{'class': 'NetworkTopologyStrategy', 'datacenter1': 2\}; ALTER KEYSPACE system_traces .*'datacenter1': 2\}"`; then confirm this change, and `pulumi up` decommissions cassandra-2 before/);
        expect(r.confirmable).toBe(true);
    });

    test("once the steps are done, confirming that change lets it through with a warning; another value does not", () => {
        const before = { cassandra: { replicas: 3 }, writer: { replicationFactor: 2 } };
        const ok = change(before, { ...before, cassandra: { replicas: 2 }, confirm: "cassandra.replicas=2" });
        expect(ok.refusals).toEqual([]);
        expect(ok.warnings).toEqual([expect.stringMatching(/^streamstack:cassandra\.replicas: 3 -> 2 goes ahead, confirmed by streamstack:confirm/)]);
        const other = change(before, { ...before, cassandra: { replicas: 2 }, confirm: "cassandra.replicas=1" });
        expect(keysOf(other)).toEqual(["cassandra.replicas"]);
        expect(other.warnings).toEqual([expect.stringMatching(/^streamstack:confirm: cassandra\.replicas=1 lets no refused change through \(deployed 3, config 2\)/)]);
    });

    test("a malformed confirmation, or one of a change that cannot be confirmed, is a config error naming what it accepts", () => {
        for (const confirm of ["cassandra.replicas", "cassandra.clusterName=other", "replicas=3", "kafka.storageSize=20Gi"]) {
            expect(() => parseStackConfig({ confirm })).toThrow(
                /streamstack:confirm: must be <key>=<new value>\[,\.\.\.\] with a key of cassandra\.replicas, kafka\.replicas \(got /);
        }
        expect(parseStackConfig({ confirm: "cassandra.replicas=2, kafka.replicas=2" }).confirm).toEqual({ "cassandra.replicas": "2", "kafka.replicas": "2" });
    });

    test("a confirmation left in place after its change is deployed is pointed out", () => {
        const g = change({ cassandra: { replicas: 3 } }, { cassandra: { replicas: 3 }, confirm: "cassandra.replicas=3" });
        expect(g.refusals).toEqual([]);
        expect(g.warnings).toEqual([expect.stringMatching(/lets no refused change through \(deployed 3, config 3\); remove it/)]);
    });
});

describe("storage of every StatefulSet", () => {
    test.each(["cassandra", "zookeeper", "kafka"])("%s.storageSize up goes ahead with a warning: `pulumi up` grows the claims in place and orphans the pods before the StatefulSet is replaced", server => {
        const g = change({}, { [server]: { storageSize: "50Gi" } });
        expect(g.refusals).toEqual([]);
        const ordinals = server === "zookeeper" ? [0] : [0, 1, 2]; // the default replicas: 1 member, 3 nodes, 3 brokers
        const was = server === "zookeeper" ? "1Gi" : "10Gi";
        expect(g.warnings).toEqual([expect.stringMatching(new RegExp(`^streamstack:${server}\\.storageSize: "${was}" -> "50Gi": the provider replaces StatefulSet ${server} \\(its claim template changes\\), ` +
            `and before it deletes the old one \`pulumi up\` grows each claim in place \\(${ordinals.map(i => `${server}-data-${server}-${i}`).join(", ")}:`))]);
        expect(g.warnings[0]).toMatch(/deletes the StatefulSet with --cascade=orphan: the pods keep running/);
        expect(g.warnings[0]).toMatch(/The cluster's default class must allow expansion .* the preview has read the claims' classes and refuses a growth they cannot serve, and the step checks again: if one does not, the `up` stops there with nothing changed/);
        expect(g.warnings[0]).toMatch(/`pulumi destroy` then needs --run-program$/);
    });

    test("one claim per pod that is deployed is grown", () => {
        const [w] = change({ cassandra: { replicas: 4 } }, { cassandra: { replicas: 4, storageSize: "20Gi" } }).warnings;
        expect(w).toContain("(cassandra-data-cassandra-0, cassandra-data-cassandra-1, cassandra-data-cassandra-2, cassandra-data-cassandra-3:");
    });

    test("a smaller size is refused for good: a claim cannot shrink", () => {
        const g = change({}, { kafka: { storageSize: "5Gi" } });
        expect(keysOf(g)).toEqual(["kafka.storageSize"]);
        expect(g.refusals[0]).toMatchObject({ confirmable: false, why: expect.stringMatching(/a claim cannot shrink$/), instead: "keep 10Gi; for smaller volumes, create a new stack and copy the data over" });
        // The same size written another way is no change of size.
        expect(change({}, { kafka: { storageSize: "10240Mi" } }).refusals).toEqual([]);
    });

    test.each(["cassandra", "zookeeper", "kafka"])("%s.storageClass: setting, changing or unsetting it is refused", server => {
        expect(keysOf(change({}, { [server]: { storageClass: "fast" } }))).toEqual([`${server}.storageClass`]);
        expect(keysOf(change({ [server]: { storageClass: "fast" } }, { [server]: { storageClass: "slow" } }))).toEqual([`${server}.storageClass`]);
        expect(keysOf(change({ [server]: { storageClass: "fast" } }, {}))).toEqual([`${server}.storageClass`]);
        const message = new ChangeError(change({}, { [server]: { storageClass: "fast" } }).refusals).message;
        expect(message).toContain(`streamstack:${server}.storageClass: unset (the cluster's default class) -> "fast" refused`);
    });
});

test("every refused change is in one message, one line each, and nothing was changed", () => {
    const g = change({ cassandra: { replicas: 3 }, kafka: { replicas: 3 } }, {
        cassandra: { replicas: 2, clusterName: "other" },
        writer: { replicationFactor: 2 },
        kafka: { replicas: 2, replicationFactor: 2, storageClass: "fast" },
        zookeeper: { replicas: 3 },
    });
    const message = new ChangeError(g.refusals).message;
    expect(message).toMatch(/^Refused changes to what this stack has deployed \(5\):/);
    for (const key of ["cassandra.clusterName", "cassandra.replicas", "zookeeper.replicas", "kafka.replicas", "kafka.storageClass"]) {
        expect(message).toMatch(new RegExp(`^  - streamstack:${key.replace(".", "\\.")}: .* refused: .*\\. Instead: `, "m"));
    }
    expect(message).toMatch(/\nNothing was changed\./);
});

describe("names and selectors (two stacks in one namespace)", () => {
    test("namePrefix cannot change once deployed: every object would be created anew under other names, with empty claims", () => {
        for (const [from, to] of [["", "blue"], ["blue", ""], ["blue", "green"]]) {
            const g = change({ namePrefix: from }, { namePrefix: to });
            expect(g.refusals).toEqual([expect.objectContaining({ key: "namePrefix", deployed: from, wanted: to, confirmable: false })]);
            expect(new ChangeError(g.refusals).message).toMatch(/streamstack:namePrefix: .* refused: every object is named after it: .*the old claims, with all the data, stay behind.*Instead: keep it; for a system with namePrefix/);
        }
    });

    test("a record the older program wrote (selectors of `app` alone) warns once that the update replaces the workloads, and how the StatefulSets keep their pods", () => {
        const older = { ...recordOf(parseStackConfig({})) } as Record<string, unknown>;
        delete older.selector;
        delete older.namePrefix;
        const g = guardChanges(readRecord(JSON.parse(JSON.stringify(older))), parseStackConfig({}));
        expect(g.refusals).toEqual([]);
        expect(g.warnings).toHaveLength(1);
        expect(g.warnings[0]).toMatch(/^streamstack: this stack was deployed by an older program, whose selectors held only the `app` label; this update adds app\.kubernetes\.io\/instance/);
        expect(g.warnings[0]).toContain("replaces StatefulSets cassandra, zookeeper, kafka: before each delete `pulumi up` deletes it with --cascade=orphan (the pods already carry the label), so no pod goes with it; the new StatefulSet takes the running pods back and then replaces them one at a time");
        expect(g.warnings[0]).toContain("replaces Deployments ece573-prj04-writer, ece573-prj05-producer, ece573-prj05-consumer: their pods restart once");
        // What this program records carries the selector keys: the next `up` says nothing.
        expect(change({}, {}).warnings).toEqual([]);
    });

    test("the steps and commands a warning or refusal gives name the stack's own objects", () => {
        const blue = { namePrefix: "blue" };
        const kafka = change({ ...blue, kafka: { replicas: 5 } }, { ...blue, kafka: { replicas: 3 } }).warnings[0];
        expect(kafka).toContain("kafka-reassign-partitions in blue-kafka-0 through kubectl");
        expect(kafka).toContain("`kubectl -n streamstack delete pvc blue-kafka-data-blue-kafka-3 blue-kafka-data-blue-kafka-4`");
        const cassandra = change({ ...blue, cassandra: { replicas: 4 } }, { ...blue, cassandra: { replicas: 3 } }).warnings[0];
        expect(cassandra).toMatch(/`pulumi up` decommissions blue-cassandra-3 before/);
        const storage = change(blue, { ...blue, zookeeper: { storageSize: "2Gi" } }).warnings[0];
        expect(storage).toContain("the provider replaces StatefulSet blue-zookeeper");
        expect(storage).toContain("(blue-zookeeper-data-blue-zookeeper-0:");
        const growth = change({ ...blue, kafka: { replicas: 1, replicationFactor: 1, minInsyncReplicas: 1 } }, { ...blue, kafka: { replicas: 3, replicationFactor: 1, minInsyncReplicas: 1 } }).warnings[0];
        expect(growth).toContain("`kubectl -n streamstack exec blue-kafka-0 -- bash -c '");
    });
});

describe("claim growth checked against the cluster at preview", () => {
    /** The API server as the check reads it: claims of one class per set, and which classes allow expansion. */
    const cluster = (classOf: Record<string, string | undefined>, expandable: string[], calls: string[] = []) => async (args: string[]) => {
        calls.push(args.join(" "));
        if (args.join(" ") === "-n streamstack get pvc -o json") {
            return JSON.stringify({ items: Object.entries(classOf).flatMap(([set, cls]) => [0, 1].map(i => ({ metadata: { name: `${set}-data-${set}-${i}` }, spec: cls ? { storageClassName: cls } : {} }))) });
        }
        const m = /^get storageclass (\S+) -o jsonpath=\{\.allowVolumeExpansion\}$/.exec(args.join(" "));
        if (m) return expandable.includes(m[1]) ? "true" : "";
        throw new Error(`unexpected kubectl ${args.join(" ")}`);
    };

    test("a claim whose class does not allow expansion is refused at preview, naming the class and how to allow it", async () => {
        const g = await checkClaimGrowth(deployedWith({}), parseStackConfig({ kafka: { storageSize: "20Gi" } }), cluster({ kafka: "fixed", cassandra: "standard" }, ["standard"]));
        expect(g.warnings).toEqual([]);
        expect(g.refusals).toEqual([expect.objectContaining({ key: "kafka.storageSize", deployed: "10Gi", wanted: "20Gi", confirmable: false })]);
        expect(new ChangeError(g.refusals).message).toMatch(/streamstack:kafka\.storageSize: "10Gi" -> "20Gi" refused: kafka's claims are of class fixed, which does not allow volume expansion .*Instead: keep 10Gi; if the class's provisioner can grow its volumes, allow it \(`kubectl patch storageclass fixed -p '\{"allowVolumeExpansion": true\}'`\) and preview again/);
    });

    test("claims without a class are refused too; an expandable class passes; nothing that does not grow is read", async () => {
        const none = await checkClaimGrowth(deployedWith({}), parseStackConfig({ zookeeper: { storageSize: "2Gi" } }), cluster({ zookeeper: undefined }, []));
        expect(none.refusals.map(r => r.why)).toEqual([expect.stringMatching(/^zookeeper's claims are of class \(none\), which does not allow volume expansion/)]);
        const ok = await checkClaimGrowth(deployedWith({}), parseStackConfig({ cassandra: { storageSize: "20Gi" } }), cluster({ cassandra: "standard" }, ["standard"]));
        expect(ok).toEqual({ refusals: [], warnings: [] });
        const calls: string[] = [];
        expect(await checkClaimGrowth(deployedWith({}), parseStackConfig({ cassandra: { cpu: "1" } }), cluster({}, [], calls))).toEqual({ refusals: [], warnings: [] });
        expect(await checkClaimGrowth(undefined, parseStackConfig({ cassandra: { storageSize: "20Gi" } }), cluster({}, [], calls))).toEqual({ refusals: [], warnings: [] });
        expect(calls).toEqual([]);
    });

    test("a prefixed stack's claims are the ones read", async () => {
        const blue = { namePrefix: "blue" };
        const g = await checkClaimGrowth(deployedWith(blue), parseStackConfig({ ...blue, kafka: { storageSize: "20Gi" } }), cluster({ kafka: "fixed", "blue-kafka": "standard" }, ["standard"]));
        expect(g).toEqual({ refusals: [], warnings: [] });
    });

    test("a growth refused there is not also described by the guard as going ahead; other keys keep their warnings", () => {
        const config = parseStackConfig({ kafka: { storageSize: "20Gi" }, zookeeper: { storageSize: "2Gi" } });
        expect(guardChanges(deployedWith({}), config).warnings.map(w => w.split(":")[1])).toEqual(["zookeeper.storageSize", "kafka.storageSize"]);
        const g = guardChanges(deployedWith({}), config, ["kafka.storageSize"]);
        expect(g.warnings.map(w => w.split(":")[1])).toEqual(["zookeeper.storageSize"]);
        expect(g.refusals).toEqual([]);
    });

    test("a cluster that cannot be read is a warning that `up` checks again, not a refusal", async () => {
        const g = await checkClaimGrowth(deployedWith({}), parseStackConfig({ kafka: { storageSize: "20Gi" } }), async () => { throw new Error("kubectl -n streamstack get pvc -o json failed: The connection to the server 127.0.0.1:6443 was refused"); });
        expect(g.refusals).toEqual([]);
        expect(g.warnings).toEqual(["streamstack:kafka.storageSize: could not read the storage classes of kafka's claims now (kubectl -n streamstack get pvc -o json failed: The connection to the server 127.0.0.1:6443 was refused): `pulumi up` checks them again before it changes anything"]);
    });
});
