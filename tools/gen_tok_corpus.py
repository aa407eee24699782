#!/usr/bin/env python3
"""Generate tests/data/tok_corpus.txt: the tokenizer test corpus.

Each line of the output is one JSON string (so texts can hold real newlines,
tabs, runs of blank lines and trailing spaces without ambiguity). The
content is deterministic: fixed samples plus combinations drawn from a
seeded random.Random, independent of the Python version's Unicode tables.

Usage: python3 tools/gen_tok_corpus.py [--out tests/data/tok_corpus.txt]
"""
import argparse
import json
import random

SEED = 20250601
N_GENERATED = 2000

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! How are you doing today?",
    "It was the best of times, it was the worst of times.",
    "In 1969, Neil Armstrong walked on the Moon; 600 million people watched.",
    "Machine learning models are trained on large datasets of text and code.",
    "She said, \"I can't believe it's already December!\"",
    "Please send the report by 5:30 p.m. on Friday, March 3rd, 2023.",
    "The mitochondria is the powerhouse of the cell.",
    "Don't count your chickens before they hatch.",
    "We'll see what happens; they've promised nothing, and I'm not surprised.",
    "He'd rather be sailing than sitting in meetings all day long.",
    "You're welcome to join us, but you'll need to bring your own snacks.",
    "What's the difference between a crocodile and an alligator?",
    "SmolLM2 is a family of compact language models available in three sizes.",
    "Private inference keeps the prompt hidden from the worker that runs the model.",
    "A man, a plan, a canal: Panama.",
    "THE END IS NEAR. DON'T PANIC. IT'S FINE. WE'RE OK. THEY'VE GONE. I'M HERE. YOU'LL SEE. HE'D KNOW.",
    "Colorless green ideas sleep furiously.",
    "To be, or not to be, that is the question:",
    "Whether 'tis nobler in the mind to suffer the slings and arrows of outrageous fortune",
    "rock 'n' roll, o'clock, ma'am, y'all, 'twas, '90s, the '80s",
    "Tokenizers split text into pieces; byte-level BPE never needs an unknown token.",
    "e.g. i.e. etc. vs. Mr. Mrs. Dr. St. Jr. U.S.A. Ph.D.",
    "The temperature dropped to -40 degrees, where Celsius and Fahrenheit agree.",
]

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "#include <stdio.h>\n\nint main(void) {\n\tprintf(\"Hello, %s!\\n\", \"world\");\n\treturn 0;\n}\n",
    "for (int i = 0; i < 10; ++i) { sum += a[i] * b[i]; }",
    "const add = (a, b) => a + b;\nconsole.log(add(2, 3)); // 5",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 100;",
    "{\"name\": \"eeinfer\", \"version\": \"0.1.0\", \"tags\": [\"llm\", \"c11\"], \"ok\": true}",
    "if [ -f \"$HOME/.bashrc\" ]; then\n  . \"$HOME/.bashrc\"\nfi",
    "class Foo:\n    def __init__(self):\n        self.x = 0x1F\n\n\n    def bar(self) -> int:\n        return self.x",
    "    indented with four spaces\n\tindented with a tab\n        eight spaces\n",
    "x = [1, 2, 3]\ny = {k: v for k, v in zip('abc', x)}\nprint(y)\n",
    "git commit -m \"Fix off-by-one in tokenizer\" && git push origin main",
    "<div class=\"container\">\n  <p>Hello &amp; welcome</p>\n</div>",
    "fn main() { let v: Vec<u32> = (0..10).collect(); println!(\"{:?}\", v); }",
    "a==b&&c!=d||e<=f>>=g<<h",
    "// TODO(ee): handle the edge case\n/* multi-line\n * comment */\n",
    "matrix[i][j] += alpha * x[i] * y[j];   ",
    "$ ls -la /usr/local/bin | grep -E '^-.*x' | wc -l",
    "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n",
    "@@ -1,4 +1,5 @@\n-old line\n+new line\n+another\n context",
]

UNICODE = [
    "你好，世界！今天天气很好。",
    "機械学習は人工知能の一分野です。ひらがなとカタカナ、漢字。",
    "안녕하세요, 세계! 한국어 텍스트입니다.",
    "Привет, мир! Как дела? Съешь же ещё этих мягких французских булок.",
    "Γειά σου Κόσμε! Η γρήγορη καφέ αλεπού.",
    "مرحبا بالعالم! هذه جملة باللغة العربية.",
    "שלום עולם! זה משפט בעברית.",
    "नमस्ते दुनिया! यह हिंदी में एक वाक्य है।",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Xin chào thế giới! Tiếng Việt có nhiều dấu.",
    "Ελληνικά, Русский, 中文, 日本語, 한국어, العربية, हिन्दी",
    "Emoji: 😀 😃 😄 😁 🚀 🎉 ❤️ 👍🏽 🇫🇷 🇯🇵",
    "Family: 👨‍👩‍👧‍👦 and 👩‍💻 and 🏳️‍🌈 and 🧑🏿‍🚀",
    "Combining: e\u0301 a\u0300 n\u0303 o\u0308 Z\u0351\u0352\u0353\u0354 c\u0327",
    "Zalgo: H\u0336\u0317e\u0334\u031bl\u0335\u0322l\u0337o\u0338",
    "café naïve façade résumé coöperate Ångström Øre Łódź Ærø",
    "Math: ∀x∈ℝ, ∃y: x² + y² ≥ 0; ∑ᵢ aᵢ = ∫₀¹ f(x) dx ≈ π/4",
    "Currency: $100 €50 £30 ¥1000 ₹500 ₿0.01",
    "Arrows and boxes: ← → ↑ ↓ ⇒ ⇔ ┌─┐ │ │ └─┘ ■ □ ▲ ▼",
    "Fullwidth: ＡＢＣ １２３ ！？",
    "Ligatures: ﬁ ﬂ ﬀ ﬃ; ß ẞ; ǅ ǈ ǋ",
    "Zero\u200bwidth\u200cjoin\u200dtest\ufeffBOM",
    "Right-to-left mark \u200f and left-to-right \u200e marks",
    "Tibetan: བཀྲ་ཤིས་བདེ་ལེགས། Georgian: გამარჯობა Armenian: Բարեւ",
    "Amharic: ሰላም ልዑል Cherokee: ᏣᎳᎩ Mongolian: ᠮᠣᠩᠭᠣᠯ",
    "Bengali: আমি বাংলায় গান গাই Tamil: வணக்கம் உலகம்",
    "Old scripts: 𐌰𐌱𐌲 (Gothic) 𓀀𓀁 (hieroglyphs) 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙",
]

NUMBERS = [
    "1234567890",
    "3.14159265358979323846264338327950288419716939937510",
    "The population is 7,900,000,000 (7.9e9) and growing at 1.1% per year.",
    "Call +1 (555) 123-4567 or 0800 123 456.",
    "Dates: 2024-01-15, 15/01/2024, 01.15.24, Jan 15th 2024 at 23:59:59.999",
    "Version 2.0.1-rc3+build.42, IPv4 192.168.0.1, IPv6 ::1 and fe80::1ff:fe23:4567:890a",
    "Hex 0xDEADBEEF, binary 0b101010, octal 0o755, float 6.022e23",
    "Unicode digits: ٠١٢٣٤٥٦٧٨٩ ०१२३४५६७८९ ０１２３ ¹²³ ½ ¾ Ⅻ ⅷ ① ⑳",
    "    42    ",
    "99 bottles of beer on the wall, 99 bottles of beer.",
    "000000000000000000000000000000000000000000000000",
    "1 2 3  4   5    6\t7\n8",
    "a1b2c3d4 x86_64 utf-8 mp3 h264 4k 1080p 2x",
]

WHITESPACE = [
    "   leading spaces",
    "trailing spaces   ",
    "multiple   spaces   between   words",
    "tabs\tbetween\t\twords\t\t\t",
    "line one\nline two\n\nline four\n\n\n\nline eight",
    "\n\n\nstarts with newlines",
    "ends with newlines\n\n\n",
    "windows\r\nline\r\nendings\r\n",
    " \n \n \n",
    "mixed \t \n\t\n  \n   x",
    "no-break\u00a0space and\u3000ideographic space and\u2028line sep\u2029para",
    "next line\u0085char and vertical\x0btab and form\x0cfeed",
    "      ",
    "\t",
    "\n",
    " ",
    "a \n b",
    "word \n\n word",
    "   \n   \n",
]

PUNCT = [
    "Wait... what?!?! No way!!!",
    "------------------------------------------------",
    "=====> <===== <=> <<>> ((())) [[[]]] {{{}}}",
    "#!@$%^&*()_+-=[]{}|;':\",./<>?`~",
    "....!!!!????;;;;::::",
    "--flag=value --another-flag -xvf",
    "«quoted» „German“ “curly” ‘single’ —dash– …ellipsis",
    "''s ''t 's 't 're 've 'm 'll 'd '' ' '",
    "'S 'T 'RE 'VE 'M 'LL 'D",
    "it’s don’t they’re (curly apostrophes are not contractions)",
]

URLS = [
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
    "Visit http://example.com/path/to/page?query=1&other=two#anchor now.",
    "mailto:someone@example.org and user.name+tag@sub.domain.co.uk",
    "ftp://files.example.net:2121/pub/file_v1.2.tar.gz",
    "C:\\Users\\Name\\Documents\\file.txt and /home/user/.config/app/settings.json",
    "See https://en.wikipedia.org/wiki/Byte_pair_encoding#Algorithm for details.",
]

# Bytes SmolLM2 has no token for (0x04, 0x1D, UTF-8 leads 0xF1/0xF2 of
# planes 4..12) are dropped by the reference; control characters and NUL.
RARE = [
    "bell\x07 and \x04 EOT, \x1d GS, \x06 ACK, \x13\x14\x16 DC3 DC4 SYN",
    "plane 4 and 5: \U00040000\U00050001 x\U0009ABCD y",
    "private use \U000F0001 and \U00100001 and \ue000",
    "nul\x00inside and \x00\x00 twice",
    "escape \x1b[31mred\x1b[0m and DEL \x7f",
    "noncharacters \ufffe \uffff \U0001FFFF",
]

SPECIALS = [
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>", "<reponame>",
    "<file_sep>", "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>",
    "<issue_closed>", "<jupyter_start>", "<jupyter_text>", "<jupyter_code>",
    "<jupyter_output>", "<jupyter_script>", "<empty_output>",
]

SPECIAL_LINES = [
    "<|im_start|>user\nHello!<|im_end|>",
    "Text with <|endoftext|> in the middle.",
    "<|im_start|><|im_end|><|im_start|>",
    "Partial markers: <|im_start and im_end|> and <|im_star|> and <| im_end |>",
    "<repo_name>eeinfer<file_sep>core/text/ee_tokenizer.c<gh_stars>100",
    "<reponame> vs <repo_name> vs <repo_name vs repo_name>",
    "Nested <<|im_end|>> and <|<|im_start|>|>",
    "<|endoftext|><|endoftext|>  <|endoftext|>\n<|endoftext|>",
    "<jupyter_code>print(1)<jupyter_output>1<empty_output>",
    " <|im_start|> leading space, trailing space <|im_end|> ",
]

WORDS = ("the of and to in is was for on that with as by at from this be are it an or "
         "which not have has had but were can will one all would there their what so up out "
         "if about who get go me when make like time no just him know take people into year "
         "your good some could them see other than then now look only come its over think "
         "also back after use two how our work first well way even new want because any these "
         "give day most us model token encode decode vector matrix kernel tensor weight layer "
         "attention query key value softmax norm residual embedding vocabulary merge byte").split()

SCRIPT_RANGES = [
    (0x4E00, 0x9FFF),   # CJK ideographs
    (0x3041, 0x3096),   # hiragana
    (0x30A1, 0x30FA),   # katakana
    (0xAC00, 0xD7A3),   # hangul syllables
    (0x0410, 0x044F),   # Cyrillic
    (0x0391, 0x03A9),   # Greek capitals
    (0x03B1, 0x03C9),   # Greek small
    (0x0621, 0x064A),   # Arabic letters
    (0x0905, 0x0939),   # Devanagari letters
    (0x0E01, 0x0E2E),   # Thai
    (0x05D0, 0x05EA),   # Hebrew
    (0x00C0, 0x00FF),   # Latin-1 letters (and x/÷)
    (0x0100, 0x017F),   # Latin Extended-A
]
MARKS = [0x0300, 0x0301, 0x0302, 0x0303, 0x0308, 0x0327, 0x093F, 0x0940, 0x094D, 0x0E31, 0x0E34, 0x064E]
EMOJI = ["😀", "🚀", "🎉", "❤️", "👍", "👍🏻", "👍🏿", "👨‍👩‍👧", "👩‍🔬", "🏳️‍🌈", "🇩🇪", "🇺🇸",
         "🤖", "🧠", "🔥", "✨", "☕", "⚡", "🐍", "🦀", "👁️‍🗨️", "🧑‍🤝‍🧑"]
PUNCT_CHARS = list("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'") + ["…", "—", "–", "«", "»", "¿", "¡", "·", "•", "§", "¶"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", " \n", "\n ", "\t\t", "\r\n", " \t ", "    ",
          "\u00a0", "\u3000", "        "]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'M", "n't"]


def rand_word(r):
    w = r.choice(WORDS)
    k = r.random()
    if k < 0.15:
        w = w.capitalize()
    elif k < 0.2:
        w = w.upper()
    return w


def rand_script(r):
    lo, hi = r.choice(SCRIPT_RANGES)
    s = "".join(chr(r.randint(lo, hi)) for _ in range(r.randint(1, 8)))
    if r.random() < 0.2:
        s += chr(r.choice(MARKS))
    return s


def rand_number(r):
    k = r.random()
    if k < 0.4:
        return str(r.randint(0, 10 ** r.randint(1, 25)))
    if k < 0.6:
        return "%.*f" % (r.randint(1, 6), r.uniform(-1e6, 1e6))
    if k < 0.8:
        return "{:,}".format(r.randint(1000, 10 ** 12))
    return r.choice(["٣٤", "९८", "１２", "²", "½", "Ⅻ", "⑤", "0x%x" % r.randint(0, 2 ** 32)])


def rand_fragment(r):
    k = r.random()
    if k < 0.40:
        return rand_word(r)
    if k < 0.50:
        return rand_script(r)
    if k < 0.60:
        return rand_number(r)
    if k < 0.68:
        return "".join(r.choice(PUNCT_CHARS) for _ in range(r.randint(1, 5)))
    if k < 0.74:
        return r.choice(EMOJI)
    if k < 0.82:
        return rand_word(r) + r.choice(CONTRACTIONS)
    if k < 0.86:
        return r.choice(SPECIALS)
    if k < 0.90:
        return r.choice(URLS).split()[0]
    if k < 0.95:
        return r.choice(PROSE)
    return r.choice(CODE)


def rand_line(r):
    parts = []
    for _ in range(r.randint(1, 25)):
        parts.append(rand_fragment(r))
        x = r.random()
        if x < 0.7:
            parts.append(" ")
        elif x < 0.9:
            parts.append(r.choice(SPACES))
        # else: glue fragments together
    s = "".join(parts)
    if r.random() < 0.3:
        s = s.rstrip(" ")
    if r.random() < 0.1:
        s = r.choice(SPACES) + s
    return s


def corpus():
    lines = []
    lines += PROSE + CODE + UNICODE + NUMBERS + WHITESPACE + PUNCT + URLS + SPECIAL_LINES + RARE
    lines += SPECIALS
    lines += [s + " " + s for s in SPECIALS]
    # Whitespace runs of every length before a word, a digit and at the end.
    for n in range(1, 13):
        lines.append("a" + " " * n + "b")
        lines.append("a" + " " * n + "1")
        lines.append("a" + " " * n)
        lines.append("a" + "\n" * n + "b")
        lines.append("x" + " \n" * n + "y")
        lines.append("y" + "\t" * n + " z")
    r = random.Random(SEED)
    for _ in range(N_GENERATED):
        lines.append(rand_line(r))
    return lines


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for s in lines:
            j = json.dumps(s, ensure_ascii=False)
            # Keep characters some line readers treat as line breaks escaped.
            for ch in ("\u0085", "\u2028", "\u2029"):
                j = j.replace(ch, "\\u%04x" % ord(ch))
            f.write(j + "\n")
    print("wrote %s: %d lines" % (path, len(lines)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/tok_corpus.txt")
    a = ap.parse_args()
    write_lines(a.out, corpus())


if __name__ == "__main__":
    main()
