"""The pieces a picture is made of, between building it (view.py) and writing it (dot.py)."""
from dataclasses import dataclass, field


@dataclass
class Options:
    show_shapes: bool = True
    show_dtypes: bool = True
    show_saved: bool = False
    show_grads: bool = False
    show_values: bool = False
    show_constants: bool = True
    backward: bool = False
    depth: int = None
    roll_repeats: bool = False
    max_nodes: int = 1000
    rankdir: str = "TB"
    grad_scale: object = None  # a gradients.LogColorScale
    title: str = None


@dataclass(eq=False)
class Node:
    id: str
    kind: str                 # op, leaf, constant, output, module, more
    rows: list                # [(text, style)] with style "title", "text" or "small"
    clusters: tuple = ()      # the modules it sits in, outermost first
    value_rows: list = None   # show_values: the cells of the box that holds an op's result
    summed: bool = False      # backward view: gradients from several consumers are added up here
    tooltip: str = ""


@dataclass(eq=False)
class Arrow:
    source: str
    target: str
    label: str = ""
    color: str = None
    width: float = None
    dashed: bool = False
    count: int = 1            # captured edges merged into this arrow


@dataclass(eq=False)
class View:
    nodes: list
    arrows: list
    cluster_titles: dict      # id(module) -> (class name, path)
    options: Options
    notes: list = field(default_factory=list)
    depth: int = None         # the depth actually drawn (max_nodes may have lowered it)

    def node_count(self):
        return len(self.nodes)
