"""The sign-in gate and note rendering of the Streamlit app, run headless with AppTest on the
embedded store: failed sign-ins audited and throttled across sessions, the identity header
refused without the proxy secret, notes shown literally."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.runtime.context import ContextProxy, StreamlitHeaders
from streamlit.testing.v1 import AppTest

from app import auth
from app.plain_text import literal
from graph import cases
from graph.schema import Label
from graph.stores.embedded import EmbeddedStore
from tests.worlds.ui import build_world

APP = str(Path(__file__).resolve().parents[2] / "app" / "main.py")

EVIL_NOTE = (
    "See ![x](http://evil.example/pixel.png) and <img src=\"http://evil.example/raw.png\">\n"
    "<script>window.__pwned = 1</script> [proof](http://evil.example/link) http://evil.example/bare "
    ":red[alarm] $x^2$ **bold**"
)


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EmbeddedStore:
    store = EmbeddedStore(tmp_path / "embedded")
    build_world(store, tmp_path, ring=4)
    monkeypatch.setenv("SYBILSCOPE_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("SYBILSCOPE_STORE", "embedded")
    for name in ("USERS_FILE", "IDENTITY_HEADER", "PROXY_SECRET", "PROXY_SECRET_HEADER"):
        monkeypatch.delenv(f"SYBILSCOPE_UI_{name}", raising=False)
    return store


@pytest.fixture()
def users_file(world: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  alice: \"{auth.hash_password('s3cret')}\"\n")
    monkeypatch.setenv("SYBILSCOPE_UI_USERS_FILE", str(users))
    return users


def _run(at: AppTest) -> AppTest:
    at.run(timeout=60)
    assert not at.exception, [e.message for e in at.exception]
    return at


def _sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button[0].click()
    return _run(at)


def test_failed_and_successful_sign_ins_are_audited(users_file: Path, world: EmbeddedStore) -> None:
    at = _run(AppTest.from_file(APP, default_timeout=60))
    _sign_in(at, "alice", "wrong")
    assert any("wrong password" in e.value for e in at.error)
    _sign_in(at, "mallory", "s3cret")
    assert any("wrong password" in e.value for e in at.error)  # the same words for an unknown name
    _sign_in(at, "alice", "s3cret")
    assert at.title[0].value == "Triage"
    events = list(reversed(cases.audit_trail(world)))
    assert [(e.action, e.who, e.target, e.after["client"]) for e in events] == [
        ("sign_in_failed", "alice", "Investigator:alice", "local"),
        # The name typed is not kept when it is nobody's (it may be a password).
        ("sign_in_failed", "(unknown user)", "Investigator:(unknown user)", "local"),
        ("sign_in", "alice", "Investigator:alice", "local"),
    ]


def _failed_recently(workspace: Path, attempts: list[tuple[str, str]]) -> None:
    """Record failed sign-ins ``(name, client)``, each made as soon as the throttle allowed,
    the last one 5 s ago (as earlier sessions would have left them)."""
    def replay(path: Path, start: float) -> float:
        clock = [start]
        throttle = auth.SignInThrottle(path, lambda: clock[0])
        for name, client in attempts:
            clock[0] += throttle.wait(name, client)
            assert throttle.admit(name, client) == 0
        return clock[0] - start

    span = replay(workspace / "dry-run.json", 0.0)
    replay(workspace / auth.THROTTLE_FILE, time.time() - span - 5)


def test_throttle_outlives_the_session(users_file: Path, world: EmbeddedStore, tmp_path: Path) -> None:
    """Failures recorded by earlier sessions hold a new session back, even with the right
    password, and nothing is audited for the refused attempt."""
    _failed_recently(tmp_path, [("alice", "elsewhere")] * 12)  # now a 1024 s wait
    at = _sign_in(_run(AppTest.from_file(APP, default_timeout=60)), "alice", "s3cret")
    assert at.title[0].value == "Sybilscope sign-in"
    assert any("Too many failed sign-ins" in e.value for e in at.error)
    assert cases.audit_trail(world) == []
    # The client is throttled on its own count too: another name, from a busy address.
    _failed_recently(tmp_path, [(f"guess{i}", "local") for i in range(auth.CLIENT_BACKOFF.free + 8)])  # a 512 s wait
    at = _sign_in(_run(AppTest.from_file(APP, default_timeout=60)), "bob", "anything")
    assert any("Too many failed sign-ins" in e.value for e in at.error)
    assert cases.audit_trail(world) == []


def _with_headers(monkeypatch: pytest.MonkeyPatch, pairs: list[tuple[str, str]]) -> None:
    """Make st.context.headers report ``pairs`` (AppTest has no HTTP request of its own)."""
    monkeypatch.setattr(ContextProxy, "headers", property(lambda self: StreamlitHeaders(pairs)))


@pytest.mark.parametrize("pairs", [
    [("X-Forwarded-User", "mallory")],
    [("X-Forwarded-User", "mallory"), ("X-Sybilscope-Proxy-Secret", "guess")],
    [("X-Forwarded-User", "mallory"), ("X-Sybilscope-Proxy-Secret", "guess"), ("X-Sybilscope-Proxy-Secret", "pr0xy-s3cret")],
], ids=["no-secret", "wrong-secret", "secret-twice"])
def test_identity_header_without_the_secret_is_refused(world: EmbeddedStore, monkeypatch: pytest.MonkeyPatch,
                                                       pairs: list[tuple[str, str]]) -> None:
    monkeypatch.setenv("SYBILSCOPE_UI_IDENTITY_HEADER", "X-Forwarded-User")
    monkeypatch.setenv("SYBILSCOPE_UI_PROXY_SECRET", "pr0xy-s3cret")
    _with_headers(monkeypatch, pairs)
    at = _run(AppTest.from_file(APP, default_timeout=60))
    assert [e.value for e in at.error] == ["Refused: open Sybilscope through the authenticating proxy."]
    assert not at.title and not at.sidebar.caption and not at.markdown and not at.dataframe


def test_identity_header_with_the_secret_names_the_investigator(world: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYBILSCOPE_UI_IDENTITY_HEADER", "X-Forwarded-User")
    monkeypatch.setenv("SYBILSCOPE_UI_PROXY_SECRET", "pr0xy-s3cret")
    _with_headers(monkeypatch, [("X-Forwarded-User", "dana"), ("X-Sybilscope-Proxy-Secret", "pr0xy-s3cret")])
    at = _run(AppTest.from_file(APP, default_timeout=60))
    assert at.title[0].value == "Triage"
    assert any("dana" in c.value for c in at.sidebar.caption)


def test_identity_header_mode_without_a_secret_does_not_start(world: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYBILSCOPE_UI_IDENTITY_HEADER", "X-Forwarded-User")
    _with_headers(monkeypatch, [("X-Forwarded-User", "dana")])
    at = _run(AppTest.from_file(APP, default_timeout=60))
    assert len(at.error) == 1 and "refuses to start" in at.error[0].value and "ui_proxy_secret" in at.error[0].value
    assert not at.title


def _html(markdown_source: str) -> str:
    return MarkdownIt("commonmark").render(markdown_source)


def test_literal_renders_as_the_text_itself() -> None:
    html = _html(literal(EVIL_NOTE))
    assert "<img" not in html and "<a " not in html and "<script" not in html and "<strong" not in html
    assert "![x](http://evil.example/pixel.png)" in html.replace("&quot;", '"')
    assert "&lt;script&gt;" in html
    assert "<img" in _html(EVIL_NOTE)  # (unescaped, the same parser makes images of it)


def test_notes_are_shown_as_text_in_the_case_panel_and_audit_trail(world: EmbeddedStore) -> None:
    cases.add_note(world, (Label.CLUSTER.value, "c-ring"), EVIL_NOTE, who="eve *the* [analyst](http://evil.example)")
    at = _run(AppTest.from_file(APP, default_timeout=60))
    at.selectbox(key="triage_pick").set_value("c-ring")
    at.button(key="open_cluster").click()
    _run(at)
    assert [t.value for t in at.text if "evil.example" in t.value] == [EVIL_NOTE]
    for element in [*at.markdown, *at.caption]:
        assert "<img" not in _html(element.value) and "<a " not in _html(element.value), element.value
    assert any(literal("eve *the* [analyst](http://evil.example)") in c.value for c in at.caption)

    def audit_page() -> None:
        from app.views import audit

        audit.render()

    audit = _run(AppTest.from_function(audit_page, default_timeout=60))
    # the trail lists the note event in its tables (plain text cells, never Markdown) ...
    cells = [str(v) for d in audit.dataframe for v in d.value.astype(str).to_numpy().ravel()]
    assert any("evil" in c for c in cells), "the note event is listed"
    # ... and wherever its text reaches Markdown (labels, captions), it is escaped
    lines = [m.value for m in [*audit.markdown, *audit.caption] if "evil" in m.value]
    lines += [x.label for x in audit.expander if "evil" in x.label]
    for line in lines:
        assert "<img" not in _html(line) and "<a " not in _html(line) and "<script" not in _html(line)
