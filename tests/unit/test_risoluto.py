"""Applying the overlay (orchestrator/risoluto.py) to a real server that behaves as Risoluto does.

No mocks: tests.integration.risoluto_server runs Risoluto's config API contract (DESIGN.md
§7) on a free port, and the CLI tests run `sandbox` in-process (tests/unit/clirun.py).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from builder.core.errors import OverlayError
from builder.orchestrator import applied, risoluto
from builder.orchestrator.risoluto import apply_overlay, check_url
from tests.integration.risoluto_server import RisolutoServer, start
from tests.unit import clirun

IMAGE = "sha256:" + "4f" * 32
TOKEN = "tok-3f9a1c7e5b2d"
OVERLAY: dict[str, Any] = {
    "codex": {
        "sandbox": {
            "image": IMAGE,
            "egress_allowlist": ["registry.npmjs.org"],
            "extra_mounts": ["/srv/cache/pip:/home/agent/.cache/pip:ro"],
            "security": {"gvisor": False},
        }
    }
}

Started = tuple[str, RisolutoServer]


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(risoluto, "RETRY", replace(risoluto.RETRY, first_wait=0.05))


@pytest.fixture
def serve() -> Iterator[Callable[..., Started]]:
    """Start servers with `start(...)`'s arguments; all are stopped after the test."""
    stops: list[Callable[[], None]] = []

    def serve(token: str | None = None, **kwargs: Any) -> Started:
        url, server, stop = start(token, **kwargs)
        stops.append(stop)
        return url, server

    yield serve
    for stop in stops:
        stop()


def sandbox_of(config: dict[str, Any]) -> Any:
    return config["codex"]["sandbox"]


# -- applying ----------------------------------------------------------------------------------


def test_apply_pins_the_image_and_confirms_it_from_the_effective_config(
    serve: Callable[..., Started],
) -> None:
    url, server = serve()

    result = apply_overlay(OVERLAY, url, token=None)

    assert sandbox_of(server.overlay)["image"] == IMAGE
    assert sandbox_of(server.effective())["image"] == IMAGE
    assert result.url == url
    assert result.updated
    assert result.image == IMAGE
    assert "codex.sandbox.image" in result.confirmed
    assert "codex.sandbox.security.gvisor" in result.confirmed
    assert result.to_json() == {"url": url, "ok": True, "removed": [], "left": []}
    read, put, get = server.requests
    assert (read.method, read.path) == ("GET", "/api/v1/config/overlay")  # what it set before
    assert (put.method, put.path, get.method, get.path) == (
        "PUT",
        "/api/v1/config/overlay",
        "GET",
        "/api/v1/config",
    )
    assert put.headers["Content-Type"] == "application/json"
    assert "Authorization" not in put.headers


def test_apply_merges_into_the_servers_config_instead_of_replacing_it(
    serve: Callable[..., Started],
) -> None:
    url, server = serve(
        config={"codex": {"model": "gpt-5"}, "tracker": {"kind": "linear"}},
        overlay={
            "server": {"port": 4001},
            "codex": {
                "approval_policy": "never",
                "sandbox": {"network": "agents", "image": "old:latest", "extra_mounts": ["/a:/b"]},
            },
        },
    )

    apply_overlay(OVERLAY, url, token=None)

    assert server.overlay["server"] == {"port": 4001}
    assert server.overlay["codex"]["approval_policy"] == "never"
    settings = sandbox_of(server.overlay)
    assert settings["network"] == "agents"  # a sandbox key we did not send stays
    assert settings["image"] == IMAGE
    assert settings["extra_mounts"] == OVERLAY["codex"]["sandbox"]["extra_mounts"]  # replaced
    effective = server.effective()
    assert effective["codex"]["model"] == "gpt-5"
    assert effective["tracker"] == {"kind": "linear"}


def test_applying_again_changes_nothing_and_says_so(serve: Callable[..., Started]) -> None:
    url, _ = serve()
    apply_overlay(OVERLAY, url, token=None)

    again = apply_overlay(OVERLAY, url, token=None)

    assert not again.updated


def test_a_value_the_server_redacts_in_its_echo_still_confirms(
    serve: Callable[..., Started],
) -> None:
    url, server = serve()
    mount = "/srv/token:/home/agent/token:ro"  # "token:" looks like a secret assignment to it
    overlay = {"codex": {"sandbox": {"image": IMAGE, "extra_mounts": [mount]}}}

    result = apply_overlay(overlay, url, token=None)

    assert "codex.sandbox.extra_mounts" in result.confirmed
    assert sandbox_of(server.overlay)["extra_mounts"] == [mount]
    put = json.loads(_raw(url, "PUT", "/api/v1/config/overlay", overlay))
    assert sandbox_of(put["overlay"])["extra_mounts"] == [mount], "the echo is not redacted"
    config = json.loads(_raw(url, "GET", "/api/v1/config"))
    assert sandbox_of(config)["extra_mounts"] == ["/srv/token:[REDACTED]"]


def _raw(
    url: str, method: str, path: str, body: Any = None, media: str = "application/json"
) -> str:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    if data is not None and media:
        request.add_header("Content-Type", media)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return str(reply.read().decode())
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {exc.read().decode()}"


def test_the_server_refuses_a_put_without_a_json_content_type(
    serve: Callable[..., Started],
) -> None:
    url, server = serve()

    reply = _raw(url, "PUT", "/api/v1/config/overlay", OVERLAY, media="")

    assert reply.startswith("400 ")
    assert "invalid_overlay_payload" in reply
    assert server.overlay == {}


def test_a_config_the_server_rejects_is_a_mismatch_naming_the_key(
    serve: Callable[..., Started],
) -> None:
    before = {"codex": {"sandbox": {**OVERLAY["codex"]["sandbox"], "image": "sha256:" + "0a" * 32}}}
    url, server = serve(overlay=before)
    server.accepts = lambda config: sandbox_of(config)["image"] != IMAGE

    with pytest.raises(OverlayError) as caught:
        apply_overlay(OVERLAY, url, token=None)

    message = str(caught.value)
    assert caught.value.exit_code == 8
    assert "codex.sandbox.image" in message
    assert IMAGE in message
    assert "0a0a" in message
    assert "codex.sandbox.security.gvisor" not in message  # only what differs


# -- the write token -----------------------------------------------------------------------------


def test_the_token_is_sent_as_a_bearer_header(serve: Callable[..., Started]) -> None:
    url, server = serve(TOKEN)

    apply_overlay(OVERLAY, url, token=TOKEN)

    assert sandbox_of(server.overlay)["image"] == IMAGE
    assert {r.headers.get("Authorization") for r in server.requests} == {f"Bearer {TOKEN}"}


def test_a_wrong_token_is_exit_8_and_the_message_never_shows_it(
    serve: Callable[..., Started],
) -> None:
    url, server = serve(TOKEN)
    wrong = "wrong-7c1e0b9d"

    with pytest.raises(OverlayError) as caught:
        apply_overlay(OVERLAY, url, token=wrong)

    message = str(caught.value)
    assert caught.value.exit_code == 8
    assert "token missing or wrong: set RISOLUTO_WRITE_TOKEN" in message
    assert "401" in message
    assert wrong not in message
    assert TOKEN not in message
    assert server.overlay == {}


def test_no_token_when_the_server_requires_one_is_exit_8(serve: Callable[..., Started]) -> None:
    url, server = serve(TOKEN)

    with pytest.raises(OverlayError, match="RISOLUTO_WRITE_TOKEN is not set") as caught:
        apply_overlay(OVERLAY, url, token=None)

    assert caught.value.exit_code == 8
    assert server.overlay == {}


def test_a_token_no_header_can_carry_is_refused_without_showing_it() -> None:
    with pytest.raises(OverlayError) as caught:
        apply_overlay(OVERLAY, "http://127.0.0.1:9", token="abc\ndef")

    assert "abc" not in str(caught.value)


def own_address() -> str:
    """This host's address on a non-loopback interface (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
        address = str(probe.getsockname()[0])
    if address.startswith("127."):
        pytest.fail("this host has no non-loopback IPv4 address to test remote writes with")
    return address


def test_writes_from_another_host_need_the_servers_token(serve: Callable[..., Started]) -> None:
    url, server = serve(host="0.0.0.0")
    remote = url.replace("127.0.0.1", own_address())

    with pytest.raises(OverlayError) as caught:
        apply_overlay(OVERLAY, remote, token=None)

    assert caught.value.exit_code == 8
    assert "403" in str(caught.value)
    assert "RISOLUTO_WRITE_TOKEN" in str(caught.value)
    assert server.overlay == {}


def test_with_a_token_writes_and_reads_from_another_host_pass(
    serve: Callable[..., Started],
) -> None:
    url, server = serve(TOKEN, host="0.0.0.0")

    apply_overlay(OVERLAY, url.replace("127.0.0.1", own_address()), token=TOKEN)

    assert sandbox_of(server.effective())["image"] == IMAGE


# -- unreachable, failing and unexpected servers ---------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_port_is_exit_8_asking_whether_risoluto_runs() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(OverlayError) as caught:
        apply_overlay(OVERLAY, url, token=TOKEN)

    message = str(caught.value)
    assert caught.value.exit_code == 8
    assert f"is risoluto running at {url}?" in message.lower()
    assert "3 attempts" in message
    assert TOKEN not in message


def test_an_unknown_host_is_exit_8_asking_whether_risoluto_runs() -> None:
    with pytest.raises(
        OverlayError, match=r"Is Risoluto running at http://no-such-host\.invalid:4000\?"
    ):
        apply_overlay(OVERLAY, "http://no-such-host.invalid:4000", token=None)


def test_a_5xx_is_retried(serve: Callable[..., Started]) -> None:
    url, server = serve()
    server.fail_next = [503]

    apply_overlay(OVERLAY, url, token=None)

    assert [r.method for r in server.requests] == ["GET", "GET", "PUT", "GET"]
    assert sandbox_of(server.overlay)["image"] == IMAGE


def test_a_server_failing_every_attempt_is_exit_8(serve: Callable[..., Started]) -> None:
    url, server = serve()
    server.fail_next = [500, 500, 500]

    with pytest.raises(OverlayError, match="failed GET /api/v1/config/overlay 3 times") as caught:
        apply_overlay(OVERLAY, url, token=None)

    assert "Internal server error" in str(caught.value)
    assert len(server.requests) == 3


def test_a_400_shows_the_servers_message(serve: Callable[..., Started]) -> None:
    url, server = serve()
    server.fail_next = [400]

    with pytest.raises(OverlayError) as caught:
        apply_overlay(OVERLAY, url, token=None)

    message = str(caught.value)
    assert caught.value.exit_code == 8
    assert "HTTP 400: Internal server error (service_error)" in message
    assert "rejected the overlay" in message
    assert server.overlay == {}


def test_an_overlay_risoluto_would_misread_is_refused_before_anything_is_sent(
    serve: Callable[..., Started],
) -> None:
    url, server = serve()
    overlay = {"codex": {"sandbox": {"image": IMAGE, "security": {"drop_capabilities": ["ALL"]}}}}

    with pytest.raises(OverlayError) as caught:
        apply_overlay(overlay, url, token=None, source="cache/overlay.json")

    assert "cache/overlay.json: codex.sandbox.security.drop_capabilities is" in str(caught.value)
    assert "true or false" in str(caught.value)
    assert server.requests == []


# -- removing what an earlier apply set --------------------------------------------------------


def test_keys_an_earlier_apply_set_are_deleted_and_the_operators_stay(
    serve: Callable[..., Started],
) -> None:
    url, server = serve(
        overlay={
            "codex": {
                "model": "o3",
                "sandbox": {
                    "image": "old",
                    "network": "agents",
                    "resources": {"memory": "8g", "cpus": "2"},
                },
            }
        }
    )
    ours = {"codex.sandbox.network": "agents", "codex.sandbox.resources.cpus": "2"}

    result = apply_overlay(OVERLAY, url, token=None, here=ours)

    assert result.removed == ("codex.sandbox.network", "codex.sandbox.resources.cpus")
    assert result.left == ()
    assert result.updated
    settings = sandbox_of(server.overlay)
    assert "network" not in settings
    assert settings["resources"] == {"memory": "8g"}  # the operator's
    assert server.overlay["codex"]["model"] == "o3"
    assert server.in_effect()["network"] == ""  # Risoluto's default again
    deletes = [r.path for r in server.requests if r.method == "DELETE"]
    assert deletes == [
        "/api/v1/config/overlay/codex.sandbox.network",
        "/api/v1/config/overlay/codex.sandbox.resources.cpus",
    ]
    assert [r.method for r in server.requests] == ["GET", "DELETE", "DELETE", "PUT", "GET"]


def test_a_key_changed_on_the_server_since_is_left_and_reported(
    serve: Callable[..., Started],
) -> None:
    url, server = serve(overlay={"codex": {"sandbox": {"network": "operators-net"}}})

    result = apply_overlay(
        OVERLAY,
        url,
        token=None,
        here={"codex.sandbox.network": "agents", "codex.sandbox.env_passthrough": ["X"]},
    )

    assert result.removed == ()
    assert result.left == ("codex.sandbox.network",)  # env_passthrough was gone already
    assert sandbox_of(server.overlay)["network"] == "operators-net"
    assert not [r for r in server.requests if r.method == "DELETE"]


def test_stored_is_called_once_the_put_is_in_even_if_the_read_back_differs(
    serve: Callable[..., Started],
) -> None:
    url, server = serve()
    server.accepts = lambda config: False
    calls: list[bool] = []

    with pytest.raises(OverlayError, match="differs at"):
        apply_overlay(OVERLAY, url, token=None, stored=lambda: calls.append(True))

    assert calls == [True]


def test_a_url_that_is_not_risoluto_is_exit_8(serve: Callable[..., Started]) -> None:
    url, _ = serve()

    with pytest.raises(OverlayError, match="not JSON") as caught:
        apply_overlay(OVERLAY, f"{url}/elsewhere", token=None)  # the web UI answers
    assert "Risoluto's address" in str(caught.value)
    with pytest.raises(OverlayError, match="HTTP 404: Not found") as caught:
        apply_overlay(OVERLAY, f"{url}/api/v2", token=None)


class _HtmlPage(http.server.BaseHTTPRequestHandler):
    """Another service: answers everything 200 with a web page."""

    def do_GET(self) -> None:
        self.do_PUT()

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        page = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_reply_that_is_not_json_is_exit_8() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlPage)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(OverlayError, match="not JSON") as caught:
            apply_overlay(OVERLAY, url, token=None)
        assert "Welcome to nginx" in str(caught.value)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- the URL -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://127.0.0.1:4000", "http://127.0.0.1:4000"),
        ("https://risoluto.example.com/", "https://risoluto.example.com"),
        ("http://127.0.0.1:4000/api/v1/config/overlay", "http://127.0.0.1:4000"),
        ("http://[::1]:4000/", "http://[::1]:4000"),
    ],
)
def test_check_url_normalizes_a_base_address(given: str, base: str) -> None:
    assert check_url(given) == base


@pytest.mark.parametrize(
    "given", ["ftp://127.0.0.1:4000", "127.0.0.1:4000", "http://", "http://h:99999", "http://h/?x"]
)
def test_check_url_refuses_anything_but_http_and_https(given: str) -> None:
    with pytest.raises(OverlayError) as caught:
        check_url(given)
    assert caught.value.exit_code == 8


def test_check_url_refuses_credentials_without_showing_them() -> None:
    with pytest.raises(OverlayError, match="RISOLUTO_WRITE_TOKEN") as caught:
        check_url("http://admin:hunter2@127.0.0.1:4000")
    assert "hunter2" not in str(caught.value)


# -- the CLI -----------------------------------------------------------------------------------


def sandbox(tmp_path: Path, *args: str, token: str | None = None) -> Result:
    spec = tmp_path / "sandbox.toml"
    spec.write_text('[image]\nname = "acme/sandbox"\n[base]\nimage = "debian:bookworm-slim"\n')
    env = {"SANDBOX_CACHE_DIR": str(tmp_path / "cache"), risoluto.TOKEN_ENV: token}
    return clirun.sandbox("-f", spec, *args, env=env)


def write_overlay(tmp_path: Path) -> Path:
    path = tmp_path / "cache" / "overlay.json"
    path.parent.mkdir()
    path.write_text(json.dumps(OVERLAY, indent=2, sort_keys=True) + "\n")
    return path


def test_cli_overlay_apply_puts_the_last_builds_overlay(
    tmp_path: Path, serve: Callable[..., Started]
) -> None:
    url, server = serve(TOKEN)
    path = write_overlay(tmp_path)

    done = sandbox(tmp_path, "overlay", "apply", url, token=TOKEN)

    assert done.exit_code == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"applied: {path} to Risoluto at {url} (image {IMAGE}, 4 keys confirmed)"
    ]
    assert sandbox_of(server.effective())["image"] == IMAGE
    assert TOKEN not in done.stdout + done.stderr


def test_cli_wrong_token_exits_8_without_printing_it(
    tmp_path: Path, serve: Callable[..., Started]
) -> None:
    url, server = serve(TOKEN)
    write_overlay(tmp_path)

    done = sandbox(tmp_path, "overlay", "apply", url, token="not-the-token-91b2")

    assert done.exit_code == 8
    assert done.stdout == ""
    assert done.stderr.startswith("error: Risoluto at ")
    assert "token missing or wrong: set RISOLUTO_WRITE_TOKEN" in done.stderr
    assert "not-the-token-91b2" not in done.stderr
    assert "Traceback" not in done.stderr
    assert server.overlay == {}


def test_cli_overlay_apply_before_any_build_says_to_build(
    tmp_path: Path, serve: Callable[..., Started]
) -> None:
    url, server = serve()

    done = sandbox(tmp_path, "overlay", "apply", url)

    assert done.exit_code == 8
    assert "Run `sandbox build` first" in done.stderr
    assert server.requests == []


def test_cli_overlay_apply_refuses_a_bad_url(tmp_path: Path) -> None:
    write_overlay(tmp_path)

    done = sandbox(tmp_path, "overlay", "apply", "ftp://127.0.0.1:4000")

    assert done.exit_code == 8
    assert "http:// or https://" in done.stderr


def test_cli_build_checks_the_apply_url_before_building(tmp_path: Path) -> None:
    done = sandbox(tmp_path, "build", "--apply", "localhost:4000")

    assert done.exit_code == 8
    assert "http:// or https://" in done.stderr
    assert not (tmp_path / "cache").exists()  # nothing was built


def test_cli_a_second_apply_removes_what_the_first_set_and_shows_it_first(
    tmp_path: Path, serve: Callable[..., Started]
) -> None:
    url, server = serve(overlay={"codex": {"model": "o3"}})
    path = write_overlay(tmp_path)
    assert sandbox(tmp_path, "overlay", "apply", url).exit_code == 0
    smaller = {"codex": {"sandbox": {"image": IMAGE, "security": {"gvisor": False}}}}
    path.write_text(json.dumps(smaller))

    shown = sandbox(tmp_path, "overlay", "show", "--json")
    dry = sandbox(tmp_path, "overlay", "apply", url, "--dry-run")
    requests_before = len(server.requests)
    done = sandbox(tmp_path, "overlay", "apply", url)

    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout) == {
        "path": str(path),
        "overlay": smaller,
        "set": ["codex.sandbox.image", "codex.sandbox.security.gvisor"],
        "remove": {url: ["codex.sandbox.egress_allowlist", "codex.sandbox.extra_mounts"]},
    }
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"{url}: would set 2 keys: codex.sandbox.image, codex.sandbox.security.gvisor",
        f"{url}: would remove codex.sandbox.egress_allowlist, codex.sandbox.extra_mounts "
        "(set by an earlier apply, no longer in the overlay)",
    ]
    assert done.exit_code == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"applied: {path} to Risoluto at {url} (image {IMAGE}, 2 keys confirmed; removed "
        "codex.sandbox.egress_allowlist, codex.sandbox.extra_mounts)"
    ]
    assert server.overlay == {
        "codex": {"model": "o3", "sandbox": smaller["codex"]["sandbox"]},
        **applied.record(smaller),
    }
    assert requests_before == 4, "show sent nothing, --dry-run one GET (the first apply: 3)"
    plain = sandbox(tmp_path, "overlay", "show")
    assert json.loads(plain.stdout) == smaller
    assert f"{url}: removes nothing" in plain.stderr


def test_cli_apply_knows_what_was_set_however_the_url_is_spelled_and_from_any_checkout(
    tmp_path: Path, serve: Callable[..., Started]
) -> None:
    """Issue 27: the record of what an apply set lives on the server, not per URL string."""
    url, server = serve(overlay={"codex": {"model": "o3", "sandbox": {"memory": "8g"}}})
    first, second, third = (tmp_path / name for name in ("one", "two", "three"))
    for checkout in (first, second, third):
        checkout.mkdir()
        write_overlay(checkout)
    assert sandbox(first, "overlay", "apply", url).exit_code == 0  # 127.0.0.1
    smaller = {"codex": {"sandbox": {"image": IMAGE, "egress_allowlist": ["a.example"]}}}
    (second / "cache" / "overlay.json").write_text(json.dumps(smaller))
    localhost = url.replace("127.0.0.1", "localhost") + "/"

    dry = sandbox(second, "overlay", "apply", localhost, "--dry-run")
    done = sandbox(second, "overlay", "apply", localhost)

    assert dry.exit_code == 0, dry.stderr
    assert done.exit_code == 0, done.stderr
    removed = "codex.sandbox.extra_mounts, codex.sandbox.security.gvisor"
    assert f"would remove {removed} (set by an earlier apply" in dry.stdout
    assert f"removed {removed})" in done.stdout
    assert sandbox_of(server.overlay) == {"memory": "8g", **smaller["codex"]["sandbox"]}
    assert server.overlay["codex"]["model"] == "o3"  # the operator's keys stay

    smallest = {"codex": {"sandbox": {"image": IMAGE}}}  # a third checkout drops the allowlist
    (third / "cache" / "overlay.json").write_text(json.dumps(smallest))
    again = sandbox(third, "overlay", "apply", url)
    assert again.exit_code == 0, again.stderr
    assert "removed codex.sandbox.egress_allowlist)" in again.stdout
    assert sandbox_of(server.overlay) == {"memory": "8g", "image": IMAGE}
