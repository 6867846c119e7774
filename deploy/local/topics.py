#!/usr/bin/env python3
"""Reads deploy/topics.toml, validates it, and prints one topic a line for PlatformAdmin:

    NAME <TAB> PARTITIONS <TAB> REPLICATION <TAB> key=value;key=value

Exits 1 with a message naming the topic and the field when the manifest is wrong.
"""

import re
import sys
import tomllib

NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
KNOWN = {"name", "partitions", "replication", "key", "retention", "cleanup", "configs", "doc"}


def fail(message):
    print(f"error: deploy/topics.toml: {message}", file=sys.stderr)
    sys.exit(1)


def retention_ms(where, value):
    if value == "forever":
        return -1
    match = DURATION.match(str(value))
    if not match:
        fail(f'{where}: retention "{value}" is not "<n>ms|s|m|h|d" or "forever"')
    return int(match.group(1)) * UNIT_MS[match.group(2)]


def topics(path):
    with open(path, "rb") as f:
        try:
            manifest = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            fail(f"not valid TOML: {e}")
    defaults = manifest.get("defaults", {})
    seen = set()
    for i, topic in enumerate(manifest.get("topic", [])):
        where = f"topic #{i + 1} ({topic.get('name', 'no name')})"
        unknown = set(topic) - KNOWN
        if unknown:
            fail(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        name = topic.get("name")
        if not name or not NAME.match(name):
            fail(f"{where}: name must be 1-249 of [a-zA-Z0-9._-]")
        if name in seen:
            fail(f"{where}: declared twice")
        seen.add(name)
        if not topic.get("key"):
            fail(f"{where}: say which id keys its records (key = ...)")
        field = lambda k: topic.get(k, defaults.get(k))
        partitions, replication = field("partitions"), field("replication")
        for label, value in (("partitions", partitions), ("replication", replication)):
            if not isinstance(value, int) or value < 1:
                fail(f"{where}: {label} must be a positive integer")
        cleanup = field("cleanup")
        if cleanup not in ("delete", "compact", "compact,delete"):
            fail(f'{where}: cleanup must be "delete", "compact" or "compact,delete"')
        configs = dict(defaults.get("configs", {}))
        configs.update(topic.get("configs", {}))
        configs["cleanup.policy"] = cleanup
        configs["retention.ms"] = str(retention_ms(where, field("retention")))
        yield name, partitions, replication, configs


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "deploy/topics.toml"
    for name, partitions, replication, configs in topics(path):
        rendered = ";".join(f"{k}={v}" for k, v in sorted(configs.items()))
        print(f"{name}\t{partitions}\t{replication}\t{rendered}")


if __name__ == "__main__":
    main()
