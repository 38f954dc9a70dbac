import * as pulumi from "@pulumi/pulumi";
import { ZookeeperConfig } from "./config";
import { Placement, podFqdns, serviceFqdn } from "./meta";
import { CONFLUENT_POD_SECURITY, createStatefulSystem, execProbe, resourcesOf } from "./stateful";

export const CLIENT_PORT = 2181;
export const PEER_PORT = 2888;
export const ELECTION_PORT = 3888;

export interface ZookeeperArgs {
    /** Where the objects go and how DNS names are formed. */
    readonly placement: Placement;
    /** Validated `streamstack:zookeeper` config. */
    readonly config: ZookeeperConfig;
}

// Asks the four-letter-word port over bash's /dev/tcp: the image ships no nc.
const fourLetterWord = (word: string, expect: string) =>
    `exec 3<>/dev/tcp/127.0.0.1/${CLIENT_PORT} && printf ${word} >&3 && grep -q "${expect}" <&3`;

/**
 * The ensemble's start command: server id = pod ordinal + 1 and, with more than one member, the
 * server list in which this pod's own entry binds 0.0.0.0 (its FQDN may not resolve to itself yet).
 */
export function zookeeperStartScript(members: string[]): string {
    const lines = [
        "set -e",
        "ordinal=${HOSTNAME##*-}",
        "export ZOOKEEPER_SERVER_ID=$((ordinal + 1))",
    ];
    if (members.length > 1) {
        lines.push(
            "servers=''",
            `i=0; for host in ${members.join(" ")}; do`,
            `  if [ "$i" = "$ordinal" ]; then host=0.0.0.0; fi`,
            `  servers="$servers\${servers:+;}$host:${PEER_PORT}:${ELECTION_PORT}"; i=$((i + 1))`,
            "done",
            "export ZOOKEEPER_SERVERS=\"$servers\"",
        );
    }
    lines.push("exec /etc/confluent/docker/run");
    return lines.join("\n");
}

/** A ZooKeeper ensemble: headless Service `zookeeper-service`, StatefulSet `zookeeper`, and its PDB (names: placement.names). */
export class Zookeeper extends pulumi.ComponentResource {
    /** Connect string for Kafka: the Service FQDN for one member, every member's FQDN for an ensemble. */
    public readonly connectString: pulumi.Output<string>;
    public readonly serviceName: pulumi.Output<string>;
    public readonly statefulSetName: pulumi.Output<string>;

    constructor(name: string, args: ZookeeperArgs, opts?: pulumi.ComponentResourceOptions) {
        super("streamstack:zookeeper:Zookeeper", name, {}, opts);
        const { placement, config } = args;
        const { zookeeper: set, zookeeperService: serviceName } = placement.names;
        const members = podFqdns(placement, set, config.replicas, serviceName);
        const connectString = config.replicas === 1
            ? `${serviceFqdn(placement, serviceName)}:${CLIENT_PORT}`
            : members.map(m => `${m}:${CLIENT_PORT}`).join(",");

        const system = createStatefulSystem(name, {
            placement,
            app: "zookeeper",
            name: set,
            component: "coordination",
            serviceName,
            ports: [
                { name: "client", port: CLIENT_PORT },
                { name: "peer", port: PEER_PORT },
                { name: "leader-election", port: ELECTION_PORT },
            ],
            replicas: config.replicas,
            podManagementPolicy: "Parallel",
            // A member that drops out right after joining stops a roll before a second one goes and the
            // ensemble loses its majority (a Parallel set's roll honours it since kubernetes#130909).
            minReadySeconds: 20,
            memberStartMinutes: 5,
            terminationGracePeriodSeconds: 60,
            securityContext: CONFLUENT_POD_SECURITY,
            // cp-zookeeper declares VOLUME /var/lib/zookeeper/data (snapshots, myid) and .../log (the
            // transaction log): one claim, mounted at each of them exactly.
            storage: { mounts: [{ mountPath: "/var/lib/zookeeper/data", subPath: "data" }, { mountPath: "/var/lib/zookeeper/log", subPath: "log" }], size: config.storageSize, storageClass: config.storageClass },
            container: {
                name: "zookeeper",
                image: config.image,
                command: ["bash", "-c", zookeeperStartScript(members)],
                resources: resourcesOf(config),
                env: [
                    { name: "ZOOKEEPER_CLIENT_PORT", value: String(CLIENT_PORT) },
                    { name: "ZOOKEEPER_TICK_TIME", value: "2000" },
                    { name: "ZOOKEEPER_INIT_LIMIT", value: "10" },
                    { name: "ZOOKEEPER_SYNC_LIMIT", value: "5" },
                    // The probes below use ruok and srvr, which ZooKeeper 3.5+ refuses unless listed; the
                    // image's properties template has no key for the list, so it goes in as a system property.
                    { name: "KAFKA_OPTS", value: "-Dzookeeper.4lw.commands.whitelist=ruok,srvr,mntr" },
                    { name: "KAFKA_HEAP_OPTS", value: `-Xms${config.heapSize} -Xmx${config.heapSize}` },
                ],
                // srvr answers "not currently serving requests" until this member is in a quorum.
                readinessProbe: execProbe(fourLetterWord("srvr", "Mode: "), 10, 5, 3, 5),
                livenessProbe: execProbe(fourLetterWord("ruok", "imok"), 15, 5, 4, 30),
            },
        }, { parent: this, dependsOn: opts?.dependsOn }); // children wait for what the component waits for

        this.serviceName = system.service.metadata.name;
        this.statefulSetName = system.statefulSet.metadata.name;
        this.connectString = pulumi.output(connectString);
        this.registerOutputs({ connectString: this.connectString, serviceName: this.serviceName });
    }
}
