"""What the Python interop agents (py_sync_client.py, py_aio_client.py) share.

An agent drives one official client as the Rust interop tests (tests/interop_*.rs) tell it.

Settings, from the environment:
  WPS_CONNECTION_STRING  the hub's connection string (required; never printed)
  WPS_HUB                hub name (required)
  WPS_USER               user id of the client's token (optional)
  WPS_ROLES              comma-separated roles of the client's token (optional)
  WPS_DEADLINE_SECS      the agent exits after this long whatever happens (default 30)
  WPS_TIMEOUT_SECS       start / ack timeout of the client (default 10)
  WPS_SDK_WAIT_SECS      the Python client's own start_timeout and ack_timeout (default:
                         WPS_TIMEOUT_SECS). The sync client 1.1.0 waits for the socket to open
                         and for each ack on a threading.Condition without a predicate: when
                         the event comes before the wait starts (common with a local hub) it
                         is noticed only when the wait times out, and the operation then
                         succeeds. A short value keeps such lost wake-ups cheap.
  WPS_RECONNECT_RETRIES  reconnect attempts after a connection is lost for good (default 3)

Commands, one JSON object per line on stdin, run one after the other:
  {"op":"start"}                                   open the client
  {"op":"join","group":g,"ackId"?:n,"tag"?:t}      join a group
  {"op":"leave","group":g,"ackId"?:n,"tag"?:t}     leave a group
  {"op":"send","group":g,"data":d,"dataType"?:"text"|"json"|"binary","ackId"?:n,"noEcho"?:b,"tag"?:t}
  {"op":"server","to":"all"|"user"|"group"|"connection","target"?:x,"data":d,"dataType"?:..,"tag"?:t}
                                                   a REST send by the official server SDK
  {"op":"members","group":g,"tag"?:t}              the group's connection ids (server SDK)
  {"op":"status"}                                  the client's connection id and state
  {"op":"stop"}                                    close the client
  {"op":"exit"}                                    close the client if needed and exit
Binary data travels base64-encoded in both directions.

Output, one JSON object per line on stdout, "event" saying what it is:
  ready, connected {connectionId,userId}, disconnected {connectionId,message}, stopped,
  group-message {group,fromUserId,dataType,data,sequenceId},
  server-message {dataType,data,sequenceId}, rejoin-group-failed {group,error},
  result {op,tag,ok:true,ackId,isDuplicated} (isDuplicated is null: the Python client 1.1.0
  does not report it) or {op,tag,ok:false,error,errorName,ackId,message},
  members {tag,connectionIds}, status {connectionId,state}, exit {reason}.
"""

import base64
import json
import os
import sys
import threading
import time

from azure.messaging.webpubsubservice import WebPubSubServiceClient

_PRINT_LOCK = threading.Lock()
_STARTED = time.monotonic()


def emit(event, **fields):
    """Prints one observation as a JSON line (callbacks run on several threads)."""
    fields["event"] = event
    fields["ms"] = int((time.monotonic() - _STARTED) * 1000)
    line = json.dumps(fields, default=str)
    with _PRINT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def leave(reason, code=0):
    """Exits now, whatever threads the client still runs."""
    emit("exit", reason=reason)
    sys.stderr.flush()
    os._exit(code)


class Settings:
    def __init__(self):
        self.connection_string = os.environ["WPS_CONNECTION_STRING"]
        self.hub = os.environ["WPS_HUB"]
        self.user = os.environ.get("WPS_USER") or None
        self.roles = [r for r in os.environ.get("WPS_ROLES", "").split(",") if r]
        self.deadline = float(os.environ.get("WPS_DEADLINE_SECS", "30"))
        self.timeout = float(os.environ.get("WPS_TIMEOUT_SECS", "10"))
        self.reconnect_retries = int(os.environ.get("WPS_RECONNECT_RETRIES", "3"))
        self.sdk_wait = float(os.environ.get("WPS_SDK_WAIT_SECS") or self.timeout)
        self.service = WebPubSubServiceClient.from_connection_string(
            self.connection_string, hub=self.hub
        )

    def client_access_url(self):
        """A fresh URL from the official server SDK, as an app server would hand out."""
        kwargs = {"roles": self.roles}
        if self.user:
            kwargs["user_id"] = self.user
        return self.service.get_client_access_token(**kwargs)["url"]

    def client_options(self):
        """Keyword arguments shared by the sync and the aio client."""
        return {
            # One attempt per operation, so a refused operation is reported as it happened.
            "message_retry_total": 0,
            "reconnect_retry_total": self.reconnect_retries,
            "reconnect_retry_backoff_factor": 0.2,
            "ack_timeout": self.sdk_wait,
            "start_timeout": self.sdk_wait,
        }


def start_watchdog(deadline):
    """Every wait of an agent is bounded: past the deadline it exits, whatever it waits for."""

    def watch():
        time.sleep(deadline)
        leave("deadline", 3)

    threading.Thread(target=watch, daemon=True).start()


def encode_data(data_type, data):
    """The JSON form of a received payload (binary as base64)."""
    kind = str(getattr(data_type, "value", data_type))
    if kind in ("binary", "protobuf"):
        return kind, base64.b64encode(bytes(data)).decode("ascii")
    return kind, data


def decode_data(command):
    """The payload and data type of a send command."""
    kind = command.get("dataType", "text")
    data = command.get("data")
    if kind in ("binary", "protobuf"):
        return kind, memoryview(base64.b64decode(data))
    return kind, data


def server_send(settings, command):
    """A REST send with the official server SDK."""
    kind, data = decode_data(command)
    content_type = {
        "text": "text/plain",
        "json": "application/json",
        "binary": "application/octet-stream",
    }[kind]
    # The SDK serializes a JSON body itself; text and bytes go as they are.
    body = bytes(data) if kind == "binary" else data
    service = settings.service
    to = command["to"]
    if to == "all":
        service.send_to_all(body, content_type=content_type)
    elif to == "user":
        service.send_to_user(command["target"], body, content_type=content_type)
    elif to == "group":
        service.send_to_group(command["target"], body, content_type=content_type)
    elif to == "connection":
        service.send_to_connection(command["target"], body, content_type=content_type)
    else:
        raise ValueError(f"unknown server target {to!r}")


def members(settings, group):
    return [m.connection_id for m in settings.service.list_connections(group=group)]


def error_fields(error):
    """What a test needs of an exception: its class, the service's error name, the ack id."""
    detail = getattr(error, "error_detail", None)
    return {
        "ok": False,
        "error": getattr(error, "name", None) or type(error).__name__,
        "errorName": getattr(detail, "name", None),
        "ackId": getattr(error, "ack_id", None),
        "message": str(getattr(detail, "message", None) or error),
    }


def emit_result(command, error=None):
    """Prints the outcome of one acknowledged operation (the Python client 1.1.0 has no
    isDuplicated flag, so a Duplicate ack shows as a plain success)."""
    if error is not None:
        emit("result", op=command["op"], tag=command.get("tag"), **error_fields(error))
    else:
        emit(
            "result",
            op=command["op"],
            tag=command.get("tag"),
            ok=True,
            ackId=command.get("ackId"),
            isDuplicated=None,
        )


def group_message_fields(args):
    kind, data = encode_data(args.data_type, args.data)
    return {
        "group": args.group,
        "fromUserId": args.from_user_id,
        "dataType": kind,
        "data": data,
        "sequenceId": args.sequence_id,
    }


def server_message_fields(args):
    kind, data = encode_data(args.data_type, args.data)
    return {"dataType": kind, "data": data, "sequenceId": args.sequence_id}


def parse_command(line):
    line = line.strip()
    if not line:
        return None
    return json.loads(line)
