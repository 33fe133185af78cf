"""Where configuration values come from, and the one place their precedence is decided.

Each source is a :class:`Layer`: a nested mapping of values plus, for every leaf, where
it came from ("config file x.yaml", "environment variable AFTERSHOCK_...", "--set ...").
:func:`layers` orders them, lowest precedence first::

    YAML file  <  AFTERSHOCK_* environment  <  CLI shortcut options  <  --set PATH=VALUE

and pydantic-settings merges them (each layer is a settings source of a ``BaseSettings``
model, :mod:`aftershock.config.settings`), so the validated :class:`Config`, the SLO-only
view of ``aftershock verdict`` and the unvalidated merge that ``job run`` ships to its pod
are built the same way. A problem
becomes a :class:`ConfigError` naming the field, the source of its value and the fix.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from aftershock.checks.slo import SLO
from aftershock.config.explain import ENV_PREFIX, clip, config_error
from aftershock.config.model import Config
from aftershock.errors import ConfigError

#: Names the config file; never read as a field.
ENV_CONFIG_FILE = "AFTERSHOCK_CONFIG"
#: Set by the load driver for its locust processes; never read as fields.
ENV_RESERVED_PREFIX = "AFTERSHOCK_LOCUST_"
#: Looked for in the working directory when no config file is named.
DEFAULT_CONFIG_FILE = "aftershock.yaml"
#: Where the CLI's shortcut options (--namespace, ...) say their values came from.
OPTION_ORIGIN = "a command-line option"


@dataclass(frozen=True)
class Layer:
    """One source's values as a nested mapping, and where each leaf's value came from."""

    values: Mapping[str, Any] = field(default_factory=dict)
    #: dotted field path -> source, e.g. "slo.during.max_outage_ms" -> "--set slo...=250"
    origins: Mapping[str, str] = field(default_factory=dict)

    def only(self, key: str) -> Layer:
        """The part of this layer under the top-level ``key``."""
        return Layer({key: self.values[key]} if key in self.values else {},
                     {p: o for p, o in self.origins.items()
                      if p == key or p.startswith(key + ".")})


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            nxt = node[key] = {}
        node = nxt
    node[path[-1]] = value


def _scalar(text: str) -> Any:
    """An env or --set value read as YAML: ``0``, ``null``, ``true``, ``[/, /api]``."""
    try:
        return _parse_yaml(text) if text.strip() else text
    except (yaml.YAMLError, _TooBig, RecursionError, ValueError):
        return text  # ValueError: an integer of more digits than Python converts


def _leaves(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[str]:
    out: list[str] = []
    for k, v in tree.items():
        if isinstance(v, Mapping) and v:
            out += _leaves(v, (*prefix, str(k)))
        else:
            out.append(".".join((*prefix, str(k))))
    return out


def tree_layer(values: Mapping[str, Any], origin: str) -> Layer:
    """A layer whose every value came from one place."""
    return Layer(values, {p: origin for p in _leaves(values)})


def find_file(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    """The config file: ``path``, else ``$AFTERSHOCK_CONFIG``, else ./aftershock.yaml if any."""
    if path is not None:
        return Path(path)
    if environ.get(ENV_CONFIG_FILE):
        return Path(environ[ENV_CONFIG_FILE])
    return Path(DEFAULT_CONFIG_FILE) if Path(DEFAULT_CONFIG_FILE).is_file() else None


#: A config file is a few KB; anything near this is a mistake, refused before parsing.
MAX_CONFIG_BYTES = 1 << 20
#: Deepest nesting of a config document (the real schema is 4 deep).
MAX_CONFIG_DEPTH = 32
#: Most nodes a config document may expand to once its aliases are followed: a "billion
#: laughs" file is refused on its graph, before anything is expanded.
MAX_CONFIG_NODES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (YAML says a key is unique; PyYAML keeps the
    last silently).

    The pure-Python parser on purpose: libyaml's (CSafeLoader) composes recursively in C
    and crashes the process on a 100k-deep document, where this one raises RecursionError.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:
                continue  # an unhashable key: construct_mapping itself reports it
            if dup:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"duplicate key {clip(key)}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: yaml.Node) -> int:
    """Nodes in the document once every alias is followed (shared nodes counted each time
    they are used), computed on the graph without expanding it; raises on depth."""
    sizes: dict[int, int] = {}
    # Iterative post-order, so a 100k-deep document cannot overflow the stack.
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if id(node) in sizes:
            continue
        if depth > MAX_CONFIG_DEPTH:
            raise _TooBig(f"it is nested more than {MAX_CONFIG_DEPTH} levels deep")
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            total = 1 + sum(sizes[id(c)] for c in children)
            sizes[id(node)] = min(total, MAX_CONFIG_NODES + 1)
            continue
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


class _TooBig(Exception):
    pass


def _parse_yaml(text: str) -> Any:
    """One YAML document, strictly: no duplicate keys, bounded depth and expansion."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node)
        if size > MAX_CONFIG_NODES:
            raise _TooBig(f"it expands to more than {MAX_CONFIG_NODES:,} values (aliases "
                          f"included)")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def file_layer(path: Path) -> Layer:
    """A YAML config file's values (at most MAX_CONFIG_BYTES of UTF-8)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist",
                          "pass an existing file with --config, or unset AFTERSHOCK_CONFIG"
                          ) from None
    except OSError as e:
        raise ConfigError(f"config file {path} cannot be read: {e.strerror}",
                          "check the path and its permissions") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES >> 20} MiB",
                          "pass an aftershock YAML config file (a few KB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {e.start + 1}, line "
                          f"{line}: {raw[e.start:e.start + 1]!r})",
                          "save the file as UTF-8 (a YAML config is text)") from None
    try:
        data = _parse_yaml(text)
    except _TooBig as e:
        raise ConfigError(f"config file {path} is refused: {e}",
                          "write the configuration out plainly (aftershock's has a few "
                          "dozen fields)") from None
    except RecursionError:
        raise ConfigError(f"config file {path} is refused: it is nested too deeply",
                          "write the configuration out plainly") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise ConfigError(f"config file {path} holds a value that cannot be read: "
                          f"{str(e)[:200]}", "write numbers of sane size") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: "
                          f"{getattr(e, 'problem', e)}",
                          "fix the YAML syntax (indentation, a missing ':', a key given "
                          "twice)") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level, "
                          f"not a {type(data).__name__}",
                          "start the file with keys like 'target:' and 'slo:'")
    odd = [k for k in data if not isinstance(k, str)]
    if odd:  # pydantic-settings takes the top level as keyword arguments: names only
        raise ConfigError(f"config file {path}: top-level key {clip(odd[0])} is not a name",
                          "start the file with keys like 'target:' and 'slo:'")
    return tree_layer(data, f"config file {path}")


def env_layer(environ: Mapping[str, str], *, prefix: str = ENV_PREFIX) -> Layer:
    """``AFTERSHOCK_<PATH>`` variables, ``__`` between levels; only those under ``prefix``.

    Every such variable is read, so a misspelt one is an unknown key, not ignored.
    """
    tree: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name in sorted(environ):
        if not name.startswith(prefix) or name == ENV_CONFIG_FILE \
                or name.startswith(ENV_RESERVED_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if not all(path):
            raise ConfigError(f"environment variable {name}: empty path segment",
                              "separate levels with exactly two underscores, e.g. "
                              "AFTERSHOCK_SLO__DURING__MAX_OUTAGE_MS")
        _set_path(tree, path, _scalar(environ[name]))
        origins[".".join(path)] = f"environment variable {name}"
    return Layer(tree, origins)


def set_layer(items: Sequence[str]) -> Layer:
    """``--set PATH=VALUE`` options."""
    tree: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for item in items:
        path, sep, value = item.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"--set {item!r}: expected PATH=VALUE",
                              "e.g. --set slo.during.max_outage_ms=250")
        keys = [k.strip() for k in path.strip().split(".")]
        _set_path(tree, keys, _scalar(value))
        origins[".".join(keys)] = f"--set {item}"
    return Layer(tree, origins)


def shortcuts(*, namespace: str | None = None, deployment: str | None = None,
              service: str | None = None, url: str | None = None,
              results: str | None = None) -> dict[str, Any]:
    """The shortcut options of the CLI (``--namespace``, ...) and of the pytest plugin
    (``--aftershock-namespace``, ...) as the nested ``options`` of :func:`layers`; an
    option not given (None) is left out."""
    target = {k: v for k, v in (("namespace", namespace), ("deployment", deployment),
                                ("service", service), ("url", url)) if v is not None}
    out: dict[str, Any] = {"target": target} if target else {}
    if results:
        out["results_dir"] = results
    return out


def layers(file: Layer | None, environ: Mapping[str, str], *,
           options: Mapping[str, Any] | None = None,
           set_options: Sequence[str] = (), env_prefix: str = ENV_PREFIX) -> list[Layer]:
    """Every source, lowest precedence first: file < env < shortcut options < --set.

    ``options`` is a nested mapping from the CLI's shortcut options
    (``{"target": {"namespace": "shop"}}``). This is the only place the order is decided.
    """
    return [file or Layer(), env_layer(environ, prefix=env_prefix),
            tree_layer(options or {}, OPTION_ORIGIN), set_layer(set_options)]


S = TypeVar("S", bound=BaseModel)


def _winning_origins(sources: Sequence[Layer]) -> dict[str, str]:
    """Each leaf's origin in the merged values: a higher layer's leaf hides a lower layer's
    value at the same path, below it (a mapping it replaced) and above it (a scalar it
    turned into a mapping), so a bad value is blamed on the source that gave it."""
    out: dict[str, str] = {}
    leaves: set[str] = set()  # paths a higher layer set
    inner: set[str] = set()  # their ancestors
    for layer in reversed(sources):  # highest precedence first
        mine: list[str] = []
        for path, origin in layer.origins.items():
            parts = path.split(".")
            prefixes = {".".join(parts[:i]) for i in range(1, len(parts))}
            if path in leaves or path in inner or prefixes & leaves:
                continue
            out[path] = origin
            mine.append(path)
        for path in mine:
            leaves.add(path)
            parts = path.split(".")
            inner.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return out


def _build(cls: type[S], sources: Sequence[Layer], what: str) -> S:
    """``cls`` (a settings model of :mod:`aftershock.config.settings`) from the layers."""
    origins = _winning_origins(sources)
    from aftershock.config.settings import given
    with given(sources):
        try:
            return cls()
        except ValidationError as e:
            raise config_error(e, origins, cls, what) from None


# ---------------------------------------------------------------- the API


def settle(sources: Sequence[Layer]) -> Config:
    """The validated Config from layers (lowest precedence first), or a ConfigError."""
    # pydantic-settings is imported only here, when a configuration is loaded: the load
    # subprocess imports the config models (through aftershock.load) and must start fast.
    from aftershock.config.settings import ConfigSettings
    built = _build(ConfigSettings, sources, "configuration")
    return Config.model_construct(built.model_fields_set,
                                  **{k: getattr(built, k) for k in Config.model_fields})


def merged(sources: Sequence[Layer]) -> dict[str, Any]:
    """The layers merged by the same precedence, unvalidated."""
    from aftershock.config.settings import AnySettings
    return dict(_build(AnySettings, sources, "configuration").model_extra or {})


def validate(data: Mapping[str, Any], origins: Mapping[str, str] | None = None) -> Config:
    """A Config from a plain mapping, or a ConfigError listing every problem."""
    return settle([Layer(data, origins or {})])


def load_config(path: str | os.PathLike[str] | None = None, *,
                environ: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None,
                set_options: Sequence[str] | None = None) -> Config:
    """Load the configuration: defaults < YAML file < AFTERSHOCK_* env < CLI.

    ``path``: the YAML file; None means ``$AFTERSHOCK_CONFIG``, else ./aftershock.yaml
    when it exists, else no file. ``environ``: defaults to ``os.environ``. ``overrides``:
    a nested mapping from CLI shortcut options (``{"target": {"namespace": "shop"}}``);
    ``set_options``: ``["slo.during.max_outage_ms=250", ...]`` from ``--set``.
    Raises :class:`ConfigError` (exit code 2).
    """
    env = os.environ if environ is None else environ
    file = find_file(path, env)
    config = settle(layers(file_layer(file) if file else None, env, options=overrides,
                           set_options=set_options or ()))
    if file is not None and config.load.locustfile is not None \
            and not config.load.locustfile.is_absolute():
        # A locustfile named in the config file is relative to that file.
        candidate = file.parent / config.load.locustfile
        if candidate.exists():
            config = config.model_copy(
                update={"load": config.load.model_copy(update={"locustfile": candidate})})
    return config


def raw_config(path: str | os.PathLike[str] | None = None, *,
               environ: Mapping[str, str] | None = None,
               overrides: Mapping[str, Any] | None = None,
               set_options: Sequence[str] = ()) -> dict[str, Any]:
    """The user's configuration as given (the same sources as :func:`load_config`),
    unvalidated and without defaults: what ``job run`` ships to its pod."""
    env = os.environ if environ is None else environ
    file = find_file(path, env)
    return merged(layers(file_layer(file) if file else None, env, options=overrides,
                         set_options=set_options))


def _no_unknown_variables(environ: Mapping[str, str]) -> None:
    """Every ``AFTERSHOCK_*`` variable names a configuration field: a misspelt one is an
    error even where only the ``slo`` section is read, as in ``config show``."""
    problems: list[str] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_FILE \
                or name.startswith(ENV_RESERVED_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        model: type[BaseModel] = Config
        for i, key in enumerate(path):
            field = model.model_fields.get(key) if key else None
            if field is None:
                where = ".".join(path[:i]) or "the top level"
                guess = [[g, *path[i + 1:]] for g in difflib.get_close_matches(
                    key, list(model.model_fields), n=1)]
                # One underscore where two were meant: SLO_DURING for SLO__DURING.
                guess += [[k, key[len(k) + 1:], *path[i + 1:]] for k in model.model_fields
                          if key.startswith(k + "_")]
                hint = (f"did you mean {ENV_PREFIX}"
                        f"{'__'.join([*path[:i], *guess[-1]]).upper()}?" if guess
                        else f"known keys at {where}: {', '.join(sorted(model.model_fields))}")
                problems.append(f"environment variable {name}: unknown key "
                                f"{'.'.join(path)!r}\n    fix: {hint}")
                break
            ann = field.annotation
            if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
                break
            model = ann
    if problems:
        n = len(problems)
        raise ConfigError(f"invalid environment ({n} problem{'s' if n != 1 else ''}):\n  "
                          + "\n  ".join(problems), problems=tuple(problems))


def load_slo(base: Layer, *, environ: Mapping[str, str] | None = None,
             set_options: Sequence[str] = ()) -> SLO:
    """The ``slo`` section alone (``aftershock verdict``): ``base`` (a file's or a
    timeline's SLO) < ``AFTERSHOCK_SLO__*`` < ``--set slo.*``; any other key is an error."""
    env = os.environ if environ is None else environ
    _no_unknown_variables(env)
    sources = layers(base.only("slo"), env, set_options=set_options,
                     env_prefix=ENV_PREFIX + "SLO__")
    from aftershock.config.settings import SloSettings
    return _build(SloSettings, sources, "SLO").slo

