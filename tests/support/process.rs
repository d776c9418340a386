//! The built binary as a child process (`webpubsub-fleet hub`, shards of `load`): its stdout
//! and stderr lines collected as they come, waits with the suite's deadline, and a kill when
//! the test ends, pass or fail.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use webpubsub_fleet::credential::ConnectionString;

use super::DEADLINE;

/// The binary `cargo test` built for this checkout.
pub const BIN: &str = env!("CARGO_BIN_EXE_webpubsub-fleet");

/// A child process whose stdout and stderr lines are collected as they come. Dropping it
/// kills the process.
pub struct Proc {
    name: String,
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
    /// The threads reading stdout and stderr: each ends when its pipe closes.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Starts the binary with `args` and `env`, without the settings a shard would inherit
    /// from the test's environment.
    pub fn spawn(name: &str, args: &[&str], env: &[(&str, String)]) -> Proc {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_remove("JOB_COMPLETION_INDEX")
            .env_remove("WebPubSubConnectionString")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the binary starts");
        let mut readers = Vec::new();
        let mut collect = |stream: Box<dyn std::io::Read + Send>| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = lines.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            }));
            lines
        };
        let out = collect(Box::new(child.stdout.take().unwrap()));
        let err = collect(Box::new(child.stderr.take().unwrap()));
        Proc {
            name: name.to_owned(),
            child,
            out,
            err,
            readers,
        }
    }

    /// The name given at spawn, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Kills the process now, as a crash would.
    pub fn kill(&mut self) {
        self.child.kill().expect("the process is killed");
    }

    /// Every stdout line so far.
    pub fn stdout(&self) -> String {
        self.out.lock().unwrap().join("\n")
    }

    /// Every stderr line so far.
    pub fn stderr(&self) -> String {
        self.err.lock().unwrap().join("\n")
    }

    /// Waits (blocking, at most `within`: a loaded shard may need longer than [`DEADLINE`])
    /// for a stdout or stderr line containing `text`.
    pub fn wait_for_line(&self, text: &str, within: Duration) -> String {
        let until = std::time::Instant::now() + within;
        loop {
            let found = (self.out.lock().unwrap().iter())
                .chain(self.err.lock().unwrap().iter())
                .find(|l| l.contains(text))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                std::time::Instant::now() < until,
                "{}: no line with `{text}` within {within:?}\nstdout:\n{}\nstderr:\n{}",
                self.name,
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (blocking) for the exit, killing the process after `within`, which fails the test.
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let until = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.join_output();
                return status;
            }
            if std::time::Instant::now() >= until {
                let _ = self.child.kill();
                panic!(
                    "{} did not exit within {within:?}\nstdout:\n{}\nstderr:\n{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// After the exit: the reader threads end at the pipes' end of file, having taken the
    /// last lines.
    fn join_output(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `webpubsub-fleet hub --port 0` with `extra` flags, once it printed its connection string.
pub fn hub_process(extra: &[&str]) -> (Proc, ConnectionString) {
    let mut args = vec!["hub", "--port", "0"];
    args.extend_from_slice(extra);
    let hub = Proc::spawn("hub", &args, &[]);
    let line = hub.wait_for_line("Endpoint=", DEADLINE);
    let cs = ConnectionString::parse(line.trim())
        .unwrap_or_else(|e| panic!("a connection string, got {line:?}: {e}"));
    (hub, cs)
}
