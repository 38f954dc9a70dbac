// What the e2e suite asks of the real node's cluster (scripts/toolchain/node.sh): pods and their
// readiness, exec into containers, the apps' /metrics through the API server, and streamed logs.
import { spawn, ChildProcess } from "child_process";
import * as fs from "fs";
import * as https from "https";
import { sleep, waitFor } from "../harness/jvm";
import * as path from "path";
import { cache, getJson, kubeconfig, kubectl, kubectlOk, repo, sh } from "../deploy/kube";

/** The label node.sh puts on the real node; a namespace annotated with it runs its pods there. */
export const REAL_NODE_SELECTOR = "streamstack.local/real-node=true";

/** The stand-in server images (tests/images), or the official ones when STREAMSTACK_E2E_IMAGES=official. */
export function serverImages(): { cassandra: { image?: string }; zookeeper: { image?: string }; kafka: { image?: string }; kvs: { postgresImage?: string } } {
    const mode = process.env.STREAMSTACK_E2E_IMAGES ?? "standin";
    if (mode === "official") return { cassandra: {}, zookeeper: {}, kafka: {}, kvs: {} }; // the program's defaults
    if (mode !== "standin") throw new Error(`STREAMSTACK_E2E_IMAGES must be standin or official, got '${mode}'`);
    const r = sh("bash", ["tests/images/build.sh", "--push"]);
    if (r.status !== 0) throw new Error(`tests/images/build.sh failed (${r.status}):\n${r.stderr.slice(-4000)}`);
    const refs = Object.fromEntries(r.stdout.trim().split("\n").map(l => l.split("=", 2) as [string, string]));
    for (const k of ["cassandra", "cp-zookeeper", "cp-kafka", "postgres"]) if (!refs[k]) throw new Error(`build.sh printed no ${k}=<ref>: ${r.stdout}`);
    return { cassandra: { image: refs.cassandra }, zookeeper: { image: refs["cp-zookeeper"] }, kafka: { image: refs["cp-kafka"] }, kvs: { postgresImage: refs.postgres } };
}

/**
 * The real nodes of node.sh that are up (registered with the label), node 1 first, each with the
 * containerd socket that runs its pods. node.sh writes each node's name to <its state dir>/node-name.
 */
export function realNodes(): { name: string; socket: string }[] {
    const registered = new Set(kubectlOk(["get", "nodes", "-l", REAL_NODE_SELECTOR, "-o", "jsonpath={.items[*].metadata.name}"]).split(/\s+/).filter(Boolean));
    return fs.readdirSync(cache).filter(d => /^node(-[2-8])?$/.test(d)).sort()
        .map(d => ({ dir: path.join(cache, d), file: path.join(cache, d, "node-name") }))
        .filter(n => fs.existsSync(n.file))
        .map(n => ({ name: fs.readFileSync(n.file, "utf8").trim(), socket: path.join(n.dir, "containerd", "containerd.sock") }))
        .filter(n => registered.has(n.name));
}

/** Creates the namespace with its pods pinned to the real nodes (admission plugin PodNodeSelector). */
export function createNamespace(ns: string): void {
    kubectlOk(["create", "namespace", ns]);
    kubectlOk(["annotate", "namespace", ns, `scheduler.alpha.kubernetes.io/node-selector=${REAL_NODE_SELECTOR}`]);
}

export interface PodInfo {
    name: string; uid: string; ready: boolean; phase: string; restarts: number; node: string; ip: string;
    readySince?: string; terminating: boolean; labels: Record<string, string>; unschedulable?: string;
}

export function pods(ns: string, selector?: string): PodInfo[] {
    const items = getJson(["-n", ns, "get", "pods", ...(selector ? ["-l", selector] : [])]).items as any[];
    return items.map(p => {
        const ready = (p.status.conditions ?? []).find((c: any) => c.type === "Ready");
        const scheduled = (p.status.conditions ?? []).find((c: any) => c.type === "PodScheduled");
        return {
            name: p.metadata.name,
            uid: p.metadata.uid,
            terminating: Boolean(p.metadata.deletionTimestamp),
            unschedulable: scheduled?.status === "False" ? `${scheduled.reason}: ${scheduled.message}` : undefined,
            ready: ready?.status === "True" && !p.metadata.deletionTimestamp,
            phase: p.status.phase,
            restarts: (p.status.containerStatuses ?? []).reduce((n: number, c: any) => n + c.restartCount, 0),
            node: p.spec.nodeName ?? "",
            ip: p.status.podIP ?? "",
            readySince: ready?.status === "True" ? ready.lastTransitionTime : undefined,
            labels: p.metadata.labels ?? {},
        };
    });
}

/** A one-line account of every pod, for failure messages. */
export function podSummary(ns: string): string {
    return kubectl(["-n", ns, "get", "pods", "-o", "wide"]).stdout;
}

export async function waitPodsReady(ns: string, selector: string, count: number, timeoutMs: number): Promise<PodInfo[]> {
    let last: PodInfo[] = [];
    await waitFor(`${count} Ready pods with ${selector} in ${ns}`, timeoutMs, async () => {
        last = pods(ns, selector);
        return last.length === count && last.every(p => p.ready);
    }, () => podSummary(ns));
    return last;
}

/** Waits until the pod named `name` is a new pod (another uid than `oldUid`) and Ready; returns it. */
export async function waitReplacedReady(ns: string, name: string, oldUid: string, timeoutMs: number): Promise<PodInfo> {
    return eventually(`${name} replaced and Ready`, timeoutMs, () => pods(ns).find(p => p.name === name), p => p !== undefined && p.uid !== oldUid && p.ready) as Promise<PodInfo>;
}

/** Waits until the pod's containers restarted more than `restarts` times and it is Ready again. */
export async function waitRestartedReady(ns: string, name: string, restarts: number, timeoutMs: number): Promise<PodInfo> {
    return eventually(`${name} restarted and Ready`, timeoutMs, () => pods(ns).find(p => p.name === name), p => p !== undefined && p.restarts > restarts && p.ready) as Promise<PodInfo>;
}

/**
 * Asks the API server to evict a pod (policy/v1 Eviction), as `kubectl drain` does. A refusal is the
 * API's 429: the pod's disruption budget allows no more disruptions now.
 */
export function evict(ns: string, pod: string): { evicted: boolean; message: string } {
    const body = { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: pod, namespace: ns } };
    const r = kubectl(["create", "--raw", `/api/v1/namespaces/${ns}/pods/${pod}/eviction`, "-f", "-"], JSON.stringify(body));
    if (r.status === 0) return { evicted: true, message: r.stdout };
    if (/disruption budget/i.test(r.stderr)) return { evicted: false, message: r.stderr.trim() };
    if (/NotFound|not found/.test(r.stderr)) return { evicted: true, message: "already gone" };
    throw new Error(`evicting ${pod} failed (${r.status}): ${r.stderr}`);
}

/**
 * `kubectl drain` of a node (cordon, then evictions through the API, each refused one tried again every
 * 5 s), run as a child process so samplers keep running. Resolves to its exit status and output; the
 * pods whose eviction a disruption budget refused, with how often.
 */
export function drain(node: string, timeoutMs: number): Promise<{ status: number | null; output: string; refused: Map<string, number> }> {
    return new Promise(resolve => {
        const child = spawn("kubectl", ["drain", node, "--ignore-daemonsets", "--delete-emptydir-data", `--timeout=${Math.round(timeoutMs / 1000)}s`],
            { cwd: repo, env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout!.on("data", (d: Buffer) => { output += d.toString(); });
        child.stderr!.on("data", (d: Buffer) => { output += d.toString(); });
        child.on("close", status => {
            const refused = new Map<string, number>();
            // error when evicting pods/"cassandra-2" -n "e2e-1" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.
            for (const m of output.matchAll(/error when evicting pods\/"([^"]+)".*disruption budget/g)) refused.set(m[1], (refused.get(m[1]) ?? 0) + 1);
            resolve({ status, output, refused });
        });
    });
}

/** Calls `read` every `everyMs` until stopped, keeping what it returned (errors are skipped). */
export class Sampler<T> {
    readonly values: { at: number; value: T }[] = [];
    private timer?: NodeJS.Timeout;

    constructor(read: () => T, everyMs: number) {
        const tick = () => {
            try { this.values.push({ at: Date.now(), value: read() }); } catch { /* a blip of kubectl: the next sample counts */ }
            this.timer = setTimeout(tick, everyMs);
        };
        tick();
    }

    stop(): { at: number; value: T }[] {
        clearTimeout(this.timer);
        return this.values;
    }
}

/** Runs a command in a pod's (first) container; throws with its stderr when it fails. */
export function exec(ns: string, pod: string, command: string[], container?: string): string {
    return kubectlOk(["-n", ns, "exec", pod, ...(container ? ["-c", container] : []), "--", ...command]);
}

/**
 * Host pid of a pod's main process (the container's PID 1), from the node's containerd. A signal
 * sent from inside the container cannot stop or kill its PID 1: the kernel shields a namespace's init.
 */
export function hostPid(ns: string, pod: string): number {
    const [node, id] = kubectlOk(["-n", ns, "get", "pod", pod, "-o", "jsonpath={.spec.nodeName} {.status.containerStatuses[0].containerID}"]).replace(/containerd:\/\//, "").split(" ");
    if (!id) throw new Error(`${pod} has no running container`);
    const socket = realNodes().find(n => n.name === node)?.socket;
    if (!socket) throw new Error(`${pod} runs on ${node}, which is not a real node of node.sh`);
    const r = sh("ctr", ["-a", socket, "-n", "k8s.io", "task", "ls"]);
    const line = r.stdout.split("\n").find(l => l.startsWith(id));
    if (r.status !== 0 || !line) throw new Error(`no containerd task for ${pod} (${id}): ${r.stderr}`);
    return Number(line.split(/\s+/)[1]);
}

/**
 * An HTTP request to a pod's port 8080 through the API server's pod proxy (this process has no route
 * to the pod network; the proxy does not need the pod Ready). The body goes and comes back as bytes.
 */
export async function podRequest(ns: string, pod: string, method: string, path: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
    const cfg = JSON.parse(kubectlOk(["config", "view", "--raw", "--minify", "-o", "json"]));
    const b64 = (s: string) => Buffer.from(s, "base64");
    const server = new URL(cfg.clusters[0].cluster.server);
    const user = cfg.users[0].user;
    return await new Promise((resolve, reject) => {
        const req = https.request({
            host: server.hostname, port: server.port, method,
            path: `/api/v1/namespaces/${ns}/pods/${pod}:8080/proxy${path}`,
            ca: b64(cfg.clusters[0].cluster["certificate-authority-data"]),
            cert: b64(user["client-certificate-data"]), key: b64(user["client-key-data"]),
            headers: body ? { "content-type": "application/octet-stream", "content-length": body.length } : {},
            timeout: 30_000,
        }, res => {
            const chunks: Buffer[] = [];
            res.on("data", c => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
            res.on("error", reject);
        });
        req.on("timeout", () => req.destroy(new Error(`${method} ${path} on ${pod}: no answer in 30 s`)));
        req.on("error", reject);
        req.end(body);
    });
}

/** The pod's Prometheus text from its /metrics on 8080, through the API server's pod proxy. */
export function metricsText(ns: string, pod: string): string {
    return kubectlOk(["get", "--raw", `/api/v1/namespaces/${ns}/pods/${pod}:8080/proxy/metrics`]);
}

/** Every sample of one metric: labels (as "k=v,..." or "") -> value. */
export function samples(text: string, metric: string): Map<string, number> {
    const out = new Map<string, number>();
    const re = new RegExp(`^${metric}(?:\\{([^}]*)\\})? (\\S+)$`, "gm");
    for (const m of text.matchAll(re)) {
        const labels = (m[1] ?? "").split(",").filter(l => l && !l.startsWith("app=")).join(",");
        out.set(labels, Number(m[2]));
    }
    return out;
}

/** One metric's value without labels (beyond the app label), or undefined when absent. */
export function metric(text: string, name: string): number | undefined {
    return samples(text, name).get("");
}

/** `kubectl logs -f` of a pod, kept as parsed JSON lines (the apps log JSON); the rest as raw text. */
export class LogStream {
    readonly lines: any[] = [];
    readonly raw: string[] = [];
    private readonly child: ChildProcess;
    private buf = "";

    constructor(ns: string, pod: string) {
        this.child = spawn("kubectl", ["-n", ns, "logs", "-f", pod], { cwd: repo, env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ["ignore", "pipe", "ignore"] });
        this.child.stdout!.on("data", (d: Buffer) => {
            this.buf += d.toString();
            let i: number;
            while ((i = this.buf.indexOf("\n")) >= 0) {
                const line = this.buf.slice(0, i);
                this.buf = this.buf.slice(i + 1);
                this.raw.push(line);
                try { this.lines.push(JSON.parse(line)); } catch { /* not JSON */ }
            }
        });
    }

    async waitFor(what: string, timeoutMs: number, match: (line: any) => boolean): Promise<any> {
        let found: any;
        await waitFor(what, timeoutMs, async () => (found = this.lines.find(match)) !== undefined, () => this.raw.slice(-10).join("\n"));
        return found;
    }

    stop(): void {
        this.child.kill();
    }
}

/** Polls `read` until it returns a value that passes `ok`. */
export async function eventually<T>(what: string, timeoutMs: number, read: () => T, ok: (v: T) => boolean): Promise<T> {
    let last: T | undefined;
    let error = "";
    await waitFor(what, timeoutMs, async () => {
        try { last = read(); error = ""; } catch (e) { error = (e as Error).message; return false; }
        return ok(last);
    }, () => error || `last value: ${JSON.stringify(last)}`);
    return last as T;
}

/** Memory in use (working set) of each pod on the node, from the kubelet's stats summary. */
export function podMemory(node: string, ns: string): Map<string, number> {
    const summary = JSON.parse(kubectlOk(["get", "--raw", `/api/v1/nodes/${node}/proxy/stats/summary`]));
    const out = new Map<string, number>();
    for (const p of summary.pods ?? []) {
        if (p.podRef.namespace === ns) out.set(p.podRef.name, p.memory?.workingSetBytes ?? 0);
    }
    return out;
}

export { sleep };
