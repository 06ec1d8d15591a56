"""The expression grammar: parser, safe evaluator, objective and data generator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scales_viz.models.expressions import (
    EXPRESSION_LENGTH,
    EXPRESSION_VOCAB,
    MSE_CAP,
    OBJECTIVE_GRID,
    TARGET_EXPRESSION,
    Expr,
    ExpressionSyntaxError,
    evaluate,
    fit_target,
    generate_expressions,
    is_valid_expression,
    parse_expression,
)

VALID = [
    "x",
    "3",
    "(x)",
    "sin(x)",
    "exp(1)",
    "x+1*2/3",
    "sin(exp(x*x))+(3)",
    "1/3+x+sin(x*x)",
    "((((x))))",
    " x + 1 ",
]
INVALID = ["", "x+", "+x", "sin(x", "sin x", "ex", "exp()", "x1", "()", "4", "x-1", "x**2", ")x("]


@pytest.mark.parametrize("text", VALID)
def test_valid_strings_parse(text: str) -> None:
    assert is_valid_expression(text)
    assert isinstance(parse_expression(text), Expr)


@pytest.mark.parametrize("text", INVALID)
def test_invalid_strings_are_refused_with_position(text: str) -> None:
    assert not is_valid_expression(text)
    with pytest.raises(ExpressionSyntaxError, match=r"expected .* at position"):
        parse_expression(text)


@pytest.mark.parametrize("thing", [None, 3, b"x", ["x"]])
def test_non_strings_are_invalid(thing: object) -> None:
    assert not is_valid_expression(thing)
    assert math.isnan(fit_target(thing))


def test_multiplication_binds_tighter_than_addition() -> None:
    x = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(evaluate(parse_expression("x+1*2"), x), x + 2)
    np.testing.assert_allclose(evaluate(parse_expression("x*2+1"), x), 2 * x + 1)
    np.testing.assert_allclose(evaluate(parse_expression("3/x/2"), x[1:]), 3 / x[1:] / 2)


def test_functions_evaluate_with_numpy() -> None:
    x = np.linspace(-2, 2, 7)
    tree = parse_expression("exp(sin(x))/(x*x+1)")
    np.testing.assert_allclose(evaluate(tree, x), np.exp(np.sin(x)) / (x * x + 1))


def test_the_target_itself_has_objective_zero() -> None:
    assert is_valid_expression(TARGET_EXPRESSION)
    assert fit_target(TARGET_EXPRESSION) == 0.0
    assert fit_target("1/3 + x + sin(x*x)") == 0.0


def test_objective_matches_the_formula_on_a_near_miss() -> None:
    grid = np.linspace(-10, 10, 1000)
    mse = np.mean((1 / 3 + grid + np.sin(grid) - (1 / 3 + grid + np.sin(grid * grid))) ** 2)
    assert fit_target("1/3+x+sin(x)") == pytest.approx(-math.log1p(mse), rel=1e-12)
    assert OBJECTIVE_GRID.shape == (1000,)


def test_invalid_string_has_nan_objective() -> None:
    assert math.isnan(fit_target("x+"))


def test_overflowing_expression_gets_the_capped_objective() -> None:
    assert fit_target("exp(exp(exp(x)))") == pytest.approx(-math.log1p(MSE_CAP))
    assert fit_target("sin(exp(exp(exp(x))))") == pytest.approx(-math.log1p(MSE_CAP))


def test_objective_is_never_above_zero_on_generated_data() -> None:
    values = np.array([fit_target(t) for t in generate_expressions(300, seed=3)])
    assert np.isfinite(values).all()
    assert (values <= 0).all()
    assert values.min() >= -math.log1p(MSE_CAP) - 1e-12


def test_generated_data_is_unique_valid_short_and_in_vocabulary() -> None:
    texts = generate_expressions(2000, seed=0)
    assert len(texts) == len(set(texts)) == 2000
    assert all(len(t) <= EXPRESSION_LENGTH for t in texts)
    assert all(is_valid_expression(t) for t in texts)
    assert set("".join(texts)) <= set(EXPRESSION_VOCAB[:-1])
    assert any("sin(" in t for t in texts) and any("exp(" in t for t in texts)


def test_generation_is_deterministic_per_seed() -> None:
    assert generate_expressions(500, seed=1) == generate_expressions(500, seed=1)
    assert generate_expressions(500, seed=1) != generate_expressions(500, seed=2)


def test_impossible_request_says_how_many_were_found() -> None:
    with pytest.raises(ValueError, match="only 4 unique expressions of at most 1"):
        generate_expressions(10, seed=0, max_length=1)


def test_vocabulary_is_the_papers() -> None:
    assert "".join(EXPRESSION_VOCAB) == "x+()123*/sinep "
    assert len(EXPRESSION_VOCAB) == 15
