import * as pulumi from "@pulumi/pulumi";
import { cassandraReadyScript } from "./cassandraReadiness";
import { CassandraConfig } from "./config";
import { decommissionHook } from "./decommission";
import { Placement, podFqdns, serviceFqdn } from "./meta";
import { createStatefulSystem, execProbe, resourcesOf, serverPodSecurity } from "./stateful";

export const CQL_PORT = 9042;
export const INTERNODE_PORT = 7000;
/**
 * The official image's user `cassandra`. Its entry point, started as root, chowns data, logs and conf to
 * it and steps down with gosu; started as 999 it skips both and edits cassandra.yaml and
 * cassandra-rackdc.properties in place, which the image leaves writable by all (conf is a+rwX).
 */
export const CASSANDRA_UID = 999;
/**
 * nodetool as the preStop and the decommission step run it. Apache's bin/nodetool starts a JVM with
 * -Xmx$MAX_HEAP_SIZE, and the container's MAX_HEAP_SIZE is the server's heap: a second JVM of that size
 * in the server's memory limit. It gets a heap of its own, and the client compiler only (a short run).
 */
export const NODETOOL = 'MAX_HEAP_SIZE=128M JVM_OPTS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" nodetool';

export interface CassandraArgs {
    /** Where the objects go and how DNS names are formed. */
    readonly placement: Placement;
    /** Validated `streamstack:cassandra` config. */
    readonly config: CassandraConfig;
}

/** A Cassandra ring: headless Service `cassandra-service`, StatefulSet `cassandra`, and its PDB (names: placement.names). */
export class Cassandra extends pulumi.ComponentResource {
    /** Name of the headless Service; resolves to every Cassandra pod. */
    public readonly serviceName: pulumi.Output<string>;
    /** `cassandra-service.<ns>.svc.<domain>`: what clients use as their seed list. */
    public readonly contactPoint: pulumi.Output<string>;
    /** The seeds, FQDNs of the first `seedCount` pods. */
    public readonly seeds: pulumi.Output<string[]>;
    public readonly statefulSetName: pulumi.Output<string>;

    constructor(name: string, args: CassandraArgs, opts?: pulumi.ComponentResourceOptions) {
        super("streamstack:cassandra:Cassandra", name, {}, opts);
        const { placement, config } = args;
        const { cassandra: set, cassandraService: serviceName } = placement.names;
        const seeds = podFqdns(placement, set, config.seedCount, serviceName);

        const system = createStatefulSystem(name, {
            placement,
            app: "cassandra",
            name: set,
            component: "database",
            serviceName,
            ports: [{ name: "cql", port: CQL_PORT }, { name: "intra-node", port: INTERNODE_PORT }],
            replicas: config.replicas,
            // Nodes must bootstrap one at a time or they fight over token ranges.
            podManagementPolicy: "OrderedReady",
            // Ready 30 s before the next node is touched: the others' gossip has marked this one up, and a
            // node that falls over right after joining stops the roll.
            minReadySeconds: 30,
            // The startup probe allows 10 minutes, then the node joins the ring (after a SIGKILL on a loaded
            // 2-core node, commit log replay and rejoining took 236 s: e2e drill 3).
            memberStartMinutes: 15,
            // `nodetool drain` flushes memtables and leaves the ring cleanly; give it time.
            terminationGracePeriodSeconds: 300,
            securityContext: serverPodSecurity(CASSANDRA_UID),
            // A lower replica count decommissions the leaving nodes first (infra/decommission.ts); a
            // decommissioned node refuses to start on its old data, so its claim goes with its pod.
            beforeUpdate: () => decommissionHook(placement.namespace, set),
            claimsWhenScaledDown: "Delete",
            // The official image's only data VOLUME.
            storage: { mounts: [{ mountPath: "/var/lib/cassandra" }], size: config.storageSize, storageClass: config.storageClass },
            container: {
                name: "cassandra",
                image: config.image,
                resources: resourcesOf(config),
                env: [
                    { name: "MAX_HEAP_SIZE", value: config.maxHeapSize },
                    { name: "HEAP_NEWSIZE", value: config.heapNewSize },
                    { name: "CASSANDRA_SEEDS", value: seeds.join(",") },
                    { name: "CASSANDRA_CLUSTER_NAME", value: config.clusterName },
                    { name: "CASSANDRA_ENDPOINT_SNITCH", value: "GossipingPropertyFileSnitch" },
                    { name: "CASSANDRA_DC", value: config.datacenter },
                    { name: "CASSANDRA_RACK", value: config.rack },
                    { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
                ],
                // Ready only when this very node is NORMAL in the ring, not merely listening: asked over CQL
                // (infra/cassandraReadiness.ts), milliseconds instead of a nodetool JVM every period.
                readinessProbe: execProbe(cassandraReadyScript("127.0.0.1", CQL_PORT), 5, 10, 3, 10),
                // Bootstrap streams data for minutes; the startup probe holds liveness off until then.
                startupProbe: { tcpSocket: { port: INTERNODE_PORT }, periodSeconds: 10, failureThreshold: 60 },
                livenessProbe: { tcpSocket: { port: INTERNODE_PORT }, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 6 },
                lifecycle: { preStop: { exec: { command: ["bash", "-c", `${NODETOOL} drain`] } } },
            },
        }, { parent: this, dependsOn: opts?.dependsOn }); // children wait for what the component waits for

        this.serviceName = system.service.metadata.name;
        this.statefulSetName = system.statefulSet.metadata.name;
        this.contactPoint = pulumi.output(serviceFqdn(placement, serviceName));
        this.seeds = pulumi.output(seeds);
        this.registerOutputs({ serviceName: this.serviceName, contactPoint: this.contactPoint, seeds: this.seeds });
    }
}
