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

PACKAGES = ("core", "flowio", "kerasnets", "legacy", "modern", "keras3", "portcheck", "cli", "scripts", "bench")
# docs/DESIGN.md §1: what each package may import of the project (besides itself); arrows only point down (bench
# measures the packages, and reads tests/' comparisons as modules of their own: no package imports bench)
ALLOWED = {"bench": {"core", "flowio", "legacy", "modern", "keras3"}, "scripts": {"cli"},
           "cli": {"core", "flowio", "legacy", "modern", "portcheck"},
           "portcheck": {"core", "kerasnets", "legacy", "modern", "keras3"},
           "legacy": {"core", "flowio"}, "modern": {"core", "flowio", "kerasnets"},
           "keras3": {"core", "flowio", "kerasnets"}, "kerasnets": {"core"}, "flowio": {"core"}, "core": set()}


LOADER = REPO / "core" / "halves.py"  # the one module that imports a half by name (core.halves.half)
USER_LOADER = REPO / "portcheck" / "user.py"  # imports the porter's own modules, named on check_port's command line


def dynamic_import(path, call):
    """The module an ``importlib.import_module(...)`` call loads: its constant argument, or the constant prefix of
    a constant + name; core.halves's f-string, any of its HALVES (test_the_halves_are_loaded_only_by_core_halves).
    Anything else cannot be followed and fails, naming the place."""
    argument = call.args[0]
    if isinstance(argument, ast.Constant):
        return {argument.value}
    if isinstance(argument, ast.BinOp) and isinstance(argument.left, ast.Constant):
        return {argument.left.value}
    if path == LOADER:
        from core.halves import HALVES
        return set(HALVES)
    if path == USER_LOADER:  # nothing of the project's: a name the user gives
        return set()
    raise AssertionError(f"{path.relative_to(REPO)}:{call.lineno}: a dynamic import the layout cannot follow;"
                         " load a half with core.halves.half")


def imports(package, loader=False):
    """Every module name imported by the ``.py`` files of ``package`` (and ``tf.compat.v1`` attribute uses),
    dynamic imports followed; with ``loader=False`` the halves core.halves loads by name are left out."""
    found = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module or "")
            elif isinstance(node, ast.Attribute) and ast.unparse(node).endswith("compat.v1"):
                found.add("tensorflow.compat.v1")
            elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module"):
                if loader or path != LOADER:
                    found |= dynamic_import(path, node)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_packages_below_it(package):
    project = {m.split(".")[0] for m in imports(package)} & set(PACKAGES) - {package}
    assert project <= ALLOWED[package], project - ALLOWED[package]


def test_the_halves_are_loaded_only_by_core_halves_and_each_provides_the_protocol():
    from core import halves
    assert imports("core", loader=True) - imports("core") == set(halves.HALVES)
    for package in PACKAGES:  # no script, test or bench imports a half's module by a name made at run time
        imports(package)
    imports("tests")
    for name in halves.HALVES:
        half = halves.half(name)
        assert half.name == name and all(callable(getattr(half, n)) for n in halves.PROTOCOL), name


COMMANDS = sorted(p.stem for p in (REPO / "cli").glob("*.py") if p.stem != "__init__")


def test_each_script_runs_its_command_and_each_command_is_a_package_module():
    assert sorted(p.stem for p in (REPO / "scripts").glob("*.py")) == COMMANDS
    for name in COMMANDS:
        assert f"from cli.{name} import command" in (REPO / "scripts" / f"{name}.py").read_text(), name


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_parses_its_arguments_before_anything_imports_tensorflow(name):
    """``main(["--help"])`` answers (argparse exits 0) with TensorFlow not imported: nothing a command imports at
    its top loads it, so a flag can still choose how TensorFlow starts."""
    code = (f"import sys\nfrom cli import {name}\ntry:\n    {name}.main(['--help'])\nexcept SystemExit as e:\n"
            "    assert e.code in (0, None), e.code\nprint(sorted(m for m in ('tensorflow', 'tf_keras', 'keras')"
            " if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_the_halves_are_independent_and_each_in_its_own_idiom():
    modern_imports, legacy_imports = imports("modern"), imports("legacy")
    for banned in ("tf_slim", "legacy", "tensorflow.compat.v1", "keras"):
        assert not any(m == banned or m.startswith(banned + ".") for m in modern_imports), banned
    assert "tf_keras" in modern_imports
    assert not any(m == "modern" or m.startswith("modern.") for m in legacy_imports)
    assert "tf_slim" in legacy_imports
    keras3_imports = imports("keras3")
    for banned in ("tf_slim", "tf_keras", "legacy", "modern", "tensorflow.compat.v1"):
        assert not any(m == banned or m.startswith(banned + ".") for m in keras3_imports), banned
    assert "keras" in keras3_imports
    kerasnets_imports = imports("kerasnets")  # the nets take every layer from the kit a half passes in
    for banned in ("tensorflow", "tf_keras", "keras", "tf_slim", "jax", "legacy", "modern", "keras3"):
        assert not any(m == banned or m.startswith(banned + ".") for m in kerasnets_imports), banned


def test_importing_core_imports_no_tensorflow_and_nothing_else_of_the_project():
    modules = sorted(p.stem for p in (REPO / "core").glob("*.py") if p.stem != "__init__")
    code = ("import sys; import core; " + "; ".join(f"import core.{m}" for m in modules)
            + "; print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'tf_keras', 'tf_slim', 'keras',"
            " 'jax', 'flowio', 'legacy', 'modern', 'keras3'}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert len(modules) >= 6


# --- one model table ------------------------------------------------------------------------------------

def test_both_halves_build_exactly_the_models_of_the_table_each_in_its_familys_module():
    """legacy's nets in legacy/, the Keras halves' written once in kerasnets/."""
    import kerasnets
    import legacy
    import modern
    from core import models
    for half, lookup in ((legacy, legacy.registry._REGISTRY.lookup), (modern, kerasnets.lookup)):
        assert half.list_models() == models.list_models()
        package = "legacy" if half is legacy else "kerasnets"
        for name in models.list_models():
            builder, spec = lookup(name)
            assert builder.__module__ == f"{package}.{spec.family}", (name, builder.__module__)
            assert 1 <= spec.min_size <= spec.input_size


def test_an_unknown_name_raises_naming_the_known_ones():
    from core import models
    with pytest.raises(ValueError, match="unknown model 'resnet_49'.*jianshu_resnet_50"):
        models.spec("resnet_49")


# --- twins --------------------------------------------------------------------------------------------

SECTION = re.compile(r"^# --- (.+?) -+$", re.M)


def twins():
    """legacy's files with a twin: in modern/, else (the nets, written once for both Keras halves) in kerasnets/."""
    return sorted(p.name for p in (REPO / "legacy").glob("*.py") if twin_home(p.name))


def twin_home(name):
    return next((home for home in ("modern", "kerasnets") if (REPO / home / name).exists()), None)


def test_the_twin_files_are_the_expected_pairs():
    assert {name: twin_home(name) for name in twins()} == {
        **dict.fromkeys(["__init__.py", "freeze.py", "harness.py", "optimizers.py", "registry.py", "train.py",
                         "weights.py"], "modern"),
        **dict.fromkeys(["cnn.py", "densenet.py", "inception.py", "resnet.py", "resnets_keras.py", "slim_convnets.py"],
                        "kerasnets")}


def top_level_sections(text):
    """``{name: the section header above it}`` for the functions, classes and constants a module defines."""
    headers = [(text[:m.start()].count("\n") + 1, re.sub(r" \(.*\)$", "", m.group(1))) for m in SECTION.finditer(text)]
    found = {}
    for node in ast.parse(text).body:
        names = ([node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else
                 [t.id for t in node.targets if isinstance(t, ast.Name)] if isinstance(node, ast.Assign) else [])
        section = next((title for line, title in reversed(headers) if line < node.lineno), None)
        found.update(dict.fromkeys(names, section))
    return found


@pytest.mark.parametrize("name", twins())
def test_a_name_defined_in_both_twins_sits_under_the_same_section(name):
    legacy_names, modern_names = (top_level_sections((REPO / half / name).read_text())
                                  for half in ("legacy", twin_home(name)))
    differ = {n: (legacy_names[n], modern_names[n]) for n in legacy_names.keys() & modern_names.keys()
              if legacy_names[n] != modern_names[n]}
    assert not differ, differ


@pytest.mark.parametrize("name", twins())
def test_twin_files_have_the_same_sections_in_the_same_order(name):
    legacy_text, modern_text = ((REPO / half / name).read_text() for half in ("legacy", twin_home(name)))
    sections = SECTION.findall(legacy_text)
    assert sections == SECTION.findall(modern_text)
    assert name == "__init__.py" or len(sections) >= 2
    titles = [re.sub(r" \(.*\)$", "", s) for s in sections]  # "prediction (evaluate.py, ...)" -> "prediction"
    for text, twin in ((legacy_text, twin_home(name)), (modern_text, "legacy")):
        docstring = " ".join(text.split('"""')[1].split())
        assert f"twin: {twin}/" in docstring or name == "__init__.py"
        if sections:  # and the docstring lists them, in that order
            assert f"Sections, in the same order as the twin: {', '.join(titles)}." in docstring, name
