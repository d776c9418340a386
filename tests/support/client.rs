//! What the tests of the real client share: a member's credential, an inbox that records every
//! group message a client receives, a checker of a receiver's history of messages `0..n`, and
//! a wait for the next event of a kind.

use std::sync::{Arc, Mutex};

use webpubsub_fleet::client::{Client, ClientOptions, Event, EventKind, EventStream};
use webpubsub_fleet::credential::{ConnectionString, Credential, TokenOptions};
use webpubsub_fleet::fleet::{Fleet, FleetStats};

use super::{eventually, within};

/// The roles of a member: join and leave any group, publish to any group.
pub const ROLES: [&str; 2] = ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"];

/// A credential for `user` with `roles` on hub `hub_name` of `cs`.
pub fn credential(cs: &ConnectionString, hub_name: &str, user: &str, roles: &[&str]) -> Credential {
    Credential::from_connection_string(
        cs.clone(),
        hub_name,
        TokenOptions::new()
            .user_id(user)
            .roles(roles.iter().copied()),
    )
    .expect("a valid credential")
}

/// A client (not started) of `user` with `roles` on hub `hub_name` of `cs`.
pub fn client(
    cs: &ConnectionString,
    hub_name: &str,
    user: &str,
    roles: &[&str],
    options: ClientOptions,
) -> Client {
    Client::new(credential(cs, hub_name, user, roles), options).expect("a client")
}

/// Records the text of every group message, in arrival order.
#[derive(Clone, Default)]
pub struct Inbox(Arc<Mutex<Vec<String>>>);

impl Inbox {
    /// An inbox subscribed to `client`'s group messages.
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

    /// Waits until `n` messages arrived; returns all that did.
    pub async fn wait_len(&self, n: usize) -> Vec<String> {
        eventually(format!("{n} messages in the inbox"), async || {
            let got = self.0.lock().unwrap().clone();
            if got.len() >= n {
                Ok(got)
            } else {
                Err(format!("{} arrived; {}", got.len(), verdict(&got, n)))
            }
        })
        .await
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

/// Asserts `got` is exactly `0..n`, in order, with the checker's counts when it is not.
pub fn assert_exactly_once_in_order(got: &[String], n: usize) {
    let expected: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    assert!(got == expected, "{}", verdict(got, n));
}

/// The next event of `kind`, skipping others; panics when the stream ends or the deadline
/// passes first, so a hang fails the test instead of stalling it.
pub async fn next_of(events: &mut EventStream, kind: EventKind) -> Event {
    within(format!("a {kind:?} event"), async {
        loop {
            match events.recv().await {
                Some(e) if e.kind() == kind => return e,
                Some(_) => {}
                None => panic!("event stream ended while waiting for {kind:?}"),
            }
        }
    })
    .await
}

/// Polls a fleet's counters until `done` holds; returns them.
pub async fn fleet_reaches(fleet: &Fleet, done: impl Fn(&FleetStats) -> bool) -> FleetStats {
    eventually("the fleet's counters", async || {
        let stats = fleet.stats();
        if done(&stats) {
            Ok(stats)
        } else {
            Err(format!("{stats:#?}"))
        }
    })
    .await
}
