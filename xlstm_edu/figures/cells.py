"""Data-flow diagrams of one step of the LSTM, the sLSTM and the mLSTM cell.

``cell_diagram(kind)`` draws what enters the cell (x_t, and h_{t-1} where there is a recurrence), the gates (in
the colours of ``style.GATE_COLORS``), the states carried to the next step (on the top lanes, left to right:
state t-1 in, state t out) and the output. Every element is placed from the table of its cell below, so the
diagrams are code: ``CELLS[kind]`` lists the nodes and edges, and a test checks that each diagram shows every
gate and state of its cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xlstm_edu import style

KINDS = ("lstm", "slstm", "mlstm")


@dataclass
class Node:
    x: float
    y: float
    label: str
    kind: str  # "input", "output", "state", "gate", "op", "box"
    color: str = "#444444"
    w: float = 1.0
    h: float = 0.62


@dataclass
class Diagram:
    title: str
    nodes: dict
    edges: list  # (from, to, label or "", bend)
    notes: list = field(default_factory=list)  # (x, y, text)
    size: tuple = (11.0, 6.2)
    xlim: tuple = (-0.8, 11.0)
    ylim: tuple = (-0.4, 7.0)


G = style.GATE_COLORS
GREY = "#666666"


def _lstm() -> Diagram:
    n = {
        "c0": Node(0.0, 5.6, r"$c_{t-1}$", "state", G["c"]),
        "x": Node(0.0, 0.3, r"$x_t$", "input"),
        "h0": Node(0.0, 1.5, r"$h_{t-1}$", "input"),
        "pre": Node(1.9, 0.9, "pre-activations\n" + r"$W x_t + h_{t-1} R + b$", "box", GREY, w=2.3, h=1.0),
        "f": Node(3.0, 3.0, r"$f_t = \sigma(\tilde f_t)$", "gate", G["f"], w=1.45),
        "i": Node(4.6, 3.0, r"$i_t = \sigma(\tilde\imath_t)$", "gate", G["i"], w=1.45),
        "z": Node(6.25, 3.0, r"$z_t = \tanh(\tilde z_t)$", "gate", G["z"], w=1.6),
        "o": Node(7.95, 3.0, r"$o_t = \sigma(\tilde o_t)$", "gate", G["o"], w=1.45),
        "mulf": Node(3.0, 5.6, r"$\times$", "op"),
        "muliz": Node(5.4, 4.3, r"$\times$", "op"),
        "plus": Node(5.4, 5.6, r"$+$", "op"),
        "c1": Node(10.3, 5.6, r"$c_t$", "state", G["c"]),
        "tanh": Node(9.3, 4.3, r"$\tanh$", "op", w=0.8),
        "mulo": Node(9.3, 3.0, r"$\times$", "op", w=0.7),
        "h1": Node(10.3, 1.4, r"$h_t$", "output", G["h"]),
    }
    e = [("c0", "mulf", "", 0), ("mulf", "plus", "", 0), ("plus", "c1", "", 0),
         ("x", "pre", "", 0), ("h0", "pre", "", 0),
         ("pre", "f", r"$\tilde f$", 0), ("pre", "i", r"$\tilde\imath$", 0), ("pre", "z", r"$\tilde z$", 0),
         ("pre", "o", r"$\tilde o$", 0), ("f", "mulf", "", 0), ("i", "muliz", "", 0), ("z", "muliz", "", 0),
         ("muliz", "plus", "", 0), ("plus", "tanh", "", 0.2), ("tanh", "mulo", "", 0), ("o", "mulo", "", 0),
         ("mulo", "h1", "", 0)]
    notes = [(2.0, 6.35, "cell state: added to, not rewritten (eq. 2) — the constant error carousel"),
             (5.2, 0.3, r"$h_t$ is also the $h_{t-1}$ of the next step (through $R$)")]
    return Diagram("LSTM cell (eq. 2–7): gates σ, σ, tanh, σ; state (h, c)", n, e, notes)


def _slstm() -> Diagram:
    n = {
        "c0": Node(0.0, 6.0, r"$c_{t-1}$", "state", G["c"]),
        "n0": Node(0.0, 5.1, r"$n_{t-1}$", "state", G["n"]),
        "m0": Node(0.0, 4.2, r"$m_{t-1}$", "state", G["m"]),
        "x": Node(0.0, 0.3, r"$x_t$", "input"),
        "h0": Node(0.0, 1.4, r"$h_{t-1}$", "input"),
        "pre": Node(1.9, 0.85, "pre-activations\n" + r"$W x_t + h_{t-1} R + b$" + "\nR block-diagonal (heads)",
                    "box", GREY, w=2.7, h=1.25),
        "stab": Node(3.5, 3.1, "stabilizer (eq. 15–17)\n" + r"$m_t = \max(\log f_t + m_{t-1}, \tilde\imath_t)$"
                     + "\n" + r"$i'_t = e^{\tilde\imath_t - m_t}$,  $f'_t = e^{\log f_t + m_{t-1} - m_t}$",
                     "box", G["m"], w=4.0, h=1.25),
        "z": Node(6.6, 2.2, r"$z_t = \tanh(\tilde z_t)$", "gate", G["z"], w=1.6),
        "o": Node(8.2, 1.4, r"$o_t = \sigma(\tilde o_t)$", "gate", G["o"], w=1.45),
        "mulc": Node(5.6, 6.0, r"$\times f'$", "op", w=0.75),
        "plusc": Node(7.0, 6.0, r"$+\, i' z$", "op", w=0.85),
        "muln": Node(5.6, 5.1, r"$\times f'$", "op", w=0.75),
        "plusn": Node(7.0, 5.1, r"$+\, i'$", "op", w=0.75),
        "c1": Node(10.3, 6.0, r"$c_t$", "state", G["c"]),
        "n1": Node(10.3, 5.1, r"$n_t$", "state", G["n"]),
        "m1": Node(10.3, 4.2, r"$m_t$", "state", G["m"]),
        "div": Node(8.7, 3.4, r"$c_t / n_t$", "op", w=0.95),
        "mulo": Node(9.3, 2.2, r"$\times$", "op"),
        "h1": Node(10.3, 0.8, r"$h_t$", "output", G["h"]),
    }
    e = [("c0", "mulc", "", 0), ("mulc", "plusc", "", 0), ("plusc", "c1", "", 0),
         ("n0", "muln", "", 0), ("muln", "plusn", "", 0), ("plusn", "n1", "", 0),
         ("m0", "stab", "", 0.15), ("stab", "m1", "", -0.1),
         ("x", "pre", "", 0), ("h0", "pre", "", 0),
         ("pre", "stab", r"$\tilde\imath, \tilde f$", 0), ("pre", "z", r"$\tilde z$", 0), ("pre", "o", r"$\tilde o$", 0),
         ("stab", "mulc", "", 0), ("stab", "muln", "", 0), ("z", "plusc", "", 0.2),
         ("plusc", "div", "", 0), ("plusn", "div", "", 0), ("div", "mulo", "", 0), ("o", "mulo", "", 0),
         ("mulo", "h1", "", 0)]
    notes = [(1.2, 6.7, r"exponential input gate $e^{\tilde\imath}$, stored scaled by $e^{-m_t}$;"
                        r" $h_t = o_t\, c_t / n_t$ does not depend on $m$")]
    return Diagram("sLSTM cell (eq. 8–17): exponential gating, normalizer n, stabilizer m; state (h, c, n, m)",
                   n, e, notes)


def _mlstm() -> Diagram:
    n = {
        "C0": Node(0.0, 6.0, r"$C_{t-1}$" + "\n" + r"$(d_k \times d_v)$", "state", G["C"], h=0.8),
        "n0": Node(0.0, 4.95, r"$n_{t-1}$", "state", G["n"]),
        "m0": Node(0.0, 4.1, r"$m_{t-1}$", "state", G["m"]),
        "x": Node(0.0, 0.9, r"$x_t$", "input"),
        "proj": Node(1.9, 0.9, "projections of " + r"$x_t$" + " only\n" + r"$q_t,\ k_t,\ v_t,\ \tilde\imath_t,"
                     r"\ \tilde f_t$", "box", GREY, w=2.4, h=1.0),
        "stab": Node(3.0, 2.9, "stabilizer (eq. 15–17)\n" + r"$m_t = \max(\log f_t + m_{t-1}, \tilde\imath_t)$"
                     + "\n" + r"$i'_t,\ f'_t$ as in the sLSTM", "box", G["m"], w=3.4, h=1.15),
        "mulC": Node(5.5, 6.0, r"$\times f'$", "op", w=0.75),
        "plusC": Node(7.1, 6.0, r"$+\, i'\, k_t v_t^\top$", "op", w=1.25),
        "muln": Node(5.5, 4.95, r"$\times f'$", "op", w=0.75),
        "plusn": Node(7.1, 4.95, r"$+\, i'\, k_t$", "op", w=1.0),
        "C1": Node(10.3, 6.0, r"$C_t$", "state", G["C"]),
        "n1": Node(10.3, 4.95, r"$n_t$", "state", G["n"]),
        "m1": Node(10.3, 4.1, r"$m_t$", "state", G["m"]),
        "read": Node(8.0, 2.2, "readout (eq. 21)\n" + r"$\tilde h_t = \dfrac{\hat q_t^\top C_t}"
                     r"{\max(|\hat q_t^\top n_t|,\ e^{-m_t}) + \epsilon}$", "box", G["h"], w=3.0, h=1.3),
        "h1": Node(10.3, 0.6, r"$\tilde h_t$", "output", G["h"]),
    }
    e = [("C0", "mulC", "", 0), ("mulC", "plusC", "", 0), ("plusC", "C1", "", 0),
         ("n0", "muln", "", 0), ("muln", "plusn", "", 0), ("plusn", "n1", "", 0),
         ("m0", "stab", "", 0.15), ("stab", "m1", "", -0.1),
         ("x", "proj", "", 0), ("proj", "stab", r"$\tilde\imath, \tilde f$", 0),
         ("proj", "plusC", "", 0.35), ("proj", "read", r"$\hat q = q/\sqrt{d_k}$", 0.1),
         ("stab", "mulC", "", 0), ("stab", "muln", "", 0),
         ("plusC", "read", "", 0), ("plusn", "read", "", 0), ("read", "h1", "", 0)]
    notes = [(0.9, 6.75, "no recurrent weights: the gates see only " + r"$x_t$" +
              ", so all steps can be computed in parallel (chapter 6)"),
             (6.2, 0.05, r"the block multiplies by an output gate $o_t = \sigma(W_o x_t)$")]
    return Diagram("mLSTM cell (eq. 19–27): a matrix memory C of key–value pairs; state (C, n, m)", n, e, notes)


CELLS = {"lstm": _lstm, "slstm": _slstm, "mlstm": _mlstm}


def diagram(kind: str) -> Diagram:
    """The node/edge table of ``kind`` ("lstm", "slstm" or "mlstm")."""
    if kind not in CELLS:
        raise ValueError(f"cell_diagram: expected kind in {KINDS}, got {kind!r}")
    return CELLS[kind]()


def _anchor(a: Node, b: Node):
    """The point on the border of box ``a`` facing ``b`` (boxes are axis-aligned rectangles)."""
    dx, dy = b.x - a.x, b.y - a.y
    if dx == 0 and dy == 0:
        return a.x, a.y
    sx = (a.w / 2) / abs(dx) if dx else float("inf")
    sy = (a.h / 2) / abs(dy) if dy else float("inf")
    s = min(sx, sy)
    return a.x + dx * s, a.y + dy * s


def cell_diagram(kind: str, ax=None):
    """Draw the data flow of one step of the ``kind`` cell ("lstm", "slstm", "mlstm"); returns the Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    d = diagram(kind)
    if ax is None:
        fig, ax = plt.subplots(figsize=d.size)
    else:
        fig = ax.figure
    ax.set_xlim(*d.xlim)
    ax.set_ylim(*d.ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    for a, b, label, bend in d.edges:
        na, nb = d.nodes[a], d.nodes[b]
        p0, p1 = _anchor(na, nb), _anchor(nb, na)
        color = na.color if na.kind in ("state", "gate") else "#555555"
        ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle="-|>", mutation_scale=12, lw=1.4, color=color,
                                     connectionstyle=f"arc3,rad={bend}", zorder=1, shrinkA=2, shrinkB=2))
        if label:
            ax.text(p0[0] + 0.62 * (p1[0] - p0[0]), p0[1] + 0.62 * (p1[1] - p0[1]), label, fontsize=9, color="#333333", ha="center",
                    va="center", zorder=3, bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85))
    for node in d.nodes.values():
        fill = {"state": node.color, "gate": node.color, "output": node.color}.get(node.kind, "white")
        alpha = 0.22 if node.kind in ("state", "gate", "output") else 1.0
        style_ = "round,pad=0.05" if node.kind != "op" else "circle,pad=0.02"
        if node.kind == "op":
            style_ = "round,pad=0.05,rounding_size=0.3"
        ax.add_patch(FancyBboxPatch((node.x - node.w / 2, node.y - node.h / 2), node.w, node.h, boxstyle=style_,
                                    fc=fill, alpha=alpha, ec="none", zorder=2))
        ax.add_patch(FancyBboxPatch((node.x - node.w / 2, node.y - node.h / 2), node.w, node.h, boxstyle=style_,
                                    fc="none", ec=node.color if node.kind != "op" else "#555555",
                                    lw=1.6 if node.kind in ("state", "gate", "output") else 1.0, zorder=2))
        ax.text(node.x, node.y, node.label, ha="center", va="center", fontsize=10 if node.kind != "op" else 11,
                zorder=4)
    for x, y, text in d.notes:
        ax.text(x, y, text, fontsize=9, style="italic", color="#444444", va="center")
    ax.set_title(d.title, fontsize=12)
    return fig
