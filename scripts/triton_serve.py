#!/usr/bin/env python3
"""A real NVIDIA Triton Inference Server serving the SSD through OpenVINO, for ovinfer's remote
inference tests and benchmarks (tests/common/triton.rs, benches/kserve.rs).

PyTriton (PyPI nvidia-pytriton, which ships the tritonserver binary and its Python backend) runs
tritonserver with the model bound to Python functions of this process. The model is compiled once
with OpenVINO's Python API (CPU, PERFORMANCE_HINT THROUGHPUT); every model instance Triton runs is
one bound function with its own OpenVINO infer request on that compiled model, as many instances as
the compiled model's OPTIMAL_NUMBER_OF_INFER_REQUESTS (or --instances).

Inputs and outputs are the model's own (for the SSD: `image` UINT8 [1,300,300,3] ->
`detection_out` FP32 [1,1,100,7]), with max_batch_size 0: the SSD cannot be reshaped to another
batch (its box decoding reshapes to a fixed [1,1917,4]) and its DetectionOutput puts every image's
detections in one [1,1,N*100,7] tensor rather than along a leading batch dimension, which is what
Triton's batching would split. Concurrency comes from the instances instead.

With --max-batch-size N > 0 the model is served with Triton's batching instead: its first dimension
is reshaped to -1 (dynamic) before compiling, the tensors are declared per item (without the batch
dimension, so the metadata shows [-1,...]), and a request may carry up to N items in its first
dimension (Triton's dynamic batcher may join requests too). For models whose outputs are per item
along a leading batch dimension, e.g. the tiny colour classifier (`image` FP32 [N,3,16,16] ->
`probabilities` FP32 [N,3]).

Triton's Python backend runs a stub process that links libpython3.X.so.1.0; when this Python is
not the system's (pyenv, a venv made from one), the stub would pick up the system's libpython of
the same version or none at all: this script puts this interpreter's own LIBDIR first on
LD_LIBRARY_PATH before tritonserver starts.

Runs in the virtualenv scripts/setup.sh makes for it, .venv/triton (scripts/requirements-triton.txt:
PyTriton needs numpy < 2).

usage:
  .venv/triton/bin/python scripts/triton_serve.py [--model XML] [--model-dir DIR] [--model-name NAME] [--grpc-port P] [--http-port P]
      [--workspace DIR] [--instances N] [--address ADDR] [--max-batch-size N]
The model's statistics (GET /v2/models/NAME/stats) are open, the other restricted endpoints are not.
Prints `triton ready grpc=HOST:P http=HOST:P model=NAME instances=N max_batch_size=N` once the model
is ready;
exits 0 on SIGTERM or SIGINT after stopping tritonserver.
"""
import argparse
import logging
import os
import pathlib
import signal
import sys
import sysconfig
import tempfile

import numpy as np
import openvino as ov

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "models" / "ssd_mobilenet_v2_coco" / "ssd_mobilenet_v2_coco.xml"

# OpenVINO element types -> numpy dtypes PyTriton declares the tensors with.
NUMPY = {
    ov.Type.u8: np.uint8,
    ov.Type.i8: np.int8,
    ov.Type.u16: np.uint16,
    ov.Type.i16: np.int16,
    ov.Type.i32: np.int32,
    ov.Type.i64: np.int64,
    ov.Type.f16: np.float16,
    ov.Type.f32: np.float32,
    ov.Type.f64: np.float64,
}


def libpython_first():
    """This interpreter's libpython directory first on LD_LIBRARY_PATH (see the module doc)."""
    libdir = sysconfig.get_config_var("LIBDIR")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir:
        current = os.environ.get("LD_LIBRARY_PATH")
        os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else libdir


def tensors(ports, batched):
    """PyTriton tensor declarations of OpenVINO ports: their names, static shapes and types; with
    `batched`, the shape of one item (the dynamic first dimension left out)."""
    from pytriton.model_config import Tensor

    out = []
    for port in ports:
        shape = port.get_partial_shape()
        if batched:
            shape = shape[1:]
        if shape.is_dynamic:
            raise SystemExit(f"{port.get_any_name()}: dynamic shape {port.get_partial_shape()}; "
                             "this server serves models of a static shape only (but for the batch "
                             "with --max-batch-size)")
        element = port.get_element_type()
        if element not in NUMPY:
            raise SystemExit(f"{port.get_any_name()}: element type {element} not served")
        out.append(Tensor(name=port.get_any_name(), dtype=NUMPY[element], shape=tuple(shape.to_shape())))
    return out


def batchable(model):
    """`model` with the first dimension of every input dynamic, for Triton's batching."""
    shapes = {}
    for port in model.inputs:
        shape = port.get_partial_shape()
        if shape.rank.is_dynamic or len(shape) == 0:
            raise SystemExit(f"{port.get_any_name()}: shape {shape} has no batch dimension to batch")
        shape[0] = ov.Dimension(-1)
        shapes[port] = shape
    try:
        model.reshape(shapes)
    except RuntimeError as e:
        raise SystemExit(f"--max-batch-size: the model cannot take a dynamic batch: {e}")
    return model


def instance(compiled):
    """One model instance: a bound function with its own infer request on the compiled model."""
    request = compiled.create_infer_request()
    inputs = [port.get_any_name() for port in compiled.inputs]
    outputs = [(port.get_any_name(), port) for port in compiled.outputs]

    def infer(requests):
        responses = []
        for req in requests:
            result = request.infer([req[name] for name in inputs])
            responses.append({name: np.array(result[port]) for name, port in outputs})
        return responses

    return infer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="OpenVINO IR (.xml) or ONNX file")
    parser.add_argument("--model-dir", help="directory holding the model file (--model relative to it)")
    parser.add_argument("--model-name", default="ssd", help="name the model is served under")
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--address", default="127.0.0.1", help="address both endpoints listen on")
    parser.add_argument("--workspace", help="directory PyTriton's workspace (its sockets, its copy of "
                        "tritonserver) is made in, removed on exit; the system's temporary directory "
                        "by default")
    parser.add_argument("--instances", type=int, default=0,
                        help="model instances (0: the compiled model's optimal number of requests)")
    parser.add_argument("--max-batch-size", type=int, default=0,
                        help="Triton's max_batch_size: 0 serves the model's own fixed shapes; N > 0 "
                        "makes its first dimension a batch of up to N items (see the module doc)")
    args = parser.parse_args()

    model = pathlib.Path(args.model)
    if args.model_dir:
        model = pathlib.Path(args.model_dir) / model
    if not model.is_file():
        raise SystemExit(f"--model: {model} is not a file")

    libpython_first()
    # PyTriton's model instances meet at a handshake socket the first instance serves: loaded in
    # parallel (Triton's default for its Python backend), a later one can connect before the first
    # listens (ConnectionRefusedError) or give up after its 1 s wait, and the model fails to load.
    # Triton's own switch loads them one after the other.
    os.environ["TRITON_PARALLEL_INSTANCE_LOADING"] = "0"
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from pytriton.model_config import ModelConfig
    from pytriton.triton import DEFAULT_PROTECTED_ENDPOINTS, Triton, TritonConfig, TritonSecurityConfig

    if args.max_batch_size < 0:
        raise SystemExit(f"--max-batch-size: {args.max_batch_size} is negative")
    batched = args.max_batch_size > 0
    core = ov.Core()
    source = core.read_model(str(model))
    if batched:
        source = batchable(source)
    compiled = core.compile_model(source, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
    count = args.instances or compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")

    # SIGTERM stops like Ctrl-C, once: the first signal interrupts serving, and further ones are
    # ignored so that they cannot interrupt the stop (tritonserver's, the workspace's removal).
    stopping = []

    def on_term(signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    config = TritonConfig(
        http_address=args.address,
        http_port=args.http_port,
        grpc_address=args.address,
        grpc_port=args.grpc_port,
        allow_metrics=False,
        exit_timeout_secs=5,
    )
    # PyTriton makes the workspace itself and refuses one that exists: a fresh name in the directory.
    workspace = tempfile.mkdtemp(prefix="pytriton-", dir=args.workspace)
    os.rmdir(workspace)
    # PyTriton restricts some endpoints to a token of its own; the per-model statistics
    # (GET /v2/models/NAME/stats: inference_count, execution_count) are read-only and stay open,
    # for tests to see what reached the model.
    security = TritonSecurityConfig(
        restricted_endpoints=[e for e in DEFAULT_PROTECTED_ENDPOINTS if e != "statistics"])
    triton = Triton(config=config, workspace=workspace, security_config=security)
    try:
        triton.bind(
            model_name=args.model_name,
            infer_func=[instance(compiled) for _ in range(count)],
            inputs=tensors(compiled.inputs, batched),
            outputs=tensors(compiled.outputs, batched),
            # max_batch_size 0 without --max-batch-size (see the module doc)
            config=ModelConfig(batching=batched, max_batch_size=args.max_batch_size),
            strict=True,
        )
        triton.run()
        print(
            f"triton ready grpc={args.address}:{args.grpc_port} http={args.address}:{args.http_port} "
            f"model={args.model_name} instances={count} max_batch_size={args.max_batch_size}",
            flush=True,
        )
        triton.serve()  # returns when tritonserver or a model instance has stopped
    except KeyboardInterrupt:
        pass
    finally:
        triton.stop()
    if stopping:
        return 0
    print("tritonserver stopped by itself (see its log above)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
