// Wire agent around the official JS service SDK (@azure/web-pubsub), for
// tests/service_wire.rs: the same settings, commands and output as service_wire.py (see there).
// Extra setting: WPS_NODE_DIR, where the SDKs are installed.
"use strict";

const path = require("node:path");
const readline = require("node:readline");
const { createRequire } = require("node:module");

const nodeDir =
  process.env.WPS_NODE_DIR || path.resolve(__dirname, "..", "..", "target", "interop", "node");
const requireSdk = createRequire(path.join(nodeDir, "package.json"));
const { WebPubSubServiceClient } = requireSdk("@azure/web-pubsub");

function emit(fields) {
  process.stdout.write(JSON.stringify(fields) + "\n");
}

class Unsupported extends Error {}

function content(cmd) {
  if (cmd.kind === "json") return { message: cmd.data, options: {} };
  if (cmd.kind === "text") return { message: cmd.data, options: { contentType: "text/plain" } };
  return { message: Buffer.from(cmd.data, "base64"), options: {} };
}

function sendOptions(cmd, base) {
  const options = { ...base };
  if (cmd.excluded !== undefined) options.excludedConnections = cmd.excluded;
  if (cmd.filter !== undefined) options.filter = cmd.filter;
  if (cmd.ttl !== undefined) options.messageTtlSeconds = cmd.ttl;
  return options;
}

function closeOptions(cmd) {
  const options = {};
  // `excluded` is not in the typed options of closeAllConnections and closeUserConnections,
  // but the SDK passes the options through to its generated operation, which sends it.
  if (cmd.excluded !== undefined) options.excluded = cmd.excluded;
  if (cmd.reason !== undefined) options.reason = cmd.reason;
  return options;
}

async function run(client, cmd) {
  const { op } = cmd;
  switch (op) {
    case "send_to_all": {
      const c = content(cmd);
      return client.sendToAll(c.message, sendOptions(cmd, c.options));
    }
    case "send_to_group": {
      const c = content(cmd);
      return client.group(cmd.group).sendToAll(c.message, sendOptions(cmd, c.options));
    }
    case "send_to_user": {
      const c = content(cmd);
      return client.sendToUser(cmd.user, c.message, sendOptions(cmd, c.options));
    }
    case "send_to_connection": {
      const c = content(cmd);
      return client.sendToConnection(cmd.connection, c.message, sendOptions(cmd, c.options));
    }
    case "connection_exists":
      return client.connectionExists(cmd.connection);
    case "group_exists":
      return client.groupExists(cmd.group);
    case "user_exists":
      return client.userExists(cmd.user);
    case "close_all":
      return client.closeAllConnections(closeOptions(cmd));
    case "close_group":
      return client.group(cmd.group).closeAllConnections(closeOptions(cmd));
    case "close_user":
      return client.closeUserConnections(cmd.user, closeOptions(cmd));
    case "close_connection":
      return client.closeConnection(cmd.connection, closeOptions(cmd));
    case "add_connection_to_group":
      return client.group(cmd.group).addConnection(cmd.connection);
    case "remove_connection_from_group":
      return client.group(cmd.group).removeConnection(cmd.connection);
    case "remove_connection_from_all_groups":
      return client.removeConnectionFromAllGroups(cmd.connection);
    case "add_user_to_group":
      return client.group(cmd.group).addUser(cmd.user);
    case "remove_user_from_group":
      return client.group(cmd.group).removeUser(cmd.user);
    case "remove_user_from_all_groups":
      return client.removeUserFromAllGroups(cmd.user);
    case "add_connections_to_groups":
      return client.addConnectionsToGroups(cmd.groups, cmd.filter);
    case "remove_connections_from_groups":
      return client.removeConnectionsFromGroups(cmd.groups, cmd.filter);
    case "list_connections": {
      const options = {};
      if (cmd.top !== undefined) options.top = cmd.top;
      if (cmd.max_page_size !== undefined) options.maxPageSize = cmd.max_page_size;
      const members = [];
      for await (const m of await client.group(cmd.group).listConnections(options)) {
        members.push({ connectionId: m.connectionId, userId: m.userId ?? null });
      }
      return members;
    }
    case "grant_permission":
    case "revoke_permission":
    case "has_permission": {
      const method = { grant_permission: "grantPermission", revoke_permission: "revokePermission", has_permission: "hasPermission" }[op];
      const options = cmd.target !== undefined ? { targetName: cmd.target } : {};
      return client[method](cmd.connection, cmd.permission, options);
    }
    case "generate_client_token": {
      // The generated operation: the SDK calls it with Entra ID credentials; with a key it
      // mints the token itself (client_access_token below).
      const answer = await client.client.webPubSub.generateClientToken(client.hubName, {
        userId: cmd.user,
        roles: cmd.roles,
        expirationTimeInMinutes: cmd.minutes,
        groups: cmd.groups,
      });
      return answer.token;
    }
    case "client_access_token": {
      const answer = await client.getClientAccessToken({
        userId: cmd.user,
        roles: cmd.roles,
        expirationTimeInMinutes: cmd.minutes,
        groups: cmd.groups,
      });
      return answer.token;
    }
    default:
      throw new Unsupported(`unknown operation ${op}`);
  }
}

async function main() {
  const deadline = 1000 * Number(process.env.WPS_DEADLINE_SECS || "60");
  setTimeout(() => process.exit(3), deadline).unref();
  const client = new WebPubSubServiceClient(
    process.env.WPS_CONNECTION_STRING,
    process.env.WPS_HUB,
    // One attempt: the recorder answers every request, and a retry would be recorded twice.
    // The recorder listens on plain http on loopback.
    { retryOptions: { maxRetries: 0 }, allowInsecureConnection: true },
  );
  emit({ ready: true });
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const cmd = JSON.parse(line);
    if (cmd.op === "exit") break;
    try {
      const result = await run(client, cmd);
      // Operations without a result resolve to undefined or to the generated layer's `{}`.
      // (whose fields are all undefined).
      const none = result === undefined || JSON.stringify(result) === "{}";
      emit({ done: cmd.op, result: none ? null : result });
    } catch (e) {
      if (e instanceof Unsupported) emit({ unsupported: cmd.op, why: e.message });
      else emit({ failed: cmd.op, error: `${e.name}: ${e.message}` });
    }
  }
  process.stdout.write("", () => process.exit(0));
}

main();
