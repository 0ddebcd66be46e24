"""AST of a DicomEdit script. Every node keeps the 1-based line and column where it starts."""
from __future__ import annotations

from dataclasses import dataclass, field

from .tagpath import TagPath


@dataclass(slots=True)
class Node:
    line: int
    column: int


# -- values ------------------------------------------------------------------------------------
@dataclass(slots=True)
class Str(Node):
    value: str


@dataclass(slots=True)
class Num(Node):
    text: str


@dataclass(slots=True)
class Var(Node):
    name: str


@dataclass(slots=True)
class TagValue(Node):
    path: TagPath


@dataclass(slots=True)
class Call(Node):
    name: str
    args: list[Node]


@dataclass(slots=True)
class ListLit(Node):
    items: list[Node]


@dataclass(slots=True)
class NewUID(Node):
    """DE 4.2 ``new UID``."""


# -- conditions --------------------------------------------------------------------------------
@dataclass(slots=True)
class Condition(Node):
    left: Node
    op: str | None  # '=', '!=', '~', '!~', or None for a bare boolean value
    right: Node | None


# -- statements --------------------------------------------------------------------------------
@dataclass(slots=True)
class Version(Node):
    version: str


@dataclass(slots=True)
class Describe(Node):
    name: str
    label: str | None
    hidden: bool


@dataclass(slots=True)
class Export(Node):
    name: str
    field: str


@dataclass(slots=True)
class Echo(Node):
    value: Node | None


@dataclass(slots=True)
class RemoveAllPrivateTags(Node):
    pass


@dataclass(slots=True)
class Assign(Node):
    path: TagPath
    value: Node
    if_exists: bool


@dataclass(slots=True)
class Initialize(Node):
    name: str
    value: Node


@dataclass(slots=True)
class Delete(Node):
    path: TagPath


@dataclass(slots=True)
class CallStatement(Node):
    call: Call


@dataclass(slots=True)
class Conditional(Node):
    condition: Condition
    then: Node
    otherwise: Node | None


@dataclass(slots=True)
class IfBlock(Node):
    branches: list[tuple[Condition, list[Node]]]
    otherwise: list[Node] | None


@dataclass(slots=True)
class Program:
    dialect: str  # "6" or "4"
    version: str | None
    statements: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  # variables read before the script sets them


@dataclass(slots=True)
class PathArg(Node):
    """A tag path passed to a function or put in a list: the path itself, not the element's value."""

    path: TagPath
