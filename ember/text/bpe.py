"""Byte-level BPE (GPT-2 style): train on whole texts, encode and decode any string exactly.

Pre-tokenisation splits text into chunks with GPT-2's regex,

    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

(contractions, runs of letters, of digits, of other symbols, each with an optional leading
space, and whitespace), so merges never cross a chunk boundary. Each chunk is UTF-8 bytes; ids
0..255 are the bytes, 256.. the merges in the order they were learned, then the special tokens.
Encoding a chunk applies the lowest-ranked mergeable pair until none is left (what GPT-2,
tiktoken and Hugging Face ``tokenizers`` do, so the same merges give the same ids), and caches
the result per distinct chunk, which is what makes encoding fast on natural text and code.

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
                 pattern: str = GPT2_PATTERN):
        self.merges = [tuple(m) for m in merges]
        self.pattern = pattern
        self._split = regex.compile(pattern)
        self._ascii_split = _ASCII_SPLIT if pattern == GPT2_PATTERN else self._split
        self.ranks = {pair: i for i, pair in enumerate(self.merges)}
        self.vocab: list[bytes] = [bytes([b]) for b in range(256)]
        for a, b in self.merges:
            if not (a < len(self.vocab) and b < len(self.vocab)):
                raise ValueError(f"ByteBPETokenizer: merge ({a}, {b}) refers to a token not learned before it")
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.special_tokens = {}
        for tok in special_tokens or []:
            self.special_tokens[tok] = len(self.vocab) + len(self.special_tokens)
        self._special_bytes = {i: t.encode("utf-8") for t, i in self.special_tokens.items()}
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
        split = regex.compile(pattern)
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
                cache.update(zip(new, self._merge_many(new)))
            else:
                cache.update((c, self._encode_chunk(c)) for c in new)
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
        vocab, special = self.vocab, self._special_bytes
        try:
            return b"".join(vocab[i] if i < len(vocab) else special[i] for i in map(int, ids))
        except (IndexError, KeyError):
            raise ValueError(f"decode: token id out of range [0, {self.vocab_size})") from None

    def decode(self, ids, errors: str = "replace") -> str:
        """The text of ``ids`` (an id sequence cut inside a UTF-8 character gets U+FFFD with 'replace')."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def token_strings(self) -> list[str]:
        """Every token in GPT-2's byte-to-unicode form (as vocab files, GGUF and ``tokenizers`` write them)."""
        table = bytes_to_unicode()
        return ["".join(table[b] for b in tok) for tok in self.vocab] + list(self.special_tokens)

    # -- files ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"type": self.kind, "version": 1, "pattern": self.pattern, "merges": [list(m) for m in self.merges],
                "special_tokens": list(self.special_tokens)}

    @classmethod
    def from_dict(cls, d: dict) -> ByteBPETokenizer:
        return cls([tuple(m) for m in d["merges"]], d.get("special_tokens", []), d.get("pattern", GPT2_PATTERN))

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
    """A tokenizer saved by ``save`` (byte-level BPE or characters), with a clear error for anything else."""
    from .char import CharTokenizer

    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable tokenizer file: {exc}") from exc
    kinds = {"byte-bpe": ByteBPETokenizer, "char": CharTokenizer}
    if d.get("type") not in kinds or d.get("version") != 1:
        raise ValueError(f"{path}: unknown tokenizer type/version {d.get('type')!r}/{d.get('version')!r}")
    return kinds[d["type"]].from_dict(d)
