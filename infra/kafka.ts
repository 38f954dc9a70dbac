import * as pulumi from "@pulumi/pulumi";
import { internalTopicReplicationFactor, KafkaConfig } from "./config";
import { Placement, podFqdns, serviceFqdn } from "./meta";
import { kafkaReadyScript } from "./kafkaReadiness";
import { reassignHook } from "./reassignment";
import { CONFLUENT_POD_SECURITY, createStatefulSystem, execProbe, resourcesOf } from "./stateful";

export const BROKER_PORT = 9092;
/** Where cp-kafka keeps the broker's log (its VOLUME), and so where the claim goes. */
export const LOG_DIR = "/var/lib/kafka/data";
/** Set on every StatefulSet pod since Kubernetes 1.28 (PodIndexLabel, on by default). */
export const POD_INDEX_LABEL = "apps.kubernetes.io/pod-index";

export interface KafkaArgs {
    /** Where the objects go and how DNS names are formed. */
    readonly placement: Placement;
    /** Validated `streamstack:kafka` config. */
    readonly config: KafkaConfig;
    /** ZooKeeper connect string (host:port[,host:port...]). */
    readonly zookeeperConnect: pulumi.Input<string>;
}

/** Kafka brokers: headless Service `kafka-service`, StatefulSet `kafka`, and its PDB (names: placement.names). */
export class Kafka extends pulumi.ComponentResource {
    /** Every broker's `<pod>.kafka-service.<ns>.svc.<domain>:9092`. */
    public readonly bootstrapServers: pulumi.Output<string[]>;
    public readonly serviceName: pulumi.Output<string>;
    public readonly statefulSetName: pulumi.Output<string>;

    constructor(name: string, args: KafkaArgs, opts?: pulumi.ComponentResourceOptions) {
        super("streamstack:kafka:Kafka", name, {}, opts);
        const { placement, config } = args;
        const { kafka: set, kafkaService: serviceName } = placement.names;
        const brokers = podFqdns(placement, set, config.replicas, serviceName).map(h => `${h}:${BROKER_PORT}`);
        // Internal topics can't have more replicas than there are brokers; config.ts holds min ISR to it.
        const internalRf = internalTopicReplicationFactor(config.replicas);

        const system = createStatefulSystem(name, {
            placement,
            app: "kafka",
            name: set,
            component: "broker",
            serviceName,
            ports: [{ name: "broker", port: BROKER_PORT }],
            replicas: config.replicas,
            podManagementPolicy: "Parallel",
            // Readiness itself waits until the broker is back in the ISR of what it hosts (kafkaReadiness.ts);
            // one probe period more only stops a roll at a broker that falls over right after it passed
            // (and a Parallel set's roll honours it only since kubernetes#130909).
            minReadySeconds: 10,
            // The startup probe allows 5 minutes (log recovery comes before the port opens), then catching up.
            memberStartMinutes: 10,
            // SIGTERM makes the broker hand its partitions' leadership over before it exits.
            terminationGracePeriodSeconds: 120,
            securityContext: CONFLUENT_POD_SECURITY,
            // A lower replica count first moves every partition replica off the leaving brokers (infra/reassignment.ts).
            beforeUpdate: () => reassignHook(placement.namespace, set),
            // cp-kafka declares VOLUME /var/lib/kafka/data: the claim must be mounted there, not at its
            // parent. subPath keeps a volume's lost+found out of log.dirs (the broker refuses it).
            storage: { mounts: [{ mountPath: LOG_DIR, subPath: "data" }], size: config.storageSize, storageClass: config.storageClass },
            container: {
                name: "kafka",
                image: config.image,
                // The image's own entry point runs; nothing of its internals is relied on.
                resources: resourcesOf(config),
                env: [
                    // The broker id is the pod ordinal, from the label the StatefulSet controller sets.
                    { name: "KAFKA_BROKER_ID", valueFrom: { fieldRef: { fieldPath: `metadata.labels['${POD_INDEX_LABEL}']` } } },
                    { name: "KAFKA_ZOOKEEPER_CONNECT", value: args.zookeeperConnect },
                    { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                    {
                        name: "KAFKA_ADVERTISED_LISTENERS",
                        value: `PLAINTEXT://$(POD_NAME).${serviceFqdn(placement, serviceName)}:${BROKER_PORT}`,
                    },
                    { name: "KAFKA_HEAP_OPTS", value: `-Xms${config.heapSize} -Xmx${config.heapSize}` },
                    { name: "KAFKA_NUM_PARTITIONS", value: String(config.partitions) },
                    { name: "KAFKA_DEFAULT_REPLICATION_FACTOR", value: String(config.replicationFactor) },
                    { name: "KAFKA_MIN_INSYNC_REPLICAS", value: String(config.minInsyncReplicas) },
                    { name: "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", value: String(internalRf) },
                    { name: "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", value: String(internalRf) },
                    { name: "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", value: String(Math.min(config.minInsyncReplicas, internalRf)) },
                    { name: "KAFKA_LOG_DIRS", value: LOG_DIR },
                ],
                // Ready = registered and in the ISR of every partition it hosts that has a leader.
                readinessProbe: execProbe(kafkaReadyScript(BROKER_PORT), 10, 5, 3, 10),
                startupProbe: { tcpSocket: { port: BROKER_PORT }, periodSeconds: 10, failureThreshold: 30 },
                livenessProbe: { tcpSocket: { port: BROKER_PORT }, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 6 },
            },
        }, { parent: this, dependsOn: opts?.dependsOn }); // children wait for what the component waits for

        this.serviceName = system.service.metadata.name;
        this.statefulSetName = system.statefulSet.metadata.name;
        this.bootstrapServers = pulumi.output(brokers);
        this.registerOutputs({ bootstrapServers: this.bootstrapServers, serviceName: this.serviceName });
    }
}
