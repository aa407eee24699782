#!/usr/bin/env python3
"""Generate core/text/ee_unicode_tables.c: the code point classes the tokenizer's
pre-tokenizer needs (letter \\p{L}, number \\p{N}, whitespace \\s), as one
sorted table of runs, from Python's unicodedata.

Tables come from unicodedata2 (see below) when installed, else Python's
unicodedata. Semantics follow the regex engines the HF `tokenizers` package uses for the
GPT-2 pattern (Oniguruma, and Rust's char::is_numeric for the Digits step):
  letter  = general category Lu Ll Lt Lm Lo
  number  = general category Nd Nl No
  space   = U+0009..U+000D, U+0085, and categories Zs Zl Zp
            (Oniguruma's Unicode \\s; note: NOT Python's str.isspace, which
            also counts U+001C..U+001F)
Everything else (marks, punctuation, symbols, controls, unassigned) is
"other".

Usage:
  python3 tools/gen_unicode_tables.py [--out core/text/ee_unicode_tables.c]
  python3 tools/gen_unicode_tables.py --check-hf   # needs `tokenizers`:
      compares every code point's class with what the HF pre-tokenizers do
      and lists disagreements (Unicode version skew between Python and the
      Rust/Oniguruma tables shows up here).
  .cache/venv/bin/python tools/gen_unicode_tables.py --wp [--wp-out core/text/ee_wp_tables.c]
      the WordPiece (BERT) normalizer's tables (tools/gen_wp_tables.py says how).
  .cache/venv/bin/python tools/gen_unicode_tables.py --wp-report
      where those tables differ from Python's unicodedata, and why.
"""
import argparse
import sys

# The Oniguruma bundled with tokenizers 0.23 uses Unicode 16.0, newer than
# Python 3.11's stdlib tables (14.0): prefer the `unicodedata2` backport
# pinned to the same Unicode version (pip install unicodedata2==16.0.0;
# it is only needed to regenerate, the output is committed).
try:
    import unicodedata2 as unicodedata
    UCD_SOURCE = "unicodedata2"
except ImportError:
    import unicodedata
    UCD_SOURCE = "Python %s unicodedata" % sys.version.split()[0]

OTHER, LETTER, NUMBER, SPACE = 0, 1, 2, 3
NAMES = {OTHER: "EE_UC_OTHER", LETTER: "EE_UC_LETTER", NUMBER: "EE_UC_NUMBER",
         SPACE: "EE_UC_SPACE"}
MAX_CP = 0x110000


def classify(cp):
    if 0x09 <= cp <= 0x0D or cp == 0x85:
        return SPACE
    cat = unicodedata.category(chr(cp))
    if cat in ("Zs", "Zl", "Zp"):
        return SPACE
    if cat[0] == "L":
        return LETTER
    if cat[0] == "N":
        return NUMBER
    return OTHER


def runs():
    out = []
    prev = None
    for cp in range(MAX_CP):
        c = classify(cp)
        if c != prev:
            out.append((cp, c))
            prev = c
    return out


def write_c(path):
    rs = runs()
    lines = []
    lines.append("/* GENERATED FILE - do not edit.")
    lines.append(" * Regenerate with: python3 tools/gen_unicode_tables.py --out core/text/ee_unicode_tables.c")
    lines.append(" *   (pip install unicodedata2==16.0.0 first to match tokenizers' Oniguruma;")
    lines.append(" *   check with: python3 tools/gen_unicode_tables.py --check-hf)")
    lines.append(" * Source: %s, Unicode %s." % (UCD_SOURCE, unicodedata.unidata_version))
    lines.append(" * Each entry is (first code point << 8 | class); a run extends to the")
    lines.append(" * next entry's first code point. Classes: see ee_unicode.h. */")
    lines.append('#include "ee_unicode.h"')
    lines.append("")
    lines.append("#include <stdint.h>")
    lines.append("")
    lines.append("const char ee_unicode_tables_version[] = \"%s\";" % unicodedata.unidata_version)
    lines.append("const uint32_t ee_unicode_runs_n = %d;" % len(rs))
    lines.append("const uint32_t ee_unicode_runs[%d] = {" % len(rs))
    row = []
    for cp, c in rs:
        row.append("0x%08x" % ((cp << 8) | c))
        if len(row) == 6:
            lines.append("    " + ", ".join(row) + ",")
            row = []
    if row:
        lines.append("    " + ", ".join(row) + ",")
    lines.append("};")
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s: %d runs (%s, Unicode %s)" % (path, len(rs), UCD_SOURCE,
                                                  unicodedata.unidata_version))


def check_hf():
    """Infer each code point's class from the HF pre-tokenizers and compare."""
    from tokenizers import pre_tokenizers
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    dg = pre_tokenizers.Digits(individual_digits=True)

    def npieces(pt, s):
        return len(pt.pre_tokenize_str(s))

    bad = 0
    for cp in range(MAX_CP):
        if 0xD800 <= cp <= 0xDFFF:
            continue  # not representable in Rust strings
        ch = chr(cp)
        mine = classify(cp)
        if npieces(bl, "a" + ch) == 1:
            hf = LETTER
        elif npieces(bl, "1" + ch) == 1:
            hf = NUMBER
        elif npieces(bl, "!" + ch) == 1:
            hf = OTHER
        else:
            hf = SPACE
        dig = npieces(dg, "a" + ch + "a") == 3  # Rust char::is_numeric
        if hf != mine or dig != (mine == NUMBER):
            bad += 1
            if bad <= 50:
                print("U+%04X %s: ours %s, onig %s, rust is_numeric %s" % (
                    cp, unicodedata.category(ch), NAMES[mine], NAMES[hf], dig))
    print("disagreements: %d (tables: %s, Unicode %s)" % (
        bad, UCD_SOURCE, unicodedata.unidata_version))
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="core/text/ee_unicode_tables.c")
    ap.add_argument("--check-hf", action="store_true")
    ap.add_argument("--wp", action="store_true", help="write the WordPiece tables only")
    ap.add_argument("--wp-out", default="core/text/ee_wp_tables.c")
    ap.add_argument("--wp-report", action="store_true")
    a = ap.parse_args()
    if a.check_hf:
        sys.exit(1 if check_hf() else 0)
    if a.wp_report:
        import gen_wp_tables
        sys.exit(gen_wp_tables.report())
    if a.wp:
        import gen_wp_tables
        gen_wp_tables.write_c(a.wp_out)
        return
    write_c(a.out)


if __name__ == "__main__":
    main()
