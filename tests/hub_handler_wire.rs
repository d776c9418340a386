//! Wire details as the service has them (issue 12 item 7): a binary frame holding UTF-8 JSON
//! is a request on the JSON subprotocols, fragmented messages are reassembled within the
//! message limit, and anonymous clients connect only when allowed.

mod support;

use serde_json::json;
use support::hub::*;
use support::ws::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

const LIMIT: usize = 4096;

fn fragment(bytes: &[u8], opcode: Data, last: bool) -> Message {
    Message::Frame(Frame::message(bytes.to_vec(), OpCode::Data(opcode), last))
}

#[tokio::test]
async fn a_binary_frame_holding_json_is_a_request_and_one_that_is_not_utf8_closes_1007() {
    let hub = start_hub_with(|c| c.max_message_size(LIMIT)).await;
    let mut client = connect_all(&hub, RELIABLE, "binary").await;
    client.join("g", 1).await;
    let request =
        json!({"type":"sendToGroup","group":"g","ackId":2,"dataType":"text","data":"in binary"});
    client
        .send_raw(Message::Binary(request.to_string().into_bytes()))
        .await;
    let ack = client.next_json().await;
    assert_eq!(ack["success"], true, "{ack}");
    assert_eq!(client.next_json().await["data"], "in binary");
    client
        .send_raw(Message::Binary(vec![b'{', 0xff, b'}']))
        .await;
    let (code, frames) = client.until_closed().await;
    assert_eq!(code, Some(1007), "{frames:?}");
    hub.stop().await;
}

#[tokio::test]
async fn fragmented_messages_are_reassembled_within_the_limit() {
    let hub = start_hub_with(|c| c.max_message_size(LIMIT)).await;
    let mut client = connect_all(&hub, JSON, "fragments").await;
    client
        .send_raw(fragment(b"{\"type\":", Data::Text, false))
        .await;
    client
        .send_raw(fragment(b"\"pi", Data::Continue, false))
        .await;
    client
        .send_raw(fragment(b"ng\"}", Data::Continue, true))
        .await;
    assert_eq!(client.next_json().await, json!({"type":"pong"}));

    // Each fragment is small; together they pass the limit: 1009 before the last arrives.
    let half = vec![b' '; LIMIT / 2 + 1];
    client.send_raw(fragment(b"{", Data::Text, false)).await;
    client
        .send_raw(fragment(&half, Data::Continue, false))
        .await;
    client
        .send_raw(fragment(&half, Data::Continue, false))
        .await;
    let (code, frames) = client.until_closed().await;
    assert_eq!(code, Some(1009), "{frames:?}");
    hub.stop().await;
}

#[tokio::test]
async fn a_continuation_without_a_first_fragment_closes_1002() {
    let hub = start_hub().await;
    let mut client = connect_all(&hub, JSON, "stray").await;
    client.send_raw(fragment(b"{}", Data::Continue, true)).await;
    let (code, _) = client.until_closed().await;
    assert_eq!(code, Some(1002));
    hub.stop().await;
}

#[tokio::test]
async fn anonymous_clients_connect_only_when_allowed() {
    let url = |hub: &webpubsub_fleet::hub::Hub| format!("ws://{}/client/hubs/{HUB}", hub.addr());
    let denied = start_hub().await;
    assert_eq!(
        open(&url(&denied), Some(JSON)).await.err().map(|e| e.0),
        Some(401)
    );
    denied.stop().await;

    let allowed = start_hub_with(|c| c.allow_anonymous(true)).await;
    let ws = open(&url(&allowed), Some(JSON))
        .await
        .expect("anonymous is let in");
    let client = Peer::from_socket(ws).await;
    assert!(
        client.connected.get("userId").is_none_or(|u| u.is_null()),
        "{}",
        client.connected
    );
    // A token, when given, is still checked.
    let bad = format!("{}?access_token=not.a.token", url(&allowed));
    assert_eq!(open(&bad, Some(JSON)).await.err().map(|e| e.0), Some(401));
    allowed.stop().await;
}
