//! The load recorder's cost per delivery: the path a client's `Observer::observe` takes for
//! a group message (stamp parse, the receiver's group track and publisher stream, the
//! sequence-number range set, the latency histograms), in the shape of the profiled fleet:
//! 1,000 clients in groups of 100, one publisher per group with an increasing sequence,
//! 128-byte stamped text payloads. One iteration delivers one publish of every group to
//! all of the group's members; criterion's throughput line reads as deliveries per second.
//!
//! Run: `cargo bench --bench recorder` (the time per delivery is the iteration's time
//! divided by [`CLIENTS`]).

use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use webpubsub_fleet::client::{Event, GroupMessage, Observer};
use webpubsub_fleet::load::{Clock, Recorder, Stamp};
use webpubsub_fleet::protocol::Payload;

/// Receivers in one group.
const GROUP_SIZE: u64 = 100;
/// Groups, one publisher each.
const GROUPS: u64 = 10;
/// Clients of the fleet.
const CLIENTS: u64 = GROUP_SIZE * GROUPS;
/// The load command's default payload size.
const PAYLOAD: usize = 128;
/// How long before its delivery a message was stamped, µs (a typical latency).
const LATENCY_US: u64 = 3_000;

fn group_name(g: u64) -> String {
    format!("group-{g}")
}

/// A connected fleet's recorder: every client is a member of its group since connecting.
fn connected_recorder(clock: Clock) -> Recorder {
    let recorder = Recorder::new(CLIENTS, clock, |i| vec![group_name(i / GROUP_SIZE)]);
    for i in 0..CLIENTS {
        let connected = Event::Connected {
            connection_id: format!("conn-{i}"),
            user_id: None,
        };
        recorder.observe(i, &connected);
    }
    recorder
}

/// The next publish of every group's publisher (the group's first client), as the events
/// its members receive.
fn next_publishes(clock: Clock, seq: u64) -> Vec<(u64, Event)> {
    (0..GROUPS)
        .map(|g| {
            let stamp = Stamp {
                publisher: g * GROUP_SIZE,
                seq,
                sent_us: clock.now_us().saturating_sub(LATENCY_US),
            };
            let message = GroupMessage {
                group: group_name(g),
                from_user_id: None,
                data: Payload::Text(stamp.to_payload(PAYLOAD)),
                sequence_id: None,
            };
            (g, Event::GroupMessage(Arc::new(message)))
        })
        .collect()
}

fn deliveries(c: &mut Criterion) {
    let clock = Clock::new();
    let recorder = connected_recorder(clock);
    let mut seq = 0;
    let mut group = c.benchmark_group("recorder");
    group.throughput(Throughput::Elements(CLIENTS));
    group.bench_function("deliver_group_message_x1000", |b| {
        b.iter_batched(
            || {
                seq += 1;
                next_publishes(clock, seq)
            },
            |publishes| {
                for (g, event) in &publishes {
                    for member in g * GROUP_SIZE..(g + 1) * GROUP_SIZE {
                        recorder.observe(member, event);
                    }
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    // The bench measured what it meant to: every delivery was in order and counted.
    let stats = recorder.stats();
    assert_eq!(stats.delivered, stats.latency_ms.count);
}

fn parse(c: &mut Criterion) {
    let text = Stamp {
        publisher: 900,
        seq: 1_234_567,
        sent_us: 98_765_432_100,
    }
    .to_payload(PAYLOAD);
    c.bench_function("recorder/stamp_parse", |b| {
        b.iter(|| Stamp::parse(std::hint::black_box(&text)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = deliveries, parse
}
criterion_main!(benches);
