"""ONNX stand-ins for InsightFace's ``buffalo_l`` pack and ``inswapper_128``, built from scratch.

Each file has the input/output names and shapes that InsightFace's model router keys on, so the
studio loads them through exactly the code that loads the real files:

- ``det_10g.onnx``: an SCRFD-style detector (input ``input.1`` [1, 3, H, W], nine outputs:
  scores, boxes and 5-point keypoints for strides 8, 16 and 32, two anchors a cell). Instead of
  a network it runs normalised cross-correlation against the face of ``skimage.data.astronaut()``
  (a real photograph), so it finds that face where it appears at the size it has when the
  512 × 512 photo is letterboxed to 640 (× 1.25) and finds nothing in a face-less picture.
- ``w600k_r50.onnx``: an ArcFace-shaped recognizer (112 × 112 → 512), a fixed random projection.
- ``2d106det.onnx``: the 2d106 landmark model (192 × 192 → 212), a fixed face layout.
- ``inswapper_128.onnx``: inputs ``target`` [1, 3, 128, 128] and ``source`` [1, 512], output
  [1, 3, 128, 128], and the ``emap`` matrix as the graph's last initializer; it tints the face
  with a colour computed from the source identity, so a swap is visible and depends on the source.

``build_face_models(root, size="full")`` swaps the recognizer and the swapper for full-size
networks with random weights, for benchmarks of memory and speed (their pictures are noise):
``w600k_r50.onnx`` is ArcFace's IResNet-50 (layers 3-4-14-3, 43.6 M parameters, 174 MB as in
the real file) and ``inswapper_128.onnx`` an encoder, six 1024-channel AdaIN residual blocks
styled by the source identity and a decoder (135 M parameters, 540 MB; the real file is 554 MB).
The detector and the landmark model stay the small ones (the real ones are 17 and 5 MB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DET_SCALE = 1.25  # 512 → 640 letterbox: the size at which the fixture recognises the face
STRIDE = 8
# In astronaut() pixels (512 × 512), read off the photo: face box, eyes, nose, mouth corners.
FACE_BOX = (180.0, 70.0, 272.0, 178.0)
KEYPOINTS = ((205.0, 101.0), (246.0, 103.0), (225.0, 125.0), (204.0, 141.0), (244.0, 141.0))
MOUTH_CENTER = (224.0, 143.0)
TEMPLATE_CELL = (35, 19)  # (x, y) stride-8 cell of the face centre in the 640 input
TEMPLATE_HALF = (7, 8)  # the template is 15 × 17 cells
NCC_SHIFT = 0.75  # the score is sigmoid(20 (ncc - 0.75)): 0.5 at a correlation of 0.75


def astronaut_rgb() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def _gray_pooled(rgb: np.ndarray) -> np.ndarray:
    """What the detector graph computes first: SCRFD's input normalisation, channel mean,
    8 × 8 average pooling."""
    import cv2

    letterboxed = cv2.resize(rgb, (640, 640)).astype(np.float32)
    gray = ((letterboxed - 127.5) / 128.0).mean(axis=2)
    return gray.reshape(80, 8, 80, 8).mean(axis=(1, 3))


def _template() -> np.ndarray:
    cx, cy = TEMPLATE_CELL
    hx, hy = TEMPLATE_HALF
    patch = _gray_pooled(astronaut_rgb())[cy - hy : cy + hy + 1, cx - hx : cx + hx + 1]
    patch = patch - patch.mean()
    return (patch / np.linalg.norm(patch)).astype(np.float32)


def _const(name: str, array: np.ndarray):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(array), name)


def _save(graph, path: Path, opset: int = 17) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="enfoads-fixture"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _empty_stride(stride: int) -> list:
    """The detector's outputs at a coarser stride: no face there (scores, boxes and keypoints
    of zeros, shaped as InsightFace reads them)."""
    from onnx import helper

    node = helper.make_node
    return [
        node(
            "AveragePool",
            ["gray"],
            [f"g{stride}"],
            kernel_shape=[stride, stride],
            strides=[stride, stride],
        ),
        node("Mul", [f"g{stride}", "zero"], [f"z{stride}"]),
        node("Reshape", [f"z{stride}", "col"], [f"zc{stride}"]),
        node("Concat", [f"zc{stride}", f"zc{stride}"], [f"zp{stride}"], axis=1),
        node("Reshape", [f"zp{stride}", "col"], [f"score_{stride}"]),
        node("Shape", [f"score_{stride}"], [f"n{stride}"], end=1),
        node("Concat", [f"n{stride}", "four"], [f"sb{stride}"], axis=0),
        node("Concat", [f"n{stride}", "ten"], [f"sk{stride}"], axis=0),
        node("Expand", ["zero2", f"sb{stride}"], [f"bbox_{stride}"]),
        node("Expand", ["zero2", f"sk{stride}"], [f"kps_{stride}"]),
    ]


def build_detector(path: Path) -> Path:
    from onnx import TensorProto, helper

    template = _template()
    th, tw = template.shape
    n = float(th * tw)
    cx, cy = TEMPLATE_CELL
    centre = np.array([cx * STRIDE, cy * STRIDE], np.float32)
    x0, y0, x1, y1 = np.array(FACE_BOX, np.float32) * DET_SCALE
    box = (
        np.array([[centre[0] - x0, centre[1] - y0, x1 - centre[0], y1 - centre[1]]], np.float32)
        / STRIDE
    )
    kps = ((np.array(KEYPOINTS, np.float32) * DET_SCALE - centre) / STRIDE).reshape(1, 10)
    pads = [TEMPLATE_HALF[1], TEMPLATE_HALF[0], TEMPLATE_HALF[1], TEMPLATE_HALF[0]]
    node = helper.make_node
    nodes = [
        node("ReduceMean", ["input.1"], ["gray"], axes=[1], keepdims=1),
        node("AveragePool", ["gray"], ["g8"], kernel_shape=[8, 8], strides=[8, 8]),
        node("Conv", ["g8", "template"], ["num"], pads=pads),
        node("Mul", ["g8", "g8"], ["g8sq"]),
        node("Conv", ["g8", "ones"], ["s1"], pads=pads),
        node("Conv", ["g8sq", "ones"], ["s2"], pads=pads),
        node("Mul", ["s1", "s1"], ["s1sq"]),
        node("Div", ["s1sq", "n"], ["s1sq_n"]),
        node("Sub", ["s2", "s1sq_n"], ["var"]),
        node("Max", ["var", "eps"], ["var_pos"]),
        node("Sqrt", ["var_pos"], ["den"]),
        node("Div", ["num", "den"], ["ncc"]),
        node("Sub", ["ncc", "shift"], ["ncc_shift"]),
        node("Mul", ["ncc_shift", "gain"], ["logit"]),
        node("Sigmoid", ["logit"], ["score_map"]),
        node("Reshape", ["score_map", "col"], ["score_col"]),
        node("Concat", ["score_col", "score_col"], ["score_pair"], axis=1),  # two anchors
        node("Reshape", ["score_pair", "col"], ["score_8"]),
        node("Shape", ["score_8"], ["n8"], end=1),
        node("Concat", ["n8", "four"], ["shape_box"], axis=0),
        node("Concat", ["n8", "ten"], ["shape_kps"], axis=0),
        node("Expand", ["box8", "shape_box"], ["bbox_8"]),
        node("Expand", ["kps8", "shape_kps"], ["kps_8"]),
    ]
    outputs = {8: ("score_8", "bbox_8", "kps_8")}
    for stride in (16, 32):
        nodes += _empty_stride(stride)
        outputs[stride] = (f"score_{stride}", f"bbox_{stride}", f"kps_{stride}")
    inits = [
        _const("template", template.reshape(1, 1, th, tw)),
        _const("ones", np.ones((1, 1, th, tw), np.float32)),
        _const("n", np.array(n, np.float32)),
        _const("eps", np.array(1e-4, np.float32)),
        _const("shift", np.array(NCC_SHIFT, np.float32)),
        _const("gain", np.array(20.0, np.float32)),
        _const("col", np.array([-1, 1], np.int64)),
        _const("box8", box),
        _const("kps8", kps.astype(np.float32)),
        _const("four", np.array([4], np.int64)),
        _const("ten", np.array([10], np.int64)),
        _const("zero", np.array(0.0, np.float32)),
        _const("zero2", np.zeros((1, 1), np.float32)),
    ]
    # InsightFace reads the outputs as scores (3 strides), then boxes, then keypoints.
    order = [outputs[s][k] for k in range(3) for s in (8, 16, 32)]
    widths = {0: 1, 1: 4, 2: 10}
    graph = helper.make_graph(
        nodes,
        "scrfd_fixture",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, widths[i // 3]])
            for i, name in enumerate(order)
        ],
        inits,
    )
    return _save(graph, path)


def build_recognizer(path: Path, seed: int = 7) -> Path:
    from onnx import TensorProto, helper

    weights = np.random.default_rng(seed).standard_normal((192, 512)).astype(np.float32)
    nodes = [
        helper.make_node(
            "AveragePool", ["input.1"], ["pooled"], kernel_shape=[14, 14], strides=[14, 14]
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "proj"], ["683"]),
    ]
    graph = helper.make_graph(
        nodes,
        "arcface_fixture",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [None, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [None, 512])],
        [_const("proj", weights)],
    )
    return _save(graph, path)


def landmark_layout() -> np.ndarray:
    """106 points of the astronaut's face in InsightFace's 2d106 order (contour 0-32, left eye
    33-42, left brow 43-51, mouth 52-71, nose 72-86, right eye 87-96, right brow 97-105)."""

    def ellipse(
        cx: float,
        cy: float,
        rx: float,
        ry: float,
        count: int,
        start: float = 0.0,
        stop: float = 2 * np.pi,
    ) -> np.ndarray:
        angles = np.linspace(start, stop, count, endpoint=stop - start < 2 * np.pi - 1e-6)
        return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=1)

    (lx, ly), (rx_, ry_), (nx, ny), _, _ = KEYPOINTS
    mx, my = MOUTH_CENTER
    parts = [
        ellipse(226, 120, 46, 58, 33, 0.0, np.pi),  # jaw contour
        ellipse(lx, ly, 10, 4, 10),  # left eye
        ellipse(lx, ly - 12, 14, 3, 9, np.pi, 2 * np.pi),  # left brow
        ellipse(mx, my, 21, 8, 20),  # mouth (outer 12 + inner 8 share one ring here)
        ellipse(nx, ny - 10, 6, 14, 15),  # nose
        ellipse(rx_, ry_, 10, 4, 10),  # right eye
        ellipse(rx_, ry_ - 12, 14, 3, 9, np.pi, 2 * np.pi),  # right brow
    ]
    return np.concatenate(parts).astype(np.float32)


def build_landmarker(path: Path) -> Path:
    """Outputs the layout in the crop's [-1, 1] coordinates (InsightFace crops 1.5 × the box,
    centred on it), so the points follow the detected box."""
    from onnx import TensorProto, helper

    x0, y0, x1, y1 = FACE_BOX
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32)
    scale = 192 / (max(x1 - x0, y1 - y0) * 1.5)
    normalised = ((landmark_layout() - centre) * scale / 96).reshape(1, 212)
    nodes = [
        helper.make_node("ReduceMean", ["data"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["layout", "z"], ["fc1"]),
    ]
    graph = helper.make_graph(
        nodes,
        "landmark_2d106_fixture",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 192, 192])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 212])],
        [
            _const("layout", normalised.astype(np.float32)),
            _const("zero", np.array(0.0, np.float32)),
        ],
    )
    return _save(graph, path)


def build_swapper(path: Path, seed: int = 11) -> Path:
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    colour = (rng.standard_normal((512, 3)) * 2.0).astype(np.float32)
    emap = np.linalg.qr(rng.standard_normal((512, 512)))[0].astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["source", "colour_proj"], ["c_logit"]),
        helper.make_node("Sigmoid", ["c_logit"], ["c"]),
        helper.make_node("Reshape", ["c", "c_shape"], ["c4"]),
        helper.make_node("Mul", ["target", "half"], ["t_half"]),
        helper.make_node("Mul", ["c4", "half"], ["c_half"]),
        helper.make_node("Add", ["t_half", "c_half"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "inswapper_fixture",
        [
            helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
            helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])],
        # InsightFace takes the last initializer as ``emap``.
        [
            _const("colour_proj", colour),
            _const("c_shape", np.array([1, 3, 1, 1], np.int64)),
            _const("half", np.array(0.5, np.float32)),
            _const("emap", emap),
        ],
    )
    return _save(graph, path)


class _Net:
    """Nodes and random initializers of a full-size network, named as they are added."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def const(self, array: np.ndarray) -> str:
        name = self.name("w")
        self.inits.append(_const(name, np.asarray(array)))
        return name

    def op(self, kind: str, inputs: list[str], **attrs) -> str:
        from onnx import helper

        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, gain=1.0) -> str:
        fan_in = cin * k * k
        w = self.rng.standard_normal((cout, cin, k, k), dtype=np.float32)
        w *= np.float32(gain * np.sqrt(2.0 / fan_in))
        pad = k // 2
        return self.op(
            "Conv",
            [x, self.const(w), self.const(np.zeros(cout, np.float32))],
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad] * 4,
        )

    def bn(self, x: str, channels: int, gamma: float = 1.0) -> str:
        ones, zeros = np.ones(channels, np.float32), np.zeros(channels, np.float32)
        return self.op(
            "BatchNormalization",
            [x, self.const(ones * gamma), self.const(zeros), self.const(zeros), self.const(ones)],
        )

    def prelu(self, x: str, channels: int) -> str:
        return self.op("PRelu", [x, self.const(np.full((channels, 1, 1), 0.25, np.float32))])

    def gemm(self, x: str, cin: int, cout: int, gain: float = 1.0) -> str:
        w = self.rng.standard_normal((cin, cout), dtype=np.float32)
        w *= np.float32(gain / np.sqrt(cin))
        return self.op("Gemm", [x, self.const(w), self.const(np.zeros(cout, np.float32))])


def build_recognizer_full(path: Path, seed: int = 7) -> Path:
    """ArcFace's IResNet-50 (``w600k_r50``'s architecture) with random weights."""
    from onnx import TensorProto, helper

    net = _Net(seed)
    x = net.prelu(net.bn(net.conv("input.1", 3, 64), 64), 64)
    cin = 64
    for planes, blocks in ((64, 3), (128, 4), (256, 14), (512, 3)):
        for i in range(blocks):
            stride = 2 if i == 0 else 1
            y = net.bn(x, cin)
            y = net.prelu(net.bn(net.conv(y, cin, planes), planes), planes)
            y = net.bn(net.conv(y, planes, planes, stride=stride), planes, gamma=0.1)
            if stride != 1 or cin != planes:
                x = net.bn(net.conv(x, cin, planes, k=1, stride=stride), planes)
            x = net.op("Add", [x, y])
            cin = planes
    x = net.op("Flatten", [net.bn(x, 512)])
    net.gemm(x, 512 * 7 * 7, 512)
    net.nodes[-1].output[0] = "683"
    graph = helper.make_graph(
        net.nodes,
        "arcface_iresnet50_random",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [None, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [None, 512])],
        net.inits,
    )
    return _save(graph, path)


def build_swapper_full(path: Path, seed: int = 11) -> Path:
    """An inswapper_128-sized network with random weights: the target through an encoder to
    1024 channels at 32 × 32, six residual blocks whose AdaIN scales and shifts come from the
    source identity, a decoder back to 128 × 128 (sigmoid, as the swapper's [0, 1] output)."""
    from onnx import TensorProto, helper

    net = _Net(seed)
    eps = net.const(np.array(1e-5, np.float32))
    one = net.const(np.array(1.0, np.float32))
    shape = net.const(np.array([1, 1024, 1, 1], np.int64))

    def adain(x: str) -> str:
        mean = net.op("ReduceMean", [x], axes=[2, 3], keepdims=1)
        centred = net.op("Sub", [x, mean])
        var = net.op("ReduceMean", [net.op("Mul", [centred, centred])], axes=[2, 3], keepdims=1)
        normed = net.op("Div", [centred, net.op("Sqrt", [net.op("Add", [var, eps])])])
        scale = net.op("Reshape", [net.gemm("source", 512, 1024, gain=0.1), shape])
        shift = net.op("Reshape", [net.gemm("source", 512, 1024, gain=0.1), shape])
        return net.op("Add", [net.op("Mul", [normed, net.op("Add", [scale, one])]), shift])

    x = net.op("LeakyRelu", [net.conv("target", 3, 128, k=7)], alpha=0.2)
    x = net.op("LeakyRelu", [net.conv(x, 128, 256, stride=2)], alpha=0.2)
    x = net.op("LeakyRelu", [net.conv(x, 256, 512, stride=2)], alpha=0.2)
    x = net.op("LeakyRelu", [net.conv(x, 512, 1024)], alpha=0.2)
    for _ in range(6):
        y = net.op("Relu", [adain(net.conv(x, 1024, 1024))])
        y = adain(net.conv(y, 1024, 1024, gain=0.1))
        x = net.op("Add", [x, y])
    scales = net.const(np.array([1, 1, 2, 2], np.float32))
    for cin, cout in ((1024, 256), (256, 128)):
        x = net.op("Resize", [x, "", scales], mode="nearest")
        x = net.op("LeakyRelu", [net.conv(x, cin, cout)], alpha=0.2)
    x = net.op("Sigmoid", [net.conv(x, 128, 3, k=7, gain=0.1)])
    net.nodes[-1].output[0] = "output"
    rng = np.random.default_rng(seed + 1)
    # InsightFace takes the last initializer as ``emap``.
    net.inits.append(
        _const("emap", np.linalg.qr(rng.standard_normal((512, 512)))[0].astype(np.float32))
    )
    graph = helper.make_graph(
        net.nodes,
        "inswapper_128_sized_random",
        [
            helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
            helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])],
        net.inits,
    )
    return _save(graph, path)


def build_face_models(root: Path, size: str = "small") -> dict[str, Path]:
    """``{root}/buffalo_l/*.onnx`` and ``{root}/inswapper_128.onnx``, as they lie in the data
    dir after a real download. ``size="full"``: full-size recognizer and swapper (above)."""
    pack = root / "buffalo_l"
    pack.mkdir(parents=True, exist_ok=True)
    full = size == "full"
    build_detector(pack / "det_10g.onnx")
    (build_recognizer_full if full else build_recognizer)(pack / "w600k_r50.onnx")
    build_landmarker(pack / "2d106det.onnx")
    swapper = (build_swapper_full if full else build_swapper)(root / "inswapper_128.onnx")
    return {"analysis": pack, "swapper": swapper}


def scaled_face_patch() -> np.ndarray:
    """The astronaut's head at the fixture's scale (× 1.25), for composing multi-face images."""
    import cv2

    big = cv2.resize(astronaut_rgb(), (640, 640))
    x0, y0, x1, y1 = (int(v * DET_SCALE) for v in (150, 40, 300, 200))
    return big[y0:y1, x0:x1].copy()
