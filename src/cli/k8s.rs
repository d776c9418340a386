//! `webpubsub-fleet k8s --shards N [load flags] --image IMAGE`: renders the manifests of a
//! sharded run on Kubernetes: a headless Service that gives shard 0's pod a stable name
//! (`NAME-0.NAME`), and an Indexed Job whose pods are the shards (`JOB_COMPLETION_INDEX` is
//! the shard index). The connection string comes from a Secret; it never enters the manifest.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;

use super::load::LoadArgs;

/// Resident memory per connected client, KiB, measured in a 60 s, 10,000-client load run
/// with its recorder (docs/performance.md).
pub const MEASURED_KIB_PER_CLIENT: f64 = 10.7;
/// What a shard process costs before its first client, MiB (runtime, arbiters, buffers).
const BASE_MIB: f64 = 64.0;
/// Headroom over the measured figure: the recorder grows with the run's length and the shard
/// report is serialized at the end.
const HEADROOM: f64 = 2.0;
/// Connections one pod can open to one hub address: the default ephemeral port range
/// (32768-60999) of its one source address.
const EPHEMERAL_PORTS: u64 = 28_232;
/// The coordinator's port.
const PORT: u16 = 7070;

/// Render Kubernetes manifests for a sharded load run (print them; `kubectl apply -f -`).
#[derive(Debug, Args)]
pub struct K8sArgs {
    /// The container image (built from the repository's Dockerfile).
    #[arg(long)]
    image: String,
    /// Name of the Job and the Service (a DNS label).
    #[arg(long, default_value = "webpubsub-load")]
    name: String,
    /// Namespace of both (the current one when not given).
    #[arg(long)]
    namespace: Option<String>,
    /// The Secret holding the connection string
    /// (`kubectl create secret generic NAME --from-literal=connection-string=...`).
    #[arg(long, default_value = "webpubsub-connection")]
    secret: String,
    /// The key of the connection string in the Secret.
    #[arg(long, default_value = "connection-string")]
    secret_key: String,
    /// Memory request per client, KiB [default: the measured 10.7 KiB].
    #[arg(long, default_value_t = MEASURED_KIB_PER_CLIENT)]
    kib_per_client: f64,
    /// Retries of a failed shard's pod (0: a failed index fails, as a load run should).
    #[arg(long, default_value_t = 0)]
    backoff_limit_per_index: u32,
    /// The run: every `load` flag, `--shards N` included.
    #[command(flatten)]
    load: LoadArgs,
}

/// Flags of `k8s` that are not `load` flags (left out of the pods' command line).
const OWN_FLAGS: [&str; 7] = [
    "--image",
    "--name",
    "--namespace",
    "--secret",
    "--secret-key",
    "--kib-per-client",
    "--backoff-limit-per-index",
];

/// Load flags the manifest sets itself.
const SET_HERE: [&str; 4] = [
    "--coordinator",
    "--listen",
    "--shard-index",
    "--shard-report",
];

/// Renders the manifests for `args`; `argv` is the command line after `k8s`, whose load
/// flags go to the pods verbatim.
pub fn run(args: K8sArgs, argv: &[String]) -> ExitCode {
    match render(&args, argv) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(e),
    }
}

/// Whether `arg` is `flag` or `flag=...`.
fn is_flag(arg: &str, flag: &str) -> bool {
    arg == flag || arg.strip_prefix(flag).is_some_and(|r| r.starts_with('='))
}

/// The load flags of `argv`: `k8s`'s own flags (and their values) removed.
fn load_flags(argv: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut args = argv.iter();
    while let Some(arg) = args.next() {
        if let Some(flag) = SET_HERE.iter().find(|f| is_flag(arg, f)) {
            return Err(format!(
                "{flag} is set by the manifest (shard 0 coordinates through the headless Service): leave it out"
            ));
        }
        if is_flag(arg, "--connection-string") {
            return Err(
                "the connection string goes into a Secret, never into the manifest: kubectl create secret generic webpubsub-connection --from-literal=connection-string='Endpoint=...'; then leave out --connection-string".into(),
            );
        }
        if OWN_FLAGS.iter().any(|f| is_flag(arg, f)) {
            if !arg.contains('=') {
                args.next();
            }
            continue;
        }
        out.push(arg.clone());
    }
    Ok(out)
}

/// A YAML double-quoted scalar (a JSON string is one).
fn q(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Whether `s` is a DNS label (RFC 1123), as Job and Service names must be.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 52
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The manifests: a headless Service and an Indexed Job.
pub fn render(args: &K8sArgs, argv: &[String]) -> Result<String, String> {
    let shards = args.load.shard_count();
    if shards < 2 {
        return Err("give --shards N (2 or more): one pod per shard".into());
    }
    if !is_dns_label(&args.name) {
        return Err(format!(
            "--name `{}` is not a DNS label: lowercase letters, digits and '-', at most 52 characters",
            args.name
        ));
    }
    if args.load.has_connection_string() {
        // Set through the environment of this command: fine, but say where it must go.
        eprintln!(
            "note: the connection string in this shell's environment is not rendered; the pods read it from Secret {}",
            args.secret
        );
    }
    if !(args.kib_per_client.is_finite() && args.kib_per_client > 0.0) {
        return Err("--kib-per-client must be above 0".into());
    }
    let clients = args.load.client_count();
    if clients < shards {
        return Err(format!(
            "--clients {clients} is fewer than --shards {shards}: every shard needs a client"
        ));
    }
    let per_pod = clients.div_ceil(shards);
    if per_pod > EPHEMERAL_PORTS {
        return Err(format!(
            "{per_pod} clients per pod is more than one pod can open to one hub address ({EPHEMERAL_PORTS} ephemeral ports): use --shards {} or more",
            clients.div_ceil(EPHEMERAL_PORTS)
        ));
    }
    let request_mib = (BASE_MIB + per_pod as f64 * args.kib_per_client * HEADROOM / 1024.0).ceil();
    let limit_mib = request_mib * 2.0;
    let name = &args.name;
    let mut flags = load_flags(argv)?;
    flags.extend([
        "--coordinator".to_owned(),
        format!("http://{name}-0.{name}:{PORT}"),
        "--listen".to_owned(),
        format!("0.0.0.0:{PORT}"),
    ]);
    let namespace = args
        .namespace
        .as_deref()
        .map(|ns| format!("\n  namespace: {}", q(ns)))
        .unwrap_or_default();
    let labels = format!(
        "app.kubernetes.io/name: webpubsub-fleet\n    app.kubernetes.io/instance: {}",
        q(name)
    );
    let mut container_args = String::new();
    for flag in std::iter::once("load".to_owned()).chain(flags) {
        let _ = write!(container_args, "\n            - {}", q(&flag));
    }
    Ok(format!(
        r#"# webpubsub-fleet: {shards} shards of {clients} clients ({per_pod} per pod at most).
# Shard 0 coordinates at http://{name}-0.{name}:{PORT}; its log ends with the merged report:
#   kubectl logs -f -l batch.kubernetes.io/job-name={name},batch.kubernetes.io/job-completion-index=0
# The Job fails when shard 0 exits non-zero: a threshold failed or a shard was missing.
# Memory per pod: {BASE_MIB} MiB + {per_pod} clients x {kib} KiB (measured, docs/performance.md)
#   x {HEADROOM} headroom = {request_mib} MiB requested, {limit_mib} MiB limit.
# File descriptors: a pod needs one per client plus about 50; the binary refuses to start a
#   fleet its fd limit (ulimit -n) cannot hold, with the limit in the error. Most container
#   runtimes give 1,048,576; if yours gives 1,024, raise it in the runtime's config.
# The connection string is read from Secret {secret} (key {secret_key}):
#   kubectl create secret generic {secret} --from-literal={secret_key}='Endpoint=...;AccessKey=...;Version=1.0;'
apiVersion: v1
kind: Service
metadata:
  name: {qname}{namespace}
  labels:
    {labels}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector:
    batch.kubernetes.io/job-name: {qname}
  ports:
    - name: coordinator
      port: {PORT}
      targetPort: {PORT}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {qname}{namespace}
  labels:
    {labels}
spec:
  completionMode: Indexed
  completions: {shards}
  parallelism: {shards}
  backoffLimitPerIndex: {backoff}
  ttlSecondsAfterFinished: 86400
  template:
    metadata:
      labels:
        {labels_inner}
    spec:
      subdomain: {qname}
      restartPolicy: Never
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
      containers:
        - name: load
          image: {image}
          args:{container_args}
          env:
            - name: WebPubSubConnectionString
              valueFrom:
                secretKeyRef:
                  name: {qsecret}
                  key: {qsecret_key}
          ports:
            - name: coordinator
              containerPort: {PORT}
          resources:
            requests:
              cpu: "1"
              memory: {request}
            limits:
              memory: {limit}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities:
              drop: ["ALL"]
"#,
        kib = args.kib_per_client,
        secret = args.secret,
        secret_key = args.secret_key,
        qname = q(name),
        qsecret = q(&args.secret),
        qsecret_key = q(&args.secret_key),
        backoff = args.backoff_limit_per_index,
        labels_inner = labels.replace("\n    ", "\n        "),
        image = q(&args.image),
        request = q(&format!("{request_mib}Mi")),
        limit = q(&format!("{limit_mib}Mi")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        k8s: K8sArgs,
    }

    fn render_args(line: &[&str]) -> Result<String, String> {
        let argv: Vec<String> = line.iter().map(|s| s.to_string()).collect();
        let cli = Cli::try_parse_from(std::iter::once("k8s".to_owned()).chain(argv.clone()))
            .map_err(|e| e.to_string())?;
        render(&cli.k8s, &argv)
    }

    #[test]
    fn renders_an_indexed_job_behind_a_headless_service() {
        let yaml = render_args(&[
            "--shards",
            "4",
            "--clients",
            "20000",
            "--image",
            "r.io/wpf:1",
            "--seed",
            "3",
            "--name=run1",
        ])
        .unwrap();
        for expected in [
            "completionMode: Indexed",
            "completions: 4",
            "parallelism: 4",
            "backoffLimitPerIndex: 0",
            "clusterIP: None",
            "subdomain: \"run1\"",
            "- \"http://run1-0.run1:7070\"",
            "- \"--seed\"\n            - \"3\"",
            "secretKeyRef:",
            // 64 MiB + 5,000 x 10.7 KiB x 2 = 168.5 -> 169 MiB.
            "memory: \"169Mi\"",
            "memory: \"338Mi\"",
            "image: \"r.io/wpf:1\"",
        ] {
            assert!(yaml.contains(expected), "no `{expected}` in\n{yaml}");
        }
        assert!(
            !yaml.contains("--image"),
            "k8s flags stay out of the pods: {yaml}"
        );
        assert!(!yaml.contains("--name"), "{yaml}");
    }

    #[test]
    fn refuses_what_would_put_secrets_or_conflicts_in_the_manifest() {
        let cs =
            "Endpoint=http://h;AccessKey=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH;Version=1.0;";
        let err =
            render_args(&["--shards", "2", "--image", "i", "--connection-string", cs]).unwrap_err();
        assert!(err.contains("Secret") && !err.contains("ABCDEFGH"), "{err}");
        let err = render_args(&["--shards", "2", "--image", "i", "--coordinator", "http://x"])
            .unwrap_err();
        assert!(err.contains("set by the manifest"), "{err}");
        assert!(
            render_args(&["--image", "i"])
                .unwrap_err()
                .contains("--shards")
        );
        let err =
            render_args(&["--shards", "2", "--image", "i", "--name", "Bad_Name"]).unwrap_err();
        assert!(err.contains("DNS label"), "{err}");
        let err =
            render_args(&["--shards", "2", "--clients", "100000", "--image", "i"]).unwrap_err();
        assert!(err.contains("--shards 4 or more"), "{err}");
    }
}
