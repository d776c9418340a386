//! `service::ServiceClient` against the local hub: every data-plane operation, as a real
//! app server would call it, observed from raw WebSocket clients.

mod support;

use serde_json::json;
use support::hub::*;
use support::ws::*;
use webpubsub_fleet::credential::TokenOptions;
use webpubsub_fleet::hub::Hub;
use webpubsub_fleet::protocol::Secret;
use webpubsub_fleet::service::{
    CloseOptions, Content, ListOptions, Permission, RetryPolicy, SendOptions, ServiceClient,
    ServiceError, ServiceOptions,
};

fn service(hub: &Hub) -> ServiceClient {
    ServiceClient::from_connection_string(
        &hub.connection_string().expose(),
        HUB,
        ServiceOptions::new().retry(RetryPolicy::none()),
    )
    .expect("the hub's connection string is valid")
}

#[actix_rt::test]
async fn sends_reach_all_groups_users_and_connections_with_each_content_type() {
    let hub = start_hub().await;
    let service = service(&hub);
    let mut a1 = connect(&hub, JSON, Some("a"), &[], &["g"]).await;
    let mut a2 = connect(&hub, JSON, Some("a"), &[], &[]).await;
    let mut b = connect(&hub, RELIABLE, Some("b"), &[], &["g"]).await;

    let all = SendOptions::new().exclude(a2.connection_id.clone());
    service.send_to_all("text", &all).await.unwrap();
    assert_eq!(
        a1.next_json().await,
        json!({"type":"message","from":"server","dataType":"text","data":"text"})
    );
    assert_eq!(b.next_json().await["data"], "text");
    service
        .send_to_all(
            json!({"k": [1, "v"]}),
            &SendOptions::new().message_ttl_seconds(30),
        )
        .await
        .unwrap();
    for c in [&mut a1, &mut a2, &mut b] {
        let m = c.next_json().await;
        assert_eq!(
            (m["dataType"].clone(), m["data"].clone()),
            (json!("json"), json!({"k": [1, "v"]}))
        );
    }
    service
        .send_to_all(
            Content::binary(vec![1u8, 2, 3]),
            &SendOptions::new().filter("userId eq 'b'"),
        )
        .await
        .unwrap();
    let bin = b.next_json().await;
    assert_eq!(
        (bin["dataType"].clone(), bin["data"].clone()),
        (json!("binary"), json!("AQID"))
    );

    service
        .send_to_group(
            "g",
            "to g",
            &SendOptions::new().exclude(a1.connection_id.clone()),
        )
        .await
        .unwrap();
    assert_eq!(b.next_json().await["data"], "to g");
    service
        .send_to_group(
            "g",
            "to g filtered",
            &SendOptions::new().filter("userId eq 'a'"),
        )
        .await
        .unwrap();
    assert_eq!(a1.next_json().await["data"], "to g filtered");

    service
        .send_to_user("a", "to a", &SendOptions::new())
        .await
        .unwrap();
    assert_eq!(a1.next_json().await["data"], "to a");
    assert_eq!(a2.next_json().await["data"], "to a");
    service
        .send_to_connection(&a2.connection_id, "to a2", &SendOptions::new())
        .await
        .unwrap();
    assert_eq!(a2.next_json().await["data"], "to a2");

    // Refused here, before any request.
    let ttl = service
        .send_to_all("x", &SendOptions::new().message_ttl_seconds(301))
        .await
        .unwrap_err();
    assert!(
        matches!(
            ttl,
            ServiceError::InvalidArgument {
                name: "message_ttl_seconds",
                ..
            }
        ),
        "{ttl}"
    );
    // Refused by the hub, with its error body.
    let filter = service
        .send_to_all("x", &SendOptions::new().filter("userId gt 1"))
        .await
        .unwrap_err();
    match &filter {
        ServiceError::Status {
            status, code, body, ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(code.as_deref(), Some("InvalidFilter"));
            assert!(body.contains("InvalidFilter"), "{body}");
        }
        other => panic!("expected a status error, got {other}"),
    }
    assert_eq!(filter.status(), Some(400));
    assert!(!filter.is_transient());

    a1.expect_silence().await;
    a2.expect_silence().await;
    b.expect_silence().await;
    hub.stop().await;
}

#[actix_rt::test]
async fn exists_checks_answer_true_and_false() {
    let hub = start_hub().await;
    let service = service(&hub);
    let c = connect(&hub, JSON, Some("u"), &[], &["g"]).await;
    assert!(service.connection_exists(&c.connection_id).await.unwrap());
    assert!(!service.connection_exists("nobody").await.unwrap());
    assert!(service.group_exists("g").await.unwrap());
    assert!(!service.group_exists("empty").await.unwrap());
    assert!(service.user_exists("u").await.unwrap());
    assert!(!service.user_exists("ghost").await.unwrap());
    hub.stop().await;
}

#[actix_rt::test]
async fn group_membership_by_connection_user_and_filter() {
    let hub = start_hub().await;
    let service = service(&hub);
    let mut a = connect(&hub, JSON, Some("a"), &[], &[]).await;
    let mut b = connect(&hub, JSON, Some("b"), &[], &[]).await;
    let ids = |members: Vec<webpubsub_fleet::service::GroupMember>| {
        let mut ids: Vec<_> = members.into_iter().map(|m| m.connection_id).collect();
        ids.sort();
        ids
    };
    let mut both = vec![a.connection_id.clone(), b.connection_id.clone()];
    both.sort();

    service
        .add_connection_to_group("g", &a.connection_id)
        .await
        .unwrap();
    service.add_user_to_group("g", "b").await.unwrap();
    assert_eq!(
        ids(service
            .list_connections_in_group("g", &ListOptions::new())
            .await
            .unwrap()),
        both
    );
    service
        .remove_connection_from_group("g", &a.connection_id)
        .await
        .unwrap();
    service.remove_user_from_group("g", "b").await.unwrap();
    assert!(!service.group_exists("g").await.unwrap());

    service
        .add_connection_to_group("h", &a.connection_id)
        .await
        .unwrap();
    service
        .add_connection_to_group("i", &a.connection_id)
        .await
        .unwrap();
    service
        .remove_connection_from_all_groups(&a.connection_id)
        .await
        .unwrap();
    assert!(!service.group_exists("h").await.unwrap() && !service.group_exists("i").await.unwrap());
    service.add_user_to_group("h", "b").await.unwrap();
    service.remove_user_from_all_groups("b").await.unwrap();
    assert!(!service.group_exists("h").await.unwrap());

    service
        .add_connections_to_groups(&["x", "y"], "userId eq 'a'")
        .await
        .unwrap();
    assert_eq!(
        ids(service
            .list_connections_in_group("y", &ListOptions::new())
            .await
            .unwrap()),
        [a.connection_id.clone()]
    );
    service
        .send_to_group("x", "in x", &SendOptions::new())
        .await
        .unwrap();
    assert_eq!(a.next_json().await["data"], "in x");
    service
        .remove_connections_from_groups(&["x"], "userId eq 'a'")
        .await
        .unwrap();
    assert!(!service.group_exists("x").await.unwrap());
    assert!(service.group_exists("y").await.unwrap());

    // The service answers 404 for a connection that is not there.
    let missing = service
        .add_connection_to_group("g", "nobody")
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(404), "{missing}");
    a.expect_silence().await;
    b.expect_silence().await;
    hub.stop().await;
}

#[actix_rt::test]
async fn listing_pages_through_nextlink_and_stops_at_top() {
    let hub = start_hub().await;
    let service = service(&hub);
    let mut clients = Vec::new();
    for i in 0..5 {
        clients.push(connect(&hub, JSON, Some(&format!("u{i}")), &[], &["many"]).await);
    }
    let mut expected: Vec<_> = clients.iter().map(|c| c.connection_id.clone()).collect();
    expected.sort();
    let first = service
        .group_connections_page("many", &ListOptions::new().max_page_size(2))
        .await
        .unwrap();
    assert_eq!(first.value.len(), 2);
    assert!(first.next_link.is_some());
    let all = service
        .list_connections_in_group("many", &ListOptions::new().max_page_size(2))
        .await
        .unwrap();
    let mut got: Vec<_> = all.iter().map(|m| m.connection_id.clone()).collect();
    got.sort();
    assert_eq!(got, expected);
    assert!(
        all.iter()
            .all(|m| m.user_id.as_deref().is_some_and(|u| u.starts_with('u')))
    );
    let top = service
        .list_connections_in_group("many", &ListOptions::new().max_page_size(2).top(3))
        .await
        .unwrap();
    assert_eq!(top.len(), 3);
    // A nextLink to another origin is refused: the token would go there.
    let elsewhere = service
        .next_group_connections_page("http://example.com/api/hubs/chat/groups/many/connections")
        .await
        .unwrap_err();
    assert!(
        matches!(elsewhere, ServiceError::InvalidResponse { .. }),
        "{elsewhere}"
    );
    hub.stop().await;
}

#[actix_rt::test]
async fn closes_carry_the_reason_and_spare_the_excluded() {
    let hub = start_hub().await;
    let service = service(&hub);
    let mut one = connect(&hub, JSON, Some("one"), &[], &[]).await;
    service
        .close_connection(&one.connection_id, Some("bye"))
        .await
        .unwrap();
    let (code, frames) = one.until_closed().await;
    assert_eq!(code, Some(1000));
    assert_eq!(
        frames,
        vec![json!({"type":"system","event":"disconnected","message":"bye"})]
    );

    let mut in_group = connect(&hub, JSON, Some("g1"), &[], &["g"]).await;
    service
        .close_group_connections("g", &CloseOptions::new().reason("group closed"))
        .await
        .unwrap();
    let (_, frames) = in_group.until_closed().await;
    assert_eq!(frames[0]["message"], "group closed");

    let mut user = connect(&hub, JSON, Some("x"), &[], &[]).await;
    service
        .close_user_connections("x", &CloseOptions::new())
        .await
        .unwrap();
    assert_eq!(user.until_closed().await.0, Some(1000));

    let mut kept = connect(&hub, JSON, Some("kept"), &[], &[]).await;
    let mut gone = connect(&hub, JSON, Some("gone"), &[], &[]).await;
    service
        .close_all_connections(
            &CloseOptions::new()
                .exclude(kept.connection_id.clone())
                .reason("all"),
        )
        .await
        .unwrap();
    let (_, frames) = gone.until_closed().await;
    assert_eq!(frames[0]["message"], "all");
    kept.expect_silence().await;
    assert!(
        service
            .connection_exists(&kept.connection_id)
            .await
            .unwrap()
    );
    hub.stop().await;
}

#[actix_rt::test]
async fn permissions_are_granted_checked_and_revoked() {
    let hub = start_hub().await;
    let service = service(&hub);
    let mut c = connect(&hub, JSON, Some("p"), &[], &[]).await;
    let id = c.connection_id.clone();
    assert!(
        !service
            .has_permission(Permission::JoinLeaveGroup, &id, Some("room"))
            .await
            .unwrap()
    );
    service
        .grant_permission(Permission::JoinLeaveGroup, &id, Some("room"))
        .await
        .unwrap();
    assert!(
        service
            .has_permission(Permission::JoinLeaveGroup, &id, Some("room"))
            .await
            .unwrap()
    );
    assert!(
        !service
            .has_permission(Permission::JoinLeaveGroup, &id, Some("other"))
            .await
            .unwrap()
    );
    // The grant is what lets the client join.
    assert_eq!(c.join("room", 1).await["success"], true);
    service
        .revoke_permission(Permission::JoinLeaveGroup, &id, Some("room"))
        .await
        .unwrap();
    assert!(
        !service
            .has_permission(Permission::JoinLeaveGroup, &id, Some("room"))
            .await
            .unwrap()
    );
    assert_eq!(c.join("room", 2).await["success"], false);
    service
        .grant_permission(Permission::SendToGroup, &id, None)
        .await
        .unwrap();
    assert!(
        service
            .has_permission(Permission::SendToGroup, &id, Some("any"))
            .await
            .unwrap()
    );
    hub.stop().await;
}

#[actix_rt::test]
async fn client_tokens_minted_locally_and_by_the_hub_both_connect() {
    let hub = start_hub().await;
    let service = service(&hub);
    let options = TokenOptions::new()
        .user_id("t")
        .role("webpubsub.sendToGroup")
        .group("joined");

    let local = service.client_access_token(&options).unwrap();
    assert_eq!(
        local.base_url,
        format!("ws://{}/client/hubs/{HUB}", hub.addr())
    );
    assert!(local.url.to_string().ends_with("access_token=[REDACTED]"));
    let ws = open(local.url.expose().as_str(), Some(JSON))
        .await
        .expect("local token connects");
    let c = Peer::from_socket(ws).await;
    assert_eq!(c.connected["userId"], "t");

    let remote = service.generate_client_token(&options).await.unwrap();
    assert_eq!(format!("{remote:?}"), "[REDACTED]");
    let ws = open(&client_url(&hub, HUB, remote.expose()), Some(JSON))
        .await
        .expect("hub token connects");
    let c2 = Peer::from_socket(ws).await;
    assert_eq!(c2.connected["userId"], "t");
    let members = service
        .list_connections_in_group("joined", &ListOptions::new())
        .await
        .unwrap();
    assert_eq!(members.len(), 2);
    hub.stop().await;
}

#[actix_rt::test]
async fn a_wrong_key_is_a_401_whose_error_holds_neither_key_nor_token() {
    let hub = start_hub().await;
    let wrong_key = "wrong-key-that-must-not-print";
    let service = ServiceClient::from_endpoint(
        &hub.endpoint(),
        Secret::new(wrong_key),
        HUB,
        ServiceOptions::new().retry(RetryPolicy::none()),
    )
    .unwrap();
    let error = service
        .send_to_all("x", &SendOptions::new())
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(401));
    let printed = format!("{error} {error:?} {service:?}");
    assert!(!printed.contains(wrong_key), "{printed}");
    assert!(!printed.contains("eyJ"), "a JWT leaked: {printed}");
    let right = hub.access_key().expose().to_owned();
    assert!(!format!("{:?}", self::service(&hub)).contains(&right));
    hub.stop().await;
}
