// The Cassandra readiness check (infra/cassandraReadiness.ts) run with bash, as the kubelet runs it in the
// node's container, against real nodes from tests/harness: Ready when the node is NORMAL in its own
// gossip, NotReady while it is down, starting, or shut down as another node sees it, no deadlock when
// the other node is lost, and a plain "no" from anything that is not a Cassandra node.
import { cassandraReadyScript } from "../../infra";
import { startCassandra, type CassandraCluster } from "../harness";
import { replyServers, runProbe, type Verdict } from "./probeScripts";

jest.setTimeout(900_000);

/** The probe's timeoutSeconds in infra/cassandra.ts: an answer must come well within it. */
const PROBE_TIMEOUT_MS = 10_000;

/** Runs the readiness script against host:port for the node whose POD_IP is `ip`. */
const probe = (host: string, port: number, ip: string) => runProbe(cassandraReadyScript(host, port), { POD_IP: ip });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("two nodes", () => {
  let ring: CassandraCluster;
  beforeAll(async () => { ring = await startCassandra({ nodes: 2 }); });
  afterAll(async () => { await ring?.stop(); });
  const self = (i: number) => probe(ring.hosts[i], ring.port, ring.hosts[i]);

  test("each node is NORMAL in its own gossip: Ready, well within the probe's timeout", async () => {
    for (const i of [0, 1]) {
      const v = await self(i);
      expect(v).toMatchObject({ code: 0, line: `ready: node ${ring.hosts[i]} is NORMAL in the ring` });
      expect(v.ms).toBeLessThan(PROBE_TIMEOUT_MS);
    }
  });

  test("an address the node's gossip does not know is NotReady, saying so", async () => {
    const v = await probe(ring.hosts[0], ring.port, "127.0.0.99");
    expect(v).toMatchObject({ code: 1, line: "not ready: 127.0.0.99 is not in its own gossip state yet" });
  });

  test("a POD_IP that is not an address is refused before anything is sent", async () => {
    const v = await probe(ring.hosts[0], ring.port, "1.2.3.4' OR ''='");
    expect(v).toMatchObject({ code: 1, line: "not ready: POD_IP is not an IP address: '1.2.3.4' OR ''=''" });
  });

  test("a stopped node is NotReady, the other stays Ready (no deadlock), and the status rule reads a real non-NORMAL state", async () => {
    await ring.stopNode(1);
    const down = await self(1);
    expect(down).toMatchObject({ code: 1, line: `not ready: nothing accepts connections on ${ring.hosts[1]}:${ring.port}` });
    expect((await self(0)).code).toBe(0);
    // A node stopped with SIGTERM announces its shutdown by gossip: node 0's view of node 1 is the
    // non-NORMAL status the rule must refuse (the same answer a leaving or joining node gives of itself).
    let seen: Verdict | undefined;
    for (let k = 0; k < 30 && seen?.code !== 1; k++) {
      seen = await probe(ring.hosts[0], ring.port, ring.hosts[1]);
      if (seen.code !== 1) await sleep(1000);
    }
    expect(seen).toMatchObject({ code: 1, line: `not ready: node ${ring.hosts[1]} is not NORMAL in the ring: gossip status 'shutdown'` });
  });

  test("a restarted node turns Ready once it is back in the ring", async () => {
    await ring.startNode(1);
    const v = await self(1);
    expect(v).toMatchObject({ code: 0, line: `ready: node ${ring.hosts[1]} is NORMAL in the ring` });
    // Node 0 learns of it by gossip, within seconds.
    let seen: Verdict | undefined;
    for (let k = 0; k < 30 && seen?.code !== 0; k++) {
      seen = await probe(ring.hosts[0], ring.port, ring.hosts[1]);
      if (seen.code !== 0) await sleep(1000);
    }
    expect(seen).toMatchObject({ code: 0, line: `ready: node ${ring.hosts[1]} is NORMAL in the ring` });
  });
});

describe("anything but a Cassandra node's answer is NotReady, within the probe's timeout", () => {
  const servers = replyServers();
  afterAll(() => servers.closeAll());
  const at = (port: number) => probe("127.0.0.1", port, "127.0.0.1");

  test("a port nothing listens on", async () => {
    const port = await servers.closedPort();
    const v = await at(port);
    expect(v).toMatchObject({ code: 1, line: `not ready: nothing accepts connections on 127.0.0.1:${port}` });
    expect(v.ms).toBeLessThan(PROBE_TIMEOUT_MS);
  });

  test("a server that accepts and says nothing", async () => {
    const port = await servers.start(null);
    const v = await at(port);
    expect(v).toMatchObject({ code: 1, line: `not ready: no answer from 127.0.0.1:${port} within 3 s` });
    expect(v.ms).toBeLessThan(PROBE_TIMEOUT_MS);
  });

  test("a server that answers in another protocol (HTTP)", async () => {
    const port = await servers.start(Buffer.from("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
    const v = await at(port);
    expect(v).toMatchObject({ code: 1, line: `not ready: 127.0.0.1:${port} did not answer like a Cassandra node (protocol version byte 48)` });
    expect(v.ms).toBeLessThan(PROBE_TIMEOUT_MS);
  });

  test("a node that asks for authentication: the probe says it needs a node without it", async () => {
    // AUTHENTICATE (opcode 3) with the authenticator's class name, as a node with PasswordAuthenticator answers STARTUP.
    const name = Buffer.from("org.apache.cassandra.auth.PasswordAuthenticator");
    const body = Buffer.concat([Buffer.from([0, name.length]), name]);
    const header = Buffer.from([0x84, 0, 0, 1, 3, 0, 0, 0, body.length]);
    const port = await servers.start(Buffer.concat([header, body]));
    const v = await at(port);
    expect(v).toMatchObject({ code: 1, line: `not ready: 127.0.0.1:${port} did not answer like a Cassandra node (opcode 3 to STARTUP; the probe needs a node without authentication)` });
  });
});
