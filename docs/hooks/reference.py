"""MkDocs hook: the generated reference pages, rebuilt from the code at every docs build.

    Settings model ──▶ reference/settings.md   (env var, type, default, description)
    typer app      ──▶ reference/cli.md        (every command, argument, option, help)
    api.main app   ──▶ reference/api.md        (every path and method of the OpenAPI schema)

The pages exist only in the build (``File.generated``), so they never go stale; ``mkdocs.yml`` lists them
under ``hooks:``. The ``*_markdown`` functions are plain and importable (``tests/unit/test_docs.py``).
"""

from __future__ import annotations

import html
import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

_GENERATED = "<!-- generated at build time by docs/hooks/reference.py from the code: do not edit -->\n"


def on_files(files: Any, config: Any) -> Any:
    """MkDocs event: add the generated pages to the site's files."""
    from mkdocs.structure.files import File

    for uri, write in PAGES.items():
        files.append(File.generated(config, uri, content=write()))
    return files


def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell (no HTML, no cell breaks, no emphasis)."""
    flat = " ".join(str(text).split())
    return html.escape(flat, quote=False).replace("|", "&#124;").replace("*", "\\*")


def _code(text: object) -> str:
    """An inline code cell: ``text`` in a ``<code>`` element, safe inside a table."""
    return f"<code>{_cell(text).replace(chr(92) + '*', '*')}</code>"


def _prose(text: str | None) -> str:
    """Help or description text as a Markdown paragraph (click's ``\\b`` markers dropped, HTML escaped)."""
    lines = [line for line in (text or "").splitlines() if line.strip() != "\b"]
    return html.escape("\n".join(lines).strip(), quote=False)


# --- settings -----------------------------------------------------------------------------------------


def _type_name(annotation: Any) -> str:
    """A readable type: ``float``, ``str | None``, ``list[str]``, ``Literal['classic', 'quorum']``."""
    if isinstance(annotation, type) and get_origin(annotation) is None:
        return annotation.__name__
    if get_origin(annotation) is not None and not get_args(annotation):
        return str(annotation)
    text = str(annotation).replace("typing.", "")
    return re.sub(r"\b(?:[a-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", text)


def _bounds(field: Any) -> str:
    """The field's numeric and length constraints (``> 0``, ``≤ 10000``), from its metadata."""
    symbols = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "min_length": "length ≥", "max_length": "length ≤"}
    found = []
    for item in getattr(field, "metadata", []):
        for attribute, symbol in symbols.items():
            value = getattr(item, attribute, None)
            if value is not None:
                found.append(f"{symbol} {value}")
    return ", ".join(found)


def _default(field: Any) -> str:
    """The default as it would be written in the environment; ``required`` when there is none."""
    if field.is_required():
        return "required"
    try:
        value = field.get_default(call_default_factory=True, validated_data={})
    except TypeError:  # a factory that needs other fields
        return "computed"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | dict):
        return json.dumps(value)
    if type(value).__name__ in {"SecretStr", "SecretBytes"}:
        return "(secret)"
    return str(value)


def _env_names(name: str, field: Any, config: Any) -> list[str]:
    """The environment variable(s) a field is read from, as pydantic-settings derives them: its alias
    (or alias choices) as they are, else ``env_prefix`` + the field name; upper case unless case-sensitive."""
    alias = field.validation_alias or field.alias
    if alias is None:
        names = [f"{config.get('env_prefix', '')}{name}"]
    elif isinstance(alias, str):
        names = [alias]
    else:  # AliasChoices / AliasPath
        choices = getattr(alias, "choices", None) or [alias]
        names = []
        for choice in choices:
            path = choice if isinstance(choice, str) else choice.path[0]
            names.append(str(path))
    return names if config.get("case_sensitive") else [item.upper() for item in names]


def settings_markdown() -> str:
    """The settings reference: one row per field of ``function_runner.settings.Settings``."""
    from function_runner.settings import Settings

    config = Settings.model_config
    lines = [
        "# Settings reference",
        "",
        _GENERATED,
        "One settings object (`function_runner.settings.Settings`, pydantic-settings) read from the environment "
        f"(`{config.get('env_prefix', '')}*`). Lists and objects are JSON. Every default works with no server "
        "at all (the embedded default: SQLite and kombu's filesystem transport under the data dir); production "
        "sets at least the database URL, the broker URL and the encryption key.",
        "",
        "| variable | type | default | description |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        names = "<br>".join(_code(env) for env in _env_names(name, field, config))
        kind = _type_name(field.annotation)
        bounds = _bounds(field)
        kind_cell = _code(kind) + (f" ({_cell(bounds)})" if bounds else "")
        lines.append(f"| {names} | {kind_cell} | {_code(_default(field))} | {_cell(field.description or '')} |")
    lines += [
        "",
        "Per task, `recovery_policy` (a `RecoveryPolicy` or a dict of its fields) overrides the app's policy and "
        "`recovery_rules` adds classifier rules.",
        "",
    ]
    return "\n".join(lines)


# --- CLI ----------------------------------------------------------------------------------------------


def _commands(command: Any, ctx: Any) -> Iterator[tuple[Any, Any]]:
    """Every command under ``command`` (itself first), depth first, with its click context. Duck-typed:
    typer may bring click or a copy of its own."""
    yield command, ctx
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                yield from _commands(sub, sub.context_class(sub, info_name=name, parent=ctx))


def _parameter_row(param: Any, ctx: Any) -> str | None:
    """One table row for an argument or option (its help record: name with metavar, help with default and
    ``[required]``, as ``--help`` prints them); None for a hidden one."""
    record = None if getattr(param, "hidden", False) else param.get_help_record(ctx)
    if record is None:
        return None
    kind = getattr(param, "param_type_name", None) or ("option" if param.opts[0].startswith("-") else "argument")
    return f"| {_code(record[0])} | {kind} | {_cell(record[1])} |"


def cli_markdown() -> str:
    """The CLI reference: every command of ``function_runner.cli.app`` with its usage, arguments and options."""
    import typer.main

    from function_runner.cli import app

    root = typer.main.get_command(app)
    lines = ["# CLI reference", "", _GENERATED, "Every command also takes `--help`.", ""]
    for command, ctx in _commands(root, root.context_class(root, info_name="function-runner")):
        path = ctx.command_path
        depth = min(path.count(" ") + 1, 4)
        lines += [f"{'#' * (depth + 1)} `{path}`", ""] if ctx.parent else []
        lines += [_prose(command.help), "", "```text", command.get_usage(ctx), "```", ""]
        rows = [row for param in command.get_params(ctx) if (row := _parameter_row(param, ctx))]
        if rows:
            lines += ["| name | kind | help |", "|---|---|---|", *rows, ""]
    return "\n".join(lines)


# --- API ----------------------------------------------------------------------------------------------


def _anchor(name: str) -> str:
    """The id of a schema's heading."""
    return "schema-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _schema_type(schema: dict[str, Any]) -> str:
    """A JSON schema in a few words, references as links to their section."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{_cell(name)}](#{_anchor(name)})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " or ".join(_schema_type(part) for part in schema[key])
    if "enum" in schema:
        return "one of " + ", ".join(_code(json.dumps(item)) for item in schema["enum"])
    if "const" in schema:
        return _code(json.dumps(schema["const"]))
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_schema_type(schema['additionalProperties'])}"
    return _cell(f"{kind} ({schema['format']})" if "format" in schema else kind)


def _limits(schema: dict[str, Any]) -> str:
    """A parameter's default and bounds, in words (``default 50; ≤ 500``)."""
    parts = [f"default {_code(json.dumps(schema['default']))}"] if "default" in schema else []
    symbols = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}
    symbols |= {"minLength": "length ≥", "maxLength": "length ≤"}
    for part in [schema, *schema.get("anyOf", [])]:
        parts += [f"{symbol} {part[key]}" for key, symbol in symbols.items() if key in part]
    return "; ".join(parts)


def _parameters(operation: dict[str, Any]) -> list[str]:
    rows = []
    for param in operation.get("parameters", []):
        schema = param.get("schema", {})
        limits = _limits(schema)
        description = _cell(param.get("description", "")) + (f" ({limits})" if limits else "")
        rows.append(
            f"| {_code(param['name'])} | {param['in']} | {_schema_type(schema)} | "
            f"{'yes' if param.get('required') else 'no'} | {description} |"
        )
    if not rows:
        return []
    return ["**Parameters**", "", "| name | in | type | required | description |", "|---|---|---|---|---|", *rows, ""]


def _body(operation: dict[str, Any]) -> list[str]:
    body = operation.get("requestBody")
    if not body:
        return []
    lines = ["**Request body**" + (" (required)" if body.get("required") else ""), ""]
    for media, content in body.get("content", {}).items():
        lines.append(f"- `{media}`: {_schema_type(content.get('schema', {}))}")
    return [*lines, ""]


def _responses(operation: dict[str, Any]) -> list[str]:
    lines = ["**Responses**", "", "| status | description | body |", "|---|---|---|"]
    for status, response in sorted(operation.get("responses", {}).items()):
        bodies = [_schema_type(content.get("schema", {})) for content in response.get("content", {}).values()]
        lines.append(f"| {status} | {_cell(response.get('description', ''))} | {', '.join(bodies) or '—'} |")
    return [*lines, ""]


def _schemas(components: dict[str, Any]) -> list[str]:
    lines = ["## Schemas", ""]
    for name, schema in sorted(components.get("schemas", {}).items()):
        lines += [f"### {name} {{#{_anchor(name)}}}", "", _prose(schema.get("description")), ""]
        properties = schema.get("properties", {})
        if properties:
            required = set(schema.get("required", []))
            lines += ["| field | type | required | description |", "|---|---|---|---|"]
            for field, spec in properties.items():
                lines.append(
                    f"| {_code(field)} | {_schema_type(spec)} | {'yes' if field in required else 'no'} | "
                    f"{_cell(spec.get('description', ''))} |"
                )
            lines.append("")
        elif "enum" in schema:
            lines += [_schema_type(schema), ""]
    return lines


def openapi_schema() -> dict[str, Any]:
    """The error API's OpenAPI document, from an app built as the tests build it (no server, no database:
    nothing connects until a request needs it)."""
    from pydantic import SecretStr

    from api.main import create_app
    from error_handling.sealing import generate_key
    from function_runner.settings import Settings

    logging.disable(logging.WARNING)  # the start-up warning of an API without keys: not news here
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(data_dir=Path(data_dir), encryption_key=SecretStr(generate_key()))
            return create_app(settings).openapi()
    finally:
        logging.disable(logging.NOTSET)


def api_markdown() -> str:
    """The API reference: every path and method of the OpenAPI schema, then every schema it names."""
    document = openapi_schema()
    info = document.get("info", {})
    lines = [
        "# API reference",
        "",
        _GENERATED,
        f"{_prose(info.get('description'))} (OpenAPI {document.get('openapi', '')}, "
        f"{info.get('title', '')} {info.get('version', '')}.) A running API serves the same document at "
        "`/openapi.json` and an interactive page at `/docs`, behind the same keys as its routes.",
        "",
    ]
    for path, methods in document.get("paths", {}).items():
        for method, operation in methods.items():
            lines += [f"## `{method.upper()} {path}`", "", f"**{_cell(operation.get('summary', ''))}**", ""]
            lines += [_prose(operation.get("description")), ""]
            lines += _parameters(operation) + _body(operation) + _responses(operation)
    return "\n".join(lines + _schemas(document.get("components", {})))


#: Where each generated page lands in the site, and the function that writes it.
PAGES: dict[str, Callable[[], str]] = {
    "reference/settings.md": settings_markdown,
    "reference/cli.md": cli_markdown,
    "reference/api.md": api_markdown,
}
