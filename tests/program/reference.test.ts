// The default config reproduces every fact of ../shared/REFERENCE.md (names, ports, images, env,
// resources, claims); with namespace `default` even the DNS names match the reference to the letter.
import { deployStack, loadConfig } from "../../infra";
import { containerOf, envOf, render, Rendered, T } from "./render";

const program = () => deployStack(loadConfig()) as any;

describe("the default stack reproduces the reference system", () => {
    let r: Rendered;
    beforeAll(async () => {
        r = await render("dev", { namespace: "default" }, program);
    });

    test("no namespace object is created for `default`", () => {
        expect(r.ofType(T.namespace)).toHaveLength(0);
    });

    test("Cassandra: headless Service cassandra-service on 9042, selector app=cassandra (and the stack, as every selector)", () => {
        const svc = r.get(T.service, "cassandra-service");
        expect(svc.metadata.namespace).toBe("default");
        expect(svc.spec.clusterIP).toBe("None");
        expect(svc.spec.selector).toEqual({ app: "cassandra", "app.kubernetes.io/instance": "dev" });
        expect(svc.spec.ports.map((p: any) => p.port)).toContain(9042);
        expect(svc.spec.publishNotReadyAddresses).toBe(true);
    });

    test("Cassandra: StatefulSet with 3 replicas of cassandra:4.1.3, 500m/1Gi, the reference env and a 10Gi claim", () => {
        const sts = r.get(T.statefulSet, "cassandra");
        expect(sts.spec.serviceName).toBe("cassandra-service");
        expect(sts.spec.replicas).toBe(3);
        const c = containerOf(sts);
        expect(c.image).toBe("cassandra:4.1.3");
        expect(c.ports.map((p: any) => p.containerPort)).toContain(9042);
        expect(c.resources).toEqual({ requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "500m", memory: "1Gi" } });
        expect(envOf(sts)).toMatchObject({
            MAX_HEAP_SIZE: "512M",
            HEAP_NEWSIZE: "128M",
            CASSANDRA_SEEDS: "cassandra-0.cassandra-service.default.svc.cluster.local",
            CASSANDRA_CLUSTER_NAME: "ece573-prj04",
        });
        const claim = sts.spec.volumeClaimTemplates[0];
        expect(claim.metadata.name).toBe("cassandra-data");
        expect(claim.spec.accessModes).toEqual(["ReadWriteOnce"]);
        expect(claim.spec.resources.requests.storage).toBe("10Gi");
        expect(c.volumeMounts).toEqual([{ name: "cassandra-data", mountPath: "/var/lib/cassandra" }]);
    });

    test("ZooKeeper: zookeeper-service on 2181, StatefulSet of 1 cp-zookeeper:7.3.5 with ZOOKEEPER_CLIENT_PORT", () => {
        const svc = r.get(T.service, "zookeeper-service");
        expect(svc.spec.clusterIP).toBe("None");
        expect(svc.spec.selector).toEqual({ app: "zookeeper", "app.kubernetes.io/instance": "dev" });
        expect(svc.spec.ports.map((p: any) => p.port)).toContain(2181);
        const sts = r.get(T.statefulSet, "zookeeper");
        expect(sts.spec.replicas).toBe(1);
        expect(containerOf(sts).image).toBe("confluentinc/cp-zookeeper:7.3.5");
        expect(envOf(sts).ZOOKEEPER_CLIENT_PORT).toBe("2181");
    });

    test("Kafka: kafka-service on 9092, 3 cp-kafka:7.3.5 brokers with the reference env and a 10Gi claim", () => {
        const svc = r.get(T.service, "kafka-service");
        expect(svc.spec.clusterIP).toBe("None");
        expect(svc.spec.selector).toEqual({ app: "kafka", "app.kubernetes.io/instance": "dev" });
        expect(svc.spec.ports.map((p: any) => p.port)).toEqual([9092]);
        const sts = r.get(T.statefulSet, "kafka");
        expect(sts.spec.replicas).toBe(3);
        const c = containerOf(sts);
        expect(c.image).toBe("confluentinc/cp-kafka:7.3.5");
        expect(c.ports.map((p: any) => p.containerPort)).toEqual([9092]);
        expect(c.resources.requests).toEqual({ cpu: "500m", memory: "1Gi" });
        expect(envOf(sts)).toMatchObject({
            KAFKA_ZOOKEEPER_CONNECT: "zookeeper-service.default.svc.cluster.local:2181",
            POD_NAME: "fieldRef:metadata.name",
            KAFKA_ADVERTISED_LISTENERS: "PLAINTEXT://$(POD_NAME).kafka-service.default.svc.cluster.local:9092",
            KAFKA_HEAP_OPTS: "-Xms512m -Xmx512m",
            KAFKA_NUM_PARTITIONS: "4",
            KAFKA_DEFAULT_REPLICATION_FACTOR: "3",
        });
        // The broker id is the pod ordinal (the StatefulSet's pod-index label); the image's own entry point runs.
        expect(envOf(sts).KAFKA_BROKER_ID).toBe("fieldRef:metadata.labels['apps.kubernetes.io/pod-index']");
        expect(c.command).toBeUndefined();
        const claim = sts.spec.volumeClaimTemplates[0];
        expect(claim.metadata.name).toBe("kafka-data");
        expect(claim.spec.resources.requests.storage).toBe("10Gi");
        // The reference mounted kafka-data at /var/lib/kafka, under which cp-kafka's VOLUME
        // /var/lib/kafka/data got an anonymous volume: the claim goes where the data is instead.
        expect(c.volumeMounts).toEqual([{ name: "kafka-data", mountPath: "/var/lib/kafka/data", subPath: "data" }]);
        expect(envOf(sts).KAFKA_LOG_DIRS).toBe("/var/lib/kafka/data");
    });

    test("writer: Deployment ece573-prj04-writer, 1 replica, the reference env (QUORUM by default)", () => {
        const d = r.get(T.deployment, "ece573-prj04-writer");
        expect(d.spec.replicas).toBe(1);
        expect(containerOf(d).image).toMatch(/^localhost:5001\/ece573-prj04-writer@sha256:[0-9a-f]{64}$/);
        expect(envOf(d)).toMatchObject({
            TOPIC: "project04",
            CASSANDRA_SEEDS: "cassandra-service.default.svc.cluster.local",
            CASSANDRA_KEYSPACE: "ece573",
            CONSISTENCY: "QUORUM",
        });
    });

    test("clients: producer and consumer Deployments from one image, ROLE and TOPIC=test", () => {
        const producer = r.get(T.deployment, "ece573-prj05-producer");
        const consumer = r.get(T.deployment, "ece573-prj05-consumer");
        expect(containerOf(producer).image).toBe(containerOf(consumer).image);
        expect(containerOf(producer).image).toMatch(/^localhost:5001\/ece573-prj05-clients@sha256:/);
        expect(envOf(producer)).toMatchObject({ ROLE: "producer", TOPIC: "test" });
        expect(envOf(consumer)).toMatchObject({ ROLE: "consumer", TOPIC: "test" });
    });

    test("stack outputs name the contact point, the bootstrap servers and the checks", () => {
        expect(r.outputs.cassandraContactPoint).toBe("cassandra-service.default.svc.cluster.local:9042");
        expect(r.outputs.kafkaBootstrapServers).toBe(
            [0, 1, 2].map(i => `kafka-${i}.kafka-service.default.svc.cluster.local:9092`).join(","));
        expect((r.outputs.checks as any).ringStatus).toBe("kubectl -n default exec cassandra-0 -- nodetool status");
    });
});

test("Pulumi.dev.yaml itself is a valid config that targets the kind cluster and its registry", async () => {
    const fs = await import("fs");
    const YAML = await import("yaml");
    const { parseStackConfig } = await import("../../infra/config");
    const file = YAML.parse(fs.readFileSync(`${__dirname}/../../Pulumi.dev.yaml`, "utf8")).config as Record<string, unknown>;
    expect(file["kubernetes:context"]).toBe("kind-streamstack");
    const own = Object.fromEntries(Object.entries(file).filter(([k]) => k.startsWith("streamstack:")).map(([k, v]) => [k.slice("streamstack:".length), v]));
    const config = parseStackConfig(own);
    expect(config.images.registry).toBe("localhost:5001");
    expect(config.cassandra.replicas).toBe(3);
});
