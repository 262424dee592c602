"""Textual gradients are put in an order that depends on their content only."""

from __future__ import annotations

from fedtextgrad_graph.site._textgrad import import_textgrad, order_gradients


def optimizer_view(insertion_order: list[int]) -> str:
    """What TGD puts in its request for a prompt whose gradients arrived in ``insertion_order``."""
    tg = import_textgrad()
    from textgrad.optimizer.optimizer import get_gradient_and_context_text

    prompt = tg.Variable("Answer the question.", requires_grad=True, role_description="system prompt")
    for i in insertion_order:
        gradient = tg.Variable(f"feedback {i}", requires_grad=False, role_description="feedback")
        prompt.gradients.add(gradient)
        prompt.gradients_context[gradient] = {"context": f"question {i}", "response_desc": "answer", "variable_desc": "prompt"}
    order_gradients(prompt)
    return get_gradient_and_context_text(prompt)


def test_the_optimizer_sees_gradients_in_the_same_order_whatever_their_arrival():
    views = {optimizer_view(order) for order in ([0, 1, 2, 3], [3, 1, 0, 2], [2, 3, 1, 0])}
    assert len(views) == 1
    [view] = views
    assert [view.index(f"feedback {i}") for i in range(4)] == sorted(view.index(f"feedback {i}") for i in range(4))
