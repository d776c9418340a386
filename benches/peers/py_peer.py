#!/usr/bin/env python3
"""The idle-connections and fan-out workloads of benches/hub_load.rs, run with the official
Python client azure-messaging-webpubsubclient (sync API or its aio API), one client object
per simulated user, measuring this process's own RSS and CPU.

Normally started by the Rust driver, which runs the hub and writes the plan:

    cargo bench --bench hub_load -- peer --client python --workload idle --connections 500
    cargo bench --bench hub_load -- peer --client python-aio --workload fanout --group-size 100

Direct use: python py_peer.py --api sync|aio PLAN.json (plan format: see benches/peers/README.md).
Protocol on stdout: `MEASURE_START` and `MEASURE_END` (each answered by a line on stdin once the
driver has read its own figures), then `RESULT {json}`; progress on stderr.
"""

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from azure.messaging.webpubsubclient.models import CallbackType, WebPubSubDataType

CONNECT_CONCURRENCY = 32


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_secs():
    t = os.times()
    return t.user + t.system


def emit(line):
    print(line, flush=True)


def mark(line):
    """Tells the driver a window boundary and waits until it has read the hub's figures."""
    emit(line)
    sys.stdin.readline()


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def payload(size, publisher, seq):
    """Same format as the Rust driver: publish time (ns, wall clock), publisher, counter."""
    s = "t=%019d;p=%05d;s=%012d;" % (time.time_ns(), publisher, seq)
    return s + "x" * max(0, size - len(s))


def payload_time(data):
    try:
        return int(data[2:21])
    except (TypeError, ValueError):
        return None


class Tally:
    """Counters shared by the callbacks (threads in the sync API, tasks in aio)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.deliveries = 0
        self.published = 0
        self.failed_acks = 0
        self.measuring = False
        self.latencies_us = []

    def delivered(self, data):
        sent = payload_time(data)
        now = time.time_ns()
        with self.lock:
            self.deliveries += 1
            if self.measuring and sent is not None:
                self.latencies_us.append(max(1, (now - sent) // 1000))


def percentile(sorted_values, q):
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(q * (len(sorted_values) - 1)))]


class Window:
    """Measures the steady window: CPU and counters between MEASURE_START and MEASURE_END."""

    def start(self, tally):
        with tally.lock:
            self.d0, self.p0 = tally.deliveries, tally.published
            tally.latencies_us = []
            tally.measuring = True
        self.c0, self.t0 = cpu_secs(), time.monotonic()
        mark("MEASURE_START")

    def end(self, tally):
        with tally.lock:
            tally.measuring = False
            self.d1, self.p1 = tally.deliveries, tally.published
            lat = sorted(tally.latencies_us)
        self.c1, self.t1 = cpu_secs(), time.monotonic()
        self.rss = rss_kib()
        mark("MEASURE_END")
        return lat


def result(plan, api, connected, failed, base, window, lat, extra=None):
    n = max(1, connected)
    r = {
        "client": "azure-messaging-webpubsubclient 1.1.0 (%s)" % api,
        "connections": connected,
        "failed": failed,
        "rss_base_kib": base,
        "rss_kib": window.rss,
        "rss_per_connection_kib": (window.rss - base) / n,
        "seconds": window.t1 - window.t0,
        "cpu_secs": window.c1 - window.c0,
        "deliveries": getattr(window, "d1", 0) - getattr(window, "d0", 0),
        "published": getattr(window, "p1", 0) - getattr(window, "p0", 0),
        "latency_samples": len(lat),
        "p50_us": percentile(lat, 0.50),
        "p99_us": percentile(lat, 0.99),
        "max_us": lat[-1] if lat else 0,
        "threads": threading.active_count(),
    }
    r.update(extra or {})
    emit("RESULT " + json.dumps(r))


# ---- sync API: websocket-client, a reader thread and a sequence-ack thread per client, and
# ---- a new thread per callback (the SDK's design).


def run_sync(plan):
    from azure.messaging.webpubsubclient import WebPubSubClient, WebPubSubClientCredential

    tally = Tally()
    base = rss_kib()
    receivers = plan["receivers"]
    publishers = plan["publishers"]

    def make(spec, receive):
        client = WebPubSubClient(WebPubSubClientCredential(spec["url"]))
        if receive:
            client.subscribe(CallbackType.GROUP_MESSAGE, lambda e: tally.delivered(e.data))
        client.open()
        return client

    clients, failed = [], 0
    pubs = []  # (client, spec) of the publishers that connected
    specs = [(s, True) for s in receivers] + [(s, False) for s in publishers]
    with ThreadPoolExecutor(CONNECT_CONCURRENCY) as pool:
        futures = [pool.submit(make, s, r) for s, r in specs]
        for f, (spec, receive) in zip(futures, specs):
            try:
                clients.append(f.result())
                if not receive:
                    pubs.append((clients[-1], spec))
            except Exception as e:  # noqa: BLE001 - counted and reported
                failed += 1
                if failed == 1:
                    log("connect failed: %r" % e)
    log("%d connected, %d failed" % (len(clients), failed))
    window = Window()
    if plan["workload"] == "idle":
        window.start(tally)
        time.sleep(plan["hold"])
        lat = window.end(tally)
    else:
        stop = threading.Event()
        rate = float(plan.get("rate") or 0)
        if rate <= 0:
            log("the sync API publishes without acks (see send_loop): give --rate")
            os._exit(2)

        def send_loop(client, spec, slot, schedule):
            seq = slot
            while not stop.is_set():
                if rate > 0:
                    with schedule["lock"]:
                        n = schedule["n"]
                        schedule["n"] += 1
                    delay = schedule["start"] + n / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                try:
                    # Without an ack: the sync client's ack wait misses a notification that
                    # arrives before it starts waiting (_send_message_with_ack_id: notify()
                    # before cv.wait()), so over a fast hub each acked send lasts the whole
                    # ack_timeout (30 s). Hence a rate is required for this API.
                    client.send_to_group(
                        spec["group"],
                        payload(plan["size"], spec["index"], seq),
                        WebPubSubDataType.TEXT,
                        ack=False,
                    )
                    with tally.lock:
                        tally.published += 1
                except Exception:  # noqa: BLE001 - counted and reported
                    with tally.lock:
                        tally.failed_acks += 1
                seq += plan["window"]

        # `send_to_group` blocks until its ack: a window of W is W sending threads.
        senders = []
        for client, spec in pubs:
            schedule = {"lock": threading.Lock(), "n": 0, "start": time.monotonic()}
            for slot in range(plan["window"]):
                t = threading.Thread(target=send_loop, args=(client, spec, slot, schedule), daemon=True)
                t.start()
                senders.append(t)
        time.sleep(plan["warmup"])
        window.start(tally)
        time.sleep(plan["duration"])
        lat = window.end(tally)
        stop.set()
    result(plan, "sync", len(clients), failed, base, window, lat, {"failed_acks": tally.failed_acks})
    # Closing hundreds of sync clients one by one takes long and measures nothing: the hub
    # process is stopped right after, which ends every socket.
    os._exit(0)


# ---- aio API: aiohttp, one event loop, tasks per client.


async def run_aio(plan):
    from azure.messaging.webpubsubclient.aio import WebPubSubClient, WebPubSubClientCredential

    tally = Tally()
    base = rss_kib()
    receivers = plan["receivers"]
    publishers = plan["publishers"]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def on_group_message(e):
        tally.delivered(e.data)

    async def make(spec, receive):
        async with gate:
            client = WebPubSubClient(WebPubSubClientCredential(spec["url"]))
            if receive:
                await client.subscribe(CallbackType.GROUP_MESSAGE, on_group_message)
            await client.open()
            return client

    specs = [(s, True) for s in receivers] + [(s, False) for s in publishers]
    outcomes = await asyncio.gather(*(make(s, r) for s, r in specs), return_exceptions=True)
    clients = [c for c in outcomes if not isinstance(c, BaseException)]
    errors = [c for c in outcomes if isinstance(c, BaseException)]
    if errors:
        log("connect failed: %r" % errors[0])
    log("%d connected, %d failed" % (len(clients), len(errors)))
    pubs = [
        (c, spec)
        for c, spec in zip(outcomes[len(receivers):], publishers)
        if not isinstance(c, BaseException)
    ]
    window = Window()
    if plan["workload"] == "idle":
        window.start(tally)
        await asyncio.sleep(plan["hold"])
        lat = window.end(tally)
    else:
        stop = asyncio.Event()
        rate = float(plan.get("rate") or 0)

        async def send_loop(client, spec, slot, schedule):
            seq = slot
            while not stop.is_set():
                if rate > 0:
                    n = schedule["n"]
                    schedule["n"] += 1
                    delay = schedule["start"] + n / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                try:
                    await client.send_to_group(
                        spec["group"],
                        payload(plan["size"], spec["index"], seq),
                        WebPubSubDataType.TEXT,
                    )
                    tally.published += 1
                except Exception:  # noqa: BLE001 - counted and reported
                    tally.failed_acks += 1
                seq += plan["window"]

        tasks = []
        for client, spec in pubs:
            schedule = {"n": 0, "start": time.monotonic()}
            for slot in range(plan["window"]):
                tasks.append(asyncio.create_task(send_loop(client, spec, slot, schedule)))
        await asyncio.sleep(plan["warmup"])
        window.start(tally)
        await asyncio.sleep(plan["duration"])
        lat = window.end(tally)
        stop.set()
    result(plan, "aio", len(clients), len(errors), base, window, lat, {"failed_acks": tally.failed_acks})
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", choices=["sync", "aio"], default="sync")
    parser.add_argument("plan")
    args = parser.parse_args()
    with open(args.plan) as f:
        plan = json.load(f)
    if args.api == "sync":
        run_sync(plan)
    else:
        asyncio.run(run_aio(plan))


if __name__ == "__main__":
    main()
