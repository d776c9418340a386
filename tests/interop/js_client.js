// Interop agent around the official JS client (@azure/web-pubsub-client) and server SDK
// (@azure/web-pubsub), as installed by scripts/setup-interop.sh into target/interop/node.
//
// Same settings (environment), commands (stdin) and output (stdout) as the Python agents: see
// agent_common.py; no `members` command. Differences: results carry the SDK's `isDuplicated` and ack id; a result of
// a failed operation names the SDK's error class (`SendMessageError`) and the service's error
// name (`errorName`, e.g. `Forbidden`). Extra setting: WPS_NODE_DIR, where the SDKs are
// installed (default: target/interop/node beside this repository's tests/).
"use strict";

const path = require("node:path");
const readline = require("node:readline");
const { createRequire } = require("node:module");

const nodeDir =
  process.env.WPS_NODE_DIR || path.resolve(__dirname, "..", "..", "target", "interop", "node");
const requireSdk = createRequire(path.join(nodeDir, "package.json"));
const { WebPubSubClient } = requireSdk("@azure/web-pubsub-client");
const { WebPubSubServiceClient } = requireSdk("@azure/web-pubsub");

const started = Date.now();

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ ...fields, event, ms: Date.now() - started }) + "\n");
}

function leave(reason, code = 0) {
  emit("exit", { reason });
  // Let stdout drain before the process goes, whatever the client still has scheduled.
  process.stdout.write("", () => process.exit(code));
}

const settings = {
  connectionString: required("WPS_CONNECTION_STRING"),
  hub: required("WPS_HUB"),
  user: process.env.WPS_USER || undefined,
  roles: (process.env.WPS_ROLES || "").split(",").filter((r) => r),
  deadlineMs: 1000 * Number(process.env.WPS_DEADLINE_SECS || "30"),
  timeoutMs: 1000 * Number(process.env.WPS_TIMEOUT_SECS || "10"),
  reconnectRetries: Number(process.env.WPS_RECONNECT_RETRIES || "3"),
};

function required(name) {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`js_client: ${name} is not set\n`);
    process.exit(2);
  }
  return value;
}

// Every wait is bounded: past the deadline the agent exits, whatever it waits for.
setTimeout(() => leave("deadline", 3), settings.deadlineMs).unref();

// The local hub serves plain http: the SDK refuses that unless told it is meant.
const service = new WebPubSubServiceClient(settings.connectionString, settings.hub, {
  allowInsecureConnection: true,
});

const client = new WebPubSubClient(
  {
    // A fresh URL from the official server SDK for every new connection, as an app server
    // would hand out.
    getClientAccessUrl: async () =>
      (await service.getClientAccessToken({ userId: settings.user, roles: settings.roles })).url,
  },
  {
    // One attempt per operation, so a refused operation is reported as it happened.
    messageRetryOptions: { maxRetries: 0 },
    reconnectRetryOptions: { maxRetries: settings.reconnectRetries, retryDelayInMs: 200 },
  },
);

function payload(dataType, data) {
  if (dataType === "binary" || dataType === "protobuf") {
    return Buffer.from(data).toString("base64");
  }
  return data;
}

client.on("connected", (e) =>
  emit("connected", { connectionId: e.connectionId, userId: e.userId ?? null }),
);
client.on("disconnected", (e) =>
  emit("disconnected", { connectionId: e.connectionId ?? null, message: e.message?.message ?? null }),
);
client.on("stopped", () => emit("stopped"));
client.on("group-message", (e) =>
  emit("group-message", {
    group: e.message.group,
    fromUserId: e.message.fromUserId ?? null,
    dataType: e.message.dataType,
    data: payload(e.message.dataType, e.message.data),
    sequenceId: e.message.sequenceId ?? null,
  }),
);
client.on("server-message", (e) =>
  emit("server-message", {
    dataType: e.message.dataType,
    data: payload(e.message.dataType, e.message.data),
    sequenceId: e.message.sequenceId ?? null,
  }),
);
client.on("rejoin-group-failed", (e) =>
  emit("rejoin-group-failed", { group: e.group, error: e.error?.name ?? String(e.error) }),
);

function sendData(command) {
  const dataType = command.dataType || "text";
  if (dataType === "binary" || dataType === "protobuf") {
    const bytes = Buffer.from(command.data, "base64");
    return [dataType, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)];
  }
  return [dataType, command.data];
}

async function acked(command, call) {
  const tag = command.tag ?? null;
  try {
    const result = await call(AbortSignal.timeout(settings.timeoutMs));
    emit("result", {
      op: command.op,
      tag,
      ok: true,
      ackId: result?.ackId ?? null,
      isDuplicated: result?.isDuplicated ?? null,
    });
  } catch (error) {
    emit("result", {
      op: command.op,
      tag,
      ok: false,
      error: error?.name ?? String(error),
      errorName: error?.errorDetail?.name ?? null,
      ackId: error?.ackId ?? null,
      message: error?.errorDetail?.message ?? error?.message ?? String(error),
    });
  }
}

async function serverSend(command) {
  const [dataType, data] = sendData(command);
  let message = data;
  const options = {};
  if (dataType === "text") {
    options.contentType = "text/plain";
  } else if (dataType === "binary") {
    message = Buffer.from(command.data, "base64");
  }
  switch (command.to) {
    case "all":
      return service.sendToAll(message, options);
    case "user":
      return service.sendToUser(command.target, message, options);
    case "group":
      return service.group(command.target).sendToAll(message, options);
    case "connection":
      return service.sendToConnection(command.target, message, options);
    default:
      throw new Error(`unknown server target ${command.to}`);
  }
}

function stopped() {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, settings.timeoutMs);
    client.on("stopped", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function run(command) {
  const ack = (signal) => ({ ackId: command.ackId ?? undefined, abortSignal: signal });
  switch (command.op) {
    case "start":
      return acked(command, (abortSignal) => client.start({ abortSignal }));
    case "join":
      return acked(command, (s) => client.joinGroup(command.group, ack(s)));
    case "leave":
      return acked(command, (s) => client.leaveGroup(command.group, ack(s)));
    case "send": {
      const [dataType, data] = sendData(command);
      return acked(command, (s) =>
        client.sendToGroup(command.group, data, dataType, { ...ack(s), noEcho: !!command.noEcho }),
      );
    }
    case "event": {
      // A user event to the hub's event handler (tests/interop_handler_express.rs).
      const [dataType, data] = sendData(command);
      return acked(command, (s) => client.sendEvent(command.event, data, dataType, ack(s)));
    }
    case "server":
      return acked(command, () => serverSend(command));
    case "status":
      // The SDK keeps the connection id in a plain (non-#private) field; no public getter.
      return emit("status", { connectionId: client._connectionId ?? null, state: client._state });
    case "stop":
      return acked(command, async () => {
        const done = stopped();
        client.stop();
        await done;
      });
    default:
      return emit("result", { op: command.op, tag: command.tag ?? null, ok: false, error: "UnknownOp" });
  }
}

async function main() {
  emit("ready", { sdk: "js" });
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let reason = "stdin closed";
  for await (const line of lines) {
    if (!line.trim()) {
      continue;
    }
    const command = JSON.parse(line);
    if (command.op === "exit") {
      reason = "exit";
      break;
    }
    await run(command);
  }
  client.stop();
  leave(reason);
}

main().catch((error) => {
  process.stderr.write(`js_client: ${error?.stack ?? error}\n`);
  leave("crashed", 1);
});
