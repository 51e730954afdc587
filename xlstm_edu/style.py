"""One plotting style for every chapter: ``from xlstm_edu import style; style.apply()``.

* ``apply(classroom=False)`` sets matplotlib's defaults once per notebook: a projector-friendly size, light grids,
  no top/right spines, and the Okabe–Ito colour cycle (distinguishable with the common colour-vision
  deficiencies). ``classroom=True`` makes everything larger for a projector at the back of a room.
* ``MODEL_COLORS[kind]`` — one colour per model kind (``xlstm``, ``mlstm``, ``slstm``, ``gpt``, ``lstm``, ...), the
  same in every chapter; an unknown kind gets a stable colour of the palette (never a KeyError).
* ``GATE_COLORS[g]`` — one colour per gate or state (``i``, ``f``, ``z``, ``o``, ``m``, ``n``, ``c``, ``h``),
  the same as the explorers of ``xlstm_edu.viz``.
* ``figure(nrows, ncols, ...)`` — ``plt.subplots`` sized for the number of panels, with an optional title.
* ``DIVERGING`` / ``SEQUENTIAL`` — colour maps for signed and non-negative heat maps.
"""

from __future__ import annotations

import zlib

# Okabe & Ito (2008), "Color Universal Design": eight colours that stay distinct for most colour-blind readers.
OKABE_ITO = {
    "blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "vermillion": "#D55E00",
    "purple": "#CC79A7", "sky": "#56B4E9", "yellow": "#F0E442", "black": "#000000",
}
CYCLE = [OKABE_ITO[c] for c in ("blue", "orange", "green", "vermillion", "purple", "sky", "black", "yellow")]

DIVERGING = "PuOr_r"  # signed values (weights, differences): white at 0
SEQUENTIAL = "viridis"  # non-negative values (gate matrices, attention-like weights)


class _Palette(dict):
    """A dict of colours that answers an unknown key with a stable colour of the cycle (by a hash of the key)."""

    def __missing__(self, key):
        return CYCLE[zlib.crc32(str(key).lower().encode()) % (len(CYCLE) - 1)]  # never the pale yellow


MODEL_COLORS = _Palette({
    "xlstm": OKABE_ITO["blue"],
    "mlstm": OKABE_ITO["sky"],
    "slstm": OKABE_ITO["green"],
    "gpt": OKABE_ITO["vermillion"],
    "transformer": OKABE_ITO["vermillion"],
    "lstm": OKABE_ITO["orange"],
    "rnn": OKABE_ITO["yellow"],
    "linear": OKABE_ITO["purple"],
    "official": OKABE_ITO["black"],
    "reference": OKABE_ITO["black"],
})

GATE_COLORS = _Palette({
    "i": OKABE_ITO["blue"],  # input gate
    "f": OKABE_ITO["orange"],  # forget gate
    "z": OKABE_ITO["green"],  # cell input
    "o": OKABE_ITO["purple"],  # output gate
    "m": OKABE_ITO["black"],  # stabilizer
    "n": OKABE_ITO["sky"],  # normalizer
    "c": OKABE_ITO["vermillion"],  # cell state (C for the mLSTM's matrix memory)
    "C": OKABE_ITO["vermillion"],
    "h": OKABE_ITO["green"],  # hidden state / output
})

BASE_SIZE = (7.0, 3.6)  # inches: one panel, readable on a laptop and a projector


def rc_params(classroom: bool = False) -> dict:
    """The matplotlib settings ``apply`` installs."""
    from cycler import cycler

    scale = 1.35 if classroom else 1.0
    return {
        "figure.figsize": (BASE_SIZE[0] * scale, BASE_SIZE[1] * scale),
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "savefig.bbox": "tight",
        "font.size": 11 * scale,
        "axes.titlesize": 12 * scale,
        "axes.labelsize": 11 * scale,
        "legend.fontsize": 10 * scale,
        "lines.linewidth": 2.0 * scale,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "axes.prop_cycle": cycler(color=CYCLE),
        "image.cmap": SEQUENTIAL,
    }


def apply(classroom: bool = False) -> None:
    """Install the course's plotting style in matplotlib (call once at the top of a notebook)."""
    import matplotlib as mpl

    mpl.rcParams.update(rc_params(classroom))


def figure(nrows: int = 1, ncols: int = 1, *, width: float | None = None, height: float | None = None,
           title: str | None = None, **subplots_kw):
    """``plt.subplots`` sized for ``nrows`` × ``ncols`` panels (each about the base size, the whole figure at most
    14 inches wide); ``title`` becomes the figure's suptitle. Returns ``(fig, axes)`` like ``plt.subplots``."""
    import matplotlib.pyplot as plt

    if nrows < 1 or ncols < 1:
        raise ValueError(f"figure: expected nrows, ncols >= 1, got {nrows}, {ncols}")
    w0, h0 = plt.rcParams["figure.figsize"]
    w = width if width is not None else min(14.0, w0 * (1 if ncols == 1 else 0.62 * ncols))
    h = height if height is not None else h0 * (1 if nrows == 1 else 0.85 * nrows)
    subplots_kw.setdefault("constrained_layout", True)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w, h), **subplots_kw)
    if title:
        fig.suptitle(title)
    return fig, axes
