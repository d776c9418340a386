"""Golden vectors for the protobuf subprotocols, from Python's `protobuf` package.

Compiles proto/webpubsub.proto with grpcio-tools' bundled protoc, then for each case on stdin
builds the message from a plain description (field names of the .proto, nothing shared with the
Rust code), serializes it, and parses the bytes the Rust codec produced for the same case.

stdin:  {"proto": "<path to webpubsub.proto>",
         "cases": [{"name": ..., "message": "UpstreamMessage" | "DownstreamMessage",
                    "fields": {...}, "ours": "<hex>"}]}
        In "fields", a bytes field is a base64 string; a message field is an object (an empty
        object sets an empty message, as for ping_message).
stdout: {"<name>": {"theirs": "<hex>", "ours_equal": true|false, "ours_error": null|"..."}}
"""

import base64
import importlib
import json
import os
import sys
import tempfile

from google.protobuf.descriptor import FieldDescriptor
from grpc_tools import protoc
import importlib.resources


def compile_proto(proto_path, out_dir):
    include = str(importlib.resources.files("grpc_tools") / "_proto")
    proto_dir, proto_file = os.path.split(os.path.abspath(proto_path))
    code = protoc.main(
        ["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out_dir}", proto_file]
    )
    if code != 0:
        raise SystemExit(f"protoc failed on {proto_path} with {code}")
    sys.path.insert(0, out_dir)
    return importlib.import_module(proto_file[: -len(".proto")] + "_pb2")


def fill(message, fields):
    """Sets `fields` on `message` by the .proto's field names."""
    message.SetInParent()
    for name, value in fields.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            fill(getattr(message, name), value)
        elif field.type == FieldDescriptor.TYPE_BYTES:
            setattr(message, name, base64.b64decode(value))
        else:
            setattr(message, name, value)


def main():
    request = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as out_dir:
        module = compile_proto(request["proto"], out_dir)
        answer = {}
        for case in request["cases"]:
            cls = getattr(module, case["message"])
            theirs = cls()
            fill(theirs, case["fields"])
            ours = cls()
            error = None
            try:
                ours.ParseFromString(bytes.fromhex(case["ours"]))
            except Exception as e:  # a parse failure is the answer, not a crash
                error = f"{type(e).__name__}: {e}"
            answer[case["name"]] = {
                "theirs": theirs.SerializeToString(deterministic=True).hex(),
                "ours_equal": error is None and ours == theirs,
                "ours_error": error,
            }
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
