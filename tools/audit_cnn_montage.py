"""Side-by-side PNG of the pictures `ee-model audit --dump-pgm DIR` writes for
an eecnn model: one column per image (the first 8), one row per source.

  .cache/venv/bin/python tools/audit_cnn_montage.py DIR OUT.png \\
      [--rows original:original,a:"channel mean",a_best:"best A",b:"B"]

Each row is a file tag (NN_labelL_<tag>.pgm) and its caption. numpy only
(the PNG is written by hand); captions go to stdout, not into the picture.
"""
import argparse
import glob
import os
import re
import struct
import sys
import zlib

import numpy as np

DEFAULT_ROWS = ("original:original,a:channel mean,a_aligned:aligned mean,"
                "a_deconv1:deconv (1 map),a_deconvn:deconv (all maps),b:B (public weights)")


def read_pgm(path):
    with open(path, "rb") as f:
        data = f.read()
    m = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    if not m:
        sys.exit(f"{path}: not a binary PGM")
    w, h, mx = (int(g) for g in m.groups())
    if mx != 255:
        sys.exit(f"{path}: maxval {mx}, want 255")
    return np.frombuffer(data[m.end():m.end() + w * h], np.uint8).reshape(h, w)


def png_bytes(pix):
    def chunk(typ, body):
        return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body))
    h, w = pix.shape
    raw = b"".join(b"\x00" + pix[r].tobytes() for r in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("out")
    ap.add_argument("--rows", default=DEFAULT_ROWS, help="tag:caption,... (default: %(default)s)")
    ap.add_argument("--gap", type=int, default=4, help="pixels between tiles")
    a = ap.parse_args()
    rows = [r.split(":", 1) for r in a.rows.split(",")]
    originals = sorted(glob.glob(os.path.join(a.dir, "[0-9][0-9]_label*_original.pgm")))
    if not originals:
        sys.exit(f"{a.dir}: no NN_labelL_original.pgm (run ee-model audit --dump-pgm)")
    stems = [p[:-len("original.pgm")] for p in originals]
    tiles = [[read_pgm(s + tag + ".pgm") for s in stems] for tag, _ in rows]
    th, tw = tiles[0][0].shape
    g = a.gap
    H, W = len(rows) * (th + g) + g, len(stems) * (tw + g) + g
    canvas = np.full((H, W), 128, np.uint8)  # mid grey: the gaps are not part of any picture
    for r, row in enumerate(tiles):
        for c, t in enumerate(row):
            if t.shape != (th, tw):
                sys.exit(f"tile {rows[r][0]} of {stems[c]}: {t.shape}, want {(th, tw)}")
            y, x = g + r * (th + g), g + c * (tw + g)
            canvas[y:y + th, x:x + tw] = t
    with open(a.out, "wb") as f:
        f.write(png_bytes(canvas))
    labels = [re.search(r"_label(\d+)_$", s).group(1) for s in stems]
    print(f"{a.out}: {W}x{H}, columns = test images 0..{len(stems) - 1} (labels {' '.join(labels)})")
    for r, (tag, cap) in enumerate(rows):
        print(f"  row {r + 1}: {cap} ({tag})")


if __name__ == "__main__":
    main()
