// The three server StatefulSets under Pulumi's mocks: who their pods run as, how long `pulumi up` waits
// for a rollout, and how their pods spread, as issue 9 asks.
import * as pulumi from "@pulumi/pulumi";
import { Cassandra, Kafka, namesOf, parseStackConfig, Placement, Zookeeper } from "../../infra";
import { containerOf, render, T } from "../program/render";

const placement: Placement = { namespace: "ns1", clusterDomain: "cluster.local", instance: "test", names: namesOf("") };

/** Renders the three servers and keeps the resource options each StatefulSet was registered with. */
async function renderServers(config: Record<string, unknown> = {}) {
    const stack = parseStackConfig(config);
    const options = new Map<string, pulumi.CustomResourceOptions>();
    const record: pulumi.ResourceTransformation = args => {
        if (args.type === T.statefulSet) options.set(args.props.metadata.name, args.opts);
        return undefined;
    };
    const r = await render("test", {}, () => {
        new Cassandra("cassandra", { placement, config: stack.cassandra }, { transformations: [record] });
        new Zookeeper("zookeeper", { placement, config: stack.zookeeper }, { transformations: [record] });
        new Kafka("kafka", { placement, config: stack.kafka, zookeeperConnect: "zk:2181" }, { transformations: [record] });
    });
    return { r, timeoutsOf: (sts: string) => options.get(sts)?.customTimeouts };
}

const SERVERS = ["cassandra", "zookeeper", "kafka"];

describe("server pods run as their image's own non-root user", () => {
    // Cassandra as the image's user cassandra (999) from the start, so its entry point never runs as root;
    // ZooKeeper and Kafka as the Confluent images' appuser (1000), given as a number so runAsNonRoot can be checked.
    test.each([["cassandra", 999], ["zookeeper", 1000], ["kafka", 1000]])("%s runs as its image's user %d, never as root", async (sts, uid) => {
        const { r } = await renderServers();
        expect(r.get(T.statefulSet, sts as string).spec.template.spec.securityContext).toEqual({
            runAsNonRoot: true,
            runAsUser: uid,
            runAsGroup: uid,
            // the claim's files are in the image user's group and group-writable, whoever made them
            fsGroup: uid,
            fsGroupChangePolicy: "OnRootMismatch",
            seccompProfile: { type: "RuntimeDefault" },
        });
    });

    test("no server container can gain privileges or keep a capability; the root filesystem stays writable for the entry points' config", async () => {
        const { r } = await renderServers();
        for (const sts of SERVERS) {
            expect(containerOf(r.get(T.statefulSet, sts)).securityContext).toEqual({
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"] },
                readOnlyRootFilesystem: false,
            });
        }
    });
});

describe("rollouts that fit real start times", () => {
    test("`pulumi up` waits for 3 Cassandra nodes one after another: 3 x (15 min + 30 s Ready) to create and to update", async () => {
        const { timeoutsOf } = await renderServers();
        expect(timeoutsOf("cassandra")).toEqual({ create: "47m", update: "47m" });
    });

    test("a ring scaled to 5 nodes gets a wait for 5 nodes", async () => {
        const { timeoutsOf } = await renderServers({ cassandra: { replicas: 5 } });
        expect(timeoutsOf("cassandra")).toEqual({ create: "78m", update: "78m" });
    });

    test("Kafka and ZooKeeper start their members at once but roll them one at a time: one member's wait to create, every member's to update", async () => {
        const { timeoutsOf } = await renderServers({ zookeeper: { replicas: 3 } });
        expect(timeoutsOf("kafka")).toEqual({ create: "11m", update: "31m" });
        expect(timeoutsOf("zookeeper")).toEqual({ create: "6m", update: "16m" });
    });

    test("a new pod must stay Ready a while before the next member is touched", async () => {
        const { r } = await renderServers();
        const minReady = Object.fromEntries(SERVERS.map(sts => [sts, r.get(T.statefulSet, sts).spec.minReadySeconds]));
        // Kafka's readiness itself waits for the ISR: one probe period more is enough.
        expect(minReady).toEqual({ cassandra: 30, zookeeper: 20, kafka: 10 });
    });
});

describe("spreading that keeps quorum when a node is lost, and still runs on one node", () => {
    test("each set prefers one pod per node and per zone, and no rule can leave a pod Pending", async () => {
        const { r } = await renderServers();
        for (const sts of SERVERS) {
            const pod = r.get(T.statefulSet, sts).spec.template.spec;
            const selector = { matchLabels: { app: sts, "app.kubernetes.io/instance": "test" } };
            expect(pod.topologySpreadConstraints).toEqual([
                { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: selector },
            ]);
            expect(pod.affinity).toEqual({
                podAntiAffinity: {
                    preferredDuringSchedulingIgnoredDuringExecution: [
                        { weight: 100, podAffinityTerm: { topologyKey: "topology.kubernetes.io/zone", labelSelector: selector } },
                    ],
                },
            });
        }
    });
});
