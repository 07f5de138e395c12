"""Independent transcription of the OTLP trace schema, for the tests.

Built field by field from opentelemetry-proto v1.x (and
/work/shared/otlp-facts.md), deliberately NOT from proto/*.proto: a mistake in
our .proto files must not hide behind the same mistake in the test decoder.
tests/integration/test_schema.py compares the two.

API (spans are flat dicts, see _flat_span for the keys):
  decode_request(body: bytes) -> list[dict]       binary ExportTraceServiceRequest
  decode_json_request(text) -> list[dict]         OTLP/JSON ExportTraceServiceRequest
  build_request(spans) -> message                 inverse of decode_*, for tests
  request_to_json(message) -> str                 OTLP/JSON encoding of any message
  encode_response(rejected_spans=0, error_message='') -> bytes
  encode_json_response(rejected_spans=0, error_message='') -> str
  encode_status(code, message, as_json=False)      google.rpc.Status error body
  message_class(full_name), SCHEMA_FILES (FileDescriptorProtos), SPAN_KIND, STATUS_CODE
Decoding is strict (raises ValueError, or protobuf's DecodeError): ids of
the wrong length or all zero, duplicate attribute keys, invalid UTF-8 and any
OTLP/JSON deviation are rejected.
"""

import base64
import json
import math
import re

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto

COMMON = 'opentelemetry.proto.common.v1'
RESOURCE = 'opentelemetry.proto.resource.v1'
TRACE = 'opentelemetry.proto.trace.v1'
COLLECTOR = 'opentelemetry.proto.collector.trace.v1'
METRICS = 'opentelemetry.proto.metrics.v1'
METRICS_COLLECTOR = 'opentelemetry.proto.collector.metrics.v1'

SPAN_KIND = {'SPAN_KIND_UNSPECIFIED': 0, 'SPAN_KIND_INTERNAL': 1,
             'SPAN_KIND_SERVER': 2, 'SPAN_KIND_CLIENT': 3,
             'SPAN_KIND_PRODUCER': 4, 'SPAN_KIND_CONSUMER': 5}
STATUS_CODE = {'STATUS_CODE_UNSET': 0, 'STATUS_CODE_OK': 1,
               'STATUS_CODE_ERROR': 2}
SPAN_FLAGS = {'SPAN_FLAGS_DO_NOT_USE': 0,
              'SPAN_FLAGS_TRACE_FLAGS_MASK': 0xFF,
              'SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK': 0x100,
              'SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK': 0x200}


def _field(name, number, type_, type_name=None, repeated=False, oneof=None,
           optional=False):
    field = _F(name=name, number=number, type=type_,
               label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if type_name:
        field.type_name = '.' + type_name
    if oneof is not None:
        field.oneof_index = oneof
    if optional:  # proto3 `optional`: its synthetic oneof is the caller's
        field.proto3_optional = True
    return field


def _enum(name, values):
    enum = descriptor_pb2.EnumDescriptorProto(name=name)
    for value_name, number in values.items():
        enum.value.add(name=value_name, number=number)
    return enum


def _message(name, fields, nested=(), enums=(), oneofs=()):
    message = descriptor_pb2.DescriptorProto(name=name)
    message.field.extend(fields)
    message.nested_type.extend(nested)
    message.enum_type.extend(enums)
    for oneof in oneofs:
        message.oneof_decl.add(name=oneof)
    return message


def _file(name, package, dependencies, messages, enums=()):
    file = descriptor_pb2.FileDescriptorProto(
        name=name, package=package, syntax='proto3')
    file.dependency.extend(dependencies)
    file.message_type.extend(messages)
    file.enum_type.extend(enums)
    return file


def _key_values(number):
    return _field('attributes', number, _F.TYPE_MESSAGE,
                  COMMON + '.KeyValue', repeated=True)


_COMMON_FILE = _file('opentelemetry/proto/common/v1/common.proto', COMMON, [], [
    _message('AnyValue', [
        _field('string_value', 1, _F.TYPE_STRING, oneof=0),
        _field('bool_value', 2, _F.TYPE_BOOL, oneof=0),
        _field('int_value', 3, _F.TYPE_INT64, oneof=0),
        _field('double_value', 4, _F.TYPE_DOUBLE, oneof=0),
        _field('array_value', 5, _F.TYPE_MESSAGE, COMMON + '.ArrayValue', oneof=0),
        _field('kvlist_value', 6, _F.TYPE_MESSAGE, COMMON + '.KeyValueList', oneof=0),
        _field('bytes_value', 7, _F.TYPE_BYTES, oneof=0),
    ], oneofs=['value']),
    _message('ArrayValue', [
        _field('values', 1, _F.TYPE_MESSAGE, COMMON + '.AnyValue', repeated=True),
    ]),
    _message('KeyValueList', [
        _field('values', 1, _F.TYPE_MESSAGE, COMMON + '.KeyValue', repeated=True),
    ]),
    _message('KeyValue', [
        _field('key', 1, _F.TYPE_STRING),
        _field('value', 2, _F.TYPE_MESSAGE, COMMON + '.AnyValue'),
    ]),
    _message('InstrumentationScope', [
        _field('name', 1, _F.TYPE_STRING),
        _field('version', 2, _F.TYPE_STRING),
        _key_values(3),
        _field('dropped_attributes_count', 4, _F.TYPE_UINT32),
    ]),
])

_RESOURCE_FILE = _file('opentelemetry/proto/resource/v1/resource.proto', RESOURCE,
                       [_COMMON_FILE.name], [
    _message('Resource', [
        _key_values(1),
        _field('dropped_attributes_count', 2, _F.TYPE_UINT32),
    ]),
])

_TRACE_FILE = _file('opentelemetry/proto/trace/v1/trace.proto', TRACE,
                    [_COMMON_FILE.name, _RESOURCE_FILE.name], [
    _message('ResourceSpans', [
        _field('resource', 1, _F.TYPE_MESSAGE, RESOURCE + '.Resource'),
        _field('scope_spans', 2, _F.TYPE_MESSAGE, TRACE + '.ScopeSpans', repeated=True),
        _field('schema_url', 3, _F.TYPE_STRING),
    ]),
    _message('ScopeSpans', [
        _field('scope', 1, _F.TYPE_MESSAGE, COMMON + '.InstrumentationScope'),
        _field('spans', 2, _F.TYPE_MESSAGE, TRACE + '.Span', repeated=True),
        _field('schema_url', 3, _F.TYPE_STRING),
    ]),
    _message('Span', [
        _field('trace_id', 1, _F.TYPE_BYTES),
        _field('span_id', 2, _F.TYPE_BYTES),
        _field('trace_state', 3, _F.TYPE_STRING),
        _field('parent_span_id', 4, _F.TYPE_BYTES),
        _field('name', 5, _F.TYPE_STRING),
        _field('kind', 6, _F.TYPE_ENUM, TRACE + '.Span.SpanKind'),
        _field('start_time_unix_nano', 7, _F.TYPE_FIXED64),
        _field('end_time_unix_nano', 8, _F.TYPE_FIXED64),
        _key_values(9),
        _field('dropped_attributes_count', 10, _F.TYPE_UINT32),
        _field('events', 11, _F.TYPE_MESSAGE, TRACE + '.Span.Event', repeated=True),
        _field('dropped_events_count', 12, _F.TYPE_UINT32),
        _field('links', 13, _F.TYPE_MESSAGE, TRACE + '.Span.Link', repeated=True),
        _field('dropped_links_count', 14, _F.TYPE_UINT32),
        _field('status', 15, _F.TYPE_MESSAGE, TRACE + '.Status'),
        _field('flags', 16, _F.TYPE_FIXED32),
    ], nested=[
        _message('Event', [
            _field('time_unix_nano', 1, _F.TYPE_FIXED64),
            _field('name', 2, _F.TYPE_STRING),
            _key_values(3),
            _field('dropped_attributes_count', 4, _F.TYPE_UINT32),
        ]),
        _message('Link', [
            _field('trace_id', 1, _F.TYPE_BYTES),
            _field('span_id', 2, _F.TYPE_BYTES),
            _field('trace_state', 3, _F.TYPE_STRING),
            _key_values(4),
            _field('dropped_attributes_count', 5, _F.TYPE_UINT32),
            _field('flags', 6, _F.TYPE_FIXED32),
        ]),
    ], enums=[_enum('SpanKind', SPAN_KIND)]),
    _message('Status', [
        _field('message', 2, _F.TYPE_STRING),
        _field('code', 3, _F.TYPE_ENUM, TRACE + '.Status.StatusCode'),
    ], enums=[_enum('StatusCode', STATUS_CODE)]),
], enums=[_enum('SpanFlags', SPAN_FLAGS)])

_SERVICE_FILE = _file('opentelemetry/proto/collector/trace/v1/trace_service.proto',
                      COLLECTOR, [_TRACE_FILE.name], [
    _message('ExportTraceServiceRequest', [
        _field('resource_spans', 1, _F.TYPE_MESSAGE, TRACE + '.ResourceSpans',
               repeated=True),
    ]),
    _message('ExportTraceServiceResponse', [
        _field('partial_success', 1, _F.TYPE_MESSAGE,
               COLLECTOR + '.ExportTracePartialSuccess'),
    ]),
    _message('ExportTracePartialSuccess', [
        _field('rejected_spans', 1, _F.TYPE_INT64),
        _field('error_message', 2, _F.TYPE_STRING),
    ]),
])

AGGREGATION_TEMPORALITY = {'AGGREGATION_TEMPORALITY_UNSPECIFIED': 0,
                           'AGGREGATION_TEMPORALITY_DELTA': 1,
                           'AGGREGATION_TEMPORALITY_CUMULATIVE': 2}

# metrics/v1/metrics.proto: the messages the shim sends and their neighbours
# (exponential histograms, summaries and exemplars are left out).
_METRICS_FILE = _file('opentelemetry/proto/metrics/v1/metrics.proto', METRICS,
                      [_COMMON_FILE.name, _RESOURCE_FILE.name], [
    _message('MetricsData', [
        _field('resource_metrics', 1, _F.TYPE_MESSAGE, METRICS + '.ResourceMetrics',
               repeated=True),
    ]),
    _message('ResourceMetrics', [
        _field('resource', 1, _F.TYPE_MESSAGE, RESOURCE + '.Resource'),
        _field('scope_metrics', 2, _F.TYPE_MESSAGE, METRICS + '.ScopeMetrics',
               repeated=True),
        _field('schema_url', 3, _F.TYPE_STRING),
    ]),
    _message('ScopeMetrics', [
        _field('scope', 1, _F.TYPE_MESSAGE, COMMON + '.InstrumentationScope'),
        _field('metrics', 2, _F.TYPE_MESSAGE, METRICS + '.Metric', repeated=True),
        _field('schema_url', 3, _F.TYPE_STRING),
    ]),
    _message('Metric', [
        _field('name', 1, _F.TYPE_STRING),
        _field('description', 2, _F.TYPE_STRING),
        _field('unit', 3, _F.TYPE_STRING),
        _field('gauge', 5, _F.TYPE_MESSAGE, METRICS + '.Gauge', oneof=0),
        _field('sum', 7, _F.TYPE_MESSAGE, METRICS + '.Sum', oneof=0),
        _field('histogram', 9, _F.TYPE_MESSAGE, METRICS + '.Histogram', oneof=0),
        _field('metadata', 12, _F.TYPE_MESSAGE, COMMON + '.KeyValue', repeated=True),
    ], oneofs=['data']),
    _message('Gauge', [
        _field('data_points', 1, _F.TYPE_MESSAGE, METRICS + '.NumberDataPoint',
               repeated=True),
    ]),
    _message('Sum', [
        _field('data_points', 1, _F.TYPE_MESSAGE, METRICS + '.NumberDataPoint',
               repeated=True),
        _field('aggregation_temporality', 2, _F.TYPE_ENUM,
               METRICS + '.AggregationTemporality'),
        _field('is_monotonic', 3, _F.TYPE_BOOL),
    ]),
    _message('Histogram', [
        _field('data_points', 1, _F.TYPE_MESSAGE, METRICS + '.HistogramDataPoint',
               repeated=True),
        _field('aggregation_temporality', 2, _F.TYPE_ENUM,
               METRICS + '.AggregationTemporality'),
    ]),
    _message('NumberDataPoint', [
        _key_values(7),
        _field('start_time_unix_nano', 2, _F.TYPE_FIXED64),
        _field('time_unix_nano', 3, _F.TYPE_FIXED64),
        _field('as_double', 4, _F.TYPE_DOUBLE, oneof=0),
        _field('as_int', 6, _F.TYPE_SFIXED64, oneof=0),
        _field('flags', 8, _F.TYPE_UINT32),
    ], oneofs=['value']),
    _message('HistogramDataPoint', [
        _key_values(9),
        _field('start_time_unix_nano', 2, _F.TYPE_FIXED64),
        _field('time_unix_nano', 3, _F.TYPE_FIXED64),
        _field('count', 4, _F.TYPE_FIXED64),
        _field('sum', 5, _F.TYPE_DOUBLE, oneof=0, optional=True),
        _field('bucket_counts', 6, _F.TYPE_FIXED64, repeated=True),
        _field('explicit_bounds', 7, _F.TYPE_DOUBLE, repeated=True),
        _field('flags', 10, _F.TYPE_UINT32),
        _field('min', 11, _F.TYPE_DOUBLE, oneof=1, optional=True),
        _field('max', 12, _F.TYPE_DOUBLE, oneof=2, optional=True),
    ], oneofs=['_sum', '_min', '_max']),
], enums=[_enum('AggregationTemporality', AGGREGATION_TEMPORALITY)])

_METRICS_SERVICE_FILE = _file(
    'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
    METRICS_COLLECTOR, [_METRICS_FILE.name], [
    _message('ExportMetricsServiceRequest', [
        _field('resource_metrics', 1, _F.TYPE_MESSAGE, METRICS + '.ResourceMetrics',
               repeated=True),
    ]),
    _message('ExportMetricsServiceResponse', [
        _field('partial_success', 1, _F.TYPE_MESSAGE,
               METRICS_COLLECTOR + '.ExportMetricsPartialSuccess'),
    ]),
    _message('ExportMetricsPartialSuccess', [
        _field('rejected_data_points', 1, _F.TYPE_INT64),
        _field('error_message', 2, _F.TYPE_STRING),
    ]),
])

# The OTLP files, in dependency order; test_schema.py compares them with ours.
SCHEMA_FILES = [_COMMON_FILE, _RESOURCE_FILE, _TRACE_FILE, _SERVICE_FILE,
                _METRICS_FILE, _METRICS_SERVICE_FILE]

# Error bodies of 4xx/5xx answers (the OTLP/HTTP spec says google.rpc.Status;
# `details` is left out, nothing here needs it).
_RPC_STATUS_FILE = _file('google/rpc/status.proto', 'google.rpc', [], [
    _message('Status', [
        _field('code', 1, _F.TYPE_INT32),
        _field('message', 2, _F.TYPE_STRING),
    ]),
])

# A private pool: whatever else is loaded into the default pool cannot clash.
_POOL = descriptor_pool.DescriptorPool()
for _file_proto in SCHEMA_FILES + [_RPC_STATUS_FILE]:
    _POOL.Add(_file_proto)
_FACTORY = message_factory.MessageFactory(_POOL)


def message_class(full_name):
    """Generated Python class of a message, e.g. message_class(TRACE + '.Span')."""
    return _FACTORY.GetPrototype(_POOL.FindMessageTypeByName(full_name))


ExportTraceServiceRequest = message_class(COLLECTOR + '.ExportTraceServiceRequest')
ExportTraceServiceResponse = message_class(COLLECTOR + '.ExportTraceServiceResponse')
AnyValue = message_class(COMMON + '.AnyValue')
ExportMetricsServiceRequest = message_class(
    METRICS_COLLECTOR + '.ExportMetricsServiceRequest')
ExportMetricsServiceResponse = message_class(
    METRICS_COLLECTOR + '.ExportMetricsServiceResponse')
RpcStatus = message_class('google.rpc.Status')

# ---------------------------------------------------------------- decoding

_ID_LENGTHS = {'trace_id': 16, 'span_id': 8, 'parent_span_id': 8}


def _hex_id(raw, field, where, optional=False):
    if optional and not raw:
        return ''
    if len(raw) != _ID_LENGTHS[field]:
        raise ValueError(f'{where}: {field} has {len(raw)} bytes, '
                         f'expected {_ID_LENGTHS[field]}')
    if not any(raw):
        raise ValueError(f'{where}: {field} is all zero (invalid)')
    return raw.hex()


def _value(any_value):
    kind = any_value.WhichOneof('value')
    if kind is None:
        return None
    if kind == 'array_value':
        return [_value(item) for item in any_value.array_value.values]
    if kind == 'kvlist_value':
        return _attributes(any_value.kvlist_value.values, 'kvlist_value')
    return getattr(any_value, kind)


def _attributes(key_values, where):
    result = {}
    for key_value in key_values:
        if key_value.key in result:
            raise ValueError(f'{where}: duplicate attribute key {key_value.key!r}')
        result[key_value.key] = _value(key_value.value)
    return result


def _flat_span(span, resource, scope):
    where = f'span {span.name!r}'
    return {
        'trace_id': _hex_id(span.trace_id, 'trace_id', where),
        'span_id': _hex_id(span.span_id, 'span_id', where),
        'parent_span_id': _hex_id(span.parent_span_id, 'parent_span_id', where,
                                  optional=True),
        'trace_state': span.trace_state,
        'name': span.name,
        'kind': span.kind,
        'start': span.start_time_unix_nano,
        'end': span.end_time_unix_nano,
        'attributes': _attributes(span.attributes, where),
        'dropped_attributes_count': span.dropped_attributes_count,
        'events': [{
            'name': event.name,
            'time': event.time_unix_nano,
            'attributes': _attributes(event.attributes, f'{where} event {event.name!r}'),
            'dropped_attributes_count': event.dropped_attributes_count,
        } for event in span.events],
        'dropped_events_count': span.dropped_events_count,
        'links': [{
            'trace_id': _hex_id(link.trace_id, 'trace_id', f'{where} link'),
            'span_id': _hex_id(link.span_id, 'span_id', f'{where} link'),
            'trace_state': link.trace_state,
            'attributes': _attributes(link.attributes, f'{where} link'),
            'dropped_attributes_count': link.dropped_attributes_count,
            'flags': link.flags,
        } for link in span.links],
        'dropped_links_count': span.dropped_links_count,
        'status_code': span.status.code,
        'status_message': span.status.message,
        'flags': span.flags,
        'resource': resource,
        'scope': scope,
    }


def _flatten(request):
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes, 'resource')
        for scope_spans in resource_spans.scope_spans:
            scope = {'name': scope_spans.scope.name,
                     'version': scope_spans.scope.version,
                     'attributes': _attributes(scope_spans.scope.attributes, 'scope')}
            spans.extend(_flat_span(span, resource, scope)
                         for span in scope_spans.spans)
    return spans


def decode_metrics_request(body):
    """Flat data points of a binary ExportMetricsServiceRequest: one dict per
    point with its metric's name, unit and temporality; 'kind' is 'histogram'
    (count, sum, buckets) or 'sum' (value, monotonic)."""
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    return _flatten_metrics(request)


def _sum_points(metric, resource, scope):
    points = []
    for point in metric.sum.data_points:
        where = f'metric {metric.name!r}'
        if point.WhichOneof('value') != 'as_int':
            raise ValueError(f'{where}: a sum point without as_int')
        points.append({
            'kind': 'sum',
            'name': metric.name,
            'description': metric.description,
            'unit': metric.unit,
            'temporality': metric.sum.aggregation_temporality,
            'monotonic': metric.sum.is_monotonic,
            'attributes': _attributes(point.attributes, where),
            'start': point.start_time_unix_nano,
            'time': point.time_unix_nano,
            'value': point.as_int,
            'resource': resource,
            'scope': scope,
        })
    return points


def _flatten_metrics(request):
    points = []
    for resource_metrics in request.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes, 'resource')
        for scope_metrics in resource_metrics.scope_metrics:
            scope = {'name': scope_metrics.scope.name,
                     'version': scope_metrics.scope.version}
            for metric in scope_metrics.metrics:
                if metric.WhichOneof('data') == 'sum':
                    points.extend(_sum_points(metric, resource, scope))
                    continue
                if metric.WhichOneof('data') != 'histogram':
                    raise ValueError(f'metric {metric.name!r} is neither a histogram nor a sum')
                histogram = metric.histogram
                for point in histogram.data_points:
                    where = f'metric {metric.name!r}'
                    if len(point.bucket_counts) != len(point.explicit_bounds) + 1:
                        raise ValueError(f'{where}: {len(point.bucket_counts)} buckets '
                                         f'for {len(point.explicit_bounds)} bounds')
                    if sum(point.bucket_counts) != point.count:
                        raise ValueError(f'{where}: buckets do not add up to count')
                    points.append({
                        'kind': 'histogram',
                        'name': metric.name,
                        'description': metric.description,
                        'unit': metric.unit,
                        'temporality': histogram.aggregation_temporality,
                        'attributes': _attributes(point.attributes, where),
                        'start': point.start_time_unix_nano,
                        'time': point.time_unix_nano,
                        'count': point.count,
                        'sum': point.sum if point.HasField('sum') else None,
                        'bucket_counts': list(point.bucket_counts),
                        'explicit_bounds': list(point.explicit_bounds),
                        'resource': resource,
                        'scope': scope,
                    })
    return points


def decode_request(body):
    """Flat spans of a binary ExportTraceServiceRequest (raises on bad input)."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return _flatten(request)

# ------------------------------------------------------------ OTLP/JSON

# OTLP/JSON departs from proto3 JSON here: these bytes fields are hex, not base64.
_HEX_FIELDS = frozenset(_ID_LENGTHS)
_INT64_TYPES = frozenset({_F.TYPE_INT64, _F.TYPE_UINT64, _F.TYPE_FIXED64,
                          _F.TYPE_SINT64, _F.TYPE_SFIXED64})
_INT32_TYPES = frozenset({_F.TYPE_INT32, _F.TYPE_UINT32, _F.TYPE_FIXED32,
                          _F.TYPE_SINT32, _F.TYPE_SFIXED32, _F.TYPE_ENUM})
_SPECIAL_DOUBLES = {'NaN': math.nan, 'Infinity': math.inf, '-Infinity': -math.inf}
_LOWER_HEX = re.compile(r'(?:[0-9a-f]{2})*')
_DECIMAL = re.compile(r'-?(?:0|[1-9][0-9]*)')


def _camel(name):
    head, *rest = name.split('_')
    return head + ''.join(part.capitalize() for part in rest)


def _json_scalar(field, value, where):
    """Python value for `field` from its OTLP/JSON form, checked strictly."""
    def expect(ok, what):
        if not ok:
            raise ValueError(f'{where}: expected {what}, got {value!r}')

    if field.type == _F.TYPE_STRING:
        expect(isinstance(value, str), 'a string')
        return value
    if field.type == _F.TYPE_BOOL:
        expect(isinstance(value, bool), 'true/false')
        return value
    if field.type == _F.TYPE_BYTES:
        expect(isinstance(value, str), 'a string')
        if field.name in _HEX_FIELDS:
            expect(_LOWER_HEX.fullmatch(value), 'lowercase hex')
            return bytes.fromhex(value)
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            expect(False, 'base64')
    if field.type in _INT64_TYPES:
        # Numbers would lose precision above 2^53 in JavaScript receivers.
        expect(isinstance(value, str) and _DECIMAL.fullmatch(value),
               'a 64-bit integer as a decimal string')
        return int(value)
    if field.type in _INT32_TYPES:
        expect(isinstance(value, int) and not isinstance(value, bool),
               'an integer (enums as integers)')
        return value
    if field.type == _F.TYPE_DOUBLE:
        if isinstance(value, str):
            expect(value in _SPECIAL_DOUBLES, 'a number')
            return _SPECIAL_DOUBLES[value]
        expect(isinstance(value, (int, float)) and not isinstance(value, bool),
               'a number')
        return float(value)
    raise ValueError(f'{where}: unsupported field type {field.type}')


def _json_into(obj, message, where):
    if not isinstance(obj, dict):
        raise ValueError(f'{where}: expected an object, got {obj!r}')
    descriptor = message.DESCRIPTOR
    fields = {_camel(field.name): field for field in descriptor.fields}
    for oneof in descriptor.oneofs:
        present = [_camel(f.name) for f in oneof.fields if _camel(f.name) in obj]
        if len(present) > 1:
            raise ValueError(f'{where}: several members of oneof {oneof.name}: {present}')
    for key, value in obj.items():
        field = fields.get(key)
        if field is None:
            raise ValueError(f'{where}: unknown key {key!r} '
                             f'(OTLP/JSON keys are lowerCamelCase)')
        if value is None:  # proto3 JSON: null means the default value
            continue
        path = f'{where}.{key}'
        if field.label == _F.LABEL_REPEATED:
            if not isinstance(value, list):
                raise ValueError(f'{path}: expected an array, got {value!r}')
            target = getattr(message, field.name)
            for index, item in enumerate(value):
                if field.type == _F.TYPE_MESSAGE:
                    _json_into(item, target.add(), f'{path}[{index}]')
                else:
                    target.append(_json_scalar(field, item, f'{path}[{index}]'))
        elif field.type == _F.TYPE_MESSAGE:
            child = getattr(message, field.name)
            child.SetInParent()
            _json_into(value, child, path)
        else:
            setattr(message, field.name, _json_scalar(field, value, path))


def _reject_duplicate_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f'duplicate JSON keys in object with keys {keys}')
    return dict(pairs)


def _reject_constant(name):
    raise ValueError(f'{name} is not valid JSON (use the string form)')


def decode_json_request(text):
    """Flat spans of an OTLP/JSON ExportTraceServiceRequest (raises on bad input)."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode('utf-8')
    obj = json.loads(text, object_pairs_hook=_reject_duplicate_keys,
                     parse_constant=_reject_constant)
    request = ExportTraceServiceRequest()
    _json_into(obj, request, 'request')
    return _flatten(request)


def decode_json_line(line):
    """The spans of one line of the otlp/file exporter: a traces request's,
    or none for a metrics request (which must decode as one)."""
    text = line.decode('utf-8') if isinstance(line, (bytes, bytearray)) else line
    if text.startswith('{"resourceMetrics"'):
        decode_metrics_json_request(text)
        return []
    return decode_json_request(text)


def decode_metrics_json_request(text):
    """decode_metrics_request for OTLP/JSON."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode('utf-8')
    obj = json.loads(text, object_pairs_hook=_reject_duplicate_keys,
                     parse_constant=_reject_constant)
    request = ExportMetricsServiceRequest()
    _json_into(obj, request, 'request')
    return _flatten_metrics(request)


def _json_value(field, value):
    if field.type == _F.TYPE_MESSAGE:
        return _to_json_obj(value)
    if field.type == _F.TYPE_BYTES:
        if field.name in _HEX_FIELDS:
            return value.hex()
        return base64.b64encode(value).decode('ascii')
    if field.type in _INT64_TYPES:
        return str(value)
    if field.type == _F.TYPE_DOUBLE and not math.isfinite(value):
        return 'NaN' if math.isnan(value) else ('Infinity' if value > 0 else '-Infinity')
    return value


def _to_json_obj(message):
    obj = {}
    for field, value in message.ListFields():
        if field.label == _F.LABEL_REPEATED:
            obj[_camel(field.name)] = [_json_value(field, item) for item in value]
        else:
            obj[_camel(field.name)] = _json_value(field, value)
    return obj


def request_to_json(message):
    """OTLP/JSON text of a message built with this schema."""
    return json.dumps(_to_json_obj(message))

# ------------------------------------------------------------ encoding


def _set_value(any_value, value):
    if value is None:
        return
    if isinstance(value, bool):  # before int: bool is an int subclass
        any_value.bool_value = value
    elif isinstance(value, int):
        any_value.int_value = value
    elif isinstance(value, float):
        any_value.double_value = value
    elif isinstance(value, str):
        any_value.string_value = value
    elif isinstance(value, (bytes, bytearray)):
        any_value.bytes_value = bytes(value)
    elif isinstance(value, (list, tuple)):
        any_value.array_value.SetInParent()
        for item in value:
            _set_value(any_value.array_value.values.add(), item)
    elif isinstance(value, dict):
        any_value.kvlist_value.SetInParent()
        _set_attributes(any_value.kvlist_value.values, value)
    else:
        raise TypeError(f'no AnyValue for {value!r}')


def _set_attributes(target, attributes):
    for key, value in (attributes or {}).items():
        key_value = target.add(key=key)
        _set_value(key_value.value, value)


def build_request(spans):
    """ExportTraceServiceRequest from flat span dicts (the decode_* shape).

    Missing keys take proto defaults. Consecutive spans with equal resource
    and scope share a ResourceSpans/ScopeSpans, so decoding returns `spans`.
    """
    request = ExportTraceServiceRequest()
    resource_spans = scope_spans = None
    last_resource = last_scope = object()
    for flat in spans:
        resource = flat.get('resource') or {}
        scope = flat.get('scope') or {}
        if resource != last_resource:
            resource_spans = request.resource_spans.add()
            _set_attributes(resource_spans.resource.attributes, resource)
            last_resource, last_scope = resource, object()
        if scope != last_scope:
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = scope.get('name', '')
            scope_spans.scope.version = scope.get('version', '')
            _set_attributes(scope_spans.scope.attributes, scope.get('attributes'))
            last_scope = scope
        span = scope_spans.spans.add(
            trace_id=bytes.fromhex(flat.get('trace_id', '')),
            span_id=bytes.fromhex(flat.get('span_id', '')),
            parent_span_id=bytes.fromhex(flat.get('parent_span_id', '')),
            trace_state=flat.get('trace_state', ''),
            name=flat.get('name', ''),
            kind=flat.get('kind', 0),
            start_time_unix_nano=flat.get('start', 0),
            end_time_unix_nano=flat.get('end', 0),
            dropped_attributes_count=flat.get('dropped_attributes_count', 0),
            dropped_events_count=flat.get('dropped_events_count', 0),
            dropped_links_count=flat.get('dropped_links_count', 0),
            flags=flat.get('flags', 0))
        _set_attributes(span.attributes, flat.get('attributes'))
        for event in flat.get('events', ()):
            added = span.events.add(
                name=event.get('name', ''), time_unix_nano=event.get('time', 0),
                dropped_attributes_count=event.get('dropped_attributes_count', 0))
            _set_attributes(added.attributes, event.get('attributes'))
        for link in flat.get('links', ()):
            added = span.links.add(
                trace_id=bytes.fromhex(link.get('trace_id', '')),
                span_id=bytes.fromhex(link.get('span_id', '')),
                trace_state=link.get('trace_state', ''),
                dropped_attributes_count=link.get('dropped_attributes_count', 0),
                flags=link.get('flags', 0))
            _set_attributes(added.attributes, link.get('attributes'))
        if flat.get('status_code') or flat.get('status_message'):
            span.status.code = flat.get('status_code', 0)
            span.status.message = flat.get('status_message', '')
    return request


def _response(rejected_spans, error_message):
    response = ExportTraceServiceResponse()
    if rejected_spans or error_message:
        response.partial_success.rejected_spans = rejected_spans
        response.partial_success.error_message = error_message
    return response


def encode_response(rejected_spans=0, error_message=''):
    """Binary ExportTraceServiceResponse; partial_success only when non-empty."""
    return _response(rejected_spans, error_message).SerializeToString()


def encode_json_response(rejected_spans=0, error_message=''):
    """OTLP/JSON ExportTraceServiceResponse ('{}' when fully accepted)."""
    return request_to_json(_response(rejected_spans, error_message))


def encode_status(code, message, as_json=False):
    """google.rpc.Status body for an error answer (bytes, or str when as_json)."""
    status = RpcStatus(code=code, message=message)
    return request_to_json(status) if as_json else status.SerializeToString()
