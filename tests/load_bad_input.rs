//! The `load` command as a new user meets it with bad input: an endpoint where nothing
//! listens, and flags that cannot make a run. Each must fail with one clear line, fast, and
//! never print PASS.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn load(args: &[&str]) -> (Output, Duration) {
    let began = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_webpubsub-fleet"))
        .arg("load")
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("WebPubSubConnectionString")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    (output, began.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn nothing_listening_fails_at_the_end_of_the_ramp_with_one_line() {
    // Port 1 on loopback: connection refused at once. A 10-minute workload would run if
    // the command did not stop at the end of the ramp-up.
    let cs = "Endpoint=http://127.0.0.1:1;AccessKey=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdef;Version=1.0;";
    let (out, took) = load(&[
        "--connection-string",
        cs,
        "--clients",
        "10",
        "--duration",
        "10m",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(120), "took {took:?}: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("none of the 10 clients connected") && errors[0].contains("tcp ×10"),
        "{}",
        errors[0]
    );
    // No line per client: the fleet's summary at most, and the key never.
    let per_client = stderr.matches("start failed").count();
    assert_eq!(per_client, 0, "{stderr}");
    assert!(stderr.lines().count() <= 8, "{stderr}");
    assert!(!stdout.contains("PASS"), "{stdout}");
    assert!(!stderr.contains("ABCDEFGHIJ"), "the key leaked: {stderr}");
}

#[test]
fn nonsense_flags_are_refused_before_anything_starts() {
    let cases: &[(&[&str], &str)] = &[
        (&["--clients", "0"], "--clients"),
        (&["--senders", "0"], "--senders"),
        (&["--duration", "0s"], "--duration must be above zero"),
        (&["--ramp-rate", "0"], "--ramp-rate 0 must be above 0"),
        (&["--rate=-1"], "--rate -1 must be above 0"),
        (
            &["--group-size", "5", "--senders", "6"],
            "--senders 6 is more than --group-size 5",
        ),
    ];
    for (args, expected) in cases {
        let (out, _) = load(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        // Refused before the run: no seed line, no progress, no report.
        assert!(!stderr.contains("seed "), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
