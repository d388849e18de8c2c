"""The layout of docs/DESIGN.md: who imports whom, one model table for both halves, twin files that line up.

The arrows are read from the source (every ``import`` of every module), the table and the registries from the
packages themselves, the section headers (``# --- name ---``) from the twin files' text.
"""

import ast
import re
import subprocess
import sys

import pytest

from helpers import REPO

PACKAGES = ("core", "flowio", "legacy", "modern", "scripts")
# docs/DESIGN.md §1: what each package may import of the project (besides itself); arrows only point down
ALLOWED = {"scripts": {"core", "flowio", "legacy", "modern"}, "legacy": {"core", "flowio"},
           "modern": {"core", "flowio"}, "flowio": {"core"}, "core": set()}


def imports(package):
    """Every module name imported by the ``.py`` files of ``package`` (and ``tf.compat.v1`` attribute uses)."""
    found = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module or "")
            elif isinstance(node, ast.Attribute) and ast.unparse(node).endswith("compat.v1"):
                found.add("tensorflow.compat.v1")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_packages_below_it(package):
    project = {m.split(".")[0] for m in imports(package)} & set(PACKAGES) - {package}
    assert project <= ALLOWED[package], project - ALLOWED[package]


def test_the_halves_are_independent_and_each_in_its_own_idiom():
    modern_imports, legacy_imports = imports("modern"), imports("legacy")
    for banned in ("tf_slim", "legacy", "tensorflow.compat.v1", "keras"):
        assert not any(m == banned or m.startswith(banned + ".") for m in modern_imports), banned
    assert "tf_keras" in modern_imports
    assert not any(m == "modern" or m.startswith("modern.") for m in legacy_imports)
    assert "tf_slim" in legacy_imports


def test_importing_core_imports_no_tensorflow_and_nothing_else_of_the_project():
    modules = sorted(p.stem for p in (REPO / "core").glob("*.py") if p.stem != "__init__")
    code = ("import sys; import core; " + "; ".join(f"import core.{m}" for m in modules)
            + "; print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'tf_keras', 'tf_slim', 'flowio',"
            " 'legacy', 'modern'}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert len(modules) >= 6


# --- one model table ------------------------------------------------------------------------------------

def test_both_halves_build_exactly_the_models_of_the_table_each_in_its_familys_module():
    import legacy
    import modern
    from core import models
    for half in (legacy, modern):
        assert half.list_models() == models.list_models()
        registry = half.registry._REGISTRY
        for name in models.list_models():
            builder, spec = registry.lookup(name)
            assert builder.__module__ == f"{half.__name__}.{spec.family}", (name, builder.__module__)
            assert 1 <= spec.min_size <= spec.input_size


def test_an_unknown_name_raises_naming_the_known_ones():
    from core import models
    with pytest.raises(ValueError, match="unknown model 'resnet_49'.*jianshu_resnet_50"):
        models.spec("resnet_49")


# --- twins --------------------------------------------------------------------------------------------

SECTION = re.compile(r"^# --- (.+?) -+$", re.M)


def twins():
    return sorted(p.name for p in (REPO / "legacy").glob("*.py") if (REPO / "modern" / p.name).exists())


def test_the_twin_files_are_the_expected_pairs():
    assert twins() == ["__init__.py", "cnn.py", "densenet.py", "freeze.py", "harness.py", "inception.py",
                       "optimizers.py", "registry.py", "resnet.py", "resnets_keras.py", "slim_convnets.py", "train.py"]


@pytest.mark.parametrize("name", twins())
def test_twin_files_have_the_same_sections_in_the_same_order(name):
    legacy_text, modern_text = ((REPO / half / name).read_text() for half in ("legacy", "modern"))
    sections = SECTION.findall(legacy_text)
    assert sections == SECTION.findall(modern_text)
    assert name == "__init__.py" or len(sections) >= 2
    titles = [re.sub(r" \(.*\)$", "", s) for s in sections]  # "prediction (evaluate.py, ...)" -> "prediction"
    for text, twin in ((legacy_text, "modern"), (modern_text, "legacy")):
        docstring = " ".join(text.split('"""')[1].split())
        assert f"twin: {twin}/" in docstring or name == "__init__.py"
        if sections:  # and the docstring lists them, in that order
            assert f"Sections, in the same order as the twin: {', '.join(titles)}." in docstring, name
