#!/usr/bin/env python3
"""Reference outputs for the C# tokenizer tests (Microsoft.ML.Peft.Tokenizers).

Run from the repository root with the system Python, which has python3-sentencepiece:

    /usr/bin/python3 build/reference/tokenizer_reference.py

It reads ../shared (models and data) and writes test/Microsoft.ML.Peft.Tests/Fixtures/tokenizers/:

* corpus.jsonl.gz            the test sentences (SST-2 dev, CoLA dev, MRPC dev, MR, AG News, TREC, edge cases)
* wordpiece_bert.jsonl.gz    ids from an independent pure-Python BERT tokenizer over bert-base-uncased vocab.txt
* spm_stories.jsonl.gz       sentencepiece.SentencePieceProcessor ids and decoded text for stories260K tokenizer.model
* spm_stories_keepws.jsonl.gz   the same model with normalizer_spec.remove_extra_whitespaces = false (the
                             behaviour stories260K's tokenizer.json has), ids from sentencepiece, decoded text both as
                             sentencepiece decodes it and as the tokenizer.json decoder chain does
* spm_trained_*.model / spm_trained_*.jsonl.gz   small BPE models trained here with other normaliser options
* bytelevel/...              a byte-level BPE vocabulary learned here (pure Python) and the ids a pure-Python GPT-2
                             style encoder produces with it (GPT-2, RoBERTa add_prefix_space and Llama-3 regexes)

Everything is deterministic: re-running rewrites identical files. Nothing here is derived from the C# code.
"""

import csv
import gzip
import io
import json
import os
import re
import sys
import unicodedata
from collections import Counter

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("PEFT_SHARED", os.path.join(ROOT, "..", "shared"))
OUT = os.path.join(ROOT, "test", "Microsoft.ML.Peft.Tests", "Fixtures", "tokenizers")
STORIES_MODEL = os.path.join(SHARED, "models", "stories260K", "tokenizer.model")
BERT_VOCAB = os.path.join(SHARED, "models", "bert-base-uncased-tokenizer", "vocab.txt")


# ----------------------------------------------------------------------------------------------------------------------
# Corpus
# ----------------------------------------------------------------------------------------------------------------------

EDGE_CASES = [
    "",
    " ",
    "   ",
    "Hello world!",
    "Once upon a time, there was a little girl named Lily.",
    "  leading and trailing spaces  ",
    "double  spaces   and    more",
    "tab\there and\ttabs",
    "new\nline and\r\nwindows line",
    " \n x",
    "x  ",
    "héllo wörld, ça va? naïve café résumé",
    "he\u0301llo decomposed accents",
    "Ünïcödé ÀÉÎÕÜ",
    "日本語のテキストと中文字符",
    "한국어 텍스트",
    "Ελληνικά ΟΔΟΣ σοφία",
    "İstanbul ılık",
    "Straße groß",
    "ﬁnance ﬂower (ligatures)",
    "ＦＵＬＬＷＩＤＴＨ １２３",
    "emoji 😀😃 👍🏽 ❤️ 🇫🇷",
    "math 𝐀𝐁𝐂 𝟙𝟚𝟛",
    "zero\u200bwidth and\u00a0nbsp and\u3000ideographic space",
    "control\u0001char and\u0085nel and bell\u0007",
    "don't won't I'm you're we've they'll he'd",
    "DON'T SHOUT'S",
    "numbers 12345 3.14159 1,000,000 2024-01-01",
    "https://example.com/path?query=1&x=y#frag",
    "email: someone@example.org",
    "!!! ??? ... --- ;;; ,,, '''",
    "(parentheses) [brackets] {braces} <angles>",
    "$100 + 50% = ^caret~ `tick` |pipe|",
    "a" * 150,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "العربية نص",
    "हिन्दी पाठ",
    "mixed日本English한국",
    "trailing newline\n",
    "\tleading tab",
    "hello<|endoftext|>world",
    "    indented code:\n        return x",
]


def read_tsv_column(path, column, skip_header=True):
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if skip_header and i == 0:
            continue
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) > column:
            rows.append(parts[column])
    return rows


def load_corpus():
    data = os.path.join(SHARED, "data")
    texts = []
    texts += read_tsv_column(os.path.join(data, "sst2", "dev.tsv"), 0)                      # 872, lower-cased
    texts += read_tsv_column(os.path.join(data, "cola", "dev.tsv"), 3, skip_header=False)    # 1043, mixed case
    mrpc = os.path.join(data, "mrpc", "dev.tsv")
    texts += read_tsv_column(mrpc, 3)[:200] + read_tsv_column(mrpc, 4)[:200]
    # MR is Windows-1252; lines with non-ASCII bytes give curly quotes, dashes and accents. A few are also read as
    # Latin-1, which turns 0x85/0x91/0x96 into C1 control characters (a clean-text edge case).
    mr_lines = []
    for name in ("rt-polarity.pos", "rt-polarity.neg"):
        with open(os.path.join(data, "mr", name), "rb") as f:
            mr_lines += [line for line in f.read().split(b"\n") if any(b >= 0x80 for b in line)]
    texts += [line.decode("cp1252", errors="replace") for line in mr_lines]
    texts += [line.decode("latin-1") for line in mr_lines[:40]]
    with open(os.path.join(data, "ag_news", "test.csv"), encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.reader(f)):
            if i >= 150:
                break
            texts.append(row[1] + " " + row[2])
    with open(os.path.join(data, "trec", "TREC_10.label"), "rb") as f:
        texts += [line.decode("latin-1").split(" ", 1)[1] for line in f.read().split(b"\n")[:60] if b" " in line]
    texts += EDGE_CASES
    return texts


def write_jsonl_gz(name, records):
    path = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    buffer = io.BytesIO()
    # mtime=0 keeps the gzip bytes identical between runs.
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        for record in records:
            gz.write((json.dumps(record, ensure_ascii=True) + "\n").encode("ascii"))
    with open(path, "wb") as f:
        f.write(buffer.getvalue())
    print(f"wrote {path} ({len(buffer.getvalue())} bytes, {len(records)} lines)")


# ----------------------------------------------------------------------------------------------------------------------
# BERT WordPiece, written from the BERT paper's / Hugging Face BertNormalizer's description:
# clean text, pad CJK, NFD + drop Mn, lower-case per character, split on whitespace and punctuation, greedy WordPiece.
# ----------------------------------------------------------------------------------------------------------------------

WHITE_SPACE = set(chr(c) for c in [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                                   0x2028, 0x2029, 0x202F, 0x205F, 0x3000])
CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
              (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def bert_whitespace(ch):
    return ch in "\t\n\r " or ch in WHITE_SPACE


def bert_control(ch):
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def bert_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def bert_normalize(text):
    cleaned = []
    for ch in text:
        if ord(ch) in (0, 0xFFFD) or bert_control(ch):
            continue
        if bert_whitespace(ch):
            cleaned.append(" ")
        elif any(lo <= ord(ch) <= hi for lo, hi in CJK_RANGES):
            cleaned.extend((" ", ch, " "))
        else:
            cleaned.append(ch)
    decomposed = unicodedata.normalize("NFD", "".join(cleaned))
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return "".join(ch.lower() for ch in stripped)


def bert_words(normalized):
    words = []
    for chunk in normalized.split(" "):
        current = ""
        for ch in chunk:
            if bert_punctuation(ch):
                if current:
                    words.append(current)
                words.append(ch)
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


def bert_wordpiece(word, vocab, unk_id):
    if len(word) > 100:
        return [unk_id]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            candidate = word[start:end] if start == 0 else "##" + word[start:end]
            if candidate in vocab:
                found = vocab[candidate]
                break
            end -= 1
        if found is None:
            return [unk_id]
        pieces.append(found)
        start = end
    return pieces


def bert_reference(texts):
    with open(BERT_VOCAB, encoding="utf-8") as f:
        tokens = f.read().split("\n")
    if tokens[-1] == "":
        tokens.pop()
    vocab = {token: i for i, token in enumerate(tokens)}
    unk = vocab["[UNK]"]
    records = []
    for text in texts:
        ids = []
        for word in bert_words(bert_normalize(text)):
            ids += bert_wordpiece(word, vocab, unk)
        records.append({"ids": ids})
    write_jsonl_gz("wordpiece_bert.jsonl.gz", records)


# ----------------------------------------------------------------------------------------------------------------------
# SentencePiece (the library itself is the reference)
# ----------------------------------------------------------------------------------------------------------------------

def patch_remove_extra_whitespaces(model_bytes):
    """Appends normalizer_spec { remove_extra_whitespaces: false } (field 3, LEN 2: field 4 varint 0).
    Protobuf merges a repeated occurrence of a singular message field, so this overrides just that flag."""
    return model_bytes + bytes([0x1A, 0x02, 0x20, 0x00])


def hf_llama_decode(pieces):
    """The stories260K tokenizer.json decoder chain: Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0)."""
    out, pending = [], []

    def flush():
        if pending:
            try:
                out.append(bytes(pending).decode("utf-8"))
            except UnicodeDecodeError:
                out.append("\ufffd" * len(pending))
            pending.clear()

    for piece in pieces:
        if re.fullmatch(r"<0x[0-9A-F]{2}>", piece):
            pending.append(int(piece[3:5], 16))
            continue
        flush()
        out.append(piece.replace("\u2581", " "))
    flush()
    text = "".join(out)
    return text[1:] if text.startswith(" ") else text


def spm_reference(texts):
    with open(STORIES_MODEL, "rb") as f:
        model = f.read()
    sp = spm.SentencePieceProcessor(model_proto=model)
    write_jsonl_gz("spm_stories.jsonl.gz",
                   [{"ids": ids, "decoded": sp.decode(ids)} for ids in (sp.encode(t) for t in texts)])
    keep = spm.SentencePieceProcessor(model_proto=patch_remove_extra_whitespaces(model))
    records = []
    for text in texts:
        ids = keep.encode(text)
        records.append({"ids": ids, "decoded": keep.decode(ids),
                        "hf_decoded": hf_llama_decode([keep.id_to_piece(i) for i in ids])})
    write_jsonl_gz("spm_stories_keepws.jsonl.gz", records)


SPM_TRAINED = {
    # name: trainer options (besides the common ones below)
    "nfkc": dict(normalization_rule_name="nmt_nfkc", byte_fallback=False, user_defined_symbols=["<sep>", "@@"]),
    "options": dict(normalization_rule_name="identity", byte_fallback=True, add_dummy_prefix=False,
                    remove_extra_whitespaces=False, split_digits=True),
}


def spm_trained_reference(texts, training_texts):
    train_path = os.path.join(OUT, "spm_train_input.txt")
    with open(train_path, "w", encoding="utf-8") as f:
        f.write("\n".join(training_texts))
    try:
        for name, options in SPM_TRAINED.items():
            prefix = os.path.join(OUT, f"spm_trained_{name}")
            spm.SentencePieceTrainer.train(input=train_path, model_prefix=prefix, model_type="bpe", vocab_size=400,
                                           character_coverage=0.9995, num_threads=1, minloglevel=2, **options)
            os.remove(prefix + ".vocab")
            sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
            write_jsonl_gz(f"spm_trained_{name}.jsonl.gz",
                           [{"ids": ids, "decoded": sp.decode(ids)} for ids in (sp.encode(t) for t in texts)])
    finally:
        os.remove(train_path)


# ----------------------------------------------------------------------------------------------------------------------
# Byte-level BPE: GPT-2's byte↔unicode table, its pre-tokenizer regex (run with Python's re over explicit Unicode
# classes, since re lacks \p{L}), OpenAI's merge loop, and a small vocabulary learned here.
# ----------------------------------------------------------------------------------------------------------------------

def bytes_to_unicode():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def unicode_class(predicate):
    ranges, start = [], None
    for cp in range(0x110000):
        if predicate(cp):
            if start is None:
                start = cp
        elif start is not None:
            ranges.append((start, cp - 1))
            start = None
    if start is not None:
        ranges.append((start, 0x10FFFF))
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


def build_regexes():
    letters = unicode_class(lambda cp: unicodedata.category(chr(cp)).startswith("L"))
    numbers = unicode_class(lambda cp: unicodedata.category(chr(cp)).startswith("N"))
    space = "".join(f"\\U{ord(c):08x}" for c in sorted(WHITE_SPACE))
    gpt2 = (rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{letters}]+| ?[{numbers}]+| ?[^{space}{letters}{numbers}]+"
            rf"|[{space}]+(?![^{space}])|[{space}]+")
    llama3 = (rf"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n{letters}{numbers}]?[{letters}]+|[{numbers}]{{1,3}}"
              rf"| ?[^{space}{letters}{numbers}]+[\r\n]*|[{space}]*[\r\n]+|[{space}]+(?![^{space}])|[{space}]+")
    return re.compile(gpt2), re.compile(llama3)


class ByteLevelBpe:
    SPECIALS = ["<|endoftext|>", "<s>", "<pad>", "</s>", "<unk>"]

    def __init__(self, merges):
        self.byte_table = bytes_to_unicode()
        self.char_to_byte = {c: b for b, c in self.byte_table.items()}
        self.merges = merges
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.vocab = {}
        for b in range(256):
            self.vocab[self.byte_table[b]] = len(self.vocab)
        for a, b in merges:
            self.vocab.setdefault(a + b, len(self.vocab))
        for special in self.SPECIALS:
            self.vocab[special] = len(self.vocab)

    def bpe(self, word):
        symbols = list(word)
        while len(symbols) > 1:
            best = min(zip(symbols, symbols[1:]), key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return symbols

    def encode(self, text, regex, add_prefix_space=False, ignore_merges=False):
        ids = []
        # Added tokens are matched first; each stretch between them is pre-tokenized on its own.
        for part in re.split(r"(<\|endoftext\|>)", text):
            if part == "<|endoftext|>":
                ids.append(self.vocab[part])
                continue
            if add_prefix_space and part and not part.startswith(" "):
                part = " " + part
            for piece in regex.findall(part):
                mapped = "".join(self.byte_table[b] for b in piece.encode("utf-8"))
                if ignore_merges and mapped in self.vocab:
                    ids.append(self.vocab[mapped])
                else:
                    ids += [self.vocab[s] for s in self.bpe(mapped)]
        return ids

    def decode(self, ids):
        inverse = {i: t for t, i in self.vocab.items()}
        data = bytearray()
        for i in ids:
            for ch in inverse[i]:
                data += bytes([self.char_to_byte[ch]]) if ch in self.char_to_byte else ch.encode("utf-8")
        return data.decode("utf-8", errors="replace")


def learn_merges(texts, regex, count):
    table = bytes_to_unicode()
    words = Counter()
    for text in texts:
        for piece in regex.findall(text):
            words[tuple(table[b] for b in piece.encode("utf-8"))] += 1
    words = {w: n for w, n in words.items()}
    merges = []
    for _ in range(count):
        pairs = Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged_words = {}
        for word, n in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged_words[tuple(out)] = merged_words.get(tuple(out), 0) + n
        words = merged_words
    return merges


def bytelevel_reference(texts, training_texts, raw_training_texts):
    gpt2, llama3 = build_regexes()
    merges = learn_merges(training_texts, gpt2, 500)
    model = ByteLevelBpe(merges)
    # The Llama-3 style tokenizer gets its own merges, learned over its own pre-tokenization, so that its ids differ.
    # Raw news text (punctuation glued to words, digits) makes the two regexes disagree often.
    llama3_merges = learn_merges(raw_training_texts, llama3, 500)
    llama3_model = ByteLevelBpe(llama3_merges)
    folder = os.path.join(OUT, "bytelevel")
    os.makedirs(folder, exist_ok=True)
    vocab_json = json.dumps(model.vocab, ensure_ascii=False)
    merges_txt = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    specials = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    roberta_specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                        "cls_token": "<s>", "pad_token": "<pad>", "additional_special_tokens": ["<|endoftext|>"]}
    for sub, config, special_map in (
            ("gpt2", {"tokenizer_class": "GPT2Tokenizer", "add_prefix_space": False}, specials),
            ("roberta", {"tokenizer_class": "RobertaTokenizer", "add_prefix_space": True}, roberta_specials)):
        path = os.path.join(folder, sub)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "vocab.json"), "w", encoding="utf-8") as f:
            f.write(vocab_json)
        with open(os.path.join(path, "merges.txt"), "w", encoding="utf-8") as f:
            f.write(merges_txt)
        with open(os.path.join(path, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=1)
        with open(os.path.join(path, "special_tokens_map.json"), "w", encoding="utf-8") as f:
            json.dump(special_map, f, indent=1)

    added = [{"id": model.vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for s in ByteLevelBpe.SPECIALS]
    bpe_model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                 "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                 "vocab": model.vocab, "merges": [f"{a} {b}" for a, b in merges]}
    gpt2_json = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
                 "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
                 "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
                 "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
                 "model": bpe_model}
    llama3_pattern = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                      "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
    llama3_json = dict(gpt2_json)
    llama3_json["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": llama3_pattern}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    llama3_json["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<s>": {"id": "<s>", "ids": [llama3_model.vocab["<s>"]], "tokens": ["<s>"]}}}]}
    llama3_json["added_tokens"] = [dict(a, id=llama3_model.vocab[a["content"]]) for a in added]
    llama3_json["model"] = dict(bpe_model, ignore_merges=True, vocab=llama3_model.vocab,
                                merges=[[a, b] for a, b in llama3_merges])
    for sub, document in (("json", gpt2_json), ("llama3", llama3_json)):
        path = os.path.join(folder, sub)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(document, f, ensure_ascii=False, indent=1)

    records = []
    for text in texts:
        gpt2_ids = model.encode(text, gpt2)
        roberta_ids = model.encode(text, gpt2, add_prefix_space=True)
        llama3_ids = llama3_model.encode(text, llama3, ignore_merges=True)
        records.append({"gpt2": gpt2_ids, "gpt2_decoded": model.decode(gpt2_ids),
                        "roberta": roberta_ids, "llama3": llama3_ids,
                        "gpt2_pieces": gpt2.findall(text), "llama3_pieces": llama3.findall(text)})
    write_jsonl_gz("bytelevel.jsonl.gz", records)


def main():
    texts = load_corpus()
    print(f"{len(texts)} test texts")
    write_jsonl_gz("corpus.jsonl.gz", [{"text": t} for t in texts])
    training = read_tsv_column(os.path.join(SHARED, "data", "sst2", "train.tsv"), 0)[:3000]
    training += read_tsv_column(os.path.join(SHARED, "data", "cola", "train.tsv"), 3, skip_header=False)[:3000]
    bert_reference(texts)
    spm_reference(texts)
    spm_trained_reference(texts, training)
    raw_news = read_tsv_column(os.path.join(SHARED, "data", "ag_news", "alps-train-subset", "dev.tsv"), 0,
                               skip_header=False)[:3000]
    bytelevel_reference(texts, training, raw_news)


if __name__ == "__main__":
    sys.exit(main())
