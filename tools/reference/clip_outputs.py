"""Reference outputs of transformers' CLIPTokenizer and CLIPTextModel (the text side of Stable Diffusion).

Writes (every file byte-identical on a rerun):
  spec/fixtures/tokenizers/clip/merges.txt.gz
      the real CLIP BPE merges (open_clip's bpe_simple_vocab_16e6.txt.gz, the 48,894 merges CLIP uses) in
      transformers' merges.txt form; the 49,408-token vocabulary is rebuilt from them as CLIP does.
  spec/fixtures/tokenizers/clip/cases.json
      >= 300 sentences and the ids transformers' CLIPTokenizer gives for them with the real vocabulary under
      several tokenizer configs (SD 1.x, SD 2.x pad "!", none, as saved by transformers 5), and with the tiny-sd
      tokenizer; "ids" is the untruncated encoding, "ids77" the padded/truncated one without its padding.
  spec/fixtures/models/clip-gelu-sd2/{text_encoder,tokenizer}/
      a second small CLIP text encoder (gelu, 3 layers, 3 heads, width 24, 80 positions; SD 2.x's token ids
      bos 0 / eos 2 / pad 1, so the pooled output takes transformers' legacy argmax path; weights named
      text_model.* with the position_ids buffer, as SD 1.x/2.x checkpoints are) with an SD 2.x-style tokenizer
      (pad "!", tokenizer.json), random weights from a fixed seed. (tiny-sd's config has eos_token_id 2513: the
      first-end-token path.)
  spec/fixtures/reference/clip/{tiny_sd,gelu_sd2}.safetensors + prompts.json
      per model: input_ids [P,77], last_hidden_state [P,77,d], pooler_output [P,d] for the prompts of
      prompts.json, and clip_skip_<k> [6,77,d] (diffusers' clip_skip) for the first 6 prompts.
"""
import gzip
import hashlib
import importlib.util
import io
import json
import random
import shutil
import tempfile
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

NUM_MERGES = 49152 - 256 - 2
SKIP_PROMPTS = 6


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    """CLIP's vocabulary from its merges, as OpenAI's SimpleTokenizer builds it."""
    base = list(bytes_to_unicode().values())
    tokens = base + [t + "</w>" for t in base] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return dict(zip(tokens, range(len(tokens))))


def open_clip_merges() -> list[tuple[str, str]]:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.submodule_search_locations is None:
        raise SystemExit("open_clip_torch is not installed in this venv (its BPE file is the real CLIP vocabulary)")
    bpe = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe).read().decode("utf-8").split("\n")[1 : NUM_MERGES + 1]
    return [tuple(line.split()) for line in lines]


def write_gzip(path: Path, data: bytes) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(data)
    path.write_bytes(buf.getvalue())


def merges_text(merges: list[tuple[str, str]]) -> str:
    return "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)


def compact_json(obj, indent: str = "") -> str:
    """JSON with objects and lists of containers spread one item a line, and flat lists kept on one line."""
    inner = indent + " "
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(k)}: {compact_json(v, inner)}" for k, v in sorted(obj.items())]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(obj, list) and obj and any(isinstance(v, (list, dict)) for v in obj) or (
            isinstance(obj, list) and len(obj) > 1 and all(isinstance(v, str) for v in obj)):
        return "[\n" + ",\n".join(inner + compact_json(v, inner) for v in obj) + "\n" + indent + "]"
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, sort_keys=True)


def write_json(path: Path, obj) -> None:
    path.write_text(compact_json(obj) + "\n")


# ---------------------------------------------------------------------------------------------------------------
# Sentences

HANDWRITTEN = [
    "a photograph of an astronaut riding a horse",
    "A cat sitting on a table",
    "a painting of a dog in the style of van gogh",
    "a high quality photo of a zebra, 4k, highly detailed",
    "((masterpiece)), best quality, 1girl, solo, [[blurry]], {red|blue} eyes",
    "oil painting of a castle on a hill at sunset, trending on artstation",
    "  leading and trailing spaces  ",
    "multiple    spaces   between\twords\nand\nnewlines\r\nand crlf",
    "",
    "   ",
    "!!!",
    "...???!!!",
    "don't DON'T it's IT'S they're we've I'm you'll he'd she'D",
    "it’s a curly apostrophe ‘quoted’ “double quoted”",
    "'s 't 're 've 'm 'll 'd",
    "rock'n'roll o'clock",
    "café naïve résumé façade Zürich Ångström",
    "cafe\u0301 nai\u0308ve (decomposed accents)",
    "ΟΔΟΣ ΣΟΦΙΑΣ Σ σ ς",
    "İstanbul ıi STRASSE straße ǅ ǈ",
    "Москва — столица России",
    "東京タワーの夜景",
    "漢字と日本語のテキスト",
    "서울의 밤 풍경",
    "مرحبا بالعالم",
    "שלום עולם",
    "हिन्दी में एक वाक्य",
    "ภาษาไทย",
    "a cat 🐱 and a dog 🐶",
    "family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 thumbs 👍🏽 keycap 1️⃣",
    "✨🌈🔥💯",
    "math: x² + y² = z², ½ ¼ ¾, ∑ ∫ √ ∞ ≠ ≤",
    "fullwidth ＡＢＣ １２３ ｈｅｌｌｏ",
    "ligatures ﬁ ﬂ and roman numerals Ⅻ ⅷ",
    "arabic-indic digits ٠١٢٣ and devanagari ४२",
    "numbers 1234567890 3.14159 1,000,000 2nd 4K 8k uhd 1920x1080 -42 +7",
    "a 100% real photo, $5 & #1 @home ~ ^_^ :) :-( <3 </3",
    "<|startoftext|>a photo<|endoftext|>",
    "<|endoftext|>",
    "a <|ENDOFTEXT|> b <|EndOfText|> c <|startoftext|>",
    "<|endoftext|<|endoftext|>|>",
    "hello! world! !!",
    "!a!b!c!",
    "nbsp\u00a0space em\u2003space ideographic\u3000space",
    "nel\u0085line separator\u2028paragraph\u2029end",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    "mongolian\u180evowel separator",
    "control\x01chars\x7fand\x00nul",
    "tab\t\t\tsoup\x0bvertical\x0cformfeed",
    "a" * 100,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "www.example.com/path?query=1&x=y https://huggingface.co",
    "email@example.com #hashtag @mention",
    "C++ C# .NET node.js 2+2=4 a-b_c/d\\e|f",
    "(((((nested))))) [[[[brackets]]]] {{{{braces}}}}",
    "---___===+++***",
    "Ǆemal ǅ ǆ",
    "Ⓐ ⓑ Ⅽ ⅽ",
    "The Quick Brown Fox Jumps Over The Lazy Dog",
]

LONG = [
    " ".join(["a beautiful painting of a serene mountain lake surrounded by pine trees"] * 8),
    ", ".join(f"detail {i}" for i in range(60)),
    "masterpiece, best quality, " * 30,
    "🐱" * 90,
    " ".join("word" for _ in range(76)),
    " ".join("word" for _ in range(75)),
    " ".join("word" for _ in range(74)),
    "!" * 200,
    "東京" * 60,
]

FRAGMENTS = [
    "cat", "dog", "horse", "zebra", "tree", "car", "photo", "painting", "of", "a", "the", "in", "with", "on",
    "Sunset", "MOUNTAIN", "river", "café", "naïve", "ΣΟΦΙΑ", "Straße", "İzmir", "東京", "서울", "москва", "🐱", "🐶",
    "👍🏽", "🇫🇷", "✨", "2", "42", "3.5", "1,000", "4K", "x²", "½", "!!", "?", "...", ",", ";", ":", "-", "--", "'s",
    "'t", "n't", "’s", "(", ")", "((", "))", "[", "]", "{", "}", "<|endoftext|>", "<|startoftext|>", "#", "@", "&",
    "$", "%", "*", "+", "=", "/", "\\", "|", "~", "`", "^", "_", "\"", "'", "\u00a0", "\u3000", "\u200b", "ﬁ",
    "ＡＢＣ", "e\u0301", "Ⅻ", "٣", "hello", "WORLD", "It's", "DON'T", "o'clock", "art", "station", "ultra", "hd",
]
SEPARATORS = [" ", " ", " ", "  ", ", ", "\t", "\n", "", "!", " - ", "\u00a0"]


def sentences() -> list[str]:
    rng = random.Random(1234)
    generated = []
    for _ in range(260):
        n = rng.randint(1, 24)
        parts = []
        for _ in range(n):
            parts.append(rng.choice(FRAGMENTS))
            parts.append(rng.choice(SEPARATORS))
        generated.append("".join(parts[:-1]))
    for _ in range(6):
        generated.append(" ".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(60, 120))))
    return HANDWRITTEN + LONG + generated


PROMPTS = [
    "a photograph of an astronaut riding a horse",
    "a cat sitting on a table",
    "A DOG, running on the beach!!!",
    "oil painting of a castle on a hill at sunset, trending on artstation",
    "",
    "café naïve résumé — 東京タワー 🐱🐶",
    " ".join(["a beautiful painting of a serene mountain lake surrounded by pine trees"] * 8),
    "((masterpiece)), best quality, [[blurry]], {red|blue} eyes",
    "it's 4K, 1920x1080, 100% real",
    "a zebra",
    "a horse",
    "the quick brown fox jumps over the lazy dog",
    "numbers 1234567890 and ½ ¾",
    "hello! world! !!",
    "ΟΔΟΣ ΣΟΦΙΑΣ",
    "a red car parked in front of a tree",
    "portrait of a woman, highly detailed, sharp focus",
    "masterpiece, best quality, " * 30,
    "a <|endoftext|> b",
    "watercolor of a lighthouse in a storm",
    "a tree in winter",
    "a sketch of a robot drinking coffee",
]


# ---------------------------------------------------------------------------------------------------------------
# Tokenizer configs (as diffusers Stable Diffusion folders ship them)

def added(content: str, normalized: bool) -> dict:
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": normalized, "rstrip": False,
            "single_word": False}


def plain_added(content: str, normalized: bool) -> dict:
    d = added(content, normalized)
    del d["__type"]
    return d


SD1_CONFIG = {
    "add_prefix_space": False, "bos_token": added("<|startoftext|>", True), "do_lower_case": True,
    "eos_token": added("<|endoftext|>", True), "errors": "replace", "model_max_length": 77,
    "name_or_path": "openai/clip-vit-large-patch14", "pad_token": "<|endoftext|>",
    "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer",
    "unk_token": added("<|endoftext|>", True),
}
SD1_MAP = {"bos_token": plain_added("<|startoftext|>", True), "eos_token": plain_added("<|endoftext|>", True),
           "pad_token": "<|endoftext|>", "unk_token": plain_added("<|endoftext|>", True)}
# As transformers 4.3x saves a CLIP tokenizer: an added_tokens_decoder with each token's flags.
DECODER_CONFIG = {
    "added_tokens_decoder": {
        "49406": {**plain_added("<|startoftext|>", True), "special": True},
        "49407": {**plain_added("<|endoftext|>", False), "special": True},
    },
    "bos_token": "<|startoftext|>", "clean_up_tokenization_spaces": True, "do_lower_case": True,
    "eos_token": "<|endoftext|>", "errors": "replace", "model_max_length": 77, "pad_token": "<|endoftext|>",
    "tokenizer_class": "CLIPTokenizer", "unk_token": "<|endoftext|>",
}
SD2_CONFIG = {**SD1_CONFIG, "name_or_path": "stabilityai/stable-diffusion-2", "pad_token": "!"}
SD2_MAP = {**SD1_MAP, "pad_token": "!"}


def write_tokenizer_folder(d: Path, vocab: dict, merges: list, config: dict | None, special_map: dict | None) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (d / "merges.txt").write_text(merges_text(merges))
    if config is not None:
        (d / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    if special_map is not None:
        (d / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2))


def encode_case(tok: CLIPTokenizer, texts: list[str], with_full: bool, subset: list[int] | None = None) -> dict:
    """ids77 (and with_full, the untruncated ids) of the texts, or of those at `subset` (then listed as indices)."""
    out = {"pad_id": tok.pad_token_id, "max_length": tok.model_max_length, "ids77": []}
    if subset is not None:
        out["indices"] = subset
        texts = [texts[i] for i in subset]
    if with_full:
        out["ids"] = [tok(t).input_ids for t in texts]
    for t in texts:
        e = tok(t, padding="max_length", max_length=77, truncation=True)
        n = sum(e.attention_mask)
        assert all(i == tok.pad_token_id for i in e.input_ids[n:]) and len(e.input_ids) == 77
        out["ids77"].append(e.input_ids[:n])
    return out


def tokenizer_cases(root: Path, merges: list, tmp: Path) -> dict:
    texts = sentences()
    vocab = clip_vocab(merges)
    assert len(vocab) == 49408, len(vocab)
    configs = {"sd1": (SD1_CONFIG, SD1_MAP), "sd2": (SD2_CONFIG, SD2_MAP), "none": (None, None),
               "decoder": (DECODER_CONFIG, None)}
    # The other configs differ from SD 1.x only in their special tokens: check them on the sentences that can
    # tell (special-token text, "!", upper case) and a sample of the rest.
    subset = [i for i, t in enumerate(texts) if i < 40 or "<|" in t or "!" in t or "<|" in t.lower()]
    cases = {}
    for name, (config, special_map) in configs.items():
        d = tmp / f"tok_{name}"
        write_tokenizer_folder(d, vocab, merges, config, special_map)
        tok = CLIPTokenizer.from_pretrained(d)
        cases[name] = {"tokenizer_config": config or {}, "special_tokens_map": special_map or {},
                       **encode_case(tok, texts, with_full=name == "sd1", subset=None if name == "sd1" else subset)}
        if name == "sd1":
            # As transformers 5 saves it: tokenizer_config.json with added_tokens_decoder.
            saved = tmp / "tok_saved"
            tok.save_pretrained(saved)
            saved_config = json.loads((saved / "tokenizer_config.json").read_text())
            saved_map = json.loads((saved / "special_tokens_map.json").read_text()) if (saved / "special_tokens_map.json").exists() else None
            d2 = tmp / "tok_saved_vocab"
            write_tokenizer_folder(d2, vocab, merges, saved_config, saved_map)
            tok2 = CLIPTokenizer.from_pretrained(d2)
            cases["saved"] = {"tokenizer_config": saved_config, "special_tokens_map": saved_map or {},
                              **encode_case(tok2, texts, with_full=False, subset=subset)}
    tiny = root / "converted_models" / "tiny-sd" / "tokenizer"
    tiny_tok = CLIPTokenizer.from_pretrained(tiny)
    cases["tiny_sd"] = {"folder": "converted_models/tiny-sd/tokenizer", **encode_case(tiny_tok, texts, with_full=True)}
    return {"transformers": transformers.__version__, "sentences": texts, "cases": cases,
            "merges_sha256": hashlib.sha256(merges_text(merges).encode("utf-8")).hexdigest()}


# ---------------------------------------------------------------------------------------------------------------
# Text encoders

def randomize(model: torch.nn.Module, seed: int) -> None:
    """Random weights with non-trivial biases and layer-norm gains, so every parameter matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "layer_norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            elif "embedding" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)


def make_gelu_model(root: Path, merges: list, tmp: Path) -> Path:
    out = root / "spec" / "fixtures" / "models" / "clip-gelu-sd2"
    if out.exists():
        shutil.rmtree(out)
    small_merges = merges[:300]
    vocab = clip_vocab(small_merges)
    src = tmp / "gelu_tok"
    write_tokenizer_folder(src, vocab, small_merges, {**SD2_CONFIG, "name_or_path": "clip-gelu-sd2"}, SD2_MAP)
    tok = CLIPTokenizer.from_pretrained(src)
    # The folder ships tokenizer.json (the fast-tokenizer form) with the SD 2.x configs.
    tok_dir = out / "tokenizer"
    tok_dir.mkdir(parents=True)
    tok.backend_tokenizer.save(str(tok_dir / "tokenizer.json"))
    shutil.copy(src / "tokenizer_config.json", tok_dir / "tokenizer_config.json")
    shutil.copy(src / "special_tokens_map.json", tok_dir / "special_tokens_map.json")

    config = CLIPTextConfig(vocab_size=len(vocab), hidden_size=24, intermediate_size=64, num_hidden_layers=3,
                            num_attention_heads=3, max_position_embeddings=80, hidden_act="gelu",
                            layer_norm_eps=1e-6, bos_token_id=0, eos_token_id=2, pad_token_id=1,
                            projection_dim=24)
    torch.manual_seed(0)
    model = CLIPTextModel(config).eval()
    randomize(model, 7)
    enc = out / "text_encoder"
    model.save_pretrained(enc)
    # Name the tensors as SD 1.x/2.x checkpoints do: text_model.* plus the position_ids buffer.
    state = {f"text_model.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    state["text_model.embeddings.position_ids"] = torch.arange(80, dtype=torch.int64).unsqueeze(0)
    save_file(state, str(enc / "model.safetensors"), metadata={"format": "pt"})
    return out


def reference_outputs(folder: Path, dest: Path, skips: list[int]) -> None:
    tok = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    model = CLIPTextModel.from_pretrained(folder / "text_encoder").eval()
    ids = tok(PROMPTS, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids
    with torch.no_grad():
        o = model(ids, output_hidden_states=True)
    n = model.config.num_hidden_layers
    assert len(o.hidden_states) == n + 1
    tensors = {"input_ids": ids.to(torch.int32), "last_hidden_state": o.last_hidden_state,
               "pooler_output": o.pooler_output}
    for k in skips:
        # diffusers' encode_prompt with clip_skip=k
        h = o.hidden_states[-(k + 1)][:SKIP_PROMPTS]
        tensors[f"clip_skip_{k}"] = model.text_model.final_layer_norm(h) if hasattr(model, "text_model") else model.final_layer_norm(h)
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, str(dest),
              metadata={"folder": str(folder.relative_to(dest.parents[4])), "transformers": transformers.__version__})


def build(root: Path) -> list[Path]:
    merges = open_clip_merges()
    tok_out = root / "spec" / "fixtures" / "tokenizers" / "clip"
    ref_out = root / "spec" / "fixtures" / "reference" / "clip"
    tok_out.mkdir(parents=True, exist_ok=True)
    ref_out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        gz = tok_out / "merges.txt.gz"
        write_gzip(gz, merges_text(merges).encode("utf-8"))
        cases = tok_out / "cases.json"
        write_json(cases, tokenizer_cases(root, merges, tmp))
        written += [gz, cases]
        gelu = make_gelu_model(root, merges, tmp)
        written.append(gelu)
    prompts = ref_out / "prompts.json"
    write_json(prompts, PROMPTS)
    written.append(prompts)
    for name, folder, skips in [("tiny_sd", root / "converted_models" / "tiny-sd", [1]), ("gelu_sd2", gelu, [1, 3])]:
        dest = ref_out / f"{name}.safetensors"
        reference_outputs(folder, dest, skips)
        written.append(dest)
    return written


if __name__ == "__main__":
    for p in build(Path(__file__).resolve().parents[2]):
        print(p)
