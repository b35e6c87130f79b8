#!/usr/bin/env python3
"""Convert SSD-MobileNet-v2 COCO (quantised TFLite with TFLite_Detection_PostProcess) to OpenVINO IR.

OpenVINO cannot read the custom `TFLite_Detection_PostProcess` operator. This script:
1. patches a copy of the flatbuffer so that the subgraph ends before that operator: its outputs become
   the operator's first two inputs (box encodings [1,1917,4] as ty,tx,th,tw and class scores
   [1,1917,91], sigmoid, index 0 = background);
2. reads the patched model with OpenVINO and appends an opset8 DetectionOutput whose priors are the
   model's constant `anchors` tensor (yc,xc,h,w), with variances 0.1,0.1,0.2,0.2 (the operator's
   scales 10,10,5,5), CENTER_SIZE coding and NMS IoU 0.6;
3. saves the IR: input u8 NHWC [1,300,300,3] RGB 0..255, output [1,1,100,7] =
   (image, class, confidence, x0, y0, x1, y1), normalised;
4. writes labels.txt as "id name" lines in the model's class index space (class L = COCO id L-1).

usage: convert_ssd.py model.tflite coco_labels.txt OUT_DIR
"""
import os
import struct
import sys

import numpy as np
import openvino as ov
import openvino.opset8 as ops
import tflite

NAME = "ssd_mobilenet_v2_coco"


def read_u32(buf, pos):
    return struct.unpack_from("<I", buf, pos)[0]


def vector_pos(table, field_offset):
    """Absolute position of the first element of a vector field of a flatbuffer table."""
    o = table._tab.Offset(field_offset)
    if o == 0:
        raise ValueError("missing vector field")
    return table._tab.Vector(o)


def dequantise(buf, tensor, model):
    data = model.Buffers(tensor.Buffer()).DataAsNumpy()
    q = tensor.Quantization()
    shape = tensor.ShapeAsNumpy()
    raw = np.frombuffer(data.tobytes(), dtype=np.uint8).astype(np.float32).reshape(shape)
    return (raw - q.ZeroPoint(0)) * q.Scale(0)


def main():
    src, labels_src, out_dir = sys.argv[1:4]
    buf = bytearray(open(src, "rb").read())
    model = tflite.Model.GetRootAsModel(buf, 0)
    graph = model.Subgraphs(0)
    last = graph.Operators(graph.OperatorsLength() - 1)
    code = model.OperatorCodes(last.OpcodeIndex())
    if code.CustomCode() != b"TFLite_Detection_PostProcess":
        sys.exit(f"unexpected last operator {code.CustomCode()!r}: is this the right model?")
    box_idx, score_idx, anchor_idx = (last.Inputs(i) for i in range(3))
    anchors = dequantise(buf, graph.Tensors(anchor_idx), model)  # [1917, 4] yc, xc, h, w
    num_priors = anchors.shape[0]

    # SubGraph table fields: 4 tensors, 6 inputs, 8 outputs, 10 operators.
    outputs = vector_pos(graph, 8)
    operators = vector_pos(graph, 10)
    struct.pack_into("<I", buf, outputs - 4, 2)
    struct.pack_into("<ii", buf, outputs, box_idx, score_idx)
    struct.pack_into("<I", buf, operators - 4, read_u32(buf, operators - 4) - 1)

    core = ov.Core()
    patched = os.path.join(out_dir, "patched.tflite")
    os.makedirs(out_dir, exist_ok=True)
    open(patched, "wb").write(buf)
    m = core.read_model(patched)
    os.remove(patched)
    param = m.get_parameters()[0]
    out_by_shape = {tuple(o.get_partial_shape().to_shape())[-1]: o for o in m.outputs}
    boxes, scores = out_by_shape[4], out_by_shape[91]
    num_classes = 91

    def dequantised(out, tensor_index):
        # Result <- Convert(u8) <- FakeQuantize(f32): the FakeQuantize output holds the quantised
        # levels as f32; real value = (q - zero_point) * scale, from the TFLite tensor.
        node = out.get_node().input_value(0)
        if node.get_node().get_type_name() == "Convert":
            node = node.get_node().input_value(0)
        q = graph.Tensors(tensor_index).Quantization()
        zero_point = ops.constant(np.float32(q.ZeroPoint(0)))
        scale = ops.constant(np.float32(q.Scale(0)))
        return ops.multiply(ops.subtract(node, zero_point), scale)

    old_results = list(m.get_results())
    boxes = dequantised(boxes, box_idx)
    scores = dequantised(scores, score_idx)
    # (ty, tx, th, tw) -> (tx, ty, tw, th), the order DetectionOutput's CENTER_SIZE decoding expects.
    boxes = ops.gather(boxes, ops.constant(np.array([1, 0, 3, 2], dtype=np.int64)), ops.constant(np.int64(2)))
    box_logits = ops.reshape(boxes, ops.constant(np.array([1, num_priors * 4], dtype=np.int64)), False)
    class_preds = ops.reshape(scores, ops.constant(np.array([1, num_priors * num_classes], dtype=np.int64)), False)

    yc, xc, h, w = anchors[:, 0], anchors[:, 1], anchors[:, 2], anchors[:, 3]
    corners = np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=1).reshape(-1)
    variances = np.tile(np.array([0.1, 0.1, 0.2, 0.2], dtype=np.float32), num_priors)
    priors = np.stack([corners, variances]).astype(np.float32).reshape(1, 2, num_priors * 4)

    attrs = {
        "background_label_id": 0,
        "top_k": 200,
        "variance_encoded_in_target": False,
        "keep_top_k": [100],
        "code_type": "caffe.PriorBoxParameter.CENTER_SIZE",
        "share_location": True,
        "nms_threshold": 0.6,
        "confidence_threshold": 0.05,
        "clip_after_nms": True,
        "clip_before_nms": False,
        "decrease_label_id": False,
        "normalized": True,
        "input_height": 1,
        "input_width": 1,
        "objectness_score": 0.0,
    }
    det = ops.detection_output(box_logits, class_preds, ops.constant(priors), attrs)
    det.get_output_tensor(0).set_names({"detection_out"})
    m.add_results([ops.result(det)])
    for r in old_results:
        m.remove_result(r)
    m.set_friendly_name(NAME)
    param.get_output_tensor(0).set_names({"image"})
    ov.save_model(m, os.path.join(out_dir, NAME + ".xml"), compress_to_fp16=False)

    with open(labels_src) as f, open(os.path.join(out_dir, "labels.txt"), "w") as out:
        for line in f:
            parts = line.split(maxsplit=1)
            if len(parts) == 2:
                out.write(f"{int(parts[0]) + 1} {parts[1].strip()}\n")
    print(f"wrote {out_dir}/{NAME}.xml: input {param.get_partial_shape()} {param.get_element_type()}, "
          f"output {det.get_output_partial_shape(0)}")


if __name__ == "__main__":
    main()
