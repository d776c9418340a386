#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (committed; rerun after changing it).

Seeds are small, meaningful inputs each target's fuzzing starts from: the examples of
protocol.md, valid tokens for the key the token target checks with, connection strings,
client URLs, filters and WebSocket frames as clients send them.
"""
import base64, hashlib, hmac, json, os, shutil, struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# Must match fuzz_targets/token_validate.rs.
KEY = "fuzzKeyAbc+/xyz0123456789="
AUDIENCE = "http://127.0.0.1:8080/client/hubs/chat"
SEED_NOW = 1_767_225_600
CENTURY = 100 * 365 * 24 * 3600


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(claims, key=KEY, header=None):
    header = header or {"alg": "HS256", "typ": "JWT"}
    signing = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + b64url(
        json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


def ws_frame(opcode, payload, fin=True, announced=None, mask=b"\x01\x02\x03\x04"):
    """A client frame (masked). `announced` overrides the length in the header."""
    n = len(payload) if announced is None else announced
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


REQUESTS = [
    '{"type":"joinGroup","group":"group1","ackId":1}',
    '{"type":"leaveGroup","group":"group1","ackId":2}',
    '{"type":"sendToGroup","group":"group1","ackId":3,"noEcho":true,"dataType":"text","data":"Hello"}',
    '{"type":"sendToGroup","group":"group1","dataType":"json","data":{"hello":"world"}}',
    '{"type":"sendToGroup","group":"group1","ackId":4,"dataType":"binary","data":"AQID"}',
    '{"type":"event","event":"message","ackId":5,"dataType":"json","data":{"Hello":"world"}}',
    '{"type":"event","event":"message","dataType":"protobuf","data":"CgVoZWxsbw=="}',
    '{"type":"sequenceAck","sequenceId":12}',
    '{"type":"ping"}',
    '{"type":"joinGroup","group":"g","ackId":18446744073709551615}',
    '{"type":"sendToGroup","group":"g","data":[1,2.5,-3e10,null,true,"x\\u00e9"]}',
]

INBOUND = [
    '{"type":"ack","ackId":1,"success":true}',
    '{"type":"ack","ackId":1,"success":false,"error":{"name":"Forbidden","message":"The client has no permission to send message to group \'group1\'."}}',
    '{"type":"ack","ackId":1,"success":false,"error":{"name":"Duplicate","message":"Message with ack-id: 1 has been processed"}}',
    '{"sequenceId":1,"type":"message","from":"group","group":"group1","fromUserId":"user1","dataType":"json","data":{"hello":"world"}}',
    '{"sequenceId":2,"type":"message","from":"server","dataType":"text","data":"Hello World"}',
    '{"type":"message","from":"server","dataType":"binary","data":"aGVsbG8="}',
    '{"type":"system","event":"connected","userId":"user1","connectionId":"abcdefghijklmnop","reconnectionToken":"reconnection-token-0123456789"}',
    '{"type":"system","event":"connected","userId":null,"connectionId":"c1"}',
    '{"type":"system","event":"disconnected","message":"Service reload"}',
    '{"type":"pong"}',
    '{"type":"message","from":"future","data":1}',
]

CONNECTION_STRINGS = [
    "Endpoint=http://127.0.0.1;Port=8080;AccessKey=abc=;Version=1.0;",
    "Endpoint=https://example.webpubsub.azure.com;AccessKey=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg=;Version=1.0;",
    "endpoint=example.webpubsub.azure.com;accesskey=k;",
    "Endpoint=http://localhost:8080/prefix/;AccessKey=key==;Version=1.0;\n",
    "Endpoint=http://[::1];Port=443;AccessKey=a;Version=1.0;",
    " AccessKey = a=b=c ; Endpoint = https://h.example ; Unknown=1 ;;",
]

CLIENT_URLS = [
    "wss://example.webpubsub.azure.com/client/hubs/chat?access_token=eyJhbGciOiJIUzI1NiJ9.e30.sig",
    "ws://127.0.0.1:8080/client/hubs/chat?access_token=abc&awps_connection_id=c1&awps_reconnection_token=r1",
    "https://proxy.example/prefix/client/hubs/Hub%5B1%5D?access_token=t\0conn-7\0reconnection-token-7",
    "http://user:password@host/client/?hub=chat&access_token=a%2Bb%3D#fragment",
    "wss://[::1]:443/client/hubs/chat?flag&access_token=",
]

FILTERS = [
    "userId eq 'user1'\0c1\0user1\0group1",
    "userId ne 'a''b'",
    "'group1' in groups\0c2\0\0group1\0group2",
    "not('group1' in groups)",
    "userId eq 'u' and 'g' in groups or connectionId eq 'c'",
    "userId in ('a', 'b')\0c\0b",
    "userId eq null\0c\0",
    "(connectionId eq 'c1' or connectionId eq 'c2') and not userId eq null",
]

# protobuf_decode: UpstreamMessage and DownstreamMessage examples (protocol.md 4), serialized by
# Python's protobuf package from proto/webpubsub.proto (every message type and data kind).
PROTOBUF = [
    bytes.fromhex("320a0a0667726f7570311001"),
    bytes.fromhex("3a080a0667726f757031"),
    bytes.fromhex("0a150a0667726f75703110031a070a0548656c6c6f2001"),
    bytes.fromhex("0a1d0a0667726f7570311a1322117b2268656c6c6f223a22776f726c64227d"),
    bytes.fromhex("2a120a076d657373616765120512030102031805"),
    bytes.fromhex("2a310a076d65737361676512261a240a1e747970652e676f6f676c65617069732e636f6d2f746573742e506f696e741202082a"),
    bytes.fromhex("4202080c"),
    bytes.fromhex("4a00"),
    bytes.fromhex("0a0408011001"),
    bytes.fromhex("0a2d08011a290a09466f7262696464656e121c54686520636c69656e7420686173206e6f207065726d697373696f6e"),
    bytes.fromhex("12170a0567726f7570120667726f7570311a040a0268692001"),
    bytes.fromhex("12130a067365727665721a07120568656c6c6f2002"),
    bytes.fromhex("12300a067365727665721a261a240a1e747970652e676f6f676c65617069732e636f6d2f746573742e506f696e741202082a"),
    bytes.fromhex("1a200a1e0a106162636465666768696a6b6c6d6e6f70120575736572311a03746f6b"),
    bytes.fromhex("1a121210120e536572766963652072656c6f6164"),
    bytes.fromhex("2200"),
]


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for i, seed in enumerate(seeds):
        data = seed.encode() if isinstance(seed, str) else seed
        with open(os.path.join(d, f"seed-{i:02}"), "wb") as f:
            f.write(data)


def main():
    write("request_decode", REQUESTS)
    write("inbound_decode", INBOUND)
    write("protobuf_decode", PROTOBUF)
    write("connection_string", CONNECTION_STRINGS)
    write("client_url", CLIENT_URLS)
    write("odata_filter", FILTERS)

    exp = SEED_NOW + CENTURY
    tokens = [
        token({"aud": AUDIENCE, "sub": "user1", "exp": exp, "iat": SEED_NOW}),
        token({"aud": AUDIENCE, "exp": exp, "iat": SEED_NOW,
               "role": ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup.g"],
               "webpubsub.group": ["group1"]}),
        token({"aud": [AUDIENCE, "other"], "sub": "", "exp": exp + 0.5, "nbf": SEED_NOW,
               "role": "webpubsub.sendToGroup"}),
        token({"aud": AUDIENCE, "exp": exp}, header={"alg": "none"}),
        token({"aud": AUDIENCE, "exp": SEED_NOW - 3600}),
        token({"aud": AUDIENCE, "exp": exp}, key="wrong key"),
    ]
    # Kind 0: a raw token; kinds 1 and 2: bytes that arbitrary turns into claims.
    structured = [bytes([1]) + b"user1\x00webpubsub.joinLeaveGroup" + bytes(range(32)),
                  bytes([2]) + bytes([7, 0, 0x41]) + b"alice" + bytes(range(40))]
    write("token_validate", [b"\0" + t.encode() for t in tokens] + structured)

    limit = struct.pack("<H", 1024)
    text = REQUESTS[2].encode()
    frames = [
        ws_frame(1, text),
        ws_frame(2, text) + ws_frame(9, b"ping") + ws_frame(8, struct.pack(">H", 1000) + b"bye"),
        ws_frame(1, text[:10], fin=False) + ws_frame(0, text[10:]),
        ws_frame(2, b"x" * 2000),                      # over the 1024-byte limit
        ws_frame(2, b"", announced=64 << 20),          # header announces 64 MiB
        ws_frame(2, b"", announced=(1 << 63) - 1),     # header announces 2^63 - 1 bytes
        bytes([0x81, 0x05]) + b"hello",                # unmasked: a protocol error from a client
        bytes([0xC1, 0x80, 0, 0, 0, 0]),               # RSV1 set
    ]
    raw = [bytes([0]) + limit + bytes([chunk]) + f for f in frames for chunk in (0, 3)]
    encoded = [bytes([1]) + limit + bytes(range(64))]
    write("ws_frame_guard", raw + encoded)


if __name__ == "__main__":
    main()
