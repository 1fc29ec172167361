"""Storage helper for tests/e2e/chains.rs, written with the vendors' own SDKs (boto3 from
moto[server], azure-storage-blob), so the buckets the chains use are set up and checked by an
independent client, not by stellar's signers.

  python3 chain_storage.py s3-create ENDPOINT BUCKET
  python3 chain_storage.py s3-list ENDPOINT BUCKET          (prints one key per line)
  python3 chain_storage.py blob-create ENDPOINT ACCOUNT KEY CONTAINER
  python3 chain_storage.py blob-list ENDPOINT ACCOUNT KEY CONTAINER
"""
import sys


def s3(endpoint):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def blob(endpoint, account, key):
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient(account_url=endpoint, credential={"account_name": account, "account_key": key})


def main(argv):
    command = argv[1]
    if command == "s3-create":
        s3(argv[2]).create_bucket(Bucket=argv[3])
    elif command == "s3-list":
        for item in s3(argv[2]).list_objects_v2(Bucket=argv[3]).get("Contents", []):
            print(item["Key"])
    elif command == "blob-create":
        blob(argv[2], argv[3], argv[4]).create_container(argv[5])
    elif command == "blob-list":
        for item in blob(argv[2], argv[3], argv[4]).get_container_client(argv[5]).list_blobs():
            print(item.name)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
