"""actions/verify.py: where a rebuild and the image it checks differ, and how that is said.

The rebuild itself is the executor's (tests/unit/test_execute.py) and the whole command runs
against a real registry and a second daemon in tests/integration/test_verify.py; here the
comparison runs on real layer tars with a source standing in for the registry or engine.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.actions import verify
from builder.actions.verify import LayerDifference, VerifyResult, default_ref
from builder.core.errors import OverlayError
from builder.core.keys import content_digest
from builder.store.cache import Cache
from tests.unit.clirun import sandbox


def _layer(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass
class _Source:
    """REF as the registry or the engine would give it: its layers' bytes and a config."""

    layers: list[bytes]
    ref: str = "127.0.0.1:5000/acme/sandbox:1"

    @property
    def config(self) -> bytes:
        return json.dumps({"rootfs": {"diff_ids": self.diff_ids}}).encode()

    @property
    def image_id(self) -> str:
        return content_digest(self.config)

    @property
    def diff_ids(self) -> list[str]:
        return [content_digest(la) for la in self.layers]

    def layer(self, index: int, dest: Path) -> Path:
        dest.write_bytes(self.layers[index])
        return dest


def _cached(cache: Cache, data: bytes) -> str:
    diff_id = content_digest(data)
    cache.layer_path(diff_id).write_bytes(data)
    return diff_id


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    made = Cache(tmp_path / "cache", store=tmp_path / "store")
    made.ensure()
    return made


def test_the_first_differing_layer_is_named_by_node_with_its_files(
    cache: Cache, tmp_path: Path
) -> None:
    base, system = _layer({"etc/os": b"deb"}), _layer({"usr/bin/jq": b"jq 1.6"})
    tampered = _layer({"usr/bin/jq": b"jq 1.6 + evil"})
    ours = [("base", _cached(cache, base)), ("system", _cached(cache, system))]
    found = verify._first_difference(ours, _Source([base, tampered]), cache=cache, work=tmp_path)
    assert found is not None
    assert (found.node, found.index) == ("system", 1)
    assert (found.ours, found.theirs) == (content_digest(system), content_digest(tampered))
    assert [f.path for f in found.files] == ["usr/bin/jq"]


def test_equal_layers_give_no_difference_and_a_missing_one_lists_every_file(
    cache: Cache, tmp_path: Path
) -> None:
    base, extra = _layer({"etc/os": b"deb"}), _layer({"opt/x": b"x", "opt/y": b"y"})
    ours = [("base", _cached(cache, base))]
    same = verify._first_difference(ours, _Source([base]), cache=cache, work=tmp_path)
    assert same is None
    more = verify._first_difference(ours, _Source([base, extra]), cache=cache, work=tmp_path)
    assert more is not None
    assert more.node == verify.EXTRA
    assert more.ours is None
    assert [f.path for f in more.files] == ["opt/x", "opt/y"]


def test_config_keys_name_what_differs_inside_config_too() -> None:
    ours = {"created": "1970", "config": {"Env": ["A=1"], "User": "agent"}, "os": "linux"}
    theirs = {"created": "2024", "config": {"Env": ["A=2"], "User": "agent"}, "os": "linux"}
    assert verify._config_keys(ours, theirs) == ["config.Env", "created"]


def _result(**extra: object) -> VerifyResult:
    return VerifyResult(ref="r", expected="sha256:a", found="sha256:b", nodes=[], **extra)  # type: ignore[arg-type]


def test_the_text_names_the_node_layer_and_files() -> None:
    from builder.store.contents import FileDifference, FileInfo

    info = FileInfo(kind="file", size=3, mode=0o644, uid=0, gid=0, sha256="sha256:00")
    layer = LayerDifference(
        node="system",
        index=1,
        ours="sha256:1",
        theirs="sha256:2",
        files=[FileDifference(path="usr/bin/jq", ours=info, theirs=None)],
    )
    text = _result(layer=layer).text()
    assert "#1 of system" in text
    assert "usr/bin/jq: rebuilt file 3 B 0644 0:0" in text
    assert "checked absent" in text
    assert _result(config_keys=["config.Env"]).text().endswith("config.Env")
    same = VerifyResult(ref="r", expected="sha256:a", found="sha256:a", nodes=[])
    assert same.same
    assert same.text().startswith("verified")
    assert _result(layer=layer).to_json()["difference"]["files"][0]["path"] == "usr/bin/jq"


def test_the_default_ref_is_what_the_overlay_pins(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.json"
    with pytest.raises(OverlayError, match="sandbox build"):
        default_ref(overlay)
    overlay.write_text(json.dumps({"codex": {"sandbox": {"image": "h:5000/n@sha256:1"}}}))
    assert default_ref(overlay) == "h:5000/n@sha256:1"


def test_the_command_exits_10_after_printing_the_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sandbox.toml").write_text('[image]\nname = "a/b"\n[base]\nimage = "x"\n')
    monkeypatch.setattr("builder.actions.build.fresh_lock", lambda spec: None)
    layer = LayerDifference(node="system", index=1, ours="sha256:1", theirs=None, files=[])
    monkeypatch.setattr(verify, "verify_image", lambda **kw: _result(layer=layer))
    run = sandbox("-f", tmp_path / "sandbox.toml", "verify", "--json", "h:5000/a/b:1")
    assert run.exit_code == 10, run.stderr
    assert json.loads(run.stdout)["difference"]["node"] == "system"
    assert "differs in system" in run.stderr
    monkeypatch.setattr(
        verify,
        "verify_image",
        lambda **kw: VerifyResult(ref="r", expected="sha256:a", found="sha256:a", nodes=[]),
    )
    run = sandbox("-f", tmp_path / "sandbox.toml", "verify", "h:5000/a/b:1")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith("verified")
