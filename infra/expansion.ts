// Growing a StatefulSet's claims without taking its pods down. A claim template cannot change in place:
// the provider replaces the StatefulSet (delete, then create, since it has a fixed name), and the delete
// would take every pod at once while the claims kept their old size. `pulumi up` runs this step as a
// beforeDelete hook of the StatefulSet instead: it grows each claim in place (the StorageClass must allow
// expansion), restarts, one at a time, only the pods whose file system grows at mount, then deletes the
// StatefulSet with --cascade=orphan. The pods keep running; the new StatefulSet takes them back.
// A selector change (an older program's `app`-only selector, now with the instance) is a replacement
// too: when the running pods carry every label of the new selector, the hook only orphans them (the new
// StatefulSet then rolls them one at a time if its pod template differs, rather than all at once).
import * as pulumi from "@pulumi/pulumi";
import { Kubectl, providerKubectl } from "./decommission";
import { isLarger, parseQuantity } from "./quantity";
import { until, type PollOptions } from "./poll";

export interface ExpandOptions {
    /** How long one claim (or one restarted pod) may take. */
    readonly timeoutMs?: number;
    readonly pollMs?: number;
}

interface Claim {
    metadata: { name: string; uid: string };
    spec: { storageClassName?: string; resources?: { requests?: { storage?: string } } };
    status?: { phase?: string; capacity?: { storage?: string }; conditions?: { type: string; status: string }[] };
}

const bytes = (q: string | undefined) => (q === undefined ? undefined : parseQuantity(q));
const grown = (c: Claim, size: string) => (bytes(c.status?.capacity?.storage) ?? 0) >= bytes(size)!;
const resizePending = (c: Claim) => (c.status?.conditions ?? []).some(k => k.type === "FileSystemResizePending" && k.status === "True");

/** The claims of StatefulSet `set` (`<set>-data-<set>-<ordinal>`), by ordinal. */
async function claimsOf(kubectl: Kubectl, namespace: string, set: string): Promise<Claim[]> {
    const all = JSON.parse(await kubectl(["-n", namespace, "get", "pvc", "-o", "json"])).items as Claim[];
    const ordinal = (c: Claim) => Number(c.metadata.name.slice(`${set}-data-${set}-`.length));
    return all.filter(c => new RegExp(`^${set}-data-${set}-\\d+$`).test(c.metadata.name)).sort((a, b) => ordinal(a) - ordinal(b));
}

/** The claims' classes, each once ("" = a claim without one). */
const classesOf = (claims: Claim[]) => [...new Set(claims.map(c => c.spec.storageClassName ?? ""))];

/** Of these classes ("" = a claim without one), those that do not allow volume expansion ("(none)" for ""). */
async function unexpandable(kubectl: Kubectl, classes: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const cls of classes) {
        const expandable = cls !== "" && (await kubectl(["get", "storageclass", cls, "-o", "jsonpath={.allowVolumeExpansion}"])).trim() === "true";
        if (!expandable) out.push(cls === "" ? "(none)" : cls);
    }
    return out;
}

/** The classes of StatefulSet `set`'s claims that do not allow volume expansion: what would stop `expandClaims`. */
export async function unexpandableClasses(kubectl: Kubectl, namespace: string, set: string): Promise<string[]> {
    return unexpandable(kubectl, classesOf(await claimsOf(kubectl, namespace, set)));
}

/** The wait settings of one claim (or one restarted pod): 10 minutes, asking every 2 s by default. */
const pollOf = (opts: ExpandOptions): PollOptions => ({ timeoutMs: opts.timeoutMs ?? 10 * 60_000, pollMs: opts.pollMs ?? 2000 });

/**
 * Grows every claim of StatefulSet `set` to `size` and leaves its pods running without the StatefulSet.
 * Refuses, before anything changes, when a claim's class does not allow expansion or has no class.
 * A claim already at the size (an earlier `up` that failed later) is left as it is.
 */
export async function expandClaims(kubectl: Kubectl, namespace: string, set: string, size: string, log: (m: string) => void, opts: ExpandOptions = {}): Promise<void> {
    const claims = await claimsOf(kubectl, namespace, set);
    const classes = classesOf(claims);
    const fixed = await unexpandable(kubectl, classes);
    if (fixed.length) {
        throw new Error(`${set}: the claims' class ${fixed.join(", ")} does not allow volume expansion, so they cannot grow to ${size} in place. ` +
            "Nothing was changed. Keep the old size, or create a new stack with the larger size and copy the data over");
    }
    const small = claims.filter(c => !grown(c, size));
    const started = Date.now();
    log(`${set}: growing ${small.length} claim(s) to ${size} in place (${small.map(c => c.metadata.name).join(", ") || "none"}; class ${classes.join(", ")})`);
    for (const c of small) {
        await kubectl(["-n", namespace, "patch", "pvc", c.metadata.name, "--type", "merge", "-p", JSON.stringify({ spec: { resources: { requests: { storage: size } } } })]);
    }
    // Grown, or waiting for its pod's next mount to grow the file system.
    const restart: string[] = [];
    for (const c of small) {
        const name = c.metadata.name;
        const state = await until(async () => {
            const now = JSON.parse(await kubectl(["-n", namespace, "get", "pvc", name, "-o", "json"])) as Claim;
            return grown(now, size) ? "grown" : resizePending(now) ? "pending" : undefined;
        }, pollOf(opts), () => new Error(`${set}: claim ${name} did not grow to ${size} within the time allowed; the StatefulSet was left as it was`));
        if (state === "pending") restart.push(name);
    }
    for (const name of restart) {
        const pod = name.slice(`${set}-data-`.length);
        const uid = (await kubectl(["-n", namespace, "get", "pod", pod, "-o", "jsonpath={.metadata.uid}"])).trim();
        log(`${set}: restarting ${pod}: its volume's file system grows when it is mounted again`);
        await kubectl(["-n", namespace, "delete", "pod", pod, "--wait=true"]);
        await until(async () => {
            const p = JSON.parse(await kubectl(["-n", namespace, "get", "pod", pod, "-o", "json"]).catch(() => "{}"));
            const ready = p.metadata?.uid !== uid && (p.status?.conditions ?? []).some((k: { type: string; status: string }) => k.type === "Ready" && k.status === "True");
            if (!ready) return undefined;
            const claim = JSON.parse(await kubectl(["-n", namespace, "get", "pvc", name, "-o", "json"])) as Claim;
            return grown(claim, size) ? true : undefined;
        }, pollOf(opts), () => new Error(`${set}: ${pod} was not Ready again with claim ${name} at ${size}; the StatefulSet was left as it was`));
    }
    await orphanPods(kubectl, namespace, set);
    log(`${set}: ${small.length} claim(s) at ${size} after ${Math.round((Date.now() - started) / 1000)} s` +
        `${restart.length ? ` (${restart.length} pod(s) restarted, one at a time)` : ", no pod restarted"}; StatefulSet ${set} deleted with --cascade=orphan, its pods keep running`);
}

/** Deletes the StatefulSet but not its pods: the provider's delete then finds nothing, and its create takes them back. */
async function orphanPods(kubectl: Kubectl, namespace: string, set: string): Promise<void> {
    await kubectl(["-n", namespace, "delete", "statefulset", set, "--cascade=orphan", "--ignore-not-found", "--wait=true"]);
}

type Labels = Record<string, string>;
const sameLabels = (a: Labels, b: Labels) => Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

/**
 * Whether the old StatefulSet's pods can go on under the new one: its selector differs from `selector`
 * (a replacement the provider makes) and its pod template carries every label of `selector`, so the
 * new StatefulSet adopts the running pods.
 */
export function podsFitSelector(oldInputs: Record<string, any> | undefined, selector: Labels): boolean {
    const was: Labels | undefined = oldInputs?.spec?.selector?.matchLabels;
    const podLabels: Labels = oldInputs?.spec?.template?.metadata?.labels ?? {};
    return was !== undefined && !sameLabels(was, selector) && Object.entries(selector).every(([k, v]) => podLabels[k] === v);
}

/** The claim size a StatefulSet's inputs ask for. */
export function claimSizeOf(inputs: Record<string, any> | undefined): string | undefined {
    return inputs?.spec?.volumeClaimTemplates?.[0]?.spec?.resources?.requests?.storage;
}

/**
 * What the beforeDelete hook of StatefulSet `set` runs: when the StatefulSet goes because the program
 * now asks for larger claims (a replacement), grow them in place and orphan the pods; when it goes
 * because its selector changed and the pods fit the new one, orphan them. Any other delete (a smaller
 * size is refused before this; a system turned off) goes ahead as it is.
 */
export function expansionStep(namespace: string, set: string, size: string, selector: Labels, kubectl: () => Kubectl = providerKubectl): pulumi.ResourceHookFunction {
    return async args => {
        const was = claimSizeOf(args.oldInputs);
        if (was !== undefined && isLarger(size, was)) {
            await expandClaims(kubectl(), namespace, set, size, m => pulumi.log.info(m));
        } else if (podsFitSelector(args.oldInputs, selector)) {
            await orphanPods(kubectl(), namespace, set);
            pulumi.log.info(`${set}: its selector is now ${JSON.stringify(selector)}, which its running pods already carry: StatefulSet deleted with --cascade=orphan, the new one takes the running pods back (and rolls them one at a time where its pod template differs)`);
        }
    };
}

/** The name the engine knows the hook by: it finds a delete hook by name in the program that runs. */
export const expansionHookName = (set: string) => `${set}-claim-expansion`;

/** The beforeDelete hook of StatefulSet `set` (run by the engine during `up`, when the provider replaces it). */
export function expansionHook(namespace: string, set: string, size: string, selector: Labels): pulumi.ResourceHook {
    return new pulumi.ResourceHook(expansionHookName(set), expansionStep(namespace, set, size, selector));
}
