"""Decodes the encoders' output with tools that know nothing of our code.

`test_encode --dump DIR` writes batch.pb and batch.json of its rich batch.
batch.pb is read with `protoc --decode_raw`, which needs no schema, and its
field NUMBERS are checked against the numbers stated below, transcribed from
/work/shared/otlp-facts.md (Span.Event and Span.Link from upstream
opentelemetry-proto trace.proto), not from our proto/ files. batch.json is
read with Python's json module and its keys and values are checked.
"""

import json
import math
import os
import struct
import subprocess
import sys
import tempfile

# ExportTraceServiceRequest
REQUEST_RESOURCE_SPANS = 1
# ResourceSpans
RS_RESOURCE, RS_SCOPE_SPANS = 1, 2
# Resource
RESOURCE_ATTRIBUTES = 1
# ScopeSpans
SS_SCOPE, SS_SPANS = 1, 2
# InstrumentationScope
SCOPE_NAME, SCOPE_VERSION = 1, 2
# KeyValue
KV_KEY, KV_VALUE = 1, 2
# AnyValue
ANY_STRING, ANY_BOOL, ANY_INT, ANY_DOUBLE, ANY_ARRAY = 1, 2, 3, 4, 5
# ArrayValue
ARRAY_VALUES = 1
# Span
(SPAN_TRACE_ID, SPAN_SPAN_ID, SPAN_TRACE_STATE, SPAN_PARENT_SPAN_ID, SPAN_NAME,
 SPAN_KIND, SPAN_START, SPAN_END, SPAN_ATTRIBUTES, SPAN_DROPPED_ATTRIBUTES,
 SPAN_EVENTS, SPAN_DROPPED_EVENTS, SPAN_LINKS, SPAN_DROPPED_LINKS, SPAN_STATUS,
 SPAN_FLAGS) = range(1, 17)
# Span.Event
EVENT_TIME, EVENT_NAME, EVENT_ATTRIBUTES, EVENT_DROPPED_ATTRIBUTES = 1, 2, 3, 4
# Span.Link
(LINK_TRACE_ID, LINK_SPAN_ID, LINK_TRACE_STATE, LINK_ATTRIBUTES,
 LINK_DROPPED_ATTRIBUTES, LINK_FLAGS) = range(1, 7)
# Status
STATUS_MESSAGE, STATUS_CODE = 2, 3

passed = 0
failed = 0


def check(condition, what):
    global passed, failed
    if condition:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)


def check_eq(actual, expected, what):
    check(actual == expected, "%s: %r != %r" % (what, actual, expected))


# ---- protoc --decode_raw output as a tree: a message is a list of
# (field number, value) pairs, a value is a sub-message list or the raw text.

def parse_decode_raw(text):
    root = []
    stack = [root]
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line == "}":
            stack.pop()
        elif line.endswith(" {"):
            child = []
            stack[-1].append((int(line[:-2]), child))
            stack.append(child)
        else:
            number, _, value = line.partition(": ")
            stack[-1].append((int(number), value))
    return root


def numbers(message):
    return [number for number, _ in message]


def values(message, number):
    return [value for n, value in message if n == number]


def one(message, number):
    found = values(message, number)
    check_eq(len(found), 1, "count of field %d" % number)
    return found[0] if found else None


def as_message(value):
    # decode_raw prints an empty sub-message as an empty string.
    return [] if value == '""' else value


def as_string(value):
    check(isinstance(value, str) and value.startswith('"'), "string expected: %r" % (value,))
    if not isinstance(value, str):
        return None
    # C escapes (octal for non-ASCII bytes) back to the UTF-8 bytes.
    raw = value[1:-1].encode("ascii").decode("unicode_escape").encode("latin-1")
    return raw.decode("utf-8")


def fixed64(value):
    return int(value, 16)


def double_bits(d):
    return "0x%016x" % struct.unpack("<Q", struct.pack("<d", d))[0]


def pb_attrs(message, number):
    """{key: (AnyValue field number, raw value)} of a repeated KeyValue field."""
    out = {}
    for kv in values(message, number):
        key = as_string(one(kv, KV_KEY)) if values(kv, KV_KEY) else ""
        any_value = as_message(one(kv, KV_VALUE))
        check_eq(len(any_value), 1, "AnyValue of %r has one member" % key)
        out[key] = any_value[0]
    return out


def check_pb(pb_path):
    text = subprocess.run(["protoc", "--decode_raw"], stdin=open(pb_path, "rb"),
                          capture_output=True, check=True).stdout.decode("ascii")
    request = parse_decode_raw(text)
    check_eq(numbers(request), [REQUEST_RESOURCE_SPANS], "request fields")
    rs = one(request, REQUEST_RESOURCE_SPANS)
    check_eq(numbers(rs), [RS_RESOURCE] + [RS_SCOPE_SPANS] * 3, "ResourceSpans fields")

    resource = pb_attrs(one(rs, RS_RESOURCE), RESOURCE_ATTRIBUTES)
    check_eq(resource["service.name"], (ANY_STRING, '"checkout"'), "service.name")
    check_eq(resource["process.pid"], (ANY_INT, "4242"), "process.pid")
    check_eq(resource["telemetry.sdk.language"], (ANY_STRING, '"c"'), "sdk language")

    scopes = values(rs, RS_SCOPE_SPANS)
    scope0 = scopes[0]
    check_eq(numbers(scope0), [SS_SCOPE] + [SS_SPANS] * 3, "ScopeSpans fields")
    scope = one(scope0, SS_SCOPE)
    check_eq(as_string(one(scope, SCOPE_NAME)), "otlpauto", "scope name")
    check_eq(as_string(one(scope, SCOPE_VERSION)), "0.1.0", "scope version")

    server, client, maximal = values(scope0, SS_SPANS)
    # Fields appear once each in ascending order, repeated ones together.
    check_eq(numbers(server),
             [SPAN_TRACE_ID, SPAN_SPAN_ID, SPAN_TRACE_STATE, SPAN_PARENT_SPAN_ID, SPAN_NAME,
              SPAN_KIND, SPAN_START, SPAN_END] + [SPAN_ATTRIBUTES] * 19 +
             [SPAN_DROPPED_ATTRIBUTES, SPAN_EVENTS, SPAN_EVENTS, SPAN_DROPPED_EVENTS,
              SPAN_LINKS, SPAN_LINKS, SPAN_DROPPED_LINKS, SPAN_STATUS, SPAN_FLAGS],
             "server span fields")
    check_eq(one(server, SPAN_TRACE_ID),
             '"\\001\\002\\003\\004\\005\\006\\007\\010\\t\\n\\013\\014\\r\\016\\017\\020"',
             "trace id")
    check_eq(as_string(one(server, SPAN_TRACE_STATE)), "vendor=abc", "trace state")
    check_eq(as_string(one(server, SPAN_NAME)), "GET /users/{id}", "name")
    check_eq(one(server, SPAN_KIND), "2", "kind server")
    check_eq(fixed64(one(server, SPAN_START)), 1700000000000000000, "start")
    check_eq(fixed64(one(server, SPAN_END)), 1700000000001234567, "end")
    attrs = pb_attrs(server, SPAN_ATTRIBUTES)
    check_eq(attrs["http.request.method"], (ANY_STRING, '"GET"'), "method")
    check_eq(attrs["http.response.status_code"], (ANY_INT, "500"), "status code")
    check_eq(as_string(attrs["url.path"][1]), '/users/"42"\\\n\t\x01', "escaped path")
    check_eq(attrs["user.flag"], (ANY_BOOL, "1"), "bool true")
    check_eq(attrs["user.off"], (ANY_BOOL, "0"), "bool false")
    check_eq(attrs["load"], (ANY_DOUBLE, double_bits(0.75)), "double")
    check_eq(attrs["tiny"], (ANY_DOUBLE, double_bits(-1e-300)), "tiny double")
    check_eq(attrs["nan"], (ANY_DOUBLE, double_bits(math.nan)), "NaN")
    check_eq(attrs["inf"], (ANY_DOUBLE, double_bits(math.inf)), "Infinity")
    check_eq(attrs["big"], (ANY_INT, "9223372036854775807"), "INT64_MAX")
    # int64 is a plain varint: negative values read back as 2^64 + v.
    check_eq(attrs["small"], (ANY_INT, str(2**63)), "INT64_MIN")
    check_eq(attrs["minus.one"], (ANY_INT, str(2**64 - 1)), "-1")
    check_eq(attrs["zero"], (ANY_INT, "0"), "zero is still written in a oneof")
    check_eq(attrs["empty.value"], (ANY_STRING, '""'), "empty string value")
    check_eq(as_string(attrs["greeting"][1]), "h\u00e9llo \u20ac\U0001F600", "unicode")
    check_eq(as_string(attrs[""][1]), "empty key", "empty key omitted")
    check_eq(attrs["tags"][0], ANY_ARRAY, "array value")
    tags = [as_string(one(item, ANY_STRING)) for item in values(attrs["tags"][1], ARRAY_VALUES)]
    check_eq(tags, ["a", "\u00e9\u20ac\U0001F600", ""], "array items")
    check_eq(attrs["no.tags"], (ANY_ARRAY, '""'), "empty array")
    check_eq(one(server, SPAN_DROPPED_ATTRIBUTES), "3", "dropped attributes")

    event, empty_event = values(server, SPAN_EVENTS)
    check_eq(numbers(event), [EVENT_TIME, EVENT_NAME, EVENT_ATTRIBUTES, EVENT_ATTRIBUTES,
                              EVENT_DROPPED_ATTRIBUTES], "event fields")
    check_eq(fixed64(one(event, EVENT_TIME)), 1700000000000000100, "event time")
    check_eq(as_string(one(event, EVENT_NAME)), "exception", "event name")
    check_eq(pb_attrs(event, EVENT_ATTRIBUTES)["exception.message"], (ANY_STRING, '"boom"'),
             "event attribute")
    check_eq(one(event, EVENT_DROPPED_ATTRIBUTES), "1", "event dropped attributes")
    check_eq(empty_event, '""', "empty event")
    check_eq(one(server, SPAN_DROPPED_EVENTS), "2", "dropped events")

    link, zero_link = values(server, SPAN_LINKS)
    check_eq(numbers(link), [LINK_TRACE_ID, LINK_SPAN_ID, LINK_TRACE_STATE, LINK_ATTRIBUTES,
                             LINK_DROPPED_ATTRIBUTES, LINK_FLAGS], "link fields")
    check_eq(as_string(one(link, LINK_TRACE_STATE)), "k=v", "link trace state")
    check_eq(pb_attrs(link, LINK_ATTRIBUTES)["link.kind"], (ANY_STRING, '"follows"'),
             "link attribute")
    check_eq(one(link, LINK_DROPPED_ATTRIBUTES), "4", "link dropped attributes")
    check_eq(one(link, LINK_FLAGS), "0x00000301", "link flags")
    check_eq(numbers(zero_link), [LINK_TRACE_ID, LINK_SPAN_ID], "ids are always written")
    check_eq(one(server, SPAN_DROPPED_LINKS), "5", "dropped links")

    status = one(server, SPAN_STATUS)
    check_eq(as_string(one(status, STATUS_MESSAGE)), "Internal Server Error", "status message")
    check_eq(one(status, STATUS_CODE), "2", "status error")
    check_eq(one(server, SPAN_FLAGS), "0x00000301", "span flags")

    check_eq(numbers(client), [SPAN_TRACE_ID, SPAN_SPAN_ID, SPAN_NAME, SPAN_KIND, SPAN_START,
                               SPAN_END, SPAN_ATTRIBUTES, SPAN_STATUS, SPAN_FLAGS],
             "client span: no parent, no defaults")
    check_eq(one(client, SPAN_KIND), "3", "kind client")
    check_eq(one(client, SPAN_STATUS), [(STATUS_CODE, "1")], "status ok")
    check_eq(one(client, SPAN_FLAGS), "0x00000101", "has-is-remote flags")

    check_eq(fixed64(one(maximal, SPAN_START)), 2**64 - 1, "max start")
    check_eq(one(maximal, SPAN_KIND), "5", "kind consumer")
    for number in (SPAN_DROPPED_ATTRIBUTES, SPAN_DROPPED_EVENTS, SPAN_DROPPED_LINKS):
        check_eq(one(maximal, number), str(2**32 - 1), "max count %d" % number)
    check_eq(len(as_string(one(maximal, SPAN_NAME))), 200, "long name")
    check_eq(one(maximal, SPAN_STATUS), [(STATUS_MESSAGE, '"unset but described"')],
             "status with message only")
    check_eq(one(maximal, SPAN_FLAGS), "0xffffffff", "max flags")

    unnamed = scopes[1]
    check_eq(numbers(unnamed), [SS_SCOPE, SS_SPANS], "unnamed scope fields")
    check_eq(one(unnamed, SS_SCOPE), '""', "empty scope is still written")
    check_eq(numbers(one(unnamed, SS_SPANS)), [SPAN_TRACE_ID, SPAN_SPAN_ID], "all-zero span")
    check_eq(scopes[2], [(SS_SCOPE, [(SCOPE_NAME, '"empty-scope"')])], "scope without spans")


def check_json(json_path):
    text = open(json_path, encoding="utf-8").read()
    check("\n" not in text, "JSON is one line")
    doc = json.loads(text)
    check_eq(list(doc), ["resourceSpans"], "top-level keys")
    rs = doc["resourceSpans"]
    check_eq(len(rs), 1, "one ResourceSpans")
    rs = rs[0]
    check_eq(list(rs), ["resource", "scopeSpans"], "ResourceSpans keys")
    check_eq(rs["resource"]["attributes"][1],
             {"key": "process.pid", "value": {"intValue": "4242"}}, "int64 as string")
    scopes = rs["scopeSpans"]
    check_eq(len(scopes), 3, "scope count")
    check_eq(scopes[0]["scope"], {"name": "otlpauto", "version": "0.1.0"}, "scope")
    server, client, maximal = scopes[0]["spans"]
    check_eq(list(server),
             ["traceId", "spanId", "traceState", "parentSpanId", "name", "kind",
              "startTimeUnixNano", "endTimeUnixNano", "attributes", "droppedAttributesCount",
              "events", "droppedEventsCount", "links", "droppedLinksCount", "status", "flags"],
             "span keys")
    check_eq(server["traceId"], "0102030405060708090a0b0c0d0e0f10", "hex trace id")
    check_eq(server["spanId"], "0111223344556677", "hex span id")
    check_eq(server["parentSpanId"], "01aabbccddeeff00", "hex parent id")
    check_eq(server["traceState"], "vendor=abc", "trace state")
    check_eq(server["name"], "GET /users/{id}", "name")
    check_eq(server["kind"], 2, "kind as integer")
    check_eq(server["startTimeUnixNano"], "1700000000000000000", "start as string")
    check_eq(server["endTimeUnixNano"], "1700000000001234567", "end as string")
    attrs = {a.get("key", ""): a["value"] for a in server["attributes"]}
    check_eq(len(attrs), 19, "attribute count")
    check_eq(attrs["http.request.method"], {"stringValue": "GET"}, "string value")
    check_eq(attrs["http.response.status_code"], {"intValue": "500"}, "int value")
    check_eq(attrs["url.path"], {"stringValue": '/users/"42"\\\n\t\x01'}, "escapes")
    check_eq(attrs["user.flag"], {"boolValue": True}, "true")
    check_eq(attrs["user.off"], {"boolValue": False}, "false")
    check_eq(attrs["load"], {"doubleValue": 0.75}, "double")
    check_eq(attrs["tiny"], {"doubleValue": -1e-300}, "tiny double round-trips")
    check_eq(attrs["big"], {"intValue": "9223372036854775807"}, "INT64_MAX")
    check_eq(attrs["small"], {"intValue": "-9223372036854775808"}, "INT64_MIN")
    check_eq(attrs["zero"], {"intValue": "0"}, "zero")
    check_eq(attrs["minus.one"], {"intValue": "-1"}, "-1")
    check_eq(attrs["tags"], {"arrayValue": {"values": [
        {"stringValue": "a"}, {"stringValue": "\u00e9\u20ac\U0001F600"}, {"stringValue": ""}]}},
        "array")
    check_eq(attrs["no.tags"], {"arrayValue": {}}, "empty array")
    check_eq(attrs["greeting"], {"stringValue": "h\u00e9llo \u20ac\U0001F600"}, "unicode")
    check_eq(attrs["empty.value"], {"stringValue": ""}, "empty string value")
    check_eq(attrs["nan"], {"doubleValue": "NaN"}, "NaN")
    check_eq(attrs["inf"], {"doubleValue": "Infinity"}, "Infinity")
    check_eq(attrs["ninf"], {"doubleValue": "-Infinity"}, "-Infinity")
    check_eq(server["attributes"][-1], {"value": {"stringValue": "empty key"}},
             "empty key omitted")
    check_eq(server["droppedAttributesCount"], 3, "uint32 as number")
    check_eq(server["events"], [
        {"timeUnixNano": "1700000000000000100", "name": "exception",
         "attributes": [{"key": "exception.type", "value": {"stringValue": "E"}},
                        {"key": "exception.message", "value": {"stringValue": "boom"}}],
         "droppedAttributesCount": 1}, {}], "events")
    check_eq(server["droppedEventsCount"], 2, "dropped events")
    check_eq(server["links"], [
        {"traceId": "02122232425262728292a2b2c2d2e2f2", "spanId": "0213243546576879",
         "traceState": "k=v",
         "attributes": [{"key": "link.kind", "value": {"stringValue": "follows"}}],
         "droppedAttributesCount": 4, "flags": 769},
        {"traceId": "0" * 32, "spanId": "0" * 16}], "links")
    check_eq(server["droppedLinksCount"], 5, "dropped links")
    check_eq(server["status"], {"message": "Internal Server Error", "code": 2}, "status")
    check_eq(server["flags"], 769, "flags")

    check("parentSpanId" not in client, "no parent: key omitted")
    check_eq(client["kind"], 3, "client kind")
    check_eq(client["status"], {"code": 1}, "status ok")
    check_eq(client["flags"], 257, "client flags")

    check_eq(maximal["startTimeUnixNano"], str(2**64 - 1), "max start")
    check_eq(maximal["droppedAttributesCount"], 2**32 - 1, "max dropped")
    check_eq(maximal["status"], {"message": "unset but described"}, "status message only")
    check_eq(maximal["flags"], 2**32 - 1, "max flags")
    check("attributes" not in maximal, "empty list omitted")

    check_eq(scopes[1], {"scope": {}, "spans": [{"traceId": "0" * 32, "spanId": "0" * 16}]},
             "unnamed scope, all-zero span")
    check_eq(scopes[2], {"scope": {"name": "empty-scope"}}, "scope without spans")


def main():
    exe = os.path.join(os.environ["OTLPAUTO_BUILDDIR"], "tests", "test_encode")
    if not os.access(exe, os.X_OK):
        print("FAIL: %s is not built (meson compile test_encode)" % exe, file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([exe, "--dump", tmp], check=True)
        check_pb(os.path.join(tmp, "batch.pb"))
        check_json(os.path.join(tmp, "batch.json"))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
