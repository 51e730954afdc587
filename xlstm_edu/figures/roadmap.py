"""The course map (chapter 0), drawn from the notebooks themselves.

The chapter titles and times come from the notebooks' metadata at run time (``xlstm_edu.course.chapters()``, the
same rows ``python -m xlstm_edu.course list`` prints), so the map cannot drift from the course. What this module
adds is the structure: which part a chapter belongs to and which chapter leads to which::

    from xlstm_edu.figures.roadmap import roadmap_figure
    fig = roadmap_figure()

A chapter of the course that no part lists raises a ValueError (``tests/test_roadmap_figure.py`` runs this on the
real notebooks), so a new chapter has to be placed on the map. A chapter a part lists but the notebooks folder
lacks is drawn dashed, with a provisional title.
"""

from __future__ import annotations

import textwrap

# (part name, style colour key, chapters in reading order, whether each chapter builds on the one above it)
PARTS = (
    ("Foundations", "lstm", (0, 1), True),
    ("The sLSTM", "slstm", (2, 3, 4), True),
    ("The mLSTM", "mlstm", (5, 6, 7, 8), True),
    ("PyTorch and experiments", "xlstm", (9, 10, 11, 12), True),
    ("Beyond the paper", "linear", (13, 14, 15), False),
)

# the main prerequisite links between parts (drawn between neighbouring columns only; each chapter's own
# "Prerequisites" line names the rest)
LINKS = ((1, 2), (3, 5), (7, 9), (10, 13), (10, 14), (9, 15))

# titles used only for a chapter whose notebook is not in the folder
PROVISIONAL = {13: "Generation and long context", 14: "The mLSTM among linear RNNs", 15: "xLSTM at scale (7B)"}


def part_of(chapter: int) -> str:
    for name, _, members, _ in PARTS:
        if chapter in members:
            return name
    raise ValueError(f"roadmap: chapter {chapter} is in no part of the map; add it to "
                     f"xlstm_edu.figures.roadmap.PARTS (parts: {[p[0] for p in PARTS]})")


def roadmap_rows(chapters=None) -> list[dict]:
    """One row per chapter of the map: {"chapter", "title", "minutes", "part", "present"}.

    ``chapters`` is the list ``xlstm_edu.course.chapters()`` returns (read from the notebooks folder if None).
    ValueError when a chapter of the course is in no part."""
    if chapters is None:
        from xlstm_edu.course import chapters as read_chapters

        chapters = read_chapters()
    found = {}
    for row in chapters:
        number = row.get("chapter")
        if number is None:
            raise ValueError(f"roadmap: a notebook without a chapter number: {row.get('file')!r}")
        part_of(int(number))  # raises for a chapter that is not on the map
        found[int(number)] = row
    rows = []
    for name, _, members, _ in PARTS:
        for n in members:
            row = found.get(n)
            rows.append({"chapter": n, "part": name, "present": row is not None,
                         "title": row["title"] if row else PROVISIONAL.get(n, f"Chapter {n}"),
                         "minutes": row.get("minutes") if row else None})
    return rows


def roadmap_figure(chapters=None, ax=None):
    """Draw the course map: one column per part, one box per chapter (number, title, time), arrows for the main
    prerequisites. Returns the Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from xlstm_edu import style

    rows = roadmap_rows(chapters)
    if ax is None:
        fig, ax = plt.subplots(figsize=(13.5, 6.2))
    else:
        fig = ax.figure
    width, height, dx, dy = 2.35, 0.95, 2.7, 1.25
    pos = {}
    for col, (name, color_key, members, _) in enumerate(PARTS):
        color = style.MODEL_COLORS[color_key]
        ax.text(col * dx + width / 2, 0.75, name, ha="center", va="bottom", fontsize=11, fontweight="bold",
                color=color)
        for k, n in enumerate(members):
            row = next(r for r in rows if r["chapter"] == n)
            x, y = col * dx, -k * dy
            pos[n] = (x, y)
            ax.add_patch(FancyBboxPatch((x, y - height / 2), width, height, boxstyle="round,pad=0.04",
                                        fc=color, alpha=0.18 if row["present"] else 0.06, ec="none", zorder=1))
            ax.add_patch(FancyBboxPatch((x, y - height / 2), width, height, boxstyle="round,pad=0.04",
                                        fc="none", ec=color, lw=1.6, ls="-" if row["present"] else "--", zorder=2))
            lines = textwrap.wrap(row["title"], 24)
            minutes = f"{row['minutes']} min" if row["minutes"] else ("not in this copy" if not row["present"]
                                                                       else "? min")
            ax.text(x + 0.12, y + 0.28, f"{n}", ha="left", va="center", fontsize=12, fontweight="bold", color=color)
            ax.text(x + width / 2 + 0.1, y + 0.02, "\n".join(lines), ha="center", va="center",
                    fontsize=8.4 if len(lines) < 3 else 7.6, zorder=3)
            ax.text(x + width - 0.08, y - height / 2 + 0.1, minutes, ha="right", va="bottom", fontsize=7.5,
                    color="#555555", zorder=3)
    arrows = [(a, b) for _, _, m, chained in PARTS if chained for a, b in zip(m, m[1:])] + list(LINKS)
    for a, b in arrows:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        if xa == xb:  # the next chapter of the same part: straight down
            p0, p1, rad = (xa + width / 2, ya - height / 2), (xb + width / 2, yb + height / 2), 0.0
        else:  # a link to another part: from the right edge to the left edge
            p0, p1, rad = (xa + width, ya), (xb, yb), (0.12 if yb >= ya else -0.12)
        ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle="-|>", mutation_scale=11, lw=1.1, color="#666666",
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=3, shrinkB=3, zorder=0))
    longest = max(len(m) for _, _, m, _ in PARTS)
    ax.set_xlim(-0.25, (len(PARTS) - 1) * dx + width + 0.25)
    ax.set_ylim(-(longest - 1) * dy - height / 2 - 0.35, 1.25)
    ax.set_axis_off()
    total = sum(r["minutes"] or 0 for r in rows)
    ax.set_title(f"The course: {len(rows)} chapters, about {total / 60:.0f} hours with the exercises "
                 f"(the core path is 0 → 7)", fontsize=12)
    return fig
