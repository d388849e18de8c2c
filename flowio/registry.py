"""A model registry: name -> builder and default input size. Each half keeps one (legacy/registry.py,
modern/registry.py); this is the bookkeeping they share, the builders' signatures stay theirs."""


class Registry:
    def __init__(self):
        self._models = {}  # name -> (builder, default input size)
        self._articles = {}  # name -> where the model comes from

    def register_model(self, name, input_size, article):
        """Decorator: register a builder under ``name``; a name registered twice is a bug and raises.

        ``article`` says where the model comes from (a seed article, or tf_slim), for the README's table.
        """
        def decorate(fn):
            if name in self._models:
                raise ValueError(f"model {name!r} is registered twice")
            self._models[name] = (fn, input_size)
            self._articles[name] = article
            return fn
        return decorate

    def article(self, name):
        self.lookup(name)
        return self._articles[name]

    def list_models(self):
        return sorted(self._models)

    def lookup(self, name):
        """``(builder, default input size)`` of ``name``; a ValueError naming the known models otherwise."""
        if name not in self._models:
            raise ValueError(f"unknown model {name!r}; known models: {', '.join(self.list_models())}")
        return self._models[name]

    def default_input_size(self, name):
        """The side of the square RGB input the model was designed for (224 for the ResNets)."""
        return self.lookup(name)[1]
