#!/usr/bin/env python3
"""lva-server's KServe v2 API driven by the real KServe client, tritonclient (HTTP and gRPC),
with OpenVINO's own Python API as the reference on the very same tensors.

The SSD's input tensor is made the way users' Python code makes it: cv2.imread (BGR),
cv2.cvtColor(BGR2RGB), cv2.resize(INTER_LINEAR) to 300x300, uint8 [1,300,300,3]. The reference
output is openvino.Core().compile_model(MODEL, "CPU") run on that tensor, in this process.

usage:
  kserve_client.py check --http HOST:PORT --grpc HOST:PORT --ssd NAME=MODEL --face NAME=MODEL
                         --jpeg IMAGE --png IMAGE
      every check on both protocols; prints one JSON report (see tests/kserve.rs)
  kserve_client.py auth --http HOST:PORT --grpc HOST:PORT --model NAME --token TOKEN
                        [--ca CERT.pem]
      credentials refused and accepted over both protocols (gRPC over TLS with --ca); one JSON
      report
  kserve_client.py bench --url HOST:PORT --protocol {http,grpc} --model NAME --image IMAGE
                         --seconds S --threads T
      ModelInfer requests from T threads for S seconds (one client per thread, binary tensors);
      prints {"requests", "seconds", "rate", "errors", "client_cpu_s", "p50_ms", "p99_ms"}
      (client_cpu_s: this client's own CPU time over the run, all threads)
"""
import argparse
import json
import sys
import threading
import time

import cv2
import numpy as np

import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.utils import InferenceServerException


def ssd_tensor(image_path, size=300):
    """uint8 [1,size,size,3] RGB, as most Python users make it."""
    img = cv2.imread(image_path, cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"cannot read {image_path}")
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR)[None])


_COMPILED = {}


def reference(model_path, tensors):
    """OpenVINO's outputs for `tensors` (a list in the model's input order), by output name."""
    import openvino as ov

    if model_path not in _COMPILED:
        _COMPILED[model_path] = ov.Core().compile_model(model_path, "CPU")
    compiled = _COMPILED[model_path]
    result = compiled(tensors)
    return {out.get_any_name(): np.array(result[out]) for out in compiled.outputs}


def refusal(error):
    """What the client saw of a refusal: HTTP status or gRPC code, and the message."""
    status = error.status()
    return {"status": str(status) if status is not None else None, "message": error.message()}


def compare(got, want):
    return {
        "shape": list(got.shape),
        "dtype": str(got.dtype),
        "max_diff": float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()),
    }


def detections(out, threshold=0.5):
    """SSD [1,1,N,7] rows above the threshold: [class, confidence, x0, y0, x1, y1]."""
    rows = out.reshape(-1, 7)
    return [[float(v) for v in r[1:]] for r in rows if r[2] >= threshold]


class Protocol:
    """One of tritonclient's two clients behind the same calls."""

    def __init__(self, name, url, headers=None, ssl=False, ca=None):
        self.name = name
        self.mod = thttp if name == "http" else tgrpc
        self.headers = headers
        if name == "http" and ssl:
            # geventhttpclient's TLS: a default (verifying) context with this CA.
            self.client = thttp.InferenceServerClient(url, ssl=True, ssl_options={"ca_certs": ca})
        elif name == "http":
            self.client = thttp.InferenceServerClient(url)
        elif ssl:
            # tritonclient reads the CA file itself.
            self.client = tgrpc.InferenceServerClient(url, ssl=True, root_certificates=ca)
        else:
            self.client = tgrpc.InferenceServerClient(url)

    def input(self, name, array, datatype=None, binary=True):
        if datatype is None:
            datatype = "BYTES" if array.dtype == np.object_ else {
                np.dtype(np.uint8): "UINT8", np.dtype(np.float32): "FP32",
                np.dtype(np.int64): "INT64"}[array.dtype]
        i = self.mod.InferInput(name, list(array.shape), datatype)
        if self.name == "http":
            i.set_data_from_numpy(array, binary_data=binary)
        else:
            i.set_data_from_numpy(array)
        return i

    def output(self, name, binary=True):
        if self.name == "http":
            return self.mod.InferRequestedOutput(name, binary_data=binary)
        return self.mod.InferRequestedOutput(name)

    def infer(self, model, inputs, outputs=None, request_id=""):
        # A copy: tritonclient's HTTP infer adds Inference-Header-Content-Length to the dict.
        headers = dict(self.headers) if self.headers else None
        return self.client.infer(model, inputs, outputs=outputs, request_id=request_id,
                                 headers=headers)

    def metadata(self, model):
        if self.name == "http":
            return self.client.get_model_metadata(model, headers=self.headers)
        meta = self.client.get_model_metadata(model, headers=self.headers, as_json=True)
        # protobuf's JSON writes int64 as strings
        for tensor in meta.get("inputs", []) + meta.get("outputs", []):
            tensor["shape"] = [int(d) for d in tensor.get("shape", [])]
        return meta

    def server_metadata(self):
        if self.name == "http":
            return self.client.get_server_metadata(headers=self.headers)
        return self.client.get_server_metadata(headers=self.headers, as_json=True)


def check(args):
    ssd_name, ssd_model = args.ssd.split("=", 1)
    face_name, face_model = args.face.split("=", 1)
    tensor = ssd_tensor(args.jpeg)
    want = reference(ssd_model, [tensor])["detection_out"]
    png_want = reference(ssd_model, [ssd_tensor(args.png)])["detection_out"]
    jpeg_want = want
    face_in = (ssd_tensor(args.png, 128).astype(np.float32) / 127.5 - 1.0).astype(np.float32)
    face_want = reference(face_model, [face_in])
    jpeg = np.array([open(args.jpeg, "rb").read()], dtype=np.object_)
    png = np.array([open(args.png, "rb").read()], dtype=np.object_)
    report = {"reference": {"ssd": detections(want), "png": detections(png_want)}}
    for name, url in (("http", args.http), ("grpc", args.grpc)):
        p = Protocol(name, url)
        c = p.client
        r = {
            "live": c.is_server_live(),
            "ready": c.is_server_ready(),
            "model_ready": c.is_model_ready(ssd_name),
            "model_ready_v1": c.is_model_ready(ssd_name, "1"),
            "server": p.server_metadata(),
            "ssd": p.metadata(ssd_name),
            "face": p.metadata(face_name),
        }
        # Raw tensors, binary both ways (gRPC: raw_input_contents / raw_output_contents).
        res = p.infer(ssd_name, [p.input("image", tensor)], [p.output("detection_out")],
                      request_id="req-1")
        got = res.as_numpy("detection_out")
        r["raw"] = compare(got, want)
        r["raw"]["id"] = res.get_response()["id"] if name == "http" else res.get_response().id
        r["raw"]["detections"] = detections(got)
        if name == "http":
            # JSON both ways, and the two mixed.
            for label, binary_in, binary_out in (("json", False, False),
                                                 ("json_in_binary_out", False, True),
                                                 ("binary_in_json_out", True, False)):
                res = p.infer(ssd_name, [p.input("image", tensor, binary=binary_in)],
                              [p.output("detection_out", binary=binary_out)])
                r[label] = compare(res.as_numpy("detection_out"), want)
        # No outputs named: every output; a float model with two outputs.
        res = p.infer(face_name, [p.input("input", face_in)])
        r["face_outputs"] = {k: compare(res.as_numpy(k), v) for k, v in face_want.items()}
        # Encoded images in a BYTES input, decoded and resized by the server.
        for label, data, ref in (("bytes_jpeg", jpeg, jpeg_want), ("bytes_png", png, png_want)):
            res = p.infer(ssd_name, [p.input("image", data)])
            got = res.as_numpy("detection_out")
            r[label] = compare(got, ref)
            r[label]["detections"] = detections(got)
        # Refusals.
        errors = {}
        bad = {
            "unknown_model": ("nope", [p.input("image", tensor)]),
            "wrong_shape": (ssd_name, [p.input("image", np.ascontiguousarray(
                tensor.transpose(0, 3, 1, 2)))]),
            "wrong_datatype": (ssd_name, [p.input("image", tensor.astype(np.float32))]),
            "unknown_input": (ssd_name, [p.input("picture", tensor)]),
            "not_an_image": (ssd_name, [p.input("image", np.array([b"hello"], dtype=np.object_))]),
        }
        for label, (model, inputs) in bad.items():
            try:
                p.infer(model, inputs)
                errors[label] = None
            except InferenceServerException as e:
                errors[label] = refusal(e)
        try:
            p.metadata("nope")
            errors["unknown_model_metadata"] = None
        except InferenceServerException as e:
            errors["unknown_model_metadata"] = refusal(e)
        try:
            r["unknown_model_ready"] = c.is_model_ready("nope")
        except InferenceServerException as e:
            r["unknown_model_ready"] = refusal(e)
        r["errors"] = errors
        if name == "grpc":
            # Triton's streaming extension: answers in order, an error in its place.
            answers = []
            done = threading.Event()

            def callback(result, error):
                answers.append(refusal(error) if error else result.get_response().id)
                if len(answers) == 3:
                    done.set()

            c.start_stream(callback=callback)
            for i, model in enumerate((ssd_name, "nope", ssd_name)):
                c.async_stream_infer(model, [p.input("image", tensor)], request_id=f"s{i}")
            done.wait(30)
            c.stop_stream()
            r["stream"] = answers
        report[name] = r
    print(json.dumps(report, default=str))


def auth(args):
    report = {}
    good = {"authorization": f"Bearer {args.token}"}
    bad = {"authorization": "Bearer wrong"}
    tensor = np.zeros((1, 300, 300, 3), dtype=np.uint8)
    for name, url in (("http", args.http), ("grpc", args.grpc)):
        r = {}
        for label, headers in (("none", None), ("wrong", bad), ("right", good)):
            p = Protocol(name, url, headers=headers, ssl=bool(args.ca), ca=args.ca)
            outcome = {}
            try:
                outcome["live"] = p.client.is_server_live(headers=headers)
                outcome["ready"] = p.client.is_server_ready(headers=headers)
            except InferenceServerException as e:
                outcome["health"] = refusal(e)
            try:
                outcome["metadata"] = p.metadata(args.model)["name"]
            except InferenceServerException as e:
                outcome["metadata"] = refusal(e)
            try:
                res = p.infer(args.model, [p.input("image", tensor)])
                outcome["infer"] = list(res.as_numpy("detection_out").shape)
            except InferenceServerException as e:
                outcome["infer"] = refusal(e)
            r[label] = outcome
        report[name] = r
    print(json.dumps(report, default=str))


def bench(args):
    tensor = ssd_tensor(args.image)
    latencies = []
    errors = []
    lock = threading.Lock()
    stop_at = [None]
    start = threading.Barrier(args.threads + 1)

    def worker():
        p = Protocol(args.protocol, args.url)
        inputs = [p.input("image", tensor)]
        outputs = [p.output("detection_out")]
        try:
            p.infer(args.model, inputs, outputs)  # warm the connection
        except InferenceServerException:
            pass  # busy: this client's connection is up all the same
        start.wait(timeout=60)
        mine = []
        while time.perf_counter() < stop_at[0]:
            t = time.perf_counter()
            try:
                p.infer(args.model, inputs, outputs).as_numpy("detection_out")
                mine.append(time.perf_counter() - t)
            except InferenceServerException as e:
                with lock:
                    errors.append(str(e))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 1e9
    start.wait(timeout=60)
    began = time.perf_counter()
    cpu = time.process_time()
    stop_at[0] = began + args.seconds
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu
    lat = np.array(latencies) * 1000 if latencies else np.array([0.0])
    print(json.dumps({
        "protocol": args.protocol, "threads": args.threads, "requests": len(latencies),
        "seconds": elapsed, "rate": len(latencies) / elapsed, "errors": len(errors),
        "client_cpu_s": cpu,
        "first_error": errors[0] if errors else None,
        "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("--http", required=True)
    c.add_argument("--grpc", required=True)
    c.add_argument("--ssd", required=True)
    c.add_argument("--face", required=True)
    c.add_argument("--jpeg", required=True)
    c.add_argument("--png", required=True)
    a = sub.add_parser("auth")
    a.add_argument("--http", required=True)
    a.add_argument("--grpc", required=True)
    a.add_argument("--model", required=True)
    a.add_argument("--token", required=True)
    a.add_argument("--ca")
    b = sub.add_parser("bench")
    b.add_argument("--url", required=True)
    b.add_argument("--protocol", choices=("http", "grpc"), required=True)
    b.add_argument("--model", required=True)
    b.add_argument("--image", required=True)
    b.add_argument("--seconds", type=float, default=10)
    b.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    {"check": check, "auth": auth, "bench": bench}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
