"""A Protobuf schema registered as a base64 descriptor (confluent-kafka's ProtobufSerializer) is
stored as `.proto` text, as Confluent stores it, only when that text compiles back to the same
descriptor; anything the renderer does not cover stays base64."""

from __future__ import annotations

import pytest

from klamm.schema.formats import parse
from klamm.schema.formats.protobuf import ProtobufSchema, _from_base64

PROTO3 = """syntax = "proto3";
package shop.v1;
import "google/protobuf/timestamp.proto";
option go_package = "example.com/shop";
message Order {
  string id = 1;
  optional int64 n = 2;
  repeated double xs = 3 [packed = false];
  map<string, Item> items = 4;
  oneof pay { string card = 5; bytes token = 6; }
  google.protobuf.Timestamp at = 7;
  reserved 9 to 11, 15;
  reserved "old";
  message Item { int32 q = 1; Kind k = 2; }
  enum Kind { A = 0; B = 1; }
}
enum Status { OK = 0; BAD = 1; reserved 5 to 7; }
service Shop { rpc Watch(Order) returns (stream Order); }
"""
PROTO2 = """syntax = "proto2";
message M { required int32 a = 1 [default = 5]; optional string s = 2 [default = "x\\"y"]; }
"""
CUSTOM_OPTION = """syntax = "proto3";
import "google/protobuf/descriptor.proto";
extend google.protobuf.FieldOptions { string unit = 50000; }
message M { double weight = 1 [(unit) = "kg"]; }
"""


@pytest.mark.parametrize("text", [PROTO3, PROTO2], ids=["proto3", "proto2"])
def test_base64_is_stored_as_equivalent_text(text: str) -> None:
    compiled = parse("PROTOBUF", text, {})
    assert isinstance(compiled, ProtobufSchema)
    stored = parse("PROTOBUF", compiled.serialized(), {})
    assert isinstance(stored, ProtobufSchema)
    assert _from_base64(stored.canonical()) is None  # text, not base64
    again = parse("PROTOBUF", stored.canonical(), {})
    assert isinstance(again, ProtobufSchema)
    assert again.incompatibilities(compiled) == [] and compiled.incompatibilities(again) == []
    assert [m.name for m in again.descriptor.message_type] == [
        m.name for m in compiled.descriptor.message_type
    ]


def test_what_the_renderer_does_not_cover_stays_base64() -> None:
    compiled = parse("PROTOBUF", CUSTOM_OPTION, {})
    assert isinstance(compiled, ProtobufSchema)
    stored = parse("PROTOBUF", compiled.serialized(), {})
    assert stored.canonical() == compiled.serialized()
