"""Byte-level BPE (GPT-2 style): train on whole texts, encode and decode any string exactly.

Pre-tokenisation splits text into chunks with GPT-2's regex,

    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

(contractions, runs of letters, of digits, of other symbols, each with an optional leading
space, and whitespace), so merges never cross a chunk boundary. Each chunk is UTF-8 bytes; ids
0..255 are the bytes, 256.. the merges in the order they were learned, then the special tokens.
Encoding a chunk applies the lowest-ranked mergeable pair until none is left (what GPT-2,
tiktoken and Hugging Face ``tokenizers`` do, so the same merges give the same ids), and caches
the result per distinct chunk, which is what makes encoding fast on natural text and code.

Those are the *internal* ids. A vocabulary made elsewhere numbers its tokens its own way (GPT-2's
vocab.json gives "!" id 0 and the byte 0x00 id 188), so a tokenizer may carry an id table: the
external id of each internal one, a permutation of 0..vocab_size-1. Then ``encode`` returns,
``decode`` and ``special_tokens`` take, and ``token_strings`` is ordered by external ids; the
merges stay in internal ids. The chunk cache holds external ids, so the table costs nothing per
cached chunk.

Training counts every distinct chunk of the whole text once (not line by line: "\\n" + indent
chunks must be able to form), keeps pair counts incrementally (only the words containing the
merged pair are touched), and takes the most frequent pair from a heap with lazy deletion. Ties
go to the pair whose tokens come first in ``tokenizers``' order (bytes by their GPT-2 printable
character, merged tokens by age), so both trainers learn the same merges in the same order.
"""

from __future__ import annotations

import heapq
import json
import os
import re
from collections import Counter, defaultdict
from itertools import chain, compress, repeat
from operator import is_
from pathlib import Path

import numpy as np
import regex

from .checks import TokenizerFileError, check_token_ids, describe, field, is_token_id

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_UNICODE_SPLIT = regex.compile(GPT2_PATTERN)
# The same pattern for ASCII-only text, where \p{L} is [A-Za-z], \p{N} is [0-9] and \s is [\t\n\v\f\r ]
# (checked character by character in the tests): Python's re runs it 4x faster than regex runs the
# Unicode one, and pre-tokenisation is most of the encoding time.
_WS = r"\t\n\x0b\x0c\r "
GPT2_PATTERN_ASCII = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^""" + _WS + r"""A-Za-z0-9]+|["""
                      + _WS + r"""]+(?![^""" + _WS + r"""])|[""" + _WS + r"""]+""")
_ASCII_SPLIT = re.compile(GPT2_PATTERN_ASCII)
CACHE_LIMIT = 1 << 20  # distinct chunks kept by the encoder's cache
# A newline right after a non-space character always starts a new chunk (only whitespace chunks hold
# a newline, and they cannot begin inside a run of non-space), so text cut there splits exactly as
# the whole would: blocks of mostly-ASCII text can then take the fast pattern one by one.
_SAFE_CUT = re.compile(r"\S\n")
BLOCK_CHARS = 1 << 16
BATCH_MERGE_MIN = 64  # new chunks from which merging them together in NumPy beats one by one


def pretokenize(text: str, split=None, ascii_split=None) -> list[str]:
    """The chunks of ``text`` under GPT-2's pattern (or ``split``), taking the ASCII fast path block by block."""
    split = split or _UNICODE_SPLIT
    ascii_split = ascii_split or (_ASCII_SPLIT if split.pattern == GPT2_PATTERN else split)
    if text.isascii() or ascii_split is split:
        return (ascii_split if text.isascii() else split).findall(text)
    chunks, start, n = [], 0, len(text)
    while start < n:
        m = _SAFE_CUT.search(text, start + BLOCK_CHARS) if start + BLOCK_CHARS < n else None
        end = m.start() + 1 if m else n
        block = text[start:end]
        chunks += (ascii_split if block.isascii() else split).findall(block)
        start = end
    return chunks


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (used in vocab files, GGUF and ``tokenizers``)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, map(chr, chars)))


class ByteBPETokenizer:
    """Byte-level BPE with special tokens; ``train``, ``encode``, ``decode``, ``save``/``load`` (JSON)."""

    kind = "byte-bpe"

    def __init__(self, merges: list[tuple[int, int]], special_tokens: list[str] | None = None,
                 pattern: str = GPT2_PATTERN, ids: list[int] | None = None):
        """``ids``: the external id of each internal one (bytes, then merges, then special tokens), or None for
        the internal ids themselves (an identity table is stored as None)."""
        self.merges = _checked_merges(merges)
        self.pattern = pattern
        self._split = compile_pattern(pattern)
        self._ascii_split = _ASCII_SPLIT if pattern == GPT2_PATTERN else self._split
        self.ranks = {pair: i for i, pair in enumerate(self.merges)}
        self.vocab: list[bytes] = [bytes([b]) for b in range(256)]
        for a, b in self.merges:
            self.vocab.append(self.vocab[a] + self.vocab[b])
        specials = _checked_special_tokens(special_tokens)
        self.ids = _checked_id_table(ids, len(self.merges), len(specials))
        external = self.ids or range(len(self.vocab) + len(specials))
        self.special_tokens = {tok: external[len(self.vocab) + i] for i, tok in enumerate(specials)}
        self._bytes_of = [b""] * len(external)  # every token's bytes, by external id (what decode reads)
        for i, token in enumerate(chain(self.vocab, (t.encode("utf-8") for t in specials))):
            self._bytes_of[external[i]] = token
        self._special_split = (regex.compile("(" + "|".join(regex.escape(t) for t in
                                                           sorted(self.special_tokens, key=len, reverse=True)) + ")")
                               if self.special_tokens else None)
        self._subset_splitters: dict[frozenset, object] = {}
        self._cache: dict[str, list[int]] = {}
        self._merge_keys = self._merge_ranks = None  # sorted pair keys for _merge_many, built on first use

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + len(self.special_tokens)

    # -- training -----------------------------------------------------------------------
    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens: list[str] | tuple = ("<|endoftext|>",),
              pattern: str = GPT2_PATTERN, min_frequency: int = 1) -> ByteBPETokenizer:
        """Learn merges from ``text`` until the vocabulary (bytes + merges + specials) has ``vocab_size`` ids."""
        special_tokens = list(special_tokens)
        n_merges = vocab_size - 256 - len(special_tokens)
        if n_merges < 0:
            raise ValueError(f"ByteBPETokenizer.train: vocab_size {vocab_size} is smaller than the 256 bytes "
                             f"plus {len(special_tokens)} special tokens")
        split = compile_pattern(pattern)
        parts = [text]
        if special_tokens:  # special tokens never take part in merges
            parts = regex.split("|".join(regex.escape(t) for t in special_tokens), text)
        chunk_counts: Counter = Counter()
        for part in parts:
            chunk_counts.update(pretokenize(part, split))
        merges = _learn_merges(chunk_counts, n_merges, min_frequency)
        return cls(merges, special_tokens, pattern)

    # -- encoding -------------------------------------------------------------------------
    def _encode_chunk(self, chunk: str) -> list[int]:
        ids = list(chunk.encode("utf-8"))
        ranks = self.ranks
        while len(ids) > 1:
            best, best_rank = None, None
            for pair in zip(ids, ids[1:]):
                r = ranks.get(pair)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = pair, r
            if best is None:
                break
            merged, a, b = 256 + best_rank, best[0], best[1]
            out, i, n = [], 0, len(ids)
            while i < n:
                if i < n - 1 and ids[i] == a and ids[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            ids = out
        return ids

    def _chunks(self, text: str) -> list[str]:
        return pretokenize(text, self._split, self._ascii_split)

    def _encode_ordinary(self, text: str) -> list[int]:
        return list(chain.from_iterable(self._ids_of_chunks(self._chunks(text))))

    def _ids_of_chunks(self, chunks: list[str]) -> list[list[int]]:
        """Each chunk's ids, from the cache; the new chunks are merged together first."""
        cache = self._cache
        if len(cache) >= CACHE_LIMIT:  # bounded between calls; one call may add all its chunks
            cache.clear()
        parts = list(map(cache.get, chunks))  # C-speed lookups; None where the chunk is new
        if None in parts:
            new = list(dict.fromkeys(compress(chunks, map(is_, parts, repeat(None)))))
            if len(new) >= BATCH_MERGE_MIN and self.merges:
                ids = self._merge_many(new)
            else:
                ids = list(map(self._encode_chunk, new))
            if self.ids is not None:  # the cache holds external ids: one lookup per new chunk, none after
                table = self.ids
                ids = [list(map(table.__getitem__, part)) for part in ids]
            cache.update(zip(new, ids))
            parts = list(map(cache.__getitem__, chunks))
        return parts

    def _merge_many(self, chunks: list[str]) -> list[list[int]]:
        """BPE of many chunks at once, in NumPy: what ``_encode_chunk`` gives each, in rounds.

        All bytes sit in one array with a chunk number per position. Each round looks up the rank
        of every adjacent pair (searchsorted in the sorted merge keys), finds each chunk's lowest,
        and merges every occurrence of it left to right (in a run of equal overlapping pairs,
        every other one from the run's start), exactly as the one-chunk loop does. Chunks with
        nothing left to merge leave the arrays, so long chunks do not slow the short ones.
        """
        if self._merge_keys is None:
            v = len(self.vocab)
            keys = np.array([a * v + b for a, b in self.merges], dtype=np.int64)
            order = np.argsort(keys)
            self._merge_keys, self._merge_ranks = keys[order], order.astype(np.int64)
        keys_sorted, ranks_sorted, v = self._merge_keys, self._merge_ranks, len(self.vocab)
        data = [c.encode("utf-8") for c in chunks]
        lengths = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
        ids = np.frombuffer(b"".join(data), dtype=np.uint8).astype(np.int64)
        seg = np.repeat(np.arange(len(data)), lengths)
        done_ids, done_seg = [], []
        none = np.iinfo(np.int64).max
        while len(ids):
            keys = ids[:-1] * v + ids[1:]
            at = np.searchsorted(keys_sorted, keys)
            at[at == len(keys_sorted)] = 0
            found = (keys_sorted[at] == keys) & (seg[1:] == seg[:-1])
            rank = np.where(found, ranks_sorted[at], none)
            lowest = np.full(len(data), none)
            np.minimum.at(lowest, seg[:-1][found], rank[found])
            cand = np.flatnonzero(found & (rank == lowest[seg[:-1]]))
            finished = lowest[seg] == none
            if finished.any():  # chunks with nothing to merge are final
                done_ids.append(ids[finished])
                done_seg.append(seg[finished])
            if not len(cand):
                break
            run_start = np.ones(len(cand), dtype=bool)
            run_start[1:] = cand[1:] != cand[:-1] + 1
            starts = np.flatnonzero(run_start)
            offset = np.arange(len(cand)) - np.repeat(starts, np.diff(np.append(starts, len(cand))))
            chosen = cand[offset % 2 == 0]
            ids[chosen] = 256 + rank[chosen]
            keep = ~finished
            keep[chosen + 1] = False
            ids, seg = ids[keep], seg[keep]
        ids, seg = np.concatenate(done_ids), np.concatenate(done_seg)
        order = np.argsort(seg, kind="stable")
        flat = ids[order].tolist()
        ends = np.cumsum(np.bincount(seg, minlength=len(data))).tolist()
        return [flat[a:b] for a, b in zip([0] + ends[:-1], ends)]

    def encode(self, text: str, allowed_special: str | set = "all") -> list[int]:
        """Token ids of ``text``. Special-token strings become their ids when allowed ('all', a set of
        them, or 'none'); any other special-token string is ordinary text, encoded exactly as it would
        be with 'none' (the text is cut only at allowed specials, as tiktoken and tokenizers do)."""
        if not isinstance(text, str):
            raise TypeError(f"encode: expected a str, got {type(text).__name__}")
        splitter = self._splitter(allowed_special)
        if splitter is None:
            return self._encode_ordinary(text)
        chunks, specials = [], []  # specials: (chunks before it, its id); all chunks looked up at once
        for i, part in enumerate(splitter.split(text)):
            if i % 2:
                specials.append((len(chunks), self.special_tokens[part]))
            elif part:
                chunks += self._chunks(part)
        parts = self._ids_of_chunks(chunks)
        out, start = [], 0
        for at, special in specials:
            out.extend(chain.from_iterable(parts[start:at]))
            out.append(special)
            start = at
        out.extend(chain.from_iterable(parts[start:]))
        return out

    def _splitter(self, allowed_special):
        """The regex that cuts text at the allowed special tokens (None: no special token is allowed)."""
        if allowed_special == "all":
            return self._special_split
        if allowed_special == "none" or not self._special_split:
            return None
        if isinstance(allowed_special, str):
            raise ValueError(f"encode: allowed_special must be 'all', 'none' or a set of special tokens, "
                             f"got {allowed_special!r}")
        allowed = frozenset(allowed_special)
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise ValueError(f"encode: {sorted(unknown)} are not special tokens of this tokenizer "
                             f"(it has {sorted(self.special_tokens)})")
        if not allowed:
            return None
        if allowed not in self._subset_splitters:
            alternatives = "|".join(regex.escape(t) for t in sorted(allowed, key=len, reverse=True))
            self._subset_splitters[allowed] = regex.compile("(" + alternatives + ")")
        return self._subset_splitters[allowed]

    def decode_bytes(self, ids) -> bytes:
        """The bytes of ``ids`` (a list, 1-d array or Tensor of ints in [0, vocab_size))."""
        ids = check_token_ids(ids, self.vocab_size, "ByteBPETokenizer.decode")
        return b"".join(map(self._bytes_of.__getitem__, ids))

    def decode(self, ids, errors: str = "replace") -> str:
        """The text of ``ids`` (an id sequence cut inside a UTF-8 character gets U+FFFD with 'replace')."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def token_strings(self) -> list[str]:
        """Every token in GPT-2's byte-to-unicode form (as vocab files, GGUF and ``tokenizers`` write them), in
        the order of their (external) ids."""
        strings = self._internal_strings()
        if self.ids is None:
            return strings
        ordered = [""] * len(strings)
        for internal, external in enumerate(self.ids):
            ordered[external] = strings[internal]
        return ordered

    def merge_strings(self) -> list[str]:
        """The merges in rank order as ``"left right"`` in GPT-2's byte-to-unicode form (merges.txt, GGUF)."""
        strings = self._internal_strings()
        return [f"{strings[a]} {strings[b]}" for a, b in self.merges]

    def _internal_strings(self) -> list[str]:
        table = bytes_to_unicode()
        return ["".join(table[b] for b in tok) for tok in self.vocab] + list(self.special_tokens)

    # -- files ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"type": self.kind, "version": 1, "pattern": self.pattern, "merges": [list(m) for m in self.merges],
             "special_tokens": list(self.special_tokens)}
        if self.ids is not None:
            d["ids"] = list(self.ids)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ByteBPETokenizer:
        return cls(field(d, "merges", list, "a list of [id, id] pairs"),
                   field(d, "special_tokens", list, "a list of strings", []),
                   field(d, "pattern", str, "a regular expression (a string)", GPT2_PATTERN),
                   field(d, "ids", list, "a list of token ids (the external id of each internal one)", None))

    def save(self, path: str | os.PathLike) -> Path:
        from ..io.atomic import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_dict()))
        return Path(path)


def _learn_merges(chunk_counts: Counter, n_merges: int, min_frequency: int) -> list[tuple[int, int]]:
    """The BPE merge loop over distinct chunks, with incremental pair counts."""
    words: list[list[int]] = []
    freqs: list[int] = []
    for chunk, count in chunk_counts.items():
        b = list(chunk.encode("utf-8"))
        if len(b) > 1:
            words.append(b)
            freqs.append(count)
    pair_counts: defaultdict = defaultdict(int)
    where: defaultdict = defaultdict(set)  # pair -> indices of the words that contain it
    for w, (word, f) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += f
            where[pair].add(w)
    rank = _tie_break_ranks()  # grows by one entry per merge: merged tokens rank by age
    heap = [(-c, rank[a], rank[b], (a, b)) for (a, b), c in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    next_id = 256
    while len(merges) < n_merges and heap:
        neg, _, _, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if -neg != count:  # stale entry: its count changed after it was pushed
            if count > 0:
                heapq.heappush(heap, (-count, rank[pair[0]], rank[pair[1]], pair))
            continue
        if count < min_frequency:
            break
        merges.append(pair)
        a, b = pair
        new = next_id
        next_id += 1
        rank.append(new)
        changed: dict = defaultdict(int)
        for w in where.pop(pair, ()):
            word, f = words[w], freqs[w]
            i, n, out = 0, len(word), []
            while i < n:
                if i < n - 1 and word[i] == a and word[i + 1] == b:
                    if out:  # the pair to the left changes from (x, a) to (x, new)
                        changed[(out[-1], a)] -= f
                        changed[(out[-1], new)] += f
                    if i + 2 < n:  # and the pair to the right from (b, y) to (new, y)
                        y = word[i + 2]
                        changed[(b, y)] -= f
                        changed[(new, y)] += f
                    out.append(new)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            words[w] = out
            for p in zip(out, out[1:]):
                if new in p:
                    where[p].add(w)
        pair_counts.pop(pair, None)
        for p, delta in changed.items():
            c = pair_counts.get(p, 0) + delta
            if c > 0:
                pair_counts[p] = c
                if delta > 0:
                    heapq.heappush(heap, (-c, rank[p[0]], rank[p[1]], p))
            else:
                pair_counts.pop(p, None)
    return merges


def _tie_break_ranks() -> list[int]:
    """Rank of each byte among the 256 by its GPT-2 printable character (the order ``tokenizers`` gives ids in)."""
    table = bytes_to_unicode()
    order = sorted(range(256), key=lambda b: table[b])
    rank = [0] * 256
    for r, b in enumerate(order):
        rank[b] = r
    return rank


def load_tokenizer(path: str | os.PathLike):
    """A tokenizer saved by ``save`` (byte-level BPE or characters).

    A file that is not one raises ``TokenizerFileError`` naming the file, the key and what was wrong
    (a missing file: ``FileNotFoundError``). The whole structure is checked here, ids and pattern
    included, so a tokenizer that loads encodes and decodes exactly.
    """
    from .char import CharTokenizer

    path = Path(path)
    d = _read_json_object(path)
    kinds = {"byte-bpe": ByteBPETokenizer, "char": CharTokenizer}
    kind, version = d.get("type"), d.get("version")
    if kind not in kinds or type(version) is not int or version != 1:
        raise TokenizerFileError(f"{path}: unknown tokenizer type/version {kind!r}/{version!r} "
                                 f"(expected type {' or '.join(map(repr, kinds))}, version 1)")
    try:
        return kinds[kind].from_dict(d)
    except ValueError as exc:
        raise TokenizerFileError(f"{path}: not a valid {kind} tokenizer file: {exc}") from None


def _read_json_object(path: Path) -> dict:
    """The JSON object in ``path``; FileNotFoundError (and other OS errors) pass through, naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TokenizerFileError(f"{path}: not a readable tokenizer file: byte {exc.start} is not UTF-8 "
                                 "(a binary file?)") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TokenizerFileError(f"{path}: not a readable tokenizer file: invalid JSON: {exc}") from None
    if not isinstance(d, dict):
        raise TokenizerFileError(f"{path}: not a readable tokenizer file: expected a JSON object with keys "
                                 f"'type' and 'version', found {describe(d)}")
    return d


# A text with every kind of character a pre-tokenisation pattern meets: letters, digits, spaces, tabs, newlines,
# punctuation and symbols, accented and combining letters, other scripts, emoji, no-break and wide spaces.
PATTERN_PROBE = ("Hello, World! It's 42 o'clock... x=1+2*3; y_z=[a](b){c} \"q\" #$%&@^`|~\n"
                 "\tTabs\t and  two  spaces\r\nÜbergrößenträger café e\u0301 Ñandú ½ ²\n"
                 "東京 Ελληνικά русский עברית 🙂👍🏽 \u00a0nbsp\u2003em\u3000ideographic\n\n   ")


def compile_pattern(pattern) -> regex.Pattern:
    """``pattern`` (a pre-tokenisation regex) compiled, refused if its chunks drop any character.

    ``encode`` keeps only what the pattern matches, so a pattern that skips characters (``"xyz"``
    would turn "hello" into no ids at all) or has capture groups (``findall`` would return the groups)
    is refused: its chunks of ``PATTERN_PROBE`` must put the probe back together exactly.
    """
    if not isinstance(pattern, str):
        raise ValueError(f"pattern: expected a regular expression (a string), found {describe(pattern)}")
    try:
        split = regex.compile(pattern)
    except regex.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
    if split.groups:
        raise ValueError(f"pattern {pattern!r} has capture groups, whose text is all that pre-tokenisation would "
                         "keep; make them non-capturing, (?:...)")
    rebuilt = "".join(split.findall(PATTERN_PROBE))
    if rebuilt != PATTERN_PROBE:
        at = next((i for i, (a, b) in enumerate(zip(rebuilt, PATTERN_PROBE)) if a != b), len(rebuilt))
        raise ValueError(f"pattern {pattern!r} does not cover the text: its chunks of a probe text lose "
                         f"{PATTERN_PROBE[at]!r} at position {at} (a pre-tokenisation pattern must match every "
                         "character, or encode drops them)")
    return split


def _checked_merges(merges) -> list[tuple[int, int]]:
    """The merges as (int, int) pairs, each of two tokens that exist before it (bytes 0..255, earlier merges)."""
    if isinstance(merges, (str, bytes)) or not isinstance(merges, (list, tuple)):
        raise ValueError(f"merges: expected a list of [id, id] pairs, found {describe(merges)}")
    pairs = []
    for i, m in enumerate(merges):
        if not (isinstance(m, (list, tuple)) and len(m) == 2 and is_token_id(m[0]) and is_token_id(m[1])):
            raise ValueError(f"merges[{i}]: expected a pair of integer token ids, found {describe(m)}")
        a, b = int(m[0]), int(m[1])
        known = 256 + i
        if not (0 <= a < known and 0 <= b < known):
            raise ValueError(f"merges[{i}] ({a}, {b}) refers to a token not learned before it "
                             f"(ids 0..{known - 1} exist at that point)")
        pairs.append((a, b))
    if len(set(pairs)) != len(pairs):
        first: dict = {}
        dup = next(i for i, p in enumerate(pairs) if first.setdefault(p, i) != i)
        raise ValueError(f"merges[{dup}] {pairs[dup]} repeats merges[{first[pairs[dup]]}]")
    return pairs


def _checked_id_table(ids, n_merges: int, n_special: int) -> list[int] | None:
    """The id table as a list of ints, a permutation of 0..V-1 (V = 256 + merges + special tokens), or None."""
    if ids is None:
        return None
    n = 256 + n_merges + n_special
    if isinstance(ids, np.ndarray):
        ids = ids.tolist()
    if isinstance(ids, (str, bytes)) or not isinstance(ids, (list, tuple)):
        raise ValueError(f"ids: expected a list of token ids, found {describe(ids)}")
    if len(ids) != n:
        raise ValueError(f"ids: expected {n} external ids (one per token: 256 bytes, {n_merges} merges, {n_special} "
                         f"special tokens), found {len(ids)}")
    seen: dict[int, int] = {}
    for i, v in enumerate(ids):
        if not is_token_id(v) or not 0 <= v < n:
            raise ValueError(f"ids[{i}]: expected an integer token id in [0, {n}), found {describe(v)}")
        if seen.setdefault(int(v), i) != i:
            raise ValueError(f"ids[{i}] = {v} repeats ids[{seen[int(v)]}]: the table must give every token its own id")
    table = [int(v) for v in ids]
    return None if table == list(range(n)) else table


def _checked_special_tokens(tokens) -> list[str]:
    """The special tokens as a list of distinct non-empty strings (None: none)."""
    if tokens is None:
        return []
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, (list, tuple)):
        raise ValueError(f"special_tokens: expected a list of strings, found {describe(tokens)}")
    for i, t in enumerate(tokens):
        if not (isinstance(t, str) and t):
            raise ValueError(f"special_tokens[{i}]: expected a non-empty string, found {describe(t)}")
    if len(set(tokens)) != len(tokens):
        first: dict = {}
        dup = next(i for i, t in enumerate(tokens) if first.setdefault(t, i) != i)
        raise ValueError(f"special_tokens[{dup}] {tokens[dup]!r} repeats special_tokens[{first[tokens[dup]]}]")
    return list(tokens)
