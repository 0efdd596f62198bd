"""The Maven-built Kafka classpath: the generated pom, the cache location, and reuse."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline.devstack import kafka_dist
from pipeline.devstack.errors import ToolMissingError

NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def test_pom_declares_the_broker_and_a_single_logging_binding() -> None:
    root = ET.fromstring(kafka_dist.render_pom("3.9.1"))
    deps = {
        (d.findtext("m:groupId", namespaces=NS), d.findtext("m:artifactId", namespaces=NS)): d
        for d in root.iterfind("m:dependencies/m:dependency", NS)
    }
    broker = deps[("org.apache.kafka", "kafka_2.13")]
    assert broker.findtext("m:version", namespaces=NS) == "3.9.1"
    exclusions = broker.iterfind("m:exclusions/m:exclusion", NS)
    excluded = {e.findtext("m:artifactId", namespaces=NS) for e in exclusions}
    assert {"logback-classic", "logback-core"} <= excluded
    assert ("org.slf4j", "slf4j-reload4j") in deps
    assert root.findtext("m:packaging", namespaces=NS) == "pom"


def test_cache_root_honours_sep_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEP_CACHE", str(tmp_path))
    assert kafka_dist.kafka_home("3.9.1") == tmp_path / "kafka-3.9.1"


def test_missing_maven_is_a_named_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEP_CACHE", str(tmp_path))  # empty cache: a fetch is needed
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(ToolMissingError) as info:
        kafka_dist.ensure_kafka_jars()
    assert info.value.tool == "mvn"


@pytest.mark.slow
def test_jars_are_fetched_once_then_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    libs = kafka_dist.ensure_kafka_jars()  # may fetch (about 20 s on a cold Maven cache)
    names = {p.name for p in libs.glob("*.jar")}
    assert f"kafka_2.13-{kafka_dist.KAFKA_VERSION}.jar" in names
    assert f"kafka-clients-{kafka_dist.KAFKA_VERSION}.jar" in names
    assert not any(n.startswith("logback-") for n in names)
    # A second call must not need Maven at all: the marker says the cache is complete.
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert kafka_dist.ensure_kafka_jars() == libs
