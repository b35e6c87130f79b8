#!/usr/bin/env python3
"""Build the tiny ONNX models the element tests run through the real OpenVINO runtime.

Each model's output depends on its input, so a test can drive it with synthetic frames:
- colour_classifier.onnx: f32 NCHW [1,3,16,16] in 0..1 -> softmax over the mean of each channel
  ([1,3] = red, green, blue). A red frame is "red" whatever the caps' byte order.
- tiny_ssd.onnx: f32 NCHW [1,3,8,8] -> DetectionOutput-shaped [1,1,3,7]; the confidence of every
  row is the frame's mean brightness (0..1), boxes are fixed (one partly outside the frame, one
  degenerate), so a white frame gives detections and a black frame none.
- tiny_yolo.onnx: f32 NCHW [1,3,32,32] -> YOLOv8-shaped [1,4+2,8] (cx,cy,w,h in input pixels then
  two class scores); the class-1 score of the first two candidates is the mean brightness, and the
  two overlap so NMS must keep one.
- tiny_unknown.onnx: an image input but an output of shape [1,5,5,5] that no decoder understands.
- tiny_not_image.onnx: an input of shape [1,5,5,5], which is no image.

usage: make_tiny_models.py OUT_DIR
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def brightness_nodes(input_name):
    """Nodes computing the scalar mean of the whole input tensor, as output 'brightness' ([1])."""
    return [
        helper.make_node("ReduceMean", [input_name], ["m"], keepdims=0),
        helper.make_node("Reshape", ["m", "shape1"], ["brightness"]),
    ], [numpy_helper.from_array(np.array([1], dtype=np.int64), "shape1")]


def colour_classifier(path):
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["means"], axes=[2, 3], keepdims=0),
        helper.make_node("Mul", ["means", "gain"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    inits = [numpy_helper.from_array(np.array([20.0], dtype=np.float32), "gain")]
    graph = helper.make_graph(
        nodes, "colour_classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 3])],
        inits)
    save(graph, path)


def tiny_ssd(path):
    base = np.array([[
        [0, 1, 0, 0.10, 0.20, 0.50, 0.60],   # class 1, inside the frame
        [0, 2, 0, -0.10, 0.50, 1.20, 1.30],  # class 2, partly outside: must be clipped
        [0, 3, 0, 0.70, 0.70, 0.70, 0.70],   # class 3, zero area: must be dropped
    ]], dtype=np.float32).reshape(1, 1, 3, 7)
    mask = np.zeros_like(base)
    mask[..., 2] = 1.0
    nodes, inits = brightness_nodes("image")
    nodes += [
        helper.make_node("Mul", ["mask", "brightness"], ["conf"]),
        helper.make_node("Add", ["base", "conf"], ["detection_out"]),
    ]
    inits += [numpy_helper.from_array(base, "base"), numpy_helper.from_array(mask, "mask")]
    graph = helper.make_graph(
        nodes, "tiny_ssd",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("detection_out", TensorProto.FLOAT, [1, 1, 3, 7])],
        inits)
    save(graph, path)


def tiny_yolo(path):
    n = 8
    base = np.zeros((1, 6, n), dtype=np.float32)
    # candidate 0 and 1 overlap heavily (IoU > 0.5), candidate 2 is elsewhere with a low score
    base[0, 0:4, 0] = [8, 8, 8, 8]
    base[0, 0:4, 1] = [9, 9, 8, 8]
    base[0, 0:4, 2] = [24, 24, 8, 8]
    base[0, 4, 2] = 0.3
    mask = np.zeros_like(base)
    mask[0, 5, 0] = 1.0
    mask[0, 5, 1] = 0.9
    nodes, inits = brightness_nodes("images")
    nodes += [
        helper.make_node("Mul", ["mask", "brightness"], ["score"]),
        helper.make_node("Add", ["base", "score"], ["output0"]),
    ]
    inits += [numpy_helper.from_array(base, "base"), numpy_helper.from_array(mask, "mask")]
    graph = helper.make_graph(
        nodes, "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, n])],
        inits)
    save(graph, path)


def tiny_unknown(path):
    nodes, inits = brightness_nodes("image")
    nodes += [helper.make_node("Expand", ["brightness", "shape5"], ["out"])]
    inits += [numpy_helper.from_array(np.array([1, 5, 5, 5], dtype=np.int64), "shape5")]
    graph = helper.make_graph(
        nodes, "tiny_unknown",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5, 5, 5])],
        inits)
    save(graph, path)


def tiny_not_image(path):
    nodes = [helper.make_node("Identity", ["image"], ["out"])]
    graph = helper.make_graph(
        nodes, "tiny_not_image",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 5, 5, 5])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5, 5, 5])])
    save(graph, path)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    colour_classifier(os.path.join(out, "colour_classifier.onnx"))
    tiny_ssd(os.path.join(out, "tiny_ssd.onnx"))
    tiny_yolo(os.path.join(out, "tiny_yolo.onnx"))
    tiny_unknown(os.path.join(out, "tiny_unknown.onnx"))
    tiny_not_image(os.path.join(out, "tiny_not_image.onnx"))
    with open(os.path.join(out, "colours.txt"), "w") as f:
        f.write("red\ngreen\nblue\n")
    with open(os.path.join(out, "tiny_ssd_labels.txt"), "w") as f:
        f.write("0 background\n1 cat\n2 dog\n3 point\n")
    print(f"wrote tiny models to {out}")


if __name__ == "__main__":
    main()
