"""A stand-in for CloudWatch's rendered latency graph (moto has no GetMetricWidgetImage): a small PNG
of the scenario's latency points as bars, written with zlib and struct, no plotting library."""
from __future__ import annotations

import struct
import zlib

WIDTH, HEIGHT = 240, 80


def bars_png(values: tuple[float, ...]) -> bytes:
    top = max(values or (1.0,)) or 1.0
    per = max(1, WIDTH // max(1, len(values)))
    heights = [int((values[min(x // per, len(values) - 1)] / top) * (HEIGHT - 4)) if values else 0
               for x in range(WIDTH)]
    rows = b"".join(b"\x00" + bytes(0 if HEIGHT - y <= heights[x] else 255 for x in range(WIDTH))
                    for y in range(HEIGHT))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
