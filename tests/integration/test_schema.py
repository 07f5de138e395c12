"""Our proto/*.proto against the independent transcription in tests/otlp_schema.py.

Every message, field and enum value of the transcription must exist in ours
with the same name, number, type, label, referenced type and oneof. Ours may
have more (upstream keeps adding fields).
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

import harness
from harness import check, check_equal, otlp_schema

PROTO_FILES = ['common.proto', 'resource.proto', 'trace.proto', 'trace_service.proto',
               'metrics.proto', 'metrics_service.proto']
_F = descriptor_pb2.FieldDescriptorProto


def compile_ours(proto_dir):
    """FileDescriptorSet of our .proto files, or None (after a failed check)."""
    missing = [name for name in PROTO_FILES if not (proto_dir / name).exists()]
    if not check(not missing, 'proto files exist', f'missing in {proto_dir}: {missing}'):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / 'ours.pb'
        run = subprocess.run(
            ['protoc', f'--proto_path={proto_dir}', '--include_imports',
             f'--descriptor_set_out={out}', *PROTO_FILES],
            capture_output=True, text=True, timeout=60)
        if not check(run.returncode == 0, 'protoc compiles proto/*.proto', run.stderr):
            return None
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def index(files):
    """({full name: DescriptorProto}, {full name: EnumDescriptorProto})."""
    messages, enums = {}, {}

    def walk(prefix, message_types, enum_types):
        for enum in enum_types:
            enums[f'{prefix}.{enum.name}'] = enum
        for message in message_types:
            name = f'{prefix}.{message.name}'
            messages[name] = message
            walk(name, message.nested_type, message.enum_type)

    for file in files:
        walk(file.package, file.message_type, file.enum_type)
    return messages, enums


def optional_field(field, message):
    """proto3 `optional`, or the one-field oneof `_<name>` our protos write for
    it (protoc-c 1.4 does not take proto3 optional; the wire is the same)."""
    if field.proto3_optional:
        return True
    if not field.HasField('oneof_index'):
        return False
    members = [f for f in message.field
               if f.HasField('oneof_index') and f.oneof_index == field.oneof_index]
    return (len(members) == 1
            and message.oneof_decl[field.oneof_index].name == '_' + field.name)


def describe(field, message):
    """The properties compared, in a readable form."""
    optional = optional_field(field, message)
    oneof = (message.oneof_decl[field.oneof_index].name
             if field.HasField('oneof_index') and not optional else None)
    return {'number': field.number,
            'type': _F.Type.Name(field.type),
            'label': _F.Label.Name(field.label),
            'type_name': field.type_name or None,
            'oneof': oneof,
            'optional': optional}


def compare_message(name, expected, ours):
    if ours is None:
        check(False, f'message {name}', 'missing')
        return
    ours_fields = {field.name: field for field in ours.field}
    problems = []
    for field in expected.field:
        mine = ours_fields.get(field.name)
        if mine is None:
            problems.append(f'{field.name}: missing')
            continue
        want, got = describe(field, expected), describe(mine, ours)
        problems += [f'{field.name}: {key} is {got[key]}, expected {want[key]}'
                     for key in want if want[key] != got[key]]
    check(not problems, f'message {name}', '; '.join(problems))


def compare_enum(name, expected, ours):
    if ours is None:
        check(False, f'enum {name}', 'missing')
        return
    ours_values = {value.name: value.number for value in ours.value}
    problems = [f'{value.name}: {ours_values.get(value.name, "missing")}, '
                f'expected {value.number}'
                for value in expected.value
                if ours_values.get(value.name) != value.number]
    check(not problems, f'enum {name}', '; '.join(problems))


def test():
    if shutil.which('protoc') is None:
        harness.skip('protoc is not installed')
    descriptor_set = compile_ours(harness.srcdir() / 'proto')
    if descriptor_set is None:
        return
    for file in descriptor_set.file:
        check_equal(file.syntax, 'proto3', f'{file.name} is proto3')
    ours_messages, ours_enums = index(descriptor_set.file)
    expected_messages, expected_enums = index(otlp_schema.SCHEMA_FILES)
    for name, expected in expected_messages.items():
        compare_message(name, expected, ours_messages.get(name))
    for name, expected in expected_enums.items():
        compare_enum(name, expected, ours_enums.get(name))


if __name__ == '__main__':
    harness.main(test)
