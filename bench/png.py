"""A small PNG bar chart with the standard library only (zlib + struct): no matplotlib needed.

`Canvas` is an RGB bitmap with rectangles and text in a built-in 5x7 pixel font (upper case,
digits, a little punctuation; lower case is drawn as upper case). `pair_chart` draws the
benchmark's figure: one row per measure, a bar for each of the two contenders scaled to the
larger of the pair, their values, and the ratio with its goal.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

Color = tuple[int, int, int]

WHITE: Color = (255, 255, 255)
BLACK: Color = (30, 30, 30)
GREY: Color = (150, 150, 150)
LIGHT: Color = (225, 225, 225)
BLUE: Color = (52, 101, 164)
GREEN: Color = (46, 139, 87)
RED: Color = (200, 50, 50)

# Each glyph: 7 rows, the low 5 bits of each row are its pixels (bit 4 = leftmost).
_FONT: dict[str, tuple[int, ...]] = {
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E),
    "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F),
    "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02),
    "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E),
    "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E),
    "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    "A": (0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    " ": (0, 0, 0, 0, 0, 0, 0),
    ".": (0, 0, 0, 0, 0, 0x0C, 0x0C),
    ",": (0, 0, 0, 0, 0x0C, 0x04, 0x08),
    "-": (0, 0, 0, 0x1F, 0, 0, 0),
    "_": (0, 0, 0, 0, 0, 0, 0x1F),
    "/": (0, 0x01, 0x02, 0x04, 0x08, 0x10, 0),
    ":": (0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0),
    "(": (0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02),
    ")": (0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08),
    "%": (0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03),
    "=": (0, 0, 0x1F, 0, 0x1F, 0, 0),
    "<": (0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02),
    ">": (0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08),
    "+": (0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0),
    "?": (0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04),
}
GLYPH_W, GLYPH_H = 6, 8  # a 5x7 glyph plus one pixel of spacing


class Canvas:
    """An RGB image in memory, drawn on with rectangles and text, saved as PNG."""

    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.width = width
        self.height = height
        self._rows = [bytearray(bytes(background) * width) for _ in range(height)]

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, x1 = max(0, x), min(self.width, x + w)
        y0, y1 = max(0, y), min(self.height, y + h)
        if x0 >= x1:
            return
        span = bytes(color) * (x1 - x0)
        for row in self._rows[y0:y1]:
            row[3 * x0 : 3 * x1] = span

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> int:
        """Draw `text` with its top left at (x, y); returns the x just after it."""
        for char in text.upper():
            glyph = _FONT.get(char, _FONT["?"])
            for dy, bits in enumerate(glyph):
                for dx in range(5):
                    if bits & (0x10 >> dx):
                        self.rect(x + dx * scale, y + dy * scale, scale, scale, color)
            x += GLYPH_W * scale
        return x

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(row) for row in self._rows)  # filter 0 on every row
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"".join(
            [
                b"\x89PNG\r\n\x1a\n",
                _chunk(b"IHDR", header),
                _chunk(b"IDAT", zlib.compress(raw, 9)),
                _chunk(b"IEND", b""),
            ]
        )


def text_width(text: str, scale: int = 2) -> int:
    return len(text) * GLYPH_W * scale


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@dataclass(frozen=True, kw_only=True)
class PairRow:
    """One measure: both contenders' values (None: not measured) and the ratio's goal."""

    label: str
    ours: float | None
    docker: float | None
    unit: str  # shown after each value, e.g. "s" or "MB"
    goal: float | None  # ours/docker must be at most this; None: no goal


def pair_chart(title: str, rows: list[PairRow], *, names: tuple[str, str]) -> bytes:
    """Horizontal bars, two per row (ours, then docker), each pair on its own scale."""
    scale, left, bar_max, gap = 2, 300, 360, 14
    bar_h, row_h = 18, 2 * 18 + 3 * gap
    width = left + bar_max + 460
    height = 70 + row_h * len(rows) + 40
    canvas = Canvas(width, height)
    canvas.text(20, 18, title, scale=3)
    top = 70
    for row in rows:
        canvas.rect(0, top - gap // 2, width, 1, LIGHT)
        canvas.text(20, top + bar_h - 4, row.label, scale=scale)
        biggest = max(v for v in (row.ours, row.docker, 1e-9) if v is not None)
        for i, (value, color) in enumerate(((row.ours, BLUE), (row.docker, GREY))):
            y = top + i * (bar_h + gap // 2)
            if value is None:
                canvas.text(left, y + 2, "not measured", GREY, scale=scale)
                continue
            length = max(2, round(bar_max * value / biggest))
            canvas.rect(left, y, length, bar_h, color)
            canvas.text(left + length + 8, y + 2, f"{_fmt(value)} {row.unit}", scale=scale)
        if row.ours is not None and row.docker:
            ratio = row.ours / row.docker
            met = row.goal is None or ratio <= row.goal
            verdict = f"  goal <={row.goal:g}: {'met' if met else 'missed'}" if row.goal else ""
            canvas.text(
                left + bar_max + 110,
                top + bar_h - 4,
                f"{ratio:.2f}x{verdict}",
                GREEN if met else RED,
            )
        top += row_h
    x = 20
    for name, color in zip(names, (BLUE, GREY), strict=True):
        canvas.rect(x, height - 30, 16, 16, color)
        x = canvas.text(x + 24, height - 28, name, scale=scale) + 30
    canvas.text(x, height - 28, f"ratio = {names[0]} / {names[1]}", GREY, scale=scale)
    return canvas.png()


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
