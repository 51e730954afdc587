"""What every explorer shares: colours, the classroom size, and the widget plumbing.

An explorer is three separate pieces, so that the numbers behind every picture can be tested without a browser:

* a **pure data function** ``*_data(**params) -> dataclass`` (numpy only, no widgets, no matplotlib);
* a **drawing function** ``draw_*(data, classroom=False) -> matplotlib Figure`` (no widgets);
* an :class:`Explorer` subclass that owns the controls and wires them with ``ipywidgets.interactive_output``:
  every change recomputes the data (kept in ``explorer.data``), draws the figure and shows it in an Output
  widget that is cleared with ``clear_output(wait=True)`` first (that is what ``interactive_output`` does).

It needs only ipywidgets 8 and matplotlib's inline backend, which JupyterLab 4, Jupyter Notebook 7 and Colab render
with no extension to build: the figure is a plain PNG inside the output widget (tests/test_browser.py checks it in
JupyterLab 4 with headless Chromium).
"""

from __future__ import annotations

import contextlib
import html as _html

import matplotlib
import matplotlib.pyplot as plt

# Okabe & Ito (2008), the colour-blind-safe palette; one colour per quantity, the same in every explorer.
OKABE_ITO = {
    "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000",
}
COLORS = {
    "i": OKABE_ITO["blue"], "f": OKABE_ITO["orange"], "z": OKABE_ITO["green"], "o": OKABE_ITO["purple"],
    "c": OKABE_ITO["vermillion"], "n": OKABE_ITO["sky"], "m": OKABE_ITO["black"], "h": OKABE_ITO["green"],
    "stored": OKABE_ITO["blue"], "retrieved": OKABE_ITO["orange"], "overflow": OKABE_ITO["vermillion"],
}
DIVERGING = "PuOr_r"  # colour-blind-safe diverging map for signed heatmaps
SEQUENTIAL = "viridis"

_NON_INTERACTIVE = {"agg", "pdf", "svg", "ps", "cairo", "template", "pgf"}


def scale(classroom: bool) -> float:
    """Figure scale factor: 1 at a desk, 1.45 at a projector."""
    return 1.45 if classroom else 1.0


def style(classroom: bool) -> dict:
    """matplotlib rc settings for the two sizes (bigger fonts and thicker lines for the classroom)."""
    base = 10.0 if not classroom else 16.0
    return {
        "font.size": base, "axes.titlesize": base + 1, "axes.labelsize": base, "legend.fontsize": base - 1,
        "xtick.labelsize": base - 1, "ytick.labelsize": base - 1, "lines.linewidth": 1.6 if not classroom else 2.6,
        "lines.markersize": 4 if not classroom else 7, "figure.dpi": 80 if not classroom else 72,
        "axes.grid": True, "grid.alpha": 0.3,
    }


def figsize(width: float, height: float, classroom: bool) -> tuple[float, float]:
    s = scale(classroom)
    return (width * s, height * s)


@contextlib.contextmanager
def figure_style(classroom: bool):
    with plt.rc_context(style(classroom)):
        yield


def show_figure(fig) -> None:
    """Show ``fig`` with the active backend (inline: a PNG in the current output) and free it."""
    if matplotlib.get_backend().lower() not in _NON_INTERACTIVE:
        plt.show()
    plt.close(fig)


def help_html(title: str, lines: list[str], classroom: bool = False) -> str:
    """The "what to look for" box above an explorer (``lines`` may hold simple HTML such as <b>)."""
    size = "1.35em" if classroom else "1em"
    items = "".join(f"<li>{line}</li>" for line in lines)
    return (f"<div style='font-size:{size}; line-height:1.35'><b>{_html.escape(title)}</b>"
            f"<ul style='margin-top:0.2em'>{items}</ul></div>")


class Explorer:
    """Base class: subclasses set ``controls`` (name -> widget, names = keyword arguments of ``compute``),
    and implement ``compute(**params)`` (pure) and ``draw(data, classroom)``.

    ``explorer.data`` is the data behind the figure on screen, ``explorer.params`` the control values that
    produced it, ``explorer.widget`` the whole UI (displaying the explorer displays it).
    """

    title = "explorer"
    what_to_look_for: list[str] = []
    css_class = "xlstm-explorer"
    passive: tuple = ()  # controls shown but not passed to compute (e.g. a preset menu that sets the others)

    def __init__(self, controls: dict, layout_rows: list[list[str]], classroom: bool = False):
        import ipywidgets as widgets

        self._widgets = widgets
        self.controls = dict(controls)
        self.controls["classroom"] = widgets.Checkbox(value=classroom, description="classroom size",
                                                      indent=False)
        self._tick = widgets.IntText(value=0)  # never shown: bumped to force exactly one redraw (presets)
        self._hold = False
        self.data = None
        self.params: dict = {}
        self.figure = None
        self.redraws = 0
        self.error: Exception | None = None
        self.help = widgets.HTML(help_html(self.title, self.what_to_look_for, classroom))
        self.controls["classroom"].observe(self._on_classroom, names="value")
        rows = [widgets.HBox([self.controls[name] for name in row]) for row in layout_rows + [["classroom"]]]
        active = {k: w for k, w in self.controls.items() if k not in self.passive}
        self.output = widgets.interactive_output(self._render, {**active, "_tick": self._tick})
        if self.error is not None:  # the first drawing failed: inside a kernel the Output widget would swallow it
            raise self.error
        self.widget = widgets.VBox([self.help, *rows, self.output])
        self.widget.add_class(self.css_class)
        self.widget.add_class("xlstm-explorer")

    # --- to be provided by subclasses -------------------------------------------------------------------------
    def compute(self, **params):  # pragma: no cover - abstract
        raise NotImplementedError

    def draw(self, data, classroom: bool = False):  # pragma: no cover - abstract
        raise NotImplementedError

    # --- plumbing ---------------------------------------------------------------------------------------------
    def values(self) -> dict:
        """The current control values (without the classroom switch)."""
        return {k: w.value for k, w in self.controls.items() if k != "classroom" and k not in self.passive}

    def _render(self, classroom=False, _tick=0, **params):
        if self._hold:
            return
        self.params = params
        self.error = None
        try:
            self.data = self.compute(**params)
        except ValueError as e:  # a bad input typed into a control: say why instead of a traceback
            self.data = None
            print(f"⚠ {e}")
            return
        except Exception as e:  # a bug: remembered, so that building the explorer fails loudly (see __init__)
            self.data, self.error = None, e
            raise
        self.redraws += 1
        fig = self.draw(self.data, classroom=classroom)
        self.figure = fig
        show_figure(fig)

    def _on_classroom(self, change):
        self.help.value = help_html(self.title, self.what_to_look_for, change["new"])

    def set(self, **values) -> None:
        """Set several controls at once and redraw once (used by presets; handy in tests)."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; expected some of {sorted(self.controls)}")
        self._hold = True
        try:
            for k, v in values.items():
                self.controls[k].value = v
        finally:
            self._hold = False
        self._tick.value += 1

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
