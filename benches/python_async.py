"""The Python loop a user would write instead of a pipeline: OpenCV decodes the video, resizes and
reorders each frame, and OpenVINO's AsyncInferQueue (its optimal number of requests) runs the model,
the callback counting detections above 0.5. Used by benches/inference.rs as run (d).

usage: python_async.py MODEL VIDEO FRAMES HINT
prints one JSON line: {"frames", "seconds", "fps", "detections"}
"""
import json
import sys
import time

import cv2
import numpy as np
import openvino as ov


def main():
    model_path, video, frames, hint = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    core = ov.Core()
    model = core.read_model(model_path)
    _, height, width, _ = model.input(0).shape  # NHWC u8, as the SSD IR takes it
    compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": hint.upper()})
    queue = ov.AsyncInferQueue(compiled)
    detections = [0]

    def done(request, _frame):
        rows = request.get_output_tensor(0).data.reshape(-1, 7)
        detections[0] += int(np.count_nonzero(rows[:, 2] > 0.5))

    queue.set_callback(done)
    capture = cv2.VideoCapture(video)
    n, start = 0, None
    while n < frames:
        ok, frame = capture.read()
        if not ok:  # loop the video
            capture = cv2.VideoCapture(video)
            continue
        if start is None:
            start = time.perf_counter()
        image = cv2.cvtColor(cv2.resize(frame, (width, height)), cv2.COLOR_BGR2RGB)
        queue.start_async({0: image[np.newaxis]}, n)
        n += 1
    queue.wait_all()
    seconds = time.perf_counter() - start
    print(json.dumps({"frames": n, "seconds": seconds, "fps": n / seconds,
                      "detections": detections[0]}))


if __name__ == "__main__":
    main()
