"""Character recognition: easyocr's CRNN recogniser, called directly for per-character
probabilities instead of the single string score that ``Reader.recognize`` returns.

``PlateRecognizer`` wraps an already loaded ``easyocr.Reader`` (its ``recognizer`` model and
``converter``). ``recognize`` takes grey crops and returns, per crop, the greedy CTC decoding
as a list of ``Segment`` objects, each with a probability for every allowed character.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MODEL_HEIGHT = 64

GreyImage = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Segment:
    """One decoded character: the CTC frames that voted for it, merged."""

    probs: tuple[float, ...]
    """Probability of each character of ``ALPHABET`` (sums to 1)."""

    @property
    def best(self) -> str:
        return ALPHABET[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float:
        return float(max(self.probs))

    def prob(self, char: str) -> float:
        return self.probs[ALPHABET.index(char)]


@dataclass(frozen=True)
class LineRead:
    segments: tuple[Segment, ...]
    other_score: float
    """Mean probability of characters outside the allowlist where a character was decoded."""
    separators: tuple[float, ...] = ()
    """Per segment: how surely a separator (hyphen, space, emblem) comes just before it."""
    hyphen: float | None = None
    """How surely a hyphen is printed anywhere on the line (the most probable ``-`` of any
    step); ``None`` for a recogniser without a hyphen class."""
    hyphens: tuple[float, ...] = ()
    """Per segment: how surely a hyphen (not a space or an emblem) comes just before it (empty
    for a recogniser without a hyphen class)."""

    @property
    def text(self) -> str:
        return "".join(s.best for s in self.segments)

    @property
    def char_confidences(self) -> tuple[float, ...]:
        return tuple(s.confidence for s in self.segments)


def stretch_contrast(grey: GreyImage) -> GreyImage:
    """Map the 2nd..98th percentile of the crop to 0..255."""
    lo, hi = np.percentile(grey, (2, 98))
    scaled = (grey.astype(np.float32) - float(lo)) * (255.0 / max(float(hi - lo), 1.0))
    return np.asarray(np.clip(scaled, 0, 255), dtype=np.uint8)


def decode_ctc(
    probs: FloatArray,
    indices: Sequence[int],
    fold: Sequence[tuple[int, int]],
    separators: Sequence[int],
    hyphen: int | None = None,
) -> LineRead:
    """Greedy CTC decoding restricted to ``ALPHABET``, keeping per-position distributions.

    ``probs``: T x classes softmax output, class 0 the CTC blank. ``indices``: the class of each
    ``ALPHABET`` character; ``fold``: (class, ALPHABET index) pairs whose probability is added to
    that character (lower case); ``separators``: classes that count as blank (hyphens, spaces);
    ``hyphen``: the hyphen's class, whose probability is kept per gap and for the line.
    """
    allowed = probs[:, indices].copy()
    for src, dst in fold:
        allowed[:, dst] += probs[:, src]
    # anything printed that is not a plate character: hyphen, space, an emblem read as ":"
    sep_prob = np.clip(1.0 - probs[:, 0] - allowed.sum(axis=1), 0.0, 1.0)
    blank = probs[:, 0] + probs[:, list(separators)].sum(axis=1)
    # like easyocr's allowlist: other characters are dropped and the rest renormalised
    kept = blank + allowed.sum(axis=1)
    other = 1.0 - kept
    allowed = allowed / np.maximum(kept, 1e-9)[:, None]
    blank = blank / np.maximum(kept, 1e-9)
    is_char = allowed.max(axis=1) > blank
    arg = allowed.argmax(axis=1)
    segments: list[Segment] = []
    other_scores: list[float] = []
    seps: list[float] = []
    hyphens: list[float] = []
    last_end = -1
    t = 0
    n = probs.shape[0]
    while t < n:
        if not is_char[t]:
            t += 1
            continue
        start = t
        while t + 1 < n and is_char[t + 1] and arg[t + 1] == arg[start]:
            t += 1
        chunk = allowed[start : t + 1]
        dist = chunk.sum(axis=0)
        dist = dist / max(float(dist.sum()), 1e-9)
        segments.append(Segment(tuple(float(x) for x in dist)))
        other_scores.append(float(other[start : t + 1].mean()))
        between = sep_prob[last_end + 1 : start]
        seps.append(float(between.max()) if last_end >= 0 and between.size else 0.0)
        if hyphen is not None:
            gap = probs[last_end + 1 : start, hyphen]
            hyphens.append(float(gap.max()) if last_end >= 0 and gap.size else 0.0)
        last_end = t
        t += 1
    other_score = float(np.mean(other_scores)) if other_scores else 1.0
    if hyphen is None:
        return LineRead(tuple(segments), other_score, tuple(seps))
    line_hyphen = float(probs[:, hyphen].max()) if n else 0.0
    return LineRead(tuple(segments), other_score, tuple(seps), line_hyphen, tuple(hyphens))


class PlateRecognizer:
    """Runs the recogniser of an ``easyocr.Reader`` on grey plate crops."""

    def __init__(self, easyocr_reader: Any) -> None:
        import torch

        self._torch = torch
        self._model = easyocr_reader.recognizer
        self._model.eval()
        characters: list[str] = list(easyocr_reader.converter.character)
        # index 0 is the CTC blank; map our alphabet to model indices
        self._indices = [characters.index(c) for c in ALPHABET]
        # plates have no lower case: fold it into the upper case (g and q look like 9)
        fold = {c: c.upper() for c in "abcdefhijkmnoprstuvwxyz"} | {"g": "9", "q": "9", "l": "I"}
        self._fold = [(characters.index(lo), ALPHABET.index(up)) for lo, up in fold.items()]
        self._separators = [characters.index(c) for c in "-.:|/_~" if c in characters]

    def _prepare(self, grey: GreyImage, width: int) -> FloatArray:
        h, w = grey.shape[:2]
        new_w = max(1, min(width, int(np.ceil(MODEL_HEIGHT * w / max(h, 1)))))
        grey = stretch_contrast(grey)
        resized = cv2.resize(grey, (new_w, MODEL_HEIGHT), interpolation=cv2.INTER_LANCZOS4)
        out = np.empty((MODEL_HEIGHT, width), dtype=np.float32)
        scaled = resized.astype(np.float32) / 127.5 - 1.0
        out[:, :new_w] = scaled
        if new_w < width:
            out[:, new_w:] = scaled[:, -1:]
        return out

    def recognize(self, crops: Sequence[GreyImage]) -> list[LineRead]:
        """One crop at a time: batching would pad every crop to the widest one."""
        return [self._recognize_batch([c])[0] for c in crops]

    def _recognize_batch(self, crops: Sequence[GreyImage]) -> list[LineRead]:
        if not crops:
            return []
        widths = [int(np.ceil(MODEL_HEIGHT * c.shape[1] / max(c.shape[0], 1))) for c in crops]
        # like easyocr: pad to a whole number of model heights plus some, so that the CTC has
        # frames after the last character to emit it in
        width = (int(np.ceil(max(widths) / MODEL_HEIGHT)) + 1) * MODEL_HEIGHT
        batch = np.stack([self._prepare(c, width) for c in crops])[:, None, :, :]
        torch = self._torch
        with torch.inference_mode():
            tensor = torch.from_numpy(batch)
            dummy = torch.zeros((len(crops), 1), dtype=torch.long)
            logits = self._model(tensor, dummy)
            probs_all = torch.softmax(logits, dim=2).numpy()
        return [
            self._decode(p, min(w + MODEL_HEIGHT, width), width)
            for p, w in zip(probs_all, widths, strict=True)
        ]

    def _decode(self, probs: FloatArray, real_width: int, padded_width: int) -> LineRead:
        # CTC frames beyond the real image width look at padding only
        steps = max(1, int(np.ceil(probs.shape[0] * real_width / max(padded_width, 1))))
        return decode_ctc(probs[:steps], self._indices, self._fold, self._separators)


PPOCR_HEIGHT = 40
"""Input height for PP-OCR (trained at 48): 40 measured as accurate on plates and 30% faster."""
PPOCR_PACKAGE = "rapidocr_onnxruntime"
PPOCR_MODEL = "models/ch_PP-OCRv4_rec_infer.onnx"


def find_ppocr_model() -> Path | None:
    """The PP-OCRv4 recogniser shipped in the rapidocr-onnxruntime wheel, found without
    importing that package (it is installed ``--no-deps``: its opencv-python pin would clash
    with opencv-python-headless)."""
    spec = importlib.util.find_spec(PPOCR_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / PPOCR_MODEL
        if path.is_file():
            return path
    return None


def _return_freed_memory() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``): the model's
    protobuf, read and rewritten once, leaves ~65 MiB free but held by the process otherwise
    (a city runs one reader per core). Nothing where the C library has no such call."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is not None:
        trim(0)


def load_ppocr_model(model_path: Path) -> bytes:
    """The recogniser's ONNX model with its elementwise steps folded into its convolutions
    (:func:`plate_reader.ppocr_graph.simplify`: the same outputs to float rounding, about a
    quarter less CPU), serialised for onnxruntime."""
    import onnx

    from plate_reader.ppocr_graph import simplify

    model = onnx.load(str(model_path))
    simplify(model)
    return bytes(model.SerializeToString())


class PpOcrRecognizer:
    """PP-OCRv4's text recogniser (ONNX, run with onnxruntime) on plate crops.

    About twice as fast as easyocr's CRNN on one core and far better on real plates; its CTC
    output gives per-position probabilities the same way."""

    def __init__(self, model_path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            load_ppocr_model(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        _return_freed_memory()
        self._input = self._session.get_inputs()[0].name
        meta = self._session.get_modelmeta().custom_metadata_map
        characters = ["[blank]", *meta["character"].splitlines(), " "]
        index = {c: i for i, c in enumerate(characters)}
        self._n_classes = len(characters)
        self._indices = [index[c] for c in ALPHABET]
        fold = {c: c.upper() for c in "abcdefhijkmnoprstuvwxyz"} | {"g": "9", "q": "9", "l": "I"}
        self._fold = [(index[lo], ALPHABET.index(up)) for lo, up in fold.items() if lo in index]
        seps = "-.:|/_~·—–"
        self._separators = [index[c] for c in seps if c in index] + [index[" "]]
        self._hyphen = index.get("-")

    def _prepare(self, crop: GreyImage, width: int) -> FloatArray:
        h, w = crop.shape[:2]
        new_w = max(1, min(width, int(np.ceil(PPOCR_HEIGHT * w / max(h, 1)))))
        crop = stretch_contrast(crop)
        resized = cv2.resize(crop, (new_w, PPOCR_HEIGHT), interpolation=cv2.INTER_LINEAR)
        out = np.zeros((3, PPOCR_HEIGHT, width), dtype=np.float32)
        scaled = resized.astype(np.float32) / 127.5 - 1.0
        if scaled.ndim == 2:
            out[:, :, :new_w] = scaled[None, :, :]
        else:
            out[:, :, :new_w] = scaled.transpose(2, 0, 1)
        return out

    def recognize(self, crops: Sequence[GreyImage]) -> list[LineRead]:
        return [self._recognize_one(c) for c in crops]

    def _recognize_one(self, crop: GreyImage) -> LineRead:
        ratio = crop.shape[1] / max(crop.shape[0], 1)
        width = max(int(np.ceil(PPOCR_HEIGHT * ratio / 8.0)) * 8 + 16, 64)
        batch = self._prepare(crop, width)[None]
        (probs,) = self._session.run(None, {self._input: batch})
        return decode_ctc(np.asarray(probs[0], dtype=np.float32), self._indices, self._fold,
                          self._separators, self._hyphen)  # fmt: skip
