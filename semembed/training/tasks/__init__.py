"""Training methods, one module each, registered by name (``--task NAME``).

>>> from semembed.training.tasks import get_task, list_tasks
>>> sorted(list_tasks())[:2]
['classifier', 'embedding']

A new method: a module here with a :class:`~semembed.training.task.Task`
subclass decorated with ``@register_task("name")``, imported below.
"""

from __future__ import annotations

from semembed.errors import SemembedError

_TASKS: dict[str, type] = {}


def register_task(name: str):
    """Class decorator: make a Task available as ``--task name``."""

    def wrap(cls):
        if name in _TASKS and _TASKS[name] is not cls:
            raise ValueError(f"task {name!r} is registered twice ({_TASKS[name].__name__}, {cls.__name__})")
        cls.name = name
        _TASKS[name] = cls
        return cls

    return wrap


def get_task(name: str) -> type:
    """The Task class registered as ``name``."""
    try:
        return _TASKS[name]
    except KeyError:
        raise SemembedError(f"unknown task {name!r}; known: {', '.join(sorted(_TASKS))}") from None


def list_tasks() -> list[str]:
    return sorted(_TASKS)


# the built-in methods register themselves on import
from semembed.training.tasks import (  # noqa: E402,F401
    center_loss, classifier, devise, embedding, label_embedding, metric, simnet,
)

__all__ = ["get_task", "list_tasks", "register_task"]
