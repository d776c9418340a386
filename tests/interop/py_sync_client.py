"""Interop agent around the official Python client (azure-messaging-webpubsubclient, sync API).

Settings, commands and output: see agent_common.py. Runs commands one after the other;
the client's callbacks (each on a thread of its own, as the SDK calls them) print what they
observe. Exits on {"op":"exit"}, when stdin closes, or at the deadline.
"""

import sys

from azure.messaging.webpubsubclient import WebPubSubClient, WebPubSubClientCredential
from azure.messaging.webpubsubclient.models import CallbackType, WebPubSubDataType

import agent_common as common
from agent_common import emit


def make_client(settings):
    client = WebPubSubClient(
        WebPubSubClientCredential(settings.client_access_url), **settings.client_options()
    )
    client.subscribe(
        CallbackType.CONNECTED,
        lambda e: emit("connected", connectionId=e.connection_id, userId=e.user_id),
    )
    client.subscribe(
        CallbackType.DISCONNECTED,
        lambda e: emit("disconnected", connectionId=e.connection_id, message=e.message),
    )
    client.subscribe(CallbackType.STOPPED, lambda *_: emit("stopped"))
    client.subscribe(
        CallbackType.GROUP_MESSAGE,
        lambda e: emit("group-message", **common.group_message_fields(e)),
    )
    client.subscribe(
        CallbackType.SERVER_MESSAGE,
        lambda e: emit("server-message", **common.server_message_fields(e)),
    )
    client.subscribe(
        CallbackType.REJOIN_GROUP_FAILED,
        lambda e: emit("rejoin-group-failed", group=e.group, error=type(e.error).__name__),
    )
    return client


def acked(command, call):
    """Runs one acknowledged operation and prints its outcome."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - every failure is an observation here
        common.emit_result(command, error)
    else:
        common.emit_result(command)


def run(settings, client, command):
    op = command["op"]
    ack = {"ack_id": command["ackId"]} if command.get("ackId") is not None else {}
    if op == "start":
        acked(command, client.open)
    elif op == "join":
        acked(command, lambda: client.join_group(command["group"], **ack))
    elif op == "leave":
        acked(command, lambda: client.leave_group(command["group"], **ack))
    elif op == "send":
        kind, data = common.decode_data(command)
        acked(
            command,
            lambda: client.send_to_group(
                command["group"],
                data,
                WebPubSubDataType(kind),
                no_echo=bool(command.get("noEcho", False)),
                **ack,
            ),
        )
    elif op == "event":
        # A user event to the hub's event handler (tests/interop_handler_express.rs).
        kind, data = common.decode_data(command)
        acked(
            command,
            lambda: client.send_event(command["event"], data, WebPubSubDataType(kind), **ack),
        )
    elif op == "server":
        acked(command, lambda: common.server_send(settings, command))
    elif op == "members":
        emit("members", tag=command.get("tag"), connectionIds=common.members(settings, command["group"]))
    elif op == "status":
        emit("status", connectionId=client._connection_id, state=str(client._state.value))
    elif op == "stop":
        acked(command, client.close)
    elif op == "exit":
        return False
    else:
        emit("result", op=op, tag=command.get("tag"), ok=False, error="UnknownOp")
    return True


def main():
    settings = common.Settings()
    common.start_watchdog(settings.deadline)
    client = make_client(settings)
    emit("ready", sdk="python-sync")
    reason = "stdin closed"
    for line in sys.stdin:
        command = common.parse_command(line)
        if command is None:
            continue
        if not run(settings, client, command):
            reason = "exit"
            break
    client.close()
    common.leave(reason)


if __name__ == "__main__":
    main()
