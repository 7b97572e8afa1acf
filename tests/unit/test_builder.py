"""The builder's choices without an engine: where buildx is found, which Dockerfiles need
BuildKit, and the buildx command line (never a secret value in it)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from immu_action.adapters.docker.builder import (
    Cache,
    ExportWatch,
    buildkit_only,
    command,
    find_buildx,
)
from immu_action.errors import BadInput
from immu_action.spec import BuildSpec, SecretSpec


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_buildx_is_found_where_the_docker_cli_finds_plugins(tmp_path: Path) -> None:
    plugin = executable(tmp_path / "cfg" / "cli-plugins" / "docker-buildx")
    env = {"DOCKER_CONFIG": str(tmp_path / "cfg"), "PATH": "/nonexistent", "HOME": str(tmp_path)}
    assert find_buildx(env) == str(plugin)
    assert find_buildx({**env, "IMMU_BUILDX": "off"}) is None  # the engine API, by choice
    other = executable(tmp_path / "elsewhere" / "buildx")
    assert find_buildx({**env, "IMMU_BUILDX": str(other)}) == str(other)
    with pytest.raises(BadInput, match="IMMU_BUILDX=/nope: not an executable"):
        find_buildx({**env, "IMMU_BUILDX": "/nope"})


@pytest.mark.parametrize(("line", "what"), [
    ("RUN --mount=type=cache,target=/root/.cache/pip pip install -r req.txt", "RUN --mount"),
    ("COPY --chmod=755 run.sh /run.sh", "COPY/ADD --chmod/--link"),
    ("COPY --link . /app", "COPY/ADD --chmod/--link"),
    ("RUN <<EOF", "a heredoc"),
    ("FROM --platform=$BUILDPLATFORM golang AS build", "$BUILDPLATFORM/$TARGETPLATFORM"),
    ("# syntax=docker/dockerfile:1", "a # syntax= directive"),
])
def test_buildkit_only_names_the_line(tmp_path: Path, line: str, what: str) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM scratch\n{line}\n")
    assert buildkit_only(dockerfile) == f"Dockerfile:2 uses {what}"


def test_a_classic_dockerfile_needs_no_buildkit(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.12\nCOPY . /app\nRUN pip install -r /app/req.txt\n"
                          "# a comment about --mount\nCMD [\"python\", \"-m\", \"app\"]\n")
    assert buildkit_only(dockerfile) is None


def test_the_command_names_secrets_by_source_never_by_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_TOKEN", "the-value-itself")
    (tmp_path / "netrc").write_text("machine x password also-secret\n")
    spec = BuildSpec(context=tmp_path, build_args={"A": "1"}, labels={"team": "x"},
                     target="runtime",
                     secrets={"pip": SecretSpec(env="PIP_TOKEN"),
                              "netrc": SecretSpec(file=tmp_path / "netrc")})
    cmd = command("/bin/buildx", spec, labels={"org.opencontainers.image.revision": "abc"},
                  tag="r:t", iidfile=tmp_path / "iid",
                  cache=Cache(ref="reg.test/a:cache", export=True), epoch=1700000000)
    text = " ".join(cmd)
    assert "the-value-itself" not in text and "also-secret" not in text
    at = cmd.index("id=pip,env=PIP_TOKEN")
    assert cmd[at - 1] == "--secret"
    assert f"id=netrc,src={tmp_path / 'netrc'}" in cmd
    assert "--cache-from" in cmd and "type=registry,ref=reg.test/a:cache" in cmd
    assert "type=registry,ref=reg.test/a:cache,mode=max" in cmd
    assert "SOURCE_DATE_EPOCH=1700000000" in cmd and "--target" in cmd
    assert cmd[-1] == str(tmp_path)
    inline = command("/bin/buildx", spec, labels={}, tag=None, iidfile=tmp_path / "iid",
                     cache=Cache(ref="reg.test/a:cache", export=True, mode="inline"), epoch=None)
    assert "type=inline" in inline and not any("SOURCE_DATE_EPOCH" in a for a in inline)
    pulled = command("/bin/buildx", spec, labels={}, tag=None, iidfile=tmp_path / "iid",
                     cache=Cache(ref="reg.test/a:cache", export=False), epoch=None)
    assert "--cache-from" in pulled and "--cache-to" not in pulled  # a PR imports only


def test_the_build_itself_never_pushes(tmp_path: Path) -> None:
    """The image goes to the engine's store only; the push stage pushes the staging tag.
    With the docker driver a push in the build is a push twice (BuildKit's, then buildx's
    own "with docker"), and every exporter name would be pushed, the local ``sha-<commit>``
    tag (a name a promotion may own) included."""
    spec = BuildSpec(context=tmp_path, build_args={}, labels={})
    cmd = command("/bin/buildx", spec, labels={}, tag="reg.test/a:sha-abc",
                  iidfile=tmp_path / "iid", cache=Cache(ref="reg.test/a:cache", export=True),
                  epoch=None)
    assert "--load" in cmd and "reg.test/a:sha-abc" in cmd
    assert "--push" not in cmd and "--output" not in cmd and not any("push=" in a for a in cmd)


def test_a_missing_secret_source_is_bad_input(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    spec = BuildSpec(context=tmp_path, build_args={}, labels={},
                     secrets={"tok": SecretSpec(env="NOT_SET_ANYWHERE")})
    with pytest.raises(BadInput, match=r"image.secrets.tok: environment variable "
                                       r"NOT_SET_ANYWHERE is not set"):
        command("/bin/buildx", spec, labels={}, tag=None, iidfile=tmp_path / "i", cache=None,
                epoch=None)
    spec = BuildSpec(context=tmp_path, build_args={}, labels={},
                     secrets={"f": SecretSpec(file=tmp_path / "absent")})
    with pytest.raises(BadInput, match=r"image.secrets.f: file .*absent does not exist"):
        command("/bin/buildx", spec, labels={}, tag=None, iidfile=tmp_path / "i", cache=None,
                epoch=None)
    assert os.environ.get("NOT_SET_ANYWHERE") is None


def test_the_engine_is_docker_host_else_the_clis_current_context(tmp_path: Path) -> None:
    """As the docker CLI picks it: DOCKER_HOST wins, then DOCKER_CONTEXT or currentContext."""
    import hashlib
    import json

    from immu_action.adapters.docker.engine import engine_host
    from immu_action.errors import EngineError

    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"side").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({
        "Name": "side", "Metadata": {},
        "Endpoints": {"docker": {"Host": "unix:///run/side.sock", "SkipTLSVerify": False}}}))
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "side"}))
    env = {"DOCKER_CONFIG": str(tmp_path)}
    old = os.environ.get("DOCKER_CONFIG")
    os.environ["DOCKER_CONFIG"] = str(tmp_path)  # docker-py reads the config from here
    try:
        assert engine_host(env) == "unix:///run/side.sock"
        assert engine_host({**env, "DOCKER_HOST": "tcp://1.2.3.4:2375"}) == "tcp://1.2.3.4:2375"
        assert engine_host({**env, "DOCKER_CONTEXT": "default"}) is None
        with pytest.raises(EngineError, match="docker context 'gone' does not exist"):
            engine_host({**env, "DOCKER_CONTEXT": "gone"})
    finally:
        if old is None:
            del os.environ["DOCKER_CONFIG"]
        else:
            os.environ["DOCKER_CONFIG"] = old


# buildx 0.13's plain progress (printed every 100 ms) of the example's fresh-engine rebuild
# after an application change (Docker 26, containerd store, registry cache imported and
# exported with mode=max).
FRESH_REBUILD = (Path(__file__).parent / "data" / "buildx-fresh-rebuild.log").read_text()
MANIFEST = "sha256:33e2a6bd03e36acac0ba4308035727072e1e12e32f2938267f20b78edb7a47bf"


def watched(log: str) -> tuple[list[str], str | None]:
    """What ExportWatch says: the image's names, and the line it fired at (None: never)."""
    watch = ExportWatch()
    for line in log.splitlines(keepends=True):
        if watch.feed(line):
            return watch.ids, line.strip()
    return watch.ids, None


def test_the_export_is_seen_when_the_cache_export_starts() -> None:
    ids, fired = watched(FRESH_REBUILD)
    assert fired == "#16 exporting cache to registry"
    assert ids == [MANIFEST]


def test_the_export_is_seen_in_a_log_printed_as_it_goes() -> None:
    """The same rebuild with TTY_DISPLAY_RATE=25 (as immu runs buildx): a step's title is
    printed again when its lines resume (#12 here: CACHED, then its layers fetched)."""
    log = (Path(__file__).parent / "data" / "buildx-fresh-rebuild-streamed.log").read_text()
    assert log.count("#12 [6/8] COPY pytest.ini ./") == 2
    assert watched(log) == (
        ["sha256:183bcf2c765bba2185d461a61dcca7fe7936662488cad97e5192df57c36b7615"],
        "#16 exporting cache to registry")


def test_an_index_is_named_before_its_manifest() -> None:
    index = "sha256:" + "1" * 64
    log = FRESH_REBUILD.replace("#15 naming to", f"#15 exporting manifest list {index} done\n"
                                "#15 naming to")
    assert watched(log) == ([index, MANIFEST], "#16 exporting cache to registry")


@pytest.mark.parametrize(("old", "new"), [
    # no registry cache was there: its layers (the base image's too) are new to the registry
    ("#6 inferred cache manifest type: application/vnd.oci.image.index.v1+json done\n"
     "#6 DONE 0.0s", "#6 ERROR: failed to configure registry cache importer: not found"),
    # a RUN step ran again (its output, timed): its new layer can be any size
    ("#10 CACHED", "#10 0.544 Collecting pg8000\n#10 DONE 3.1s"),
    # ... or ran without a word
    ("#10 CACHED", "#10 DONE 3.1s"),
    # a step that copies from another stage or image, or adds a URL, ran
    ("#13 [7/8] COPY app/ app/", "#13 [7/8] COPY --from=builder /out app/"),
    ("#13 [7/8] COPY app/ app/", "#13 [7/8] ADD https://example.com/big.tar app/"),
    # a large build context
    ("#7 transferring context: 21.51kB done", "#7 transferring context: 9.01MB 0.4s done"),
])
def test_no_early_push_when_the_cache_export_would_upload_much(old: str, new: str) -> None:
    assert old in FRESH_REBUILD
    assert watched(FRESH_REBUILD.replace(old, new))[1] is None


def test_nothing_is_seen_when_nothing_follows_the_export() -> None:
    """Inline cache or none: buildx ends with the export."""
    log = FRESH_REBUILD[:FRESH_REBUILD.index("#16 exporting cache")]
    assert watched(log)[1] is None


def test_the_export_says_which_names_it_gave() -> None:
    """Each ``--tag``, as buildx's export reports it (the push then needs no tag call)."""
    first = "127.0.0.1:45385/bench/ours:sha-8553c5376cf539ea4688f28d1ba8ea00f52bddc7"
    second = "127.0.0.1:45385/bench/ours:immu-staging-1"
    log = FRESH_REBUILD.replace(f"#15 naming to {first} done\n",
                                f"#15 naming to {first} done\n#15 naming to {second} done\n")
    watch = ExportWatch()
    assert any(watch.feed(line) for line in log.splitlines(keepends=True))
    assert watch.names == [first, second]


def test_a_second_tag_names_the_image_too(tmp_path: Path) -> None:
    spec = BuildSpec(context=tmp_path, build_args={}, labels={})
    cmd = command("/bin/buildx", spec, labels={}, tag="r.test/a:sha-1", iidfile=tmp_path / "i",
                  cache=None, epoch=None, also_tag="r.test/a:staging-1")
    tags = [cmd[i + 1] for i, word in enumerate(cmd) if word == "--tag"]
    assert tags == ["r.test/a:sha-1", "r.test/a:staging-1"]
