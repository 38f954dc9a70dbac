// Removing Cassandra nodes safely: `nodetool decommission` streams a node's token ranges to the nodes
// that stay and takes it out of the ring; only then may its pod go. `pulumi up` runs this step as a
// beforeUpdate hook of StatefulSet `cassandra`, so the StatefulSet shrinks only after it succeeded.
import * as pulumi from "@pulumi/pulumi";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NODETOOL } from "./cassandra";

/** Runs kubectl with these arguments and resolves to its stdout; rejects with its stderr. */
export type Kubectl = (args: string[]) => Promise<string>;

/**
 * kubectl against the cluster the provider deploys to: `kubernetes:context` and `kubernetes:kubeconfig`
 * of the stack, as the provider reads them. kubectl rather than @kubernetes/client-node: that client
 * is an ES module since 1.0, and this program runs as CommonJS.
 */
export function providerKubectl(): Kubectl {
    const k8s = new pulumi.Config("kubernetes");
    const context = k8s.get("context");
    let kubeconfig = k8s.get("kubeconfig");
    // The provider takes the kubeconfig's path or its contents.
    if (kubeconfig !== undefined && !fs.existsSync(kubeconfig)) {
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "streamstack-")), "kubeconfig");
        fs.writeFileSync(file, kubeconfig, { mode: 0o600 });
        kubeconfig = file;
    }
    const global = [...(kubeconfig ? ["--kubeconfig", kubeconfig] : []), ...(context ? ["--context", context] : [])];
    return args => new Promise((resolve, reject) => {
        execFile("kubectl", [...global, ...args], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
            if (err) reject(new Error(`kubectl ${args.join(" ")} failed: ${String(stderr).trim() || err.message}`));
            else resolve(String(stdout));
        });
    });
}

/** `nodetool netstats`' first line: `Mode: NORMAL`, `LEAVING`, `DECOMMISSIONED`, ... */
export function modeOf(netstats: string): string | undefined {
    return /^Mode:\s*(\S+)/m.exec(netstats)?.[1];
}

/**
 * Decommissions pods <set>-(from-1) down to <set>-(to), one at a time, highest first (the
 * StatefulSet removes the highest ordinals). A node already decommissioned (an earlier `up` that
 * failed after this step) is skipped. Any failure stops here, before the StatefulSet is touched.
 */
export async function decommissionLeaving(kubectl: Kubectl, namespace: string, set: string, from: number, to: number, log: (m: string) => void): Promise<void> {
    const nodetool = (pod: string, command: string) => kubectl(["-n", namespace, "exec", pod, "-c", "cassandra", "--", "bash", "-c", `${NODETOOL} ${command}`]);
    for (let ordinal = from - 1; ordinal >= to; ordinal--) {
        const pod = `${set}-${ordinal}`;
        const mode = modeOf(await nodetool(pod, "netstats"));
        if (mode === "DECOMMISSIONED") {
            log(`${pod} is already decommissioned`);
            continue;
        }
        const started = Date.now();
        log(`decommissioning ${pod}: streaming its token ranges to the nodes that stay (minutes per node)`);
        // Returns once the node has streamed its data and left the ring; refuses while a keyspace needs more nodes than stay.
        await nodetool(pod, "decommission");
        const after = modeOf(await nodetool(pod, "netstats"));
        if (after !== "DECOMMISSIONED") throw new Error(`${pod}: nodetool decommission returned but its mode is ${after ?? "unknown"}, not DECOMMISSIONED`);
        log(`${pod} decommissioned in ${Math.round((Date.now() - started) / 1000)} s`);
    }
}

/** The ordinals a StatefulSet going from `from` to `to` replicas removes (its highest), lowest first. */
export const leavingOrdinals = (from: number, to: number): number[] => Array.from({ length: Math.max(0, from - to) }, (_, i) => to + i);

/** The replica counts a StatefulSet update goes from and to, from a hook's old and new inputs. */
export function replicasChange(args: pulumi.ResourceHookArgs): { from: number; to: number } | undefined {
    const from = args.oldInputs?.spec?.replicas;
    const to = args.newInputs?.spec?.replicas;
    return typeof from === "number" && typeof to === "number" ? { from, to } : undefined;
}

/** What the hook runs: decommission the nodes a lower replica count of Cassandra StatefulSet `set` removes. */
export function decommissionStep(namespace: string, set: string, kubectl: () => Kubectl = providerKubectl): pulumi.ResourceHookFunction {
    return async args => {
        const change = replicasChange(args);
        if (change === undefined || change.to >= change.from) return;
        await decommissionLeaving(kubectl(), namespace, set, change.from, change.to, m => pulumi.log.info(m));
    };
}

/** The beforeUpdate hook of Cassandra StatefulSet `set` (registered with the engine, which runs it during `up`, not during preview). */
export function decommissionHook(namespace: string, set: string): pulumi.ResourceHook {
    return new pulumi.ResourceHook("cassandra-decommission", decommissionStep(namespace, set));
}
