//! Codec benchmarks: decoding a group message of about 100 bytes of data into a
//! dispatch-ready `Inbound`, and encoding a `sendToGroup`; the same rows for the protobuf
//! codec (`protobuf_*`), on the same message.
//!
//! Run: `cargo bench --bench codec`. With `--features fuzzing`, two more rows decode the same
//! frames with the JSON codec's precise path alone (`precise_*`: what every frame cost before
//! the one-pass fast path), for a before/after in one run.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use webpubsub_fleet::protocol::json::{
    MessageFrame, decode_inbound, decode_outbound, encode_outbound,
};
use webpubsub_fleet::protocol::protobuf;
use webpubsub_fleet::protocol::{Inbound, Outbound, Payload};

/// About 100 bytes of text data, shaped like the load tool's stamped payloads.
const DATA: &str = "p=user-0017;s=000000000042;t=1732752000123456;xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

fn group_message() -> String {
    format!(
        r#"{{"sequenceId":1042,"type":"message","from":"group","group":"group-7","fromUserId":"user-0017","dataType":"text","data":"{DATA}"}}"#
    )
}

fn codec(c: &mut Criterion) {
    let inbound = group_message();
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode_group_message_100B", |b| {
        b.iter(|| decode_inbound(black_box(&inbound)).unwrap())
    });
    let send = Outbound::SendToGroup {
        group: "group-7".into(),
        ack_id: Some(1042),
        no_echo: false,
        data: Payload::Text(DATA.into()),
    };
    g.bench_function("encode_send_to_group_100B", |b| {
        b.iter(|| encode_outbound(black_box(&send)))
    });
    let encoded = encode_outbound(&send);
    g.bench_function("decode_send_to_group_100B_hub", |b| {
        b.iter(|| decode_outbound(black_box(&encoded)).unwrap())
    });
    #[cfg(feature = "fuzzing")]
    {
        use webpubsub_fleet::protocol::json::fuzzing;
        g.bench_function("precise_decode_group_message_100B", |b| {
            b.iter(|| fuzzing::precise_inbound(black_box(&inbound)).unwrap())
        });
        g.bench_function("precise_decode_send_to_group_100B_hub", |b| {
            b.iter(|| fuzzing::precise_outbound(black_box(&encoded)).unwrap())
        });
    }
    let frame = MessageFrame::group("group-7", Some("user-0017"), &Payload::Text(DATA.into()));
    g.bench_function("stamp_sequence_id_hub_fanout", |b| {
        b.iter(|| black_box(&frame).with_sequence_id(black_box(1042)))
    });

    // The same four rows in protobuf. A protobuf group message has no fromUserId field.
    let inbound = protobuf::encode_inbound(&Inbound::GroupMessage {
        sequence_id: Some(1042),
        group: "group-7".into(),
        from_user_id: None,
        data: Payload::Text(DATA.into()),
    })
    .unwrap();
    g.bench_function("protobuf_decode_group_message_100B", |b| {
        b.iter(|| protobuf::decode_inbound(black_box(&inbound)).unwrap())
    });
    g.bench_function("protobuf_encode_send_to_group_100B", |b| {
        b.iter(|| protobuf::encode_outbound(black_box(&send)))
    });
    let encoded = protobuf::encode_outbound(&send);
    g.bench_function("protobuf_decode_send_to_group_100B_hub", |b| {
        b.iter(|| protobuf::decode_outbound(black_box(&encoded)).unwrap())
    });
    let frame = protobuf::MessageFrame::group("group-7", &Payload::Text(DATA.into()));
    g.bench_function("protobuf_stamp_sequence_id_hub_fanout", |b| {
        b.iter(|| black_box(&frame).with_sequence_id(black_box(1042)))
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
