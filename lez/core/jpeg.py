"""A JPEG's declared dimensions, read from its header without decoding it.

A JPEG of a few hundred bytes can declare 32000 x 32000 pixels: decoding it costs gigabytes
and seconds (a decompression bomb, issue 22). The gateway refuses such a frame on upload and
the plate reader before it decodes one, by the width and height of the frame header (SOFn)
against a pixel budget (``LEZ_MAX_FRAME_PIXELS``).

The markers are walked as libjpeg walks them (bytes between segments skipped until the next
``FF``, fill bytes and stuffed ``FF 00`` skipped), so the frame header found here is the one
the decoder would use.
"""

from __future__ import annotations

from dataclasses import dataclass

from lez.core.errors import LezError

_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""Start-of-frame markers (baseline, progressive, lossless, arithmetic); not DHT, JPG, DAC."""
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_SOS, _EOI = 0xDA, 0xD9


class FrameTooLarge(LezError, ValueError):
    """A JPEG whose header declares more pixels than the budget (or no height at all); a
    ``ValueError`` too, as any bad value handed in."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Dimensions:
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _next_marker(data: bytes, i: int) -> tuple[int, int] | None:
    """(marker, index after it) of the first marker at or after ``i``; None at the end."""
    n = len(data)
    while i < n:
        while i < n and data[i] != 0xFF:
            i += 1
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            return None
        if data[i] != 0x00:  # FF 00 is a stuffed byte, not a marker
            return data[i], i + 1
        i += 1
    return None


def declared_dimensions(data: bytes) -> Dimensions | None:
    """The width and height the frame header declares; None when there is no frame header
    before the first scan (no decoder would decode such data either)."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while (found := _next_marker(data, i)) is not None:
        marker, i = found
        if marker in _STANDALONE:
            continue
        if marker in (_SOS, _EOI) or i + 2 > len(data):
            return None
        length = int.from_bytes(data[i : i + 2], "big")
        if marker in _SOF:
            if length < 7 or i + 7 > len(data):
                return None
            height = int.from_bytes(data[i + 3 : i + 5], "big")
            width = int.from_bytes(data[i + 5 : i + 7], "big")
            return Dimensions(width=width, height=height)
        i += max(length, 2)
    return None


def check_pixel_budget(data: bytes, max_pixels: int) -> Dimensions | None:
    """Raise FrameTooLarge when ``data`` declares more than ``max_pixels`` pixels, or leaves
    its height to a later marker (DNL: unknown until decoded). The declared dimensions, or
    None when there is no frame header (the decoder refuses such data itself)."""
    dims = declared_dimensions(data)
    if dims is None:
        return None
    if dims.height == 0 or dims.width == 0:
        raise FrameTooLarge("JPEG declares no width or height in its frame header")
    if dims.pixels > max_pixels:
        raise FrameTooLarge(
            f"JPEG declares {dims.width} x {dims.height} pixels, over the budget of "
            f"{max_pixels} pixels (LEZ_MAX_FRAME_PIXELS)"
        )
    return dims
