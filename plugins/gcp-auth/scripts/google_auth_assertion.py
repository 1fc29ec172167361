"""Known-answer oracle for stellar-gcp-auth: a throwaway RSA key and Google's own assertion.

Generates a fresh RSA key with PyPI `cryptography` (never stored anywhere but the test's temp
dir), writes a service-account key file around it, and has PyPI `google-auth`
(`google.oauth2.service_account.Credentials._make_authorization_grant_assertion`, the JWT the
library posts to `token_uri`) sign the assertion with the clock fixed at `iat`. Prints one
JSON object per case: {"key_json", "iat", "scope", "assertion"}.

Usage: python3 google_auth_assertion.py
"""

import datetime
import json
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
import google.auth._helpers as helpers
from google.oauth2 import service_account

SCOPE = "https://www.googleapis.com/auth/cloud-platform"

CASES = [
    # (key bits, kid, client_email, token_uri, iat)
    (2048, "0123456789abcdef0123456789abcdef01234567",
     "stellar-test@my-project.iam.gserviceaccount.com",
     "https://oauth2.googleapis.com/token", 1764644400),
    (3072, None, "b\u00e9ta@proj-2.iam.gserviceaccount.com",
     "http://127.0.0.1:41234/token", 1700000000),
]


def case(bits, kid, email, token_uri, iat):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "my-project",
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": token_uri,
    }
    if kid is not None:
        info["private_key_id"] = kid
    fixed = datetime.datetime.fromtimestamp(iat, datetime.timezone.utc).replace(tzinfo=None)
    helpers.utcnow = lambda: fixed
    credentials = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
    assertion = credentials._make_authorization_grant_assertion()
    if isinstance(assertion, bytes):
        assertion = assertion.decode()
    return {"key_json": json.dumps(info), "iat": iat, "scope": SCOPE, "assertion": assertion}


def main():
    for c in CASES:
        sys.stdout.write(json.dumps(case(*c)) + "\n")


if __name__ == "__main__":
    main()
