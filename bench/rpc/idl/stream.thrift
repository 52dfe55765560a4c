// The RPC benchmark's streaming service: Kitex's thrift streaming over gRPC
// (HTTP/2). On one bidirectional stream the client sends payloads and the
// server sends each one back unchanged. kitex_gen/echostream/ is generated from
// this file (see bench/README.md); the namespace is not "stream" because the
// generated code names a parameter so.
namespace go echostream

struct StreamRequest {
    1: required binary payload
}

struct StreamResponse {
    1: required binary payload
}

service StreamEcho {
    StreamResponse Echo(1: StreamRequest req) (streaming.mode="bidirectional")
}
