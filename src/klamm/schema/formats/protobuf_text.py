"""Render a FileDescriptorProto as `.proto` text.

confluent-kafka's ProtobufSerializer registers a base64 FileDescriptorProto; Confluent's registry
stores and serves it as `.proto` text, which is what KafkaJS's registry package (protobufjs) and
curl users read. protobuf's Python package can print a descriptor only as a protobuf message, not
as `.proto` source, so this module does it for the language features messages use: syntax,
package, imports, file options of string/bool value, messages (fields with labels, proto2
defaults, `packed`/`deprecated`, maps, oneofs, proto3 `optional`, reserved numbers and names,
nested types), enums and services.

`render` returns None for what it does not cover (extensions, groups, custom options, editions):
the caller keeps the base64 then. protobuf.py also recompiles every rendering and keeps it only
when protoc gives back the same descriptor, so a gap here can cost the text form, never meaning.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2

FDP = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    FDP.TYPE_DOUBLE: "double", FDP.TYPE_FLOAT: "float", FDP.TYPE_INT64: "int64",
    FDP.TYPE_UINT64: "uint64", FDP.TYPE_INT32: "int32", FDP.TYPE_FIXED64: "fixed64",
    FDP.TYPE_FIXED32: "fixed32", FDP.TYPE_BOOL: "bool", FDP.TYPE_STRING: "string",
    FDP.TYPE_BYTES: "bytes", FDP.TYPE_UINT32: "uint32", FDP.TYPE_SFIXED32: "sfixed32",
    FDP.TYPE_SFIXED64: "sfixed64", FDP.TYPE_SINT32: "sint32", FDP.TYPE_SINT64: "sint64",
}  # fmt: skip
_FILE_OPTIONS = (
    "java_package", "java_outer_classname", "java_multiple_files", "go_package",
    "csharp_namespace", "objc_class_prefix", "php_namespace", "ruby_package", "swift_prefix",
    "optimize_for",
)  # fmt: skip


class _Unsupported(Exception):
    pass


def render(fd: descriptor_pb2.FileDescriptorProto) -> str | None:
    try:
        return "\n".join(_file(fd)) + "\n"
    except _Unsupported:
        return None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _file(fd: Any) -> list[str]:
    if fd.extension or fd.syntax not in ("", "proto2", "proto3"):
        raise _Unsupported
    syntax = fd.syntax or "proto2"
    out = [f'syntax = "{syntax}";']
    if fd.package:
        out.append(f"package {fd.package};")
    public = set(fd.public_dependency)
    for i, dep in enumerate(fd.dependency):
        out.append(f"import {'public ' if i in public else ''}{_quote(dep)};")
    options = fd.options
    if options.ListFields():
        for field, value in options.ListFields():
            if field.name not in _FILE_OPTIONS:
                raise _Unsupported
            if field.name == "optimize_for":
                text = descriptor_pb2.FileOptions.OptimizeMode.Name(value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = _quote(value)
            out.append(f"option {field.name} = {text};")
    for message in fd.message_type:
        out += _message(message, syntax, "")
    for enum in fd.enum_type:
        out += _enum(enum, "")
    for service in fd.service:
        out += _service(service)
    return out


def _field_type(field: Any) -> str:
    if field.type in _SCALARS:
        return _SCALARS[field.type]
    if field.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM):
        return str(field.type_name)  # fully qualified, with the leading dot protoc accepts
    raise _Unsupported  # groups


def _field(field: Any, syntax: str, maps: dict[str, Any], in_oneof: bool) -> str:
    if field.type == FDP.TYPE_MESSAGE and field.type_name in maps:
        entry = maps[field.type_name]
        key, value = entry.field[0], entry.field[1]
        kind = f"map<{_field_type(key)}, {_field_type(value)}>"
    else:
        label = ""
        if not in_oneof:
            if field.label == FDP.LABEL_REPEATED:
                label = "repeated "
            elif field.label == FDP.LABEL_REQUIRED:
                label = "required "
            elif syntax == "proto2" or field.proto3_optional:
                label = "optional "
        kind = label + _field_type(field)
    opts = []
    if field.HasField("default_value"):
        value = field.default_value
        if field.type in (FDP.TYPE_STRING, FDP.TYPE_BYTES):
            value = _quote(value)
        opts.append(f"default = {value}")
    if field.options.ListFields():
        for option, value in field.options.ListFields():
            if option.name not in ("packed", "deprecated"):
                raise _Unsupported
            opts.append(f"{option.name} = {'true' if value else 'false'}")
    suffix = f" [{', '.join(opts)}]" if opts else ""
    return f"{kind} {field.name} = {field.number}{suffix};"


def _message(message: Any, syntax: str, indent: str) -> list[str]:
    if message.extension or message.extension_range or message.options.ListFields():
        raise _Unsupported
    inner = indent + "  "
    out = [f"{indent}message {message.name} {{"]
    maps = {}
    for nested in message.nested_type:
        if nested.options.map_entry:
            maps[nested.name] = nested
    # Fields refer to a map entry by its full name; match on the last component.
    by_full = {
        f.type_name: maps[f.type_name.rsplit(".", 1)[-1]]
        for f in message.field
        if f.type == FDP.TYPE_MESSAGE and f.type_name.rsplit(".", 1)[-1] in maps
        and f.label == FDP.LABEL_REPEATED
    }  # fmt: skip
    real_oneofs = {
        f.oneof_index for f in message.field if f.HasField("oneof_index") and not f.proto3_optional
    }
    done_oneofs: set[int] = set()
    for field in message.field:
        if field.HasField("oneof_index") and field.oneof_index in real_oneofs:
            index = field.oneof_index
            if index in done_oneofs:
                continue
            done_oneofs.add(index)
            out.append(f"{inner}oneof {message.oneof_decl[index].name} {{")
            for member in message.field:
                if member.HasField("oneof_index") and member.oneof_index == index:
                    out.append(f"{inner}  {_field(member, syntax, by_full, True)}")
            out.append(f"{inner}}}")
        else:
            out.append(f"{inner}{_field(field, syntax, by_full, False)}")
    for reserved in message.reserved_range:
        end = reserved.end - 1
        out.append(
            f"{inner}reserved {reserved.start}{'' if end == reserved.start else f' to {end}'};"
        )
    if message.reserved_name:
        out.append(f"{inner}reserved {', '.join(_quote(n) for n in message.reserved_name)};")
    for nested in message.nested_type:
        if not nested.options.map_entry:
            out += _message(nested, syntax, inner)
    for enum in message.enum_type:
        out += _enum(enum, inner)
    out.append(f"{indent}}}")
    return out


def _enum(enum: Any, indent: str) -> list[str]:
    out = [f"{indent}enum {enum.name} {{"]
    for option, value in enum.options.ListFields():
        if option.name != "allow_alias":
            raise _Unsupported
        out.append(f"{indent}  option allow_alias = {'true' if value else 'false'};")
    for value in enum.value:
        if value.options.ListFields():
            raise _Unsupported
        out.append(f"{indent}  {value.name} = {value.number};")
    for reserved in enum.reserved_range:
        end = reserved.end
        out.append(
            f"{indent}  reserved {reserved.start}{'' if end == reserved.start else f' to {end}'};"
        )
    if enum.reserved_name:
        out.append(f"{indent}  reserved {', '.join(_quote(n) for n in enum.reserved_name)};")
    out.append(f"{indent}}}")
    return out


def _service(service: Any) -> list[str]:
    if service.options.ListFields():
        raise _Unsupported
    out = [f"service {service.name} {{"]
    for m in service.method:
        if m.options.ListFields():
            raise _Unsupported
        source = ("stream " if m.client_streaming else "") + m.input_type
        sink = ("stream " if m.server_streaming else "") + m.output_type
        out.append(f"  rpc {m.name}({source}) returns ({sink});")
    out.append("}")
    return out
