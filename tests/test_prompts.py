"""Tests for tweetgen.prompts: templates, the registry, template files and tone presets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tweetgen import prompts
from tweetgen.errors import ConfigurationError, InputError, TweetGenError
from tweetgen.prompts import (
    DEFAULT_TEMPLATE,
    TONES,
    PromptTemplate,
    TemplateError,
    TemplateRegistry,
    default_registry,
    register_tone,
)


@pytest.fixture
def restore_tones() -> Iterator[dict[str, str]]:
    saved = dict(TONES)
    yield TONES
    TONES.clear()
    TONES.update(saved)


def test_template_error_is_an_input_error_and_a_value_error() -> None:
    assert issubclass(TemplateError, InputError)
    assert issubclass(TemplateError, ConfigurationError)
    assert issubclass(TemplateError, ValueError)
    assert issubclass(TemplateError, TweetGenError)


# --- PromptTemplate ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "variables"),
    [
        ("no placeholders", frozenset()),
        ("{a} and {b} and {a} again", frozenset({"a", "b"})),
        ("{{literal}} braces and {x}", frozenset({"x"})),
        ("{n:>5} {word!r}", frozenset({"n", "word"})),
    ],
)
def test_variables(text: str, variables: frozenset[str]) -> None:
    assert PromptTemplate("t", text).variables == variables


def test_render_fills_placeholders_and_keeps_literal_braces() -> None:
    template = PromptTemplate("t", "{{json}} {greeting}, {name}! {n:03d}")
    assert template.render(greeting="Hello", name="Ada", n=7) == "{json} Hello, Ada! 007"


def test_render_uses_defaults_and_values_override_them() -> None:
    template = PromptTemplate("t", "{a}-{b}", defaults={"b": "default"})
    assert template.render(a="x") == "x-default"
    assert template.render(a="x", b="given") == "x-given"


@pytest.mark.parametrize(
    ("values", "fragments"),
    [
        pytest.param({"topic": "AI"}, ["missing", "tone"], id="missing"),
        pytest.param({}, ["missing", "tone", "topic"], id="missing-two"),
        pytest.param(
            {"topic": "AI", "tone": "witty", "extra": 1}, ["unknown", "extra"], id="unknown"
        ),
        pytest.param(
            {"topic": "AI", "colour": "red"}, ["missing tone", "unknown colour"], id="both"
        ),
    ],
)
def test_render_missing_and_unknown_variables(
    values: dict[str, object], fragments: list[str]
) -> None:
    template = PromptTemplate("mine", "A {tone} note on {topic}")
    with pytest.raises(TemplateError) as info:
        template.render(**values)
    message = str(info.value)
    assert "'mine'" in message
    assert "it takes: tone, topic" in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("unclosed {brace", id="unclosed"),
        pytest.param("stray } brace", id="stray-close"),
        pytest.param("positional {}", id="positional-empty"),
        pytest.param("positional {0}", id="positional-index"),
        pytest.param("{user.name}", id="attribute"),
        pytest.param("{items[0]}", id="index"),
    ],
)
def test_malformed_templates_are_rejected(text: str) -> None:
    template = PromptTemplate("bad", text)
    with pytest.raises(TemplateError):
        _ = template.variables
    with pytest.raises(TemplateError):
        template.render()
    with pytest.raises(TemplateError):
        TemplateRegistry().register(template)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        pytest.param("{x:{width}}", {"x": "a"}, id="nested-field-in-format-spec"),
        pytest.param("{x!z}", {"x": "a"}, id="unknown-conversion"),
    ],
)
def test_render_never_leaks_format_errors(text: str, values: dict[str, object]) -> None:
    with pytest.raises(TemplateError):
        TemplateRegistry().register(PromptTemplate("odd", text)).render(**values)


# --- DEFAULT_TEMPLATE -------------------------------------------------------------


def test_default_template_renders_topic_tone_and_max_words() -> None:
    assert DEFAULT_TEMPLATE.variables == {
        "topic",
        "tone",
        "tone_description",
        "max_words",
        "instructions",
    }
    text = DEFAULT_TEMPLATE.render(
        topic="Python testing", tone="witty", tone_description=TONES["witty"], max_words=25
    )
    assert text.startswith("Generate a witty tweet about Python testing.\n")
    assert f"Tone: {TONES['witty']}." in text
    assert "at most 25 words" in text
    assert "280 characters" in text
    assert "{" not in text


def test_default_registry_has_the_default_template() -> None:
    assert default_registry.get("tweet") is DEFAULT_TEMPLATE
    assert "tweet" in default_registry.names()


def test_tones_presets() -> None:
    assert set(TONES) >= {"professional", "casual", "witty", "inspirational", "informative"}
    assert all(description.strip() for description in TONES.values())


# --- registry -----------------------------------------------------------------------


def test_register_get_and_names() -> None:
    registry = TemplateRegistry()
    template = registry.register(PromptTemplate("b", "{x}"))
    registry.register(PromptTemplate("a", "{y}"))
    assert registry.get("b") is template
    assert registry.names() == ["a", "b"]
    replacement = registry.register(PromptTemplate("b", "new {x}"))
    assert registry.get("b") is replacement


def test_get_unknown_lists_the_known_templates() -> None:
    registry = TemplateRegistry(
        {"alpha": PromptTemplate("alpha", "a"), "beta": PromptTemplate("beta", "b")}
    )
    with pytest.raises(
        TemplateError, match=r"unknown template 'gamma'; known templates: alpha, beta"
    ):
        registry.get("gamma")
    with pytest.raises(TemplateError, match="known templates: none"):
        TemplateRegistry().get("x")


def test_registries_are_independent() -> None:
    registry = TemplateRegistry()
    registry.register(PromptTemplate("private", "x"))
    assert "private" not in default_registry.names()


# --- load_file ----------------------------------------------------------------------


def test_load_json_file(tmp_path: Path) -> None:
    path = tmp_path / "templates.json"
    data = {
        "thread": {"text": "A thread about {topic} in {parts} parts", "description": "threads"},
        "short": "Say {topic} briefly",
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    registry = TemplateRegistry()
    loaded = registry.load_file(path)
    assert [t.name for t in loaded] == ["thread", "short"]
    assert registry.get("thread").description == "threads"
    assert registry.get("thread").variables == {"topic", "parts"}
    assert registry.get("short").render(topic="tea") == "Say tea briefly"


def test_load_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "templates.toml"
    path.write_text(
        '[launch]\ntext = "Announce {product} to {audience}"\ndescription = "launches"\n\n'
        '[plain]\ntext = "{x}"\n',
        encoding="utf-8",
    )
    registry = TemplateRegistry()
    registry.load_file(str(path))
    assert registry.names() == ["launch", "plain"]
    assert (
        registry.get("launch").render(product="tweetgen", audience="devs")
        == "Announce tweetgen to devs"
    )


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        pytest.param("bad.json", "{not json", "not valid json", id="invalid-json"),
        pytest.param("bad.toml", "[unclosed", "not valid toml", id="invalid-toml"),
        pytest.param("list.json", "[1, 2]", "must hold an object", id="not-an-object"),
        pytest.param("str.json", '"hello"', "must hold an object", id="string"),
        pytest.param(
            "notext.json",
            '{"t": {"description": "no text"}}',
            "needs a 'text' string",
            id="missing-text",
        ),
        pytest.param(
            "numtext.json", '{"t": {"text": 5}}', "needs a 'text' string", id="text-not-string"
        ),
        pytest.param("num.json", '{"t": 5}', "needs a 'text' string", id="spec-not-object"),
        pytest.param("malformed.json", '{"t": "{oops"}', "malformed", id="malformed-template"),
        pytest.param("latin1.json", b"\xff\xfe{", "cannot read", id="not-utf8"),
    ],
)
def test_load_bad_files(tmp_path: Path, name: str, content: str | bytes, fragment: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        TemplateRegistry().load_file(path)
    assert fragment in str(info.value).lower()


@pytest.mark.parametrize("make", [lambda p: p / "missing.json", lambda p: p])
def test_load_unreadable_files(tmp_path: Path, make: object) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(TemplateError, match="cannot read template file"):
        TemplateRegistry().load_file(path)


def test_a_bad_file_does_not_break_the_registry(tmp_path: Path) -> None:
    registry = TemplateRegistry({"keep": PromptTemplate("keep", "{x}")})
    path = tmp_path / "bad.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(TemplateError):
        registry.load_file(path)
    assert registry.names() == ["keep"]


# --- register_tone ------------------------------------------------------------------


def test_register_tone_adds_a_normalised_preset(restore_tones: dict[str, str]) -> None:
    register_tone("  Pirate ", "  salty and nautical  ")
    assert TONES["pirate"] == "salty and nautical"
    assert prompts.TONES is TONES


def test_register_tone_replaces(restore_tones: dict[str, str]) -> None:
    register_tone("witty", "dry")
    assert TONES["witty"] == "dry"


@pytest.mark.parametrize(
    ("name", "description"), [("", "x"), ("  ", "x"), ("ok", ""), ("ok", "   ")]
)
def test_register_tone_rejects_empty(
    restore_tones: dict[str, str], name: str, description: str
) -> None:
    before = dict(TONES)
    with pytest.raises(TemplateError, match="non-empty"):
        register_tone(name, description)
    assert before == TONES
