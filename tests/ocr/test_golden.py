"""Golden images (rendered by fixtures/plates/render.py) through the real readers: the default
ensemble (easyocr and PP-OCR voting), and each recogniser alone."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lez.app.compose import ocr_plate_reader
from lez.core.events import ESTABLISHED_COUNTRY_SOURCES
from plate_reader.base import PlateRead
from plate_reader.grammar import fit
from plate_reader.ocr import find_ppocr_model
from plate_reader.reader import OcrPlateReader, decode_jpeg
from plate_reader.voting import vote

pytestmark = pytest.mark.ocr

PLATES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "plates"
EXPECTED: dict[str, list[str] | str] = json.loads((PLATES_DIR / "expected.json").read_text())
READABLE = sorted(name for name, plates in EXPECTED.items() if plates != "corrupt")


@pytest.fixture(scope="module", name="reader", params=["ensemble", "easyocr", "ppocr"])
def reader_fixture(request: pytest.FixtureRequest) -> OcrPlateReader:
    engine = request.param
    if engine in ("ppocr", "ensemble") and find_ppocr_model() is None:
        pytest.skip("PP-OCR model not installed (rapidocr-onnxruntime --no-deps)")
    reader = ocr_plate_reader(threads=1, engine=engine)
    assert reader.engine == engine
    return reader


def _read(reader: OcrPlateReader, name: str) -> list[PlateRead]:
    return reader.read(decode_jpeg((PLATES_DIR / name).read_bytes()))


@pytest.mark.parametrize("name", READABLE)
def test_golden_plates(reader: OcrPlateReader, name: str) -> None:
    reads = _read(reader, name)
    confident = {r.normalized for r in reads if r.confidence >= 0.5}
    assert confident == set(EXPECTED[name])


@pytest.mark.parametrize("name", READABLE)
def test_read_invariants(reader: OcrPlateReader, name: str) -> None:
    image = decode_jpeg((PLATES_DIR / name).read_bytes())
    reads = reader.read(image)
    assert [r.confidence for r in reads] == sorted((r.confidence for r in reads), reverse=True)
    for r in reads:
        assert 0.0 <= r.confidence <= 1.0
        assert r.bbox is not None
        x, y, w, h = r.bbox
        assert 0 <= x < x + w <= image.shape[1] and 0 <= y < y + h <= image.shape[0]
        if r.format_valid:
            assert len(r.char_confidences) == len(r.normalized)


def test_belgian_plate_details(reader: OcrPlateReader) -> None:
    best = _read(reader, "be_red_large.jpg")[0]
    assert best.text == "1-ABC-123"
    assert best.country == "BE"
    assert best.format_valid
    assert best.confidence >= 0.9


def test_two_plates_in_one_frame(reader: OcrPlateReader) -> None:
    reads = {r.normalized: r for r in _read(reader, "nl_fr_two_plates.jpg")}
    assert reads["CK252M"].text == "CK-252-M" and reads["CK252M"].country == "NL"
    assert reads["HC362PC"].text == "HC-362-PC" and reads["HC362PC"].country == "FR"


def test_country_from_the_plate(reader: OcrPlateReader) -> None:
    """Red characters establish BE; the band's code points to SK among the countries whose
    formats fit ``BB794CF`` (FR, IT, ...). On this frame alone the one hyphen the recogniser
    reads (``BB-794CF``) rules out FR's two and IT's none, so the frame's colours choose SK;
    the passage needs two frames for that."""
    be = _read(reader, "be_red_large.jpg")[0]
    assert (be.country, be.country_source) == ("BE", "colour")
    sk = _read(reader, "sk_band.jpg")[0]
    assert sk.normalized == "BB794CF"
    assert sk.evidence.band_code == "SK"
    if sk.evidence.ocr_hyphen is None:  # easyocr alone reads no hyphens: the code chooses
        assert (sk.country, sk.country_source) == ("SK", "format")
        assert "FR" in sk.country_candidates
    else:
        assert sk.country == "SK" and {"FR", "IT"} <= set(sk.ruled_out)
        assert sk.evidence.ocr_hyphens[2] >= 0.5 and sk.evidence.ocr_hyphens[5] < 0.15
    # one frame of it is no passage's country: voting asks for the layout on two frames
    passage = vote([[sk]])
    assert passage.country_source not in ESTABLISHED_COUNTRY_SOURCES
    black = _read(reader, "be_black.jpg")[0]
    # black characters are not a Belgian plate's colours: not established
    assert black.country == "BE" and black.country_source == "format"


def test_bands_at_both_ends_and_hyphens_tell_france(reader: OcrPlateReader) -> None:
    """The band's code is blank, the text fits FR, SK, IT and more: the blue band at the
    right end rules out SK (and every country without one), the hyphens of ``DW-517-CW`` the
    Italian and Albanian ``DW 517 CW``: FR is established by its colours and layout."""
    fr = _read(reader, "fr_two_bands.jpg")[0]
    assert fr.normalized == "DW517CW"
    assert fr.evidence.right_band == "blue" and fr.evidence.hyphens == (2, 5)
    assert (fr.country, fr.country_source, fr.country_candidates) == ("FR", "colour", ())
    assert {"SK", "IT"} <= set(fr.ruled_out)
    assert fr.confidence >= 0.9


def test_blank_frame_has_no_plate(reader: OcrPlateReader) -> None:
    assert all(r.confidence < 0.5 for r in _read(reader, "blank.jpg"))


def test_read_batch_matches_read(reader: OcrPlateReader) -> None:
    images = [decode_jpeg((PLATES_DIR / n).read_bytes()) for n in READABLE[:2]]
    batch = reader.read_batch(images)
    assert [[r.normalized for r in rs] for rs in batch] == [
        [r.normalized for r in reader.read(i)] for i in images
    ]


def test_corrupt_jpeg_is_refused() -> None:
    with pytest.raises(ValueError, match="truncated|corrupt"):
        decode_jpeg((PLATES_DIR / "corrupt.jpg").read_bytes())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"not a jpeg at all", "SOI"),
        (b"\xff\xd8\xff\xe0garbage\xff\xd9", "corrupt"),
    ],
)
def test_decode_jpeg_reasons(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_jpeg(data)


def test_decode_jpeg_roundtrip() -> None:
    image = np.full((20, 30, 3), 128, dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    assert decode_jpeg(buf.tobytes()).shape == (20, 30, 3)


def test_default_reader_is_the_ensemble(monkeypatch: pytest.MonkeyPatch) -> None:
    """The composition root's reader runs easyocr with PP-OCR voting beside it; easyocr's
    model is loaded once, when the reader is built, never per frame."""
    if find_ppocr_model() is None:
        pytest.skip("PP-OCR model not installed (rapidocr-onnxruntime --no-deps)")
    import plate_reader.reader as reader_module

    loads: list[int] = []
    real_load = reader_module.load_easyocr

    def counting_load(threads: int, model_dir: str | None = None) -> object:
        loads.append(threads)
        return real_load(threads, model_dir)

    monkeypatch.setattr(reader_module, "load_easyocr", counting_load)
    reader = ocr_plate_reader(threads=1)
    assert reader.engine == "ensemble"
    assert loads == [1]
    best = _read(reader, "be_red_large.jpg")[0]
    assert best.normalized == "1ABC123" and best.confidence >= 0.9
    _read(reader, "nl_fr_two_plates.jpg")
    assert loads == [1]


def test_ensemble_disagreement_lowers_confidence() -> None:
    """Where easyocr reads a character otherwise than PP-OCR, the ensemble is less sure of the
    read than PP-OCR alone; where both agree it stays sure."""
    if find_ppocr_model() is None:
        pytest.skip("PP-OCR model not installed (rapidocr-onnxruntime --no-deps)")
    from plate_reader.grammar import EngineRead, ensemble_fit
    from plate_reader.ocr import PlateRecognizer, PpOcrRecognizer
    from plate_reader.reader import ENSEMBLE_FLOORS, ENSEMBLE_WEIGHTS, load_easyocr

    model = find_ppocr_model()
    assert model is not None
    pp = PpOcrRecognizer(model)
    easy = PlateRecognizer(load_easyocr(1))
    image = decode_jpeg((PLATES_DIR / "be_red_large.jpg").read_bytes())
    grey = np.ascontiguousarray(image[:, :, 1])
    # the plate's text line, found as the reader finds it
    from plate_reader.reader import find_regions

    region = find_regions(image, grey)[0]
    crop = region.crop(grey, 0)
    lp, le = pp.recognize([crop])[0], easy.recognize([crop])[0]
    pp_alone = fit([s.probs for s in lp.segments], separators=lp.separators)[0]

    def vote(easy_dists: list[tuple[float, ...]]) -> list[float]:
        cands = ensemble_fit(
            [
                EngineRead([s.probs for s in lp.segments], lp.separators,
                           ENSEMBLE_WEIGHTS["ppocr"], ENSEMBLE_FLOORS["ppocr"]),
                EngineRead(easy_dists, le.separators,
                           ENSEMBLE_WEIGHTS["easyocr"], ENSEMBLE_FLOORS["easyocr"]),
            ]
        )  # fmt: skip
        assert cands[0].normalized == "1ABC123"
        return list(cands[0].char_confidences)

    agree = vote([s.probs for s in le.segments])
    assert min(agree) > 0.9
    # easyocr reads the last digit as a 7: that character (only) loses confidence
    dists = [s.probs for s in le.segments]
    seven = tuple(1.0 if c == "7" else 0.0 for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    disagree = vote([*dists[:-1], seven])
    assert disagree[-1] < min(agree) - 0.2
    assert disagree[-1] < pp_alone.char_confidences[-1]
    assert disagree[:-1] == pytest.approx(agree[:-1])


def test_the_reader_bounds_numpy_blas_threads() -> None:
    """A reader built for one thread runs numpy's BLAS (the band code sight's matrix products)
    on one thread too: OpenBLAS starts one per core otherwise, each spinning while it waits,
    and a city runs one reader per core."""
    if find_ppocr_model() is None:
        pytest.skip("PP-OCR model not installed (rapidocr-onnxruntime --no-deps)")
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(2, user_api="blas")
    ocr_plate_reader(threads=1, engine="ppocr")
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)
