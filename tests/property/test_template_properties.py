"""Templates never evaluate data: a label or annotation value holding Jinja syntax comes out verbatim,
whether rendered into a message, a silence matcher or compared in a severity expression."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.actions.silence import SilenceAction
from receiver.templating import evaluate, render

BOUNDED = settings(max_examples=200, deadline=None)
JINJA = st.sampled_from(
    [
        "{{ 7 * 7 }}",
        "{% for x in range(3) %}x{% endfor %}",
        "{{ labels }}",
        "{# c #}",
        "{{ ''.__class__.__mro__ }}",
        "{% raw %}",
        "}}{{",
        "{{",
        "%}",
    ]
)
hostile = st.lists(JINJA | st.text(max_size=8), min_size=1, max_size=4).map("".join)


@BOUNDED
@given(hostile, hostile)
def test_label_and_annotation_values_render_verbatim(model: str, description: str) -> None:
    context = {"labels": {"model": model}, "annotations": {"description": description}}
    out = render("model {{ labels.model }}: {{ annotations.description }}", context)
    assert out == f"model {model}: {description}"


@BOUNDED
@given(hostile)
def test_expressions_compare_values_as_data(tier: str) -> None:
    context = {"labels": {"tier": tier}, "value": 0.3}
    assert evaluate('labels.tier == "critical"', context) is (tier == "critical")
    assert evaluate("labels.tier", context) == tier


@BOUNDED
@given(hostile)
def test_silence_matcher_values_are_data(model: str) -> None:
    action = SilenceAction()
    params = {"matchers": ['model="{{ labels.model }}"', 'incident_type="drift"'], "duration": "1h"}
    rendered = action.render(params, {"labels": {"model": model}})
    assert rendered["matchers"][0] == {"name": "model", "value": model, "isRegex": False, "isEqual": True}
    assert len(rendered["matchers"]) == 2
