"""The porter's own functions, imported by the names given on the command line (``package.module:function``): the
one place portcheck imports a module whose name it does not know, from the current folder or the installed
packages."""

import importlib
import os
import sys

from core.errors import UserError


def resolve(spec, what):
    """``package.module:function`` -> the function; a UserError naming ``what`` (LEGACY, MODERN, --arg-scope)
    when it is not one."""
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise UserError(f"{what} {spec}: give package.module:function")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UserError(f"{what} {spec}: cannot import {module_name} ({err})") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise UserError(f"{what} {spec}: {module_name} has no function {name}")
    return fn
