"""An independent gRPC client for stellar's measurement function (tests/e2e/grpc.rs).

Generates Python stubs from measurement-fn/proto/chainfunction.proto with grpcio-tools (the
same proto STeLLAR's vHive functions use, plus stellar's two fields), then calls
ProducerConsumer.InvokeNext on 127.0.0.1:PORT with grpcio, as a STeLLAR client would.

usage: grpc_client.py PROTO_DIR PORT CALLS_JSON
CALLS_JSON is a list of request field objects; prints one JSON object per call:
{"ok": true, "timestampChain": ..., "stellarReply": ...} or {"ok": false, "code": NAME, "details": ...}
"""

import importlib
import json
import sys
import tempfile

import grpc
from grpc_tools import protoc


def main():
    proto_dir, port, calls = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    out = tempfile.mkdtemp(prefix="stellar-grpc-stubs-")
    status = protoc.main([
        "grpc_tools.protoc", f"-I{proto_dir}", f"--python_out={out}",
        f"--grpc_python_out={out}", f"{proto_dir}/chainfunction.proto",
    ])
    if status != 0:
        sys.exit(f"protoc failed with {status}")
    sys.path.insert(0, out)
    pb = importlib.import_module("chainfunction_pb2")
    pb_grpc = importlib.import_module("chainfunction_pb2_grpc")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.ProducerConsumerStub(channel)
        for fields in calls:
            try:
                reply = stub.InvokeNext(pb.InvokeChainRequest(**fields), timeout=30)
                print(json.dumps({"ok": True, "timestampChain": reply.timestampChain,
                                  "stellarReply": reply.stellarReply}))
            except grpc.RpcError as e:
                print(json.dumps({"ok": False, "code": e.code().name, "details": e.details()}))


if __name__ == "__main__":
    main()
