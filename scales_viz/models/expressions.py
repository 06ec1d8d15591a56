"""The GrammarVAE arithmetic-expression language: parser, safe evaluator, data, objective.

Grammar (Kusner et al. 2017, as used by the ScaLES paper)::

    S -> S '+' T | S '*' T | S '/' T | T
    T -> '(' S ')' | 'sin(' S ')' | 'exp(' S ')' | 'x' | '1' | '2' | '3'

A string is valid when it derives from ``S``. The parser here is a recursive-descent parser
over characters; decoded strings are never passed to ``eval``. The grammar itself gives all
three operators one precedence, but the papers score expressions by evaluating the text as
ordinary arithmetic (``*`` and ``/`` bind tighter than ``+``); the tree built here follows
that reading, so ``x+1*2`` means ``x + 2``. The set of valid strings is the same either way.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scales_viz.errors import InputValueError

__all__ = [
    "EXPRESSION_LENGTH",
    "EXPRESSION_VOCAB",
    "TARGET_EXPRESSION",
    "Expr",
    "ExpressionSyntaxError",
    "evaluate",
    "fit_target",
    "generate_expressions",
    "is_valid_expression",
    "parse_expression",
]

#: The paper's 15-token character vocabulary; the space (last) is the pad.
EXPRESSION_VOCAB: tuple[str, ...] = (*"x+()123*/sinep", " ")
#: Longest expression, in characters (the decoder's `L`).
EXPRESSION_LENGTH = 19
TARGET_EXPRESSION = "1/3+x+sin(x*x)"
#: Where the objective compares an expression with the target.
OBJECTIVE_GRID = np.linspace(-10.0, 10.0, 1000)
#: Cap on the mean squared error, so that exploding expressions keep a finite objective.
MSE_CAP = 1000.0

_BINARY = "+*/"
_FUNCTIONS = ("sin", "exp")
_TERMINALS = "x123"


class ExpressionSyntaxError(InputValueError):
    """A string that does not derive from the expression grammar."""


@dataclass(frozen=True)
class Expr:
    """A node of a parsed expression.

    ``op`` is one of ``+ * /`` (two ``args``), ``sin``/``exp`` (one), or a terminal
    ``x 1 2 3`` (none).
    """

    op: str
    args: tuple[Expr, ...] = ()


class _Parser:
    """Recursive descent over characters; builds the tree with usual operator precedence."""

    def __init__(self, text: str) -> None:
        self.text = "".join(text.split())
        self.pos = 0

    def fail(self, expected: str) -> ExpressionSyntaxError:
        got = repr(self.text[self.pos]) if self.pos < len(self.text) else "the end"
        return ExpressionSyntaxError(
            f"expression {self.text!r}: expected {expected} at position {self.pos}; got {got}."
        )

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> Expr:
        if not self.text:
            raise self.fail("a term")
        tree = self.sum()
        if self.pos != len(self.text):
            raise self.fail("an operator")
        return tree

    def sum(self) -> Expr:
        node = self.product()
        while self.peek() == "+":
            self.pos += 1
            node = Expr("+", (node, self.product()))
        return node

    def product(self) -> Expr:
        node = self.term()
        while self.peek() in ("*", "/"):
            op = self.peek()
            self.pos += 1
            node = Expr(op, (node, self.term()))
        return node

    def term(self) -> Expr:
        char = self.peek()
        if char and char in _TERMINALS:
            self.pos += 1
            return Expr(char)
        for name in _FUNCTIONS:
            if self.text.startswith(name + "(", self.pos):
                self.pos += len(name) + 1
                return Expr(name, (self.closed(),))
        if char == "(":
            self.pos += 1
            return self.closed()
        raise self.fail("x, 1, 2, 3, '(', 'sin(' or 'exp('")

    def closed(self) -> Expr:
        inner = self.sum()
        if self.peek() != ")":
            raise self.fail("')'")
        self.pos += 1
        return inner


def parse_expression(text: str) -> Expr:
    """Parse `text` (whitespace ignored) under the grammar.

    Raises:
        ExpressionSyntaxError: `text` does not derive from the grammar.
    """
    return _Parser(text).parse()


def is_valid_expression(text: object) -> bool:
    """Whether `text` is a string that derives from the grammar."""
    if not isinstance(text, str):
        return False
    try:
        parse_expression(text)
    except ExpressionSyntaxError:
        return False
    return True


def evaluate(tree: Expr, x: np.ndarray) -> np.ndarray:
    """Evaluate a parsed expression at the points `x` (float64; inf/NaN where it blows up)."""
    with np.errstate(all="ignore"):
        return _evaluate(tree, np.asarray(x, dtype=np.float64))


def _evaluate(node: Expr, x: np.ndarray) -> np.ndarray:
    if node.op == "x":
        return x
    if node.op in _TERMINALS:
        return np.full_like(x, float(node.op))
    values = [_evaluate(arg, x) for arg in node.args]
    if node.op == "sin":
        return np.sin(values[0])
    if node.op == "exp":
        return np.exp(values[0])
    left, right = values
    if node.op == "+":
        return left + right
    if node.op == "*":
        return left * right
    return left / right


_TARGET_VALUES = evaluate(parse_expression(TARGET_EXPRESSION), OBJECTIVE_GRID)


def fit_target(text: object) -> float:
    """The `fit_target` objective: `-log(1 + min(MSE, 1000))` against `1/3 + x + sin(x*x)`.

    The MSE is over 1000 evenly spaced points in [-10, 10]. A valid expression whose values
    overflow or are undefined somewhere gets the capped MSE. Invalid strings give NaN.
    """
    if not isinstance(text, str):
        return float("nan")
    try:
        tree = parse_expression(text)
    except ExpressionSyntaxError:
        return float("nan")
    with np.errstate(all="ignore"):
        mse = float(np.mean((evaluate(tree, OBJECTIVE_GRID) - _TARGET_VALUES) ** 2))
    if not np.isfinite(mse):
        mse = MSE_CAP
    return 0.0 - float(np.log1p(min(mse, MSE_CAP)))


# Derivation probabilities for generating data: how often S grows by one more term, and how
# T expands. Growth is damped with depth so that most strings stay short.
_GROW = 0.55
_GROW_DECAY = 0.6
_T_RULES = (("(", 0.08), ("sin(", 0.12), ("exp(", 0.08), ("x", 0.36), ("1", 0.12))
_T_RULES_REST = (("2", 0.12), ("3", 0.12))


def _derive_s(rng: random.Random, depth: int) -> str:
    text = _derive_t(rng, depth)
    grow = _GROW * _GROW_DECAY**depth
    while rng.random() < grow:
        text += rng.choice(_BINARY) + _derive_t(rng, depth)
        grow *= _GROW
    return text


def _derive_t(rng: random.Random, depth: int) -> str:
    rules = (*_T_RULES, *_T_RULES_REST)
    pick = rng.choices([r for r, _ in rules], weights=[w for _, w in rules])[0]
    if pick.endswith("("):
        return pick + _derive_s(rng, depth + 1) + ")"
    return pick


def generate_expressions(
    count: int, *, seed: int, max_length: int = EXPRESSION_LENGTH, max_tries: int = 0
) -> list[str]:
    """`count` unique expressions of at most `max_length` characters, derived at random.

    Deterministic for a `seed`. Strings come out in the order first drawn.

    Raises:
        InputValueError: fewer than `count` unique strings turned up within `max_tries`
            derivations (default `50 * count`).
    """
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    tries = max_tries or 50 * count
    for _ in range(tries):
        if len(seen) == count:
            break
        text = _derive_s(rng, 0)
        if len(text) <= max_length:
            seen.setdefault(text, None)
    if len(seen) < count:
        raise InputValueError(
            f"generate_expressions: only {len(seen)} unique expressions of at most "
            f"{max_length} characters in {tries} derivations; asked for {count}."
        )
    return list(seen)


def tokens_of(texts: Sequence[str]) -> list[list[str]]:
    """Character tokens of each expression (the vocabulary is one character per token)."""
    return [list(text) for text in texts]
