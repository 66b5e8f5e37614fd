#!/usr/bin/env python3
"""Draws tokentray's icons (RGBA PNGs, no dependencies): the app icon in the sizes Tauri bundles,
its Windows icon.ico and macOS icon.icns (both hold PNG images), and one tray icon per state.
Run: python3 icons/generate.py"""
import math, os, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))

def png_bytes(size, pixel):
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            row += bytes(pixel(x + 0.5, y + 0.5, size))
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))

def png(path, size, pixel):
    with open(path, "wb") as f:
        f.write(png_bytes(size, pixel))

def ico(path, pixel, sizes=(16, 24, 32, 48, 64, 256)):
    """Windows icon: an ICONDIR, one 16-byte entry per size (0 means 256), then the PNG images."""
    images = [png_bytes(n, pixel) for n in sizes]
    offset = 6 + 16 * len(sizes)
    head = struct.pack("<HHH", 0, 1, len(sizes))
    for n, data in zip(sizes, images):
        head += struct.pack("<BBBBHHII", n % 256, n % 256, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    with open(path, "wb") as f:
        f.write(head + b"".join(images))

def icns(path, pixel):
    """macOS icon: the 'icns' header, then one (type, length, PNG) element per size."""
    body = b""
    for kind, n in [(b"icp4", 16), (b"icp5", 32), (b"icp6", 64), (b"ic07", 128), (b"ic08", 256),
                    (b"ic09", 512), (b"ic10", 1024)]:
        data = png_bytes(n, pixel)
        body += kind + struct.pack(">I", 8 + len(data)) + data
    with open(path, "wb") as f:
        f.write(b"icns" + struct.pack(">I", 8 + len(body)) + body)

def coverage(d):
    """Anti-aliased coverage for a signed distance in pixels (negative = inside)."""
    return max(0.0, min(1.0, 0.5 - d))

def badge(color, glyph=True, dot=None):
    """A rounded tile in `color` with a white key glyph; optional status dot."""
    def pixel(x, y, n):
        u, v = x / n, y / n
        r = 0.22
        qx, qy = max(abs(u - 0.5) - (0.5 - r - 0.02), 0), max(abs(v - 0.5) - (0.5 - r - 0.02), 0)
        tile = (math.hypot(qx, qy) - r) * n
        a = coverage(tile)
        cr, cg, cb = color
        if glyph:
            # key: ring + shaft + teeth
            ring = abs(math.hypot(u - 0.38, v - 0.42) - 0.13) * n - 0.045 * n
            shaft = max(abs(v - 0.42) - 0.04, 0.36 - u, u - 0.78) * n
            tooth1 = max(abs(u - 0.66) - 0.035, v - 0.58, 0.42 - v) * n
            tooth2 = max(abs(u - 0.75) - 0.035, v - 0.55, 0.42 - v) * n
            g = coverage(min(ring, shaft, tooth1, tooth2))
            cr, cg, cb = [c * (1 - g) + 255 * g for c in (cr, cg, cb)]
        if dot:
            d = (math.hypot(u - 0.78, v - 0.78) - 0.2) * n
            edge = (math.hypot(u - 0.78, v - 0.78) - 0.23) * n
            if edge < 0.5:
                ring_a = coverage(edge)
                cr, cg, cb = [c * (1 - ring_a) + 255 * ring_a for c in (cr, cg, cb)]
                a = max(a, ring_a)
            da = coverage(d)
            cr, cg, cb = [c * (1 - da) + k * da for c, k in zip((cr, cg, cb), dot)]
            a = max(a, da)
        return (int(cr), int(cg), int(cb), int(255 * a))
    return pixel

BLUE, GREY = (37, 99, 235), (107, 114, 128)
AMBER = (217, 119, 6)

for name, size in [("32x32.png", 32), ("64x64.png", 64), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
    png(os.path.join(HERE, name), size, badge(BLUE))
ico(os.path.join(HERE, "icon.ico"), badge(BLUE))
icns(os.path.join(HERE, "icon.icns"), badge(BLUE))
for name, pixel in [("tray-signed-in.png", badge(BLUE)), ("tray-no-account.png", badge(GREY)),
                    ("tray-attention.png", badge(BLUE, dot=AMBER)), ("tray-retrying.png", badge(BLUE, dot=GREY))]:
    png(os.path.join(HERE, name), 64, pixel)
