"""Stock llama.cpp (through llama-cpp-python, bench/requirements.txt) on the
encoder GGUF that `ee-model import` writes: it must load the file as a BERT
embedding model, tokenize with its own WordPiece from our vocabulary
(phantom-space tokens, special ids), and give the embeddings our engine
gives.

For each sentence of tests/data/bert_sentences.json up to 256 tokens
(llama.cpp has no max_seq_length; longer ones it would cut elsewhere):
  - llama.cpp's ids (add [CLS]/[SEP] as the file says) vs the `tokenizers`
    package's ids: equal or not (llama.cpp's WordPiece is its own code);
  - llama.cpp's embedding (mean pooling from bert.pooling_type, L2) vs
    `ee-model embed --tokens` on llama.cpp's own ids: cosine, max |diff|.

  llamacpp_bert.py --model M.gguf --src DIR --bin build/bin [--json OUT]
Exit 1 if llama.cpp cannot load the file or an embedding disagrees
(cosine < 0.9999).
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--src", required=True, help="the HF directory (tokenizer.json)")
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--sentences", default="tests/data/bert_sentences.json")
    ap.add_argument("--json")
    a = ap.parse_args()

    from llamacpp_compat import no_extra_buffer_types
    no_extra_buffer_types()
    import llama_cpp
    from tokenizers import Tokenizer

    llm = llama_cpp.Llama(a.model, embedding=True, n_ctx=512, n_batch=512, n_ubatch=512,
                          n_threads=2, verbose=False)
    tok = Tokenizer.from_file(os.path.join(a.src, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    texts = json.load(open(a.sentences, encoding="utf-8"))
    rows, worst_cos, worst_abs, same_ids, n = [], 1.0, 0.0, 0, 0
    for t in texts:
        hf = tok.encode(t).ids
        if len(hf) > 256:
            continue
        n += 1
        lc_ids = llm.tokenize(t.encode("utf-8"), add_bos=True, special=False)
        same = list(lc_ids) == hf
        same_ids += same
        e_lc = np.array(llm.embed(t, normalize=True), dtype=np.float64)
        out = subprocess.run([os.path.join(a.bin, "ee-model"), "embed", "--model", a.model,
                              "--tokens", ",".join(map(str, lc_ids)), "--json", "--threads", "2"],
                             check=True, capture_output=True, text=True).stdout
        e_ours = np.array(json.loads(out)["embedding"], dtype=np.float64)
        cos = float(e_lc @ e_ours / np.linalg.norm(e_lc) / np.linalg.norm(e_ours))
        mx = float(np.abs(e_lc - e_ours).max())
        worst_cos, worst_abs = min(worst_cos, cos), max(worst_abs, mx)
        rows.append({"text": t, "same_ids": same, "llamacpp_ids": list(lc_ids), "hf_ids": hf,
                     "cosine": cos, "max_abs": mx})
    report = {"model": a.model, "sentences": n, "same_ids": same_ids,
              "worst_cosine": worst_cos, "worst_max_abs": worst_abs,
              "llama_cpp_python": llama_cpp.__version__, "rows": rows}
    print("llamacpp_bert: %d sentences: llama.cpp tokenizes %d like `tokenizers`; its "
          "embeddings vs ours on its ids: worst cosine %.9f, worst max |diff| %.3g"
          % (n, same_ids, worst_cos, worst_abs))
    for r in rows:
        if not r["same_ids"]:
            print("  ids differ: %r\n    llama.cpp %s\n    tokenizers %s"
                  % (r["text"][:60], r["llamacpp_ids"][:24], r["hf_ids"][:24]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, ensure_ascii=False)
    if worst_cos < 0.9999:
        sys.exit(1)


if __name__ == "__main__":
    main()
