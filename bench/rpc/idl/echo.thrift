// The RPC benchmark's service: the client sends a payload, the server sends
// it back unchanged. kitex_gen/ is generated from this file (see bench/README.md).
namespace go echo

struct EchoRequest {
    1: required binary payload
}

struct EchoResponse {
    1: required binary payload
}

service Echo {
    EchoResponse Echo(1: EchoRequest req)
}
