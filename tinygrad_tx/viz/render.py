"""Drawing: the DOT text of a graph, and the ways to turn it into a picture.

`.dot`/`.gv` files are written directly. Images (.svg, .png, .pdf) come from Graphviz's `dot`
program, run as a subprocess; when it is missing the error says how to install it. Jupyter shows
a Drawing inline through `_repr_mimebundle_` (SVG).
"""
import os
import shutil
import subprocess

TEXT_FORMATS = ("dot", "gv")
IMAGE_FORMATS = ("svg", "png", "pdf")
INSTALL_HINT = ("Graphviz's `dot` program was not found on PATH; it turns the graph into {what}. Install "
                "Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; conda: conda "
                "install graphviz), or save the graph as .dot text instead, which needs nothing.")


class GraphvizNotFound(RuntimeError):
    pass


def dot_program():
    """Path of Graphviz's dot, or None."""
    return shutil.which("dot")


def run_dot(source, format="svg", timeout=600):
    """DOT text -> image bytes."""
    if format not in IMAGE_FORMATS:
        raise ValueError(f"cannot render to {format!r}: choose one of {', '.join(IMAGE_FORMATS + TEXT_FORMATS)}")
    program = dot_program()
    if program is None:
        raise GraphvizNotFound(INSTALL_HINT.format(what=f"{format.upper()} images"))
    result = subprocess.run([program, f"-T{format}"], input=source.encode("utf-8", "replace"),
                            capture_output=True, timeout=timeout)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"Graphviz dot failed (exit {result.returncode}): {message}")
    return result.stdout


class Drawing:
    """A drawn graph. str() is its DOT text; save() writes .dot, .svg, .png or .pdf; Jupyter shows it."""

    def __init__(self, source, view):
        self.source = source
        self.view = view  # the nodes, arrows and clusters behind the text (tests and tools read it)

    def __str__(self):
        return self.source

    def __repr__(self):
        return f"<Drawing: {len(self.view.nodes)} nodes, {len(self.view.arrows)} arrows>"

    @property
    def nodes(self):
        return self.view.nodes

    @property
    def arrows(self):
        return self.view.arrows

    def pipe(self, format="svg"):
        """The picture as bytes."""
        return run_dot(self.source, format)

    def save(self, path, format=None):
        """Write the graph; the format comes from the file's extension unless given. Returns the path."""
        format = (format or os.path.splitext(path)[1].lstrip(".")).lower()
        if format in TEXT_FORMATS:
            data = self.source.encode("utf-8", "replace")
        elif format in IMAGE_FORMATS:
            data = run_dot(self.source, format)
        else:
            raise ValueError(f"Drawing.save: cannot tell the format of {path!r}; end it in one of "
                             f"{', '.join('.' + f for f in IMAGE_FORMATS + TEXT_FORMATS)} or pass format=")
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def to_graphviz(self):
        """The same graph as a `graphviz.Source`, for code built around the graphviz package."""
        try:
            import graphviz
        except ImportError as error:
            raise ImportError("to_graphviz needs the graphviz package: pip install graphviz") from error
        return graphviz.Source(self.source)

    # --- Jupyter ------------------------------------------------------------------------------------
    def _repr_svg_(self):
        return run_dot(self.source, "svg").decode("utf-8")

    def _repr_mimebundle_(self, include=None, exclude=None):
        try:
            return {"image/svg+xml": self._repr_svg_()}
        except GraphvizNotFound as error:  # a notebook cell should show why, not a traceback
            return {"text/plain": f"{self!r}\n{error}"}
