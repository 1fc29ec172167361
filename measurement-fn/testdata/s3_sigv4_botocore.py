"""Signs an S3 request with botocore (the AWS SDK's own S3 SigV4 signer) at a fixed time and prints
its Authorization header: the oracle for measurement-fn's S3 requests (src/chain/storage.rs).
botocore hashes the body itself, so the payload hash stellar signs is checked too.

  python3 s3_sigv4_botocore.py METHOD URL BODY_FILE|- UNIX_SECONDS
"""
import datetime
import sys
from unittest import mock

from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

method, url, body_file, unix = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
body = b"" if body_file == "-" else open(body_file, "rb").read()
headers = {"Content-Length": str(len(body))} if method == "PUT" else {}
req = AWSRequest(method=method, url=url, headers=headers, data=body)
fixed = datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).replace(tzinfo=None)
signer = auth.S3SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "s3", "us-east-1")
with mock.patch.object(auth, "get_current_datetime", return_value=fixed):
    signer.add_auth(req)
print(req.headers["Authorization"])
