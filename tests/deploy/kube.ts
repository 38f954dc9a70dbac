// Talks to the local control plane (scripts/toolchain/controlplane.sh) with kubectl, and turns what
// the program registers under Pulumi's mocks into manifests the API server can take.
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { spawnSync } from "child_process";
import * as os from "os";
import * as path from "path";
import { deployStack, loadConfig } from "../../infra";
import { render } from "../program/render";

export const repo = path.resolve(__dirname, "../..");
export const cache = process.env.STREAMSTACK_CACHE ?? path.join(os.homedir(), ".cache/streamstack");
export const kubeconfig = path.join(cache, "kubeconfig");
export const registry = `127.0.0.1:${process.env.STREAMSTACK_REGISTRY_PORT ?? "5001"}`;

export interface Run { status: number; stdout: string; stderr: string }

export function sh(cmd: string, args: string[], input?: string): Run {
    const r = spawnSync(cmd, args, { input, encoding: "utf8", cwd: repo, env: { ...process.env, KUBECONFIG: kubeconfig }, maxBuffer: 64 << 20 });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function kubectl(args: string[], input?: string): Run {
    return sh("kubectl", args, input);
}

/** kubectl that must succeed; returns stdout. */
export function kubectlOk(args: string[], input?: string): string {
    const r = kubectl(args, input);
    if (r.status !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
}

export function getJson(args: string[]): any {
    return JSON.parse(kubectlOk([...args, "-o", "json"]));
}

/** "kubernetes:apps/v1:StatefulSet" -> apiVersion "apps/v1", kind "StatefulSet". */
function apiOf(type: string): { apiVersion: string; kind: string } | undefined {
    const m = /^kubernetes:([a-z.]+)\/(v[0-9a-z]+):([A-Za-z]+)$/.exec(type);
    if (!m) return undefined;
    return { apiVersion: m[1] === "core" ? m[2] : `${m[1]}/${m[2]}`, kind: m[3] };
}

/** The Kubernetes objects the program asks for with this stack config, as manifests. */
export async function manifests(stack: string, config: Record<string, unknown>, options: { secretKeys?: string[] } = {}): Promise<any[]> {
    const r = await render(stack, config, () => deployStack(loadConfig()) as any, options);
    return r.resources.flatMap(res => {
        const api = apiOf(res.type);
        return api ? [{ ...api, ...revealSecrets(res.inputs) }] : [];
    });
}

/** The values inside Pulumi secrets (a Secret's stringData), as the provider sends them to the API server. */
function revealSecrets(value: any): any {
    if (Array.isArray(value)) return value.map(revealSecrets);
    if (value === null || typeof value !== "object") return value;
    if (value[specialSigKey] === specialSecretSig) return revealSecrets(value.value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revealSecrets(v)]));
}

/**
 * Applies manifests server-side with strict field validation: an unknown or misplaced field is an
 * error from the API server, not a silently dropped line.
 */
export function apply(objects: any[], extra: string[] = []): Run {
    const list = { apiVersion: "v1", kind: "List", items: objects };
    return kubectl(["apply", "--server-side", "--field-manager=streamstack", "--validate=strict", ...extra, "-f", "-"], JSON.stringify(list));
}

/** Builds an app image the way the program does (context apps/, images/<app>/Dockerfile) and pushes it. */
export function buildAndPush(app: "writer" | "clients" | "kvs", repository: string, nodeBase: string, labels: Record<string, string> = {}): string {
    const tag = `${registry}/${repository}:deploy-test`;
    const labelArgs = Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
    for (const [cmd, args] of [
        ["docker", ["build", "-q", "-f", `images/${app}/Dockerfile`, "--build-arg", `NODE_BASE=${nodeBase}`, ...labelArgs, "-t", tag, "apps"]],
        ["docker", ["push", "-q", tag]],
    ] as const) {
        const r = sh(cmd, [...args]);
        if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
    }
    const digests: string[] = JSON.parse(sh("docker", ["inspect", "--format", "{{json .RepoDigests}}", tag]).stdout);
    const digest = digests.find(d => d.startsWith(`${registry}/${repository}@`));
    if (!digest) throw new Error(`no registry digest for ${tag}: ${digests.join(", ")}`);
    return digest;
}
