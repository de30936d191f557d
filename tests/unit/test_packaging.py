"""Packaging, checked statically (there is no Docker engine or registry here): the licence, the
classifiers, the dependency lock and the Dockerfile's pins and labels (issue 22)."""

from __future__ import annotations

import re

import tomllib
from packaging.requirements import Requirement
from trove_classifiers import classifiers as KNOWN_CLASSIFIERS

from tests.support.paths import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
LOCK = (REPO / "requirements.lock").read_text(encoding="utf-8")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version and " " not in line, f"requirements.lock: {line!r} is not NAME==VERSION"
            pins[canonical(name)] = version
    return pins


def test_the_licence_is_apache_2_in_full_and_declared():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
    assert PYPROJECT["license"] == "Apache-2.0"
    assert PYPROJECT["license-files"] == ["LICENSE"]


def test_the_classifiers_are_real_and_claim_no_licence_or_url():
    found = PYPROJECT["classifiers"]
    assert found and set(found) <= KNOWN_CLASSIFIERS, set(found) - KNOWN_CLASSIFIERS
    assert not [c for c in found if c.startswith("License ::")], "PEP 639: the licence expression says it"
    assert "urls" not in PYPROJECT, "no project URL is published: none is claimed"


def test_the_lock_pins_every_dependency_the_image_installs_within_pyproject():
    pins = locked()
    wanted = [Requirement(r) for r in PYPROJECT["dependencies"]]
    wanted += [Requirement(r) for extra in ("postgresql", "mysql") for r in PYPROJECT["optional-dependencies"][extra]]
    for req in wanted:
        name = canonical(req.name)
        assert name in pins, f"requirements.lock pins no {req.name}: run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])
        for extra in req.extras:  # psycopg[binary] brings psycopg-binary
            assert canonical(f"{req.name}-{extra}") in pins, f"requirements.lock pins no {req.name}-{extra}"


def test_the_dockerfile_pins_the_base_by_a_build_argument_and_labels_the_image():
    first_from = DOCKERFILE.index("\nFROM ")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", DOCKERFILE[:first_from], re.M)
    froms = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert froms and set(froms) == {"${PYTHON_IMAGE}"}, froms
    assert not re.search(r"sha256:[0-9a-f]{8,}", DOCKERFILE), "a digest is the user's to resolve, never written here"
    assert "--build-arg PYTHON_IMAGE=python:3.11-slim@sha256:" in DOCKERFILE, "the digest pin is documented"
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[\w.]+)="([^"]*)"', DOCKERFILE))
    assert {"title", "description", "licenses", "version", "revision", "created", "base.name"} <= {
        key.removeprefix("org.opencontainers.image.") for key in labels}
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert not [value for value in labels.values() if "://" in value], "no URL label"
    ignore = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {"!requirements.lock", "!LICENSE"} <= set(ignore), "the lock and the licence reach the build context"
    assert re.search(r"^COPY pyproject\.toml README\.md\* LICENSE \./$", DOCKERFILE, re.M)


def test_the_image_build_writes_the_revision_into_the_package_before_the_wheel():
    """.git is not in the build context: build_info's revision reaches the image only through the
    REVISION build argument written to pipeline_exporter/REVISION (a package data file) in the
    build stage, before `pip wheel`."""
    build_stage = DOCKERFILE.split("FROM ${PYTHON_IMAGE}\n")[0]
    assert "ARG REVISION" in build_stage
    written = build_stage.index("> pipeline_exporter/REVISION")
    assert written < build_stage.index("pip wheel")
    assert "REVISION" in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["pipeline_exporter"]
