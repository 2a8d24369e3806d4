"""The precision-recall curve kept at training time and the SVG points the Models page draws."""

from classifiers.evaluate import pr_curve
from tracker.web import model_views


def test_a_long_curve_is_thinned_but_keeps_both_ends() -> None:
    truth = [i % 3 == 0 for i in range(500)]
    scores = [i / 500 for i in range(500)]
    curve = pr_curve(truth, scores, max_points=20)
    assert 2 <= len(curve["precision"]) <= 21 and len(curve["recall"]) == len(curve["precision"])
    assert curve["recall"][0] == 1.0  # the lowest threshold finds every positive
    assert (curve["precision"][-1], curve["recall"][-1]) == (1.0, 0.0)
    assert pr_curve([False, False], [0.2, 0.9]) == {"precision": [], "recall": []}


def test_the_page_draws_a_stored_curve_in_the_plot_area() -> None:
    drawn = model_views.pr_curve({"pr_curve": {"precision": [0.5, 1.0], "recall": [1.0, 0.0]}})
    assert drawn is not None and drawn.count == 2
    right = model_views.PLOT_LEFT + model_views.PLOT_WIDTH
    middle = model_views.PLOT_TOP + model_views.PLOT_HEIGHT / 2
    assert (
        drawn.points
        == f"{right:.1f},{middle:.1f} {model_views.PLOT_LEFT:.1f},{model_views.PLOT_TOP:.1f}"
    )


def test_a_missing_or_malformed_curve_is_not_drawn() -> None:
    for metadata in (
        {},
        {"pr_curve": None},
        {"pr_curve": {"precision": [], "recall": []}},
        {"pr_curve": {"precision": [0.5, 2.0], "recall": [1.0, 0.0]}},
        {"pr_curve": {"precision": ["1"], "recall": [0.5]}},
        {"pr_curve": {"precision": [0.5, 0.7], "recall": [1.0]}},
    ):
        assert model_views.pr_curve(metadata) is None, metadata
