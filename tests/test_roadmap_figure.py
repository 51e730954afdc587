"""Chapter 0's course map: it is built from the notebooks' own metadata, places every chapter of the course, and
draws."""

import pytest

from xlstm_edu.figures import roadmap


def test_every_chapter_of_the_course_is_on_the_map():
    pytest.importorskip("nbformat")
    from xlstm_edu.course import chapters

    course = chapters()
    rows = roadmap.roadmap_rows(course)
    on_map = {r["chapter"]: r for r in rows}
    for ch in course:
        assert ch["chapter"] in on_map, ch
        assert on_map[ch["chapter"]]["title"] == ch["title"]  # the notebook's own title, not a copy
        assert on_map[ch["chapter"]]["minutes"] == ch["minutes"]
        assert on_map[ch["chapter"]]["present"]
    assert sorted(on_map) == list(range(16))  # chapters 0-15


def test_a_new_chapter_must_be_placed():
    rows = [{"chapter": 0, "title": "Start here", "minutes": 20, "file": "00_start_here.ipynb"},
            {"chapter": 16, "title": "Something new", "minutes": 30, "file": "16_new.ipynb"}]
    with pytest.raises(ValueError, match="chapter 16 is in no part"):
        roadmap.roadmap_rows(rows)


def test_missing_chapters_are_drawn_as_provisional():
    rows = roadmap.roadmap_rows([{"chapter": 0, "title": "Start here", "minutes": 20, "file": "00_start_here.ipynb"}])
    by_number = {r["chapter"]: r for r in rows}
    assert by_number[0]["present"] and not by_number[13]["present"]
    assert by_number[13]["title"] == roadmap.PROVISIONAL[13]


def test_links_point_between_chapters_on_the_map():
    members = {n for _, _, m, _ in roadmap.PARTS for n in m}
    assert all(a in members and b in members and a < b for a, b in roadmap.LINKS)


def test_figure_draws():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = roadmap.roadmap_figure([{"chapter": n, "title": f"Chapter {n}", "minutes": 30, "file": f"{n:02d}.ipynb"}
                                  for n in range(16)])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "15" in texts and "Beyond the paper" in texts
    plt.close(fig)
