"""The preprocessing recipes, one module each (``default``, ``inception``, ``vgg``; ``base`` says what a recipe
is), found here by name; ``core.models.RECIPES`` names them for the model table without TensorFlow.

``record(recipe, image_size)`` turns what callers pass — a run's ``preprocessing`` record, or a recipe's name
for a new run — into the record every recipe function takes, and ``of(record)`` is the recipe that runs it.
"""

from core.models import RECIPES as NAMES
from flowio.recipes import default, inception, vgg

RECIPES = {r.name: r for r in (default.RECIPE, inception.RECIPE, vgg.RECIPE)}
assert tuple(RECIPES) == NAMES, "core.models.RECIPES names the recipes of this package, in its order"


def spec(image_size, flip=True, recipe="default"):
    """The ``preprocessing`` record a new run at ``image_size`` writes for the recipe named ``recipe``."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, not {recipe!r}")
    return RECIPES[recipe].spec(image_size, flip)


def name_of(preprocessing):
    """The recipe a run's ``preprocessing`` record names (runs written before recipes existed: ``default``)."""
    return (preprocessing or {}).get("recipe", "default")


def record(recipe, image_size):
    """``recipe``, a run's ``preprocessing`` record (None or {}: ``default``'s) or a recipe's name, as a record."""
    return spec(image_size, recipe=recipe) if isinstance(recipe, str) else recipe or spec(image_size)


def of(preprocessing):
    """The ``Recipe`` that runs a ``preprocessing`` record."""
    return RECIPES[name_of(preprocessing)]
