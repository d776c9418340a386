"""Wire agent around the official Python service SDK (azure-messaging-webpubsubservice), for
tests/service_wire.rs: it issues one data-plane operation per command against a recording
endpoint, so the test can compare the request with the ones the JS SDK and our ServiceClient
send for the same operation.

Settings, from the environment:
  WPS_CONNECTION_STRING  the recorder's connection string (required; never printed)
  WPS_HUB                hub name (required)
  WPS_DEADLINE_SECS      the agent exits after this long whatever happens (default 60)

Commands, one JSON object per line on stdin (fields as in tests/service_wire.rs `Op`):
  {"op": <operation>, ...arguments}   run one operation
  {"op": "exit"}                      exit
Output, one JSON object per line on stdout:
  {"done": op, "result": ...}                the SDK returned (result: bool, list, token)
  {"done": op, "result": null, "note": ...}  done another way than the public method (why)
  {"unsupported": op, "why": ...}            this SDK version has no such operation
  {"failed": op, "error": ...}               the SDK raised
Binary data travels base64-encoded.
"""

import base64
import json
import os
import sys
import threading

from azure.messaging.webpubsubservice import WebPubSubServiceClient
from azure.messaging.webpubsubservice._operations._operations import (
    WebPubSubServiceClientOperationsMixin as Generated,
)


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def message_of(cmd):
    """The SDK's (message, content_type) for a command's content."""
    kind = cmd["kind"]
    if kind == "json":
        return cmd["data"], "application/json"
    if kind == "text":
        return cmd["data"], "text/plain"
    return base64.b64decode(cmd["data"]), "application/octet-stream"


def send_kwargs(cmd, allowed):
    kwargs = {}
    if "excluded" in cmd and "excluded" in allowed:
        kwargs["excluded"] = cmd["excluded"]
    if "filter" in cmd and "filter" in allowed:
        kwargs["filter"] = cmd["filter"]
    if "ttl" in cmd:
        kwargs["message_ttl_seconds"] = cmd["ttl"]
    return kwargs


class ViaGenerated(Exception):
    """The hand-written method could not take an argument; the generated one did."""


def send(client, name, target, cmd, allowed):
    """A send through the SDK's public method; with a TTL, through the generated operation
    underneath when the public one refuses it (1.3.0's send_to_* take no
    message_ttl_seconds and fail with a TypeError)."""
    message, content_type = message_of(cmd)
    kwargs = send_kwargs(cmd, allowed)
    method = getattr(client, name)
    try:
        return method(*target, message, content_type=content_type, **kwargs)
    except TypeError as e:
        if "message_ttl_seconds" not in str(e):
            raise
    if content_type == "application/json":
        body = json.dumps(message).encode()
    elif isinstance(message, str):
        body = message.encode()
    else:
        body = message
    getattr(Generated, name)(client, *target, body, content_type=content_type, **kwargs)
    raise ViaGenerated(name + " refused message_ttl_seconds (TypeError); sent by the generated operation")


def run(client, cmd):
    op = cmd["op"]
    if op == "send_to_all":
        return send(client, op, (), cmd, ("excluded", "filter"))
    if op == "send_to_group":
        return send(client, op, (cmd["group"],), cmd, ("excluded", "filter"))
    if op == "send_to_user":
        return send(client, op, (cmd["user"],), cmd, ("filter",))
    if op == "send_to_connection":
        return send(client, op, (cmd["connection"],), cmd, ())
    if op == "connection_exists":
        return client.connection_exists(cmd["connection"])
    if op == "group_exists":
        return client.group_exists(cmd["group"])
    if op == "user_exists":
        return client.user_exists(cmd["user"])
    if op == "close_all":
        return client.close_all_connections(excluded=cmd.get("excluded"), reason=cmd.get("reason"))
    if op == "close_group":
        return client.close_group_connections(
            cmd["group"], excluded=cmd.get("excluded"), reason=cmd.get("reason")
        )
    if op == "close_user":
        return client.close_user_connections(
            cmd["user"], excluded=cmd.get("excluded"), reason=cmd.get("reason")
        )
    if op == "close_connection":
        return client.close_connection(cmd["connection"], reason=cmd.get("reason"))
    if op == "add_connection_to_group":
        return client.add_connection_to_group(cmd["group"], cmd["connection"])
    if op == "remove_connection_from_group":
        return client.remove_connection_from_group(cmd["group"], cmd["connection"])
    if op == "remove_connection_from_all_groups":
        return client.remove_connection_from_all_groups(cmd["connection"])
    if op == "add_user_to_group":
        return client.add_user_to_group(cmd["group"], cmd["user"])
    if op == "remove_user_from_group":
        return client.remove_user_from_group(cmd["group"], cmd["user"])
    if op == "remove_user_from_all_groups":
        return client.remove_user_from_all_groups(cmd["user"])
    if op in ("add_connections_to_groups", "remove_connections_from_groups"):
        if not hasattr(client, op):
            raise NotImplementedError("azure-messaging-webpubsubservice 1.3.0 has no " + op)
        return getattr(client, op)(cmd["groups"], cmd["filter"])
    if op == "list_connections":
        kwargs = {"group": cmd["group"]}
        if "top" in cmd:
            kwargs["top"] = cmd["top"]
        if "max_page_size" in cmd:
            kwargs["maxpagesize"] = cmd["max_page_size"]
        return [
            {"connectionId": m.connection_id, "userId": m.user_id}
            for m in client.list_connections(**kwargs)
        ]
    if op in ("grant_permission", "revoke_permission", "has_permission"):
        return getattr(client, op)(cmd["permission"], cmd["connection"], target_name=cmd.get("target"))
    if op == "generate_client_token":
        # The generated operation: the SDK calls it with Entra ID credentials; with a key it
        # mints the token itself (client_access_token below).
        answer = Generated.get_client_access_token(
            client,
            user_id=cmd.get("user"),
            roles=cmd.get("roles"),
            minutes_to_expire=cmd["minutes"],
            groups=cmd.get("groups"),
        )
        return answer.get("token")
    if op == "client_access_token":
        return client.get_client_access_token(
            user_id=cmd.get("user"),
            roles=cmd.get("roles"),
            minutes_to_expire=cmd["minutes"],
            groups=cmd.get("groups"),
        )["token"]
    raise NotImplementedError("unknown operation " + op)


def main():
    deadline = float(os.environ.get("WPS_DEADLINE_SECS", "60"))
    timer = threading.Timer(deadline, lambda: os._exit(3))
    timer.daemon = True
    timer.start()
    client = WebPubSubServiceClient.from_connection_string(
        os.environ["WPS_CONNECTION_STRING"],
        hub=os.environ["WPS_HUB"],
        # One attempt: the recorder answers every request, and a retry would be recorded twice.
        retry_total=0,
    )
    emit(ready=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "exit":
            break
        try:
            result = run(client, cmd)
            emit(done=op, result=result)
        except ViaGenerated as e:
            emit(done=op, result=None, note=str(e))
        except NotImplementedError as e:
            emit(unsupported=op, why=str(e))
        except Exception as e:  # noqa: BLE001 - the test reports whatever the SDK raised
            emit(failed=op, error="%s: %s" % (type(e).__name__, e))
    os._exit(0)


if __name__ == "__main__":
    main()
