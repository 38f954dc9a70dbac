// The claim expansion step `pulumi up` runs before a StatefulSet with a larger claim size is replaced,
// driven through a stand-in for kubectl that answers as the API server and a resizer would.
// On real pods: tests/e2e/system.test.ts, "kafka.storageSize".
import * as pulumi from "@pulumi/pulumi";
import { claimSizeOf, expandClaims, expansionStep, Kubectl, podsFitSelector } from "../../infra";

interface StandIn {
    kubectl: Kubectl;
    calls: string[];
}

/**
 * The API server as far as the step sees it: claims with a class and a capacity, classes that allow
 * expansion or not, pods. A patched claim grows after `growAfter` reads, or (fsResize) reports
 * FileSystemResizePending until its pod is deleted.
 */
function standIn(opts: { sizes: string[]; expandable?: boolean; fsResize?: boolean; growAfter?: number; neverGrows?: boolean }): StandIn {
    const calls: string[] = [];
    const claims = opts.sizes.map((size, i) => ({ name: `kafka-data-kafka-${i}`, size, requested: size, reads: 0, pending: false }));
    const pods = new Map(opts.sizes.map((_, i) => [`kafka-${i}`, { uid: `uid-${i}`, ready: true }]));
    const claimJson = (c: typeof claims[0]) => ({
        metadata: { name: c.name, uid: `pvc-${c.name}` },
        spec: { storageClassName: "shared", resources: { requests: { storage: c.requested } } },
        status: { phase: "Bound", capacity: { storage: c.size }, conditions: c.pending ? [{ type: "FileSystemResizePending", status: "True" }] : [] },
    });
    const kubectl: Kubectl = async args => {
        const line = args.join(" ");
        calls.push(line.replace(/^-n ns /, ""));
        if (line === "-n ns get pvc -o json") return JSON.stringify({ items: [...claims.map(claimJson), { metadata: { name: "kafka-data-other-0", uid: "x" }, spec: {}, status: {} }] });
        if (line === "get storageclass shared -o jsonpath={.allowVolumeExpansion}") return opts.expandable === false ? "" : "true";
        let m = /^-n ns patch pvc (\S+) --type merge -p (.*)$/.exec(line);
        if (m) { const c = claims.find(c => c.name === m![1])!; c.requested = JSON.parse(m[2]).spec.resources.requests.storage; c.reads = 0; return ""; }
        m = /^-n ns get pvc (\S+) -o json$/.exec(line);
        if (m) {
            const c = claims.find(c => c.name === m![1])!;
            if (c.requested !== c.size && !opts.neverGrows) {
                if (opts.fsResize) c.pending = true;
                else if (++c.reads > (opts.growAfter ?? 0)) c.size = c.requested;
            }
            return JSON.stringify(claimJson(c));
        }
        m = /^-n ns get pod (\S+) -o jsonpath=\{\.metadata\.uid\}$/.exec(line);
        if (m) return pods.get(m[1])!.uid;
        m = /^-n ns delete pod (\S+) --wait=true$/.exec(line);
        if (m) {
            pods.set(m[1], { uid: `${pods.get(m[1])!.uid}-new`, ready: true });
            const c = claims.find(c => c.name === `kafka-data-${m![1]}`)!;
            if (c.pending) { c.pending = false; c.size = c.requested; }
            return "";
        }
        m = /^-n ns get pod (\S+) -o json$/.exec(line);
        if (m) { const p = pods.get(m[1])!; return JSON.stringify({ metadata: { uid: p.uid }, status: { conditions: [{ type: "Ready", status: p.ready ? "True" : "False" }] } }); }
        if (line === "-n ns delete statefulset kafka --cascade=orphan --ignore-not-found --wait=true") return "";
        throw new Error(`unexpected kubectl ${line}`);
    };
    return { kubectl, calls };
}

const fast = { pollMs: 1, timeoutMs: 200 };
/** The selector the program now gives StatefulSet kafka of stack dev. */
const SELECTOR = { app: "kafka", "app.kubernetes.io/instance": "dev" };

test("every claim is patched, each waited for until it has grown, then the StatefulSet is deleted with its pods orphaned; no pod restarts", async () => {
    const { kubectl, calls } = standIn({ sizes: ["1Gi", "1Gi", "1Gi"], growAfter: 2 });
    const logs: string[] = [];
    await expandClaims(kubectl, "ns", "kafka", "2Gi", m => logs.push(m), fast);
    expect(calls.filter(c => c.startsWith("patch"))).toEqual([0, 1, 2].map(i => `patch pvc kafka-data-kafka-${i} --type merge -p {"spec":{"resources":{"requests":{"storage":"2Gi"}}}}`));
    expect(calls.filter(c => c.startsWith("get pvc kafka-data-kafka-0"))).toHaveLength(3);
    expect(calls.some(c => c.startsWith("delete pod"))).toBe(false);
    expect(calls[calls.length - 1]).toBe("delete statefulset kafka --cascade=orphan --ignore-not-found --wait=true");
    expect(logs[0]).toBe("kafka: growing 3 claim(s) to 2Gi in place (kafka-data-kafka-0, kafka-data-kafka-1, kafka-data-kafka-2; class shared)");
    expect(logs[1]).toMatch(/^kafka: 3 claim\(s\) at 2Gi after \d+ s, no pod restarted; StatefulSet kafka deleted with --cascade=orphan, its pods keep running$/);
});

test("claims whose file system grows at mount: their pods are restarted one at a time, each Ready with its claim grown before the next", async () => {
    const { kubectl, calls } = standIn({ sizes: ["1Gi", "1Gi"], fsResize: true });
    const logs: string[] = [];
    await expandClaims(kubectl, "ns", "kafka", "2Gi", m => logs.push(m), fast);
    const order = calls.filter(c => /^(delete pod|get pod \S+ -o json$|delete statefulset)/.test(c)).map(c => c.split(" ").slice(0, 3).join(" "));
    expect(order).toEqual(["delete pod kafka-0", "get pod kafka-0", "delete pod kafka-1", "get pod kafka-1", "delete statefulset kafka"]);
    expect(logs).toContain("kafka: restarting kafka-0: its volume's file system grows when it is mounted again");
    expect(logs[logs.length - 1]).toMatch(/\(2 pod\(s\) restarted, one at a time\)/);
});

test("a class that does not allow expansion stops the step before anything is patched or deleted", async () => {
    const { kubectl, calls } = standIn({ sizes: ["1Gi"], expandable: false });
    await expect(expandClaims(kubectl, "ns", "kafka", "2Gi", () => undefined, fast)).rejects.toThrow(
        /^kafka: the claims' class shared does not allow volume expansion, so they cannot grow to 2Gi in place\. Nothing was changed\./);
    expect(calls).toEqual(["get pvc -o json", "get storageclass shared -o jsonpath={.allowVolumeExpansion}"]);
});

test("a claim that does not grow in time stops the step before the StatefulSet is deleted", async () => {
    const { kubectl, calls } = standIn({ sizes: ["1Gi"], neverGrows: true });
    await expect(expandClaims(kubectl, "ns", "kafka", "2Gi", () => undefined, fast)).rejects.toThrow(
        /^kafka: claim kafka-data-kafka-0 did not grow to 2Gi within the time allowed; the StatefulSet was left as it was$/);
    expect(calls.some(c => c.startsWith("delete"))).toBe(false);
});

test("claims already at the size (an earlier `up` that failed later) are left as they are; the StatefulSet still goes with its pods orphaned", async () => {
    const { kubectl, calls } = standIn({ sizes: ["2Gi", "1Gi"] });
    await expandClaims(kubectl, "ns", "kafka", "2Gi", () => undefined, fast);
    expect(calls.filter(c => c.startsWith("patch"))).toEqual([expect.stringMatching(/^patch pvc kafka-data-kafka-1 /)]);
    expect(calls[calls.length - 1]).toMatch(/^delete statefulset kafka --cascade=orphan/);
});

describe("the hook's step", () => {
    const args = (size?: string): pulumi.ResourceHookArgs => ({
        urn: "u", id: "kafka", name: "kafka-statefulset", type: "kubernetes:apps/v1:StatefulSet",
        oldInputs: size === undefined ? undefined : { spec: { volumeClaimTemplates: [{ spec: { resources: { requests: { storage: size } } } }] } },
    });

    test("reads the claim size of the StatefulSet that goes", () => {
        expect(claimSizeOf(args("10Gi").oldInputs)).toBe("10Gi");
        expect(claimSizeOf(undefined)).toBeUndefined();
    });

    test("runs only when the program now asks for larger claims; any other delete goes ahead untouched", async () => {
        let called = 0;
        const kubectl = () => (async () => { called++; return ""; }) as Kubectl;
        for (const was of ["20Gi", "20480Mi", "40Gi"]) await expansionStep("ns", "kafka", "20Gi", SELECTOR, kubectl)(args(was));
        await expansionStep("ns", "kafka", "20Gi", SELECTOR, kubectl)(args());
        expect(called).toBe(0);
        const { kubectl: k, calls } = standIn({ sizes: ["10Gi"] });
        await expansionStep("ns", "kafka", "20Gi", SELECTOR, () => k)(args("10Gi"));
        expect(calls[calls.length - 1]).toBe("delete statefulset kafka --cascade=orphan --ignore-not-found --wait=true");
    });
});

describe("a selector change (a StatefulSet an older program made with an `app`-only selector)", () => {
    const podLabels = { app: "kafka", "app.kubernetes.io/name": "kafka", "app.kubernetes.io/instance": "dev" };
    const old = (selector: Record<string, string>, labels: Record<string, string> = podLabels, size = "20Gi") => ({
        spec: { selector: { matchLabels: selector }, template: { metadata: { labels } }, volumeClaimTemplates: [{ spec: { resources: { requests: { storage: size } } } }] },
    });

    test("its pods fit the new selector when they carry every label of it", () => {
        expect(podsFitSelector(old({ app: "kafka" }), SELECTOR)).toBe(true);
        expect(podsFitSelector(old(SELECTOR), SELECTOR)).toBe(false); // no selector change: not a replacement of this kind
        expect(podsFitSelector(old({ app: "kafka" }, { app: "kafka" }), SELECTOR)).toBe(false); // pods without the instance
        expect(podsFitSelector(old({ app: "kafka" }, { ...podLabels, "app.kubernetes.io/instance": "other" }), SELECTOR)).toBe(false);
        expect(podsFitSelector(undefined, SELECTOR)).toBe(false);
    });

    test("the step deletes only the StatefulSet, with --cascade=orphan, so the new one adopts the running pods", async () => {
        jest.spyOn(pulumi.log, "info").mockImplementation(async () => undefined);
        const calls: string[] = [];
        const step = expansionStep("ns", "kafka", "20Gi", SELECTOR, () => async a => { calls.push(a.join(" ")); return ""; });
        await step({ urn: "u", id: "kafka", name: "kafka-statefulset", type: "kubernetes:apps/v1:StatefulSet", oldInputs: old({ app: "kafka" }) });
        expect(calls).toEqual(["-n ns delete statefulset kafka --cascade=orphan --ignore-not-found --wait=true"]);
        // Pods that would not fit: the delete goes ahead as the provider makes it.
        calls.length = 0;
        await step({ urn: "u", id: "kafka", name: "kafka-statefulset", type: "kubernetes:apps/v1:StatefulSet", oldInputs: old({ app: "kafka" }, { app: "kafka" }) });
        expect(calls).toEqual([]);
        jest.restoreAllMocks();
    });
});
