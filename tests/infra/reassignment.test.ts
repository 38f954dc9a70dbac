// The reassignment step `pulumi up` runs before StatefulSet kafka shrinks: its plan, its reading of
// Kafka's tools, and its flow driven through a stand-in for the tools that answers as Kafka 3.3's do.
// Against real brokers: reassignment.it.test.ts; on real pods: tests/e2e/system.test.ts.
import { KafkaTools, parseDescribe, planMoves, reassignLeaving, reassignStep, reassignmentJson, verifyState } from "../../infra";

// `kafka-topics --describe` of cp-kafka 7.3.5 (Kafka 3.3), tabs as it prints them.
const DESCRIBE = [
    "Topic: test\tTopicId: 3bF3y1QhS7a0\tPartitionCount: 3\tReplicationFactor: 3\tConfigs: min.insync.replicas=2",
    "\tTopic: test\tPartition: 0\tLeader: 3\tReplicas: 3,0,1\tIsr: 3,0,1",
    "\tTopic: test\tPartition: 1\tLeader: 0\tReplicas: 0,1,2\tIsr: 0,1,2",
    "\tTopic: test\tPartition: 2\tLeader: 1\tReplicas: 1,3,0\tIsr: 1,0,3",
    "Topic: __consumer_offsets\tTopicId: q0\tPartitionCount: 1\tReplicationFactor: 3\tConfigs: compression.type=producer",
    "\tTopic: __consumer_offsets\tPartition: 0\tLeader: 2\tReplicas: 2,3,1\tIsr: 2,3,1",
].join("\n");

test("kafka-topics --describe is read into each partition's replica list, internal topics included", () => {
    expect(parseDescribe(DESCRIBE)).toEqual([
        { topic: "test", partition: 0, replicas: [3, 0, 1] },
        { topic: "test", partition: 1, replicas: [0, 1, 2] },
        { topic: "test", partition: 2, replicas: [1, 3, 0] },
        { topic: "__consumer_offsets", partition: 0, replicas: [2, 3, 1] },
    ]);
    // Kafka 3.9 adds ELR columns after the ISR.
    expect(parseDescribe("\tTopic: t\tPartition: 7\tLeader: 1\tReplicas: 1,2\tIsr: 1,2\tElr: \tLastKnownElr: ")).toEqual([{ topic: "t", partition: 7, replicas: [1, 2] }]);
    expect(parseDescribe("Error while executing topic command : Timed out waiting for a node assignment.")).toEqual([]);
});

test("the plan replaces only the leaving broker's replicas, in their place, on the least loaded broker not already there", () => {
    const { plan, unplaceable } = planMoves(parseDescribe(DESCRIBE), 3);
    expect(unplaceable).toEqual([]);
    // Loads of 0,1,2 before: 3, 4, 2. test-0 loses its preferred leader 3: broker 2 (least loaded) takes slot 0.
    expect(plan).toEqual([
        { topic: "test", partition: 0, replicas: [2, 0, 1] },
        { topic: "test", partition: 2, replicas: [1, 2, 0] },
        { topic: "__consumer_offsets", partition: 0, replicas: [2, 0, 1] },
    ]);
    expect(plan.every(p => new Set(p.replicas).size === p.replicas.length)).toBe(true);
});

test("a partition with more replicas than brokers stay cannot be planned", () => {
    const { plan, unplaceable } = planMoves(parseDescribe(DESCRIBE), 2);
    expect(plan.map(p => `${p.topic}-${p.partition}`)).toEqual([]);
    expect(unplaceable.map(p => `${p.topic}-${p.partition}`)).toEqual(["test-0", "test-1", "test-2", "__consumer_offsets-0"]);
});

test("the plan is kafka-reassign-partitions' JSON", () => {
    expect(JSON.parse(reassignmentJson([{ topic: "test", partition: 0, replicas: [2, 0, 1] }]))).toEqual({ version: 1, partitions: [{ topic: "test", partition: 0, replicas: [2, 0, 1] }] });
});

test("--verify's lines: completed, still in progress, and stopped short of the plan", () => {
    const out = "Status of partition reassignment:\nReassignment of partition test-0 is completed.\nReassignment of partition test-2 is still in progress.\n" +
        "There is no active reassignment of partition test-1, but replica set is 0,1,2 rather than 0,1,3.\n\nClearing broker-level throttles on brokers 0,1,2,3";
    expect(verifyState(out)).toEqual({ inProgress: ["test-2"], abandoned: ["test-1 (replica set is 0,1,2 rather than 0,1,3)"] });
});

/** Tools that answer from a replica map, as Kafka's do: `--execute` starts moves, `--verify` reports them in progress `rounds` times. */
function standInTools(describe: string, rounds: number, verifyTail = ""): { tools: KafkaTools; calls: string[] } {
    const calls: string[] = [];
    let state = describe;
    let pending = 0;
    let planned = "";
    const tools: KafkaTools = {
        bootstrap: "localhost:9092",
        async run(script) {
            const kind = /--describe|--execute|--verify/.exec(script)![0];
            calls.push(kind);
            if (kind === "--describe") return state;
            if (kind === "--execute") {
                planned = /printf '%s' '(.*?)' > /.exec(script)![1];
                pending = rounds;
                return "Successfully started partition reassignments";
            }
            const moves = JSON.parse(planned).partitions as { topic: string; partition: number; replicas: number[] }[];
            if (pending-- > 0) return moves.map(m => `Reassignment of partition ${m.topic}-${m.partition} is still in progress.`).join("\n") + verifyTail;
            for (const m of moves) {
                state = state.replace(new RegExp(`(Topic: ${m.topic}\\tPartition: ${m.partition}\\tLeader: \\d+\\tReplicas: )[\\d,]+`), `$1${m.replicas.join(",")}`);
            }
            return moves.map(m => `Reassignment of partition ${m.topic}-${m.partition} is completed.`).join("\n");
        },
    };
    return { tools, calls };
}

test("the step plans, executes, polls --verify until every move is complete, and checks that nothing is left on the leaving broker", async () => {
    const { tools, calls } = standInTools(DESCRIBE, 2);
    const logs: string[] = [];
    await reassignLeaving(tools, 4, 3, m => logs.push(m), { pollMs: 1 });
    expect(calls).toEqual(["--describe", "--execute", "--verify", "--verify", "--verify", "--describe"]);
    expect(logs[0]).toBe("moving 3 partition replica set(s) off brokers 3 (test-0, test-2, __consumer_offsets-0) onto brokers 0..2");
    expect(logs[1]).toMatch(/^brokers 3 hold no partition replicas after \d+ s: every reassignment is complete$/);
});

test("a partition that cannot be placed stops the step before anything is executed", async () => {
    const { tools, calls } = standInTools(DESCRIBE, 0);
    await expect(reassignLeaving(tools, 4, 2, () => undefined)).rejects.toThrow(
        /^kafka\.replicas 4 -> 2: 4 partition\(s\) have more replicas than the 2 broker\(s\) that stay \(test-0, test-1, test-2, __consumer_offsets-0, 3 replicas\).*Nothing was moved\.$/);
    expect(calls).toEqual(["--describe"]);
});

test("reassignments still running at the deadline stop the step with the partitions named", async () => {
    const { tools } = standInTools(DESCRIBE, 1_000_000);
    await expect(reassignLeaving(tools, 4, 3, () => undefined, { timeoutMs: 20, pollMs: 5 })).rejects.toThrow(
        /^kafka\.replicas 4 -> 3: 3 reassignment\(s\) not complete after \d+ s \(test-0, test-2, __consumer_offsets-0\); they go on in the cluster, and the StatefulSet was left as it was/);
});

test("a reassignment replaced by another stops the step at once", async () => {
    const { tools } = standInTools(DESCRIBE, 1, "\nThere is no active reassignment of partition test-0, but replica set is 3,0,1 rather than 2,0,1.");
    await expect(reassignLeaving(tools, 4, 3, () => undefined, { pollMs: 1 })).rejects.toThrow(/^kafka\.replicas 4 -> 3: 1 reassignment\(s\) stopped short of the plan \(test-0 \(replica set is 3,0,1 rather than 2,0,1\)\)/);
});

test("the hook's step does nothing unless the StatefulSet's replicas go down", async () => {
    let called = 0;
    const step = reassignStep("ns", "kafka", () => async () => { called++; return DESCRIBE; });
    const args = (from: number, to: number) => ({ urn: "u", id: "kafka", name: "kafka", type: "kubernetes:apps/v1:StatefulSet", oldInputs: { spec: { replicas: from } }, newInputs: { spec: { replicas: to } } });
    await step(args(3, 3));
    await step(args(3, 4));
    await step({ urn: "u", id: "kafka", name: "kafka", type: "kubernetes:apps/v1:StatefulSet", newInputs: { spec: { replicas: 3 } } });
    expect(called).toBe(0);
});

test("the step runs Kafka's tools in the set's pod 0 (blue-kafka-0 for prefix blue) with a heap of their own, not the broker's", async () => {
    const seen: string[][] = [];
    const step = reassignStep("ns", "blue-kafka", () => async a => { seen.push(a); return ""; });
    await step({ urn: "u", id: "kafka", name: "kafka", type: "kubernetes:apps/v1:StatefulSet", oldInputs: { spec: { replicas: 4 } }, newInputs: { spec: { replicas: 3 } } });
    expect(seen).toEqual([["-n", "ns", "exec", "blue-kafka-0", "-c", "kafka", "--", "bash", "-c", "export KAFKA_HEAP_OPTS=-Xmx128M; kafka-topics --bootstrap-server localhost:9092 --describe"]]);
});
