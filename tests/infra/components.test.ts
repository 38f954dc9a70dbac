// Each component on its own, under Pulumi's mocks: the hardening the reference lacked
// (probes, disruption budgets, spreading, drain on shutdown, non-root apps) is really there.
import { Cassandra, cassandraReadyScript, Clients, Kafka, kafkaReadyScript, namesOf, parseStackConfig, Placement, Writer, Zookeeper } from "../../infra";
import { zookeeperStartScript } from "../../infra/zookeeper";
import { containerOf, envOf, render, T } from "../program/render";

const placement: Placement = { namespace: "ns1", clusterDomain: "cluster.local", instance: "test", names: namesOf("") };
const defaults = parseStackConfig({});

describe("Cassandra", () => {
    test("is a ring that bootstraps one node at a time, is Ready only when NORMAL in the ring, and drains on stop", async () => {
        const r = await render("test", {}, () => { new Cassandra("cassandra", { placement, config: defaults.cassandra }); });
        const sts = r.get(T.statefulSet, "cassandra");
        const c = containerOf(sts);
        expect(sts.spec.podManagementPolicy).toBe("OrderedReady");
        // Readiness asks the node's own gossip over CQL (no JVM per probe); the script's three bounded reads
        // end within the probe's timeout, so a slow node gets the script's reason, not a kubelet timeout.
        expect(c.readinessProbe).toEqual({
            exec: { command: ["bash", "-c", cassandraReadyScript("127.0.0.1", 9042)] }, periodSeconds: 5, timeoutSeconds: 10, failureThreshold: 3, initialDelaySeconds: 10,
        });
        const waits = [...cassandraReadyScript("127.0.0.1", 9042).matchAll(/\btimeout (\d+) /g)].map(m => Number(m[1]));
        expect(waits).toEqual([3, 3]); // header, then body: one frame() per request, two requests
        expect(3 * waits[0]).toBeLessThan(c.readinessProbe.timeoutSeconds);
        // nodetool's own JVM would take the server's MAX_HEAP_SIZE as its -Xmx: the preStop sets a small one.
        expect(c.lifecycle.preStop.exec.command).toEqual(["bash", "-c", expect.stringMatching(/^MAX_HEAP_SIZE=128M JVM_OPTS="[^"]*" nodetool drain$/)]);
        expect(c.livenessProbe.tcpSocket.port).toBe(7000);
        expect(c.startupProbe).toBeDefined();
        expect(sts.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(120);
        expect(sts.spec.template.spec.enableServiceLinks).toBe(false);
        expect(envOf(sts)).toMatchObject({ CASSANDRA_ENDPOINT_SNITCH: "GossipingPropertyFileSnitch", CASSANDRA_DC: "datacenter1", CASSANDRA_RACK: "rack1" });
        expect(r.get(T.service, "cassandra-service").spec.ports.map((p: any) => p.port)).toEqual([9042, 7000]);
    });

    test("has a PodDisruptionBudget of one and spreads its pods over nodes", async () => {
        const r = await render("test", {}, () => { new Cassandra("cassandra", { placement, config: defaults.cassandra }); });
        const pdb = r.get(T.pdb, "cassandra");
        expect(pdb.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: { app: "cassandra", "app.kubernetes.io/instance": "test" } } });
        const spread = r.get(T.statefulSet, "cassandra").spec.template.spec.topologySpreadConstraints[0];
        expect(spread).toMatchObject({ topologyKey: "kubernetes.io/hostname", maxSkew: 1, labelSelector: { matchLabels: { app: "cassandra", "app.kubernetes.io/instance": "test" } } });
    });

    test("carries Kubernetes' recommended labels", async () => {
        const r = await render("test", {}, () => { new Cassandra("cassandra", { placement, config: defaults.cassandra }); });
        expect(r.get(T.statefulSet, "cassandra").metadata.labels).toEqual({
            app: "cassandra",
            "app.kubernetes.io/name": "cassandra",
            "app.kubernetes.io/instance": "test",
            "app.kubernetes.io/component": "database",
            "app.kubernetes.io/part-of": "streamstack",
            "app.kubernetes.io/managed-by": "pulumi",
        });
    });
});

describe("ZooKeeper", () => {
    test("whitelists the four-letter words its probes use", async () => {
        const r = await render("test", {}, () => { new Zookeeper("zookeeper", { placement, config: defaults.zookeeper }); });
        const sts = r.get(T.statefulSet, "zookeeper");
        expect(envOf(sts).KAFKA_OPTS).toBe("-Dzookeeper.4lw.commands.whitelist=ruok,srvr,mntr");
        expect(containerOf(sts).livenessProbe.exec.command.join(" ")).toContain("ruok");
        expect(containerOf(sts).readinessProbe.exec.command.join(" ")).toContain("srvr");
        expect(r.get(T.service, "zookeeper-service").spec.ports.map((p: any) => p.port)).toEqual([2181, 2888, 3888]);
        expect(r.get(T.pdb, "zookeeper").spec.maxUnavailable).toBe(1);
    });

    test("the claim is mounted at each of cp-zookeeper's data VOLUMEs, not at their parent", async () => {
        const r = await render("test", {}, () => { new Zookeeper("zookeeper", { placement, config: defaults.zookeeper }); });
        expect(containerOf(r.get(T.statefulSet, "zookeeper")).volumeMounts).toEqual([
            { name: "zookeeper-data", mountPath: "/var/lib/zookeeper/data", subPath: "data" },
            { name: "zookeeper-data", mountPath: "/var/lib/zookeeper/log", subPath: "log" },
        ]);
    });

    test("an ensemble's start script numbers servers from ordinals and binds its own entry to 0.0.0.0", () => {
        const script = zookeeperStartScript(["z-0.svc", "z-1.svc", "z-2.svc"]);
        expect(script).toContain("export ZOOKEEPER_SERVER_ID=$((ordinal + 1))");
        expect(script).toContain('if [ "$i" = "$ordinal" ]; then host=0.0.0.0; fi');
        expect(script).toContain(":2888:3888");
        expect(zookeeperStartScript(["z-0.svc"])).not.toContain("ZOOKEEPER_SERVERS");
    });
});

describe("Kafka", () => {
    test("keeps internal topics' replication within the broker count and sets min ISR", async () => {
        const config = parseStackConfig({ kafka: { replicas: 1, replicationFactor: 1, minInsyncReplicas: 1 } }).kafka;
        const r = await render("test", {}, () => { new Kafka("kafka", { placement, config, zookeeperConnect: "zk:2181" }); });
        const env = envOf(r.get(T.statefulSet, "kafka"));
        expect(env).toMatchObject({
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: "1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: "1",
            KAFKA_MIN_INSYNC_REPLICAS: "1",
            KAFKA_ZOOKEEPER_CONNECT: "zk:2181",
            KAFKA_ADVERTISED_LISTENERS: "PLAINTEXT://$(POD_NAME).kafka-service.ns1.svc.cluster.local:9092",
        });
    });

    test("turns service links off (KAFKA_PORT from a Service would break the image); Ready only when back in the ISR, alive while the port answers", async () => {
        const r = await render("test", {}, () => { new Kafka("kafka", { placement, config: defaults.kafka, zookeeperConnect: "zk:2181" }); });
        const sts = r.get(T.statefulSet, "kafka");
        expect(sts.spec.template.spec.enableServiceLinks).toBe(false);
        // Ready only when in the ISR of what it hosts (kafkaReadiness.ts); alive while its port answers.
        expect(containerOf(sts).readinessProbe).toEqual({
            exec: { command: ["bash", "-c", kafkaReadyScript(9092)] }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3, initialDelaySeconds: 10,
        });
        expect(containerOf(sts).livenessProbe.tcpSocket.port).toBe(9092);
        // The check's own waits (length, then body) end before the kubelet gives up on it.
        const waits = [...kafkaReadyScript(9092).matchAll(/\btimeout (\d+) /g)].map(m => Number(m[1]));
        expect(waits).toHaveLength(2);
        expect(waits[0] + waits[1]).toBeLessThan(containerOf(sts).readinessProbe.timeoutSeconds);
        expect(sts.spec.template.spec.securityContext.fsGroup).toBe(1000);
        expect(r.get(T.service, "kafka-service").spec.publishNotReadyAddresses).toBe(true);
    });
});

describe("apps", () => {
    test("the writer never runs twice: Recreate strategy", async () => {
        const r = await render("test", {}, () => {
            new Writer("writer", { placement, config: defaults.writer, images: defaults.images, cassandra: defaults.cassandra, contactPoint: "c.svc" });
        });
        const d = r.get(T.deployment, "ece573-prj04-writer");
        expect(d.spec.strategy).toEqual({ type: "Recreate" });
        expect(envOf(d)).toMatchObject({ CASSANDRA_SEEDS: "c.svc", CASSANDRA_LOCAL_DC: "datacenter1", REPLICATION_FACTOR: "3", HTTP_PORT: "8080" });
    });

    test("app pods run non-root on a read-only root filesystem, with probes and limits", async () => {
        const r = await render("test", {}, () => {
            new Clients("clients", { placement, config: defaults.clients, images: defaults.images, bootstrapServers: ["k0:9092", "k1:9092"], replicationFactor: 3, minInsyncReplicas: 2 });
        });
        for (const name of ["ece573-prj05-producer", "ece573-prj05-consumer"]) {
            const d = r.get(T.deployment, name);
            const c = containerOf(d);
            expect(d.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
            expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
            expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: 8080 });
            expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: 8080 });
            // A CPU-throttled app answers slowly; only 3 probes of 5 s without an answer restart it.
            expect([c.livenessProbe.timeoutSeconds, c.livenessProbe.failureThreshold, c.readinessProbe.timeoutSeconds]).toEqual([5, 3, 5]);
            expect(c.resources.limits).toEqual({ cpu: "250m", memory: "256Mi" });
            expect(envOf(d)).toMatchObject({ KAFKA_BROKERS: "k0:9092,k1:9092", GROUP_ID: "ece573-prj05-consumer", TOPIC_PARTITIONS: "4", TOPIC_REPLICATION_FACTOR: "3", TOPIC_MIN_INSYNC_REPLICAS: "2" });
        }
    });
});
