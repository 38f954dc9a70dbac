// The decommission step `pulumi up` runs before StatefulSet cassandra shrinks, driven here through a
// stand-in for kubectl that answers as a node would (netstats mode NORMAL, then DECOMMISSIONED).
// On real pods: tests/e2e/system.test.ts, "cassandra.replicas 4 -> 3".
import * as pulumi from "@pulumi/pulumi";
import { decommissionLeaving, decommissionStep, Kubectl, modeOf, NODETOOL } from "../../infra";

/** A kubectl stand-in: each pod's mode, `decommission` moving it to DECOMMISSIONED unless told to fail. */
function standInKubectl(modes: Record<string, string>, failOn?: string): { kubectl: Kubectl; calls: string[] } {
    const calls: string[] = [];
    const kubectl: Kubectl = async args => {
        const pod = args[3];
        const command = args[args.length - 1];
        calls.push(`${pod}: ${command.replace(NODETOOL, "nodetool")}`);
        expect(args.slice(0, 3)).toEqual(["-n", "ns", "exec"]);
        expect(args.slice(4, 9)).toEqual(["-c", "cassandra", "--", "bash", "-c"]);
        if (command.endsWith("netstats")) return `Mode: ${modes[pod]}\nNot sending any streams.\n`;
        if (pod === failOn) throw new Error(`kubectl exec ${pod} failed: error: Not enough live nodes to maintain replication factor in keyspace system_distributed`);
        modes[pod] = "DECOMMISSIONED";
        return "";
    };
    return { kubectl, calls };
}

test("nodetool netstats' mode line is read", () => {
    expect(modeOf("Mode: NORMAL\nNot sending any streams.")).toBe("NORMAL");
    expect(modeOf("Mode: DECOMMISSIONED\n")).toBe("DECOMMISSIONED");
    expect(modeOf("error: connection refused")).toBeUndefined();
});

test("the leaving nodes are decommissioned one at a time, highest ordinal first, each checked afterwards, with nodetool's small heap", async () => {
    const { kubectl, calls } = standInKubectl({ "cassandra-3": "NORMAL", "cassandra-4": "NORMAL" });
    const logs: string[] = [];
    await decommissionLeaving(kubectl, "ns", "cassandra", 5, 3, m => logs.push(m));
    expect(calls).toEqual([
        "cassandra-4: nodetool netstats", "cassandra-4: nodetool decommission", "cassandra-4: nodetool netstats",
        "cassandra-3: nodetool netstats", "cassandra-3: nodetool decommission", "cassandra-3: nodetool netstats",
    ]);
    expect(NODETOOL).toMatch(/^MAX_HEAP_SIZE=128M /);
    expect(logs.filter(l => /^cassandra-\d decommissioned in \d+ s$/.test(l))).toHaveLength(2);
});

test("a node an earlier, failed `up` already decommissioned is skipped", async () => {
    const { kubectl, calls } = standInKubectl({ "cassandra-3": "NORMAL", "cassandra-4": "DECOMMISSIONED" });
    await decommissionLeaving(kubectl, "ns", "cassandra", 5, 3, () => undefined);
    expect(calls).toEqual(["cassandra-4: nodetool netstats", "cassandra-3: nodetool netstats", "cassandra-3: nodetool decommission", "cassandra-3: nodetool netstats"]);
});

test("a refused decommission stops the step with nodetool's reason, and the next node is not touched", async () => {
    const { kubectl, calls } = standInKubectl({ "cassandra-1": "NORMAL", "cassandra-2": "NORMAL" }, "cassandra-2");
    await expect(decommissionLeaving(kubectl, "ns", "cassandra", 3, 1, () => undefined)).rejects.toThrow(/Not enough live nodes to maintain replication factor in keyspace system_distributed/);
    expect(calls).toEqual(["cassandra-2: nodetool netstats", "cassandra-2: nodetool decommission"]);
});

test("a node still in the ring after decommission returned is an error, not a shrink", async () => {
    const kubectl: Kubectl = async args => (args[args.length - 1].endsWith("netstats") ? "Mode: LEAVING\n" : "");
    await expect(decommissionLeaving(kubectl, "ns", "cassandra", 4, 3, () => undefined)).rejects.toThrow(/cassandra-3: nodetool decommission returned but its mode is LEAVING, not DECOMMISSIONED/);
});

describe("the step the StatefulSet's beforeUpdate hook runs", () => {
    const hookArgs = (from: number, to: number) => ({ urn: "urn", id: "cassandra", name: "cassandra-statefulset", type: "kubernetes:apps/v1:StatefulSet", oldInputs: { spec: { replicas: from } }, newInputs: { spec: { replicas: to } } });
    beforeEach(() => jest.spyOn(pulumi.log, "info").mockImplementation(async () => undefined));
    afterEach(() => jest.restoreAllMocks());

    test("a lower replica count decommissions the nodes it removes", async () => {
        const { kubectl, calls } = standInKubectl({ "cassandra-3": "NORMAL" });
        await decommissionStep("ns", "cassandra", () => kubectl)(hookArgs(4, 3));
        expect(calls).toContain("cassandra-3: nodetool decommission");
    });

    test("an update that does not lower the count runs nothing", async () => {
        const { kubectl, calls } = standInKubectl({});
        const step = decommissionStep("ns", "cassandra", () => kubectl);
        await step(hookArgs(3, 4));
        await step(hookArgs(3, 3));
        await step({ ...hookArgs(3, 3), oldInputs: undefined });
        expect(calls).toEqual([]);
    });
});

test("a decommissioned node's claim goes with its pod (it refuses to start on that data); the other sets keep theirs", async () => {
    const { render, T } = await import("../program/render");
    const { deployStack, loadConfig } = await import("../../infra");
    const r = await render("dev", {}, () => deployStack(loadConfig()) as any);
    expect(r.get(T.statefulSet, "cassandra").spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenScaled: "Delete", whenDeleted: "Retain" });
    for (const set of ["zookeeper", "kafka"]) expect(r.get(T.statefulSet, set).spec.persistentVolumeClaimRetentionPolicy).toBeUndefined();
});
