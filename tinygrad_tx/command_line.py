"""What the command-line programs share to refuse bad input the way argparse does: one line,
`prog: error: ...` on stderr, exit status 2, never a traceback.

The number types below go in `add_argument(type=...)`: argparse calls them on the text of the
option and, when they raise ArgumentTypeError, prints the option's name with the message.
"""
import argparse
import math


def _number(convert, name, accepts, requirement):
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {name}") from None
        if not accepts(value):  # NaN fails every comparison, so it is refused here too
            raise argparse.ArgumentTypeError(f"{text} must be {requirement}")
        return value
    parse.__name__ = name  # argparse names the type in some of its messages
    return parse


def _finite(accepts):
    return lambda value: math.isfinite(value) and accepts(value)


positive_int = _number(int, "an integer", lambda n: n > 0, "a positive integer")
non_negative_int = _number(int, "an integer", lambda n: n >= 0, "an integer >= 0")
positive_float = _number(float, "a number", _finite(lambda x: x > 0), "a positive number")
non_negative_float = _number(float, "a number", _finite(lambda x: x >= 0), "a number >= 0")
# a dropout probability: 0 turns dropout off, 1 would drop every activation
dropout_probability = _number(float, "a number", _finite(lambda x: 0 <= x < 1), "in [0, 1)")


def require_device(parser, device):
    """Refuse a device that cannot run here (a bad name, CuPy missing, no GPU) before any work starts."""
    from .backend import get_backend
    try:
        get_backend(device)
    except (ValueError, RuntimeError) as error:  # the backend's messages say what is missing and how to get it
        parser.error(f"--device {device}: {error}")
