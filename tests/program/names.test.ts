// Two stacks in one namespace: a second stack's namePrefix gives every object a name of its own, and
// every selector holds the stack (the instance label), so neither stack selects the other's pods.
// On a real API server with both stacks in one namespace: tests/deploy/apiserver.test.ts.
import * as pulumi from "@pulumi/pulumi";
import { deployChecked, deployStack, loadConfig } from "../../infra";
import { envOf, render, Rendered, T } from "./render";

const program = () => deployStack(loadConfig()) as any;
const kvsOn = { kvs: { enabled: true, postgresPassword: "pw" } };
const KINDS = [T.service, T.statefulSet, T.deployment, T.pdb, "kubernetes:core/v1:Secret"];

/** kind/name of every Kubernetes object but the namespace. */
const objectNames = (r: Rendered) => KINDS.flatMap(k => r.ofType(k).map(o => `${k.split(":").pop()}/${o.metadata.name}`)).sort();

/** Whether a selector (matchLabels or a Service's selector) matches a pod template's labels. */
const selects = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
const selectorOf = (o: any) => o.spec.selector?.matchLabels ?? o.spec.selector;
const podLabels = (r: Rendered) => [...r.ofType(T.statefulSet), ...r.ofType(T.deployment)].map(w => w.spec.template.metadata.labels);

test("the default stack keeps the course's names; namePrefix blue gives every object its own", async () => {
    const dev = await render("dev", kvsOn, program, { secretKeys: ["kvs"] });
    const blue = await render("blue", { ...kvsOn, namePrefix: "blue" }, program, { secretKeys: ["kvs"] });
    expect(objectNames(dev)).toEqual([
        "Deployment/ece573-prj04-writer", "Deployment/ece573-prj05-consumer", "Deployment/ece573-prj05-producer", "Deployment/kvs",
        "PodDisruptionBudget/cassandra", "PodDisruptionBudget/kafka", "PodDisruptionBudget/postgres", "PodDisruptionBudget/zookeeper",
        "Secret/kvs-postgres",
        "Service/cassandra-service", "Service/kafka-service", "Service/kvs-service", "Service/postgres-service", "Service/zookeeper-service",
        "StatefulSet/cassandra", "StatefulSet/kafka", "StatefulSet/postgres", "StatefulSet/zookeeper",
    ]);
    expect(objectNames(blue)).toEqual(objectNames(dev).map(n => n.replace("/", "/blue-")).sort());
});

test("a prefixed stack's in-cluster names all follow its prefix: seeds, brokers, ensemble, listeners, claims, the Secret", async () => {
    const r = await render("blue", { ...kvsOn, namePrefix: "blue", zookeeper: { replicas: 3 } }, program, { secretKeys: ["kvs"] });
    const dns = (host: string) => `${host}.streamstack.svc.cluster.local`;
    const cassandra = r.get(T.statefulSet, "blue-cassandra");
    expect(cassandra.spec.serviceName).toBe("blue-cassandra-service");
    expect(envOf(cassandra).CASSANDRA_SEEDS).toBe(dns("blue-cassandra-0.blue-cassandra-service"));
    expect(cassandra.spec.volumeClaimTemplates[0].metadata.name).toBe("blue-cassandra-data");
    const kafka = r.get(T.statefulSet, "blue-kafka");
    expect(envOf(kafka).KAFKA_ZOOKEEPER_CONNECT).toBe([0, 1, 2].map(i => `${dns(`blue-zookeeper-${i}.blue-zookeeper-service`)}:2181`).join(","));
    expect(envOf(kafka).KAFKA_ADVERTISED_LISTENERS).toBe(`PLAINTEXT://$(POD_NAME).${dns("blue-kafka-service")}:9092`);
    expect(envOf(r.get(T.deployment, "blue-ece573-prj05-producer")).KAFKA_BROKERS).toBe([0, 1, 2].map(i => `${dns(`blue-kafka-${i}.blue-kafka-service`)}:9092`).join(","));
    expect(envOf(r.get(T.deployment, "blue-ece573-prj04-writer")).CASSANDRA_SEEDS).toBe(dns("blue-cassandra-service"));
    const kvs = r.get(T.deployment, "blue-kvs");
    expect(envOf(kvs).POSTGRES_HOST).toBe(dns("blue-postgres-service"));
    expect(kvs.spec.template.spec.containers[0].env.find((e: any) => e.name === "POSTGRES_PASSWORD").valueFrom.secretKeyRef.name).toBe("blue-kvs-postgres");
    expect(r.outputs.kvsEndpoint).toBe(`http://${dns("blue-kvs-service")}:8080`);
    // The container keeps the course's name; the `app` label too, with the stack beside it.
    expect(r.get(T.deployment, "blue-ece573-prj04-writer").spec.template.spec.containers[0].name).toBe("ece573-prj04-writer");
    expect(r.get(T.statefulSet, "blue-kafka").spec.selector.matchLabels).toEqual({ app: "kafka", "app.kubernetes.io/instance": "blue" });
    expect(r.outputs.checks).toMatchObject({
        ringStatus: "kubectl -n streamstack exec blue-cassandra-0 -- nodetool status",
        brokerIds: "kubectl -n streamstack exec blue-zookeeper-0 -- zookeeper-shell localhost:2181 ls /brokers/ids",
        writerLogs: "kubectl -n streamstack logs deploy/blue-ece573-prj04-writer -f",
    });
    expect(JSON.stringify(r.resources)).not.toMatch(/[^-a-z]cassandra-service\./);
});

test("no selector of one stack matches a pod of the other, and each matches its own pods", async () => {
    const dev = await render("dev", {}, program);
    const blue = await render("blue", { namePrefix: "blue" }, program);
    for (const [own, other] of [[dev, blue], [blue, dev]]) {
        for (const o of [...own.ofType(T.service), ...own.ofType(T.statefulSet), ...own.ofType(T.deployment), ...own.ofType(T.pdb)]) {
            const selector = selectorOf(o);
            expect(podLabels(other).filter(l => selects(selector, l))).toEqual([]);
            expect(podLabels(own).filter(l => selects(selector, l))).toHaveLength(1);
        }
    }
});

test("a stack name that cannot be a label value is refused before anything is registered", async () => {
    for (const stack of ["a".repeat(64), "_dev", "dev."]) {
        let error = "";
        const r = await render(stack, {}, async () => {
            try { return await deployChecked(loadConfig()) as any; } catch (e) { error = (e as Error).message; }
        });
        expect(pulumi.getStack()).toBe(stack);
        expect(error).toContain(`stack name "${stack}": must be usable as the app.kubernetes.io/instance label`);
        expect(r.resources).toEqual([]);
    }
});
