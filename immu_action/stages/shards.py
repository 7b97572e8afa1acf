"""A run sharded over matrix jobs: the durations that balance the shards (from the results
stored with the last promoted digest), and the gather job's view of the run (every shard's
stored results for the digest, ``core.attestation.by_run`` and ``run_from``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from immu_action import output
from immu_action.adapters.registry.promotion import Registries
from immu_action.adapters.registry.results import stored_results
from immu_action.core.attestation import RunVerdict, by_run, run_from
from immu_action.core.context import GitHubContext
from immu_action.core.manifests import INDEX_TYPES
from immu_action.core.references import parse_reference
from immu_action.core.results import RunFailure, RunResult
from immu_action.core.sharding import Durations, durations_from
from immu_action.errors import BadInput, ExitCode, ImmuError
from immu_action.spec import Spec


def stored_durations(spec: Spec, *, insecure: bool,
                     registries: Registries | None = None) -> Durations:
    """Durations of the last promoted digest: the first fixed tag of ``promote.tags``
    (``latest``, ``main``...) whose digest has a passing stored run; none: an even split."""
    fixed = [t for t in (spec.promote.tags if spec.promote else ()) if "{" not in t]
    ref = parse_reference(spec.image.repository)
    try:
        client = (registries or Registries(insecure=insecure)).get(ref.host)
        for tag in fixed:
            digest = client.head_manifest(ref.repository, tag)
            if digest is None:
                continue
            passing = next((v for v in by_run(stored_results(client, ref.repository,
                                                             digest)[0]) if v.passed), None)
            if passing is not None:
                return durations_from([r.statement for r in passing.results],
                                      source=f"{spec.image.repository}:{tag}@{digest}")
    except ImmuError as e:
        output.warning(f"no stored durations to balance the shards ({e}); splitting evenly",
                       title="immu: shards")
    return Durations()


@dataclass(frozen=True, kw_only=True)
class Gathered:
    """The run the shards made, rebuilt from the registry, and its verdict."""

    result: RunResult
    verdict: RunVerdict | None


def gather(spec: Spec, image: str, *, shards: int, ctx: GitHubContext | None,
           run: str | None, insecure: bool, registries: Registries | None = None) -> Gathered:
    """Every shard's stored results for ``image`` (REPOSITORY@DIGEST) from run ``run`` (this
    Actions run by default): one RunResult for one report. A shard missing, or one that
    tested another digest (its results are not with this one), fails the run."""
    ref = parse_reference(image)
    own = parse_reference(spec.image.repository)
    if not ref.digest or (ref.host, ref.repository) != (own.host, own.repository):
        raise BadInput(f"image {image!r}: name the digest the shards tested, "
                       f"{spec.image.repository}@sha256:... (the build job's `image` output)")
    run_id = run or (ctx.run_id if ctx else None)
    if not run_id:
        raise BadInput("gathering needs the run whose shards to gather: run it in GitHub "
                       "Actions, or pass --run RUN_ID")
    client = (registries or Registries(insecure=insecure)).get(ref.host)
    manifest = client.get_manifest(ref.repository, ref.digest)
    found, notes = stored_results(client, ref.repository, ref.digest)
    for note in notes:
        output.log_to_stderr(f"ignored: {note}\n")
    verdict = next((v for v in by_run(found) if v.run == run_id), None)
    kind = "index" if manifest.media_type in INDEX_TYPES else "manifest"
    if verdict is None:
        result = RunResult(image_id="", repository=spec.image.repository, digest=ref.digest,
                           digest_kind=kind)
        return Gathered(result=_failed(result, f"no shard of run {run_id} stored results for "
                                       f"{ref.digest} (all {shards} missing)"), verdict=None)
    result = run_from(verdict.results, repository=spec.image.repository, digest=ref.digest,
                      digest_kind=kind)
    stored_total = {r.shard.total for r in verdict.results if r.shard}
    seen = {r.shard.index for r in verdict.results if r.shard}
    missing = [i for i in range(1, shards + 1) if i not in seen]
    if stored_total != {shards}:
        problem = (f"the shards stored results as {', '.join(map(str, sorted(stored_total)))} "
                   f"shard(s), the workflow asked for {shards}")
        return Gathered(result=_failed(result, problem), verdict=verdict)
    if missing:
        return Gathered(result=_failed(result, f"shard(s) {', '.join(map(str, missing))} of "
                                       f"{shards} stored no results for {ref.digest} in run "
                                       f"{run_id}: missing"), verdict=verdict)
    return Gathered(result=result, verdict=verdict)


def _failed(result: RunResult, message: str) -> RunResult:
    return replace(result, failure=RunFailure(stage="tests", message=message,
                                              exit_code=int(ExitCode.TESTS_FAILED)))
