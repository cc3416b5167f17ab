"""PROTOBUF: Google's own `protoc` (grpcio-tools) parses `.proto` text; the check is ours.

A schema arrives as `.proto` text (KafkaJS's registry package, curl) or as a base64
FileDescriptorProto (confluent-kafka's ProtobufSerializer). Text is compiled by protoc from
grpcio-tools, in a child process: its errors are printed on the process's stderr, which a child
lets us capture and return as the 42201 message, and a compiler crash cannot take the broker with
it. Results are cached by content, so a schema is compiled once per process.

Text is stored as registered. A base64 descriptor is stored as the `.proto` text
protobuf_text.py renders from it, as Confluent does, when protoc compiles that text back to the
same descriptor (else as the base64 it came in). `format=serialized` always answers base64.

Compatibility (ours: no library compares descriptors) follows Confluent's Protobuf rules: fields
are matched by number; a field whose wire type changes incompatibly (outside the groups the wire
format reads interchangeably: int32/uint32/int64/uint64/bool, sint32/sint64, fixed32/sfixed32,
fixed64/sfixed64, string/bytes) or whose message/enum type changes is incompatible - this is what
reusing a removed field's number for another type breaks; so is a field moved into or out of a
oneof, a singular field turned repeated (or back), a required field added or removed (proto2), a
message the writer has that the reader removed, and a changed package. Adding and removing
optional fields is compatible both ways.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError

from klamm.schema.errors import InvalidSchemaError
from klamm.schema.formats.protobuf_text import render

MAIN_FILE = "klamm_schema.proto"  # the name the registered schema compiles under
PROTOC_TIMEOUT = 30.0  # seconds: protoc takes ~0.1 s; far longer means something is wrong
FDP = descriptor_pb2.FieldDescriptorProto

_WIRE_GROUPS = [
    {FDP.TYPE_INT32, FDP.TYPE_UINT32, FDP.TYPE_INT64, FDP.TYPE_UINT64, FDP.TYPE_BOOL},
    {FDP.TYPE_SINT32, FDP.TYPE_SINT64},
    {FDP.TYPE_FIXED32, FDP.TYPE_SFIXED32},
    {FDP.TYPE_FIXED64, FDP.TYPE_SFIXED64},
    {FDP.TYPE_STRING, FDP.TYPE_BYTES},
]


class ProtobufSchema:
    schema_type = "PROTOBUF"

    def __init__(
        self,
        text: str,
        descriptor: descriptor_pb2.FileDescriptorProto,
        deps: tuple[descriptor_pb2.FileDescriptorProto, ...],
    ) -> None:
        self.text = text
        self.descriptor = descriptor  # the registered file
        self.deps = deps  # its imports, in dependency order (for building a message class)

    def canonical(self) -> str:
        return self.text

    def normalized(self) -> str:
        return self.serialized()

    def serialized(self) -> str:
        return base64.standard_b64encode(self.descriptor.SerializeToString()).decode("ascii")

    def incompatibilities(self, writer: Any) -> list[str]:
        if not isinstance(writer, ProtobufSchema):
            return [f"Incompatible schema type {writer.schema_type} (reader is PROTOBUF)"]
        out: list[str] = []
        r, w = self.descriptor, writer.descriptor
        if r.package != w.package:
            out.append(f"package changed from {w.package!r} to {r.package!r} (PACKAGE_CHANGED)")
        rmsgs, wmsgs = _messages(r), _messages(w)
        for name, wmsg in wmsgs.items():
            rmsg = rmsgs.get(name)
            if rmsg is None:
                out.append(f"message {name} removed (MESSAGE_REMOVED)")
            else:
                _compare_message(name, rmsg, wmsg, out)
        return out


def _messages(fd: descriptor_pb2.FileDescriptorProto) -> dict[str, descriptor_pb2.DescriptorProto]:
    out: dict[str, descriptor_pb2.DescriptorProto] = {}

    def walk(prefix: str, msgs: Any) -> None:
        for m in msgs:
            if m.options.map_entry:
                continue
            out[prefix + m.name] = m
            walk(prefix + m.name + ".", m.nested_type)

    walk("", fd.message_type)
    return out


def _compare_message(name: str, r: Any, w: Any, out: list[str]) -> None:
    rfields = {f.number: f for f in r.field}
    for wf in w.field:
        rf = rfields.get(wf.number)
        where = f"{name}.{wf.name} (#{wf.number})"
        if rf is None:
            if wf.label == FDP.LABEL_REQUIRED:
                out.append(f"{where}: required field removed (REQUIRED_FIELD_REMOVED)")
            continue
        if rf.type != wf.type and not any(rf.type in g and wf.type in g for g in _WIRE_GROUPS):
            out.append(f"{where}: type changed to {rf.name} of another kind (FIELD_KIND_CHANGED)")
        elif rf.type_name != wf.type_name:
            out.append(
                f"{where}: type {wf.type_name} changed to {rf.type_name} (FIELD_NAMED_TYPE_CHANGED)"
            )
        if (rf.label == FDP.LABEL_REPEATED) != (wf.label == FDP.LABEL_REPEATED):
            out.append(f"{where}: repeated label changed (FIELD_LABEL_CHANGED)")
        in_r, in_w = _in_oneof(rf), _in_oneof(wf)
        if in_r != in_w:
            out.append(f"{where}: moved {'into' if in_r else 'out of'} a oneof (ONEOF_CHANGED)")
    wnumbers = {f.number for f in w.field}
    for rf in r.field:
        if rf.number not in wnumbers and rf.label == FDP.LABEL_REQUIRED:
            out.append(f"{name}.{rf.name}: required field added (REQUIRED_FIELD_ADDED)")


def _in_oneof(field: Any) -> bool:
    return field.HasField("oneof_index") and not field.proto3_optional


def parse_protobuf(text: str, references: Mapping[str, Any]) -> ProtobufSchema:
    # Each reference as the file its import names, after that file's own imports.
    deps: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for name, ref in references.items():
        if isinstance(ref, ProtobufSchema):
            for dep in ref.deps:
                deps.setdefault(dep.name, dep)
            renamed = descriptor_pb2.FileDescriptorProto()
            renamed.CopyFrom(ref.descriptor)
            renamed.name = name
            deps[name] = renamed
    given = descriptor_pb2.FileDescriptorSet()
    given.file.extend(d for d in deps.values() if not d.name.startswith("google/protobuf/"))
    fd = _from_base64(text)
    if fd is not None:
        # Stored as .proto text, as Confluent does, when the text compiles back to this very
        # descriptor; else as the base64 it came in.
        rendered = render(fd)
        if rendered is not None:
            try:
                files = _compile(rendered, given.SerializeToString())
            except InvalidSchemaError:
                files = ()
            main = next((f for f in files if f.name == MAIN_FILE), None)
            if main is not None and _same(main, fd):
                return ProtobufSchema(rendered, main, tuple(deps.values()))
        return ProtobufSchema(text, fd, tuple(deps.values()))
    files = _compile(text, given.SerializeToString())
    main = next(f for f in files if f.name == MAIN_FILE)
    return ProtobufSchema(text, main, tuple(f for f in files if f.name != MAIN_FILE))


def _same(a: descriptor_pb2.FileDescriptorProto, b: descriptor_pb2.FileDescriptorProto) -> bool:
    """Equal descriptors but for the file name and what protoc adds on its own (json_name)."""

    def strip(fd: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
        copy = descriptor_pb2.FileDescriptorProto()
        copy.CopyFrom(fd)
        copy.ClearField("name")
        copy.ClearField("source_code_info")
        if copy.syntax == "proto2":
            copy.ClearField("syntax")  # protoc omits the default syntax

        def walk(messages: Any) -> None:
            for m in messages:
                for f in m.field:
                    f.ClearField("json_name")
                walk(m.nested_type)

        walk(copy.message_type)
        return copy

    return bool(strip(a) == strip(b))


def _from_base64(text: str) -> descriptor_pb2.FileDescriptorProto | None:
    stripped = text.strip()
    if not stripped or any(c.isspace() for c in stripped) or ";" in stripped:
        return None  # .proto text always has whitespace or semicolons; base64 never does
    try:
        raw = base64.b64decode(stripped.encode("ascii"), validate=True)
        fd = descriptor_pb2.FileDescriptorProto()
        fd.ParseFromString(raw)
    except (binascii.Error, UnicodeEncodeError, DecodeError, ValueError):
        return None
    return fd if fd.message_type or fd.enum_type else None


@functools.lru_cache(maxsize=256)
def _compile(text: str, given: bytes) -> tuple[descriptor_pb2.FileDescriptorProto, ...]:
    """Compile `text` with protoc; `given` is a FileDescriptorSet of the files it may import."""
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    with tempfile.TemporaryDirectory(prefix="klamm-proto-") as tmp:
        root = Path(tmp)
        (root / MAIN_FILE).write_text(text, encoding="utf-8")
        (root / "given.pb").write_bytes(given)
        out = root / "out.pb"
        cmd = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{root}",
            f"-I{include}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            MAIN_FILE,
        ]
        if given:
            cmd.insert(3, f"--descriptor_set_in={root / 'given.pb'}")
        try:
            proc = subprocess.run(
                cmd,
                cwd=root,
                capture_output=True,
                timeout=PROTOC_TIMEOUT,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
        except subprocess.TimeoutExpired:
            raise InvalidSchemaError("Invalid schema: protoc timed out") from None
        if proc.returncode != 0:
            message = proc.stderr.decode(errors="replace").replace(str(root) + os.sep, "").strip()
            raise InvalidSchemaError(f"Invalid schema: {message or 'protoc failed'}")
        fds = descriptor_pb2.FileDescriptorSet()
        fds.ParseFromString(out.read_bytes())
    return tuple(fds.file)
