#!/usr/bin/env python3
"""A loopback stand-in for Google Cloud Run (Admin API v2), the Artifact Registry repositories
API (v1) and Google's OAuth token endpoint, for stellar's gcr adapter tests
(tests/e2e/gcr.rs starts it; nothing else should).

Independent oracles, not code written alongside the adapter:
- The OAuth JWT-bearer assertion (RFC 7523) is verified with PyPI `cryptography` against the
  public half of the test's throwaway service-account key (RS256 = RSASSA-PKCS1-v1_5 with
  SHA-256), and its claims (iss, aud, scope, iat/exp) are checked; a bad signature is refused
  as Google refuses it (`400 {"error": "invalid_grant", ...}`, RFC 6749 5.2).
- Request and response bodies are parsed with Google's published protos, as compiled into the
  official Python clients: PyPI `google-cloud-run` (`run_v2.Service.from_json`, from googleapis
  `google/cloud/run/v2/service.proto`, `revision_template.proto`, `k8s.min.proto`), PyPI
  `google-cloud-artifact-registry` (`artifactregistry_v1.Repository`, from
  `google/devtools/artifactregistry/v1/repository.proto`), `googleapis-common-protos`
  (`google.longrunning.operations_pb2.Operation`, `google/longrunning/operations.proto`; errors
  as `google.rpc.Status`, `google/rpc/status.proto` and `code.proto`) and `grpc-google-iam-v1`
  (`iam_policy_pb2.SetIamPolicyRequest`, `google/iam/v1/iam_policy.proto`). A field the protos
  do not know is refused (400 INVALID_ARGUMENT), so the adapter cannot drift from the API.
- Routes follow the HTTP bindings of `google/cloud/run/v2/service.proto` (CreateService
  `POST /v2/{parent=projects/*/locations/*}/services` with `serviceId`, GetService, ListServices
  with `pageSize`/`pageToken`, UpdateService `PATCH /v2/{service.name=...}`, DeleteService,
  SetIamPolicy `POST /v2/{resource=.../services/*}:setIamPolicy`), of
  `google/longrunning/operations.proto` (`GET /v2/{name=projects/*/locations/*/operations/*}`)
  and of `google/devtools/artifactregistry/v1/service.proto` (GetRepository, CreateRepository
  with `repositoryId`, and operations under `/v1/`). Error bodies are Google's JSON error
  shape `{"error": {"code", "message", "status"}}` (AIP-193).

The services really run: on create and update the fake pulls the image from the registry the
service names (the distribution API: manifest, config and layer blobs), checks it is
linux/amd64, unpacks the layers, and starts the entrypoint as Cloud Run would (`PORT`,
`K_SERVICE`, `K_REVISION`, `K_CONFIGURATION`, the service's env) with `GCE_METADATA_HOST`
pointing at a per-instance fake metadata server that answers `instance/id` only with
`Metadata-Flavor: Google`. The service's `uri` is the fake's front end
(`http://127.0.0.1:<front>/s/<service>/`), which proxies each request to an idle instance,
starting a new one (a cold start) when all are busy, up to `maxInstanceCount` (then 429).

Behaviour a live project has that the fake mimics (assumptions, not verified here): operations
that stay `done: false` for a few polls, a revision that fails to start (the create operation
ends with FAILED_PRECONDITION and the service remains), 429 RESOURCE_EXHAUSTED rate limiting,
404 NOT_FOUND for a region without Cloud Run, 403 PERMISSION_DENIED for another project.

Usage: fake_gcr.py KEY_FILE PROJECT REGIONS(comma-separated) WORK_DIR
Prints `FAKE-GCR-READY <api port> <front port>` once listening on 127.0.0.1. Unauthenticated
control routes for the test: GET /__fake/state, POST /__fake/config {"pending_polls",
"throttle_next", "fail_next_revision", "token", "registry_user", "registry_password"},
POST /__fake/services (a service created out of band, not started).
"""

import base64
import gzip
import http.client
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from google.cloud import artifactregistry_v1, run_v2
from google.iam.v1 import iam_policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import json_format

KEY_FILE, PROJECT, REGIONS, WORK = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]
KEY = json.load(open(KEY_FILE))
PUBLIC_KEY = serialization.load_pem_private_key(KEY["private_key"].encode(), None).public_key()
AUDIENCE = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"
REPOSITORY_TYPE = "type.googleapis.com/google.devtools.artifactregistry.v1.Repository"

lock = threading.RLock()
state = {
    "services": {},  # id -> Service dict (proto JSON)
    "repositories": {},  # id -> Repository dict
    "operations": {},  # name -> {"polls_left", "result": callable -> (response, error)}
    "pools": {},  # service id -> Pool
    "log": [],  # [method, path, status]
    "tokens_issued": 0,
    "assertions_rejected": 0,
    "iam": {},  # service id -> policy
    "images_pulled": [],
    "instance_ids": [],  # every instance ever started
    "bodies": [],  # [method, service id, body] of every create and update
    "config": {
        "pending_polls": 2,
        "throttle_next": 0,
        "fail_next_revision": False,
        "token": "ya29.fake-" + secrets.token_hex(8),
        "registry_user": None,
        "registry_password": None,
    },
}
FRONT_PORT = None


class Fail(Exception):
    def __init__(self, code, status, message):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_endpoint(body):
    """RFC 7523 JWT-bearer grant: verify the assertion with `cryptography`, issue a token."""
    form = dict(parse_qsl(body.decode()))
    if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
        return 400, {"error": "unsupported_grant_type", "error_description": "grant_type"}
    parts = form.get("assertion", "").split(".")
    refuse = lambda why: (400, {"error": "invalid_grant", "error_description": why})
    if len(parts) != 3:
        return refuse("Invalid JWT: not three segments")
    try:
        header, claims = json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1]))
        PUBLIC_KEY.verify(
            b64url_decode(parts[2]),
            f"{parts[0]}.{parts[1]}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (ValueError, InvalidSignature):
        with lock:
            state["assertions_rejected"] += 1
        return refuse("Invalid JWT Signature.")
    now = time.time()
    if header.get("alg") != "RS256" or header.get("kid") != KEY.get("private_key_id"):
        return refuse("Invalid JWT header")
    if claims.get("iss") != KEY["client_email"] or claims.get("aud") != AUDIENCE:
        return refuse("Invalid JWT: iss or aud")
    if SCOPE not in claims.get("scope", "").split():
        return refuse("Invalid JWT: scope")
    iat, exp = claims.get("iat", 0), claims.get("exp", 0)
    if not (now - 300 <= iat <= now + 300) or exp - iat > 3600 or exp <= now:
        return refuse("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
    with lock:
        state["tokens_issued"] += 1
        token = state["config"]["token"]
    return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}


# ---------------------------------------------------------------- running the containers


def registry_request(url, accept=None):
    """GET url from the registry (with Basic auth when configured); returns bytes."""
    host, _, path = url.partition("/")
    conn = http.client.HTTPConnection(host, timeout=30)
    headers = {}
    if accept:
        headers["Accept"] = accept
    user, password = state["config"]["registry_user"], state["config"]["registry_password"]
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    conn.request("GET", "/" + path, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status != 200:
        raise Fail(9, "FAILED_PRECONDITION", f"Image pull failed: GET {url}: HTTP {response.status}")
    return data


def pull(image):
    """Pulls `host:port/repo@sha256:...` over the distribution API and unpacks it."""
    host, _, rest = image.partition("/")
    repo, _, digest = rest.partition("@")
    if not digest.startswith("sha256:"):
        raise Fail(3, "INVALID_ARGUMENT", f"image {image} is not pinned by digest")
    manifest = json.loads(
        registry_request(
            f"{host}/v2/{repo}/manifests/{digest}",
            "application/vnd.oci.image.manifest.v1+json",
        )
    )
    config = json.loads(registry_request(f"{host}/v2/{repo}/blobs/{manifest['config']['digest']}"))
    if (config.get("os"), config.get("architecture")) != ("linux", "amd64"):
        raise Fail(9, "FAILED_PRECONDITION", "Cloud Run does not support image platform "
                   f"{config.get('os')}/{config.get('architecture')}: must be linux/amd64")
    root = os.path.join(WORK, "images", digest.replace(":", "-"))
    if not os.path.isdir(root):
        staging = root + ".part-" + secrets.token_hex(4)
        os.makedirs(staging)
        for layer in manifest["layers"]:
            blob = registry_request(f"{host}/v2/{repo}/blobs/{layer['digest']}")
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
                for member in tar.getmembers():
                    name = os.path.normpath(member.name.lstrip("/"))
                    if name.startswith("..") or not (member.isfile() or member.isdir()):
                        continue
                    tar.extract(member, staging, set_attrs=False, filter="data")
                    if member.isfile():
                        os.chmod(os.path.join(staging, name), member.mode & 0o777)
        os.rename(staging, root)
    with lock:
        state["images_pulled"].append(image)
    return root, config.get("config", {})


class MetadataHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        ok = self.headers.get("Metadata-Flavor") == "Google"
        found = self.path == "/computeMetadata/v1/instance/id"
        status = 200 if ok and found else (403 if not ok else 404)
        data = self.server.instance_id.encode() if status == 200 else b"Missing Metadata-Flavor:Google header."
        self.send_response(status)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", "application/text")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Instance:
    def __init__(self, service_id, revision, root, image_config, env):
        self.id = secrets.token_hex(32)
        with lock:
            state["instance_ids"].append(self.id)
        self.metadata = ThreadingHTTPServer(("127.0.0.1", 0), MetadataHandler)
        self.metadata.instance_id = self.id
        threading.Thread(target=self.metadata.serve_forever, daemon=True).start()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        entry = image_config.get("Entrypoint") or []
        child_env = {"PATH": "/usr/bin:/bin"}
        for pair in image_config.get("Env") or []:
            k, _, v = pair.partition("=")
            child_env[k] = v
        child_env.update(env)
        child_env.update({
            "PORT": str(self.port),
            "K_SERVICE": service_id,
            "K_REVISION": revision,
            "K_CONFIGURATION": service_id,
            "GCE_METADATA_HOST": f"127.0.0.1:{self.metadata.server_address[1]}",
            "STELLAR_LISTEN_ADDR": "127.0.0.1",
            "STELLAR_EXIT_ON_STDIN_EOF": "1",
        })
        binary = os.path.join(root, entry[0].lstrip("/")) if entry else ""
        if not os.path.isfile(binary):
            raise Fail(9, "FAILED_PRECONDITION", f"the image has no entrypoint file {entry}")
        self.proc = subprocess.Popen(
            [binary] + entry[1:], cwd=root, env=child_env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("STELLAR-READY "):
            self.stop()
            raise Fail(9, "FAILED_PRECONDITION",
                       f"Revision '{revision}' is not ready and cannot serve traffic. The "
                       "user-provided container failed to start and listen on the port "
                       f"defined provided by the PORT={self.port} environment variable.")
        self.busy = False

    def stop(self):
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except Exception:
            pass
        self.metadata.shutdown()


class Pool:
    """The instances of one revision; scales from the first request up to max_instances."""

    def __init__(self, service_id, service):
        template = service["template"]
        container = template["containers"][0]
        self.service_id = service_id
        self.revision = f"{service_id}-{int(service.get('generation', 1)):05d}-{secrets.token_hex(2)}"
        self.root, self.image_config = pull(container["image"])
        self.env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        self.max_instances = int(template.get("scaling", {}).get("maxInstanceCount", 100))
        self.instances = []
        self.cold_starts = 0
        self.cv = threading.Condition()
        # Cloud Run starts one instance to check the revision (min instances 0 lets it go
        # idle later; the fake keeps it).
        self.instances.append(self.new_instance())

    def new_instance(self):
        self.cold_starts += 1
        return Instance(self.service_id, self.revision, self.root, self.image_config, self.env)

    def acquire(self):
        with self.cv:
            for inst in self.instances:
                if not inst.busy:
                    inst.busy = True
                    return inst
            if len(self.instances) >= self.max_instances:
                return None
            placeholder = object()
            self.instances.append(placeholder)
        try:
            inst = self.new_instance()
        except Fail:
            with self.cv:
                self.instances.remove(placeholder)
            raise
        with self.cv:
            self.instances[self.instances.index(placeholder)] = inst
            inst.busy = True
        return inst

    def release(self, inst):
        with self.cv:
            inst.busy = False

    def stop(self):
        with self.cv:
            for inst in self.instances:
                if isinstance(inst, Instance):
                    inst.stop()
            self.instances = []


# ---------------------------------------------------------------- the APIs


def now_rfc3339():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def operation(parent, api, polls, result):
    name = f"{parent}/operations/{uuid.uuid4()}"
    state["operations"][name] = {"polls_left": polls, "result": result, "api": api, "done": None}
    return operation_view(name)


def operation_view(name):
    op = state["operations"][name]
    out = {"name": name, "done": False, "metadata": {}}
    if op["polls_left"] > 0:
        op["polls_left"] -= 1
        return out
    if op["done"] is None:
        op["done"] = op["result"]()
    response, error = op["done"]
    out["done"] = True
    if error is not None:
        out["error"] = error
    else:
        out["response"] = response
    # The answer must be a valid google.longrunning.Operation.
    json_format.Parse(json.dumps(out), operations_pb2.Operation())
    return out


def proto_json(message_type, body):
    """`body` parsed with the published proto (unknown fields refused), back as proto3 JSON
    with enum names (clients may send enums as numbers)."""
    try:
        message = message_type.from_json(body.decode() or "{}")
    except Exception as e:
        raise Fail(3, "INVALID_ARGUMENT", f"Invalid JSON payload received. {e}")
    return json.loads(message_type.to_json(
        message, use_integers_for_enums=False, including_default_value_fields=False, indent=None
    ))


def parse_service(body):
    return proto_json(run_v2.Service, body)


def check_service(doc):
    template = doc.get("template") or {}
    containers = template.get("containers") or []
    if len(containers) != 1 or not containers[0].get("image"):
        raise Fail(3, "INVALID_ARGUMENT", "template.containers: exactly one container with an image")
    limits = (containers[0].get("resources") or {}).get("limits") or {}
    memory = limits.get("memory", "512Mi")
    if not memory.endswith("Mi") or not 128 <= int(memory[:-2]) <= 32768:
        raise Fail(3, "INVALID_ARGUMENT", f"spec.template.spec.containers[0].resources.limits.memory: Invalid value specified for memory. {memory}")
    cpu = float(limits.get("cpu", "1"))
    if int(memory[:-2]) > 4096 and cpu < 2:
        raise Fail(3, "INVALID_ARGUMENT", "Total memory > 4 GiB requires at least 2 CPUs.")
    concurrency = template.get("maxInstanceRequestConcurrency", 80)
    if cpu < 1 and concurrency != 1:
        raise Fail(3, "INVALID_ARGUMENT", "CPU < 1 requires maxInstanceRequestConcurrency 1")
    for env in containers[0].get("env", []):
        if env["name"] in ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"):
            raise Fail(3, "INVALID_ARGUMENT", f"The following reserved env names were provided: {env['name']}.")


def deploy_result(service_id, doc, parent):
    """The operation result of create / update: start the revision, or fail it."""

    def result():
        fail = state["config"]["fail_next_revision"]
        state["config"]["fail_next_revision"] = False
        service = state["services"].get(service_id)
        if service is None:
            return None, {"code": 5, "message": f"service {service_id} vanished"}
        old = state["pools"].pop(service_id, None)
        if old:
            old.stop()
        try:
            if fail:
                raise Fail(9, "FAILED_PRECONDITION",
                           f"Revision '{service_id}-{service['generation']:05d}-x' is not ready and "
                           "cannot serve traffic. The user-provided container failed to start and "
                           "listen on the port defined provided by the PORT=8080 environment variable.")
            pool = Pool(service_id, service)
        except Fail as e:
            service["terminalCondition"] = {"type": "Ready", "state": "CONDITION_FAILED",
                                            "message": e.message}
            service["reconciling"] = False
            return None, {"code": e.code, "message": e.message}
        state["pools"][service_id] = pool
        service["latestReadyRevision"] = f"{parent}/services/{service_id}/revisions/{pool.revision}"
        service["latestCreatedRevision"] = service["latestReadyRevision"]
        service["terminalCondition"] = {"type": "Ready", "state": "CONDITION_SUCCEEDED"}
        service["reconciling"] = False
        service["uri"] = f"http://127.0.0.1:{FRONT_PORT}/s/{service_id}/"
        service["urls"] = [service["uri"]]
        return dict(service, **{"@type": SERVICE_TYPE}), None

    return result


def run_api(method, parts, query, body):
    # parts: ["projects", P, "locations", R, kind, ...]
    if len(parts) < 5 or parts[0] != "projects" or parts[2] != "locations":
        raise Fail(5, "NOT_FOUND", "The requested URL was not found on this server.")
    project, region, kind, rest = parts[1], parts[3], parts[4], parts[5:]
    parent = f"projects/{project}/locations/{region}"
    if project != PROJECT:
        raise Fail(7, "PERMISSION_DENIED", f"Permission denied on resource project {project}.")
    if region not in REGIONS:
        raise Fail(5, "NOT_FOUND", f"Location {region} is not found or access is unauthorized.")
    services, pools = state["services"], state["pools"]
    if kind == "operations" and len(rest) == 1 and method == "GET":
        name = f"{parent}/operations/{rest[0]}"
        if name not in state["operations"]:
            raise Fail(5, "NOT_FOUND", f"Operation {name} not found.")
        return 200, operation_view(name)
    if kind != "services":
        raise Fail(5, "NOT_FOUND", "The requested URL was not found on this server.")
    if not rest:
        if method == "POST":
            service_id = query.get("serviceId", "")
            doc = parse_service(body)
            check_service(doc)
            state["bodies"].append(["POST", service_id, json.loads(body)])
            if service_id in services:
                raise Fail(6, "ALREADY_EXISTS", f"Resource '{service_id}' already exists.")
            doc.update({
                "name": f"{parent}/services/{service_id}",
                "uid": str(uuid.uuid4()),
                "generation": 1,
                "createTime": now_rfc3339(),
                "updateTime": now_rfc3339(),
                "reconciling": True,
                "creator": KEY["client_email"],
            })
            services[service_id] = doc
            polls = state["config"]["pending_polls"]
            return 200, operation(parent, "v2", polls, deploy_result(service_id, doc, parent))
        if method == "GET":
            names = sorted(services)
            start = int(query.get("pageToken") or 0)
            size = int(query.get("pageSize") or 100)
            page = [services[n] for n in names[start:start + size]]
            out = {"services": page}
            if start + size < len(names):
                out["nextPageToken"] = str(start + size)
            return 200, out
    service_id, _, verb = rest[0].partition(":")
    if service_id not in services:
        raise Fail(5, "NOT_FOUND", f"Resource '{service_id}' of kind 'SERVICE' in region '{region}' in project '{project}' does not exist.")
    service = services[service_id]
    if verb == "setIamPolicy" and method == "POST":
        request = json_format.Parse(body.decode(), iam_policy_pb2.SetIamPolicyRequest())
        policy = json_format.MessageToDict(request.policy)
        policy.update({"version": 1, "etag": base64.b64encode(secrets.token_bytes(8)).decode()})
        state["iam"][service_id] = policy
        return 200, policy
    if verb:
        raise Fail(5, "NOT_FOUND", f"unknown method {verb}")
    if method == "GET":
        return 200, service
    if method == "PATCH":
        doc = parse_service(body)
        check_service(doc)
        state["bodies"].append(["PATCH", service_id, json.loads(body)])
        if doc.get("name") not in (None, service["name"]):
            raise Fail(3, "INVALID_ARGUMENT", "service.name does not match the URL")
        for key in ("labels", "template", "ingress"):
            if key in doc:
                service[key] = doc[key]
        service["generation"] += 1
        service["updateTime"] = now_rfc3339()
        service["reconciling"] = True
        polls = state["config"]["pending_polls"]
        return 200, operation(parent, "v2", polls, deploy_result(service_id, service, parent))
    if method == "DELETE":
        def result():
            gone = services.pop(service_id, None)
            pool = pools.pop(service_id, None)
            if pool:
                pool.stop()
            return dict(gone or {}, **{"@type": SERVICE_TYPE}), None
        return 200, operation(parent, "v2", 1, result)
    raise Fail(12, "UNIMPLEMENTED", f"{method} is not supported here")


def artifact_api(method, parts, query, body):
    if len(parts) < 5 or parts[0] != "projects" or parts[2] != "locations":
        raise Fail(5, "NOT_FOUND", "The requested URL was not found on this server.")
    project, region, kind, rest = parts[1], parts[3], parts[4], parts[5:]
    parent = f"projects/{project}/locations/{region}"
    if project != PROJECT:
        raise Fail(7, "PERMISSION_DENIED", f"Permission 'artifactregistry.repositories.get' denied on resource project {project}.")
    if region not in REGIONS:
        raise Fail(5, "NOT_FOUND", f"Location {region} is not found or access is unauthorized.")
    repositories = state["repositories"]
    if kind == "operations" and len(rest) == 1 and method == "GET":
        name = f"{parent}/operations/{rest[0]}"
        if name not in state["operations"]:
            raise Fail(5, "NOT_FOUND", f"Operation {name} not found.")
        return 200, operation_view(name)
    if kind != "repositories":
        raise Fail(5, "NOT_FOUND", "The requested URL was not found on this server.")
    if not rest and method == "POST":
        repo_id = query.get("repositoryId", "")
        doc = proto_json(artifactregistry_v1.Repository, body)
        if doc.get("format") != "DOCKER":
            raise Fail(3, "INVALID_ARGUMENT", "format must be DOCKER for a docker repository")
        if repo_id in repositories:
            raise Fail(6, "ALREADY_EXISTS", f"the repository already exists: {repo_id}")
        doc.update({"name": f"{parent}/repositories/{repo_id}", "createTime": now_rfc3339()})

        def result():
            repositories[repo_id] = doc
            return dict(doc, **{"@type": REPOSITORY_TYPE}), None

        return 200, operation(parent, "v1", state["config"]["pending_polls"], result)
    if len(rest) == 1 and method == "GET":
        if rest[0] not in repositories:
            raise Fail(5, "NOT_FOUND", f"Requested entity was not found.")
        return 200, repositories[rest[0]]
    raise Fail(12, "UNIMPLEMENTED", f"{method} is not supported here")


HTTP_OF = {3: 400, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 12: 501, 16: 401}


def api(handler, body):
    path, _, query_text = handler.path.partition("?")
    query = dict(parse_qsl(query_text))
    if path == "/token" and handler.command == "POST":
        return token_endpoint(body)
    with lock:
        try:
            if handler.headers.get("Authorization") != f"Bearer {state['config']['token']}":
                raise Fail(16, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
            if state["config"]["throttle_next"] > 0:
                state["config"]["throttle_next"] -= 1
                raise Fail(8, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per region'.")
            parts = [p for p in path.split("/") if p]
            if parts[:1] == ["v2"]:
                return run_api(handler.command, parts[1:], query, body)
            if parts[:1] == ["v1"]:
                return artifact_api(handler.command, parts[1:], query, body)
            raise Fail(5, "NOT_FOUND", "The requested URL was not found on this server.")
        except Fail as e:
            status = HTTP_OF.get(e.code, 500)
            return status, {"error": {"code": status, "message": e.message, "status": e.status}}


def control(handler, body):
    path = handler.path.partition("?")[0]
    with lock:
        if path == "/__fake/state" and handler.command == "GET":
            return 200, {
                "services": state["services"],
                "repositories": sorted(state["repositories"]),
                "iam": state["iam"],
                "log": state["log"],
                "tokens_issued": state["tokens_issued"],
                "assertions_rejected": state["assertions_rejected"],
                "images_pulled": state["images_pulled"],
                "bodies": state["bodies"],
                "instance_ids": state["instance_ids"],
                "instances": {
                    s: [i.id for i in p.instances if isinstance(i, Instance)]
                    for s, p in state["pools"].items()
                },
                "running": sum(
                    1 for p in state["pools"].values() for i in p.instances
                    if isinstance(i, Instance) and i.proc.poll() is None
                ),
            }
        if path == "/__fake/config" and handler.command == "POST":
            state["config"].update(json.loads(body))
            return 200, {k: v for k, v in state["config"].items() if "password" not in k}
        if path == "/__fake/services" and handler.command == "POST":
            doc = json.loads(body)
            service_id = doc["name"].rsplit("/", 1)[-1]
            state["services"][service_id] = doc
            return 200, doc
    return 404, {"error": {"code": 404, "message": path, "status": "NOT_FOUND"}}


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def respond(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__fake/"):
            return self.respond(*control(self, body))
        try:
            status, doc = api(self, body)
        except Exception as e:  # a malformed body: Google's generic bad-request answer
            status, doc = 400, {"error": {"code": 400, "message": f"{type(e).__name__}: {e}", "status": "INVALID_ARGUMENT"}}
        with lock:
            state["log"].append([self.command, self.path.partition("?")[0], status])
        self.respond(status, doc)

    do_GET = do_POST = do_PATCH = do_DELETE = serve


class FrontHandler(BaseHTTPRequestHandler):
    """Cloud Run's front end: `/s/<service>/...` goes to an idle instance of the service."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, data, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = self.path.split("/", 3)
        service_id = parts[2] if len(parts) > 2 else ""
        rest = "/" + (parts[3] if len(parts) > 3 else "")
        with lock:
            pool = state["pools"].get(service_id)
        if pool is None:
            return self.reply(404, b"Service not found")
        try:
            inst = pool.acquire()
        except Fail as e:
            return self.reply(503, e.message.encode())
        if inst is None:
            return self.reply(429, b"Rate exceeded.", [("Retry-After", "1")])
        try:
            conn = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=60)
            conn.request(self.command, rest, body=body or None)
            response = conn.getresponse()
            data = response.read()
            conn.close()
            headers = [(k, v) for k, v in response.getheaders()
                       if k.lower() not in ("content-length", "transfer-encoding", "connection")]
            self.reply(response.status, data, headers)
        except OSError as e:
            self.reply(503, f"The request failed because the instance failed: {e}".encode())
        finally:
            pool.release(inst)

    do_GET = do_POST = serve


def shutdown(*_):
    for pool in list(state["pools"].values()):
        pool.stop()
    os._exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    front = ThreadingHTTPServer(("127.0.0.1", 0), FrontHandler)
    FRONT_PORT = front.server_address[1]
    threading.Thread(target=front.serve_forever, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), ApiHandler)
    print(f"FAKE-GCR-READY {server.server_address[1]} {FRONT_PORT}", flush=True)
    try:
        server.serve_forever()
    finally:
        shutdown()
