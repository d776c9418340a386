// An app server built on the official event handler SDK (@azure/web-pubsub-express 1.1.0,
// pinned in package.json), for tests/interop_handler_express.rs. It is what an app puts
// behind the service: abuse protection limited to the hub's origin (allowedEndpoints), every
// event's signature checked against the access key (the SDK leaves that to the app), a
// connect handler that names the user and puts them in a group and refuses one user, a user
// event handler that replies, and connected/disconnected counted.
//
// The SDK's middleware is served by node's own http server: it needs only `baseUrl` and
// `path` of express's request, set here, so express itself is not installed.
//
// Environment: WPS_NODE_DIR (where node_modules is), WPS_HUB, WPS_ACCESS_KEY, WPS_REFUSED_USER.
// Input: one JSON line {"endpoint": "http://127.0.0.1:PORT"}, the hub's endpoint (given to
// allowedEndpoints), once the hub, which needs this app's URL first, is listening.
// Output: one JSON object per line on stdout: {"event":"listening","port":N}, then
// {"event":"configured"}, then one line per event the app handled.

"use strict";

const crypto = require("node:crypto");
const http = require("node:http");
const path = require("node:path");

const nodeDir = process.env.WPS_NODE_DIR;
const { WebPubSubEventHandler } = require(
  path.join(nodeDir, "node_modules/@azure/web-pubsub-express"),
);

const hub = process.env.WPS_HUB;
const key = process.env.WPS_ACCESS_KEY;
const refusedUser = process.env.WPS_REFUSED_USER;

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

// The service signs each event with every access key: `sha256=<hex>,sha256=<hex>`.
function signedByOurKey(context) {
  const expected =
    "sha256=" + crypto.createHmac("sha256", key).update(context.connectionId).digest("hex");
  return (context.signature || "").split(",").some((s) => s.trim() === expected);
}

const counts = { connected: 0, disconnected: 0 };

const options = {
  handleConnect(req, res) {
    if (!signedByOurKey(req.context)) {
      emit("bad-signature", { event: "connect" });
      return res.fail(401, "bad signature");
    }
    const sub = (req.claims?.sub || [])[0];
    emit("connect", {
      sub: sub ?? null,
      subprotocols: req.subprotocols ?? [],
      queries: req.queries ?? {},
    });
    if (sub === refusedUser) {
      return res.fail(401, `${sub} is not welcome here`);
    }
    res.setState("greeting", "hello " + sub);
    res.success({ userId: "app-" + sub, groups: ["app-room"] });
  },
  handleUserEvent(req, res) {
    if (!signedByOurKey(req.context)) {
      emit("bad-signature", { event: req.context.eventName });
      return res.fail(401, "bad signature");
    }
    emit("user-event", {
      userId: req.context.userId,
      eventName: req.context.eventName,
      greeting: req.context.states?.greeting ?? null,
      data: req.data,
    });
    res.success(`echo: ${req.data}`, "text");
  },
  onConnected(req) {
    counts.connected += 1;
    emit("connected", { userId: req.context.userId, ...counts, valid: signedByOurKey(req.context) });
  },
  onDisconnected(req) {
    counts.disconnected += 1;
    emit("disconnected", { userId: req.context.userId, ...counts });
  },
};

let middleware = null;
const server = http.createServer((req, res) => {
  if (middleware === null) {
    res.statusCode = 503;
    return res.end("not configured yet");
  }
  const url = new URL(req.url, "http://app");
  req.baseUrl = "";
  req.path = url.pathname;
  middleware(req, res, (err) => {
    res.statusCode = err ? 500 : 404;
    res.end(err ? String(err) : "not a Web PubSub event");
  });
});
server.listen(0, "127.0.0.1", () => emit("listening", { port: server.address().port }));

// Configured by the first stdin line; leaves when the test does (stdin closes) or at a
// deadline, whatever happens.
require("node:readline")
  .createInterface({ input: process.stdin })
  .on("line", (line) => {
    if (middleware === null && line.trim()) {
      const { endpoint } = JSON.parse(line);
      const handler = new WebPubSubEventHandler(hub, { ...options, allowedEndpoints: [endpoint] });
      middleware = handler.getMiddleware();
      emit("configured", { path: handler.path });
    }
  })
  .on("close", () => process.exit(0));
setTimeout(() => process.exit(3), 120_000).unref();
