"""Imports point one way: contracts -> plain clients and pure cores -> Dagster resources ->
assets and sensors -> the top (definitions, CLI, demo). An upward import fails here, naming the
importing module, the line, and the layers of both ends (docs/ARCHITECTURE.md, "Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("schema", "netflix_assets", "resources", "spark_jobs", "streaming", "assets", "sensors")

# (module prefix, layer, component). The longest matching prefix wins. Within one layer, a module
# imports only its own component; a lower layer is always allowed.
LAYERS: list[tuple[str, float, str]] = [
    ("schema", 0, "contracts"),
    ("netflix_assets.settings", 1, "shared"),
    ("netflix_assets.object_keys", 1, "shared"),
    ("netflix_assets.offsets", 1, "shared"),
    ("netflix_assets.run_profiles", 1, "shared"),
    ("netflix_assets.table_output", 1, "shared"),
    ("netflix_assets.clients", 1.5, "clients"),
    ("netflix_assets.video", 2, "video"),
    ("netflix_assets.recs", 2, "recs"),
    ("netflix_assets.product", 2, "product"),
    ("netflix_assets.experiments", 2, "experiments"),
    ("netflix_assets.monitoring", 2, "monitoring"),
    ("spark_jobs", 2.1, "spark_jobs"),
    ("streaming", 2.1, "streaming"),
    ("netflix_assets.serving", 2.1, "serving"),
    ("netflix_assets.lake_query", 2.1, "lake_query"),
    ("netflix_assets.web", 2.2, "web"),
    ("resources", 3, "resources"),
    ("netflix_assets.partitions", 3, "partitions"),
    ("assets", 4, "assets"),
    ("sensors", 4, "sensors"),
    ("netflix_assets", 5, "top"),
    ("netflix_assets.stack", 4.9, "stack"),
]
LAYER_NAMES = {0: "contracts", 1: "shared", 1.5: "clients", 2: "cores", 2.1: "cores",
               2.2: "apps", 3: "resources", 4: "assets and sensors", 4.9: "tooling",
               5: "top"}  # fmt: skip
NO_DAGSTER_BELOW = 3
"""Nothing under the resources layer imports Dagster: contracts, clients and cores run in the
serving process, under spark-submit and in the Flink job without it."""
TOOLING = "netflix_assets.stack"
"""The dev stack is tooling: only the top layer (the CLI, the demo) may use it."""


def layer_of(module: str) -> tuple[float, str]:
    best = max(
        (p for p in LAYERS if module == p[0] or module.startswith(p[0] + ".")),
        key=lambda p: len(p[0]),
    )
    return best[1], best[2]


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, source: str, known: dict[str, Path]) -> list[tuple[int, str]]:
    """Every absolute import in the file, lazy ones inside functions included; `from pkg import
    mod` counts as an import of pkg.mod, not of the package."""
    out = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            submodules = [f"{node.module}.{a.name}" for a in node.names]
            named = [m for m in submodules if m in known]
            out += [(node.lineno, m) for m in named] or [(node.lineno, node.module)]
    return out


def violations(edited: dict[Path, str] | None = None) -> list[str]:
    """Every import against the layering; `edited` replaces files' text (for the self-test)."""
    known, edited = modules(), edited or {}
    found = []
    for name, path in sorted(known.items()):
        src_layer, src_component = layer_of(name)
        for line, target in imports(path, edited.get(path) or path.read_text(), known):
            where = f"{path.relative_to(REPO)}:{line} {name} -> {target}"
            top = target.split(".")[0]
            if top == "dagster" or top.startswith("dagster_"):
                if src_layer < NO_DAGSTER_BELOW:
                    found.append(f"{where}: {LAYER_NAMES[src_layer]} must not import Dagster")
                continue
            if top not in PACKAGES or target not in known:
                continue  # a third-party module, or `from pkg import name` naming no module
            dst_layer, dst_component = layer_of(target)
            if dst_component == "stack" and src_component not in ("top", "stack"):
                found.append(f"{where}: only the top layer may use the dev stack (tooling)")
            elif dst_component == src_component or dst_layer < src_layer:
                continue
            elif dst_layer > src_layer:
                found.append(
                    f"{where}: upward, {LAYER_NAMES[src_layer]} imports {LAYER_NAMES[dst_layer]}"
                )
            else:
                found.append(f"{where}: sideways between {src_component} and {dst_component}")
    return found


def test_imports_point_down_only() -> None:
    found = violations()
    assert not found, "imports against the layering:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("schema.tables", "contracts"),
        ("netflix_assets.clients.object_store", "clients"),
        ("spark_jobs.steps", "cores"),
        ("resources.spark", "resources"),
        ("assets.lake", "assets and sensors"),
        ("netflix_assets.definitions", "top"),
    ],
)
def test_modules_sit_in_their_layer(module: str, layer: str) -> None:
    assert LAYER_NAMES[layer_of(module)[0]] == layer


def test_upward_sideways_and_dagster_imports_are_caught() -> None:
    """The walk itself can fail: each kind of wrong import is reported."""
    core, contract = REPO / "spark_jobs" / "steps.py", REPO / "schema" / "tables.py"
    wrong = {
        core: core.read_text() + "\nfrom resources.spark import SparkResource\n"
        "from streaming import simulator\nfrom netflix_assets.stack import jars\n",
        contract: contract.read_text() + "\nimport dagster\n",
    }
    found = "\n".join(violations(wrong))
    assert "spark_jobs.steps -> resources.spark: upward" in found
    assert "spark_jobs.steps -> streaming.simulator: sideways" in found
    assert "spark_jobs.steps -> netflix_assets.stack.jars: only the top layer" in found
    assert "schema.tables -> dagster: contracts must not import Dagster" in found
