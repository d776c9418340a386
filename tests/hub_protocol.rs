//! The hub's JSON protocol: groups, publishing, noEcho, roles, acks, duplicates, events.

mod support;

use serde_json::json;
use support::http::*;
use support::hub::*;
use support::ws::*;

#[tokio::test]
async fn join_send_receive_with_no_echo_and_from_user_id() {
    let hub = start_hub().await;
    // Two connections of the same user: noEcho excludes only the sending connection.
    let mut a1 = connect_all(&hub, RELIABLE, "alice").await;
    let mut a2 = connect_all(&hub, JSON, "alice").await;
    let mut b = connect_all(&hub, RELIABLE, "bob").await;
    for (c, id) in [(&mut a1, 1), (&mut a2, 1), (&mut b, 1)] {
        assert_eq!(
            c.join("g", id).await,
            json!({"type":"ack","ackId":1,"success":true})
        );
    }

    let ack = a1
        .request(
            json!({"type":"sendToGroup","group":"g","noEcho":true,"dataType":"text","data":"hi"}),
            2,
        )
        .await;
    assert_eq!(ack["success"], true);
    let expected = json!({"type":"message","from":"group","group":"g","fromUserId":"alice","dataType":"text","data":"hi"});
    assert_eq!(
        a2.next_json().await,
        expected,
        "other connection of the same user receives"
    );
    let mut with_seq = expected.clone();
    with_seq["sequenceId"] = json!(1);
    assert_eq!(
        b.next_json().await,
        with_seq,
        "reliable receivers get a sequence id"
    );
    a1.expect_silence().await;

    // Without noEcho the sender receives its own message, with its own next sequence id.
    a1.send_json(json!({"type":"sendToGroup","group":"g","dataType":"json","data":{"n":1}}))
        .await;
    let own = a1.next_json().await;
    assert_eq!(own["data"], json!({"n":1}));
    assert_eq!(own["sequenceId"], 1);
    assert_eq!(b.next_json().await["sequenceId"], 2);
    // No ackId: no ack.
    a1.expect_silence().await;
    hub.stop().await;
}

#[tokio::test]
async fn token_groups_are_joined_before_any_traffic() {
    let hub = start_hub().await;
    let mut member = connect(&hub, JSON, Some("m"), &[], &["g1", "g2"]).await;
    let mut sender = connect_all(&hub, JSON, "s").await;
    sender
        .request(
            json!({"type":"sendToGroup","group":"g2","dataType":"text","data":"x"}),
            1,
        )
        .await;
    assert_eq!(member.next_json().await["group"], "g2");
    hub.stop().await;
}

#[tokio::test]
async fn forbidden_without_the_role_and_exact_per_group_roles() {
    let hub = start_hub().await;
    let mut c = connect(
        &hub,
        RELIABLE,
        Some("u"),
        &[
            "webpubsub.sendToGroup.a",
            "webpubsub.joinLeaveGroups.room.*",
        ],
        &[],
    )
    .await;
    let denied = c.join("a", 1).await;
    assert_eq!(denied["success"], false);
    assert_eq!(denied["error"]["name"], "Forbidden");
    assert_eq!(c.join("room.1", 2).await["success"], true);
    assert_eq!(c.join("room.1.x", 3).await["error"]["name"], "Forbidden");
    let send =
        |group: &str| json!({"type":"sendToGroup","group":group,"dataType":"text","data":"x"});
    assert_eq!(c.request(send("a"), 4).await["success"], true);
    for (i, other) in ["a.b", "A", "a*"].into_iter().enumerate() {
        let ack = c.request(send(other), 10 + i as u64).await;
        assert_eq!(ack["error"]["name"], "Forbidden", "{other}");
        assert_eq!(
            ack["error"]["message"],
            format!("The client has no permission to send message to group '{other}'.")
        );
    }
    // Events need no role.
    let event = c
        .request(
            json!({"type":"event","event":"e","dataType":"text","data":"x"}),
            20,
        )
        .await;
    assert_eq!(event["success"], true);
    assert!(hub.stats().forbidden >= 5);
    hub.stop().await;
}

#[tokio::test]
async fn a_reused_ack_id_gets_duplicate_and_is_not_executed_again() {
    let hub = start_hub().await;
    let mut sender = connect_all(&hub, RELIABLE, "s").await;
    let mut receiver = connect_all(&hub, RELIABLE, "r").await;
    receiver.join("g", 1).await;
    let publish = json!({"type":"sendToGroup","group":"g","dataType":"text","data":"once"});
    assert_eq!(sender.request(publish.clone(), 7).await["success"], true);
    assert_eq!(receiver.next_json().await["data"], "once");
    let again = sender.request(publish, 7).await;
    assert_eq!(
        again,
        json!({"type":"ack","ackId":7,"success":false,"error":{"name":"Duplicate","message":"Message with ack-id: 7 has been processed"}})
    );
    receiver.expect_silence().await;
    // The same id on another connection is independent.
    assert_eq!(receiver.join("g2", 7).await["success"], true);
    assert_eq!(hub.stats().duplicates, 1);
    hub.stop().await;
}

#[tokio::test]
async fn ping_pong_and_events() {
    let hub = start_hub_with(|c| c.echo_events(true)).await;
    let mut c = connect(&hub, RELIABLE, None, &[], &[]).await;
    c.send_json(json!({"type":"ping"})).await;
    assert_eq!(c.next_json().await, json!({"type":"pong"}));
    let ack = c
        .request(
            json!({"type":"event","event":"echo","dataType":"json","data":{"k":[1,2]}}),
            1,
        )
        .await;
    assert_eq!(ack["success"], true);
    assert_eq!(
        c.next_json().await,
        json!({"sequenceId":1,"type":"message","from":"server","dataType":"json","data":{"k":[1,2]}})
    );
    hub.stop().await;
}

#[tokio::test]
async fn invalid_requests_with_an_ack_id_get_a_failed_ack_and_the_connection_stays() {
    let hub = start_hub().await;
    let mut c = connect_all(&hub, JSON, "u").await;
    c.send_json(json!({"type":"sendToGroup","group":"g","ackId":3,"dataType":"nope","data":"x"}))
        .await;
    let ack = c.next_json().await;
    assert_eq!(ack["ackId"], 3);
    assert_eq!(ack["success"], false);
    assert_eq!(ack["error"]["name"], "BadRequest");
    assert!(
        ack["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dataType")
    );
    // Still usable.
    assert_eq!(c.join("g", 4).await["success"], true);
    hub.stop().await;
}

#[tokio::test]
async fn fan_out_stamps_each_receiver_with_its_own_sequence() {
    let hub = start_hub().await;
    let mut receivers = Vec::new();
    for i in 0..20 {
        let mut r = connect_all(&hub, RELIABLE, &format!("r{i}")).await;
        r.join("big", 1).await;
        receivers.push(r);
    }
    // One receiver already got a message of its own, so its ids are one ahead.
    let mut sender = connect_all(&hub, JSON, "s").await;
    hub_rest_send_to_connection(&hub, &receivers[0].connection_id).await;
    assert_eq!(receivers[0].next_json().await["sequenceId"], 1);
    for n in 0..3 {
        sender
            .request(json!({"type":"sendToGroup","group":"big","dataType":"text","data":format!("m{n}")}), 10 + n)
            .await;
    }
    for (i, r) in receivers.iter_mut().enumerate() {
        for n in 0..3u64 {
            let m = r.next_json().await;
            assert_eq!(m["data"], format!("m{n}"));
            let expected = if i == 0 { n + 2 } else { n + 1 };
            assert_eq!(m["sequenceId"], expected, "receiver {i}");
        }
    }
    hub.stop().await;
}

async fn hub_rest_send_to_connection(hub: &webpubsub_fleet::hub::Hub, id: &str) {
    let r = rest(
        hub,
        "POST",
        &format!("/api/hubs/{HUB}/connections/{id}/:send?api-version=2024-01-01"),
        Some("text/plain"),
        b"direct",
    )
    .await;
    assert_eq!(r.status, 202, "{r:?}");
}
