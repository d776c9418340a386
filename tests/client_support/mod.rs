//! What the client tests share: an inbox that records every group message a client receives,
//! a checker of a receiver's history of messages `0..n`, and a wait for the next event of a
//! kind.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use webpubsub_fleet::client::{Client, Event, EventKind, EventStream};

/// How long an inbox waits for its messages: long enough for a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(20);

/// Records the text of every group message, in arrival order.
#[derive(Clone, Default)]
pub struct Inbox(Arc<Mutex<Vec<String>>>);

impl Inbox {
    pub async fn attach(client: &Client) -> Inbox {
        let inbox = Inbox::default();
        let sink = inbox.clone();
        client
            .subscribe(EventKind::GroupMessage, move |e| {
                if let Event::GroupMessage(m) = e {
                    sink.0
                        .lock()
                        .unwrap()
                        .push(m.data.as_text().unwrap_or_default().to_owned());
                }
            })
            .await
            .unwrap();
        inbox
    }

    pub async fn wait_len(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let got = self.0.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} messages arrived; {}",
                got.len(),
                verdict(&got, n)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The checker of reliability.md section 1 for one receiver of messages `0..n` from one
/// publisher: lost, duplicated, reordered and unexpected counts.
pub fn verdict(got: &[String], n: usize) -> String {
    let mut seen = vec![0u32; n];
    let (mut unexpected, mut reordered, mut last) = (0, 0, None);
    for s in got {
        match s.parse::<usize>().ok().filter(|&i| i < n) {
            Some(i) => {
                seen[i] += 1;
                if last.is_some_and(|l| i <= l) {
                    reordered += 1;
                }
                last = Some(i);
            }
            None => unexpected += 1,
        }
    }
    let lost = seen.iter().filter(|&&c| c == 0).count();
    let duplicated: u32 = seen.iter().map(|&c| c.saturating_sub(1)).sum();
    format!("lost {lost}, duplicated {duplicated}, reordered {reordered}, unexpected {unexpected}")
}

/// The next event of `kind`, skipping others; panics when the stream ends or `deadline`
/// passes first, so a hang fails the test instead of stalling it.
pub async fn next_event(events: &mut EventStream, kind: EventKind, deadline: Duration) -> Event {
    tokio::time::timeout(deadline, async {
        loop {
            match events.recv().await {
                Some(e) if e.kind() == kind => return e,
                Some(_) => {}
                None => panic!("event stream ended while waiting for {kind:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind:?} event before the deadline"))
}
