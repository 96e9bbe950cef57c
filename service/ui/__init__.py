"""Pages for observers: ``/ui`` (latest classified objects), ``/ui/objects/{id}``, ``/ui/model``.

Modules: ``index`` (the listing's Redis index, written after the commit), ``queries`` (what the pages
read), ``svg`` and ``charts`` (server-side plots), ``pages`` (HTML), ``routes`` (the FastAPI router),
``reindex`` (rebuild the index from the stored states). Nothing is imported here: the classifier
imports ``service.ui.index`` on its commit path, and the router imports the API's dependencies.
"""
