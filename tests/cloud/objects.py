#!/usr/bin/env python3
"""Test helper for the object-store tests: talks to the local S3 (moto) and Azure Blob (azurite)
servers with their own SDKs, independently of the crate.

    objects.py s3 PORT BUCKET create
    objects.py s3 PORT BUCKET upload SRC_DIR PREFIX
    objects.py s3 PORT BUCKET download PREFIX DEST_DIR
    objects.py s3 PORT BUCKET put KEY TEXT
    (the same with `az` for a container on azurite)
"""
import os, sys

AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
kind, port, bucket, verb, *args = sys.argv[1:]

if kind == "s3":
    import boto3
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="test",
                      aws_secret_access_key="test", region_name="us-east-1")
    create = lambda: s3.create_bucket(Bucket=bucket)
    upload = lambda path, key: s3.upload_file(path, bucket, key)
    def keys(prefix):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                yield o["Key"]
    fetch = lambda key: s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    put = lambda key, data: s3.put_object(Bucket=bucket, Key=key, Body=data)
else:
    from azure.storage.blob import BlobServiceClient
    conn = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    svc = BlobServiceClient.from_connection_string(conn)
    c = svc.get_container_client(bucket)
    create = lambda: svc.create_container(bucket)
    def upload(path, key):
        with open(path, "rb") as fh:
            c.upload_blob(key, fh, overwrite=True)
    keys = lambda prefix: (b.name for b in c.list_blobs(name_starts_with=prefix))
    fetch = lambda key: c.download_blob(key).readall()
    put = lambda key, data: c.upload_blob(key, data, overwrite=True)

if verb == "create":
    create()
elif verb == "upload":
    src, prefix = args
    for root, _, files in os.walk(src):
        for f in files:
            p = os.path.join(root, f)
            upload(p, prefix + "/" + os.path.relpath(p, src).replace(os.sep, "/"))
elif verb == "download":
    prefix, dest = args
    for key in keys(prefix + "/"):
        rel = key[len(prefix) + 1:]
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as fh:
            fh.write(fetch(key))
elif verb == "put":
    key, text = args
    put(key, text.encode())
else:
    sys.exit(f"unknown verb {verb}")
