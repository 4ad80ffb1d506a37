"""A batch row's idempotency key is stable across releases: a batch started by one tweetgen and
resumed by the next must not pay for its rows again (the key below was computed by the tree before
voices, thinking and tiers existed, commit 98e4083)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tweetgen.batchinput import read_rows
from tweetgen.batchrows import prepare

SETTINGS = {"provider": "sandbox", "model": "gemini-flash-latest"}
#: ``prepare`` of the row below with these settings, as 98e4083 computed it
KEY_BEFORE_VOICES = "dca4b8fac5f4577fa6be17c75f2eab55d0f53badf6f5e4843bda4acca476b867"


def _key(tmp_path: Path, header: str, row: str, defaults: dict[str, object]) -> str | None:
    source = tmp_path / "topics.csv"
    source.write_text(f"{header}\n{row}\n", encoding="utf-8")
    prepared = prepare(next(iter(read_rows(source, None))), SETTINGS, defaults)
    assert prepared.error is None, prepared.error
    return prepared.key


def test_a_row_without_a_voice_keeps_its_key_from_before_voices(tmp_path: Path) -> None:
    key = _key(tmp_path, "id,topic,tone,max_words", "1,Rust in production,casual,20", {})
    assert key == KEY_BEFORE_VOICES
    with_template = {"template": "tweet"}
    assert (
        _key(tmp_path, "id,topic,tone,max_words", "1,Rust in production,casual,20", with_template)
        == KEY_BEFORE_VOICES
    )


def test_a_voice_makes_another_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tweetgen.voice import build_profile, save_profile

    posts = [f"Post number {n} about shipping small changes. #devlife #ship" for n in range(5)]
    directory = tmp_path / "voices"
    monkeypatch.setenv("TWEETGEN_VOICE_DIR", str(directory))
    save_profile(build_profile("me", posts), str(directory))
    header, row = "id,topic,tone,max_words,voice", "1,Rust in production,casual,20,me"
    assert _key(tmp_path, header, row, {}) not in (None, KEY_BEFORE_VOICES)
