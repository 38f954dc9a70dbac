// The program reads what its own stack deployed last (the `deployed` output, through a StackReference
// to itself) before it registers anything, and records what it deploys for the next run.
import * as pulumi from "@pulumi/pulumi";
import { deployChecked, Kubectl, loadConfig, recordOf, parseStackConfig } from "../../infra";
import { render, Rendered, T } from "./render";

const STACK_REFERENCE = "pulumi:pulumi:StackReference";

let warnings: string[];
beforeEach(() => {
    warnings = [];
    jest.spyOn(pulumi.log, "warn").mockImplementation(async (message: string) => { warnings.push(message); });
});
afterEach(() => jest.restoreAllMocks());

/** `pulumi up` of the stack whose last update left `previousOutputs`, with config `config`. */
async function up(config: Record<string, unknown>, previousOutputs?: Record<string, unknown>, kubectl?: Kubectl): Promise<{ r: Rendered; error?: string }> {
    let error: string | undefined;
    const r = await render("dev", config, async () => {
        try {
            return await deployChecked(loadConfig(), kubectl && (() => kubectl)) as any;
        } catch (e) {
            error = (e as Error).message;
        }
    }, { previousOutputs });
    return { r, error };
}

const deployedBy = (raw: Record<string, unknown>) => ({ deployed: JSON.parse(JSON.stringify(recordOf(parseStackConfig(raw)))) });
const kubernetesAndDocker = (r: Rendered) => r.resources.filter(x => x.type !== STACK_REFERENCE);

test("a new stack (no outputs yet) deploys everything, and records what it deployed as the output `deployed`", async () => {
    const { r, error } = await up({ zookeeper: { replicas: 3 } });
    expect(error).toBeUndefined();
    expect(warnings).toEqual([]);
    expect(r.ofType(T.statefulSet)).toHaveLength(3);
    expect(r.outputs.deployed).toEqual(recordOf(parseStackConfig({ zookeeper: { replicas: 3 } })));
});

test("the program reads its own stack's outputs: a StackReference to organization/project/stack", async () => {
    const { r } = await up({});
    expect(r.resources.filter(x => x.type === STACK_REFERENCE).map(x => x.inputs.name)).toEqual(["organization/streamstack/dev"]);
});

test("a refused change fails with every refusal in one message and registers no Kubernetes or Docker resource", async () => {
    const { r, error } = await up({ cassandra: { clusterName: "other" }, zookeeper: { replicas: 3 } }, deployedBy({}));
    expect(error).toMatch(/^Refused changes to what this stack has deployed \(2\):/);
    expect(error).toContain('streamstack:cassandra.clusterName: "ece573-prj04" -> "other" refused: ');
    expect(error).toContain("streamstack:zookeeper.replicas: 1 -> 3 refused: ");
    expect(kubernetesAndDocker(r)).toEqual([]);
});

test("what one update records is what the next compares with: lowering cassandra.replicas to 2 after 3 is refused", async () => {
    const rf2 = { writer: { replicationFactor: 2 } };
    const first = await up({ cassandra: { replicas: 3 }, ...rf2 });
    const second = await up({ cassandra: { replicas: 2 }, ...rf2 }, first.r.outputs);
    expect(second.error).toMatch(/streamstack:cassandra\.replicas: 3 -> 2 refused: .*nodetool decommission/);
    const confirmed = await up({ cassandra: { replicas: 2 }, ...rf2, confirm: "cassandra.replicas=2" }, first.r.outputs);
    expect(confirmed.error).toBeUndefined();
    expect(confirmed.r.get(T.statefulSet, "cassandra").spec.replicas).toBe(2);
});

test("a change that only warns is shown through pulumi.log.warn, as a preview shows it, and is deployed", async () => {
    const { r, error } = await up({ clients: { partitions: 4 }, kafka: { partitions: 8 } }, deployedBy({ clients: { partitions: 4 } }));
    expect(error).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(/^streamstack:kafka\.partitions: 4 -> 8: every broker restarts, one at a time/)]);
    expect(r.get(T.statefulSet, "kafka").spec.template.spec.containers[0].env).toContainEqual({ name: "KAFKA_NUM_PARTITIONS", value: "8" });
});

test("unrelated changes go through the previous record without a word", async () => {
    const { error } = await up({ writer: { consistency: "ONE" }, cassandra: { cpu: "1", memory: "2Gi" } }, deployedBy({}));
    expect(error).toBeUndefined();
    expect(warnings).toEqual([]);
});

test("a stack last updated by a program that recorded nothing is told that nothing is compared this time", async () => {
    const { error } = await up({ zookeeper: { replicas: 3 } }, { namespace: "streamstack" });
    expect(error).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(/has outputs but no `deployed` record .*nothing is compared/)]);
});

test("a claim growth the storage class cannot serve is refused by the preview itself, with the other refusals, before anything is registered", async () => {
    // The cluster as kubectl reads it: kafka's claims are of a class without volume expansion.
    const kubectl: Kubectl = async args => {
        if (args.join(" ") === "-n streamstack get pvc -o json") return JSON.stringify({ items: [0, 1, 2].map(i => ({ metadata: { name: `kafka-data-kafka-${i}` }, spec: { storageClassName: "fixed" } })) });
        if (args.join(" ") === "get storageclass fixed -o jsonpath={.allowVolumeExpansion}") return "false";
        throw new Error(`unexpected kubectl ${args.join(" ")}`);
    };
    const { r, error } = await up({ kafka: { storageSize: "20Gi" }, cassandra: { clusterName: "other" } }, deployedBy({}), kubectl);
    expect(error).toMatch(/^Refused changes to what this stack has deployed \(2\):/);
    expect(error).toContain('streamstack:kafka.storageSize: "10Gi" -> "20Gi" refused: kafka\'s claims are of class fixed, which does not allow volume expansion');
    expect(error).toContain("streamstack:cassandra.clusterName:");
    expect(kubernetesAndDocker(r)).toEqual([]);
    expect(warnings).toEqual([]); // not the guard's "grows each claim in place"
    // With an expandable class the same growth goes ahead, with the guard's warning.
    const growable: Kubectl = async args => (args[0] === "get" ? "true" : kubectl(args));
    const ok = await up({ kafka: { storageSize: "20Gi" } }, deployedBy({}), growable);
    expect(ok.error).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(/^streamstack:kafka\.storageSize: "10Gi" -> "20Gi": the provider replaces StatefulSet kafka/)]);
});
