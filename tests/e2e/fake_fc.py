#!/usr/bin/env python3
"""A loopback stand-in for the Alibaba Cloud Function Compute 3.0 control plane, for stellar's
aliyun adapter tests (tests/e2e/aliyun.rs starts it; nothing else should).

Independent oracles, not code written alongside the adapter:
- Every request's ACS3-HMAC-SHA256 signature is recomputed with Alibaba's own signer,
  `alibabacloud_openapi_util.client.Client.get_authorization` (PyPI alibabacloud_openapi_util),
  over the headers the request says it signed, and the body hash with the SDK's `Client.hash`.
  A mismatch is refused with FC's error body shape (`Code`, `Message`, `RequestId`, which
  `alibabacloud_tea_openapi`'s `do_request` reads) and is never routed.
- Routes, actions and methods come from the FC 3.0 API model in PyPI alibabacloud_fc20230330
  (`client.py`: `create_function_with_options` POST /2023-03-30/functions,
  `get_function_with_options` GET /2023-03-30/functions/{functionName},
  `update_function_with_options` PUT, `delete_function_with_options` DELETE,
  `list_functions_with_options` GET /2023-03-30/functions (prefix, limit, nextToken),
  `create_trigger_with_options` POST /2023-03-30/functions/{functionName}/triggers,
  `list_triggers_with_options`, `get_trigger_with_options`, `delete_trigger_with_options`
  .../triggers[/{triggerName}]); request bodies are parsed with the model classes
  (`models.CreateFunctionInput`, `UpdateFunctionInput`, `CreateTriggerInput`, `from_map`),
  so a field the model does not know is refused, and responses are built with
  `models.Function` / `models.Trigger` / `to_map()`.

Behaviour a live account has that the fake mimics (assumptions, not verified here):
state Pending -> Active after a few GetFunction polls, lastUpdateStatus InProgress ->
Successful after an update, a function with triggers cannot be deleted, error statuses
(403 SignatureNotMatch, 404 FunctionNotFound, 409 FunctionAlreadyExists, 429
ResourceExhausted, 413 EntityTooLarge).

Usage: fake_fc.py ACCESS_KEY_ID ACCESS_KEY_SECRET SECURITY_TOKEN|- REGION
Prints `FAKE-FC-READY <port>` once listening on 127.0.0.1:<free port>. Unsigned control
routes for the test: GET /__fake/state, POST /__fake/config {"max_functions", "pending_polls",
"max_body_bytes"}, POST /__fake/functions (a function created out of band).
"""

import base64
import io
import json
import sys
import threading
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote

from alibabacloud_fc20230330 import models
from alibabacloud_openapi_util.client import Client as Utils
from darabonba.request import DaraRequest

ALGORITHM = "ACS3-HMAC-SHA256"
VERSION = "2023-03-30"
PREFIX = "/2023-03-30/functions"
REQUIRED_SIGNED = [
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
]

AK, SECRET, TOKEN, REGION = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
TOKEN = None if TOKEN == "-" else TOKEN

lock = threading.Lock()
state = {
    "functions": {},  # name -> Function map (to_map form) + "_polls" counters
    "triggers": {},  # name -> {trigger name -> Trigger map}
    "log": [],  # [action, method, path, status]
    "signatures_checked": 0,
    "signatures_rejected": 0,
    "nonces": set(),
    "config": {"max_functions": 100, "pending_polls": 2, "max_body_bytes": 64 << 20},
}


class Fail(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def route(method, path):
    """(action, function name, trigger name) of an FC 3.0 route, after the SDK's client.py."""
    if not path.startswith(PREFIX):
        return None
    rest = path[len(PREFIX):]
    parts = [unquote(p) for p in rest.split("/")[1:]] if rest else []
    table = {
        (0, "POST"): "CreateFunction",
        (0, "GET"): "ListFunctions",
        (1, "GET"): "GetFunction",
        (1, "PUT"): "UpdateFunction",
        (1, "DELETE"): "DeleteFunction",
        (2, "POST"): "CreateTrigger",
        (2, "GET"): "ListTriggers",
        (3, "GET"): "GetTrigger",
        (3, "PUT"): "UpdateTrigger",
        (3, "DELETE"): "DeleteTrigger",
    }
    if len(parts) >= 2 and parts[1] != "triggers":
        return None
    action = table.get((len(parts), method))
    if action is None:
        return None
    name = parts[0] if parts else None
    trigger = parts[2] if len(parts) == 3 else None
    return action, name, trigger


def check_signature(handler, body):
    """Recomputes the signature with Alibaba's SDK; raises Fail on any mismatch."""
    headers = {k.lower(): v for k, v in handler.headers.items()}
    auth = headers.get("authorization", "")
    if not auth.startswith(ALGORITHM + " "):
        raise Fail(400, "MissingAuthorization", "the Authorization header is missing or not ACS3")
    fields = dict(p.split("=", 1) for p in auth[len(ALGORITHM) + 1:].split(",") if "=" in p)
    ak, signed = fields.get("Credential", ""), fields.get("SignedHeaders", "")
    if ak != AK:
        raise Fail(403, "InvalidAccessKeyId.NotFound", f"Specified access key is not found: {ak}")
    signed_list = signed.split(";")
    for name in REQUIRED_SIGNED + (["content-type"] if "content-type" in headers else []):
        if name not in signed_list:
            raise Fail(400, "IncompleteSignature", f"header {name} must be signed")
    if headers.get("x-acs-version") != VERSION:
        raise Fail(400, "InvalidVersion", f"x-acs-version must be {VERSION}")
    payload = Utils.hash(body, ALGORITHM).hex()
    if headers.get("x-acs-content-sha256") != payload:
        raise Fail(400, "ContentSHA256Mismatch", "x-acs-content-sha256 does not match the body")
    if TOKEN is not None:
        if headers.get("x-acs-security-token") != TOKEN or "x-acs-security-token" not in signed_list:
            raise Fail(403, "InvalidSecurityToken.Mismatch", "the STS token is missing or wrong")
    nonce = headers.get("x-acs-signature-nonce", "")
    with lock:
        if nonce in state["nonces"]:
            raise Fail(400, "SignatureNonceUsed", f"the nonce {nonce} was used before")
        state["nonces"].add(nonce)
    path, _, query = handler.path.partition("?")
    request = DaraRequest()
    request.method = handler.command
    request.pathname = path
    request.query = dict(parse_qsl(query, keep_blank_values=True))
    request.headers = {name: headers.get(name, "") for name in signed_list}
    expected = Utils.get_authorization(request, ALGORITHM, payload, AK, SECRET)
    with lock:
        state["signatures_checked"] += 1
    if expected != auth:
        with lock:
            state["signatures_rejected"] += 1
        raise Fail(
            403,
            "SignatureNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your access key and signing method.",
        )
    return headers.get("x-acs-action", ""), request.query


def check_zip(zip_b64):
    try:
        data = base64.b64decode(zip_b64, validate=True)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            info = z.getinfo("bootstrap")
    except (ValueError, KeyError, zipfile.BadZipFile) as e:
        raise Fail(400, "InvalidArgument", f"code.zipFile is not a zip with bootstrap: {e}")
    mode = (info.external_attr >> 16) & 0o777
    if mode & 0o111 == 0:
        raise Fail(400, "InvalidArgument", f"bootstrap is not executable (mode {oct(mode)})")
    return len(data), oct(mode)


def function_map(name):
    f = dict(state["functions"][name])
    polls = f.pop("_polls")
    f.pop("_bootstrap_mode", None)
    if polls["create"] > 0:
        polls["create"] -= 1
        f["state"], f["lastUpdateStatus"] = "Pending", "InProgress"
    elif polls["update"] > 0:
        polls["update"] -= 1
        f["lastUpdateStatus"] = "InProgress"
    return f


def handle(handler, body):
    path = handler.path.partition("?")[0]
    found = route(handler.command, path)
    if found is None:
        raise Fail(404, "PathNotSupported", f"{handler.command} {path} is not an FC 3.0 route")
    action, name, trigger = found
    signed_action, query = check_signature(handler, body)
    if signed_action != action:
        raise Fail(400, "InvalidAction", f"x-acs-action {signed_action} is not {action}")
    config = state["config"]
    if len(body) > config["max_body_bytes"]:
        raise Fail(413, "EntityTooLarge", "the request body is too large")
    doc = json.loads(body) if body else {}
    with lock:
        functions, triggers = state["functions"], state["triggers"]
        if action == "CreateFunction":
            model = models.CreateFunctionInput().from_map(doc)
            unknown = set(doc) - set(model.to_map())
            if unknown:
                raise Fail(400, "InvalidArgument", f"unknown fields {sorted(unknown)}")
            fname = model.function_name
            if not fname or not model.runtime or not model.handler:
                raise Fail(400, "InvalidArgument", "functionName, runtime and handler are required")
            if fname in functions:
                raise Fail(409, "FunctionAlreadyExists", f"function '{fname}' already exists")
            if len(functions) >= config["max_functions"]:
                raise Fail(429, "ResourceExhausted", "the number of functions exceeds the quota")
            if model.memory_size % 64 or not 128 <= model.memory_size <= 32768:
                raise Fail(400, "InvalidArgument", "memorySize must be a multiple of 64")
            gb = model.memory_size / 1024
            if not gb / 4 - 1e-9 <= model.cpu <= gb + 1e-9:
                raise Fail(400, "InvalidArgument", "cpu:memory ratio must be 1:1 to 1:4")
            size, mode = check_zip(model.code.zip_file)
            out = models.Function(
                function_name=fname,
                function_arn=f"acs:fc:{REGION}:123456789:functions/{fname}",
                function_id=uuid.uuid4().hex,
                runtime=model.runtime,
                handler=model.handler,
                memory_size=model.memory_size,
                cpu=model.cpu,
                disk_size=model.disk_size,
                timeout=model.timeout,
                instance_concurrency=model.instance_concurrency,
                internet_access=model.internet_access,
                environment_variables=model.environment_variables,
                custom_runtime_config=model.custom_runtime_config,
                tags=model.tags,
                code_size=size,
                state="Active",
                last_update_status="Successful",
            ).to_map()
            out["_polls"] = {"create": config["pending_polls"], "update": 0}
            out["_bootstrap_mode"] = mode
            functions[fname] = out
            triggers[fname] = {}
            return 200, function_map(fname)
        if action == "ListFunctions":
            prefix = query.get("prefix", "")
            names = sorted(n for n in functions if n.startswith(prefix))
            start = int(query.get("nextToken") or 0)
            limit = int(query.get("limit") or 20)
            page = names[start:start + limit]
            out = models.ListFunctionsOutput(
                functions=[models.Function().from_map(function_map(n)) for n in page],
                next_token=str(start + limit) if start + limit < len(names) else None,
            ).to_map()
            return 200, out
        if name not in functions:
            raise Fail(404, "FunctionNotFound", f"function '{name}' does not exist")
        if action == "GetFunction":
            return 200, function_map(name)
        if action == "UpdateFunction":
            model = models.UpdateFunctionInput().from_map(doc)
            unknown = set(doc) - set(model.to_map())
            if unknown:
                raise Fail(400, "InvalidArgument", f"unknown fields {sorted(unknown)}")
            f = functions[name]
            if model.code is not None:
                f["codeSize"], f["_bootstrap_mode"] = check_zip(model.code.zip_file)
            for key, value in doc.items():
                if key != "code":
                    f[key] = value
            f["_polls"]["update"] = config["pending_polls"]
            f.setdefault("_updates", []).append(sorted(doc))
            return 200, function_map(name)
        if action == "DeleteFunction":
            if triggers[name]:
                raise Fail(400, "FunctionNotEmpty", f"function '{name}' still has triggers")
            del functions[name]
            del triggers[name]
            return 204, None
        if action == "CreateTrigger":
            model = models.CreateTriggerInput().from_map(doc)
            if model.trigger_name in triggers[name]:
                raise Fail(409, "TriggerAlreadyExists", f"trigger '{model.trigger_name}' exists")
            if not isinstance(model.trigger_config, str):
                raise Fail(400, "InvalidArgument", "triggerConfig must be a JSON string")
            trigger_config = json.loads(model.trigger_config)
            if model.trigger_type == "http" and trigger_config.get("authType") not in (
                "anonymous",
                "function",
                "jwt",
            ):
                raise Fail(400, "InvalidArgument", "authType must be anonymous, function or jwt")
            url = f"https://{name}-{uuid.uuid4().hex[:10]}.{REGION}.fcapp.run"
            out = models.Trigger(
                trigger_name=model.trigger_name,
                trigger_type=model.trigger_type,
                trigger_config=model.trigger_config,
                qualifier=model.qualifier,
                trigger_id=uuid.uuid4().hex,
                http_trigger=models.HTTPTrigger(url_internet=url, url_intranet=url + "-internal"),
            ).to_map()
            triggers[name][model.trigger_name] = out
            return 200, out
        if action == "ListTriggers":
            return 200, models.ListTriggersOutput(
                triggers=[models.Trigger().from_map(t) for t in triggers[name].values()]
            ).to_map()
        if trigger not in triggers[name]:
            raise Fail(404, "TriggerNotFound", f"trigger '{trigger}' does not exist")
        if action == "GetTrigger":
            return 200, triggers[name][trigger]
        if action == "DeleteTrigger":
            del triggers[name][trigger]
            return 204, None
        raise Fail(400, "InvalidArgument", f"{action} is not supported by this fake")


def control(handler, body):
    path = handler.path.partition("?")[0]
    with lock:
        if path == "/__fake/state" and handler.command == "GET":
            functions = {}
            for n, f in state["functions"].items():
                shown = {k: v for k, v in f.items() if k != "_polls"}
                functions[n] = shown
            return 200, {
                "functions": functions,
                "triggers": state["triggers"],
                "log": state["log"],
                "signatures_checked": state["signatures_checked"],
                "signatures_rejected": state["signatures_rejected"],
            }
        if path == "/__fake/config" and handler.command == "POST":
            state["config"].update(json.loads(body))
            return 200, state["config"]
        if path == "/__fake/functions" and handler.command == "POST":
            doc = json.loads(body)
            name = doc["functionName"]
            doc["_polls"] = {"create": 0, "update": 0}
            state["functions"][name] = doc
            state["triggers"][name] = {}
            return 200, doc
    return 404, {"Code": "NotFound", "Message": path}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def respond(self, status, doc, request_id):
        data = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-acs-request-id", request_id)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def serve(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        request_id = str(uuid.uuid4()).upper()
        if self.path.startswith("/__fake/"):
            status, doc = control(self, body)
            return self.respond(status, doc, request_id)
        action = self.headers.get("x-acs-action", "?")
        try:
            status, doc = handle(self, body)
        except Fail as e:
            status, doc = e.status, {"Code": e.code, "Message": e.message, "RequestId": request_id}
        except Exception as e:  # a malformed body: FC's generic bad-request answer
            status, doc = 400, {
                "Code": "InvalidArgument",
                "Message": f"{type(e).__name__}: {e}",
                "RequestId": request_id,
            }
        with lock:
            state["log"].append([action, self.command, self.path.partition("?")[0], status])
        self.respond(status, doc, request_id)

    do_GET = do_POST = do_PUT = do_DELETE = serve


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"FAKE-FC-READY {server.server_address[1]}", flush=True)
    server.serve_forever()
