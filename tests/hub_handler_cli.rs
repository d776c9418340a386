//! `webpubsub-fleet hub --config hub.toml`: a file with an unknown key or an unusable handler
//! is refused at start with the reason, before anything listens.

use std::process::Command;

fn hub_with_config(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_webpubsub-fleet"))
        .args(["hub", "--port", "0", "--config"])
        .arg(&path)
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_key_is_refused_with_its_name_and_the_file() {
    let (ok, stderr) = hub_with_config("echo_event = true\n");
    assert!(!ok);
    assert!(stderr.contains("hub.toml is unusable"), "{stderr}");
    assert!(stderr.contains("unknown field `echo_event`"), "{stderr}");
}

#[test]
fn a_handler_that_is_not_http_is_refused() {
    let (ok, stderr) = hub_with_config("[[event_handler]]\nurl = 'ws://localhost/{event}'\n");
    assert!(!ok);
    assert!(stderr.contains("event_handler 1"), "{stderr}");
    assert!(stderr.contains("use http:// or https://"), "{stderr}");
}
