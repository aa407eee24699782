"""The digits CNN: what the client's stem costs, and the worker's part,
plaintext and encrypted, against PyTorch on the same weights (make
bench-cnn; docs/BENCHMARKS.md, docs/VISION.md).

Measured here, all on the 360 test images, median of --repeat runs:
  ours      ee-model classify --test-set: the stem (client: a direct
            convolution, one image at a time) and the rest (worker: dgemm
            over a batch of maps, as one round of classify jobs) timed
            apart, plaintext file and encrypted file (the encrypted run adds
            the client's feature-map cipher), worker batches of 1 and 360
  PyTorch   the same float32 weights in torch.nn (CPU, --threads threads):
            one image at a time, and all 360 in one batch
  bytes     what a client sends: the image (64 floats) vs the encrypted
            feature map (1024 floats) as JSON in a classify request
Prints a table (microseconds per image) and one JSON line.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])}... failed: {r.stderr.strip()}")
    return r.stdout


def load_gguf(path):
    from gguf import GGUFReader
    r = GGUFReader(path)
    t = {x.name: np.array(x.data) for x in r.tensors}
    return t


def torch_model(w, threads):
    import torch
    torch.set_num_threads(threads)
    c0 = torch.nn.Conv2d(1, 16, 3, padding=1)
    c1 = torch.nn.Conv2d(16, 32, 3, padding=1)
    head = torch.nn.Linear(128, 10)
    with torch.no_grad():
        c0.weight.copy_(torch.from_numpy(w["blk.0.conv.weight"].reshape(16, 1, 3, 3)))
        c0.bias.copy_(torch.from_numpy(w["blk.0.conv.bias"]))
        c1.weight.copy_(torch.from_numpy(w["blk.1.conv.weight"].reshape(32, 16, 3, 3)))
        c1.bias.copy_(torch.from_numpy(w["blk.1.conv.bias"]))
        head.weight.copy_(torch.from_numpy(w["output.weight"].reshape(10, 128)))
        head.bias.copy_(torch.from_numpy(w["output.bias"]))
    stem = torch.nn.Sequential(c0, torch.nn.ReLU())
    rest = torch.nn.Sequential(torch.nn.MaxPool2d(2), c1, torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), head)
    return torch, stem.eval(), rest.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--test-set", required=True)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for PyTorch and OpenBLAS (ours)")
    a = ap.parse_args()
    ee = os.path.join(a.bin, "ee-model")
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    tmp = tempfile.mkdtemp()
    key, enc = os.path.join(tmp, "k.eekey"), os.path.join(tmp, "enc.gguf")
    run([ee, "keygen", "--out", key])
    run([ee, "encrypt", "--model", a.model, "--key", key, "--out", enc])

    ours = {k: [] for k in ("plain_stem", "plain_rest_b1", "plain_rest", "enc_stem", "enc_cipher",
                            "enc_rest_b1", "enc_rest")}
    for _ in range(a.repeat):
        for batch, sfx in (("1", "_b1"), ("360", "")):
            p = json.loads(run([ee, "classify", "--model", a.model, "--test-set", a.test_set, "--json",
                                "--batch", batch]))
            e = json.loads(run([ee, "classify", "--model", enc, "--key", key, "--plain-model", a.model,
                                "--test-set", a.test_set, "--json", "--batch", batch]))
            assert e["same_prediction_as_plaintext"] == e["count"], e
            ours["plain_rest" + sfx].append(p["rest_us_per_image"])
            ours["enc_rest" + sfx].append(e["rest_us_per_image"])
            if sfx == "":
                ours["plain_stem"].append(p["stem_us_per_image"])
                ours["enc_stem"].append(e["stem_us_per_image"])
                ours["enc_cipher"].append(e["client_encrypt_us_per_image"])
    med = {k: statistics.median(v) for k, v in ours.items()}

    w = load_gguf(a.model)
    t = load_gguf(a.test_set)
    x = t["test.images"].reshape(-1, 1, 8, 8).astype(np.float32)
    torch, stem, rest = torch_model(w, a.threads)
    xt = torch.from_numpy(x)
    n = xt.shape[0]

    def timed(fn):
        best = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            fn()
            best.append((time.perf_counter() - t0) * 1e6 / n)
        return statistics.median(best)

    with torch.inference_mode():
        ref = rest(stem(xt)).numpy()
        single_stem = timed(lambda: [stem(xt[i:i + 1]) for i in range(n)])
        fm = [stem(xt[i:i + 1]) for i in range(n)]
        single_rest = timed(lambda: [rest(f) for f in fm])
        batch_stem = timed(lambda: stem(xt))
        fb = stem(xt)
        batch_rest = timed(lambda: rest(fb))
    agree = float(np.abs(ref - t["test.logits"]).max())

    fmap_json = len(json.dumps([round(float(v), 9) for v in fb[0].numpy().ravel()]))
    img_json = len(json.dumps([round(float(v), 9) for v in x[0].ravel()]))
    rows = [
        ("ours, plaintext file, worker batch 1", med["plain_stem"], med["plain_rest_b1"]),
        ("ours, plaintext file, worker batch 360", med["plain_stem"], med["plain_rest"]),
        ("ours, encrypted (stem + cipher), batch 1", med["enc_stem"] + med["enc_cipher"], med["enc_rest_b1"]),
        ("ours, encrypted (stem + cipher), batch 360", med["enc_stem"] + med["enc_cipher"], med["enc_rest"]),
        ("PyTorch, one image at a time", single_stem, single_rest),
        ("PyTorch, 360 in one batch", batch_stem, batch_rest),
    ]
    print(f"digits CNN, 360 test images, median of {a.repeat}, {a.threads} thread(s); "
          f"microseconds per image")
    print(f"{'':48s} {'stem (client)':>14s} {'rest (worker)':>14s}")
    for name, s, r in rows:
        print(f"{name:48s} {s:14.2f} {r:14.2f}")
    print(f"client cipher alone: {med['enc_cipher']:.3f} us/image; PyTorch logits vs the float64 "
          f"reference: max abs {agree:.2g}")
    print(f"bytes a client sends per image as JSON numbers: image {img_json}, encrypted feature map "
          f"~{fmap_json} ({fmap_json / img_json:.1f}x)")
    print(json.dumps({"ours": med, "torch_single": {"stem": single_stem, "rest": single_rest},
                      "torch_batch": {"stem": batch_stem, "rest": batch_rest},
                      "json_bytes": {"image": img_json, "fmap": fmap_json}, "threads": a.threads,
                      "torch_vs_reference": agree}))


if __name__ == "__main__":
    main()
