"""Azurite helper for tests/e2e/azure.rs, written with Azure's own SDK (azure-storage-blob), so
the data plane the tests check is driven by the vendor's client, not by stellar's signer.

  python3 azure_blob.py create-container ENDPOINT ACCOUNT KEY CONTAINER
  python3 azure_blob.py download ENDPOINT ACCOUNT KEY CONTAINER BLOB OUT
ENDPOINT is the account's blob endpoint, e.g. http://127.0.0.1:10000/<account>.
"""
import sys

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient


def client(endpoint, account, key):
    return BlobServiceClient(account_url=endpoint, credential={"account_name": account, "account_key": key})


def main(argv):
    command, endpoint, account, key, container = argv[1:6]
    service = client(endpoint, account, key)
    if command == "create-container":
        try:
            service.create_container(container)
        except ResourceExistsError:
            pass
    elif command == "download":
        blob, out = argv[6:8]
        data = service.get_blob_client(container, blob).download_blob().readall()
        with open(out, "wb") as f:
            f.write(data)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
