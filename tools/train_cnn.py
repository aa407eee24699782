"""Train the tiny "eecnn" digit classifier and write it, plus a test set, as GGUF.

A small CNN (two 3x3 conv+ReLU+2x2-maxpool blocks, then a linear head) is
trained with numpy only (hand-written backward pass, Adam) on scikit-learn's
bundled 8x8 digits dataset, deterministically from --seed. Outputs:

  --out-model  GGUF (arch "eecnn"): the float32 weights and metadata
  --out-test   GGUF (arch "eecnn-test"): the 360 test images, labels, and
               reference logits from an independent float64 forward pass

Running twice with the same seed produces byte-identical files (BLAS is
pinned to one thread). --export-images DIR --count N writes the first N test
images as 8-bit grayscale files, alternating PNG and binary PGM (P5).

  .cache/venv/bin/python tools/train_cnn.py \\
      --out-model /tmp/cnn/eecnn-digits.gguf --out-test /tmp/cnn/eecnn-digits-test.gguf
"""
import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy: deterministic sums
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import hashlib
import struct
import sys
import time
import zlib

import numpy as np
import gguf
import sklearn
import sklearn.datasets
from sklearn.model_selection import train_test_split

DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
F32 = np.float32


def load_data(seed):
    path = os.path.join(os.path.dirname(sklearn.datasets.__file__), "data", "digits.csv.gz")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != DIGITS_SHA256:
        sys.exit(f"error: {path}: sha256 {digest} != expected {DIGITS_SHA256}")
    print(f"dataset sha256 ok: {path}")
    d = sklearn.datasets.load_digits()
    X = (d.data / 16.0).astype(F32).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int32)
    return train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)


# ---- training path (float32, im2col) ---------------------------------------

def im2col(x):
    """[B,C,H,W] -> [B*H*W, C*9], columns ordered (c, ky, kx) like the weights."""
    B, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([xp[:, :, ky:ky + H, kx:kx + W] for ky in range(3) for kx in range(3)], axis=2)
    return cols.transpose(0, 3, 4, 1, 2).reshape(B * H * W, C * 9)


def col2im(dcols, shape):
    B, C, H, W = shape
    d = dcols.reshape(B, H, W, C, 9).transpose(0, 3, 4, 1, 2)
    dxp = np.zeros((B, C, H + 2, W + 2), F32)
    for k in range(9):
        ky, kx = divmod(k, 3)
        dxp[:, :, ky:ky + H, kx:kx + W] += d[:, :, k]
    return dxp[:, :, 1:-1, 1:-1]


def conv_fwd(x, w, b):
    B, _, H, W = x.shape
    cols = im2col(x)
    out = cols @ w.reshape(w.shape[0], -1).T + b
    return out.reshape(B, H, W, -1).transpose(0, 3, 1, 2), cols


def conv_bwd(dout, cols, w, xshape, need_dx):
    O = w.shape[0]
    d = dout.transpose(0, 2, 3, 1).reshape(-1, O)
    dw = (d.T @ cols).reshape(w.shape)
    db = d.sum(axis=0)
    dx = col2im(d @ w.reshape(O, -1), xshape) if need_dx else None
    return dx, dw, db


def pool_fwd(x):
    """2x2 max-pool stride 2; remembers the (first) argmax for the backward."""
    B, C, H, W = x.shape
    r = x.reshape(B, C, H // 2, 2, W // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(B, C, H // 2, W // 2, 4)
    idx = r.argmax(axis=-1)
    return np.take_along_axis(r, idx[..., None], axis=-1)[..., 0], idx


def pool_bwd(dout, idx):
    B, C, h, w = dout.shape
    r = np.zeros((B, C, h, w, 4), F32)
    np.put_along_axis(r, idx[..., None], dout[..., None], axis=-1)
    return r.reshape(B, C, h, w, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(B, C, 2 * h, 2 * w)


def forward(P, x):
    a0, c0 = conv_fwd(x, P["blk.0.conv.weight"], P["blk.0.conv.bias"])
    r0 = np.maximum(a0, 0)
    p0, i0 = pool_fwd(r0)
    a1, c1 = conv_fwd(p0, P["blk.1.conv.weight"], P["blk.1.conv.bias"])
    r1 = np.maximum(a1, 0)
    p1, i1 = pool_fwd(r1)
    f = p1.reshape(len(x), -1)
    logits = f @ P["output.weight"].T + P["output.bias"]
    return logits, (x, a0, c0, p0, i0, a1, c1, p1, i1, f)


def backward(P, cache, dlogits):
    x, a0, c0, p0, i0, a1, c1, p1, i1, f = cache
    g = {"output.weight": dlogits.T @ f, "output.bias": dlogits.sum(axis=0)}
    dp1 = (dlogits @ P["output.weight"]).reshape(p1.shape)
    da1 = pool_bwd(dp1, i1) * (a1 > 0)
    dp0, g["blk.1.conv.weight"], g["blk.1.conv.bias"] = conv_bwd(da1, c1, P["blk.1.conv.weight"], p0.shape, True)
    da0 = pool_bwd(dp0, i0) * (a0 > 0)
    _, g["blk.0.conv.weight"], g["blk.0.conv.bias"] = conv_bwd(da0, c0, P["blk.0.conv.weight"], x.shape, False)
    return g


def softmax_xent(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y] + 1e-12).mean()
    p[np.arange(len(y)), y] -= 1
    return float(loss), (p / len(y)).astype(F32)


def init_params(rng):
    shapes = {"blk.0.conv.weight": (16, 1, 3, 3), "blk.0.conv.bias": (16,),
              "blk.1.conv.weight": (32, 16, 3, 3), "blk.1.conv.bias": (32,),
              "output.weight": (10, 128), "output.bias": (10,)}
    P = {}
    for name, shape in shapes.items():
        if name.endswith("bias"):
            P[name] = np.zeros(shape, F32)
        else:
            fan_in = int(np.prod(shape[1:]))
            P[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(F32)
    return P


def train(Xtr, ytr, seed, epochs, lr=2e-3, batch=32, b1=0.9, b2=0.999, eps=1e-8):
    rng = np.random.default_rng(seed)
    P = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in P.items()}
    v = {k: np.zeros_like(v) for k, v in P.items()}
    t = 0
    for ep in range(epochs):
        order = rng.permutation(len(Xtr))
        tot = 0.0
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            logits, cache = forward(P, Xtr[idx])
            loss, dlogits = softmax_xent(logits, ytr[idx])
            tot += loss * len(idx)
            g = backward(P, cache, dlogits)
            t += 1
            c1, c2 = 1 - b1 ** t, 1 - b2 ** t
            for k in P:
                m[k] = F32(b1) * m[k] + F32(1 - b1) * g[k]
                v[k] = F32(b2) * v[k] + F32(1 - b2) * g[k] * g[k]
                P[k] -= (F32(lr / c1) * m[k] / (np.sqrt(v[k] / F32(c2)) + F32(eps))).astype(F32)
        print(f"epoch {ep + 1:3d}  loss {tot / len(Xtr):.5f}")
    return P


# ---- independent float64 reference forward ----------------------------------

def ref_forward(P, X):
    x = X.astype(np.float64)
    for blk in (0, 1):
        w = P[f"blk.{blk}.conv.weight"].astype(np.float64)
        b = P[f"blk.{blk}.conv.bias"].astype(np.float64)
        N, C, H, W = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = np.broadcast_to(b[None, :, None, None], (N, w.shape[0], H, W)).copy()
        for ky in range(3):
            for kx in range(3):
                out += np.einsum("oc,nchw->nohw", w[:, :, ky, kx], xp[:, :, ky:ky + H, kx:kx + W])
        out = np.maximum(out, 0.0)
        x = out.reshape(N, -1, H // 2, 2, W // 2, 2).max(axis=(3, 5))
    f = x.reshape(len(x), -1)  # (c*2 + y)*2 + x
    return f @ P["output.weight"].astype(np.float64).T + P["output.bias"].astype(np.float64)


# ---- output -----------------------------------------------------------------

def write_gguf(path, arch, kv, tensors):
    tmp = path + ".tmp"
    w = gguf.GGUFWriter(tmp, arch=arch)
    for key, (kind, val) in kv.items():
        getattr(w, "add_" + kind)(key, val)
    for name, arr in tensors.items():
        w.add_tensor(name, np.ascontiguousarray(arr))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, path)


def png_bytes(pix):
    def chunk(typ, data):
        return struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data))
    h, w = pix.shape
    raw = b"".join(b"\x00" + pix[r].tobytes() for r in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def export_images(outdir, Xte, yte, count):
    os.makedirs(outdir, exist_ok=True)
    for i in range(min(count, len(Xte))):
        pix = np.floor(Xte[i, 0].astype(np.float64) * 255.0 + 0.5).astype(np.uint8)  # round(v*255/16)
        if i % 2 == 0:
            name, data = f"test_{i:03d}_label{yte[i]}.png", png_bytes(pix)
        else:
            name, data = f"test_{i:03d}_label{yte[i]}.pgm", b"P5\n8 8\n255\n" + pix.tobytes()
        path = os.path.join(outdir, name)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
        print(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-model")
    ap.add_argument("--out-test")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--export-images", metavar="DIR")
    ap.add_argument("--count", type=int, default=8)
    a = ap.parse_args()
    if bool(a.out_model) != bool(a.out_test) or not (a.out_model or a.export_images):
        ap.error("need --out-model and --out-test, and/or --export-images DIR")

    t0 = time.time()
    Xtr, Xte, ytr, yte = load_data(a.seed)
    print(f"train {len(Xtr)}  test {len(Xte)}  seed {a.seed}")
    if a.export_images:
        export_images(a.export_images, Xte, yte, a.count)
    if not a.out_model:
        return

    P = train(Xtr, ytr, a.seed, a.epochs)
    train_acc = float((forward(P, Xtr)[0].argmax(1) == ytr).mean())
    test_acc32 = float((forward(P, Xte)[0].argmax(1) == yte).mean())
    ref = ref_forward(P, Xte)
    test_acc = float((ref.argmax(1) == yte).mean())
    print(f"train accuracy {train_acc:.4f}  test accuracy {test_acc32:.4f} (float32), "
          f"{test_acc:.4f} (float64 reference)")

    for d in (a.out_model, a.out_test):
        os.makedirs(os.path.dirname(os.path.abspath(d)), exist_ok=True)
    write_gguf(a.out_model, "eecnn", {
        "eecnn.block_count": ("uint32", 2),
        "eecnn.image.height": ("uint32", 8),
        "eecnn.image.width": ("uint32", 8),
        "eecnn.image.channels": ("uint32", 1),
        "eecnn.pool_size": ("uint32", 2),
        "eecnn.class_count": ("uint32", 10),
        "eecnn.class_labels": ("array", [str(i) for i in range(10)]),
        "general.name": ("string", "eecnn-digits"),
        "eecnn.train.seed": ("uint32", a.seed),
        "eecnn.train.test_accuracy": ("float32", test_acc),
        "eecnn.train.dataset": ("string", f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})"),
    }, P)
    write_gguf(a.out_test, "eecnn-test", {
        "eecnn.test.count": ("uint32", len(Xte)),
        "eecnn.test.accuracy": ("float32", test_acc),
    }, {"test.images": Xte.astype(F32),
        "test.labels": yte.astype(np.float32),  # f32: the C GGUF reader reads float tensors only
        "test.logits": ref.astype(F32)})
    print(f"wrote {a.out_model}, {a.out_test}  ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
