"""The course's plotting style and the cell diagrams drawn from code."""

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from xlstm_edu import style  # noqa: E402
from xlstm_edu.figures import cells  # noqa: E402


def test_apply_sets_the_palette_and_sizes():
    with matplotlib.rc_context():
        style.apply()
        assert plt.rcParams["axes.prop_cycle"].by_key()["color"][:3] == ["#0072B2", "#E69F00", "#009E73"]
        assert tuple(plt.rcParams["figure.figsize"]) == style.BASE_SIZE
        style.apply(classroom=True)
        assert plt.rcParams["figure.figsize"][0] > style.BASE_SIZE[0] and plt.rcParams["font.size"] > 11


def test_colors_known_and_unknown_kinds():
    assert style.MODEL_COLORS["xlstm"] != style.MODEL_COLORS["gpt"]
    assert len({style.GATE_COLORS[g] for g in "ifzomn"}) == 6  # every gate its own colour
    a, b = style.MODEL_COLORS["mamba"], style.MODEL_COLORS["mamba"]
    assert a == b and a in style.CYCLE and a != style.OKABE_ITO["yellow"]


def test_figure_sizes_with_panels():
    with matplotlib.rc_context():
        style.apply()
        fig, axes = style.figure(1, 3, title="three")
        assert len(axes) == 3 and fig.get_size_inches()[0] > style.BASE_SIZE[0] and fig.get_suptitle() == "three"
        plt.close(fig)
    with pytest.raises(ValueError):
        style.figure(0, 1)


EXPECTED = {  # what each diagram must show: its gates, its states in and out, its output
    "lstm": [r"f_t", r"i_t", r"z_t", r"o_t", r"c_{t-1}", r"c_t", r"h_{t-1}", r"x_t", r"h_t"],
    "slstm": [r"z_t", r"o_t", r"m_t = \max", r"c_{t-1}", r"n_{t-1}", r"m_{t-1}", r"c_t", r"n_t", r"h_{t-1}", r"h_t"],
    "mlstm": [r"C_{t-1}", r"n_{t-1}", r"m_{t-1}", r"C_t", r"n_t", r"m_t = \max", r"\tilde h_t", r"k_t v_t^\top",
              r"\hat q_t^\top C_t"],
}


@pytest.mark.parametrize("kind", cells.KINDS)
def test_cell_diagram_shows_every_gate_and_state(kind):
    fig = cells.cell_diagram(kind)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for label in EXPECTED[kind]:
        assert label in texts, f"{kind}: {label} missing"
    # every edge joins two drawn nodes
    d = cells.diagram(kind)
    assert all(a in d.nodes and b in d.nodes for a, b, *_ in d.edges)
    plt.close(fig)


def test_cell_diagram_unknown_kind():
    with pytest.raises(ValueError, match="expected kind"):
        cells.cell_diagram("gru")
