#!/usr/bin/env python3
"""Checks fake_gcr.py against Google's own clients: PyPI `google-auth` (service-account
credentials: the JWT-bearer token request) and the official REST clients of PyPI
`google-cloud-run` (`run_v2.ServicesClient`, transport `rest`) and
`google-cloud-artifact-registry` (`artifactregistry_v1.ArtifactRegistryClient`). If Google's
clients can get a token, create a repository and wait on its operation, create a service and
see its operation fail as a failed revision, read, list, make public and delete it, and get
NotFound / Forbidden / TooManyRequests exceptions for the fake's errors, the fake
speaks the API the gcr adapter is tested against. Run by tests/e2e/gcr.rs; prints
`SDK-CHECK-OK` at the end.

Usage: fake_gcr_sdk_check.py KEY_FILE WORK_DIR
"""

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.cloud import artifactregistry_v1, run_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2
import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.credentials
from google.oauth2 import service_account

KEY_FILE, WORK = sys.argv[1], sys.argv[2]
PROJECT, REGION = "stellar-e2e-proj", "us-central1"
PARENT = f"projects/{PROJECT}/locations/{REGION}"

fake = subprocess.Popen(
    [sys.executable, str(Path(__file__).with_name("fake_gcr.py")), KEY_FILE, PROJECT, REGION, WORK],
    stdout=subprocess.PIPE,
    text=True,
)
try:
    port = int(fake.stdout.readline().split()[1])
    base = f"http://127.0.0.1:{port}"

    def control(path, doc):
        request = urllib.request.Request(base + path, data=json.dumps(doc).encode(), method="POST")
        urllib.request.urlopen(request).read()

    info = json.load(open(KEY_FILE))
    info["token_uri"] = base + "/token"
    account = service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    # google-auth's own token request (the GAPIC clients would otherwise sign a self-signed
    # JWT per API instead of using the token endpoint).
    account.refresh(google.auth.transport.requests.Request())
    credentials = google.oauth2.credentials.Credentials(token=account.token)
    options = ClientOptions(api_endpoint=base)
    runs = run_v2.ServicesClient(credentials=credentials, transport="rest", client_options=options)
    registry = artifactregistry_v1.ArtifactRegistryClient(
        credentials=credentials, transport="rest", client_options=options
    )
    control("/__fake/config", {"pending_polls": 2})

    # Artifact Registry: create (a long-running operation) and get.
    repo = registry.create_repository(
        parent=PARENT,
        repository_id="stellar",
        repository=artifactregistry_v1.Repository(format_=artifactregistry_v1.Repository.Format.DOCKER),
    ).result(timeout=30)
    assert repo.name == f"{PARENT}/repositories/stellar", repo
    assert registry.get_repository(name=repo.name).format_ == artifactregistry_v1.Repository.Format.DOCKER

    # Cloud Run: a service whose revision fails; the operation ends with the error.
    service = run_v2.Service(
        labels={"stellar-run": "sdk"},
        template=run_v2.RevisionTemplate(
            max_instance_request_concurrency=1,
            containers=[run_v2.Container(
                image="127.0.0.1:9/p/r/i@sha256:" + "0" * 64,
                resources=run_v2.ResourceRequirements(limits={"cpu": "1", "memory": "512Mi"}, startup_cpu_boost=True),
            )],
        ),
    )
    control("/__fake/config", {"fail_next_revision": True})
    operation = runs.create_service(parent=PARENT, service=service, service_id="st-5dkchk-00-00")
    try:
        operation.result(timeout=30)
        raise AssertionError("the failed revision was not reported")
    except exceptions.FailedPrecondition as e:
        assert "is not ready" in str(e), e
    name = f"{PARENT}/services/st-5dkchk-00-00"
    got = runs.get_service(name=name)
    assert got.labels["stellar-run"] == "sdk"
    assert got.terminal_condition.state == run_v2.Condition.State.CONDITION_FAILED, got
    assert [s.name for s in runs.list_services(parent=PARENT)] == [name]
    policy = runs.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(
        resource=name,
        policy=policy_pb2.Policy(bindings=[policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"])]),
    ))
    assert list(policy.bindings[0].members) == ["allUsers"]
    runs.delete_service(name=name).result(timeout=30)
    assert list(runs.list_services(parent=PARENT)) == []

    # Errors become the exceptions Google's clients raise for those statuses.
    for call, expected in [
        (lambda: runs.get_service(name=name), exceptions.NotFound),
        (lambda: runs.get_service(name=f"projects/other-proj/locations/{REGION}/services/x"), exceptions.Forbidden),
        (lambda: runs.list_services(parent=f"projects/{PROJECT}/locations/moon-central1"), exceptions.NotFound),
    ]:
        try:
            call()
            raise AssertionError(f"expected {expected.__name__}")
        except expected:
            pass
    control("/__fake/config", {"throttle_next": 1})
    try:
        runs.get_service(name=name, retry=None)
        raise AssertionError("expected 429")
    except exceptions.TooManyRequests:
        pass

    # A key the fake does not know: Google's library reports the refused grant.
    other = dict(info, private_key_id=info.get("private_key_id"))
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    other["private_key"] = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    wrong = service_account.Credentials.from_service_account_info(
        other, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    try:
        wrong.refresh(google.auth.transport.requests.Request())
        raise AssertionError("a token for an unknown key")
    except google.auth.exceptions.RefreshError as e:
        assert "invalid_grant" in str(e), e
    print("SDK-CHECK-OK", flush=True)
finally:
    fake.kill()
    fake.wait()
