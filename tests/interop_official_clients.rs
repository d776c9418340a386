//! The official clients against the local hub: the Python client
//! (`azure-messaging-webpubsubclient` 1.1.0, sync and aio) and the JS client
//! (`@azure/web-pubsub-client` 1.1.0), with tokens and REST calls from the official server
//! SDKs (`azure-messaging-webpubsubservice` 1.3.0, `@azure/web-pubsub` 1.2.0), all pinned and
//! installed by `bash scripts/setup-interop.sh`. The scripts that drive them are in
//! `tests/interop/`; each test starts its own hub on a free port.
//!
//! Run: `bash scripts/setup-interop.sh && cargo test --test interop_official_clients`.

mod support;

use serde_json::{Value, json};
use support::eventually;
use support::interop::{Agent, Identity, Sdk, datas, until_stats};
use webpubsub_fleet::hub::{Hub, HubConfig};

async fn hub() -> Hub {
    Hub::start(
        HubConfig::new()
            .bind("127.0.0.1:0".parse().expect("address"))
            .workers(1),
    )
    .await
    .expect("the hub starts")
}

/// A started Python (sync) client "py" and JS client "js" on `hub_name`, for users "py-user"
/// and "js-user" with `identity`'s roles; returns them with their connection ids.
async fn python_and_js(
    hub: &Hub,
    hub_name: &str,
    identity: fn(&str) -> Identity,
) -> (Agent, String, Agent, String) {
    let mut py = Agent::spawn(Sdk::PythonSync, "py", hub, hub_name, &identity("py-user"));
    let mut js = Agent::spawn(Sdk::Js, "js", hub, hub_name, &identity("js-user"));
    let py_id = py.start().await;
    let js_id = js.start().await;
    (py, py_id, js, js_id)
}

fn group_message(group: &str, from: &str, data_type: &str, data: Value) -> Value {
    json!({"group": group, "fromUserId": from, "dataType": data_type, "data": data})
}

/// The fields a test compares of a received group message.
fn group_view(m: &Value) -> Value {
    json!({
        "group": m["group"],
        "fromUserId": m["fromUserId"],
        "dataType": m["dataType"],
        "data": m["data"],
    })
}

/// (a) A Python client and a JS client join one group and publish to it, each receiving the
/// other's messages (text, JSON, binary) with the publisher's user id, and their own unless
/// `noEcho`.
#[actix_rt::test]
async fn python_and_js_clients_exchange_group_messages() {
    let hub = hub().await;
    let (mut py, py_id, mut js, js_id) = python_and_js(&hub, "chat", Identity::member).await;
    assert_ne!(py_id, js_id);
    assert_eq!(py.seen_of("connected")[0]["userId"], "py-user");
    assert_eq!(js.seen_of("connected")[0]["userId"], "js-user");

    py.ok(json!({"op": "join", "group": "room"})).await;
    js.ok(json!({"op": "join", "group": "room"})).await;

    py.ok(json!({"op": "send", "group": "room", "data": "hello from py"}))
        .await;
    py.ok(
        json!({"op": "send", "group": "room", "dataType": "json", "data": {"n": 1, "from": "py"}}),
    )
    .await;
    js.ok(json!({"op": "send", "group": "room", "data": "hello from js"}))
        .await;
    js.ok(json!({"op": "send", "group": "room", "dataType": "binary", "data": "AQID/w=="}))
        .await;
    js.ok(json!({"op": "send", "group": "room", "data": "js only to others", "noEcho": true}))
        .await;
    py.ok(json!({"op": "send", "group": "room", "data": "end"}))
        .await;

    let everything = vec![
        group_message("room", "py-user", "text", json!("hello from py")),
        group_message("room", "py-user", "json", json!({"n": 1, "from": "py"})),
        group_message("room", "js-user", "text", json!("hello from js")),
        group_message("room", "js-user", "binary", json!("AQID/w==")),
        group_message("room", "js-user", "text", json!("js only to others")),
        group_message("room", "py-user", "text", json!("end")),
    ];
    let at_py: Vec<Value> = py.data_until("end").await.iter().map(group_view).collect();
    assert_eq!(at_py, everything, "{}", py.report());
    let at_js: Vec<Value> = js.data_until("end").await.iter().map(group_view).collect();
    let mut without_no_echo = everything.clone();
    without_no_echo.remove(4);
    assert_eq!(at_js, without_no_echo, "{}", js.report());
    assert_js_order(&js);

    py.finish().await;
    js.finish().await;
    hub.stop().await;
}

/// The JS client calls its listeners in the order frames arrive: its data messages were
/// printed in sequence order.
fn assert_js_order(js: &Agent) {
    let seqs: Vec<u64> = js
        .seen
        .iter()
        .filter(|v| v["event"] == "group-message" || v["event"] == "server-message")
        .filter_map(|v| v["sequenceId"].as_u64())
        .collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(seqs, sorted, "{}", js.report());
}

/// (b) The official server SDKs (Python `WebPubSubServiceClient`, JS `WebPubSubServiceClient`)
/// send through the hub's REST API to all, to a user, to a group and to a connection; the
/// official clients receive exactly the messages meant for them, as server messages, with the
/// data type of the request's content type.
#[actix_rt::test]
async fn server_sdks_send_to_all_user_group_and_connection() {
    let hub = hub().await;
    let (mut py, py_id, mut js, js_id) = python_and_js(&hub, "news", Identity::member).await;
    py.ok(json!({"op": "join", "group": "headlines"})).await;
    js.ok(json!({"op": "join", "group": "headlines"})).await;

    // The Python server SDK (run by the py agent).
    py.ok(
        json!({"op": "server", "to": "all", "dataType": "json", "data": {"to": "all", "by": "py"}}),
    )
    .await;
    py.ok(json!({"op": "server", "to": "user", "target": "js-user", "data": "py to js-user"}))
        .await;
    py.ok(json!({"op": "server", "to": "group", "target": "headlines", "data": "py to group"}))
        .await;
    py.ok(json!({"op": "server", "to": "connection", "target": js_id, "dataType": "binary", "data": "AAEC"}))
        .await;
    py.ok(json!({"op": "server", "to": "group", "target": "elsewhere", "data": "nobody"}))
        .await;
    // The JS server SDK (run by the js agent).
    js.ok(json!({"op": "server", "to": "all", "data": "js to all"}))
        .await;
    js.ok(json!({"op": "server", "to": "user", "target": "py-user", "dataType": "json", "data": [1, 2]}))
        .await;
    js.ok(json!({"op": "server", "to": "group", "target": "headlines", "data": "js to group"}))
        .await;
    js.ok(json!({"op": "server", "to": "connection", "target": py_id, "data": "js to py's connection"}))
        .await;
    js.ok(json!({"op": "server", "to": "user", "target": "nobody", "data": "nobody"}))
        .await;
    js.ok(json!({"op": "server", "to": "all", "data": "end"}))
        .await;

    let view = |m: &Value| json!([m["event"], m["dataType"], m["data"]]);
    let at_py: Vec<Value> = py.data_until("end").await.iter().map(view).collect();
    assert_eq!(
        at_py,
        vec![
            json!(["server-message", "json", {"to": "all", "by": "py"}]),
            json!(["server-message", "text", "py to group"]),
            json!(["server-message", "text", "js to all"]),
            json!(["server-message", "json", [1, 2]]),
            json!(["server-message", "text", "js to group"]),
            json!(["server-message", "text", "js to py's connection"]),
            json!(["server-message", "text", "end"]),
        ],
        "{}",
        py.report()
    );
    let at_js: Vec<Value> = js.data_until("end").await.iter().map(view).collect();
    assert_eq!(
        at_js,
        vec![
            json!(["server-message", "json", {"to": "all", "by": "py"}]),
            json!(["server-message", "text", "py to js-user"]),
            json!(["server-message", "text", "py to group"]),
            json!(["server-message", "binary", "AAEC"]),
            json!(["server-message", "text", "js to all"]),
            json!(["server-message", "text", "js to group"]),
            json!(["server-message", "text", "end"]),
        ],
        "{}",
        js.report()
    );
    assert_js_order(&js);

    py.finish().await;
    js.finish().await;
    hub.stop().await;
}

/// The `result` of a refused operation, checked: the SDK's error class and the service's
/// error name.
fn assert_refused(agent: &Agent, result: &Value, error_name: &str) {
    assert_eq!(result["ok"], json!(false), "{}", agent.report());
    assert_eq!(result["error"], "SendMessageError", "{}", agent.report());
    assert_eq!(result["errorName"], error_name, "{}", agent.report());
}

/// (c) A client whose token has no role may not join or publish: the hub acks `Forbidden`,
/// which both official clients raise as their `SendMessageError` naming `Forbidden`; the
/// connection stays up and usable.
#[actix_rt::test]
async fn joining_or_publishing_without_a_role_is_forbidden() {
    let hub = hub().await;
    let (mut py, _, mut js, _) = python_and_js(&hub, "locked", Identity::without_roles).await;

    for agent in [&mut py, &mut js] {
        let join = agent.call(json!({"op": "join", "group": "vip"})).await;
        assert_refused(agent, &join, "Forbidden");
        let send = agent
            .call(json!({"op": "send", "group": "vip", "data": "let me in"}))
            .await;
        assert_refused(agent, &send, "Forbidden");
    }
    // The JS error carries the ack id the request used.
    let js_results = js.seen_of("result");
    assert!(
        js_results
            .iter()
            .filter(|r| r["ok"] == json!(false))
            .all(|r| r["ackId"].as_u64().is_some()),
        "{}",
        js.report()
    );
    // Still connected, nothing delivered, nobody joined.
    for agent in [&mut py, &mut js] {
        let (id, state) = agent.status().await;
        assert!(id.is_some(), "{}", agent.report());
        assert_eq!(state, "Connected", "{}", agent.report());
        assert!(
            agent.seen_of("group-message").is_empty(),
            "{}",
            agent.report()
        );
        assert!(
            agent.seen_of("disconnected").is_empty(),
            "{}",
            agent.report()
        );
    }
    let stats = hub.stats();
    assert_eq!(stats.forbidden, 4, "{stats:?}");
    assert_eq!(stats.groups, 0, "{stats:?}");

    py.finish().await;
    js.finish().await;
    hub.stop().await;
}

/// (d) An operation repeated with the ack id of one already processed gets a `Duplicate` ack
/// and is not executed again: the JS client resolves it with `isDuplicated: true`, the Python
/// client (1.1.0 has no such flag) as a plain success; the repeated publish is never
/// delivered.
#[actix_rt::test]
async fn a_reused_ack_id_is_a_duplicate_reported_as_success() {
    let hub = hub().await;
    let (mut py, _, mut js, _) = python_and_js(&hub, "dedupe", Identity::member).await;

    let first = js
        .ok(json!({"op": "join", "group": "g", "ackId": 100}))
        .await;
    assert_eq!(
        (first["ackId"].clone(), first["isDuplicated"].clone()),
        (json!(100), json!(false))
    );
    let again = js
        .ok(json!({"op": "join", "group": "g", "ackId": 100}))
        .await;
    assert_eq!(
        (again["ackId"].clone(), again["isDuplicated"].clone()),
        (json!(100), json!(true))
    );
    py.ok(json!({"op": "join", "group": "g", "ackId": 7})).await;

    let sent = js
        .ok(json!({"op": "send", "group": "g", "data": "js once", "ackId": 101}))
        .await;
    assert_eq!(sent["isDuplicated"], json!(false));
    let resent = js
        .ok(json!({"op": "send", "group": "g", "data": "js twice", "ackId": 101}))
        .await;
    assert_eq!(resent["isDuplicated"], json!(true));
    py.ok(json!({"op": "send", "group": "g", "data": "py once", "ackId": 8}))
        .await;
    py.ok(json!({"op": "send", "group": "g", "data": "py twice", "ackId": 8}))
        .await;
    js.ok(json!({"op": "send", "group": "g", "data": "end"}))
        .await;

    let expected = vec![json!("js once"), json!("py once"), json!("end")];
    assert_eq!(
        datas(&py.data_until("end").await),
        expected,
        "{}",
        py.report()
    );
    assert_eq!(
        datas(&js.data_until("end").await),
        expected,
        "{}",
        js.report()
    );
    let stats = hub.stats();
    assert_eq!(stats.duplicates, 3, "{stats:?}");

    py.finish().await;
    js.finish().await;
    hub.stop().await;
}

/// Publishes `label-1..=count` to `group` from `publisher`, each acked.
async fn publish(publisher: &mut Agent, group: &str, label: &str, count: usize) {
    for i in 1..=count {
        publisher
            .ok(json!({"op": "send", "group": group, "data": format!("{label}-{i}")}))
            .await;
    }
}

fn labels(label: &str, count: usize) -> Vec<Value> {
    (1..=count).map(|i| json!(format!("{label}-{i}"))).collect()
}

/// (e) The hub drops the sockets of a JS and a Python client abruptly (no close frame) while a
/// third client publishes to their group. Both official reliable clients recover: same
/// connection id, no new connection, no `connected` or `disconnected` event, and every message
/// published before, during and after the drop arrives exactly once, in order.
#[actix_rt::test]
async fn official_clients_recover_an_abrupt_drop_with_the_same_connection() {
    let hub = hub().await;
    let mut js = Agent::spawn(Sdk::Js, "js", &hub, "live", &Identity::member("js-user"));
    let mut py = Agent::spawn(
        Sdk::PythonSync,
        "py",
        &hub,
        "live",
        &Identity::member("py-user"),
    );
    let mut publisher = Agent::spawn(Sdk::Js, "publisher", &hub, "live", &Identity::member("pub"));
    let js_id = js.start().await;
    let py_id = py.start().await;
    publisher.start().await;
    js.ok(json!({"op": "join", "group": "feed"})).await;
    py.ok(json!({"op": "join", "group": "feed"})).await;

    publish(&mut publisher, "feed", "before", 3).await;
    for agent in [&mut js, &mut py] {
        agent
            .expect("before-3", |v| {
                v["event"] == "group-message" && v["data"] == "before-3"
            })
            .await;
    }

    assert!(
        hub.drop_connection(&js_id),
        "the hub had no socket for {js_id}"
    );
    assert!(
        hub.drop_connection(&py_id),
        "the hub had no socket for {py_id}"
    );
    publish(&mut publisher, "feed", "during", 3).await;
    until_stats(&hub, "both clients recovered", |s| s.recoveries >= 2).await;
    publish(&mut publisher, "feed", "after", 3).await;
    publisher
        .ok(json!({"op": "send", "group": "feed", "data": "end"}))
        .await;

    let mut expected = labels("before", 3);
    expected.extend(labels("during", 3));
    expected.extend(labels("after", 3));
    expected.push(json!("end"));
    for (agent, id) in [(&mut js, &js_id), (&mut py, &py_id)] {
        let received = agent.data_until("end").await;
        assert_eq!(datas(&received), expected, "{}", agent.report());
        // Exactly once: no sequence id and no payload printed twice.
        let all = agent.seen_of("group-message");
        assert_eq!(all.len(), expected.len(), "{}", agent.report());
        let (now, state) = agent.status().await;
        assert_eq!(now.as_deref(), Some(id.as_str()), "{}", agent.report());
        assert_eq!(state, "Connected", "{}", agent.report());
        assert_eq!(agent.seen_of("connected").len(), 1, "{}", agent.report());
        assert!(
            agent.seen_of("disconnected").is_empty(),
            "{}",
            agent.report()
        );
    }
    assert_js_order(&js);
    let stats = hub.stats();
    assert_eq!(stats.connections_opened, 3, "no new connection: {stats:?}");
    assert_eq!(stats.recoveries, 2, "{stats:?}");
    assert_eq!(stats.drops, 2, "{stats:?}");

    js.finish().await;
    py.finish().await;
    publisher.finish().await;
    hub.stop().await;
}

/// (f) When the hub refuses to recover a dropped connection (close 1008), the official
/// clients give up recovering, report `disconnected`, and start a new connection (new
/// connection id, `connected` again) through their credential, which asks the official server
/// SDK for a fresh URL; they rejoin their group and receive from it again.
#[actix_rt::test]
async fn a_refused_recovery_makes_official_clients_start_a_new_connection() {
    let hub = hub().await;
    let mut js = Agent::spawn(Sdk::Js, "js", &hub, "fresh", &Identity::member("js-user"));
    let mut py = Agent::spawn(
        Sdk::PythonSync,
        "py",
        &hub,
        "fresh",
        &Identity::member("py-user"),
    );
    let old_js = js.start().await;
    let old_py = py.start().await;
    js.ok(json!({"op": "join", "group": "room"})).await;
    py.ok(json!({"op": "join", "group": "room"})).await;

    hub.refuse_recoveries(2);
    assert!(hub.drop_connection(&old_js));
    assert!(hub.drop_connection(&old_py));

    let mut new_ids = Vec::new();
    for (agent, old) in [(&mut js, &old_js), (&mut py, &old_py)] {
        let disconnected = agent
            .expect("disconnected", |v| v["event"] == "disconnected")
            .await;
        assert_eq!(
            disconnected["connectionId"],
            json!(old),
            "{}",
            agent.report()
        );
        let connected = agent
            .expect("a second connected", |v| v["event"] == "connected")
            .await;
        let new = connected["connectionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!new.is_empty() && new != *old, "{}", agent.report());
        let (now, _) = agent.status().await;
        assert_eq!(now.as_deref(), Some(new.as_str()), "{}", agent.report());
        new_ids.push(new);
    }
    let stats = hub.stats();
    assert_eq!(stats.recoveries, 0, "{stats:?}");
    assert!(stats.recoveries_refused >= 2, "{stats:?}");
    assert_eq!(stats.connections_opened, 4, "{stats:?}");

    // Both rejoin "room" on their new connection (the Python client does so in the
    // background): wait until the group holds both new connections, as the server SDK lists it.
    eventually(
        "both clients to rejoin room on their new connection",
        async || {
            py.send(json!({"op": "members", "group": "room"}));
            let members = py.expect("members", |v| v["event"] == "members").await;
            let ids: Vec<&str> = members["connectionIds"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            // (A refused recovery removes the old connection: see the test below.)
            if new_ids.iter().all(|id| ids.contains(&id.as_str())) {
                Ok(())
            } else {
                Err(format!("{members}\n{}\n{}", js.report(), py.report()))
            }
        },
    )
    .await;
    js.ok(json!({"op": "send", "group": "room", "data": "on the new connection"}))
        .await;
    for agent in [&mut js, &mut py] {
        let received = agent.data_until("on the new connection").await;
        assert_eq!(
            datas(&received),
            vec![json!("on the new connection")],
            "{}",
            agent.report()
        );
        assert!(
            agent.seen_of("rejoin-group-failed").is_empty(),
            "{}",
            agent.report()
        );
    }

    js.finish().await;
    py.finish().await;
    hub.stop().await;
}

/// After the hub closed a recovery attempt with 1008 ("this connection cannot be
/// recovered: start a new one"), the official client starts a new connection and never comes
/// back for the old one. As for the real service, the refused connection is gone at once:
/// it leaves its groups and counts neither as a connection nor as a detached session.
#[actix_rt::test]
async fn a_connection_whose_recovery_was_refused_leaves_its_groups() {
    let hub = hub().await;
    let mut js = Agent::spawn(Sdk::Js, "js", &hub, "ghost", &Identity::member("js-user"));
    let old = js.start().await;
    js.ok(json!({"op": "join", "group": "room"})).await;
    hub.refuse_recoveries(1);
    assert!(hub.drop_connection(&old));
    js.expect("disconnected", |v| v["event"] == "disconnected")
        .await;
    let connected = js
        .expect("a second connected", |v| v["event"] == "connected")
        .await;
    let new = connected["connectionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(new, old);
    until_stats(&hub, "the refused recovery counted", |s| {
        s.recoveries_refused == 1
    })
    .await;

    let stats = hub.stats();
    assert_eq!(
        stats.connections, 1,
        "only the new connection is left: {stats:?}"
    );
    assert_eq!(stats.detached_sessions, 0, "{stats:?}");
    hub.stop().await;
}

/// (h) The asyncio flavour of the official Python client: connects, joins, receives a group
/// message (its own, echoed) and a server message sent to its connection by the Python server
/// SDK, then stops.
#[actix_rt::test]
async fn python_aio_client_connects_joins_and_receives() {
    let hub = hub().await;
    let mut aio = Agent::spawn(
        Sdk::PythonAio,
        "py-aio",
        &hub,
        "aio",
        &Identity::member("aio-user"),
    );
    let id = aio.start().await;
    assert_eq!(aio.seen_of("connected")[0]["userId"], "aio-user");
    aio.ok(json!({"op": "join", "group": "loop"})).await;
    aio.ok(json!({"op": "send", "group": "loop", "dataType": "json", "data": {"hello": "aio"}}))
        .await;
    aio.ok(json!({"op": "server", "to": "connection", "target": id, "data": "end"}))
        .await;
    let received = aio.data_until("end").await;
    assert_eq!(
        received
            .iter()
            .map(|m| json!([m["event"], m["fromUserId"], m["dataType"], m["data"]]))
            .collect::<Vec<_>>(),
        vec![
            json!(["group-message", "aio-user", "json", {"hello": "aio"}]),
            json!(["server-message", null, "text", "end"]),
        ],
        "{}",
        aio.report()
    );
    aio.ok(json!({"op": "stop"})).await;
    aio.expect("stopped", |v| v["event"] == "stopped").await;
    aio.finish().await;
    hub.stop().await;
}
