//! Any bytes as an OTLP trace export, protobuf and JSON: decoded or refused, and every
//! decoded span turned into a usage record or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = ExportTraceServiceRequest::decode(data) {
        let _ = llm_meter::otlp::usage_spans(&request);
    }
    if let Ok(request) = serde_json::from_slice::<ExportTraceServiceRequest>(data) {
        let _ = llm_meter::otlp::usage_spans(&request);
    }
});
