// The program's objects against a real Kubernetes API server (kube-apiserver 1.32 with simulated
// kwok nodes, scripts/toolchain/controlplane.sh): accepted under strict validation, rolled out, read
// back equal to the reference, and each override changes exactly what a reviewer expects.
// The Pulumi engine itself cannot be built here (the Go module proxy refuses its modules), so the
// objects are taken from the program under Pulumi's mocks and applied with kubectl server-side apply.
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { checkClaimGrowth, expansionStep, INSTANCE_LABEL, parseStackConfig, readRecord, recordOf } from "../../infra";
import { envOf } from "../program/render";
import { apply, buildAndPush, getJson, kubeconfig, kubectl, kubectlOk, manifests } from "./kube";

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

/** Pod name -> uid of the pods whose controller is `kind/name`. */
function podsOf(namespace: string, kind: string, name: string): Record<string, string> {
    const owner = getJson(["-n", namespace, "get", kind, name]).metadata.uid;
    const pods = getJson(["-n", namespace, "get", "pods"]).items.filter((p: any) => (p.metadata.ownerReferences ?? []).some((o: any) => o.controller && o.uid === owner));
    return Object.fromEntries(pods.map((p: any) => [p.metadata.name, p.metadata.uid]));
}

/** Hostnames behind a headless Service, Ready or not. */
function serviceHosts(namespace: string, service: string): string[] {
    const endpoints = getJson(["-n", namespace, "get", "endpoints", service]);
    return (endpoints.subsets ?? []).flatMap((s: any) => [...(s.addresses ?? []), ...(s.notReadyAddresses ?? [])]).map((a: any) => a.hostname).sort();
}

test("a second stack (namePrefix blue) shares the namespace: its own objects and pods, and the first stack's stay as they were", async () => {
    const devPods = Object.fromEntries(["cassandra", "zookeeper", "kafka"].map(s => [s, podsOf(ns, "statefulset", s)]));
    // The second stack leaves the namespace to the first (README: "Two stacks in one namespace").
    const blue = await manifests("second", { ...base, namePrefix: "blue", createNamespace: false, cassandra: { replicas: 2 }, writer: { replicationFactor: 2 } });
    expect(blue.filter(o => o.kind === "Namespace")).toEqual([]);
    const r = apply(blue);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    for (const sts of ["blue-cassandra", "blue-zookeeper", "blue-kafka"]) kubectlOk(["-n", ns, "rollout", "status", `statefulset/${sts}`, "--timeout=300s"]);
    for (const d of ["blue-ece573-prj04-writer", "blue-ece573-prj05-producer", "blue-ece573-prj05-consumer"]) kubectlOk(["-n", ns, "rollout", "status", `deployment/${d}`, "--timeout=300s"]);

    // Each Service, StatefulSet and budget counts its own stack's pods only.
    expect(serviceHosts(ns, "cassandra-service")).toEqual(["cassandra-0", "cassandra-1", "cassandra-2"]);
    expect(serviceHosts(ns, "blue-cassandra-service")).toEqual(["blue-cassandra-0", "blue-cassandra-1"]);
    expect(serviceHosts(ns, "blue-kafka-service")).toEqual(["blue-kafka-0", "blue-kafka-1", "blue-kafka-2"]);
    expect(Object.keys(podsOf(ns, "statefulset", "blue-cassandra")).sort()).toEqual(["blue-cassandra-0", "blue-cassandra-1"]);
    expect(getJson(["-n", ns, "get", "pdb", "cassandra"]).status.expectedPods).toBe(3);
    expect(getJson(["-n", ns, "get", "pdb", "blue-cassandra"]).status.expectedPods).toBe(2);
    const claims = getJson(["-n", ns, "get", "pvc"]).items.map((c: any) => c.metadata.name).filter((n: string) => n.startsWith("blue-"));
    expect(claims.sort()).toEqual(["blue-cassandra-data-blue-cassandra-0", "blue-cassandra-data-blue-cassandra-1",
        "blue-kafka-data-blue-kafka-0", "blue-kafka-data-blue-kafka-1", "blue-kafka-data-blue-kafka-2", "blue-zookeeper-data-blue-zookeeper-0"]);
    expect(envOf(getJson(["-n", ns, "get", "deployment", "blue-ece573-prj05-producer"])).KAFKA_BROKERS)
        .toBe([0, 1, 2].map(i => `blue-kafka-${i}.blue-kafka-service.${ns}.svc.cluster.local:9092`).join(","));

    // The first stack: nothing to apply, not one pod replaced; then the second goes (its `pulumi destroy`) and the first still stands.
    expect(diffOf(await manifests("deploytest", base))).toEqual([]);
    expect(Object.fromEntries(["cassandra", "zookeeper", "kafka"].map(s => [s, podsOf(ns, "statefulset", s)]))).toEqual(devPods);
    kubectlOk(["delete", "--wait=true", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: blue }));
    expect(Object.fromEntries(["cassandra", "zookeeper", "kafka"].map(s => [s, podsOf(ns, "statefulset", s)]))).toEqual(devPods);
    expect(kubectlOk(["-n", ns, "get", "statefulsets,deployments,services,pdb", "-o", "name"]).split("\n").filter(n => n.includes("blue-"))).toEqual([]);
});

/** An object as the program before the instance joined the selectors made it: `app` alone wherever pods are selected. */
function asOlderProgramMadeIt(o: any): any {
    const copy = JSON.parse(JSON.stringify(o));
    const appOnly = (s: Record<string, string>) => ({ app: s.app });
    if (copy.kind === "Service") copy.spec.selector = appOnly(copy.spec.selector);
    if (copy.kind === "PodDisruptionBudget" || copy.kind === "StatefulSet") copy.spec.selector.matchLabels = appOnly(copy.spec.selector.matchLabels);
    if (copy.kind === "StatefulSet") {
        const pod = copy.spec.template.spec;
        for (const c of pod.topologySpreadConstraints) c.labelSelector.matchLabels = appOnly(c.labelSelector.matchLabels);
        for (const t of pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution) t.podAffinityTerm.labelSelector.matchLabels = appOnly(t.podAffinityTerm.labelSelector.matchLabels);
    }
    return copy;
}

/**
 * Watches the pods of a namespace and keeps, per StatefulSet, the fewest of its pods that were up at any
 * moment (a pod is down from the moment its deletion begins).
 */
function watchPods(namespace: string): { fewestUp: () => Promise<Record<string, number>>; stop: () => void } {
    const up = new Map<string, string>(getJson(["-n", namespace, "get", "pods"]).items.map((p: any) => [p.metadata.name, p.metadata.uid])); // pod -> uid
    const watch = spawn("kubectl", ["-n", namespace, "get", "pods", "--watch-only", "--output-watch-events", "-o",
        'jsonpath={.type} {.object.metadata.name} {.object.metadata.uid} {.object.metadata.deletionTimestamp}{"\\n"}'], { env: { ...process.env, KUBECONFIG: kubeconfig } });
    const fewest: Record<string, number> = {};
    const setOf = (pod: string) => pod.replace(/-\d+$/, "");
    let rest = "";
    watch.stdout.on("data", chunk => {
        const lines = (rest + String(chunk)).split("\n");
        rest = lines.pop()!;
        for (const line of lines) {
            const [type, pod, uid, deleting] = line.split(" ");
            if (type === "DELETED" || deleting) up.delete(pod);
            else up.set(pod, uid);
            const set = setOf(pod);
            const count = [...up.keys()].filter(p => setOf(p) === set).length;
            fewest[set] = Math.min(fewest[set] ?? Infinity, count);
        }
    });
    // The test's kubectl calls are synchronous: the events wait in the pipe until the test awaits.
    return { fewestUp: async () => { await new Promise(r => setTimeout(r, 3000)); return { ...fewest }; }, stop: () => watch.kill() };
}

test("upgrading a stack the older program made: the selector change replaces each StatefulSet, and the hook's orphan delete keeps the pods, which the new one takes back and rolls one at a time", async () => {
    const upgrade = `${ns}-upgrade`;
    kubectlOk(["create", "namespace", upgrade]);
    kubectlOk(["annotate", "namespace", upgrade, "scheduler.alpha.kubernetes.io/node-selector=type=kwok"]);
    let watch: ReturnType<typeof watchPods> | undefined;
    try {
        const servers = (await manifests("deploytest", { ...base, namespace: upgrade, createNamespace: false, cassandra: { replicas: 2 }, writer: { replicationFactor: 2 } }))
            .filter(o => ["Service", "StatefulSet", "PodDisruptionBudget"].includes(o.kind));
        const older = servers.map(asOlderProgramMadeIt);
        expect(apply(older).status).toBe(0);
        const sets = older.filter(o => o.kind === "StatefulSet");
        expect(sets.map(s => s.metadata.name).sort()).toEqual(["cassandra", "kafka", "zookeeper"]);
        for (const s of sets) kubectlOk(["-n", upgrade, "rollout", "status", `statefulset/${s.metadata.name}`, "--timeout=300s"]);
        const before = Object.fromEntries(sets.map(s => [s.metadata.name, podsOf(upgrade, "statefulset", s.metadata.name)]));

        // Kubernetes refuses the new selector in place: the provider must replace the StatefulSet.
        const inPlace = apply(servers.filter(o => o.kind === "StatefulSet"), ["--dry-run=server"]);
        expect(inPlace.status).not.toBe(0);
        expect(inPlace.stderr).toMatch(/spec: Forbidden: updates to statefulset spec for fields other than/);

        watch = watchPods(upgrade);
        // The beforeDelete hook's step for each, as the engine runs it with the old inputs.
        const calls: string[] = [];
        for (const s of sets) {
            const selector = servers.find(o => o.kind === "StatefulSet" && o.metadata.name === s.metadata.name).spec.selector.matchLabels;
            expect(selector).toEqual({ app: s.metadata.name, [INSTANCE_LABEL]: "deploytest" });
            await expansionStep(upgrade, s.metadata.name, s.spec.volumeClaimTemplates[0].spec.resources.requests.storage, selector, () => async args => {
                calls.push(args.join(" "));
                return kubectlOk(args);
            })({ urn: "u", id: s.metadata.name, name: s.metadata.name, type: "kubernetes:apps/v1:StatefulSet", oldInputs: s });
        }
        expect(calls).toEqual(sets.map(s => `-n ${upgrade} delete statefulset ${s.metadata.name} --cascade=orphan --ignore-not-found --wait=true`));
        // The StatefulSets are gone, their pods run on, owned by nothing.
        const orphans = getJson(["-n", upgrade, "get", "pods"]).items;
        expect(Object.fromEntries(sets.map(s => [s.metadata.name, Object.fromEntries(orphans.filter((p: any) => p.metadata.name.startsWith(`${s.metadata.name}-`)).map((p: any) => [p.metadata.name, p.metadata.uid]))]))).toEqual(before);
        expect(orphans.filter((p: any) => (p.metadata.ownerReferences ?? []).length > 0)).toEqual([]);

        // The provider's create: each new StatefulSet adopts them, and its pod template (spreading over this stack's pods only) rolls them.
        const r = apply(servers);
        expect(r.stderr).toBe("");
        for (const s of sets) kubectlOk(["-n", upgrade, "rollout", "status", `statefulset/${s.metadata.name}`, "--timeout=300s"]);
        for (const s of sets) expect(Object.keys(podsOf(upgrade, "statefulset", s.metadata.name)).sort()).toEqual(Object.keys(before[s.metadata.name]).sort());
        // Never more than one pod of a set down at a time: a delete of the StatefulSet itself would have taken all.
        expect(await watch.fewestUp()).toEqual({ cassandra: 1, zookeeper: 0, kafka: 2 });
        expect(serviceHosts(upgrade, "kafka-service")).toEqual(["kafka-0", "kafka-1", "kafka-2"]);
    } finally {
        watch?.stop();
        kubectl(["delete", "namespace", upgrade, "--wait=false"]);
    }
});

test("the preview reads the claims' storage classes from the API server: growth on a class without expansion is refused, on one with it goes ahead", async () => {
    const fixed = `${ns}-fixed`;
    const claimsNs = `${ns}-claims`;
    const claim = (name: string, storageClassName: string) => ({
        apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name, namespace: claimsNs },
        spec: { accessModes: ["ReadWriteOnce"], storageClassName, resources: { requests: { storage: "1Gi" } } },
    });
    kubectlOk(["create", "namespace", claimsNs]);
    try {
        kubectlOk(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: [
            { apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name: fixed }, provisioner: "streamstack.local/fake", volumeBindingMode: "WaitForFirstConsumer" },
            // Claims as the StatefulSets name them: Kafka's of the local cluster's expandable default class, ZooKeeper's of the fixed one.
            claim("kafka-data-kafka-0", "standard"), claim("kafka-data-kafka-1", "standard"), claim("zookeeper-data-zookeeper-0", fixed),
        ] }));
        const config = { ...base, namespace: claimsNs };
        const deployed = readRecord(JSON.parse(JSON.stringify(recordOf(parseStackConfig(config)))));
        const run = async (args: string[]) => kubectlOk(args);
        expect(await checkClaimGrowth(deployed, parseStackConfig({ ...config, kafka: { storageSize: "12Gi" } }), run)).toEqual({ refusals: [], warnings: [] });
        const growZookeeper = await checkClaimGrowth(deployed, parseStackConfig({ ...config, zookeeper: { storageSize: "2Gi" } }), run);
        expect(growZookeeper.refusals.map(r => [r.key, r.why.split(":")[0]])).toEqual([["zookeeper.storageSize", `zookeeper's claims are of class ${fixed}, which does not allow volume expansion (allowVolumeExpansion is not true)`]]);
    } finally {
        kubectl(["delete", "namespace", claimsNs, "--wait=false"]);
        kubectl(["delete", "storageclass", fixed]);
    }
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
