"""The packaged corpus of the RAG demo and tests: tests/data/rag_corpus.jsonl.

One document per topic of the Python reference manual as the standard
library ships it (pydoc_data.topics, what `help('assert')` prints): the
topic name as id, its first prose paragraphs (up to ~600 characters) as
text. Regenerate with the same Python minor version to get the same file:
  .cache/venv/bin/python tools/gen_rag_corpus.py > tests/data/rag_corpus.jsonl
"""
import json
import re
import sys

import pydoc_data.topics as topics


def prose(text):
    out = []
    for p in text.split("\n\n")[1:]:
        p = p.strip()
        if not p or p.startswith(("   ", "*", "=", "-")) or "::=" in p:
            continue  # headings, code, grammar
        p = re.sub(r"\s+", " ", p)
        if len(p) < 60:
            continue
        out.append(p)
        if sum(len(x) for x in out) > 400:
            break
    s = " ".join(out)
    return s[:600].rsplit(" ", 1)[0] if len(s) > 600 else s


def main():
    n, seen = 0, set()
    for k in sorted(topics.topics):
        t = prose(topics.topics[k])
        if len(t) < 80 or t in seen:  # some topics share their text ("if", "else")
            continue
        seen.add(t)
        print(json.dumps({"id": k, "text": t}, ensure_ascii=False))
        n += 1
    print(f"{n} documents (Python {sys.version.split()[0]})", file=sys.stderr)


if __name__ == "__main__":
    main()
