"""Character recognition: easyocr's CRNN recogniser, called directly for per-character
probabilities instead of the single string score that ``Reader.recognize`` returns.

``PlateRecognizer`` wraps an already loaded ``easyocr.Reader`` (its ``recognizer`` model and
``converter``). ``recognize`` takes grey crops and returns, per crop, the greedy CTC decoding
as a list of ``Segment`` objects, each with a probability for every allowed character.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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

    @property
    def text(self) -> str:
        return "".join(s.best for s in self.segments)

    @property
    def char_confidences(self) -> tuple[float, ...]:
        return tuple(s.confidence for s in self.segments)


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

    def _prepare(self, grey: GreyImage, width: int) -> FloatArray:
        h, w = grey.shape[:2]
        new_w = max(1, min(width, int(np.ceil(MODEL_HEIGHT * w / max(h, 1)))))
        import os
        interp = int(os.environ.get("PR_INTERP", cv2.INTER_CUBIC))
        resized = cv2.resize(grey, (new_w, MODEL_HEIGHT), interpolation=interp)
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
        probs = probs[:steps]
        allowed = probs[:, self._indices]
        blank = probs[:, 0]
        # like easyocr's allowlist: characters outside it are dropped and the rest renormalised
        kept = blank + allowed.sum(axis=1)
        other = 1.0 - kept
        allowed = allowed / np.maximum(kept, 1e-9)[:, None]
        blank = blank / np.maximum(kept, 1e-9)
        is_char = allowed.max(axis=1) > blank
        arg = allowed.argmax(axis=1)
        segments: list[Segment] = []
        blank_scores: list[float] = []
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
            blank_scores.append(float(other[start : t + 1].mean()))
            t += 1
        return LineRead(tuple(segments), float(np.mean(blank_scores)) if blank_scores else 1.0)
