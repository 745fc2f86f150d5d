"""The text corpora that tokenizer parity is checked on, read from ../shared/data by path."""

import random

from conftest import shared_path

XNLI_LANGUAGES = "ar bg de el en es fr hi ru sw th tr ur vi zh".split()


def _lines(path, encoding="utf-8"):
    with open(path, encoding=encoding, newline="") as f:
        return [line.rstrip("\r\n") for line in f]


def sst2_dev():
    return [line.split("\t")[0] for line in _lines(shared_path("sst2", "dev.tsv"))[1:] if line]


def sst2_train_sample(size=10_000, seed=0):
    rows = [line.split("\t")[0] for line in _lines(shared_path("sst2", "train.tsv"))[1:] if line]
    return random.Random(seed).sample(rows, size)


def xnli(language):
    """Premises and hypotheses of one XNLI dev language."""
    texts = []
    for line in _lines(shared_path("xnli-dev", f"dev-{language}.tsv")):
        fields = line.split("\t")
        if len(fields) >= 2:
            texts.extend(fields[:2])
    return texts


def udhr():
    texts = []
    for path in sorted(shared_path("unicode", "udhr").iterdir()):
        if path.is_file():
            texts.extend(_lines(path))
    return texts


def misc(name):
    return _lines(shared_path("unicode", "misc", name))


# Characters the fuzz draws from: every regex class, every whitespace kind, contractions,
# scripts with combining marks, astral emoji with ZWJ and skin tones, special-token text.
_FUZZ_PIECES = (
    list("abcXYZéßœΩжя")
    + list("0123456789٣४௫Ⅻ½")
    + list(".,;:!?-_()[]{}\"/\\@#$%^&*~`|+=<>")
    + ["'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "''", "n't", "'x"]
    + [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x85", "\xa0", "\u1680", "\u2000", "\u2009",
       "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\x1c", "\x1f", "\u200b", "\u180e"]
    + list("漢字かなカナ한국어العربيةहिन्दीไทยភាសាኢትዮጵያ") + ["\u0301", "\u0308", "\u200d", "\u200c"]
    + ["😀", "👍🏽", "👨\u200d👩\u200d👧", "🇯🇵", "\U0001F9D1\u200d\U0001F680", "𝔘𝔫𝔦", "\U00010348"]
    + ["<s>", "</s>", "<mask>", "<pad>", "<unk>", "\x00", "\x7f", "\ufeff", "\ufffd"]
)


def fuzz(count=20_000, seed=1234):
    """Seeded random strings mixing scripts, whitespace kinds, contractions, digits and emoji."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        pieces = []
        for _ in range(rng.randint(0, 24)):
            if rng.random() < 0.08:  # any scalar value, recently assigned ones included
                cp = rng.randint(0x20, 0x10FFFF)
                pieces.append(chr(cp) if not 0xD800 <= cp <= 0xDFFF else "?")
            else:
                pieces.append(rng.choice(_FUZZ_PIECES))
        texts.append("".join(pieces))
    return texts


def all_corpora():
    """`{name: [text, ...]}` of every corpus the parity test covers."""
    corpora = {"sst2-dev": sst2_dev(), "sst2-train-10k": sst2_train_sample()}
    for language in XNLI_LANGUAGES:
        corpora[f"xnli-{language}"] = xnli(language)
    corpora["udhr"] = udhr()
    corpora["blns"] = misc("blns.txt")
    corpora["utf8-demo"] = misc("UTF-8-demo.txt")
    corpora["emoji-test"] = misc("emoji-test-16.0.txt")
    corpora["fuzz-20k"] = fuzz()
    return corpora
