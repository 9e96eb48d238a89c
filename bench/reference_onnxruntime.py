#!/usr/bin/env python3
"""Reference face pipeline in Python + onnxruntime, for `cargo xtask bench`.

Runs the same pipeline as `face-core` (decode -> YuNet detect -> 5-point
similarity alignment -> dlib ResNet embedding -> L2 match) on the same
images and reports per-stage median timings as JSON. The pre- and
post-processing follow blobs/MODELS.md and the Rust code:

* decode: Pillow, EXIF orientation applied, converted to RGB (format sniffed
  from the bytes, so a WebP named .jpg decodes).
* detect: scale = min(640 / long side, 2.0) (fixed-size models: fit the
  input, no cap); input sides ceil(side * scale / 32) * 32, at least 32;
  when scale < 0.5 the image is first box-filtered by the integer factor
  k = floor((1 / scale) / 1.5), then resampled bilinearly to
  round(w * scale) x round(h * scale), placed top-left in a zero tensor
  (BGR, float32 0..255, NCHW). Outputs decoded as OpenCV's FaceDetectorYN,
  score >= 0.7, greedy NMS IoU 0.3, top_k 5000, coordinates / scale.
* align: least-squares similarity (Umeyama) from the 5 landmarks onto dlib's
  template in 150x150 chip pixels; when the image->chip scale is < 0.5 the
  face region is box-filtered by k = floor((1 / s) / 1.5) first; bilinear
  warp with border 0 into an RGB float32 chip.
* embed: one recognizer run per face, [1,3,150,150] RGB float32 0..255.
* match: L2 distances to a gallery made of every face of the first 20
  images (only there to time the matching step).

onnxruntime: intra_op_num_threads = --threads, inter_op 1, sequential
execution, all graph optimizations, intra-op spinning off (see session());
OpenCV runs on one thread. Timings: one warm-up pass (which also counts the
faces and builds the gallery), then --repeat timed passes; stage medians are
over every (image, pass) sample; end-to-end is the per-image sum of stages;
images/s = images processed / wall time of the timed passes.

Differences from the Rust resampler, all sub-pixel / sub-grey-level:
the bilinear resampling uses cv2.warpAffine (1/32 px weight quantization;
the detector input goes through uint8), the box filter uses cv2 INTER_AREA
for the whole blocks (round-half-even vs Rust's round-half-up), and JPEG
decoding is libjpeg-turbo (Pillow) vs the `image` crate's decoder.
The geometry (input sizes, scales, pixel-centre conventions, padding) is
computed in float32 as the Rust code does, so input shapes match exactly.

Two more modes, each one process, for the benches that time them:

* --cold-start IMAGE (`cargo xtask bench-lambda`): load both models, run the
  pipeline on IMAGE once, print its faces and exit; the caller times spawn
  to exit, interpreter start and imports included, as it times ours.
* --video FILE --gallery FILE.json (`cargo xtask bench-scan`): the naive
  every-frame scan: decode every frame (OpenCV's FFmpeg, one thread), detect,
  align and embed every face, name it by the open-set rule of face-core's
  Collection (L2 < 0.55 and 0.05 clear of the next person) against the
  gallery's embeddings ({"person": ["photo", ...]}, each photo's largest
  face). Frames per second per core are frames over the process's CPU time.

Usage:
  python bench/reference_onnxruntime.py --models DIR --data DIR \
      [--repeat 3] [--threads 1] [--json] [--dump-embeddings OUT.json]
  python bench/reference_onnxruntime.py --models DIR --cold-start IMAGE
  python bench/reference_onnxruntime.py --models DIR --video FILE \
      --gallery GALLERY.json [--json]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

F32 = np.float32
STRIDES = (8, 16, 32)
CHIP_SIZE = 150
CHIP_PADDING = 0.25
GALLERY_IMAGES = 20
STAGES = ("decode", "detect", "align", "embed", "match")
# face-core's MatchConfig defaults (core/src/collection.rs).
THRESHOLD_L2 = 0.55
MIN_MARGIN_L2 = 0.05

# dlib's 5-point template in units of the face box, YuNet's landmark order:
# right eye, left eye, nose tip, right mouth corner, left mouth corner.
TEMPLATE_UNIT = np.array(
    [
        [0.22549, 0.21599],
        [0.75476, 0.21599],
        [0.490127, 0.515625],
        [0.254149, 0.780233],
        [0.726104, 0.780233],
    ],
    dtype=F32,
)
TEMPLATE_CHIP = ((F32(CHIP_PADDING) + TEMPLATE_UNIT) * F32(CHIP_SIZE / (1.0 + 2.0 * CHIP_PADDING))).astype(F32)


@dataclass
class DetectorConfig:
    input_long_side_px: int = 640
    max_upscale: float = 2.0
    shape_step_px: int = 32
    score_threshold: float = 0.7
    nms_iou_threshold: float = 0.3
    top_k: int = 5000


@dataclass
class Face:
    box: np.ndarray  # x, y, w, h (float32, clipped to the image)
    score: float
    landmarks: np.ndarray  # 5 x 2 float32


# ----------------------------------------------------------------------------
# Decode


def decode_image(data: bytes) -> np.ndarray:
    """Bytes -> upright RGB uint8 array (H, W, 3)."""
    with Image.open(io.BytesIO(data)) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode != "RGB":
            im = im.convert("RGB")
        return np.asarray(im)


# ----------------------------------------------------------------------------
# Resampling (mirrors core/src/resample.rs)


def rust_round(v) -> int:
    """Rust's f32::round: half away from zero (v >= 0 here)."""
    return int(math.floor(float(v) + 0.5))


def prefilter_factor(scale) -> int:
    scale = F32(scale)
    if math.isfinite(scale) and 0.0 < scale < 0.5:
        return max(1, int(math.floor(F32(F32(1.0) / scale) / F32(1.5))))
    return 1


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean of each k x k block, partial blocks averaging what is there,
    rounded half up as the Rust box filter does. For small strips."""
    h, w = a.shape[:2]
    rows, cols = np.arange(0, h, k), np.arange(0, w, k)
    s = np.add.reduceat(np.add.reduceat(a.astype(np.uint32), rows, axis=0), cols, axis=1)
    n = (np.minimum(k, h - rows)[:, None] * np.minimum(k, w - cols)[None, :]).astype(np.uint32)
    n = n[..., None]
    return ((s + n // 2) // n).astype(np.uint8)


def box_downscale(img: np.ndarray, k: int) -> np.ndarray:
    """Averages k x k blocks; output ceil(w/k) x ceil(h/k)."""
    if k <= 1:
        return img
    h, w = img.shape[:2]
    fh, fw = h // k, w // k
    oh, ow = -(-h // k), -(-w // k)
    out = np.empty((oh, ow, 3), dtype=np.uint8)
    if fh and fw:
        out[:fh, :fw] = cv2.resize(img[: fh * k, : fw * k], (fw, fh), interpolation=cv2.INTER_AREA)
    if ow > fw:
        out[:, fw:] = _block_mean(img[:, fw * k :], k)
    if oh > fh and fw:
        out[fh:, :fw] = _block_mean(img[fh * k :, : fw * k], k)
    return out


def warp(src: np.ndarray, a, b, tx, ty, out_w: int, out_h: int) -> np.ndarray:
    """Bilinear warp where output pixel centre p maps to source point
    [a -b; b a] p + t (pixel centres at +0.5, as the Rust warp); border 0."""
    a, b, tx, ty = float(a), float(b), float(tx), float(ty)
    m = np.array(
        [
            [a, -b, tx + 0.5 * (a - b) - 0.5],
            [b, a, ty + 0.5 * (a + b) - 0.5],
        ],
        dtype=np.float64,
    )
    return cv2.warpAffine(
        src,
        m,
        (out_w, out_h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


# ----------------------------------------------------------------------------
# Detection (mirrors core/src/detect.rs)


class Detector:
    def __init__(self, session: ort.InferenceSession, config: DetectorConfig):
        self.session = session
        self.config = config
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
            self.fixed_input = (shape[3], shape[2])  # (w, h)
        else:
            self.fixed_input = None
        names = [o.name for o in session.get_outputs()]
        wanted = [f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES]
        # By name when the file names them as MODELS.md says, else by order.
        self.output_names = wanted if all(n in names for n in wanted) else names
        if len(self.output_names) != 12:
            raise ValueError(f"detector has {len(names)} outputs, expected 12")

    def input_geometry(self, width: int, height: int):
        """(in_w, in_h, scale), in float32 arithmetic like the Rust code."""
        w, h = F32(max(width, 1)), F32(max(height, 1))
        if self.fixed_input is not None:
            fw, fh = self.fixed_input
            return fw, fh, min(F32(fw) / w, F32(fh) / h)
        c = self.config
        step = F32(c.shape_step_px)
        scale = min(F32(c.input_long_side_px) / max(w, h), F32(c.max_upscale))

        def side(v):
            return int(max(F32(math.ceil(F32(v * scale) / step)) * step, F32(32.0)))

        return side(w), side(h), F32(scale)

    def letterbox(self, img: np.ndarray, scale, in_w: int, in_h: int) -> np.ndarray:
        k = prefilter_factor(scale)
        if k > 1:
            img = box_downscale(img, k)
            residual = F32(scale * F32(k))
        else:
            residual = F32(scale)
        h, w = img.shape[:2]
        used_w = min(rust_round(F32(F32(w) * residual)), in_w)
        used_h = min(rust_round(F32(F32(h) * residual)), in_h)
        tensor = np.zeros((1, 3, in_h, in_w), dtype=F32)
        if used_w > 0 and used_h > 0:
            inv = F32(F32(1.0) / residual)
            region = warp(img, inv, 0.0, 0.0, 0.0, used_w, used_h)  # RGB uint8
            # BGR planes.
            tensor[0, :, :used_h, :used_w] = region[:, :, ::-1].transpose(2, 0, 1)
        return tensor

    def detect(self, img: np.ndarray) -> list[Face]:
        height, width = img.shape[:2]
        in_w, in_h, scale = self.input_geometry(width, height)
        tensor = self.letterbox(img, scale, in_w, in_h)
        outs = self.session.run(self.output_names, {self.input_name: tensor})
        boxes, landmarks, scores = self.decode(outs, in_w, in_h)
        keep = nms(boxes, scores, self.config.nms_iou_threshold, self.config.top_k)
        faces = []
        for i in keep:
            x, y, bw, bh = (boxes[i] / scale).astype(F32)
            faces.append(
                Face(
                    box=clip_box(x, y, bw, bh, width, height),
                    score=float(scores[i]),
                    landmarks=(landmarks[i] / scale).astype(F32),
                )
            )
        return faces

    def decode(self, outs, in_w: int, in_h: int):
        thr = F32(self.config.score_threshold)
        all_boxes, all_kps, all_scores = [], [], []
        for level, stride in enumerate(STRIDES):
            cols, rows = in_w // stride, in_h // stride
            cells = cols * rows
            cls = np.asarray(outs[level], dtype=F32).reshape(-1)
            obj = np.asarray(outs[3 + level], dtype=F32).reshape(-1)
            bbox = np.asarray(outs[6 + level], dtype=F32).reshape(-1, 4)
            kps = np.asarray(outs[9 + level], dtype=F32).reshape(-1, 10)
            if not (cls.size == obj.size == bbox.shape[0] == kps.shape[0] == cells):
                raise ValueError(f"stride {stride}: output sizes do not match {cells} cells")
            score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1)).astype(F32)
            idx = np.nonzero(score >= thr)[0]
            if idx.size == 0:
                continue
            s = F32(stride)
            r = (idx // cols).astype(F32)
            c = (idx % cols).astype(F32)
            b = bbox[idx]
            cx, cy = (c + b[:, 0]) * s, (r + b[:, 1]) * s
            with np.errstate(over="ignore"):
                w, h = np.exp(b[:, 2]) * s, np.exp(b[:, 3]) * s
            finite = np.isfinite(w) & np.isfinite(h)
            k = kps[idx]
            lx = (k[:, 0::2] + c[:, None]) * s
            ly = (k[:, 1::2] + r[:, None]) * s
            all_boxes.append(np.stack([cx - w / F32(2), cy - h / F32(2), w, h], axis=1)[finite])
            all_kps.append(np.stack([lx, ly], axis=2)[finite])
            all_scores.append(score[idx][finite])
        if not all_scores:
            return np.zeros((0, 4), F32), np.zeros((0, 5, 2), F32), np.zeros((0,), F32)
        return (
            np.concatenate(all_boxes).astype(F32),
            np.concatenate(all_kps).astype(F32),
            np.concatenate(all_scores).astype(F32),
        )


def clip_box(x, y, w, h, width: int, height: int) -> np.ndarray:
    fw, fh = F32(width), F32(height)
    left, top = np.clip(x, 0, fw), np.clip(y, 0, fh)
    right, bottom = np.clip(x + w, 0, fw), np.clip(y + h, 0, fh)
    return np.array([left, top, right - left, bottom - top], dtype=F32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, top_k: int) -> list[int]:
    """Greedy NMS, highest score first (stable), as OpenCV's NMSBoxes."""
    order = np.argsort(-scores, kind="stable")[:top_k]
    kept: list[int] = []
    area = np.maximum(boxes[:, 2], 0) * np.maximum(boxes[:, 3], 0)
    for i in order:
        ok = True
        for j in kept:
            left = max(boxes[i, 0], boxes[j, 0])
            top = max(boxes[i, 1], boxes[j, 1])
            right = min(boxes[i, 0] + boxes[i, 2], boxes[j, 0] + boxes[j, 2])
            bottom = min(boxes[i, 1] + boxes[i, 3], boxes[j, 1] + boxes[j, 3])
            inter = max(right - left, 0) * max(bottom - top, 0)
            union = area[i] + area[j] - inter
            if union > 0 and inter / union > iou:
                ok = False
                break
        if ok:
            kept.append(int(i))
    return kept


# ----------------------------------------------------------------------------
# Alignment (mirrors core/src/align.rs and geometry.rs)


def umeyama(src: np.ndarray, dst: np.ndarray):
    """Least-squares similarity src -> dst as (a, b, tx, ty), or None."""
    src = src.astype(np.float64)
    dst = dst.astype(np.float64)
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    u, v = src - ms, dst - md
    norm = float((u * u).sum())
    if norm < 1e-12:
        return None
    dot = float((u * v).sum())
    cross = float((u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]).sum())
    a, b = dot / norm, cross / norm
    tx = md[0] - (a * ms[0] - b * ms[1])
    ty = md[1] - (b * ms[0] + a * ms[1])
    return a, b, tx, ty


def invert(a, b, tx, ty):
    det = a * a + b * b
    if not math.isfinite(det) or det < 1e-12:
        return None
    ia, ib = a / det, -b / det
    return ia, ib, -(ia * tx - ib * ty), -(ib * tx + ia * ty)


def extract_chip(img: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The [1, 3, 150, 150] RGB float32 chip (black when degenerate)."""
    chip = np.zeros((1, 3, CHIP_SIZE, CHIP_SIZE), dtype=F32)
    to_chip = umeyama(landmarks, TEMPLATE_CHIP)
    if to_chip is None:
        return chip
    inv = invert(*to_chip)
    if inv is None:
        return chip
    a, b, tx, ty = inv
    k = prefilter_factor(math.hypot(to_chip[0], to_chip[1]))
    # Only the part of the image the chip samples (same footprint as Rust,
    # snapped to the box-filter grid), so the float conversion stays small.
    h, w = img.shape[:2]
    s = float(CHIP_SIZE)
    xs = [a * x - b * y + tx for x, y in ((0, 0), (s, 0), (0, s), (s, s))]
    ys = [b * x + a * y + ty for x, y in ((0, 0), (s, 0), (0, s), (s, s))]
    margin = 2.0 * k
    x0 = min(int(max(min(xs) - margin, 0.0)) // k * k, w)
    y0 = min(int(max(min(ys) - margin, 0.0)) // k * k, h)
    x1 = min(int(math.ceil(max(max(xs) + margin, 0.0))), w)
    y1 = min(int(math.ceil(max(max(ys) + margin, 0.0))), h)
    if x1 <= x0 or y1 <= y0:
        return chip
    region = img[y0:y1, x0:x1]
    if k > 1:
        region = box_downscale(region, k)
    # chip -> region coordinates: (chip_to_image(p) - origin) / k
    region_f = region.astype(F32)
    out = warp(region_f, a / k, b / k, (tx - x0) / k, (ty - y0) / k, CHIP_SIZE, CHIP_SIZE)
    chip[0] = out.transpose(2, 0, 1)
    return chip


# ----------------------------------------------------------------------------
# Driver


@dataclass
class ImageResult:
    faces: list[Face]
    embeddings: list[np.ndarray]
    timings: dict[str, float]


class Pipeline:
    def __init__(self, detector: Detector, recognizer: ort.InferenceSession):
        self.detector = detector
        self.recognizer = recognizer
        self.rec_input = recognizer.get_inputs()[0].name
        self.gallery = np.zeros((0, 128), dtype=F32)

    def process(self, data: bytes) -> ImageResult:
        return self.process_with(lambda: decode_image(data))

    def process_with(self, decode) -> ImageResult:
        """The pipeline on the RGB image `decode()` returns, that call timed
        as the decode stage."""
        t = {}
        t0 = time.perf_counter()
        img = decode()
        t1 = time.perf_counter()
        faces = self.detector.detect(img)
        t2 = time.perf_counter()
        chips = [extract_chip(img, f.landmarks) for f in faces]
        t3 = time.perf_counter()
        embeddings = [
            np.asarray(self.recognizer.run(None, {self.rec_input: c})[0], dtype=F32).reshape(-1)
            for c in chips
        ]
        t4 = time.perf_counter()
        if embeddings and len(self.gallery):
            q = np.stack(embeddings)
            d = np.sqrt(((q[:, None, :] - self.gallery[None, :, :]) ** 2).sum(axis=2))
            _best = d.argmin(axis=1), d.min(axis=1)
        t5 = time.perf_counter()
        for name, (a, b) in zip(STAGES, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5))):
            t[name] = (b - a) * 1000.0
        return ImageResult(faces, embeddings, t)


def session(path: Path, threads: int, spinning: bool) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        # With spinning (ORT's default) the intra-op workers busy-wait after
        # every run and take the CPU from decode/resize between runs: on a
        # 2-core machine 2 threads were then slower than 1.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def image_list(args) -> list[tuple[str, Path]]:
    """(label, file) pairs: label is the path as listed."""
    out: list[tuple[str, Path]] = []
    seen = set()
    if args.images:
        base = Path.cwd()
        for line in Path(args.images).read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line not in seen:
                seen.add(line)
                out.append((line, base / line))
    else:
        data = Path(args.data)
        for name in ("labels_recognition.csv", "labels_detection.csv"):
            with open(data / name, newline="") as f:
                for row in csv.DictReader(f):
                    p = (row.get("path") or "").strip()
                    if p and p not in seen:
                        seen.add(p)
                        out.append((p, data / p))
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def face_json(face: Face, embedding: np.ndarray) -> dict:
    return {
        "box": [round(float(v), 3) for v in face.box],
        "score": round(face.score, 6),
        "landmarks": [[round(float(x), 3), round(float(y), 3)] for x, y in face.landmarks],
        "embedding": [float(v) for v in embedding],
    }


def largest_face_embedding(pipeline: "Pipeline", path: Path) -> np.ndarray | None:
    r = pipeline.process(path.read_bytes())
    if not r.faces:
        return None
    largest = max(range(len(r.faces)), key=lambda i: float(r.faces[i].box[2] * r.faces[i].box[3]))
    return r.embeddings[largest]


def name_face(embedding: np.ndarray, gallery: dict[str, np.ndarray]) -> str | None:
    """face-core's open-set rule: the nearest person (by their nearest
    photo) is named when under the threshold and clear of the second."""
    best = sorted(
        (float(np.sqrt(((e - embedding) ** 2).sum(axis=1)).min()), person) for person, e in gallery.items()
    )
    if not best or best[0][0] >= THRESHOLD_L2:
        return None
    if len(best) > 1 and best[1][0] - best[0][0] < MIN_MARGIN_L2:
        return None
    return best[0][1]


def scan_video(pipeline: "Pipeline", video: Path, gallery_file: Path) -> dict:
    """Every frame: decode, detect, align, embed every face, name it."""
    gallery: dict[str, np.ndarray] = {}
    for person, photos in json.loads(gallery_file.read_text()).items():
        found = [e for e in (largest_face_embedding(pipeline, Path(p)) for p in photos) if e is not None]
        if found:
            gallery[person] = np.stack(found)
    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    if not capture.isOpened():
        raise ValueError(f"OpenCV cannot open {video}")

    def next_frame() -> np.ndarray:
        ok, bgr = capture.read()
        if not ok:
            raise EOFError
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    frames = faces = 0
    people: dict[str, int] = {}
    stage_ms = {s: 0.0 for s in STAGES}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while True:
        try:
            r = pipeline.process_with(next_frame)
        except EOFError:
            break
        named = time.perf_counter()
        for e in r.embeddings:
            person = name_face(e, gallery)
            if person is not None:
                people[person] = people.get(person, 0) + 1
        r.timings["match"] += (time.perf_counter() - named) * 1000.0
        for s in STAGES:
            stage_ms[s] += r.timings[s]
        frames += 1
        faces += len(r.faces)
    cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    if frames == 0:
        raise ValueError(f"no frame decoded from {video}")
    return {
        "runtime": f"onnxruntime {ort.__version__}",
        "video": str(video),
        "frames": frames,
        "width": width,
        "height": height,
        "faces": faces,
        "people_enrolled": len(gallery),
        "frames_named": dict(sorted(people.items())),
        "cpu_s": round(cpu_s, 3),
        "wall_s": round(wall_s, 3),
        "per_frame_cpu_ms": round(cpu_s * 1000.0 / frames, 3),
        "frames_per_s_per_core": round(frames / cpu_s, 3) if cpu_s > 0 else 0.0,
        "stages_per_frame_ms": {s: round(v / frames, 3) for s, v in stage_ms.items()},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", required=True, help="folder with the .onnx files")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="text file, one image path per line (relative to the cwd)")
    src.add_argument("--data", help="data folder with labels_recognition.csv / labels_detection.csv")
    src.add_argument("--cold-start", metavar="IMAGE", help="one image, then exit (bench-lambda)")
    src.add_argument("--video", metavar="FILE", help="every-frame scan of FILE (bench-scan); needs --gallery")
    p.add_argument("--gallery", metavar="FILE.json", help='--video: {"person": ["photo", ...]} to name faces by')
    p.add_argument("--detector", default="yunet_s_dynamic.onnx")
    p.add_argument("--recognizer", default="dlib_face_recognition_resnet_model_v1.onnx")
    p.add_argument("--repeat", type=int, default=3, help="timed passes after one warm-up pass")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument(
        "--ort-spinning",
        action="store_true",
        help="keep onnxruntime's default busy-waiting intra-op threads (off by default)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON only")
    p.add_argument("--dump-embeddings", metavar="OUT.json", help="write every face of the warm-up pass")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.threads < 1:
        p.error("--repeat and --threads must be >= 1")
    if args.video and not args.gallery:
        p.error("--video needs --gallery")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr)

    # Pre-processing stays on one thread, as in the Rust pipeline (OpenCV's
    # own thread pool made the small resizes slower here, not faster).
    cv2.setNumThreads(1)
    models = Path(args.models)
    t0 = time.perf_counter()
    det_session = session(models / args.detector, args.threads, args.ort_spinning)
    rec_session = session(models / args.recognizer, args.threads, args.ort_spinning)
    model_load_ms = (time.perf_counter() - t0) * 1000.0
    pipeline = Pipeline(Detector(det_session, DetectorConfig()), rec_session)
    if args.cold_start:
        r = pipeline.process(Path(args.cold_start).read_bytes())
        print(json.dumps({"faces": [face_json(f, e) for f, e in zip(r.faces, r.embeddings)]}))
        return 0
    if args.video:
        result = scan_video(pipeline, Path(args.video), Path(args.gallery))
        result["model_load_ms"] = round(model_load_ms, 3)
        if args.json:
            print(json.dumps(result))
        else:
            print(json.dumps(result, indent=2))
        return 0

    images = image_list(args)
    blobs: list[tuple[str, bytes]] = []
    skipped: list[dict] = []
    for label, path in images:
        try:
            blobs.append((label, path.read_bytes()))
        except OSError as e:
            skipped.append({"path": label, "error": f"read: {e}"})
            log(f"skip {label}: {e}")

    # Warm-up pass: counts faces, builds the gallery, feeds the dump.
    good: list[tuple[str, bytes]] = []
    dump: dict[str, list] = {}
    counts: dict[str, int] = {}
    gallery: list[np.ndarray] = []
    for i, (label, data) in enumerate(blobs):
        try:
            r = pipeline.process(data)
        except Exception as e:  # noqa: BLE001 - a bad image must not stop the run
            skipped.append({"path": label, "error": f"{type(e).__name__}: {e}"})
            log(f"skip {label}: {type(e).__name__}: {e}")
            continue
        good.append((label, data))
        counts[label] = len(r.faces)
        if len(good) <= GALLERY_IMAGES:
            gallery.extend(r.embeddings)
        if args.dump_embeddings:
            dump[label] = [face_json(f, e) for f, e in zip(r.faces, r.embeddings)]
    pipeline.gallery = np.stack(gallery) if gallery else np.zeros((0, 128), dtype=F32)

    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    end_to_end: list[float] = []
    wall = 0.0
    processed = 0
    for _ in range(args.repeat):
        start = time.perf_counter()
        for label, data in good:
            r = pipeline.process(data)
            for s in STAGES:
                per_stage[s].append(r.timings[s])
            end_to_end.append(sum(r.timings.values()))
            processed += 1
        wall += time.perf_counter() - start

    result = {
        "runtime": f"onnxruntime {ort.__version__}",
        "threads": args.threads,
        "images": len(good),
        "faces": sum(counts.values()),
        "stages_median_ms": {s: round(median(v), 4) for s, v in per_stage.items()},
        "end_to_end_median_ms": round(median(end_to_end), 4),
        "images_per_s": round(processed / wall, 4) if wall > 0 else 0.0,
        "model_load_ms": round(model_load_ms, 3),
        "repeat": args.repeat,
        "detector": args.detector,
        "ort_spinning": args.ort_spinning,
        "face_counts": counts,
        "skipped": skipped,
    }
    if args.dump_embeddings:
        with open(args.dump_embeddings, "w") as f:
            json.dump(dump, f)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['runtime']}, {args.threads} thread(s), detector {args.detector}")
        print(f"images {len(good)} ({len(skipped)} skipped), faces {result['faces']}, repeat {args.repeat}")
        for s in STAGES:
            print(f"  {s:<8} {result['stages_median_ms'][s]:9.3f} ms")
        print(f"  {'total':<8} {result['end_to_end_median_ms']:9.3f} ms (median end-to-end per image)")
        print(f"images/s {result['images_per_s']:.2f}, model load {model_load_ms:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
