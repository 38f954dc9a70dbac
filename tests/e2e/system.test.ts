// The whole system on real pods: the program's objects (taken under Pulumi's mocks, as in the deploy
// suite) applied server-side to the local control plane, whose real node (scripts/toolchain/node.sh:
// kubelet, containerd, CNI, kube-proxy, CoreDNS) runs them. Servers run the stand-in images of
// tests/images (STREAMSTACK_E2E_IMAGES=official runs the official ones where they can be pulled);
// the apps run the images the program builds. Only image references and resources are overridden.
// The tests share one deployment and run in order: each leaves the system whole for the next.
import { apply, buildAndPush, kubectl, kubectlOk, manifests } from "../deploy/kube";
import { render } from "../program/render";
import { deployStack, loadConfig } from "../../infra";
import {
    createNamespace, eventually, exec, hostPid, LogStream, metric, metricsText, podMemory, pods, podSummary, samples,
    serverImages, sleep, waitPodsReady,
} from "./cluster";

const ns = `e2e-${process.pid}`;
const nodeBase = process.env.STREAMSTACK_NODE_BASE ?? "streamstack/node-base:20";
const MIN = 60_000;
const WRITER = "ece573-prj04-writer";
const PRODUCER = "ece573-prj05-producer";
const CONSUMER = "ece573-prj05-consumer";

// Requests fit a 2-core node and the servers' limits let the JVMs burst. The apps get 100m: at their
// default 250m the writer alone drove 4 Cassandra nodes to a load average of 30 on 2 cores.
const resources = {
    cassandra: { cpu: "100m", cpuLimit: "1500m" },
    zookeeper: { cpu: "50m", cpuLimit: "500m" },
    kafka: { cpu: "100m", cpuLimit: "1" },
    writer: { cpu: "50m", cpuLimit: "100m" },
    clients: { cpu: "50m", cpuLimit: "100m" },
};
let base: Record<string, any>;
let appliedAt = 0;
const timings: [string, string][] = [];

function configWith(overrides: Record<string, Record<string, unknown>> = {}): Record<string, any> {
    const out: Record<string, any> = { ...base };
    for (const [k, v] of Object.entries(overrides)) out[k] = { ...(base[k] ?? {}), ...v };
    return out;
}

async function applyConfig(config: Record<string, any>): Promise<void> {
    const r = apply(await manifests("e2e", config));
    if (r.status !== 0) throw new Error(`apply failed: ${r.stderr}`);
}

const podOf = (app: string) => {
    const p = pods(ns, `app=${app}`).filter(p => p.phase === "Running");
    if (p.length !== 1) throw new Error(`expected one running ${app} pod, found ${p.length}:\n${podSummary(ns)}`);
    return p[0].name;
};
const nodetoolStatus = (pod = "cassandra-0") => exec(ns, pod, ["nodetool", "status"]);
const upNormal = (status: string) => status.split("\n").filter(l => /^UN\s/.test(l)).map(l => l.split(/\s+/)[1]);
const describeTopic = (topic: string) => exec(ns, "kafka-0", ["kafka-topics", "--bootstrap-server", "localhost:9092", "--describe", "--topic", topic]);
const brokerIds = () => {
    const out = exec(ns, "zookeeper-0", ["zookeeper-shell", "localhost:2181", "ls", "/brokers/ids"]);
    return out.trim().split("\n").pop()!;
};

beforeAll(async () => {
    const images = {
        writer: buildAndPush("writer", "ece573-prj04-writer", nodeBase),
        clients: buildAndPush("clients", "ece573-prj05-clients", nodeBase),
    };
    const servers = serverImages();
    base = {
        namespace: ns,
        images,
        cassandra: { ...servers.cassandra, ...resources.cassandra },
        zookeeper: { ...servers.zookeeper, ...resources.zookeeper },
        kafka: { ...servers.kafka, ...resources.kafka },
        writer: resources.writer,
        clients: resources.clients,
    };
    createNamespace(ns);
    appliedAt = Date.now();
    await applyConfig(base);
}, 30 * MIN);

afterAll(() => {
    if (process.env.STREAMSTACK_E2E_KEEP !== "1") kubectl(["delete", "namespace", ns, "--wait=false"]);
});

test("every pod of the reference topology becomes Ready on the real node", async () => {
    const expected: [string, number][] = [["cassandra", 3], ["zookeeper", 1], ["kafka", 3], [WRITER, 1], [PRODUCER, 1], [CONSUMER, 1]];
    for (const [app, n] of expected) await waitPodsReady(ns, `app=${app}`, n, 25 * MIN);
    const all = pods(ns);
    const node = kubectlOk(["get", "nodes", "-l", "streamstack.local/real-node=true", "-o", "jsonpath={.items[0].metadata.name}"]);
    expect(all.every(p => p.node === node)).toBe(true);
    // A pod that went NotReady again since (a probe's blip) has no readySince: it does not count here.
    const readyAt = Math.max(...all.filter(p => p.readySince).map(p => Date.parse(p.readySince!)));
    timings.push(["apply -> all 10 pods Ready", `${Math.round((readyAt - appliedAt) / 1000)} s`]);
}, 30 * MIN);

test("nodetool status in a Cassandra pod lists 3 nodes Up/Normal, the pods' own addresses", () => {
    const ips = pods(ns, "app=cassandra").map(p => p.ip).sort();
    expect(upNormal(nodetoolStatus()).sort()).toEqual(ips);
});

test("ZooKeeper lists broker ids [0, 1, 2]", () => {
    expect(brokerIds()).toBe("[0, 1, 2]");
});

test("the clients' topic has 4 partitions, RF 3, min ISR 2, and leaders on every broker", async () => {
    const text = await eventually("topic test described", 5 * MIN, () => describeTopic("test"), t => /PartitionCount:\s*4/.test(t));
    expect(text).toMatch(/ReplicationFactor:\s*3/);
    expect(text).toMatch(/min\.insync\.replicas=2/);
    const leaders = [...text.matchAll(/Leader:\s*(\d+)/g)].map(m => Number(m[1]));
    expect(leaders).toHaveLength(4);
    expect(new Set(leaders)).toEqual(new Set([0, 1, 2]));
});

test("every DNS name the program computed resolves inside a pod, pod names to their pod's address", async () => {
    const rendered = await render("e2e", base, () => deployStack(loadConfig()) as any);
    const outputs = rendered.outputs as Record<string, string>;
    const hostOf = (hostPort: string) => hostPort.split(":")[0];
    const names = new Set<string>([
        hostOf(outputs.cassandraContactPoint),
        ...outputs.kafkaBootstrapServers.split(",").map(hostOf),
        ...outputs.zookeeperConnect.split(",").map(hostOf),
        ...rendered.get("kubernetes:apps/v1:StatefulSet", "cassandra").spec.template.spec.containers[0].env
            .find((e: any) => e.name === "CASSANDRA_SEEDS").value.split(","),
    ]);
    const byName = Object.fromEntries(pods(ns).map(p => [p.name, p.ip]));
    const writer = podOf(WRITER);
    for (const name of names) {
        const answer = exec(ns, writer, ["getent", "ahostsv4", name]);
        const addresses = new Set(answer.trim().split("\n").map(l => l.split(/\s+/)[0]));
        const pod = name.split(".")[0];
        if (byName[pod]) expect([name, [...addresses]]).toEqual([name, [byName[pod]]]);
        else expect([name, addresses.size]).toEqual([name, pods(ns, `app=${name.split(".")[0].replace(/-service$/, "")}`).length]);
    }
});

test("the apps started before their servers answered and were not Ready until they did", () => {
    const started = (pod: string) => {
        const status = kubectlOk(["-n", ns, "get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].state.running.startedAt}"]);
        return Date.parse(status);
    };
    const readyOf = (app: string) => Math.min(...pods(ns, `app=${app}`).map(p => Date.parse(p.readySince!)));
    const firstCassandra = readyOf("cassandra");
    const writer = pods(ns, `app=${WRITER}`)[0];
    // The writer's container ran while Cassandra was not serving: /readyz said no until it was.
    expect(started(writer.name)).toBeLessThan(firstCassandra);
    expect(Date.parse(writer.readySince!)).toBeGreaterThanOrEqual(firstCassandra);
    // Never killed by their own probes while working or waiting.
    for (const app of [WRITER, PRODUCER, CONSUMER]) expect([app, pods(ns, `app=${app}`)[0].restarts]).toEqual([app, 0]);
    const producer = pods(ns, `app=${PRODUCER}`)[0];
    expect(Date.parse(producer.readySince!)).toBeGreaterThanOrEqual(readyOf("kafka"));
});

test("the writer writes at QUORUM in its pod and the reader reports missing 0", async () => {
    const writer = podOf(WRITER);
    const logs = new LogStream(ns, writer);
    try {
        const line = await logs.waitFor("the writer's progress line", 10 * MIN, l => / inserted rows to seq \d+$/.test(l.msg ?? ""));
        expect(line.msg).toMatch(/^project04: inserted rows to seq \d+$/);
    } finally { logs.stop(); }
    const env = JSON.parse(kubectlOk(["-n", ns, "get", "pod", writer, "-o", "jsonpath={.spec.containers[0].env}"]));
    expect(env.find((e: any) => e.name === "CONSISTENCY").value).toBe("QUORUM");
    // The reader: the writer's image with ROLE=reader, as a pod of its own beside the writer.
    const spec = JSON.parse(kubectlOk(["-n", ns, "get", "pod", writer, "-o", "json"]));
    const container = spec.spec.containers[0];
    const reader = {
        apiVersion: "v1", kind: "Pod",
        metadata: { name: "reader", namespace: ns },
        spec: {
            restartPolicy: "Never", enableServiceLinks: false, securityContext: spec.spec.securityContext,
            containers: [{
                name: "reader", image: container.image, securityContext: container.securityContext,
                env: [...container.env.filter((e: any) => e.name !== "ROLE"), { name: "ROLE", value: "reader" }, { name: "READER_INTERVAL_MS", value: "2000" }],
                volumeMounts: container.volumeMounts,
            }],
            volumes: spec.spec.volumes,
        },
    };
    kubectlOk(["apply", "-f", "-"], JSON.stringify(reader));
    try {
        await eventually("reader running", 5 * MIN, () => pods(ns).find(p => p.name === "reader")?.phase, p => p === "Running");
        const logs2 = new LogStream(ns, "reader");
        try {
            const line = await logs2.waitFor("a reader line past seq 5000", 10 * MIN, l => typeof l.lastSeq === "number" && l.lastSeq >= 5000);
            expect(line.msg).toBe(`project04: seq ${line.lastSeq} with ${line.rows} rows, missing 0`);
            expect(line.missing).toBe(0);
        } finally { logs2.stop(); }
    } finally {
        kubectl(["-n", ns, "delete", "pod", "reader", "--wait=false"]);
    }
}, 20 * MIN);

test("the consumer group receives every message the producer had acknowledged", async () => {
    const producer = podOf(PRODUCER);
    await eventually("the producer past 20,000 messages", 10 * MIN, () => metric(metricsText(ns, producer), "clients_messages_sent_total") ?? 0, n => n >= 20_000);
    const producerLogs = new LogStream(ns, producer);
    let stopped: any;
    try {
        // Paused through config, as a user would: SIGTERM, in-flight sends finish, a summary line.
        await applyConfig(configWith({ clients: { ...resources.clients, producerReplicas: 0 } }));
        stopped = await producerLogs.waitFor("the producer's summary", 3 * MIN, l => / producer stopped after \d+ messages published$/.test(l.msg ?? ""));
    } finally { producerLogs.stop(); }
    const consumer = podOf(CONSUMER);
    await eventually("the consumer's lag at 0 on every partition", 5 * MIN, () => [...samples(metricsText(ns, consumer), "clients_consumer_lag").values()], lags => lags.length === 4 && lags.every(l => l === 0));
    const consumerLogs = new LogStream(ns, consumer);
    let summary: any;
    try {
        await applyConfig(configWith({ clients: { ...resources.clients, producerReplicas: 0, consumerReplicas: 0 } }));
        summary = await consumerLogs.waitFor("the consumer's summary", 3 * MIN, l => / consumer stopped after \d+ messages received$/.test(l.msg ?? ""));
    } finally { consumerLogs.stop(); }
    const seen = summary.byProducer[stopped.producerId];
    console.log(`producer ${stopped.producerId}: ${stopped.published} acknowledged; consumer: ${JSON.stringify(seen)}`);
    expect(stopped.published).toBeGreaterThanOrEqual(20_000);
    expect(seen.distinct).toBe(stopped.published);
    expect(seen.gaps).toBe(0);
    await applyConfig(base);
    for (const app of [PRODUCER, CONSUMER]) await waitPodsReady(ns, `app=${app}`, 1, 5 * MIN);
}, 30 * MIN);

test("a Cassandra pod whose process is stopped goes NotReady, and Ready again when it resumes", async () => {
    const ready = () => pods(ns, "app=cassandra").find(p => p.name === "cassandra-2")!.ready;
    const pid = hostPid(ns, "cassandra-2");
    process.kill(pid, "SIGSTOP");
    try {
        // Each probe runs nodetool (a JVM) for up to 20 s, and three must fail: minutes on a loaded node.
        await eventually("cassandra-2 NotReady", 5 * MIN, ready, r => r === false);
    } finally {
        process.kill(pid, "SIGCONT");
    }
    await eventually("cassandra-2 Ready again", 5 * MIN, ready, r => r === true);
    // Frozen, not restarted: liveness held while readiness said "do not send me traffic".
    expect(pods(ns, "app=cassandra").find(p => p.name === "cassandra-2")!.restarts).toBe(0);
}, 10 * MIN);

test("a broker's and ZooKeeper's container restarts keep topics, offsets, broker ids and data", async () => {
    const clusterId = (pod: string) => /cluster\.id=(\S+)/.exec(exec(ns, pod, ["cat", "/var/lib/kafka/data/meta.properties"]))![1];
    const offsets = () => exec(ns, "kafka-1", ["kafka-consumer-groups", "--bootstrap-server", "localhost:9092", "--describe", "--group", "ece573-prj05-consumer"]);
    const committed = (text: string) => [...text.matchAll(/^\S+\s+test\s+(\d+)\s+(\d+)/gm)].map(m => [Number(m[1]), Number(m[2])]);
    const before = { id: clusterId("kafka-0"), myid: exec(ns, "zookeeper-0", ["cat", "/var/lib/zookeeper/data/myid"]).trim(), topics: exec(ns, "kafka-0", ["ls", "/var/lib/kafka/data"]) };
    const offsetsBefore = committed(await eventually("committed offsets", 3 * MIN, offsets, t => committed(t).length === 4));
    expect(before.topics).toMatch(/^test-0$/m);

    // Restart the containers, not the pods: what a crash or OOM kill does. PID 1 is the JVM.
    const restartsOf = (pod: string) => pods(ns).find(p => p.name === pod)!.restarts;
    for (const pod of ["zookeeper-0", "kafka-0"]) {
        const was = restartsOf(pod);
        kubectl(["-n", ns, "exec", pod, "--", "kill", "1"]);
        await eventually(`${pod} restarted`, 5 * MIN, () => restartsOf(pod), n => n === was + 1);
        await waitPodsReady(ns, `statefulset.kubernetes.io/pod-name=${pod}`, 1, 10 * MIN);
    }
    expect(exec(ns, "zookeeper-0", ["cat", "/var/lib/zookeeper/data/myid"]).trim()).toBe(before.myid);
    await eventually("broker ids after the restarts", 5 * MIN, brokerIds, ids => ids === "[0, 1, 2]");
    // A ZooKeeper that lost its data would hand out a new cluster id, which the brokers refuse.
    expect(clusterId("kafka-0")).toBe(before.id);
    expect(exec(ns, "kafka-0", ["ls", "/var/lib/kafka/data"])).toMatch(/^test-0$/m);
    expect(describeTopic("test")).toMatch(/PartitionCount:\s*4/);
    const after = committed(offsets());
    for (const [partition, offset] of offsetsBefore) {
        expect(after.find(([p]) => p === partition)![1]).toBeGreaterThanOrEqual(offset);
    }
}, 30 * MIN);

test("cassandra.replicas 3 -> 4: the new node joins Up/Normal while the writer keeps writing", async () => {
    const writer = podOf(WRITER);
    const rows = () => metric(metricsText(ns, writer), "writer_rows_written_total") ?? 0;
    const before = rows();
    await applyConfig(configWith({ cassandra: { ...base.cassandra, replicas: 4 } }));
    base.cassandra = { ...base.cassandra, replicas: 4 };
    await waitPodsReady(ns, "app=cassandra", 4, 20 * MIN);
    const ips = pods(ns, "app=cassandra").map(p => p.ip).sort();
    expect(upNormal(nodetoolStatus("cassandra-3")).sort()).toEqual(ips);
    // Same writer pod, never restarted, and it went on writing through the join.
    expect(podOf(WRITER)).toBe(writer);
    const during = rows();
    expect(during).toBeGreaterThan(before);
    await eventually("the writer writing after the join", 3 * MIN, rows, n => n > during);
    expect(pods(ns, `app=${WRITER}`)[0].restarts).toBe(0);
}, 30 * MIN);

test("clients.partitions 4 -> 8: the producer adds partitions and the consumer group receives from all 8", async () => {
    await applyConfig(configWith({ clients: { ...resources.clients, partitions: 8 } }));
    base.clients = { ...resources.clients, partitions: 8 };
    await eventually("topic test with 8 partitions", 10 * MIN, () => describeTopic("test"), t => /PartitionCount:\s*8/.test(t));
    await waitPodsReady(ns, `app=${CONSUMER}`, 1, 10 * MIN);
    const consumer = await eventually("one consumer pod", 5 * MIN, () => podOf(CONSUMER), () => true);
    const received = await eventually("messages from all 8 partitions", 10 * MIN,
        () => [...samples(metricsText(ns, consumer), "clients_consumer_lag").keys()].map(k => Number(/partition="(\d+)"/.exec(k)![1])).sort((a, b) => a - b),
        parts => parts.length === 8);
    expect(received).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
}, 30 * MIN);

test("rates in pods beside the loopback bench, and each pod's memory (printed, not asserted)", async () => {
    const rate = async (pod: string, name: string) => {
        const a = metric(metricsText(ns, pod), name) ?? 0;
        const t = Date.now();
        await sleep(20_000);
        return ((metric(metricsText(ns, pod), name) ?? 0) - a) / ((Date.now() - t) / 1000);
    };
    const writerRate = await rate(podOf(WRITER), "writer_rows_written_total");
    const producerRate = await rate(podOf(PRODUCER), "clients_messages_sent_total");
    expect(writerRate).toBeGreaterThan(0);
    expect(producerRate).toBeGreaterThan(0);
    const node = pods(ns)[0].node;
    const memory = await eventually("the kubelet's stats for every pod", 2 * MIN, () => podMemory(node, ns), m => m.size >= pods(ns).length);
    const table = [
        "| measure | in pods (this node) | loopback (`npm run bench`, README) |",
        "| --- | --- | --- |",
        `| writer rows/s (QUORUM, RF 3, 4 nodes; CPU limit 100m) | ${Math.round(writerRate).toLocaleString("en")} | 71,332 (1 node) |`,
        `| producer msgs/s (acks=all, 8 partitions; CPU limit 100m) | ${Math.round(producerRate).toLocaleString("en")} | 63,604 (4 partitions) |`,
        ...timings.map(([k, v]) => `| ${k} | ${v} | |`),
        "",
        "| pod | memory (working set) |",
        "| --- | --- |",
        ...[...memory.entries()].sort().map(([pod, bytes]) => `| ${pod} | ${Math.round(bytes / 2 ** 20)} MiB |`),
    ];
    console.log(table.join("\n"));
}, 10 * MIN);
