#!/usr/bin/env python3
"""Confluent's Python serializer and deserializer, driven by tests/python_interop.rs.

    interop.py encode TOPIC SCHEMA_FILE [MODE]  < value.json   prints the Confluent-framed bytes, hex
    interop.py decode TOPIC HEX                                prints the decoded value as JSON

MODE is how the serializer finds the schema's id:
    register  auto.register.schemas=true (the default): registers SCHEMA_FILE's text, or gets
              the id of the version the subject already has
    lookup    auto.register.schemas=false, as production producers run: looks the schema up
              by its text, which is SCHEMA_FILE's as compact JSON (what Java's Schema.toString()
              sends), not the text that was registered
    latest    auto.register.schemas=false, use.latest.version=true: the subject's latest version

Subjects follow TopicRecordNameStrategy, as in the Rust codec. The registry is
$FTGO_SCHEMA_REGISTRY__URL. Times print as epoch milliseconds, UUIDs as strings, so the Rust
side compares plain JSON.
"""

import datetime
import json
import os
import sys
import uuid

from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def plain(value):
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def registry_settings():
    """The registry as the Rust clients reach it: FTGO_SCHEMA_REGISTRY__URL, and the principal
    of FTGO_SCHEMA_REGISTRY__USERNAME with FTGO_SCHEMA_REGISTRY__PASSWORD(_FILE), if set."""
    settings = {"url": os.environ["FTGO_SCHEMA_REGISTRY__URL"]}
    user = os.environ.get("FTGO_SCHEMA_REGISTRY__USERNAME")
    if user:
        password = os.environ.get("FTGO_SCHEMA_REGISTRY__PASSWORD")
        if password is None:
            with open(os.environ["FTGO_SCHEMA_REGISTRY__PASSWORD_FILE"]) as f:
                password = f.read().rstrip("\n")
        settings["basic.auth.user.info"] = f"{user}:{password}"
    return settings


def main():
    client = SchemaRegistryClient(registry_settings())
    command, topic = sys.argv[1], sys.argv[2]
    context = SerializationContext(topic, MessageField.VALUE)
    if command == "encode":
        with open(sys.argv[3]) as f:
            schema = f.read()
        mode = sys.argv[4] if len(sys.argv) > 4 else "register"
        conf = {"subject.name.strategy": topic_record_subject_name_strategy}
        if mode == "register":
            conf["auto.register.schemas"] = True
        elif mode in ("lookup", "latest"):
            schema = json.dumps(json.loads(schema), separators=(",", ":"))
            conf["auto.register.schemas"] = False
            conf["use.latest.version"] = mode == "latest"
        else:
            sys.exit(f"unknown mode {mode}: register, lookup or latest")
        serializer = AvroSerializer(client, schema, conf=conf)
        print(serializer(json.load(sys.stdin), context).hex())
    elif command == "decode":
        deserializer = AvroDeserializer(client)
        print(json.dumps(plain(deserializer(bytes.fromhex(sys.argv[3]), context)), sort_keys=True))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
