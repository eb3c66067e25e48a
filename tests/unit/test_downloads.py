"""Downloads (net/downloads.py) against a real local server: checksums, retries, credentials."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from builder.core.errors import BuildError, CacheError, ResolutionError
from builder.net import downloads
from builder.net.downloads import fetch, get_json, get_text
from tests.unit.conftest import Web

DATA = b"the archive bytes\n" * 100
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(downloads, "RETRY", replace(downloads.RETRY, first_wait=0.05))


def test_lock_time_fetch_stores_the_file_under_its_digest(web: Web, tmp_path: Path) -> None:
    url = web.put("dist/tool.tar.gz", DATA)
    path = fetch(url, sha256=None, dest_dir=tmp_path / "dl", what="tool")
    assert path == tmp_path / "dl" / DIGEST
    assert path.read_bytes() == DATA
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [DIGEST]


def test_a_cached_file_is_used_without_the_network(web: Web, tmp_path: Path) -> None:
    url = web.put("tool", DATA)
    fetch(url, sha256=f"sha256:{DIGEST}", dest_dir=tmp_path, what="tool")
    (web.root / "tool").unlink()  # the server no longer has it; the cache must answer
    again = fetch(url, sha256=DIGEST.upper(), dest_dir=tmp_path, what="tool")
    assert again.read_bytes() == DATA
    assert web.hits("tool") == 1


def test_checksum_mismatch_names_url_digests_and_fix(web: Web, tmp_path: Path) -> None:
    url = web.put("node.tar.xz", DATA)
    wrong = "0" * 64
    with pytest.raises(BuildError) as caught:
        fetch(url, sha256=wrong, dest_dir=tmp_path / "dl", what="node")
    message = str(caught.value)
    assert caught.value.exit_code == 5
    assert url in message
    assert wrong in message
    assert DIGEST in message
    assert "sandbox lock --update node" in message
    assert list((tmp_path / "dl").iterdir()) == []  # neither the file nor a partial one


def test_not_found_fails_at_once(web: Web, tmp_path: Path) -> None:
    with pytest.raises(ResolutionError, match="not found \\(HTTP 404\\)") as caught:
        fetch(
            f"{web.url}/missing",
            sha256=None,
            dest_dir=tmp_path,
            what="kubectl",
            error=ResolutionError,
        )
    assert "kubectl" in str(caught.value)
    assert web.hits("missing") == 1


def test_a_server_error_is_retried_then_succeeds(web: Web, tmp_path: Path) -> None:
    url = web.put("flaky", DATA)
    web.failures["/flaky"] = [500, 503]
    path = fetch(url, sha256=DIGEST, dest_dir=tmp_path, what="tool")
    assert path.read_bytes() == DATA
    assert web.hits("flaky") == 3


def test_three_server_errors_give_up_with_a_clear_error(web: Web, tmp_path: Path) -> None:
    url = web.put("down", DATA)
    web.failures["/down"] = [502, 502, 502, 502]
    with pytest.raises(BuildError, match=r"after 3 attempts .*HTTP 502"):
        fetch(url, sha256=DIGEST, dest_dir=tmp_path, what="tool")
    assert web.hits("down") == 3


def test_an_unreachable_host_is_retried_then_reported(tmp_path: Path) -> None:
    with pytest.raises(ResolutionError, match=r"cannot download .* after 3 attempts"):
        get_text("http://127.0.0.1:9/index.json", what="node")


def test_auth_env_sends_a_bearer_token_and_never_shows_it(
    web: Web, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = web.put("private/tool", DATA)
    web.auth["/private/tool"] = "Bearer s3cret-token"
    monkeypatch.setenv("TOOL_TOKEN", "s3cret-token")
    path = fetch(url, sha256=None, dest_dir=tmp_path, what="tool", auth_env="TOOL_TOKEN")
    assert path.read_bytes() == DATA

    monkeypatch.setenv("TOOL_TOKEN", "wrong-token")
    with pytest.raises(BuildError, match="HTTP 401") as caught:
        fetch(url, sha256=None, dest_dir=tmp_path / "b", what="tool", auth_env="TOOL_TOKEN")
    assert "wrong-token" not in str(caught.value)
    assert "auth_env" in str(caught.value)


def test_auth_env_unset_names_the_variable(web: Web, tmp_path: Path) -> None:
    url = web.put("tool", DATA)
    with pytest.raises(BuildError, match="NO_SUCH_TOKEN_VAR"):
        fetch(url, sha256=None, dest_dir=tmp_path, what="tool", auth_env="NO_SUCH_TOKEN_VAR")
    assert web.hits("tool") == 0


def test_netrc_gives_basic_auth_for_its_host(web: Web, tmp_path: Path) -> None:
    home = Path.home()  # the web fixture's empty HOME
    (home / ".netrc").write_text("machine 127.0.0.1\n  login alice\n  password pa55\n")
    (home / ".netrc").chmod(0o600)
    url = web.put("index.json", '{"ok": true}')
    web.auth["/index.json"] = "Basic " + base64.b64encode(b"alice:pa55").decode()
    assert get_json(url, what="node") == {"ok": True}


def test_credentials_do_not_follow_a_redirect(web: Web, other_web: Web, tmp_path: Path) -> None:
    target = other_web.put("blob", DATA)
    web.redirects["/download"] = target
    (Path.home() / ".netrc").write_text("machine 127.0.0.1 login alice password pa55\n")
    path = fetch(f"{web.url}/download", sha256=DIGEST, dest_dir=tmp_path, what="tool")
    assert path.read_bytes() == DATA
    assert "Authorization" in web.requests[0][1]
    assert "Authorization" not in other_web.requests[0][1]


def test_get_json_refuses_a_page_that_is_not_json(web: Web) -> None:
    url = web.put("index.json", "<html>proxy login</html>")
    with pytest.raises(ResolutionError, match="did not return JSON") as caught:
        get_json(url, what="node")
    assert caught.value.exit_code == 4


def test_an_unwritable_cache_is_a_cache_error(web: Web, tmp_path: Path) -> None:
    url = web.put("tool", DATA)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheError, match="download cache"):
        fetch(url, sha256=None, dest_dir=blocker / "dl", what="tool")


_FETCH_MANY = """
import sys
from pathlib import Path
from builder.net.downloads import fetch
url, digest, dest = sys.argv[1:4]
for round in range(8):
    path = fetch(url, sha256=digest if round % 2 else None, dest_dir=Path(dest), what="tool")
    assert path.read_bytes().startswith(b"big"), path
"""


def test_projects_sharing_the_download_dir_at_once_never_corrupt_it(
    web: Web, tmp_path: Path
) -> None:
    """Four processes (say, builds of four projects) fetch into one download dir together."""
    big = b"big" + bytes(range(256)) * 20_000  # 5 MB, so the writes really overlap
    url = web.put("big.tar.gz", big)
    digest = hashlib.sha256(big).hexdigest()
    dest = tmp_path / "shared"
    workers = [
        subprocess.Popen([sys.executable, "-c", _FETCH_MANY, url, digest, str(dest)])
        for _ in range(4)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    assert sorted(p.name for p in dest.iterdir()) == [digest], "a partial file was left"
    assert hashlib.sha256((dest / digest).read_bytes()).hexdigest() == digest


def test_a_trickling_download_is_stopped_at_the_overall_limit_and_leaves_no_file(
    trickle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_NET_TIMEOUT", "1")
    monkeypatch.setenv("SANDBOX_STEP_TIMEOUT", "1.5")
    started = time.monotonic()
    with pytest.raises(BuildError) as caught:
        fetch(trickle, sha256=DIGEST, dest_dir=tmp_path / "dl", what="tools.bin.slow")
    seconds = time.monotonic() - started
    assert seconds < 3, f"the trickle went on for {seconds:.1f}s"
    message = str(caught.value)
    assert message.startswith(f"tools.bin.slow: downloading {trickle} was stopped after ")
    assert "bytes received (the limit of one download, SANDBOX_STEP_TIMEOUT=1.5)" in message
    assert list((tmp_path / "dl").iterdir()) == [], "a partial download was kept"
    with pytest.raises(ResolutionError, match=r"SANDBOX_STEP_TIMEOUT=1\.5"):
        get_text(trickle, what="runtime.node")
