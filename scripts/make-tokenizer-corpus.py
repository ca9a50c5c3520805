#!/usr/bin/env python3
"""Writes tests/data/tokenizer/corpus.jsonl, the strings every tokenizer golden is made of.

One JSON object per line, in a fixed order:
  {"name": "<unique label>", "text": "<string>"}   the entry is valid UTF-8 without NUL bytes
  {"name": "<unique label>", "hex": "<bytes>"}     anything else (invalid UTF-8, embedded NUL)
Readers take the UTF-8 encoding of "text", or the decoded "hex", as the exact input bytes.

Part of it is written by hand; the rest is combined from those pieces with a
fixed-seed random generator, so the file comes out byte-identical on every run.
Only the Python standard library is needed. Regenerate with:
  python3 scripts/make-tokenizer-corpus.py
"""
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "tokenizer" / "corpus.jsonl"
SEED = 20261127


class Corpus:
    def __init__(self):
        self.entries = []
        self.names = set()

    def add(self, name, value):
        if name in self.names:
            raise SystemExit(f"duplicate corpus name {name!r}")
        self.names.add(name)
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None or "\x00" in text:
            self.entries.append({"name": name, "hex": data.hex()})
        else:
            self.entries.append({"name": name, "text": text})

    def add_all(self, prefix, values):
        for i, value in enumerate(values):
            self.add(f"{prefix}_{i:02d}", value)


# ---------------------------------------------------------------- hand-written

ENGLISH = [
    "The quick tokenizer test begins here.",
    "Every morning the baker lit the oven before the town woke up, and by six the street smelled of bread.",
    "Rain had been falling since Tuesday. Nobody in the office remembered what the sun looked like.",
    "She folded the map twice, put it in her coat, and decided to trust the river instead.",
    "A small robot sat on the shelf, counting the seconds between each drip from the ceiling.",
    "If the bridge is closed, take the ferry; if the ferry is late, take a book.",
    "Hello world",
    "hello world",
    "HELLO WORLD",
    "Hello, World!",
    "The committee postponed the vote (again), citing \"unforeseen circumstances\".",
    "He wrote three words on the whiteboard -- measure, then cut -- and left the room.",
    "Our recipe needs 2 cups of flour, 1 egg, and a pinch of patience.",
    "In 1969, people watched grainy pictures of boots stepping onto grey dust.",
    "Tokenizers split text into pieces; models only ever see the pieces.",
    "It was neither the best nor the worst of afternoons, merely a long one.",
    "The lighthouse keeper kept a log: wind, waves, ships, and the occasional whale.",
    "Please do not feed the pigeons. They have unionized.",
    "Why would anyone store the library's catalogue in a spreadsheet with 40 tabs?",
    "Unbelievably, the unbreakable mug broke.",
    "antidisestablishmentarianism and floccinaucinihilipilification walk into a bar",
    "e.g. i.e. etc. vs. Mr. Mrs. Dr. St. a.m. p.m.",
    "The U.S.A., the U.K., and the E.U. signed the memo.",
    "word",
    "a",
    "I",
    "Supercalifragilistic",
    "A sentence that ends without punctuation",
    "Sentence one. Sentence two! Sentence three? Sentence four...",
    "naïve café résumé coöperate façade jalapeño",
    "The Straße in München was quiet; Øystein and Åsa walked past Łódź-bound trains.",
    "Tiếng Việt có nhiều dấu thanh: à, á, ả, ã, ạ.",
    "Türkçe: İstanbul'da ılık bir gün, ığdır ve Iğdır.",
]

DIALOGUE = [
    "\"Are you coming?\" she asked.\n\"Only if there's cake,\" he replied.",
    "Q: What time is it?\nA: Time to write more tests.",
    "- Did you lock the door?\n- I think so.\n- You think so?!",
    "ALICE: I can't find the keys.\nBOB: They're in your hand.\nALICE: ...oh.",
    "User: tell me a joke\nAssistant: Why did the tokenizer cross the road? To split the difference.",
    "'Single quotes,' he said, 'are also quotes.'",
    "\u201cCurly quotes\u201d and \u2018single curly ones\u2019 look nicer in print.",
    "\u00abGuillemets\u00bb, \u201eGerman quotes\u201c and \u300cJapanese brackets\u300d.",
    "Teacher: Who can name a prime number?\nStudent: Seven!\nTeacher: Good. Another?\nStudent: Also seven.",
    "> quoted reply line\n>> deeper quote\nmy answer below",
]

CJK = [
    "\u4eca\u5929\u5929\u6c14\u5f88\u597d\uff0c\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427\u3002",
    "\u8fd9\u4e2a\u5206\u8bcd\u5668\u9700\u8981\u5904\u7406\u4e2d\u6587\u3001\u82f1\u6587\u548c\u6570\u5b57123\u3002",
    "\u5c0f\u732b\u5728\u7a97\u53f0\u4e0a\u7761\u89c9\uff0c\u9633\u5149\u7167\u5728\u5b83\u7684\u80cc\u4e0a\u3002",
    "\u9f8d\u8207\u9cf3\uff1a\u7e41\u9ad4\u5b57\u7684\u7b46\u756b\u6bd4\u8f03\u591a\u3002",
    "\u4e2d\u6587\u6807\u70b9\uff1a\uff0c\u3002\uff01\uff1f\uff1b\uff1a\u201c\u201d\uff08\uff09\u300a\u300b",
    "\u6570\u5b57\uff1a\u4e00\u3001\u4e8c\u3001\u4e09\uff0c\u4ee5\u53ca\uff11\uff12\uff13\u548c123",
    "\u6771\u4eac\u306e\u96fb\u8eca\u306f\u6642\u9593\u901a\u308a\u306b\u6765\u307e\u3059\u3002",
    "\u3072\u3089\u304c\u306a\u3068\u30ab\u30bf\u30ab\u30ca\u3068\u6f22\u5b57\u3092\u6df7\u305c\u3066\u66f8\u304d\u307e\u3059\u3002",
    "\u30b3\u30f3\u30d4\u30e5\u30fc\u30bf\u30fc\u30fb\u30d7\u30ed\u30b0\u30e9\u30df\u30f3\u30b0\u306f\u697d\u3057\u3044\uff01",
    "\u304a\u306f\u3088\u3046\u3054\u3056\u3044\u307e\u3059\u3001\u7530\u4e2d\u3055\u3093\u3002\u4eca\u65e5\u3082\u3088\u308d\u3057\u304f\u304a\u9858\u3044\u3057\u307e\u3059\u3002",
    "\uff8a\uff9d\uff76\uff78\uff76\uff80\uff76\uff85 \u534a\u89d2\u30ab\u30bf\u30ab\u30ca",
    "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc740 \ub744\uc5b4\uc4f0\uae30\ub97c \uc0ac\uc6a9\ud569\ub2c8\ub2e4.",
    "\uc548\ub155\ud558\uc138\uc694! \uc624\ub298 \uc800\ub141\uc5d0 \ubb50 \uba39\uc744\uae4c\uc694?",
    "\uc11c\uc6b8\uc758 \uc9c0\ud558\ucca0\uc740 \ub9e4\uc6b0 \ud3b8\ub9ac\ud569\ub2c8\ub2e4.",
    "\u1112\u1161\u11ab\u1100\u1173\u11af decomposed jamo",
    "\u6f22\u5b57\u304b\u306a\ud55c\uae00mixedCJK\u6587\u5b57",
]

SCRIPTS = [
    ("arabic", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0643\u0645 \u0641\u064a \u0627\u062e\u062a\u0628\u0627\u0631 \u0627\u0644\u0645\u0642\u0633\u0645."),
    ("arabic", "\u0627\u0644\u0643\u062a\u0627\u0628 \u0639\u0644\u0649 \u0627\u0644\u0637\u0627\u0648\u0644\u0629\u060c \u0648\u0627\u0644\u0642\u0644\u0645 \u0641\u064a \u0627\u0644\u062f\u0631\u062c."),
    ("arabic", "\u0639\u064e\u0631\u064e\u0628\u0650\u064a\u0651 \u0645\u064f\u0634\u064e\u0643\u0651\u064e\u0644"),
    ("arabic", "\u0627\u0644\u0639\u062f\u062f \u0661\u0662\u0663\u0664 \u064a\u0633\u0627\u0648\u064a 1234"),
    ("hebrew", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd, \u05de\u05d4 \u05e9\u05dc\u05d5\u05de\u05da?"),
    ("hebrew", "\u05d4\u05e1\u05e4\u05e8 \u05e0\u05de\u05e6\u05d0 \u05e2\u05dc \u05d4\u05de\u05d3\u05e3 \u05d4\u05e2\u05dc\u05d9\u05d5\u05df."),
    ("hebrew", "\u05d1\u05bc\u05b0\u05e8\u05b5\u05d0\u05e9\u05b4\u05c1\u05d9\u05ea with niqqud"),
    ("bidi", "The word \u05e9\u05dc\u05d5\u05dd means peace, and \u0633\u0644\u0627\u0645 does too."),
    ("hindi", "\u0928\u092e\u0938\u094d\u0924\u0947, \u0906\u092a \u0915\u0948\u0938\u0947 \u0939\u0948\u0902?"),
    ("hindi", "\u092f\u0939 \u090f\u0915 \u091b\u094b\u091f\u093e \u0938\u093e \u092a\u0930\u0940\u0915\u094d\u0937\u0923 \u0935\u093e\u0915\u094d\u092f \u0939\u0948\u0964"),
    ("hindi", "\u0915\u094d\u0937 \u0924\u094d\u0930 \u091c\u094d\u091e \u0936\u094d\u0930 \u0926\u094d\u0935"),
    ("hindi", "\u0967\u0968\u0969 \u0926\u0947\u0935\u0928\u093e\u0917\u0930\u0940 \u0905\u0902\u0915"),
    ("thai", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a \u0e22\u0e34\u0e19\u0e14\u0e35\u0e15\u0e49\u0e2d\u0e19\u0e23\u0e31\u0e1a"),
    ("thai", "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22\u0e44\u0e21\u0e48\u0e21\u0e35\u0e0a\u0e48\u0e2d\u0e07\u0e27\u0e48\u0e32\u0e07\u0e23\u0e30\u0e2b\u0e27\u0e48\u0e32\u0e07\u0e04\u0e33"),
    ("thai", "\u0e19\u0e49\u0e33\u0e41\u0e02\u0e47\u0e07\u0e43\u0e2a\u0e48\u0e41\u0e01\u0e49\u0e27"),
    ("cyrillic", "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u041a\u0430\u043a \u0434\u0435\u043b\u0430?"),
    ("cyrillic", "\u0421\u044a\u0435\u0448\u044c \u0436\u0435 \u0435\u0449\u0451 \u044d\u0442\u0438\u0445 \u043c\u044f\u0433\u043a\u0438\u0445 \u0431\u0443\u043b\u043e\u043a."),
    ("cyrillic", "\u0423\u041a\u0420\u0410\u0407\u041d\u0421\u042c\u041a\u0410 \u041c\u041e\u0412\u0410: \u0457\u0436\u0430\u043a, \u0491\u0430\u043d\u043e\u043a"),
    ("cyrillic", "\u0421\u0440\u043f\u0441\u043a\u0438: \u0459\u0443\u0431\u0430\u0432, \u045a\u0438\u0432\u0430, \u045f\u0435\u043f"),
    ("cyrillic", "\u043c\u043e\u0441\u043a\u0432\u0430 \u041c\u041e\u0421\u041a\u0412\u0410 \u041c\u043e\u0441\u043a\u0432\u0430"),
    ("greek", "\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1, \u03c4\u03b9 \u03ba\u03ac\u03bd\u03b5\u03b9\u03c2;"),
    ("greek", "\u0391\u0392\u0393\u0394\u0395 \u03b1\u03b2\u03b3\u03b4\u03b5 \u03c3\u03c2\u03a3"),
    ("greek", "\u1f08\u03c1\u03c7\u1f74 \u1f25\u03bc\u03b9\u03c3\u03c5 \u03c0\u03b1\u03bd\u03c4\u03cc\u03c2"),
    ("greek", "\u03b7 \u03c4\u03b9\u03bc\u03ae \u03c4\u03bf\u03c5 \u03c0 \u03b5\u03af\u03bd\u03b1\u03b9 3,14159"),
    ("georgian", "\u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8 \u10d4\u10dc\u10d0"),
    ("armenian", "\u0540\u0561\u0575\u0565\u0580\u0565\u0576 \u056c\u0565\u0566\u0578\u0582"),
    ("tamil", "\u0ba4\u0bae\u0bbf\u0bb4\u0bcd \u0bae\u0bca\u0bb4\u0bbf"),
    ("bengali", "\u09ac\u09be\u0982\u09b2\u09be \u09ad\u09be\u09b7\u09be"),
    ("ethiopic", "\u12a0\u121b\u122d\u129b \u124b\u1295\u124b"),
    ("khmer", "\u1797\u17b6\u179f\u17b6\u1781\u17d2\u1798\u17c2\u179a"),
]

EMOJI = [
    "\U0001F600",
    "\U0001F600\U0001F601\U0001F602\U0001F923",
    "I love pizza \U0001F355 and tacos \U0001F32E!",
    "\U0001F44B\U0001F3FB\U0001F44B\U0001F3FC\U0001F44B\U0001F3FD\U0001F44B\U0001F3FE\U0001F44B\U0001F3FF",
    "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466",
    "\U0001F469\U0001F3FD\u200D\U0001F4BB codes all night",
    "\U0001F3F3\uFE0F\u200D\U0001F308 \U0001F3F4\u200D\u2620\uFE0F",
    "\U0001F1FA\U0001F1F8\U0001F1EF\U0001F1F5\U0001F1E9\U0001F1EA\U0001F1E7\U0001F1F7",
    "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F",
    "1\uFE0F\u20E3 2\uFE0F\u20E3 #\uFE0F\u20E3 *\uFE0F\u20E3",
    "\u2764 \u2764\uFE0F \u2764\uFE0E",
    "\U0001F9D1\u200D\U0001F91D\u200D\U0001F9D1",
    "\u270C\U0001F3FF peace",
    "emoji\U0001F680inside\U0001F680words",
    "\U0001F525" * 12,
    "\U0001F1E6",
    "\U0001F3FB",
    "\u200D",
    "\u2600\u2601\u2602\u2603\u2604\u2605\u2606",
]

COMBINING = [
    "e\u0301 vs \u00e9",
    "a\u0300\u0301\u0302\u0303\u0304",
    "Z\u0351\u036b\u0343a\u0352\u0357l\u0358g\u0361o\u0335",
    "n\u0303o\u0308",
    "\u0301 combining mark at the start",
    "\u1e9b\u0323",
    "A\u030a\u212b\u00c5",
    "\ufb01 \ufb02 \ufb00 ligatures",
    "\u2460\u2461\u2462 \u2160\u2161\u2162 \u00bd \u00b2",
    "Ｆｕｌｌｗｉｄｔｈ ｌｅｔｔｅｒｓ １２３",
    "\ufeffbyte order mark at the start",
    "zero\u200bwidth\u200bspace and soft\u00adhyphen",
    "\u202eright-to-left override\u202c and \u2066isolate\u2069",
]

CODE = [
    ("python", "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n"),
    ("python", "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n        self.items.append(x)\n"),
    ("python", "squares = [n ** 2 for n in range(10) if n % 2 == 0]  # even squares"),
    ("python", "with open('data.txt', encoding='utf-8') as f:\n\tfor line in f:\n\t\tprint(line.rstrip())"),
    ("cpp", "#include <vector>\n\nint main() {\n    std::vector<int> v{1, 2, 3};\n    for (auto& x : v) x *= 2;\n    return 0;\n}\n"),
    ("cpp", "template <typename T>\nconstexpr T clamp(T v, T lo, T hi) noexcept { return v < lo ? lo : (hi < v ? hi : v); }"),
    ("cpp", "auto p = std::make_unique<Node>();\np->next = nullptr; // ok\nx <<= 3; y >>= 1; z->*mp;"),
    ("rust", "fn main() {\n    let v: Vec<u32> = (1..=5).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}\n"),
    ("rust", "impl<'a> Iterator for Words<'a> {\n    type Item = &'a str;\n    fn next(&mut self) -> Option<Self::Item> { None }\n}"),
    ("js", "const greet = (name) => `Hello, ${name}!`;\nconsole.log(greet('world'));"),
    ("js", "async function load(url) {\n  const res = await fetch(url);\n  if (!res.ok) throw new Error(res.status);\n  return res.json();\n}"),
    ("js", "let a = b === c ? d ?? e : f?.g; a &&= 1; a ||= 2; a **= 3;"),
    ("sql", "SELECT id, name, COUNT(*) AS n\nFROM users u\nJOIN orders o ON o.user_id = u.id\nWHERE u.created_at >= '2024-01-01'\nGROUP BY id, name\nORDER BY n DESC;"),
    ("sql", "INSERT INTO t (a, b) VALUES (1, 'it''s'), (2, NULL);"),
    ("shell", "#!/bin/sh\nset -eu\nfor f in *.txt; do\n  wc -l \"$f\" | awk '{print $1}'\ndone 2>/dev/null"),
    ("shell", "grep -rn 'TODO' src/ | sort -u > todo.txt && echo \"done: $(wc -l < todo.txt)\""),
    ("json", "{\"name\": \"tiller\", \"version\": 1, \"tags\": [\"llm\", \"c++\"], \"nested\": {\"ok\": true, \"pi\": 3.14}}"),
    ("json", "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": null\n}"),
    ("html", "<!DOCTYPE html>\n<html>\n<head><title>Test</title></head>\n<body>\n  <p class=\"note\">Hi &amp; bye</p>\n</body>\n</html>"),
    ("html", "<div id=\"app\"><span>&lt;not a tag&gt;</span><br/><img src=\"a.png\" alt=\"\"></div>"),
    ("go", "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n"),
    ("yaml", "server:\n  port: 8080\n  hosts:\n    - alpha\n    - beta\n"),
    ("markdown", "# Title\n\n* item one\n* item two\n\n```python\nprint(1)\n```\n"),
    ("regex", "^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@(?:[a-z0-9-]+\\.)+[a-z]{2,}$"),
    ("latex", "\\begin{equation}\n  E = mc^2 \\quad \\frac{a}{b} \\sum_{i=0}^{n} x_i\n\\end{equation}"),
    ("diff", "--- a/file.c\n+++ b/file.c\n@@ -1,3 +1,3 @@\n-int x = 1;\n+int x = 2;\n"),
]

WHITESPACE = [
    ("empty", ""),
    ("space1", " "),
    ("space2", "  "),
    ("space3", "   "),
    ("tab1", "\t"),
    ("newline1", "\n"),
    ("cr1", "\r"),
    ("crlf1", "\r\n"),
    ("crlf_lines", "first line\r\nsecond line\r\nthird line\r\n"),
    ("mixed_eol", "unix\nwindows\r\nold mac\rend"),
    ("lead_space", " leading space"),
    ("lead_spaces", "     five leading spaces"),
    ("trail_space", "trailing space "),
    ("trail_spaces", "trailing spaces     "),
    ("both_spaces", "   both sides   "),
    ("inner_spaces", "a  b   c    d     e"),
    ("tabs_inner", "col1\tcol2\t\tcol3\t\t\tcol4"),
    ("tab_space_mix", " \t \t  \t\t   \t"),
    ("ws_soup", " \n\t\r\n \t\n\n  \r\r\n\t "),
    ("blank_lines", "para one\n\n\npara two\n\n\n\n\npara three"),
    ("indent_mix", "\tif x:\n\t    y()\n    \tz()\n"),
    ("vt_ff", "vertical\x0btab and form\x0cfeed"),
    ("nbsp", "non\u00a0breaking\u00a0space \u00a0"),
    ("unicode_spaces", "en\u2002em\u2003thin\u2009hair\u200aideo\u3000narrow\u202f."),
    ("line_sep", "line\u2028separator and paragraph\u2029separator"),
    ("newline_then_word", "\nword"),
    ("word_then_newlines", "word\n\n\n"),
    ("space_newline", " \n"),
    ("newline_space", "\n "),
    ("spaces_before_punct", "wait   ...   what   ?!"),
]

NUMBERS = [
    "1", "12", "123", "1234", "12345", "123456", "1234567", "1234567890123",
    "0", "007", "000000", "3.14", "3.14159265358979", "-42", "+7", "1e10", "6.022e23", "-0.0",
    "1,000,000", "1.000.000,50", "12,345.67", "$1,299.99", "\u20ac5", "50%", "\u00a3100k",
    "+1 (555) 012-3456", "555-0199", "+44 20 7946 0000", "2024-03-15", "15/03/2024", "23:59:59",
    "v1.2.3", "192.168.0.1", "0xDEADBEEF", "0b101010", "1st 2nd 3rd 4th 21st 100th",
    "In 2023 there were 8,045,311,447 people, give or take 12.",
    "99 bottles, 98 bottles, 97 bottles",
    "9" * 40,
    "31415926535897932384626433832795028841971",
]

CONTRACTIONS = [
    "don't", "DON'T", "Don't", "can't won't shouldn't", "I'm you're he's she's it's we're they're",
    "I've you've we've they've", "I'll you'll we'll", "I'd you'd he'd",
    "We'Ll", "she'S", "THEY'RE", "i'M", "YOU'VE", "he'D", "It'S",
    "rock 'n' roll", "'tis the season", "the dogs' bowls", "o'clock O'Brien",
    "don\u2019t can\u2019t won\u2019t",
    "'s 't 're 've 'm 'll 'd",
    "'S 'T 'RE 'VE 'M 'LL 'D",
]

SPECIAL_TOKENS = [
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<start_of_turn>", "<end_of_turn>",
    "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "</s>", "<s>", "[multimodal]",
    "<start_of_image>", "<unused0>", "<unused6241>", "<repo_name>", "<file_sep>",
    "<|im_start|>user\nHello there!<|im_end|>\n<|im_start|>assistant\n",
    "<start_of_turn>user\nHello there!<end_of_turn>\n<start_of_turn>model\n",
    "<bos><start_of_turn>user\nhi<end_of_turn>",
    "<|im_start|><|im_end|><|endoftext|>",
    "<|im_end|><|im_end|><|im_end|>",
    " <|im_start|> ", "\n<|im_end|>\n", "text<|endoftext|>more text",
    "<start_of_turn>model<end_of_turn>", "<eos>text after eos", "x<pad>y<pad>z",
    "<|im_sta", "<|im_start|", "|im_start|>", "<|im_end", "<|endoftext", "<start_of_tur",
    "<end_of_turn", "start_of_turn>", "<bo", "<bos", "bos>", "<eo", "<eos", "<pa",
    "<|IM_START|>", "<BOS>", "< |im_end| >", "<<|im_end|>>", "<|im_start|im_end|>",
    "<|<|im_start|>|>", "<start_of_turn><start_of_turn>", "<unused99999>",
]

PUNCTUATION = [
    ".", ",", "!", "?", ";", ":", "-", "'", "\"", "(", ")", "[", "]", "{", "}", "<", ">", "/",
    "\\", "|", "@", "#", "$", "%", "^", "&", "*", "_", "=", "+", "~", "`",
    "...", "?!", "!!!", "--", "---", "->", "=>", "::", "...?!",
    "\u2026", "\u2014", "\u2013", "\u00bf\u00a1", "\u3001\u3002",
    "!@#$%^&*()_+-=[]{}|;':\",./<>?`~",
]

URLS = [
    "https://example.com",
    "Visit https://www.example.org/path/to/page?query=1&lang=en#section for details.",
    "http://localhost:8080/api/v2/items/42",
    "ftp://files.example.net/pub/archive.tar.gz",
    "mailto:someone@example.com",
    "user.name+tag@sub.example.co.uk",
    "https://\u4f8b\u3048.\u30c6\u30b9\u30c8/\u30d1\u30b9?q=\u691c\u7d22",
    "file:///home/user/My%20Documents/notes.txt",
    "C:\\Users\\someone\\AppData\\Local\\Temp\\x.log",
]

MATH = [
    "\u2200x \u2208 \u211d, \u2203y: x + y = 0",
    "\u222b\u2080\u00b9 x\u00b2 dx = \u2153",
    "\u2211_{i=1}^{n} i = n(n+1)/2",
    "a \u2264 b \u2265 c \u2260 d \u2248 e \u2261 f",
    "\u221a2 \u2248 1.41421356, \u03c0 \u2248 3.14159, \u221e",
    "\u00ac(p \u2227 q) \u21d4 \u00acp \u2228 \u00acq",
    "2 \u00d7 3 \u00f7 4 \u2212 5 \u00b1 6",
    "f(x) = 3x^2 + 2x - 1; f'(x) = 6x + 2",
    "\U0001D400\U0001D401\U0001D402 \U0001D538\U0001D539 \U0001D4D0",
    "x\u2081 + x\u2082 = y\u00b2",
]

MIXED_SCRIPT = [
    "Hello\u4e16\u754cWorld",
    "\u041f\u0440\u0438\u0432\u0435\u0442world",
    "abc\u0391\u0392\u0393def",
    "\u0645\u0631\u062d\u0628\u0627hello\u05e9\u05dc\u05d5\u05dd",
    "\u30c6\u30b9\u30c8test\ud14c\uc2a4\ud2b8",
    "pa\u0443\u0440al",
    "\u0928\u092e\u0938\u094d\u0924\u0947Namaste123",
    "CamelCaseWordsWithNoSpaces",
    "snake_case_identifier_name",
    "kebab-case-identifier-name",
    "HTTPServerURLParser",
]

CONTROL_CHARS = [
    "bell\x07 and backspace\x08",
    "\x1b[31mred text\x1b[0m",
    "delete\x7fchar",
    "\x01\x02\x03\x1f",
    "\u0085next line",
]

INVALID_UTF8 = [
    ("lone_cont_80", b"\x80"),
    ("lone_cont_bf", b"\xbf"),
    ("lone_conts", b"\x80\x81\x82\x83"),
    ("cont_in_word", b"ab\x80cd"),
    ("trunc2_end", b"abc\xc3"),
    ("trunc2_mid", b"\xc3 abc"),
    ("trunc3_1", b"\xe2"),
    ("trunc3_2", b"price \xe2\x82 euro"),
    ("trunc4_3", b"\xf0\x9f\x98"),
    ("trunc4_then_emoji", b"\xf0\x9f\xf0\x9f\x98\x80"),
    ("overlong_slash2", b"\xc0\xaf"),
    ("overlong_slash3", b"\xe0\x80\xaf"),
    ("overlong_slash4", b"\xf0\x80\x80\xaf"),
    ("overlong_nul", b"\xc0\x80"),
    ("overlong_c1", b"\xc1\xbf"),
    ("byte_ff", b"\xff"),
    ("byte_fe", b"\xfe"),
    ("bytes_fffe", b"\xff\xfe"),
    ("ff_in_text", b"hello \xff world"),
    ("surrogate_high", b"\xed\xa0\x80"),
    ("surrogate_low", b"\xed\xbf\xbf"),
    ("surrogate_pair", b"\xed\xa0\xbd\xed\xb8\x80"),
    ("above_max", b"\xf4\x90\x80\x80"),
    ("lead_f5", b"\xf5\x80\x80\x80"),
    ("lead_f8", b"\xf8\x88\x80\x80\x80"),
    ("lead_fc", b"\xfc\x84\x80\x80\x80\x80"),
    ("latin1_text", "caf\u00e9 na\u00efve".encode("latin-1")),
    ("cp1252_quotes", b"\x93quoted\x94 and \x96 dash"),
    ("invalid_after_cjk", "\u4e2d\u6587".encode() + b"\xe4\xb8"),
    ("invalid_before_special", b"\xff<|im_start|>\xfe"),
    ("invalid_in_special", b"<|im_\xffstart|>"),
    ("invalid_before_turn", b"\x80<start_of_turn>"),
    ("all_high_bytes", bytes(range(0x80, 0x100))),
    ("mixed_valid_invalid", b"ok \xe2\x9c\x93 bad \xe2\x9c ok \xc3\xa9 bad \xa9"),
    ("spaces_invalid", b"   \x80   \xff\n\t\xc3"),
]

NUL_BYTES = [
    ("nul_only", b"\x00"),
    ("nul_three", b"\x00\x00\x00"),
    ("nul_inside", b"a\x00b"),
    ("nul_words", b"hello\x00 world\x00"),
    ("nul_special", b"<|im_start|>\x00<|im_end|>"),
    ("nul_gemma_special", b"<start_of_turn>\x00<end_of_turn>"),
    ("nul_lead", b"\x00leading nul"),
    ("nul_in_utf8", "\u00e9\x00\u4e2d".encode()),
    ("all_ascii_bytes", bytes(range(0, 0x80))),
]


# ---------------------------------------------------------------- programmatic

def sweeps(corpus):
    # runs of one character at lengths around the boundaries tokenizers care about
    lengths = [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100]
    for ch, label in [(" ", "sp"), ("\n", "nl"), ("\t", "tab")]:
        for n in lengths:
            corpus.add(f"run_{label}_{n}", ch * n)
    for ch, label in [("a", "a"), ("=", "eq"), ("-", "dash"), ("0", "zero"), ("\u4e00", "cjk1"),
                      ("\u00e9", "eacute"), ("\U0001F600", "grin"), ("\r\n", "crlf"), ("ab", "ab")]:
        for n in [2, 3, 10, 50, 257]:
            corpus.add(f"rep_{label}_{n}", ch * n)
    # a word preceded by growing runs of spaces (gpt2-style splitting keeps one with the word)
    for n in range(0, 9):
        corpus.add(f"spaces_word_{n}", " " * n + "word")
    for n in [1, 2, 3, 4]:
        corpus.add(f"newlines_spaces_{n}", ("\n" + " " * n) * 3 + "end")
    # digit strings of every length 1..20 (the number splitting rules group them in threes)
    for n in range(1, 21):
        corpus.add(f"digits_{n}", "".join(str((i + 1) % 10) for i in range(n)))
    for n in [1, 2, 3, 4, 7]:
        corpus.add(f"digits_in_word_{n}", "abc" + "7" * n + "def")


def long_words(corpus, rng):
    letters = "abcdefghijklmnopqrstuvwxyz"
    corpus.add("long_word_latin", "".join(rng.choice(letters) for _ in range(240)))
    corpus.add("long_word_caps", "".join(rng.choice(letters.upper()) for _ in range(210)))
    corpus.add("long_word_alnum", "".join(rng.choice(letters + "0123456789") for _ in range(300)))
    corpus.add("long_word_cyrillic", "".join(chr(rng.randrange(0x430, 0x450)) for _ in range(220)))
    corpus.add("long_word_cjk", "".join(chr(rng.randrange(0x4E00, 0x9FA0)) for _ in range(260)))
    corpus.add("long_word_hangul", "".join(chr(rng.randrange(0xAC00, 0xD7A4)) for _ in range(205)))
    corpus.add("long_word_repeat", "tokenization" * 20)
    corpus.add("long_word_camel", "".join(rng.choice(["Get", "Set", "Value", "Manager", "Factory",
                                                      "Proxy", "Bean", "Impl"]) for _ in range(40)))
    corpus.add("long_url", "https://example.com/" + "/".join(
        "".join(rng.choice(letters) for _ in range(rng.randrange(3, 12))) for _ in range(30)))
    corpus.add("long_hex", "".join(rng.choice("0123456789abcdef") for _ in range(256)))
    corpus.add("long_base64", "".join(rng.choice(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(300)) + "==")


def special_adjacency(corpus):
    tokens = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<start_of_turn>", "<end_of_turn>",
              "<bos>", "<eos>", "<pad>"]
    contexts = [("sp", " {} "), ("nl", "\n{}\n"), ("word", "a{}b"), ("lead", "{}hello"),
                ("trail", "hello{}"), ("double", "{}{}")]
    for t_index, token in enumerate(tokens):
        for label, pattern in contexts:
            corpus.add(f"special_{t_index}_{label}", pattern.replace("{}", token))


def case_variants(corpus):
    words = ["don't", "we'll", "she's", "they've", "I'm", "you'd", "it's"]
    for word in words:
        base = word.replace("'", "").lower()
        corpus.add(f"case_{base}_upper", word.upper())
        corpus.add(f"case_{base}_title", word.title())
        corpus.add(f"case_{base}_swap", word.swapcase())


def random_mixes(corpus, rng, pools, count):
    separators = [" ", "", "\n", "  ", "\t", ", ", "\r\n", " - ", "\n\n", ". "]
    for i in range(count):
        parts = []
        for _ in range(rng.randrange(2, 6)):
            pool = rng.choice(pools)
            parts.append(rng.choice(pool))
            parts.append(rng.choice(separators))
        text = "".join(parts[:-1])
        if rng.random() < 0.2:
            text = " " + text
        if rng.random() < 0.2:
            text = text + rng.choice([" ", "\n", "  \n"])
        corpus.add(f"mix_{i:03d}", text)


def random_byte_mixes(corpus, rng, count):
    fragments = [b"abc", b" ", b"\n", "\u00e9".encode(), "\u4e2d".encode(), "\U0001F600".encode(),
                 b"\x80", b"\xff", b"\xc3", b"\xe2\x82", b"\xf0\x9f", b"\xed\xa0\x80", b"\xc0\xaf",
                 b"\x00", b"<|im_end|>", b"<eos>", b"123"]
    for i in range(count):
        data = b"".join(rng.choice(fragments) for _ in range(rng.randrange(3, 10)))
        corpus.add(f"bytemix_{i:02d}", data)


def build():
    rng = random.Random(SEED)
    corpus = Corpus()
    corpus.add_all("en", ENGLISH)
    corpus.add_all("dialogue", DIALOGUE)
    corpus.add_all("cjk", CJK)
    counts = {}
    for script, text in SCRIPTS:
        counts[script] = counts.get(script, 0) + 1
        corpus.add(f"{script}_{counts[script]:02d}", text)
    corpus.add_all("emoji", EMOJI)
    corpus.add_all("combining", COMBINING)
    counts = {}
    for language, text in CODE:
        counts[language] = counts.get(language, 0) + 1
        corpus.add(f"code_{language}_{counts[language]:02d}", text)
    for name, text in WHITESPACE:
        corpus.add(f"ws_{name}", text)
    corpus.add_all("num", NUMBERS)
    corpus.add_all("contraction", CONTRACTIONS)
    corpus.add_all("special", SPECIAL_TOKENS)
    corpus.add_all("punct", PUNCTUATION)
    corpus.add_all("url", URLS)
    corpus.add_all("math", MATH)
    corpus.add_all("mixedscript", MIXED_SCRIPT)
    corpus.add_all("control", CONTROL_CHARS)
    for name, data in INVALID_UTF8:
        corpus.add(f"invalid_{name}", data)
    for name, data in NUL_BYTES:
        corpus.add(name, data)

    sweeps(corpus)
    long_words(corpus, rng)
    special_adjacency(corpus)
    case_variants(corpus)
    pools = [ENGLISH, [t for _, t in SCRIPTS], CJK, EMOJI, NUMBERS, CONTRACTIONS, PUNCTUATION,
             SPECIAL_TOKENS, MATH, MIXED_SCRIPT, COMBINING, URLS]
    random_mixes(corpus, rng, pools, 60)
    random_byte_mixes(corpus, rng, 12)
    # the whole hand-written prose as one document, and a chat-like document
    corpus.add("doc_english", "\n\n".join(ENGLISH + DIALOGUE))
    corpus.add("doc_multilingual", "\n".join(CJK + [t for _, t in SCRIPTS]))
    corpus.add("doc_code", "\n\n".join(t for _, t in CODE))
    # Characters on the edge of "whitespace": U+180E is not White_Space for
    # llama.cpp (though some regex engines' \s match it); U+001C..U+001F are
    # separators but not White_Space either.
    corpus.add("edge_mongolian_vowel_separator", "x \u180ey a\u180e\u180eb \u180e")
    corpus.add("edge_information_separators", "a\x1cb \x1dc\x1e \x1fd")
    corpus.add("edge_spaces_around_180e", "   \u180e   end")
    return corpus.entries


def main():
    entries = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        for entry in entries:
            f.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {OUT.relative_to(REPO)} ({len(entries)} entries)", file=sys.stderr)


if __name__ == "__main__":
    main()
