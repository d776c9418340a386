//! The REST API (protocol.md 6) and the hub's `/_fleet` endpoints.

mod support;

use serde_json::json;
use support::eventually;
use support::http::*;
use support::hub::*;
use support::ws::*;

const V: &str = "api-version=2024-01-01";

#[tokio::test]
async fn health_needs_no_token_but_everything_else_does() {
    let hub = start_hub().await;
    assert_eq!(
        http(&hub, "HEAD", "/api/health", &[], b"").await.status,
        200
    );
    let path = format!("/api/hubs/{HUB}/:send?{V}");
    let none = http(&hub, "POST", &path, &[("Content-Type", "text/plain")], b"x").await;
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["code"], "Unauthorized");
    // A token for another URL does not open this one.
    let other = format!("Bearer {}", rest_token(&hub, "/api/hubs/other/:send"));
    let wrong = http(
        &hub,
        "POST",
        &path,
        &[("Authorization", &other), ("Content-Type", "text/plain")],
        b"x",
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.body.contains(other.trim_start_matches("Bearer ")));
    let stats = http(&hub, "GET", "/_fleet/stats", &[], b"").await;
    assert_eq!(stats.status, 401);
    hub.stop().await;
}

#[tokio::test]
async fn sends_map_content_type_to_data_type() {
    let hub = start_hub().await;
    let mut reliable = connect(&hub, RELIABLE, Some("alice"), &[], &[]).await;
    let mut plain = connect(&hub, JSON, Some("bob"), &[], &[]).await;
    let path = format!("/api/hubs/{HUB}/:send?{V}");
    assert_eq!(
        rest(&hub, "POST", &path, Some("text/plain"), b"hello")
            .await
            .status,
        202
    );
    assert_eq!(
        reliable.next_json().await,
        json!({"sequenceId":1,"type":"message","from":"server","dataType":"text","data":"hello"})
    );
    assert_eq!(
        plain.next_json().await,
        json!({"type":"message","from":"server","dataType":"text","data":"hello"})
    );
    let r = rest(
        &hub,
        "POST",
        &path,
        Some("application/json; charset=utf-8"),
        br#"{"a":[1,"b"]}"#,
    )
    .await;
    assert_eq!(r.status, 202);
    assert_eq!(plain.next_json().await["data"], json!({"a":[1,"b"]}));
    rest(
        &hub,
        "POST",
        &path,
        Some("application/octet-stream"),
        &[1, 2, 3],
    )
    .await;
    let binary = plain.next_json().await;
    assert_eq!(
        (binary["dataType"].clone(), binary["data"].clone()),
        (json!("binary"), json!("AQID"))
    );
    let unsupported = rest(&hub, "POST", &path, Some("image/png"), b"x").await;
    assert_eq!(unsupported.status, 415);
    assert_eq!(unsupported.json()["code"], "UnsupportedMediaType");
    let bad_json = rest(&hub, "POST", &path, Some("application/json"), b"{nope").await;
    assert_eq!(bad_json.status, 400);
    hub.stop().await;
}

#[tokio::test]
async fn send_to_user_connection_and_group_with_excluded_and_filter() {
    let hub = start_hub().await;
    let mut a1 = connect(&hub, JSON, Some("a"), &[], &["g"]).await;
    let mut a2 = connect(&hub, JSON, Some("a"), &[], &[]).await;
    let mut b = connect(&hub, JSON, Some("b"), &[], &["g"]).await;

    let to_user = format!("/api/hubs/{HUB}/users/a/:send?{V}");
    assert_eq!(
        rest(&hub, "POST", &to_user, Some("text/plain"), b"for a")
            .await
            .status,
        202
    );
    assert_eq!(a1.next_json().await["data"], "for a");
    assert_eq!(a2.next_json().await["data"], "for a");

    let to_conn = format!("/api/hubs/{HUB}/connections/{}/:send?{V}", a2.connection_id);
    rest(&hub, "POST", &to_conn, Some("text/plain"), b"for a2").await;
    assert_eq!(a2.next_json().await["data"], "for a2");

    let to_group = format!(
        "/api/hubs/{HUB}/groups/g/:send?{V}&excluded={}",
        a1.connection_id
    );
    rest(&hub, "POST", &to_group, Some("text/plain"), b"for g").await;
    assert_eq!(b.next_json().await["data"], "for g");

    let filtered = format!("/api/hubs/{HUB}/:send?{V}&filter=userId%20eq%20%27b%27");
    rest(&hub, "POST", &filtered, Some("text/plain"), b"only b").await;
    assert_eq!(b.next_json().await["data"], "only b");
    let bad_filter = format!("/api/hubs/{HUB}/:send?{V}&filter=userId%20gt%201");
    assert_eq!(
        rest(&hub, "POST", &bad_filter, Some("text/plain"), b"x")
            .await
            .status,
        400
    );

    a1.expect_silence().await;
    a2.expect_silence().await;
    b.expect_silence().await;
    hub.stop().await;
}

#[tokio::test]
async fn exists_checks() {
    let hub = start_hub().await;
    let c = connect(&hub, JSON, Some("u"), &[], &["g"]).await;
    let head = |path: String| {
        let hub = hub.clone();
        async move {
            rest(&hub, "HEAD", &format!("{path}?{V}"), None, b"")
                .await
                .status
        }
    };
    assert_eq!(
        head(format!("/api/hubs/{HUB}/connections/{}", c.connection_id)).await,
        200
    );
    assert_eq!(head(format!("/api/hubs/{HUB}/connections/nope")).await, 404);
    assert_eq!(
        head(format!("/api/hubs/other/connections/{}", c.connection_id)).await,
        404
    );
    assert_eq!(head(format!("/api/hubs/{HUB}/groups/g")).await, 200);
    assert_eq!(head(format!("/api/hubs/{HUB}/groups/h")).await, 404);
    assert_eq!(head(format!("/api/hubs/{HUB}/users/u")).await, 200);
    assert_eq!(head(format!("/api/hubs/{HUB}/users/v")).await, 404);
    hub.stop().await;
}

#[tokio::test]
async fn closing_connections() {
    let hub = start_hub().await;
    let mut reliable = connect(&hub, RELIABLE, Some("r"), &[], &[]).await;
    let mut plain = connect(&hub, JSON, Some("p"), &[], &["g"]).await;
    let mut other = connect(&hub, JSON, Some("o"), &[], &[]).await;

    let path = format!(
        "/api/hubs/{HUB}/connections/{}?{V}&reason=bye",
        reliable.connection_id
    );
    assert_eq!(rest(&hub, "DELETE", &path, None, b"").await.status, 204);
    let (code, frames) = reliable.until_closed().await;
    assert_eq!(
        code,
        Some(1008),
        "a removed reliable session must not be recovered"
    );
    assert_eq!(
        frames,
        vec![json!({"type":"system","event":"disconnected","message":"bye"})]
    );

    let path = format!("/api/hubs/{HUB}/groups/g/:closeConnections?{V}");
    assert_eq!(rest(&hub, "POST", &path, None, b"").await.status, 204);
    let (code, frames) = plain.until_closed().await;
    assert_eq!(code, Some(1000));
    assert_eq!(frames[0]["message"], "ClosedByAppServer");

    let kept = connect(&hub, JSON, Some("k"), &[], &[]).await;
    let path = format!(
        "/api/hubs/{HUB}/:closeConnections?{V}&excluded={}",
        kept.connection_id
    );
    rest(&hub, "POST", &path, None, b"").await;
    assert_eq!(other.until_closed().await.0, Some(1000));
    eventually("one connection left", async || hub.stats().connections == 1).await;

    let mut user = connect(&hub, JSON, Some("x"), &[], &[]).await;
    rest(
        &hub,
        "POST",
        &format!("/api/hubs/{HUB}/users/x/:closeConnections?{V}"),
        None,
        b"",
    )
    .await;
    assert_eq!(user.until_closed().await.0, Some(1000));
    hub.stop().await;
}

#[tokio::test]
async fn group_membership_of_connections_and_users() {
    let hub = start_hub().await;
    let mut c = connect(&hub, JSON, Some("u"), &[], &[]).await;
    let mut d = connect(&hub, JSON, Some("u"), &[], &[]).await;
    let id = c.connection_id.clone();
    let send_g = format!("/api/hubs/{HUB}/groups/g/:send?{V}");

    let add = format!("/api/hubs/{HUB}/groups/g/connections/{id}?{V}");
    assert_eq!(rest(&hub, "PUT", &add, None, b"").await.status, 200);
    let missing = format!("/api/hubs/{HUB}/groups/g/connections/nope?{V}");
    assert_eq!(rest(&hub, "PUT", &missing, None, b"").await.status, 404);
    rest(&hub, "POST", &send_g, Some("text/plain"), b"1").await;
    assert_eq!(c.next_json().await["data"], "1");
    d.expect_silence().await;
    assert_eq!(rest(&hub, "DELETE", &add, None, b"").await.status, 204);

    let add_user = format!("/api/hubs/{HUB}/users/u/groups/g?{V}");
    assert_eq!(rest(&hub, "PUT", &add_user, None, b"").await.status, 200);
    rest(&hub, "POST", &send_g, Some("text/plain"), b"2").await;
    assert_eq!(c.next_json().await["data"], "2");
    assert_eq!(d.next_json().await["data"], "2");

    let list = rest(
        &hub,
        "GET",
        &format!("/api/hubs/{HUB}/groups/g/connections?{V}&maxpagesize=1"),
        None,
        b"",
    )
    .await;
    assert_eq!(list.status, 200);
    let page = list.json();
    assert_eq!(page["value"].as_array().unwrap().len(), 1);
    assert_eq!(page["value"][0]["userId"], "u");
    assert!(
        page["nextLink"]
            .as_str()
            .unwrap()
            .contains("continuationToken=")
    );

    assert_eq!(rest(&hub, "DELETE", &add_user, None, b"").await.status, 204);
    rest(&hub, "POST", &send_g, Some("text/plain"), b"3").await;
    c.expect_silence().await;

    let add_many = format!("/api/hubs/{HUB}/:addToGroups?{V}");
    let body = json!({"groups":["x","y"],"filter":format!("connectionId eq '{id}'")}).to_string();
    assert_eq!(
        rest(
            &hub,
            "POST",
            &add_many,
            Some("application/json"),
            body.as_bytes()
        )
        .await
        .status,
        200
    );
    rest(
        &hub,
        "POST",
        &format!("/api/hubs/{HUB}/groups/y/:send?{V}"),
        Some("text/plain"),
        b"4",
    )
    .await;
    assert_eq!(c.next_json().await["data"], "4");
    d.expect_silence().await;
    let leave_all = format!("/api/hubs/{HUB}/connections/{id}/groups?{V}");
    assert_eq!(
        rest(&hub, "DELETE", &leave_all, None, b"").await.status,
        204
    );
    assert_eq!(hub.stats().groups, 0);
    hub.stop().await;
}

#[tokio::test]
async fn permissions_grant_check_revoke() {
    let hub = start_hub().await;
    let mut c = connect(&hub, RELIABLE, Some("u"), &[], &[]).await;
    let id = c.connection_id.clone();
    let path = |verb: &str| {
        format!("/api/hubs/{HUB}/permissions/{verb}/connections/{id}?{V}&targetName=g")
    };
    assert_eq!(
        rest(&hub, "HEAD", &path("joinLeaveGroup"), None, b"")
            .await
            .status,
        404
    );
    assert_eq!(c.join("g", 1).await["error"]["name"], "Forbidden");
    assert_eq!(
        rest(&hub, "PUT", &path("joinLeaveGroup"), None, b"")
            .await
            .status,
        200
    );
    assert_eq!(
        rest(&hub, "HEAD", &path("joinLeaveGroup"), None, b"")
            .await
            .status,
        200
    );
    // The refused ack id is judged again now that the permission is granted.
    assert_eq!(c.join("g", 1).await["success"], true);
    assert_eq!(
        rest(&hub, "DELETE", &path("joinLeaveGroup"), None, b"")
            .await
            .status,
        204
    );
    assert_eq!(c.join("g", 2).await["error"]["name"], "Forbidden");
    assert_eq!(
        rest(&hub, "PUT", &path("teleport"), None, b"").await.status,
        400
    );
    hub.stop().await;
}

#[tokio::test]
async fn generate_token_mints_a_working_client_token() {
    let hub = start_hub().await;
    let path = format!(
        "/api/hubs/{HUB}/:generateToken?{V}&userId=gen&role=webpubsub.joinLeaveGroup&group=auto&minutesToExpire=5"
    );
    let response = rest(&hub, "POST", &path, None, b"").await;
    assert_eq!(response.status, 200, "{response:?}");
    let token = response.json()["token"].as_str().unwrap().to_owned();
    let ws = open(&client_url(&hub, HUB, &token), Some(RELIABLE))
        .await
        .expect("the token works");
    let mut client = Peer::from_socket(ws).await;
    assert_eq!(client.connected["userId"], "gen");
    assert_eq!(client.join("other", 1).await["success"], true);
    rest(
        &hub,
        "POST",
        &format!("/api/hubs/{HUB}/groups/auto/:send?{V}"),
        Some("text/plain"),
        b"hi",
    )
    .await;
    assert_eq!(client.next_json().await["data"], "hi");
    let bad = format!("/api/hubs/{HUB}/:generateToken?{V}&minutesToExpire=0");
    assert_eq!(rest(&hub, "POST", &bad, None, b"").await.status, 400);
    hub.stop().await;
}

#[tokio::test]
async fn fleet_stats_and_faults_over_http() {
    let hub = start_hub().await;
    let mut client = connect(&hub, RELIABLE, None, &[], &[]).await;
    let stats = rest(&hub, "GET", "/_fleet/stats", None, b"").await;
    assert_eq!(stats.status, 200);
    assert_eq!(stats.json()["connections"], 1);
    assert_eq!(stats.json()["attached"], 1);

    let fault = json!({"fault":"drop","connection_id":client.connection_id}).to_string();
    let applied = rest(
        &hub,
        "POST",
        "/_fleet/faults",
        Some("application/json"),
        fault.as_bytes(),
    )
    .await;
    assert_eq!(applied.status, 200, "{applied:?}");
    assert_eq!(applied.json()["affected"], 1);
    assert_eq!(client.until_closed().await.0, None);

    let bad = rest(
        &hub,
        "POST",
        "/_fleet/faults",
        Some("application/json"),
        br#"{"fault":"drop"}"#,
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["message"]
            .as_str()
            .unwrap()
            .contains("exactly one target")
    );
    let stats = rest(&hub, "GET", "/_fleet/stats", None, b"").await.json();
    assert_eq!(stats["detached_sessions"], 1);
    assert_eq!(stats["faults_injected"], 1);
    hub.stop().await;
}

#[tokio::test]
async fn an_expired_message_ttl_is_not_replayed_and_a_bad_one_is_refused() {
    let hub = start_hub().await;
    let receiver = connect(&hub, RELIABLE, Some("alice"), &[], &[]).await;
    let path = |ttl: &str| {
        let id = &receiver.connection_id;
        format!("/api/hubs/{HUB}/connections/{id}/:send?{V}&messageTtlSeconds={ttl}")
    };
    // (value, status): 0 means "never expires"; the service's maximum is 300.
    for (ttl, status) in [("301", 400), ("-1", 400), ("1.5", 400), ("soon", 400)] {
        let r = rest(&hub, "POST", &path(ttl), Some("text/plain"), b"x").await;
        assert_eq!(r.status, status, "messageTtlSeconds={ttl}");
        assert_eq!(r.json()["code"], "InvalidMessageTtl", "{}", r.body);
    }
    assert!(hub.drop_connection(&receiver.connection_id));
    eventually("the session to be detached", async || {
        hub.stats().detached_sessions == 1
    })
    .await;
    // Buffered while detached: one that expires in 1 s, one that never does (0), one that
    // outlives the test (300).
    for (ttl, text) in [("1", "short"), ("0", "never"), ("300", "long")] {
        let r = rest(
            &hub,
            "POST",
            &path(ttl),
            Some("text/plain"),
            text.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.body);
    }
    // The message's TTL must pass before the recovery: waiting is the point, not a guess.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let token = receiver.reconnection_token.as_deref().unwrap();
    let ws = open(
        &recovery_url(&hub, &receiver.connection_id, token),
        Some(RELIABLE),
    )
    .await
    .expect("recovered");
    let mut recovered = Peer::from_socket(ws).await;
    // (sequence id, data): the expired message keeps its id, so the others keep theirs.
    for (seq, data) in [(2, "never"), (3, "long")] {
        let m = recovered.next_data().await;
        assert_eq!(
            (m["sequenceId"].as_u64(), m["data"].as_str()),
            (Some(seq), Some(data))
        );
    }
    recovered.expect_silence().await;
    let stats = hub.stats();
    assert_eq!((stats.messages_expired, stats.messages_replayed), (1, 2));
    hub.stop().await;
}
