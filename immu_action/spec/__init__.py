"""``immu.yml``: loading (``load``), the key table (``rules``), value kinds (``kinds``), the
shapes they build (``shapes``), YAML node access (``nodes``) and the JSON Schema generated from
the rules (``immu.schema.json``). The public API is re-exported here."""

from immu_action.spec.load import (
    BuildSpec,
    HealthcheckSpec,
    ImageSpec,
    Problem,
    PromoteSpec,
    SecretSpec,
    ServiceSpec,
    Spec,
    SuiteSpec,
    load_spec,
    validate_file,
    validate_text,
)

__all__ = [
    "BuildSpec", "HealthcheckSpec", "ImageSpec", "Problem", "PromoteSpec", "SecretSpec",
    "ServiceSpec",
    "Spec", "SuiteSpec", "load_spec", "validate_file", "validate_text",
]
