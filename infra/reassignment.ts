// Removing Kafka brokers safely: Kafka never moves a partition replica on its own, so a broker that
// leaves with replicas leaves its partitions under-replicated (or offline, if it held the last copy).
// `pulumi up` runs this step as a beforeUpdate hook of StatefulSet `kafka`: it reassigns every replica
// on the leaving brokers to brokers that stay and waits until each reassignment is complete; only then
// does the StatefulSet shrink.
import * as pulumi from "@pulumi/pulumi";
import { Kubectl, leavingOrdinals, providerKubectl, replicasChange } from "./decommission";
import { BROKER_PORT } from "./kafka";
import { until } from "./poll";

/** One partition's replica list, preferred leader first, as `kafka-topics --describe` prints it. */
export interface PartitionReplicas {
    readonly topic: string;
    readonly partition: number;
    readonly replicas: number[];
}

/**
 * How the step runs Kafka's own tools: in a broker's container (cp-kafka's `kafka-topics` and
 * `kafka-reassign-partitions`, with a small heap of their own: the pod's KAFKA_HEAP_OPTS is the broker's).
 */
export interface KafkaTools {
    /** Runs a bash script where the tools are and resolves to its stdout. */
    run(script: string): Promise<string>;
    /** The bootstrap server the tools use from there. */
    readonly bootstrap: string;
}

/** The tools in broker pod `<set>-0` (it always stays: at least one broker does). */
export function podTools(kubectl: Kubectl, namespace: string, set: string): KafkaTools {
    return {
        run: script => kubectl(["-n", namespace, "exec", `${set}-0`, "-c", "kafka", "--", "bash", "-c", `export KAFKA_HEAP_OPTS=-Xmx128M; ${script}`]),
        bootstrap: `localhost:${BROKER_PORT}`,
    };
}

/** The partitions of `kafka-topics --describe` (every topic, internal ones included). */
export function parseDescribe(out: string): PartitionReplicas[] {
    const parts: PartitionReplicas[] = [];
    for (const line of out.split("\n")) {
        const m = /\bTopic:\s*(\S+)\s+Partition:\s*(\d+)\s.*\bReplicas:\s*([\d,]+)/.exec(line);
        if (m) parts.push({ topic: m[1], partition: Number(m[2]), replicas: m[3].split(",").map(Number) });
    }
    return parts;
}

export interface Moves {
    /** The new replica lists of the partitions that had a replica on a leaving broker. */
    readonly plan: PartitionReplicas[];
    /** Partitions with more replicas than brokers stay: no plan can keep their replication factor. */
    readonly unplaceable: PartitionReplicas[];
}

/**
 * Replaces each replica on a broker >= `to` with the staying broker (0..to-1) that holds the fewest
 * replicas and is not already in that partition's list. The replacement takes the leaving broker's
 * place in the list, so a partition whose preferred leader leaves gets its new preferred leader there.
 */
export function planMoves(parts: PartitionReplicas[], to: number): Moves {
    const load = new Map<number, number>(Array.from({ length: to }, (_, b) => [b, 0]));
    for (const p of parts) for (const b of p.replicas) if (b < to) load.set(b, (load.get(b) ?? 0) + 1);
    const plan: PartitionReplicas[] = [];
    const unplaceable: PartitionReplicas[] = [];
    for (const p of parts) {
        if (!p.replicas.some(b => b >= to)) continue;
        if (p.replicas.length > to) { unplaceable.push(p); continue; }
        const replicas = [...p.replicas];
        for (let i = 0; i < replicas.length; i++) {
            if (replicas[i] < to) continue;
            const pick = [...load.entries()].filter(([b]) => !replicas.includes(b)).sort((a, b) => a[1] - b[1] || a[0] - b[0])[0][0];
            load.set(pick, load.get(pick)! + 1);
            replicas[i] = pick;
        }
        plan.push({ topic: p.topic, partition: p.partition, replicas });
    }
    return { plan, unplaceable };
}

/** kafka-reassign-partitions' JSON for a plan. */
export function reassignmentJson(plan: PartitionReplicas[]): string {
    return JSON.stringify({ version: 1, partitions: plan.map(p => ({ topic: p.topic, partition: p.partition, replicas: p.replicas })) });
}

/** What `--verify` says: the partitions still moving, and those no longer moving without reaching the plan. */
export function verifyState(verify: string): { inProgress: string[]; abandoned: string[] } {
    return {
        inProgress: [...verify.matchAll(/^Reassignment of partition (\S+) is still in progress/gm)].map(m => m[1]),
        abandoned: [...verify.matchAll(/^There is no active reassignment of partition (\S+), but (.*?)\.?$/gm)].map(m => `${m[1]} (${m[2]})`),
    };
}

const name = (p: PartitionReplicas) => `${p.topic}-${p.partition}`;
const listed = (ps: PartitionReplicas[], n = 5) => ps.slice(0, n).map(name).join(", ") + (ps.length > n ? ` and ${ps.length - n} more` : "");

export interface ReassignOptions {
    /** How long to wait for the data to move before giving up (the brokers are not touched either way). */
    readonly timeoutMs?: number;
    readonly pollMs?: number;
}

/**
 * Moves every partition replica off brokers to..from-1 onto brokers 0..to-1 and waits until Kafka
 * reports each reassignment complete (the new replicas caught up and joined the ISR), then checks that
 * no partition lists a leaving broker. Refuses, before anything moves, if a partition has more replicas
 * than brokers stay. Run again after a failure, it plans from what is there then.
 */
export async function reassignLeaving(tools: KafkaTools, from: number, to: number, log: (m: string) => void, opts: ReassignOptions = {}): Promise<void> {
    const leavingIds = leavingOrdinals(from, to).join(", ");
    const topicsCmd = `kafka-topics --bootstrap-server ${tools.bootstrap}`;
    const reassignCmd = `kafka-reassign-partitions --bootstrap-server ${tools.bootstrap} --reassignment-json-file /tmp/streamstack-reassign.json`;
    const parts = parseDescribe(await tools.run(`${topicsCmd} --describe`));
    const { plan, unplaceable } = planMoves(parts, to);
    if (unplaceable.length) {
        throw new Error(`kafka.replicas ${from} -> ${to}: ${unplaceable.length} partition(s) have more replicas than the ${to} broker(s) that stay (${listed(unplaceable)}, ` +
            `${unplaceable[0].replicas.length} replicas): lower their replication factor first (kafka-reassign-partitions with a plan of at most ${to} replicas per partition), or keep more brokers. Nothing was moved.`);
    }
    if (!plan.length) {
        log(`brokers ${leavingIds} hold no partition replicas: nothing to move`);
        return;
    }
    const started = Date.now();
    log(`moving ${plan.length} partition replica set(s) off brokers ${leavingIds} (${listed(plan)}) onto brokers 0..${to - 1}`);
    await tools.run(`printf '%s' '${reassignmentJson(plan)}' > /tmp/streamstack-reassign.json && ${reassignCmd} --execute`);
    let pending: string[] = [];
    await until(async () => {
        const state = verifyState(await tools.run(`${reassignCmd} --verify`));
        if (state.abandoned.length) {
            throw new Error(`kafka.replicas ${from} -> ${to}: ${state.abandoned.length} reassignment(s) stopped short of the plan (${state.abandoned.slice(0, 5).join(", ")}): ` +
                "another reassignment replaced or cancelled them; the StatefulSet was left as it was: run `pulumi up` again to plan from what is there now");
        }
        pending = state.inProgress;
        return pending.length ? undefined : true;
    }, { timeoutMs: opts.timeoutMs ?? 60 * 60_000, pollMs: opts.pollMs ?? 5000 }, () => new Error(
        `kafka.replicas ${from} -> ${to}: ${pending.length} reassignment(s) not complete after ${Math.round((Date.now() - started) / 1000)} s ` +
        `(${pending.slice(0, 5).join(", ")}); they go on in the cluster, and the StatefulSet was left as it was: run \`pulumi up\` again once they are done`));
    const still = parseDescribe(await tools.run(`${topicsCmd} --describe`)).filter(p => p.replicas.some(b => b >= to));
    if (still.length) throw new Error(`kafka.replicas ${from} -> ${to}: after the reassignment ${still.length} partition(s) still list a leaving broker (${listed(still)}); the StatefulSet was left as it was`);
    log(`brokers ${leavingIds} hold no partition replicas after ${Math.round((Date.now() - started) / 1000)} s: every reassignment is complete`);
}

/** What the hook runs: move the replicas off the brokers a lower replica count of StatefulSet `set` removes. */
export function reassignStep(namespace: string, set: string, kubectl: () => Kubectl = providerKubectl): pulumi.ResourceHookFunction {
    return async args => {
        const change = replicasChange(args);
        if (change === undefined || change.to >= change.from) return;
        await reassignLeaving(podTools(kubectl(), namespace, set), change.from, change.to, m => pulumi.log.info(m));
    };
}

/** The beforeUpdate hook of StatefulSet `set` (registered with the engine, which runs it during `up`, not during preview). */
export function reassignHook(namespace: string, set: string): pulumi.ResourceHook {
    return new pulumi.ResourceHook("kafka-reassign", reassignStep(namespace, set));
}
