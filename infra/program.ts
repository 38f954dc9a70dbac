// The whole system from one validated config: what index.ts runs and what the tests drive.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { Cassandra, CQL_PORT } from "./cassandra";
import { ChangeError, checkClaimGrowth, DeployedRecord, guardChanges, PreviousRecord, readRecord, recordOf } from "./changes";
import { Kubectl, providerKubectl } from "./decommission";
import { Clients } from "./clients";
import { ConfigError, StackConfig } from "./config";
import { expansionHookName } from "./expansion";
import { BROKER_PORT, Kafka } from "./kafka";
import { Kvs } from "./kvs";
import { instanceProblem, namesOf, Placement, PROJECT_LABELS } from "./meta";
import { Postgres } from "./postgres";
import { Writer } from "./writer";
import { CLIENT_PORT, Zookeeper } from "./zookeeper";

export interface StackOutputs {
    namespace: pulumi.Output<string>;
    cassandraContactPoint: pulumi.Output<string>;
    kafkaBootstrapServers: pulumi.Output<string>;
    zookeeperConnect: pulumi.Output<string>;
    writerImage: pulumi.Output<string>;
    clientsImage: pulumi.Output<string>;
    checks: pulumi.Output<Record<string, string>>;
    /** Only with kvs.enabled: the key-value service's in-cluster URL and image. */
    kvsEndpoint?: pulumi.Output<string>;
    kvsImage?: pulumi.Output<string>;
    /** What this update deployed, for the next one to compare the config with (changes.ts). */
    deployed: pulumi.Output<DeployedRecord>;
}

/** The stack output that records what was deployed. */
export const DEPLOYED_OUTPUT = "deployed";

/**
 * What `pulumi up` and `pulumi preview` run: compares the config with what this stack deployed last
 * (and, for claims that grow, with their storage classes in the cluster), shows the warnings, throws
 * ChangeError with every refused change before any Kubernetes or Docker resource is registered, and
 * then builds the system.
 */
export async function deployChecked(config: StackConfig, kubectl: (() => Kubectl) | undefined = pulumi.runtime.hasEngine() ? providerKubectl : undefined): Promise<StackOutputs> {
    const badStack = instanceProblem(pulumi.getStack());
    if (badStack !== undefined) throw new ConfigError([badStack]);
    const previous = await readPreviousRecord();
    // Reads the cluster (kubectl, as the hooks): only where an engine runs the program, or a test hands one in.
    const claims = kubectl ? await checkClaimGrowth(previous, config, kubectl()) : { refusals: [], warnings: [] };
    // A growth refused there gets no warning from the guard describing it going ahead.
    const guarded = guardChanges(previous, config, claims.refusals.map(r => r.key));
    const refusals = [...guarded.refusals, ...claims.refusals];
    const warnings = [...guarded.warnings, ...claims.warnings];
    for (const w of warnings) pulumi.log.warn(w);
    if (refusals.length > 0) throw new ChangeError(refusals);
    return deployStack(config);
}

/**
 * This stack's own `deployed` output from its last update, read through a StackReference to itself;
 * undefined on a new stack, which has no outputs yet.
 */
async function readPreviousRecord(): Promise<PreviousRecord | undefined> {
    const self = new pulumi.StackReference("previous-update", {
        name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
    });
    const details = await self.getOutputDetails(DEPLOYED_OUTPUT);
    const record = readRecord(details.value ?? details.secretValue);
    if (record === undefined && (await self.getOutputDetails("namespace")).value !== undefined) {
        pulumi.log.warn(`this stack has outputs but no \`${DEPLOYED_OUTPUT}\` record (its last update ran an older program): nothing is compared with what is deployed this time; this update records it for the next`);
    }
    return record;
}

export function deployStack(config: StackConfig): StackOutputs {
    const names = namesOf(config.namePrefix);
    const placement: Placement = { namespace: config.namespace, clusterDomain: config.clusterDomain, instance: pulumi.getStack(), names };
    const ns = config.namespace;

    // Everything else depends on the namespace when the program owns it.
    const namespace = config.createNamespace
        ? new k8s.core.v1.Namespace("namespace", {
            metadata: { name: ns, labels: { ...PROJECT_LABELS } },
        })
        : undefined;
    const after = (...deps: pulumi.Resource[]): pulumi.ComponentResourceOptions => ({ dependsOn: [...(namespace ? [namespace] : []), ...deps] });

    const cassandra = new Cassandra("cassandra", { placement, config: config.cassandra }, after());
    const zookeeper = new Zookeeper("zookeeper", { placement, config: config.zookeeper }, after());
    const kafka = new Kafka("kafka", { placement, config: config.kafka, zookeeperConnect: zookeeper.connectString }, after(zookeeper));
    const writer = new Writer("writer", {
        placement,
        config: config.writer,
        images: config.images,
        cassandra: config.cassandra,
        contactPoint: cassandra.contactPoint,
    }, after(cassandra));
    const clients = new Clients("clients", {
        placement,
        config: config.clients,
        images: config.images,
        bootstrapServers: kafka.bootstrapServers,
        replicationFactor: config.kafka.replicationFactor,
        minInsyncReplicas: config.kafka.minInsyncReplicas,
    }, after(kafka));

    let kvs: Kvs | undefined;
    let postgres: Postgres | undefined;
    if (config.kvs.enabled) {
        postgres = new Postgres("postgres", { placement, config: config.kvs }, after());
        kvs = new Kvs("kvs", {
            placement,
            config: config.kvs,
            images: config.images,
            postgresHost: postgres.host,
            passwordSecret: postgres.passwordSecret,
        }, after(postgres));
    } else if (pulumi.runtime.hasEngine()) {
        // A Postgres StatefulSet of an earlier `up` carries the claim expansion delete hook, which the
        // engine looks up by name when turning kvs off deletes it: here it lets the delete go as it is.
        new pulumi.ResourceHook(expansionHookName(names.postgres), async () => undefined);
    }

    const kubectl = `kubectl -n ${ns}`;
    // Resolved only once the objects it describes are applied: an update that fails to apply them does not write it.
    const deployed = pulumi.all([cassandra.statefulSetName, zookeeper.statefulSetName, kafka.statefulSetName, clients.producerName,
        ...(postgres && kvs ? [postgres.statefulSetName, kvs.deploymentName] : [])])
        .apply(() => recordOf(config));
    return {
        namespace: pulumi.output(ns),
        cassandraContactPoint: pulumi.interpolate`${cassandra.contactPoint}:${CQL_PORT}`,
        kafkaBootstrapServers: kafka.bootstrapServers.apply(b => b.join(",")),
        zookeeperConnect: zookeeper.connectString,
        writerImage: writer.image,
        clientsImage: clients.image,
        checks: pulumi.output<Record<string, string>>({
            ringStatus: `${kubectl} exec ${names.cassandra}-0 -- nodetool status`,
            cql: `${kubectl} exec -it ${names.cassandra}-0 -- cqlsh -e "SELECT topic, seq FROM ${config.writer.keyspace}.prj04_last_seq"`,
            brokerIds: `${kubectl} exec ${names.zookeeper}-0 -- zookeeper-shell localhost:${CLIENT_PORT} ls /brokers/ids`,
            topicDescribe: `${kubectl} exec ${names.kafka}-0 -- kafka-topics --bootstrap-server localhost:${BROKER_PORT} --describe --topic ${config.clients.topic}`,
            writerLogs: `${kubectl} logs deploy/${names.writer} -f`,
            producerLogs: `${kubectl} logs deploy/${names.producer} -f`,
            consumerLogs: `${kubectl} logs deploy/${names.consumer} -f`,
        }),
        ...(kvs ? { kvsEndpoint: kvs.endpoint, kvsImage: kvs.image } : {}),
        deployed,
    };
}
