// Overrides a user makes in stack config reach exactly the fields they should, and DNS names
// follow the namespace instead of a hard-coded `default`.
import { deployStack, loadConfig } from "../../infra";
import { containerOf, envOf, render, T } from "./render";

const program = () => deployStack(loadConfig()) as any;

test("the program's own namespace is created and every name is derived from it", async () => {
    const r = await render("dev", {}, program);
    expect(r.get(T.namespace, "streamstack").metadata.name).toBe("streamstack");
    for (const type of [T.service, T.statefulSet, T.deployment, T.pdb]) {
        for (const o of r.ofType(type)) expect(o.metadata.namespace).toBe("streamstack");
    }
    expect(envOf(r.get(T.statefulSet, "cassandra")).CASSANDRA_SEEDS).toBe("cassandra-0.cassandra-service.streamstack.svc.cluster.local");
    expect(envOf(r.get(T.deployment, "ece573-prj04-writer")).CASSANDRA_SEEDS).toBe("cassandra-service.streamstack.svc.cluster.local");
    const dump = JSON.stringify(r.resources);
    expect(dump).not.toContain(".default.svc");
});

test("cassandra.replicas=5 and seedCount=2 reach the StatefulSet and its seed list", async () => {
    const r = await render("dev", { cassandra: { replicas: 5, seedCount: 2 } }, program);
    const sts = r.get(T.statefulSet, "cassandra");
    expect(sts.spec.replicas).toBe(5);
    expect(envOf(sts).CASSANDRA_SEEDS).toBe([0, 1].map(i => `cassandra-${i}.cassandra-service.streamstack.svc.cluster.local`).join(","));
});

test("clients.partitions=8 reaches both client Deployments and not the brokers", async () => {
    const r = await render("dev", { clients: { partitions: 8 } }, program);
    expect(envOf(r.get(T.deployment, "ece573-prj05-producer")).TOPIC_PARTITIONS).toBe("8");
    expect(envOf(r.get(T.deployment, "ece573-prj05-consumer")).TOPIC_PARTITIONS).toBe("8");
    expect(envOf(r.get(T.statefulSet, "kafka")).KAFKA_NUM_PARTITIONS).toBe("4");
});

test("clients.partitions defaults to kafka.partitions", async () => {
    const r = await render("dev", { kafka: { partitions: 6 } }, program);
    expect(envOf(r.get(T.statefulSet, "kafka")).KAFKA_NUM_PARTITIONS).toBe("6");
    expect(envOf(r.get(T.deployment, "ece573-prj05-producer")).TOPIC_PARTITIONS).toBe("6");
});

test("a storage class and size reach every claim of that system only", async () => {
    const r = await render("dev", { cassandra: { storageClass: "fast-ssd", storageSize: "20Gi" } }, program);
    const claim = r.get(T.statefulSet, "cassandra").spec.volumeClaimTemplates[0].spec;
    expect(claim.storageClassName).toBe("fast-ssd");
    expect(claim.resources.requests.storage).toBe("20Gi");
    expect(r.get(T.statefulSet, "kafka").spec.volumeClaimTemplates[0].spec.storageClassName).toBeUndefined();
});

test("a three-member ZooKeeper ensemble is listed in Kafka's connect string", async () => {
    const r = await render("dev", { zookeeper: { replicas: 3 } }, program);
    const members = [0, 1, 2].map(i => `zookeeper-${i}.zookeeper-service.streamstack.svc.cluster.local`);
    expect(envOf(r.get(T.statefulSet, "kafka")).KAFKA_ZOOKEEPER_CONNECT).toBe(members.map(m => `${m}:2181`).join(","));
    const script = containerOf(r.get(T.statefulSet, "zookeeper")).command[2];
    expect(script).toContain(members.join(" "));
});

test("clients get every broker, not one", async () => {
    const r = await render("dev", { kafka: { replicas: 5 } }, program);
    const brokers = envOf(r.get(T.deployment, "ece573-prj05-consumer")).KAFKA_BROKERS.split(",");
    expect(brokers).toEqual([0, 1, 2, 3, 4].map(i => `kafka-${i}.kafka-service.streamstack.svc.cluster.local:9092`));
});

test("prebuilt images skip the build and are used as given", async () => {
    const r = await render("dev", { images: { writer: "example.org/w@sha256:" + "a".repeat(64), clients: "example.org/c:1.2.3" } }, program);
    expect(r.ofType(T.image)).toHaveLength(0);
    expect(containerOf(r.get(T.deployment, "ece573-prj04-writer")).image).toBe("example.org/w@sha256:" + "a".repeat(64));
    expect(containerOf(r.get(T.deployment, "ece573-prj05-producer")).image).toBe("example.org/c:1.2.3");
});

test("images are built from images/<app>/Dockerfile with context apps/ and the configured base", async () => {
    const r = await render("dev", { images: { registry: "registry.local:5000", nodeBase: "streamstack/node-base:20" } }, program);
    const writer = r.get(T.image, "writer-image");
    expect(writer.imageName).toBe("registry.local:5000/ece573-prj04-writer:latest");
    expect(writer.build).toMatchObject({ context: "apps", dockerfile: "images/writer/Dockerfile", args: { NODE_BASE: "streamstack/node-base:20" } });
    expect(r.get(T.image, "clients-image").build.dockerfile).toBe("images/clients/Dockerfile");
});

test("the shared base image feeds both builds: both digests change, and they are what the Deployments run", async () => {
    const a = await render("dev", {}, program);
    const b = await render("dev", { images: { nodeBase: "node:20.1" } }, program);
    for (const [deployment, output] of [["ece573-prj05-producer", "clientsImage"], ["ece573-prj04-writer", "writerImage"]]) {
        expect(containerOf(a.get(T.deployment, deployment)).image).not.toBe(containerOf(b.get(T.deployment, deployment)).image);
        expect(containerOf(b.get(T.deployment, deployment)).image).toBe(b.outputs[output]);
    }
});

test("a new clients image changes the producer's and consumer's image and nothing else", async () => {
    const a = await render("dev", { images: { clients: "example.org/c@sha256:" + "1".repeat(64) } }, program);
    const b = await render("dev", { images: { clients: "example.org/c@sha256:" + "2".repeat(64) } }, program);
    const changed = a.resources.filter((r, i) => JSON.stringify(r) !== JSON.stringify(b.resources[i]));
    expect(changed.map(r => r.inputs.metadata?.name).sort()).toEqual(["ece573-prj05-consumer", "ece573-prj05-producer"]);
    for (const name of ["ece573-prj05-consumer", "ece573-prj05-producer"]) {
        expect(containerOf(b.get(T.deployment, name)).image).toBe("example.org/c@sha256:" + "2".repeat(64));
    }
});

test("the app image builds for the Docker host's platform unless images.platform says otherwise", async () => {
    const host = await render("dev", {}, program);
    expect(host.get(T.image, "writer-image").build.platform).toBeUndefined();
    const arm = await render("dev", { images: { platform: "linux/arm64" } }, program);
    expect(arm.get(T.image, "writer-image").build.platform).toBe("linux/arm64");
    expect(arm.get(T.image, "clients-image").build.platform).toBe("linux/arm64");
});

test("limits default to the requests and can be set apart", async () => {
    const plain = await render("dev", {}, program);
    expect(containerOf(plain.get(T.statefulSet, "kafka")).resources).toEqual({ requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "500m", memory: "1Gi" } });
    const r = await render("dev", { kafka: { cpu: "100m", cpuLimit: "2" }, writer: { memory: "128Mi", memoryLimit: "512Mi" } }, program);
    expect(containerOf(r.get(T.statefulSet, "kafka")).resources).toEqual({ requests: { cpu: "100m", memory: "1Gi" }, limits: { cpu: "2", memory: "1Gi" } });
    expect(containerOf(r.get(T.deployment, "ece573-prj04-writer")).resources).toEqual({ requests: { cpu: "250m", memory: "128Mi" }, limits: { cpu: "250m", memory: "512Mi" } });
});

test("app replicas of 0 pause an app", async () => {
    const r = await render("dev", { writer: { replicas: 0 }, clients: { consumerReplicas: 0 } }, program);
    expect(r.get(T.deployment, "ece573-prj04-writer").spec.replicas).toBe(0);
    expect(r.get(T.deployment, "ece573-prj05-consumer").spec.replicas).toBe(0);
    expect(r.get(T.deployment, "ece573-prj05-producer").spec.replicas).toBe(1);
});

test("with the producer paused, `pulumi up` does not wait for the consumer, which cannot be Ready before the producer creates the topic", async () => {
    const skipAwait = (r: any, name: string) => r.get(T.deployment, name).metadata.annotations?.["pulumi.com/skipAwait"];
    const paused = await render("dev", { clients: { producerReplicas: 0 } }, program);
    expect(skipAwait(paused, "ece573-prj05-consumer")).toBe("true");
    expect(paused.get(T.deployment, "ece573-prj05-producer").spec.replicas).toBe(0);
    // Awaited as before wherever a producer runs, and the producer and writer always.
    expect(skipAwait(paused, "ece573-prj05-producer")).toBeUndefined();
    expect(skipAwait(paused, "ece573-prj04-writer")).toBeUndefined();
    const running = await render("dev", {}, program);
    expect(skipAwait(running, "ece573-prj05-consumer")).toBeUndefined();
    // Metadata only: pausing and resuming the producer does not roll the consumer's pods.
    expect(paused.get(T.deployment, "ece573-prj05-consumer").spec).toEqual(running.get(T.deployment, "ece573-prj05-consumer").spec);
});

test("the Kubernetes provider's own keys sit beside the project's and change nothing it renders", async () => {
    const plain = await render("dev", {}, program);
    const withProviderKeys = await render("dev", { "kubernetes:context": "kind-other", "kubernetes:kubeconfig": "/tmp/kubeconfig", "kubernetes:namespace": "ignored" }, program);
    expect(withProviderKeys.resources).toEqual(plain.resources);
});
