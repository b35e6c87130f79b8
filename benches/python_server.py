"""The LVA HTTP extension server a Python user would write instead of lva-server, for
benches/lva_server.rs: FastAPI on uvicorn (one process, uvloop and httptools), OpenCV decodes the
JPEG (cv2.imdecode), resizes it to the model's size (cv2.resize, INTER_LINEAR) and reorders it to
RGB, OpenVINO's Python API infers, and the answer is the LVA document lva-server gives:
{"inferences": [...]} with 200, or 204 when nothing is at or above the threshold. This is the
approach of Microsoft's LVA samples and of OpenVINO Model Server's AMS wrapper.

Inference runs on an AsyncInferQueue with OpenVINO's optimal number of requests for the
performance hint, so several requests can be in flight at once; an asyncio semaphore of that
size keeps the event loop from blocking in start_async when every request is busy. The JPEG is
decoded and resized in the event loop itself: about 1.5 ms of CPU against the model's 30, so the
loop is free most of the time. OpenVINO's CPU defaults stay as they are (threads pinned to
cores), and uvicorn's access log stays on, as lva-server's does.

usage: python_server.py MODEL LABELS HINT [PORT]
  HINT: latency or throughput; PORT 0 (default) picks a free one.
  Prints "listening on http://127.0.0.1:PORT, models: ssd" on stderr once the model is compiled
  and warm; POST /ssd with a JPEG body, optionally ?threshold=T.
"""
import asyncio
import json
import socket
import sys

import cv2
import numpy as np
import openvino as ov
import uvicorn
from fastapi import FastAPI, Request, Response

MODEL_NAME = "ssd"


def read_labels(path):
    """Labels by class id: "id name" lines, or one name per line (id = line number)."""
    labels = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            line = line.strip()
            if not line:
                continue
            first, _, rest = line.partition(" ")
            if first.isdigit() and rest:
                labels[int(first)] = rest.strip()
            else:
                labels[n] = line
    return labels


def main():
    model_path, labels_path, hint = sys.argv[1], sys.argv[2], sys.argv[3]
    port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    labels = read_labels(labels_path)
    subtype = model_path.rsplit("/", 1)[-1].rsplit(".", 1)[0]

    core = ov.Core()
    model = core.read_model(model_path)
    _, height, width, _ = model.input(0).shape  # NHWC u8
    compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": hint.upper()})
    queue = ov.AsyncInferQueue(compiled)  # OpenVINO's optimal number of requests
    blank = np.zeros((1, height, width, 3), np.uint8)
    for _ in range(len(queue)):  # warm every request, as lva-server warms its pipelines
        queue.start_async({0: blank})
    queue.wait_all()

    def done(request, future):
        rows = request.get_output_tensor(0).data.reshape(-1, 7).copy()
        future.get_loop().call_soon_threadsafe(settle, future, rows)

    def settle(future, rows):
        if not future.done():  # not cancelled by a client gone meanwhile
            future.set_result(rows)

    queue.set_callback(done)
    app = FastAPI()
    slots = None  # created in the server's event loop

    @app.post("/{name}")
    async def score(name: str, request: Request, threshold: float = 0.5):
        nonlocal slots
        if name != MODEL_NAME:
            return Response(status_code=404)
        body = await request.body()
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            return Response(status_code=400)
        picture = cv2.cvtColor(cv2.resize(image, (width, height)), cv2.COLOR_BGR2RGB)
        if slots is None:
            slots = asyncio.Semaphore(len(queue))
        async with slots:
            future = asyncio.get_running_loop().create_future()
            queue.start_async({0: picture[np.newaxis]}, future)
            rows = await future
        inferences = []
        for image_id, label, confidence, x0, y0, x1, y1 in rows.tolist():
            if image_id < 0:  # DetectionOutput pads the list with -1
                break
            if confidence < threshold:
                continue
            x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in (x0, y0, x1, y1))
            inferences.append({
                "type": "entity",
                "subtype": subtype,
                "entity": {
                    "tag": {"value": labels.get(int(label), str(int(label))),
                            "confidence": confidence},
                    "box": {"l": x0, "t": y0, "w": max(x1 - x0, 0.0), "h": max(y1 - y0, 0.0)},
                },
            })
        if not inferences:
            return Response(status_code=204)
        return Response(json.dumps({"inferences": inferences}, separators=(",", ":")),
                        media_type="application/json")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}, models: {MODEL_NAME}",
          file=sys.stderr, flush=True)
    config = uvicorn.Config(app, loop="uvloop", http="httptools", workers=1)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
