//! Reliability matrix row 15 at a size for CI (reliability.md section 5): a load run with
//! chaos (a share of the sockets dropped every half second) and a hub-side `stop_reading`
//! of 1 % of the connections (at least one).
//! The stalled client's requests go unanswered until the hub's silence timeout drops its
//! socket; it recovers and resends. The checker must find nothing lost, duplicated,
//! reordered or unexpected, and `max_loss 0` must pass. The full-size row (2,000 clients,
//! 60 s) is an ignored test here, for a quiet machine (docs/performance.md).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use webpubsub_fleet::fleet::FleetTarget;
use webpubsub_fleet::hub::{Fault, Hub, HubConfig, Target};
use webpubsub_fleet::load::{self, Chaos, Groups, Limit, LoadPlan, Thresholds};

/// The share of connections the first chaos round stops reading: one of the CI run's 30,
/// twenty of the full row's 2,000.
const STALL_SHARE: f64 = 0.01;

/// The size of a run.
struct Size {
    clients: u64,
    group_size: u64,
    /// Messages per second per group (one sender each).
    rate: f64,
    duration: Duration,
    /// Share dropped per chaos round, and the time between rounds.
    chaos: (f64, Duration),
    /// The hub's silence timeout: how long the stalled reader stalls.
    silence: Duration,
}

#[actix_rt::test]
async fn chaos_and_a_stalled_reader_lose_nothing() {
    row_15(Size {
        clients: 30,
        group_size: 10,
        rate: 20.0,
        duration: Duration::from_secs(4),
        chaos: (0.1, Duration::from_millis(500)),
        silence: Duration::from_secs(1),
    })
    .await;
}

/// The full row: 2,000 clients, 20 groups of 100, 5 messages/s per group, 60 s, 5 % every
/// 2 s. For a quiet machine only (docs/performance.md):
/// `cargo test --release --test load_stop_reading -- --ignored --nocapture`.
#[actix_rt::test]
#[ignore = "2,000 clients for 60 s: run on a quiet machine"]
async fn row_15_at_full_size() {
    row_15(Size {
        clients: 2000,
        group_size: 100,
        rate: 5.0,
        duration: Duration::from_secs(60),
        chaos: (0.05, Duration::from_secs(2)),
        silence: Duration::from_secs(5),
    })
    .await;
}

async fn row_15(size: Size) {
    let config = HubConfig::new()
        .bind("127.0.0.1:0".parse().unwrap())
        .workers(1)
        .keepalive_interval(size.silence / 5)
        .client_timeout(size.silence);
    let hub = Hub::start(config).await.unwrap();
    let chaos_hub = hub.clone();
    // How many connections the first round stalled (`usize::MAX` until it ran).
    let stalled = Arc::new(AtomicUsize::new(usize::MAX));
    let stalled_in_run = stalled.clone();
    let plan = LoadPlan {
        clients: size.clients,
        duration: size.duration,
        fds_per_client: 2,
        arbiters: 1,
        seed: 15,
        target_name: "local hub".into(),
        thresholds: Thresholds {
            max_loss: Some(Limit::Count(0)),
            ..Thresholds::default()
        },
        chaos: Some(Chaos {
            share: size.chaos.0,
            period: size.chaos.1,
            inject: Arc::new(move |share| {
                // The first round also stalls 1 % of the readers (at least one); every round drops a share.
                if stalled_in_run.load(Ordering::SeqCst) == usize::MAX {
                    let n = chaos_hub.inject(Fault::StopReading(Target::Fraction(STALL_SHARE)));
                    stalled_in_run.store(n, Ordering::SeqCst);
                }
                chaos_hub.drop_fraction(share);
                async { Ok(()) }.boxed()
            }),
        }),
        ..LoadPlan::default()
    };
    let groups = Groups {
        group_size: size.group_size,
        senders: 1,
        rate: size.rate,
    };
    let target = FleetTarget::new(hub.connection_string(), "loadtest");
    let report = load::run(target, plan, Arc::new(groups), |_| {})
        .await
        .expect("the run completes");
    eprintln!("{report}");
    support::assert_no_violations(&report);
    let c = &report.messages.checked;
    assert!(c.delivered > 0 && report.recoveries > 0, "{report}");
    assert!(report.thresholds.passed, "{report}");
    assert_eq!(
        stalled.load(Ordering::SeqCst),
        (size.clients as f64 * STALL_SHARE).ceil() as usize,
        "1 % of the connections (at least one) stopped being read"
    );
    assert!(hub.stats().drops > 0);
    hub.stop().await;
}
