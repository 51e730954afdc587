"""The tiling picture of the chunkwise mLSTM (chapter 7), drawn from code.

The parallel form weighs every pair (t, s) with s <= t by an entry of the S x S gate matrix D. The chunkwise form
cuts time into chunks of L steps and computes only the **diagonal tiles** explicitly (the pairs whose query t and key
s fall into the same chunk: a small parallel form, L x L per chunk); every pair whose key lies in an *earlier* chunk
reaches the output **through the carried state** (C, n, m), updated once per chunk border. ``tile_kinds`` classifies
the pairs, ``tiling_figure`` draws them::

    from xlstm_edu.figures.tiling import tiling_figure
    fig = tiling_figure(S=10, L=4)   # a last, shorter chunk of 2 steps
"""

from __future__ import annotations

import numpy as np

MASKED, INTRA, CARRIED = 0, 1, 2  # the future; inside the chunk (diagonal tile); through the carried state


def chunk_starts(S: int, L: int) -> list:
    """Start indices of the chunks of length L (the last one may be shorter) covering 0 .. S-1."""
    if not isinstance(S, (int, np.integer)) or S < 1:
        raise ValueError(f"S: expected a positive integer (the sequence length), got {S!r}")
    if not isinstance(L, (int, np.integer)) or L < 1:
        raise ValueError(f"L: expected a positive integer (the chunk size), got {L!r}")
    return list(range(0, S, L))


def tile_kinds(S: int, L: int) -> np.ndarray:
    """(S, S) array: for query t (row) and key s (column), ``MASKED`` if s > t, ``INTRA`` if s <= t in the same
    chunk (computed inside the chunk), ``CARRIED`` if s lies in an earlier chunk (reaches t through the state)."""
    chunk_starts(S, L)  # validates
    t = np.arange(S)[:, None]
    s = np.arange(S)[None, :]
    same_chunk = (t // L) == (s // L)
    return np.where(s > t, MASKED, np.where(same_chunk, INTRA, CARRIED)).astype(int)


def _course_colors():
    try:
        from xlstm_edu import style
    except ImportError:  # the style module is optional here: matplotlib's first two cycle colours
        return "C0", "C1"
    return style.CYCLE[0], style.CYCLE[1]


def tiling_figure(S: int = 10, L: int = 4, ax=None, colors=None):
    """Draw the S x S (query t, key s) plane of one head split into chunks of L steps. Returns the figure (in the
    course style's colours unless ``colors = (inside, carried)`` is given).

    Diagonal tiles (pairs inside one chunk) in one colour, the pairs that reach a query through the carried state
    (C, n, m) in another (hatched), the future blank; chunk borders as thick lines, and the state handed on at each
    border as an arrow on the right."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    kinds = tile_kinds(S, L)
    starts = chunk_starts(S, L)
    intra_color, carried_color = colors or _course_colors()
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.2, 5.4))
    else:
        fig = ax.figure
    cmap = ListedColormap(["white", intra_color, carried_color])
    ax.imshow(kinds, cmap=cmap, vmin=-0.5, vmax=2.5, extent=(0.5, S + 0.5, S + 0.5, 0.5), alpha=0.85)
    # hatch the carried region chunk by chunk (one rectangle per block below the diagonal)
    for a in starts:
        for b in starts:
            if b < a:
                h = min(L, S - a)
                w = min(L, S - b)
                ax.add_patch(plt.Rectangle((b + 0.5, a + 0.5), w, h, fill=False, hatch="//", lw=0, color="white"))
    # cell grid and chunk borders
    for x in np.arange(0.5, S + 1.5):
        ax.axhline(x, color="white", lw=0.6)
        ax.axvline(x, color="white", lw=0.6)
    for a in starts[1:]:
        ax.axhline(a + 0.5, color="black", lw=2)
        ax.axvline(a + 0.5, color="black", lw=2)
    # the state handed on at every chunk border
    for j, a in enumerate(starts[1:], 1):
        ax.annotate("", xy=(S + 1.2, a + 0.5 + min(L, S - a) / 2), xytext=(S + 1.2, a + 0.5 - L / 2),
                    arrowprops=dict(arrowstyle="-|>", color="black", lw=1.5), annotation_clip=False)
        ax.text(S + 1.5, a + 0.5, f"state $(C, n, m)$\nafter chunk {j}", va="center", fontsize=9, clip_on=False)
    ax.set_xlim(0.5, S + 0.5)
    ax.set_ylim(S + 0.5, 0.5)
    ax.set_xticks(range(1, S + 1))
    ax.set_yticks(range(1, S + 1))
    ax.tick_params(labelsize=8)
    ax.grid(False)
    ax.set_xlabel("key / value step s")
    ax.set_ylabel("query step t")
    n_intra, n_carried = int((kinds == INTRA).sum()), int((kinds == CARRIED).sum())
    ax.set_title(f"Chunkwise mLSTM: S = {S}, chunks of L = {L}")
    ax.legend(handles=[Patch(color=intra_color, alpha=0.85, label=f"inside the chunk ({n_intra} pairs): parallel form"),
                       Patch(facecolor=carried_color, alpha=0.85, hatch="//", edgecolor="white",
                             label=f"through the carried state ({n_carried} pairs)"),
                       Patch(facecolor="white", edgecolor="0.6", label="the future: masked")],
              loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1, fontsize=9, frameon=False)
    fig.tight_layout()
    return fig
