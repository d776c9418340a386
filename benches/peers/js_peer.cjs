// The idle-connections and fan-out workloads of benches/hub_load.rs, run with the official
// JavaScript client @azure/web-pubsub-client in Node, one client object per simulated user,
// measuring this process's own RSS and CPU.
//
// Normally started by the Rust driver, which runs the hub and writes the plan:
//
//     cargo bench --bench hub_load -- peer --client js --workload idle --connections 1000
//     cargo bench --bench hub_load -- peer --client js --workload fanout --group-size 100
//
// Direct use: NODE_PATH=target/interop/node/node_modules node js_peer.cjs PLAN.json
// Protocol on stdout: `MEASURE_START` and `MEASURE_END` (each answered by a line on stdin once
// the driver has read its own figures), then `RESULT {json}`; progress on stderr.
"use strict";

const fs = require("node:fs");
const readline = require("node:readline");
const { WebPubSubClient } = require("@azure/web-pubsub-client");

const CONNECT_CONCURRENCY = 32;

const stdinLines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function rssKib() {
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const m = /VmRSS:\s+(\d+)/.exec(status);
  return m ? Number(m[1]) : 0;
}

function cpuSecs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function nowNanos() {
  // Wall clock, as the Rust driver and the Python peer stamp it, to a fraction of a microsecond
  // (timeOrigin is the wall-clock start of the process, now() the monotonic time since).
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

function emit(line) {
  process.stdout.write(line + "\n");
}

async function mark(line) {
  emit(line);
  await stdinLines.next();
}

function payload(size, publisher, seq) {
  const s =
    "t=" + nowNanos().toString().padStart(19, "0") +
    ";p=" + String(publisher).padStart(5, "0") +
    ";s=" + String(seq).padStart(12, "0") + ";";
  return s + "x".repeat(Math.max(0, size - s.length));
}

function percentile(sorted, q) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const tally = { deliveries: 0, published: 0, failedAcks: 0, measuring: false, latencies: [] };
  const base = rssKib();

  const specs = plan.receivers.map((s) => [s, true]).concat(plan.publishers.map((s) => [s, false]));
  const clients = new Array(specs.length).fill(null);
  let failed = 0;
  let next = 0;
  async function connector() {
    while (next < specs.length) {
      const i = next++;
      const [spec, receive] = specs[i];
      const client = new WebPubSubClient(spec.url);
      if (receive) {
        client.on("group-message", (e) => {
          tally.deliveries++;
          if (tally.measuring) {
            const data = e.message.data;
            const sent = typeof data === "string" ? BigInt(data.slice(2, 21)) : null;
            if (sent !== null) {
              const us = Number((nowNanos() - sent) / 1000n);
              tally.latencies.push(Math.max(1, us));
            }
          }
        });
      }
      try {
        await client.start();
        clients[i] = client;
      } catch (e) {
        failed++;
        if (failed === 1) console.error("connect failed:", e?.message ?? e);
      }
    }
  }
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, connector));
  const connected = clients.filter((c) => c !== null).length;
  console.error(`${connected} connected, ${failed} failed`);

  const w = {};
  const start = async () => {
    w.d0 = tally.deliveries;
    w.p0 = tally.published;
    tally.latencies = [];
    tally.measuring = true;
    w.c0 = cpuSecs();
    w.t0 = performance.now();
    await mark("MEASURE_START");
  };
  const end = async () => {
    tally.measuring = false;
    w.d1 = tally.deliveries;
    w.p1 = tally.published;
    w.c1 = cpuSecs();
    w.t1 = performance.now();
    w.rss = rssKib();
    const lat = tally.latencies.slice().sort((a, b) => a - b);
    await mark("MEASURE_END");
    return lat;
  };

  let lat;
  if (plan.workload === "idle") {
    await start();
    await sleep(plan.hold * 1000);
    lat = await end();
  } else {
    let stop = false;
    const rate = Number(plan.rate || 0);
    const pubs = clients.slice(plan.receivers.length);
    const loops = [];
    pubs.forEach((client, k) => {
      if (client === null) return;
      const spec = plan.publishers[k];
      const schedule = { n: 0, start: performance.now() };
      for (let slot = 0; slot < plan.window; slot++) {
        loops.push(
          (async () => {
            let seq = slot;
            while (!stop) {
              if (rate > 0) {
                const n = schedule.n++;
                const delay = schedule.start + (n * 1000) / rate - performance.now();
                if (delay > 0) await sleep(delay);
              }
              try {
                // Awaits the ack, as an application that checks its sends does.
                await client.sendToGroup(spec.group, payload(plan.size, spec.index, seq), "text");
                tally.published++;
              } catch {
                tally.failedAcks++;
              }
              seq += plan.window;
            }
          })(),
        );
      }
    });
    await sleep(plan.warmup * 1000);
    await start();
    await sleep(plan.duration * 1000);
    lat = await end();
    stop = true;
  }
  const n = Math.max(1, connected);
  emit(
    "RESULT " +
      JSON.stringify({
        client: "@azure/web-pubsub-client 1.1.0 (node " + process.version + ")",
        connections: connected,
        failed,
        rss_base_kib: base,
        rss_kib: w.rss,
        rss_per_connection_kib: (w.rss - base) / n,
        seconds: (w.t1 - w.t0) / 1000,
        cpu_secs: w.c1 - w.c0,
        deliveries: w.d1 - w.d0,
        published: w.p1 - w.p0,
        latency_samples: lat.length,
        p50_us: percentile(lat, 0.5),
        p99_us: percentile(lat, 0.99),
        max_us: lat.length ? lat[lat.length - 1] : 0,
        failed_acks: tally.failedAcks,
      }),
  );
  // The hub process is stopped right after, which ends every socket.
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
