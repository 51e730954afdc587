"""Chapter 7's tiling figure: the classification of (query, key) pairs it draws, and that it draws."""

import numpy as np
import pytest

from xlstm_edu.figures.tiling import CARRIED, INTRA, MASKED, chunk_starts, tile_kinds, tiling_figure


@pytest.mark.parametrize("S,L", [(10, 4), (8, 4), (5, 1), (6, 6), (3, 7)])
def test_tile_kinds_counts(S, L):
    kinds = tile_kinds(S, L)
    assert kinds.shape == (S, S)
    lengths = [min(L, S - a) for a in chunk_starts(S, L)]
    n_intra = sum(m * (m + 1) // 2 for m in lengths)  # the lower triangles of the diagonal tiles
    assert (kinds == INTRA).sum() == n_intra
    assert (kinds == CARRIED).sum() == S * (S + 1) // 2 - n_intra
    assert (kinds == MASKED).sum() == S * (S - 1) // 2
    assert np.all(kinds[np.triu_indices(S, 1)] == MASKED)  # the future


def test_tile_kinds_by_rule():
    kinds = tile_kinds(10, 4)
    assert kinds[4, 3] == CARRIED  # key in chunk 1, query in chunk 2
    assert kinds[5, 4] == INTRA and kinds[9, 8] == INTRA  # same chunk, including the last, shorter one
    assert kinds[3, 4] == MASKED


@pytest.mark.parametrize("S,L", [(0, 4), (4, 0), (4.0, 2)])
def test_bad_sizes_raise(S, L):
    with pytest.raises(ValueError, match="expected a positive integer"):
        tile_kinds(S, L)


def test_figure_draws(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    fig = tiling_figure(S=10, L=4)
    fig.savefig(tmp_path / "tiling.png")
    assert (tmp_path / "tiling.png").stat().st_size > 1000
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert texts.count("(C, n, m)") == 2  # one carried state per chunk border
