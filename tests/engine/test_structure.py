"""Structure of the engine: the source registry covers every map keyed by it; no import cycles."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

from app.ml import strategies
from app.ml.serving import STRATEGIES, default_config
from app.ml.sources import SPECS, ReasonKind, Source
from app.schema.recommendations import ReasonKind as ReasonKindType
from app.services import candidates, explain

APP = Path(__file__).resolve().parents[2] / "app"
# the CLI modules' cycle is issue 13's; every other module must be free of cycles
OTHERS = {"app.cli", "app.cli_data", "app.demo"}


def test_every_map_keyed_by_source_covers_the_registry() -> None:
    assert set(SPECS) == set(Source)
    assert set(candidates.SERVING) == set(Source)
    assert set(strategies.BATCH) == set(Source)
    assert {explain.kind_of(s.value) for s in Source} <= set(ReasonKind)


def test_anchored_sources_never_explain_as_popularity() -> None:
    for source, spec in SPECS.items():
        if spec.anchored:
            assert spec.kind not in (ReasonKind.POPULARITY, ReasonKind.TRENDING, ReasonKind.COLD_START), source
    assert SPECS[Source.CO_OCCURRENCE].kind is ReasonKind.CO_ENGAGEMENT


def test_graphql_reason_kinds_match_the_service() -> None:
    assert {k.value for k in ReasonKindType} == {k.value for k in ReasonKind}


def test_default_config_weights_every_strategy_with_known_sources() -> None:
    config = default_config()
    assert set(config.weights) == set(STRATEGIES)
    assert config.used_sources() <= set(Source)


def _runtime_imports(path: Path, module: str) -> set[str]:
    """Modules of `app` imported at run time (anywhere but under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("app")}


def test_no_import_cycles() -> None:
    modules = {}
    for path in APP.rglob("*.py"):
        parts = path.relative_to(APP.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {
        name: {m for m in _runtime_imports(path, name) if m in modules and m != name} - OTHERS
        for name, path in modules.items()
        if name not in OTHERS
    }
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as cycle:
        raise AssertionError(f"import cycle: {cycle.args[1]}") from None
