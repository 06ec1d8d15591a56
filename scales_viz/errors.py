"""The exceptions scales-viz raises for bad input.

Every error derives from :class:`ScalesVizError` and from the built-in exception a caller
would expect (`ValueError` for wrong values and shapes, `TypeError` for wrong types), so both
`except ScalesVizError` and `except ValueError` work.
"""

from __future__ import annotations


class ScalesVizError(Exception):
    """Base class of every error scales-viz raises on purpose."""


class InputValueError(ScalesVizError, ValueError):
    """An argument has the right type but a wrong shape or value (NaN, wrong size, ...)."""


class InputTypeError(ScalesVizError, TypeError):
    """An argument has the wrong type (not a tensor, an integer dtype, ...)."""


class DecoderError(ScalesVizError, ValueError):
    """A decoder rejected its input or returned output of the wrong kind."""
