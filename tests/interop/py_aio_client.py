"""Interop agent around the official Python client's asyncio API
(azure.messaging.webpubsubclient.aio, over aiohttp).

Settings, commands and output: see agent_common.py. Same behaviour as py_sync_client.py, with
async callbacks. Exits on {"op":"exit"}, when stdin closes, or at the deadline.
"""

import asyncio
import sys

from azure.messaging.webpubsubclient.aio import WebPubSubClient, WebPubSubClientCredential
from azure.messaging.webpubsubclient.models import CallbackType, WebPubSubDataType

import agent_common as common
from agent_common import emit


async def make_client(settings):
    async def url():
        return settings.client_access_url()

    client = WebPubSubClient(WebPubSubClientCredential(url), **settings.client_options())

    async def on_connected(e):
        emit("connected", connectionId=e.connection_id, userId=e.user_id)

    async def on_disconnected(e):
        emit("disconnected", connectionId=e.connection_id, message=e.message)

    async def on_stopped(*_):
        emit("stopped")

    async def on_group_message(e):
        emit("group-message", **common.group_message_fields(e))

    async def on_server_message(e):
        emit("server-message", **common.server_message_fields(e))

    async def on_rejoin_failed(e):
        emit("rejoin-group-failed", group=e.group, error=type(e.error).__name__)

    await client.subscribe(CallbackType.CONNECTED, on_connected)
    await client.subscribe(CallbackType.DISCONNECTED, on_disconnected)
    await client.subscribe(CallbackType.STOPPED, on_stopped)
    await client.subscribe(CallbackType.GROUP_MESSAGE, on_group_message)
    await client.subscribe(CallbackType.SERVER_MESSAGE, on_server_message)
    await client.subscribe(CallbackType.REJOIN_GROUP_FAILED, on_rejoin_failed)
    return client


async def acked(command, call):
    try:
        await call()
    except Exception as error:  # noqa: BLE001 - every failure is an observation here
        common.emit_result(command, error)
    else:
        common.emit_result(command)


async def run(settings, client, command):
    op = command["op"]
    ack = {"ack_id": command["ackId"]} if command.get("ackId") is not None else {}
    if op == "start":
        await acked(command, client.open)
    elif op == "join":
        await acked(command, lambda: client.join_group(command["group"], **ack))
    elif op == "leave":
        await acked(command, lambda: client.leave_group(command["group"], **ack))
    elif op == "send":
        kind, data = common.decode_data(command)
        await acked(
            command,
            lambda: client.send_to_group(
                command["group"],
                data,
                WebPubSubDataType(kind),
                no_echo=bool(command.get("noEcho", False)),
                **ack,
            ),
        )
    elif op == "server":

        async def send():
            # The server SDK call is synchronous; keep the event loop (and the client) running.
            await asyncio.to_thread(common.server_send, settings, command)

        await acked(command, send)
    elif op == "members":
        ids = await asyncio.to_thread(common.members, settings, command["group"])
        emit("members", tag=command.get("tag"), connectionIds=ids)
    elif op == "status":
        emit("status", connectionId=client._connection_id, state=str(client._state.value))
    elif op == "stop":
        await acked(command, client.close)
    elif op == "exit":
        return False
    else:
        emit("result", op=op, tag=command.get("tag"), ok=False, error="UnknownOp")
    return True


async def main():
    settings = common.Settings()
    common.start_watchdog(settings.deadline)
    client = await make_client(settings)
    emit("ready", sdk="python-aio")
    reason = "stdin closed"
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            break
        command = common.parse_command(line)
        if command is None:
            continue
        if not await run(settings, client, command):
            reason = "exit"
            break
    await asyncio.wait_for(client.close(), timeout=settings.timeout)
    common.leave(reason)


if __name__ == "__main__":
    asyncio.run(main())
