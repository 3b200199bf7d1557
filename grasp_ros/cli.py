"""The one pattern of grasp_ros's command lines: a tool's options are a dataclass.

Each field declared with :func:`option` is one command-line argument (its help text, flags and
argparse settings sit beside its default); :func:`parse` builds the parser from the fields,
parses, and returns the dataclass. Checks that involve several options go in the dataclass's
``problems()`` (the first one found is reported as a usage error). A tool's configuration is
then ``dataclasses.asdict(options)``, never rebuilt by hand. Arguments argparse must group
(mutually exclusive flags) are added to the parser by hand and land in a plain field of the
same name.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def option(default: Any = None, help: str = "", *flags: str, **argparse_kw: Any) -> Any:
    """A dataclass field that is a command-line argument (``--name`` unless ``flags`` say)."""
    meta = {"help": help, "flags": flags, "argparse": argparse_kw}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """One argument per :func:`option` field of ``cls``, in field order."""
    for f in dataclasses.fields(cls):
        if "flags" not in f.metadata:
            continue
        flags = f.metadata["flags"] or (f"--{f.name.replace('_', '-')}",)
        kw = {"help": f.metadata["help"], **f.metadata["argparse"]}
        if flags[0].startswith("-"):
            default = f.default_factory() if callable(f.default_factory) else f.default
            kw.setdefault("default", default)
            parser.add_argument(*flags, dest=f.name, **kw)
        else:
            parser.add_argument(f.name, **kw)


def parse(cls: type[T], parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> T:
    """Parse ``argv`` into ``cls`` (``parser`` has its options, see :func:`add_options`); a
    usage error (exit status 2) for the options' first problem."""
    args = parser.parse_args(argv)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    options = cls(**{k: v for k, v in vars(args).items() if k in names})
    for problem in getattr(options, "problems", list)():
        parser.error(problem)
    return options
