// The program's objects against a real Kubernetes API server (kube-apiserver 1.32 with simulated
// kwok nodes, scripts/toolchain/controlplane.sh): accepted under strict validation, rolled out, read
// back equal to the reference, and each override changes exactly what a reviewer expects.
// The Pulumi engine itself cannot be built here (the Go module proxy refuses its modules), so the
// objects are taken from the program under Pulumi's mocks and applied with kubectl server-side apply.
import * as fs from "fs";
import * as path from "path";
import { apply, buildAndPush, getJson, kubectl, kubectlOk, manifests } from "./kube";

const ns = `deploytest-${process.pid}`;
const nodeBase = process.env.STREAMSTACK_NODE_BASE ?? "streamstack/node-base:20";
let images: { writer: string; clients: string };
let base: Record<string, any>;

/** Only what differs between live objects and the manifests, as "<kind> <name>: -old / +new" lines. */
function diffOf(objects: any[]): string[] {
    const r = kubectl(["diff", "--server-side", "--field-manager=streamstack", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));
    if (r.status > 1) throw new Error(`kubectl diff failed: ${r.stderr}`);
    const out: string[] = [];
    let object = "";
    let envName = "";
    for (const line of r.stdout.split("\n")) {
        const header = /^diff -u -N \S+\/([^/\s]+)\s/.exec(line);
        if (header) { object = header[1].replace(`.${ns}.`, " "); continue; }
        const name = /^ \s*- name: (\S+)$/.exec(line);
        if (name) envName = name[1];
        if (/^(\+\+\+|---) /.test(line) || !/^[+-]/.test(line)) continue;
        if (/^[+-]\s+generation: /.test(line)) continue; // the API server's own counter
        // An env value's own line does not say which variable it is: name it.
        const where = /^[+-]\s+value: /.test(line) ? ` env ${envName}` : "";
        out.push(`${object}${where}: ${line.replace(/\s+/g, " ")}`);
    }
    return out;
}

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "fixtures", `${name}.diff`), "utf8").trim().split("\n");

beforeAll(async () => {
    images = {
        writer: buildAndPush("writer", "ece573-prj04-writer", nodeBase),
        clients: buildAndPush("clients", "ece573-prj05-clients", nodeBase),
    };
    base = { namespace: ns, images };
    // Simulated nodes only: a real node (node.sh) could not pull the official server images here.
    kubectlOk(["create", "namespace", ns]);
    kubectlOk(["annotate", "namespace", ns, "scheduler.alpha.kubernetes.io/node-selector=type=kwok"]);
    const r = apply(await manifests("deploytest", base));
    if (r.status !== 0) throw new Error(`apply failed: ${r.stderr}`);
});

afterAll(() => {
    kubectl(["delete", "namespace", ns, "--wait=false"]);
});

test("the API server accepts every object under strict validation and everything rolls out", () => {
    for (const sts of ["cassandra", "zookeeper", "kafka"]) {
        kubectlOk(["-n", ns, "rollout", "status", `statefulset/${sts}`, "--timeout=300s"]);
    }
    for (const d of ["ece573-prj04-writer", "ece573-prj05-producer", "ece573-prj05-consumer"]) {
        kubectlOk(["-n", ns, "rollout", "status", `deployment/${d}`, "--timeout=300s"]);
    }
    const claims = getJson(["-n", ns, "get", "pvc"]).items;
    expect(claims.map((c: any) => c.metadata.name).sort()).toEqual([
        "cassandra-data-cassandra-0", "cassandra-data-cassandra-1", "cassandra-data-cassandra-2",
        "kafka-data-kafka-0", "kafka-data-kafka-1", "kafka-data-kafka-2",
        "zookeeper-data-zookeeper-0",
    ]);
    for (const c of claims) expect(c.status.phase).toBe("Bound");
});

test("objects read back from the API server carry the reference's names, ports, env, claims and DNS names", () => {
    const cass = getJson(["-n", ns, "get", "statefulset", "cassandra"]);
    expect(cass.spec.serviceName).toBe("cassandra-service");
    expect(cass.status.readyReplicas).toBe(3);
    const env = Object.fromEntries(cass.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    expect(env.CASSANDRA_SEEDS).toBe(`cassandra-0.cassandra-service.${ns}.svc.cluster.local`);
    expect(env.CASSANDRA_CLUSTER_NAME).toBe("ece573-prj04");
    expect(cass.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe("10Gi");
    const svc = getJson(["-n", ns, "get", "service", "kafka-service"]);
    expect(svc.spec.clusterIP).toBe("None");
    expect(svc.spec.ports[0].port).toBe(9092);
    // The headless Service lists every broker pod, Ready or not.
    const endpoints = getJson(["-n", ns, "get", "endpoints", "kafka-service"]);
    const hosts = endpoints.subsets.flatMap((s: any) => [...(s.addresses ?? []), ...(s.notReadyAddresses ?? [])]).map((a: any) => a.hostname).sort();
    expect(hosts).toEqual(["kafka-0", "kafka-1", "kafka-2"]);
    const producer = getJson(["-n", ns, "get", "deployment", "ece573-prj05-producer"]);
    const penv = Object.fromEntries(producer.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    expect(penv.KAFKA_BROKERS).toBe([0, 1, 2].map(i => `kafka-${i}.kafka-service.${ns}.svc.cluster.local:9092`).join(","));
    expect(producer.spec.template.spec.containers[0].image).toBe(images.clients);
    expect(getJson(["-n", ns, "get", "pdb", "cassandra"]).spec.maxUnavailable).toBe(1);
});

test("applying the same config again changes nothing", async () => {
    expect(diffOf(await manifests("deploytest", base))).toEqual([]);
});

test("cassandra.replicas 3 -> 5 is one in-place change of StatefulSet cassandra", async () => {
    const objects = await manifests("deploytest", { ...base, cassandra: { replicas: 5 } });
    expect(diffOf(objects)).toEqual(fixture("cassandra-replicas"));
});

test("clients.partitions 4 -> 8 changes only the producer and consumer Deployments", async () => {
    const objects = await manifests("deploytest", { ...base, clients: { partitions: 8 } });
    expect(diffOf(objects)).toEqual(fixture("clients-partitions"));
});

test("a new writer build changes only the writer Deployment's image", async () => {
    const rebuilt = buildAndPush("writer", "ece573-prj04-writer", nodeBase, { "streamstack.test/rebuild": String(Date.now()) });
    expect(rebuilt).not.toBe(images.writer);
    const changed = diffOf(await manifests("deploytest", { ...base, images: { ...images, writer: rebuilt } }));
    expect(changed).toEqual([
        `apps.v1.Deployment ece573-prj04-writer: - image: ${images.writer}`,
        `apps.v1.Deployment ece573-prj04-writer: + image: ${rebuilt}`,
    ]);
});

test("a storage size change cannot be applied in place: the StatefulSet must be replaced", async () => {
    const objects = await manifests("deploytest", { ...base, cassandra: { storageSize: "20Gi" } });
    const r = apply(objects.filter(o => o.kind === "StatefulSet" && o.metadata.name === "cassandra"), ["--dry-run=server"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/updates to statefulset spec for fields other than .* are forbidden/);
});

test("an invalid config fails before any object exists", async () => {
    const other = `${ns}-bad`;
    await expect(manifests("deploytest", { namespace: other, cassandra: { replicas: 0 } })).rejects.toThrow(/streamstack:cassandra\.replicas: must be an integer >= 1/);
    expect(kubectl(["get", "namespace", other]).status).not.toBe(0);
});

test("deleting the namespace removes everything the stack created", () => {
    kubectlOk(["delete", "namespace", ns, "--timeout=300s"]);
    expect(kubectl(["get", "namespace", ns]).status).not.toBe(0);
    expect(kubectlOk(["get", "statefulsets,deployments,services,pdb,pvc", "-A", "-o", "name", "--field-selector", `metadata.namespace=${ns}`]).trim()).toBe("");
});
