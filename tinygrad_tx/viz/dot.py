"""DOT text for a View, written by hand: no Graphviz install is needed to produce a .dot file.

Every piece of text that reaches the file goes through `html_text` (HTML-like labels) or
`tooltip_text` (the only quoted strings that carry names). Node and cluster ids are generated here ("op12",
"cluster_3"), never taken from names, so a module called `we"ird<{name}>` cannot break the file.
"""
import re

# characters XML 1.0 forbids (Graphviz parses HTML-like labels as XML): drop them
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")

FILL = {"op": "#dbe8fb", "leaf": "#fff2c6", "constant": "#ffffff", "output": "#d6f5d6", "module": "#e8e0f8",
        "more": "#f2f2f2"}
SHAPE = {"module": "box3d", "more": "note"}
CLUSTER_FILLS = ("#f7f7f7", "#eeeeee")


def html_text(text):
    """Plain text -> the inside of an HTML-like label: markup characters escaped, newlines as <BR/>.
    Graphviz still expands backslash escapes inside HTML-like labels (a module named "\\N" would
    show the node's id), so each backslash is doubled; "\\\\" reads back as one."""
    text = _FORBIDDEN.sub("", str(text).replace("\t", " ").replace("\r\n", "\n").replace("\r", "\n"))
    text = text.replace("\\", "\\\\")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return "<BR/>".join(text.split("\n"))


def tooltip_text(text):
    """Plain text -> a quoted DOT string for a tooltip. Tooltips pass through Graphviz's backslash
    unescaping twice, so one literal backslash is written as four; quotes are escaped, and newlines
    become a space (a tooltip is one line in most viewers anyway)."""
    text = _FORBIDDEN.sub("", str(text).replace("\t", " ").replace("\r", " ").replace("\n", " "))
    text = text.replace("\\", "\\" * 4).replace('"', '\\"')
    return f'"{text}"'


def html_label(rows):
    """[(text, style)] -> an HTML-like label: a bold title line, normal lines, small gray lines."""
    lines = []
    for text, style in rows:
        text = html_text(text)
        if style == "title":
            lines.append(f"<B>{text}</B>")
        elif style == "small":
            lines.append(f'<FONT POINT-SIZE="9" COLOR="#444444">{text}</FONT>')
        else:
            lines.append(text)
    return "<" + "<BR/>".join(lines) + ">"


def value_label(cells):
    """micrograd's record box (name | data | grad), as a one-row table."""
    inner = "".join(f"<TD>{html_text(cell)}</TD>" for cell in cells)
    return f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4"><TR>{inner}</TR></TABLE>>'


def write_dot(view):
    """The DOT source of a view."""
    options = view.options
    lines = ["digraph computation_graph {"]
    graph_attributes = [f"rankdir={options.rankdir}", "newrank=true", 'fontname="Helvetica"', "fontsize=12",
                        "ranksep=0.35", "nodesep=0.25", "labelloc=t", "labeljust=l"]
    notes = ([options.title] if options.title else []) + view.notes
    if notes:
        graph_attributes.append("label=" + html_label([(n, "text") for n in notes]))
    lines.append(f"  graph [{', '.join(graph_attributes)}];")
    lines.append(f'  node [shape=box, style="rounded,filled", fillcolor="{FILL["op"]}", fontname="Helvetica", '
                 'fontsize=11, margin="0.08,0.04", height=0.3];')
    lines.append('  edge [fontname="Helvetica", fontsize=9, color="#555555", arrowsize=0.7];')
    _write_clusters(lines, view)
    for arrow in view.arrows:
        lines.append(f"  {_arrow_source(view, arrow)} -> {arrow.target} [{_arrow_attributes(arrow)}];")
    if options.show_grads:
        lines.extend(_legend(options.grad_scale))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _write_clusters(lines, view):
    """Nodes nested in one subgraph cluster per module, in the order they first appear."""
    tree = {(): {"nodes": [], "children": []}}
    for node in view.nodes:
        chain = tuple(id(m) for m in node.clusters)
        for depth in range(1, len(chain) + 1):
            if chain[:depth] not in tree:
                tree[chain[:depth]] = {"nodes": [], "children": []}
                tree[chain[:depth - 1]]["children"].append(chain[:depth])
        tree[chain]["nodes"].append(node)
    counter = [0]

    def emit(chain, indent):
        entry = tree[chain]
        for node in entry["nodes"]:
            for line in _node_lines(node):
                lines.append(indent + line)
        for child in entry["children"]:
            class_name, path = view.cluster_titles[child[-1]]
            lines.append(f"{indent}subgraph cluster_{counter[0]} {{")
            counter[0] += 1
            fill = CLUSTER_FILLS[(len(child) - 1) % len(CLUSTER_FILLS)]
            label = html_label([(class_name, "title")] + ([(path, "small")] if path else []))
            lines.append(f'{indent}  graph [label={label}, style="rounded,filled", fillcolor="{fill}", '
                         'color="#999999", fontsize=10];')
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    emit((), "  ")


def _node_lines(node):
    attributes = [f"label={html_label(node.rows)}"]
    if node.kind != "op":
        attributes.append(f'fillcolor="{FILL[node.kind]}"')
    if node.kind in SHAPE:
        attributes.append(f"shape={SHAPE[node.kind]}")
    if node.kind == "leaf":
        attributes.append('style="filled"')
    elif node.kind == "constant":
        attributes.append('style="dashed"')
    elif node.kind == "output":
        attributes.append('style="filled", penwidth=2')
    if node.summed:
        attributes.append("peripheries=2")
    if node.tooltip:
        attributes.append(f"tooltip={tooltip_text(node.tooltip)}")
    lines = [f"{node.id} [{', '.join(attributes)}];"]
    if node.value_rows is not None:  # the op's result gets its own box, as in micrograd's draw_dot
        lines.append(f'{node.id}_value [shape=plain, style="", label={value_label(node.value_rows)}];')
        lines.append(f"{node.id} -> {node.id}_value [arrowsize=0.5];")
    return lines


def _arrow_source(view, arrow):
    """With show_values an op's result lives in its value box, so arrows leave from there."""
    if not view.options.backward and arrow.source.startswith("op") and view.options.show_values:
        return arrow.source + "_value"
    return arrow.source


def _arrow_attributes(arrow):
    attributes = []
    if arrow.label:
        attributes.append(f'label=<<FONT COLOR="#333333">{html_text(arrow.label)}</FONT>>')
    if arrow.color:
        attributes.append(f'color="{arrow.color}"')
    if arrow.width:
        attributes.append(f"penwidth={arrow.width:.2f}")
    if arrow.dashed:
        attributes.append("style=dashed")
    return ", ".join(attributes)


def _legend(scale):
    cells = "".join(f'<TD BGCOLOR="{scale.color(t)}"><FONT POINT-SIZE="8">{t:.0e}</FONT></TD>'
                    for t in scale.ticks())
    return ['  gradient_legend [shape=plain, style="", label=<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" '
            f'CELLPADDING="3"><TR><TD COLSPAN="{len(scale.ticks())}"><FONT POINT-SIZE="9">gradient norm '
            f'(log scale)</FONT></TD></TR><TR>{cells}</TR></TABLE>>];']
