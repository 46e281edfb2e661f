"""The critical-difference diagram shows the ranks, the CD bar and the groups it was given."""

import matplotlib.pyplot as plt
import pytest

from actmix.cd_diagram import CD_LABEL, CLIQUE_LABEL, plot_critical_difference

RANKS = {"xgboost": 1.25, "actmix": 2.0, "relu": 2.5, "gelu": 3.75, "seed": 4.5}


def _lines(axis, label: str) -> list:
    return [line for line in axis.lines if line.get_label() == label]


def test_diagram_content():
    figure = plot_critical_difference(RANKS, 1.5, title="uci3")
    (axis,) = figure.axes
    texts = {text.get_text(): text for text in axis.texts}
    # a rank axis from 1 to 5 inside the visible range
    assert {"1", "2", "3", "4", "5"} <= set(texts)
    low, high = axis.get_xlim()
    assert low < 1 and high > 5
    for model, rank in RANKS.items():
        label = texts[f"{model} ({rank:.2f})"]
        # better half labelled on the left of the axis, worse half on the right
        assert (label.get_position()[0] < 1) == (model in ("xgboost", "actmix", "relu"))
    assert "CD = 1.50" in texts
    (bar,) = _lines(axis, CD_LABEL)
    assert list(bar.get_xdata()) == pytest.approx([1.0, 2.5])
    # groups: {xgboost, actmix, relu} (1.25 apart < 1.5) and {relu, gelu} and {gelu, seed}
    # each group's line spans its members' ranks (drawn a little wider, to show its ends)
    spans = sorted(tuple(line.get_xdata()) for line in _lines(axis, CLIQUE_LABEL))
    ends = [x for span in spans for x in span]
    assert ends == pytest.approx([1.25, 2.5, 2.5, 3.75, 3.75, 4.5], abs=0.05)
    assert axis.get_title() == "uci3"
    plt.close(figure)


def test_no_group_when_every_difference_is_significant():
    figure = plot_critical_difference({"a": 1.0, "b": 2.0, "c": 3.0}, 0.5)
    assert _lines(figure.axes[0], CLIQUE_LABEL) == []
    plt.close(figure)


@pytest.mark.parametrize(
    ("ranks", "cd", "message"),
    [
        ({"a": 1.0}, 1.0, "needs >= 2 models, got 1"),
        ({"a": 1.0, "b": 2.0}, 0.0, "must be a finite number > 0, got 0.0"),
        ({"a": 0.5, "b": 2.0}, 1.0, "mean rank of 'a' must be a finite number >= 1, got 0.5"),
    ],
)
def test_bad_input_names_the_value(ranks, cd, message):
    with pytest.raises(ValueError, match=message):
        plot_critical_difference(ranks, cd)
