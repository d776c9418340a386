"""Helper of tests/credential_compat.rs: the official Python server SDK and PyJWT side.

Reads one JSON object on stdin and writes one JSON object on stdout.

  mint:   {"connection_string", "hub", "kwargs"} -> the dict returned by
          WebPubSubServiceClient.from_connection_string(cs, hub=hub)
              .get_client_access_token(**kwargs)
  decode: {"token", "key", "audience"} -> {"header", "claims"} from
          jwt.decode(token, key, algorithms=["HS256"], audience=audience), the way the
          service checks a token, or {"error": "<PyJWT exception class>"}.
"""

import json
import sys

import jwt
from azure.messaging.webpubsubservice import WebPubSubServiceClient


def mint(request):
    client = WebPubSubServiceClient.from_connection_string(
        request["connection_string"], hub=request["hub"]
    )
    return client.get_client_access_token(**request["kwargs"])


def decode(request):
    try:
        claims = jwt.decode(
            request["token"],
            request["key"],
            algorithms=["HS256"],
            audience=request["audience"],
        )
    except jwt.PyJWTError as error:
        return {"error": type(error).__name__}
    return {"header": jwt.get_unverified_header(request["token"]), "claims": claims}


def main():
    command = sys.argv[1]
    request = json.load(sys.stdin)
    result = {"mint": mint, "decode": decode}[command](request)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
