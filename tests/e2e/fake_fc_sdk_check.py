#!/usr/bin/env python3
"""Checks fake_fc.py against Alibaba's own FC 3.0 client (PyPI alibabacloud_fc20230330
`Client`, which signs with alibabacloud_tea_openapi): if the vendor's client can create, wait
on, list, trigger and delete a function on the fake, and gets FC's error for a wrong secret,
the fake speaks the API the adapter is tested against. Run by tests/e2e/aliyun.rs; prints
`SDK-CHECK-OK` at the end.
"""

import base64
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from alibabacloud_fc20230330 import models
from alibabacloud_fc20230330.client import Client
from alibabacloud_tea_openapi import utils_models

fake = subprocess.Popen(
    [sys.executable, str(Path(__file__).with_name("fake_fc.py")), "AKID", "SECRET", "-", "cn-hangzhou"],
    stdout=subprocess.PIPE,
    text=True,
)
try:
    port = int(fake.stdout.readline().split()[1])

    def client(secret):
        return Client(
            utils_models.Config(
                access_key_id="AKID",
                access_key_secret=secret,
                endpoint=f"127.0.0.1:{port}",
                protocol="http",
                region_id="cn-hangzhou",
            )
        )

    fc = client("SECRET")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        entry = zipfile.ZipInfo("bootstrap")
        entry.external_attr = 0o755 << 16
        z.writestr(entry, b"#!/bin/sh\n")
    created = fc.create_function(
        models.CreateFunctionRequest(
            body=models.CreateFunctionInput(
                function_name="st-sdk-00-00",
                runtime="custom.debian12",
                handler="bootstrap",
                memory_size=512,
                cpu=0.35,
                code=models.InputCodeLocation(zip_file=base64.b64encode(code.getvalue()).decode()),
                custom_runtime_config=models.CustomRuntimeConfig(command=["/code/bootstrap"], port=9000),
            )
        )
    ).body
    assert created.state == "Pending", created.state
    states = [fc.get_function("st-sdk-00-00", models.GetFunctionRequest()).body.state for _ in range(3)]
    assert states == ["Pending", "Active", "Active"], states
    listed = fc.list_functions(models.ListFunctionsRequest(prefix="st-", limit=10)).body
    assert [f.function_name for f in listed.functions] == ["st-sdk-00-00"], listed
    trigger = fc.create_trigger(
        "st-sdk-00-00",
        models.CreateTriggerRequest(
            body=models.CreateTriggerInput(
                trigger_name="http",
                trigger_type="http",
                trigger_config=json.dumps({"authType": "anonymous", "methods": ["GET"]}),
            )
        ),
    ).body
    assert trigger.http_trigger.url_internet.endswith(".cn-hangzhou.fcapp.run"), trigger
    fc.delete_trigger("st-sdk-00-00", "http")
    fc.delete_function("st-sdk-00-00")
    try:
        client("WRONG").get_function("st-sdk-00-00", models.GetFunctionRequest())
        raise AssertionError("a wrong secret was accepted")
    except Exception as e:  # the SDK's ClientException
        assert "SignatureNotMatch" in str(e), e
    print("SDK-CHECK-OK")
finally:
    fake.kill()
