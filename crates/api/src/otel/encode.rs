//! OTLP's `ExportTraceServiceRequest` in protobuf, written straight from
//! [`RecordedSpan`]s: one resource, one scope (encoded once, at start-up,
//! with `opentelemetry-proto`'s types), then each span. Building the
//! protobuf types first would copy every id, key and value once more, on
//! every export. The field numbers are those of
//! `opentelemetry/proto/trace/v1/trace.proto` and `common/v1/common.proto`;
//! the tests decode what is written here with `opentelemetry-proto`.

use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

use super::recorder::{Attribute, AttributeValue, RecordedSpan, SpanEvent, StatusCode};

/// `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`
const HAS_IS_REMOTE: u32 = 0x100;
/// `SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`
const IS_REMOTE: u32 = 0x200;
/// The W3C `sampled` trace flag: every recorded span is sampled.
const SAMPLED: u32 = 0x01;

fn len_usize(len: usize) -> u64 {
    len as u64
}

/// The size of a length-delimited field (tag < 16: a one-byte key).
fn field_len(len: usize) -> usize {
    1 + encoded_len_varint(len_usize(len)) + len
}

fn bytes_field(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(len_usize(bytes.len()), out);
    out.extend_from_slice(bytes);
}

fn fixed64_field(out: &mut Vec<u8>, tag: u32, value: u64) {
    encode_key(tag, WireType::SixtyFourBit, out);
    out.extend_from_slice(&value.to_le_bytes());
}

fn varint_field(out: &mut Vec<u8>, tag: u32, value: u64) {
    encode_key(tag, WireType::Varint, out);
    encode_varint(value, out);
}

/// The size of an `AnyValue`.
fn any_value_len(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::Str(s) => field_len(s.len()),
        AttributeValue::Bool(_) => 2,
        // int64: two's complement, as a varint.
        AttributeValue::Int(i) => 1 + encoded_len_varint(i.cast_unsigned()),
        AttributeValue::Double(_) => 9,
    }
}

/// The size of a `KeyValue`.
fn key_value_len(key: &str, value: &AttributeValue) -> usize {
    field_len(key.len()) + field_len(any_value_len(value))
}

/// One `KeyValue` as field `tag` of its message.
fn key_value(out: &mut Vec<u8>, tag: u32, (key, value): &Attribute) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(len_usize(key_value_len(key, value)), out);
    bytes_field(out, 1, key.as_bytes());
    encode_key(2, WireType::LengthDelimited, out);
    encode_varint(len_usize(any_value_len(value)), out);
    match value {
        AttributeValue::Str(s) => bytes_field(out, 1, s.as_bytes()),
        AttributeValue::Bool(b) => varint_field(out, 2, u64::from(*b)),
        AttributeValue::Int(i) => varint_field(out, 3, i.cast_unsigned()),
        AttributeValue::Double(d) => fixed64_field(out, 4, d.to_bits()),
    }
}

fn event(out: &mut Vec<u8>, event: &SpanEvent) {
    let len = 9
        + field_len(event.name.len())
        + event
            .attributes
            .iter()
            .map(|(k, v)| field_len(key_value_len(k, v)))
            .sum::<usize>();
    encode_key(11, WireType::LengthDelimited, out);
    encode_varint(len_usize(len), out);
    fixed64_field(out, 1, event.time);
    bytes_field(out, 2, event.name.as_bytes());
    for attribute in &event.attributes {
        key_value(out, 3, attribute);
    }
}

/// One `Span` message (without its own key and length).
fn span(out: &mut Vec<u8>, span: &RecordedSpan) {
    bytes_field(out, 1, &span.trace_id.to_be_bytes());
    bytes_field(out, 2, &span.span_id.to_be_bytes());
    if !span.trace_state.is_empty() {
        bytes_field(out, 3, span.trace_state.as_bytes());
    }
    if span.parent_span_id != 0 {
        bytes_field(out, 4, &span.parent_span_id.to_be_bytes());
    }
    bytes_field(out, 5, span.name.as_bytes());
    varint_field(out, 6, span.kind as u64);
    fixed64_field(out, 7, span.start);
    fixed64_field(out, 8, span.end);
    for attribute in &span.attributes {
        key_value(out, 9, attribute);
    }
    for recorded in &span.events {
        event(out, recorded);
    }
    if span.status != StatusCode::Unset {
        let message = if span.status_message.is_empty() {
            0
        } else {
            field_len(span.status_message.len())
        };
        encode_key(15, WireType::LengthDelimited, out);
        encode_varint(len_usize(message + 2), out);
        if message > 0 {
            bytes_field(out, 2, span.status_message.as_bytes());
        }
        varint_field(out, 3, span.status as u64);
    }
    let flags = SAMPLED | HAS_IS_REMOTE | if span.remote_parent { IS_REMOTE } else { 0 };
    encode_key(16, WireType::ThirtyTwoBit, out);
    out.extend_from_slice(&flags.to_le_bytes());
}

/// The request body: `resource` and `scope` are the encoded `Resource` and
/// `InstrumentationScope` messages.
pub fn request(resource: &[u8], scope: &[u8], spans: &[RecordedSpan]) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(spans.len() * 256);
    let mut one = Vec::with_capacity(512);
    for recorded in spans {
        one.clear();
        span(&mut one, recorded);
        bytes_field(&mut encoded, 2, &one);
    }
    let scope_spans = field_len(scope.len()) + encoded.len();
    let resource_spans = field_len(resource.len()) + field_len(scope_spans);
    let mut out = Vec::with_capacity(field_len(resource_spans));
    encode_key(1, WireType::LengthDelimited, &mut out);
    encode_varint(len_usize(resource_spans), &mut out);
    bytes_field(&mut out, 1, resource);
    encode_key(2, WireType::LengthDelimited, &mut out);
    encode_varint(len_usize(scope_spans), &mut out);
    bytes_field(&mut out, 1, scope);
    out.extend_from_slice(&encoded);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otel::recorder::Kind;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{Status, span};
    use prost::Message as _;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    #[test]
    fn what_is_written_decodes_as_the_spans_it_was_written_from() {
        let resource = Resource {
            attributes: vec![kv("service.name", Value::StringValue("billing".into()))],
            ..Resource::default()
        };
        let scope = InstrumentationScope {
            name: "saas-api".into(),
            version: "1.2.3".into(),
            ..InstrumentationScope::default()
        };
        let long = "x".repeat(300);
        let spans = [
            RecordedSpan {
                trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
                span_id: 0x00f0_67aa_0ba9_02b7,
                parent_span_id: 0x1234,
                remote_parent: true,
                trace_state: "vendor=1".into(),
                name: "GET /api/v1/users/me".into(),
                kind: Kind::Server,
                start: 1_700_000_000_000_000_001,
                end: 1_700_000_000_000_900_000,
                attributes: vec![
                    ("http.route", AttributeValue::Str(long.clone())),
                    ("http.response.status_code", AttributeValue::Int(200)),
                    ("negative", AttributeValue::Int(-5)),
                    ("scoped", AttributeValue::Bool(false)),
                    ("ratio", AttributeValue::Double(0.25)),
                    ("empty", AttributeValue::Str(String::new())),
                ],
                events: vec![SpanEvent {
                    time: 1_700_000_000_000_500_000,
                    name: "the database said no".into(),
                    attributes: vec![("level", AttributeValue::Str("ERROR".into()))],
                }],
                status: StatusCode::Error,
                status_message: "boom".into(),
            },
            RecordedSpan {
                trace_id: 1,
                span_id: 2,
                parent_span_id: 0,
                remote_parent: false,
                trace_state: String::new(),
                name: "authenticate".into(),
                kind: Kind::Internal,
                start: 10,
                end: 20,
                attributes: Vec::new(),
                events: Vec::new(),
                status: StatusCode::Unset,
                status_message: String::new(),
            },
        ];
        let body = request(&resource.encode_to_vec(), &scope.encode_to_vec(), &spans);
        let decoded = ExportTraceServiceRequest::decode(body.as_slice()).expect("valid protobuf");
        assert_eq!(decoded.resource_spans.len(), 1);
        let resource_spans = &decoded.resource_spans[0];
        assert_eq!(resource_spans.resource.as_ref(), Some(&resource));
        assert_eq!(resource_spans.scope_spans.len(), 1);
        assert_eq!(resource_spans.scope_spans[0].scope.as_ref(), Some(&scope));
        let decoded = &resource_spans.scope_spans[0].spans;
        assert_eq!(decoded.len(), 2);

        let first = &decoded[0];
        assert_eq!(hex::encode(&first.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(&first.span_id), "00f067aa0ba902b7");
        assert_eq!(hex::encode(&first.parent_span_id), "0000000000001234");
        assert_eq!(first.trace_state, "vendor=1");
        assert_eq!(first.name, "GET /api/v1/users/me");
        assert_eq!(first.kind, span::SpanKind::Server as i32);
        assert_eq!(
            (first.start_time_unix_nano, first.end_time_unix_nano),
            (1_700_000_000_000_000_001, 1_700_000_000_000_900_000)
        );
        assert_eq!(
            first.attributes,
            [
                kv("http.route", Value::StringValue(long)),
                kv("http.response.status_code", Value::IntValue(200)),
                kv("negative", Value::IntValue(-5)),
                kv("scoped", Value::BoolValue(false)),
                kv("ratio", Value::DoubleValue(0.25)),
                kv("empty", Value::StringValue(String::new())),
            ]
        );
        assert_eq!(first.events.len(), 1);
        assert_eq!(first.events[0].name, "the database said no");
        assert_eq!(first.events[0].time_unix_nano, 1_700_000_000_000_500_000);
        assert_eq!(
            first.events[0].attributes,
            [kv("level", Value::StringValue("ERROR".into()))]
        );
        assert_eq!(
            first.status,
            Some(Status {
                message: "boom".into(),
                code: 2
            })
        );
        assert_eq!(first.flags, 0x301, "sampled, with a remote parent");

        let second = &decoded[1];
        assert_eq!(hex::encode(&second.trace_id), "00000000000000000000000000000001");
        assert!(second.parent_span_id.is_empty() && second.trace_state.is_empty());
        assert_eq!(second.kind, span::SpanKind::Internal as i32);
        assert_eq!(second.status, None);
        assert_eq!(second.flags, 0x101);
    }
}
