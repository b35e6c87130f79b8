#!/usr/bin/env python3
"""A Triton serving the SSD (scripts/triton_serve.py) checked with the real KServe client,
tritonclient, over HTTP and gRPC, against OpenVINO's own Python API on the same tensor (the
helpers of scripts/kserve_client.py: the tensor made as Python users make it, the reference run).

usage (in the project's .venv):
  triton_check.py --http HOST:PORT --grpc HOST:PORT --model NAME --xml MODEL --image IMAGE
prints one JSON report: the server's readiness, the model's metadata, and per protocol the
output's shape, datatype and largest difference to OpenVINO's, with the detections above 0.5
"""
import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from kserve_client import Protocol, compare, detections, reference, ssd_tensor  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--http", required=True)
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--xml", required=True)
    parser.add_argument("--image", required=True)
    args = parser.parse_args()

    tensor = ssd_tensor(args.image)
    want = reference(args.xml, [tensor])["detection_out"]
    report = {"reference": detections(want)}
    for name, url in (("http", args.http), ("grpc", args.grpc)):
        p = Protocol(name, url)
        res = p.infer(args.model, [p.input("image", tensor)], [p.output("detection_out")])
        got = res.as_numpy("detection_out")
        report[name] = {
            "live": p.client.is_server_live(),
            "model_ready": p.client.is_model_ready(args.model),
            "metadata": p.metadata(args.model),
            "output": compare(got, want),
            "detections": detections(got),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
